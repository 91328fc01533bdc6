"""The labels hotline analysts give an item, and its legality per country derived from them.

Analysts describe what an item shows in jurisdiction-neutral labels, one value per group:

- ``iccam``: ``baseline`` (INTERPOL's baseline: a real child, apparently under 13, in a sexual
  act or with the focus on the genitals; meant to be illegal in every country),
  ``nationally-illegal`` (illegal under the assessing hotline's law), ``not-illegal``;
- ``age``: ``infant-toddler``, ``prepubescent``, ``pubescent``, ``adult``, ``unknown``;
- ``industry``: the Tech Coalition / NCMEC industry classification ``A1``, ``A2``, ``B1``,
  ``B2`` (A prepubescent, B pubescent; 1 a sex act, 2 a lascivious exhibition) or ``none``;
- ``iwf``: the UK's categories ``A``, ``B``, ``C`` or ``none`` (optional);
- ``depiction``: ``real``, ``computer-generated``, ``drawn``.

Nobody types legality: ``Vocabulary.legality`` derives it from a **rules table per country**,
each country an ordered list of conditions (every group named in a condition has one of the
values listed) of which the first that holds makes the item illegal there, with the reason.
``check`` refuses unknown groups and values, missing required groups and combinations that
contradict one another (an adult in a child category).

THE BUILT-IN TABLE IS A STARTING POINT, NOT LEGAL ADVICE. It follows the laws named in its
reasons as read by the hashguard developers; the operator's lawyers own the table and replace it
with a TOML file of their own (``load``; the format is in docs/formats.md, and
``examples/hotline-vocabulary.toml`` is this default written out).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Invalid
from hashguard.hotline.tomlfile import TomlFile, read

ILLEGAL: Final = "illegal"
NOT_ILLEGAL: Final = "not-illegal"
NATIONAL: Final = "nationally-illegal"  # the iccam label: illegal under the hotline's own law
MAX_LABEL: Final = 64  # characters of a label group or value an analyst may send

_COUNTRY = re.compile(r"[A-Z]{2}")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


class LabelError(Invalid):
    """Labels the vocabulary refuses; the message names the group and value."""


class VocabularyError(Invalid):
    """A vocabulary file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelGroup:
    """One group of labels an analyst chooses a value from."""

    name: str
    values: tuple[str, ...]
    required: bool
    description: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """Holds when, for each group it names, the labels give one of the values listed (a group
    not labelled holds none); ``because`` says in a sentence what it means."""

    terms: tuple[tuple[str, frozenset[str]], ...]
    because: str

    def holds(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(group) in values for group, values in self.terms)


@dataclass(frozen=True, slots=True)
class CountryRules:
    """What makes an item illegal in one country: the first condition that holds."""

    country: str
    illegal_if: tuple[Condition, ...]

    def reason(self, labels: Mapping[str, str]) -> Condition | None:
        """The first condition that holds for ``labels`` (None: not illegal here)."""
        return next((c for c in self.illegal_if if c.holds(labels)), None)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The label groups, the combinations refused as inconsistent, and the rules per country."""

    groups: tuple[LabelGroup, ...]
    rules: Mapping[str, CountryRules]
    inconsistent: tuple[Condition, ...] = ()

    def group(self, name: str) -> LabelGroup | None:
        return next((g for g in self.groups if g.name == name), None)

    def check(self, labels: Mapping[str, str]) -> dict[str, str]:
        """``labels`` in the vocabulary's spelling (values matched regardless of case), in the
        groups' order. Raises LabelError for an unknown group or value, a required group left
        out, or a combination the vocabulary names as inconsistent."""
        checked: dict[str, str] = {}
        for name, value in labels.items():
            group = self.group(str(name).strip().lower())
            if group is None:
                known = ", ".join(g.name for g in self.groups)
                raise LabelError(f"unknown label group {name!r} (the groups: {known})")
            if not isinstance(value, str):
                raise LabelError(f"{group.name}: expected a value's name, got {value!r}")
            spelled = {v.lower(): v for v in group.values}.get(value.strip().lower())
            if spelled is None:
                raise LabelError(f"{group.name}: unknown value {value!r} (one of: "
                                 f"{', '.join(group.values)})")  # fmt: skip
            if group.name in checked:
                raise LabelError(f"{group.name}: labelled twice")
            checked[group.name] = spelled
        missing = [g.name for g in self.groups if g.required and g.name not in checked]
        if missing:
            raise LabelError(f"required label group(s) not given: {', '.join(missing)}")
        for condition in self.inconsistent:
            if condition.holds(checked):
                shown = ", ".join(f"{g} {checked[g]}" for g, _ in condition.terms)
                raise LabelError(f"inconsistent labels ({shown}): {condition.because}")
        return {g.name: checked[g.name] for g in self.groups if g.name in checked}

    def legality(self, labels: Mapping[str, str], home: str | None = None) -> dict[str, str]:
        """Per country of the rules table, ``"illegal"`` or ``"not-illegal"`` for an item
        labelled ``labels`` (checked first: raises LabelError as ``check`` does). With ``home``
        (the assessing hotline's country), an ``iccam`` label ``nationally-illegal`` makes the
        item illegal there whatever the table says: it is the analyst's finding under that law."""
        return {country: ILLEGAL if why else NOT_ILLEGAL
                for country, why in self.reasons(labels, home).items()}  # fmt: skip

    def reasons(self, labels: Mapping[str, str], home: str | None = None) -> dict[str, str]:
        """Per country of the rules table, why the item is illegal there ("" where it is not):
        what an assessment records beside its legality."""
        checked = self.check(labels)
        found: dict[str, str] = {}
        for country, rules in self.rules.items():
            condition = rules.reason(checked)
            found[country] = condition.because if condition is not None else ""
            if not found[country] and country == home and checked.get("iccam") == NATIONAL:
                found[country] = "assessed as nationally illegal by this hotline"
        return found


CHILD: Final = ["A1", "A2", "B1", "B2"]  # industry categories: a child, sexually
ANY_DEPICTION: Final = ["real", "computer-generated", "drawn"]

# The built-in vocabulary as its TOML file holds it (examples/hotline-vocabulary.toml is this,
# written out; a test checks they agree). The laws named are the grounds as the developers read
# them; the operator's lawyers check and replace them.
_BASELINE: Final = {
    "when": {"iccam": ["baseline"]},
    "because": "INTERPOL baseline material, illegal in every country",
}
_REAL_CHILD: Final = {
    "when": {"depiction": ["real"], "industry": CHILD},
    "because": "a real child in a sexual act or lascivious exhibition",
}


def _everywhere_but_drawn(law: str) -> list[dict[str, Any]]:
    """The rules of a country whose law covers drawn and computer-made depictions too."""
    return [_BASELINE, _REAL_CHILD,
            {"when": {"depiction": ["computer-generated", "drawn"], "industry": CHILD},
             "because": f"a depiction of a child in a sexual act or lascivious exhibition "
                        f"({law})"}]  # fmt: skip


DEFAULT_DOCUMENT: Final[dict[str, Any]] = {
    "groups": {
        "iccam": {"values": ["baseline", NATIONAL, "not-illegal"], "required": True,
                  "description": "INHOPE/ICCAM's classification: INTERPOL baseline, illegal "
                                 "under this hotline's law, or not illegal"},
        "age": {"values": ["infant-toddler", "prepubescent", "pubescent", "adult", "unknown"],
                "required": True, "description": "the apparent age of the youngest person"},
        "industry": {"values": [*CHILD, "none"], "required": True,
                     "description": "Tech Coalition / NCMEC industry classification: A "
                                    "prepubescent, B pubescent; 1 sex act, 2 lascivious "
                                    "exhibition"},
        "iwf": {"values": ["A", "B", "C", "none"], "required": False,
                "description": "the UK's categories of indecent images of children (IWF)"},
        "depiction": {"values": ANY_DEPICTION, "required": True,
                      "description": "a photograph or film of a real person, made by a "
                                     "computer, or drawn"},
    },
    "inconsistent": [
        {"when": {"age": ["adult"], "industry": CHILD},
         "because": "the industry categories are for children, and the age says adult"},
        {"when": {"age": ["adult"], "iwf": ["A", "B", "C"]},
         "because": "the IWF categories are for children, and the age says adult"},
        {"when": {"age": ["adult"], "iccam": ["baseline"]},
         "because": "baseline material shows children, and the age says adult"},
        {"when": {"industry": ["A1", "A2"], "age": ["pubescent"]},
         "because": "industry A is for prepubescent children (B for pubescent ones)"},
        {"when": {"industry": ["B1", "B2"], "age": ["infant-toddler", "prepubescent"]},
         "because": "industry B is for pubescent children (A for prepubescent ones)"},
        {"when": {"iccam": ["baseline"], "depiction": ["computer-generated", "drawn"]},
         "because": "baseline material shows real children"},
        {"when": {"iccam": ["baseline"], "industry": ["B1", "B2", "none"]},
         "because": "baseline material shows a prepubescent child in a sexual act or "
                    "lascivious exhibition (industry A1 or A2)"},
        {"when": {"iccam": ["not-illegal"], "depiction": ["real"], "industry": CHILD},
         "because": "a real child in a sexual act or lascivious exhibition is illegal in "
                    "every country of the rules table"},
        {"when": {"iwf": ["A", "B"], "industry": ["A2", "B2", "none"]},
         "because": "IWF A and B are sexual activity (industry A1 or B1)"},
        {"when": {"iwf": ["C", "none"], "industry": ["A1", "B1"]},
         "because": "industry A1 and B1 are sexual acts (IWF A or B)"},
    ],
    "countries": {
        # BE: Criminal Code art. 383bis (any visual representation of a minor).
        "BE": _everywhere_but_drawn("art. 383bis Sw./C.pén."),
        # DE: StGB §184b/§184c; distributing covers fictional depictions too (possession needs
        # a real or realistic event).
        "DE": _everywhere_but_drawn("StGB §184b, §184c"),
        # FR: Code pénal art. 227-23 ("l'image ou la représentation d'un mineur").
        "FR": _everywhere_but_drawn("Code pénal art. 227-23"),
        # GB: Protection of Children Act 1978 (indecent photographs and pseudo-photographs,
        # which include computer-made ones: the IWF's A, B and C); Coroners and Justice Act 2009
        # s.62 (prohibited non-photographic images: drawings).
        "GB": [_BASELINE, _REAL_CHILD,
               {"when": {"depiction": ["real", "computer-generated"], "iwf": ["A", "B", "C"]},
                "because": "an indecent photograph or pseudo-photograph of a child "
                           "(Protection of Children Act 1978)"},
               {"when": {"depiction": ["computer-generated"], "industry": CHILD},
                "because": "a pseudo-photograph of a child in a sexual act or lascivious "
                           "exhibition (Protection of Children Act 1978)"},
               {"when": {"depiction": ["drawn"], "industry": CHILD},
                "because": "a prohibited image of a child (Coroners and Justice Act 2009 "
                           "s.62)"}],
        # NL: Sr art. 240b covers virtual depictions; drawings that do not look real are
        # disputed in the case law (the lawyers decide).
        "NL": _everywhere_but_drawn("Sr art. 240b"),
        # US: 18 U.S.C. §2252, §2252A; §2256(8)(B) covers computer-made images indistinguishable
        # from a real minor. Drawings are illegal only when obscene (§1466A, the Miller test),
        # which labels cannot tell: drawn is not illegal by default; an analyst's finding of
        # obscenity needs a label of the operator's own.
        "US": [_BASELINE, _REAL_CHILD,
               {"when": {"depiction": ["computer-generated"], "industry": CHILD},
                "because": "a computer-generated image indistinguishable from a minor in "
                           "sexually explicit conduct (18 U.S.C. §2256(8)(B))"}],
        # CA: Criminal Code s.163.1 (any visual representation; R. v. Sharpe, 2001).
        "CA": _everywhere_but_drawn("Criminal Code s.163.1"),
        # AU: Criminal Code Act 1995 s.473.1, s.474.22 (depictions and representations,
        # cartoons included: McEwen v Simmons, 2008).
        "AU": _everywhere_but_drawn("Criminal Code s.473.1"),
        # JP: Act No. 52 of 1999 (as amended 2014) covers real children only; drawn and
        # computer-made depictions are not covered.
        "JP": [_BASELINE, _REAL_CHILD],
    },
}  # fmt: skip


def default() -> Vocabulary:
    """The built-in vocabulary and rules table (a starting point the operator's lawyers own:
    see the module's docstring)."""
    return _DEFAULT


def load(path: Path) -> Vocabulary:
    """The vocabulary in the TOML file ``path``. Raises VocabularyError naming the file and
    line of what is wrong."""
    return _vocabulary(read(path, VocabularyError))


def _vocabulary(file: TomlFile) -> Vocabulary:
    document = file.document

    def fail(problem: str, table: str = "", index: int | None = None, key: str | None = None
             ) -> VocabularyError:  # fmt: skip
        return VocabularyError(f"{file.where(table, index, key)}: {problem}")

    unknown = set(document) - {"groups", "inconsistent", "countries"}
    if unknown:
        name = sorted(unknown)[0]
        raise fail(f"unknown key {name!r} (expected [groups.NAME], [[inconsistent]] and "
                   "[[countries.CC]])", key=name)  # fmt: skip
    groups_table = document.get("groups")
    if not isinstance(groups_table, dict) or not groups_table:
        raise fail("no label groups: expected [groups.NAME] tables with values = [...]")
    groups = tuple(_group(fail, name, spec) for name, spec in groups_table.items())
    known = {g.name: g for g in groups}

    def conditions(table: str, entries: Any) -> tuple[Condition, ...]:
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise fail(f"[[{table}]]: expected an array of tables (when = {{...}}, because = "
                       "\"...\")", table)  # fmt: skip
        return tuple(_condition(fail, table, i, e, known) for i, e in enumerate(entries))

    inconsistent = conditions("inconsistent", document.get("inconsistent", []))
    countries = document.get("countries")
    if not isinstance(countries, dict) or not countries:
        raise fail("no countries: expected a [[countries.CC]] table per condition")
    rules: dict[str, CountryRules] = {}
    for country, entries in countries.items():
        if not _COUNTRY.fullmatch(country):
            raise fail(f"{country!r}: not a country code (two capital letters, ISO 3166)",
                       f"countries.{country}", 0)  # fmt: skip
        rules[country] = CountryRules(country, conditions(f"countries.{country}", entries))
    return Vocabulary(groups, rules, inconsistent)


def _group(fail: Any, name: str, spec: Any) -> LabelGroup:
    table = f"groups.{name}"
    if not _NAME.fullmatch(name):
        raise fail(f"{name!r}: a group's name is lower case letters, digits and -", table)
    if not isinstance(spec, dict):
        raise fail(f"{name}: expected a table with values = [...]", table)
    unknown = set(spec) - {"values", "required", "description"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"{name}: unknown key {key!r} (values, required, description)", table,
                   key=key)  # fmt: skip
    values = spec.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise fail(f"{name}: expected values = a list of names", table, key="values")
    for value in values:
        if not _VALUE.fullmatch(value):
            raise fail(f"{name}: {value!r} is not a label (letters, digits and -)", table,
                       key="values")  # fmt: skip
    if len({v.lower() for v in values}) != len(values):
        raise fail(f"{name}: a value is listed twice", table, key="values")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise fail(f"{name}: required is true or false", table, key="required")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{name}: description is a string", table, key="description")
    return LabelGroup(name, tuple(values), required, description)


def _condition(fail: Any, table: str, index: int, entry: dict[str, Any],
               groups: Mapping[str, LabelGroup]) -> Condition:  # fmt: skip
    unknown = set(entry) - {"when", "because"}
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"unknown key {key!r} (when, because)", table, index, key)
    when, because = entry.get("when"), entry.get("because")
    if not isinstance(when, dict) or not when:
        raise fail("expected when = { GROUP = [VALUES], ... }", table, index, "when")
    if not isinstance(because, str) or not because.strip():
        raise fail("expected because = a sentence saying what the condition means", table,
                   index, "because")  # fmt: skip
    terms = []
    for name, values in when.items():
        group = groups.get(name)
        if group is None:
            raise fail(f"unknown label group {name!r} (the groups: {', '.join(groups)})",
                       table, index, "when")  # fmt: skip
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            raise fail(f"{name}: expected a list of its values", table, index, "when")
        for value in values:
            if value not in group.values:
                raise fail(f"{name}: unknown value {value!r} (one of: "
                           f"{', '.join(group.values)})", table, index, "when")  # fmt: skip
        terms.append((name, frozenset(values)))
    return Condition(tuple(terms), because.strip())


def _from_document(document: dict[str, Any]) -> Vocabulary:
    return _vocabulary(TomlFile(Path("<built-in vocabulary>"), document, ()))


_DEFAULT: Final = _from_document(DEFAULT_DOCUMENT)
