"""Where a reported URL's illegal items go, decided by ordered, configurable rules.

A rule holds for the facts of a traced URL: where it is hosted relative to the hotline's own
country (``home``, ``partner``: a country a partner hotline covers, ``elsewhere``, ``unknown``),
where its items are illegal (``home``, ``host``: the hosting country, ``anywhere``,
``nowhere``), whether it is behind a CDN and whether the trace left something unresolved. The
first rule that holds gives the ``Route``: its kind, actions and a one-sentence reason. The
default is how INHOPE hotlines work:

- hosted at home and illegal there: ``domestic``, a notice to the hoster (or the CDN in front
  of it) and a report to the police;
- hosted where a partner works and illegal there or at home: ``partner``, a referral;
- hosted elsewhere and illegal at home: ``international``, to the international endpoint;
- nothing illegal: ``none``; hosting country unknown: ``none``, an analyst routes it.

Operators replace the rules with a TOML file (``load_rules``; docs/formats.md, "Hotline
routing rules"; ``examples/hotline-routing.toml`` is the default written out).
"""

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from hashguard.errors import Invalid
from hashguard.hotline.tomlfile import TomlFile, read

PLACES: Final = ("home", "partner", "elsewhere", "unknown")
WHERE_ILLEGAL: Final = ("home", "host", "anywhere", "nowhere")
KINDS: Final = ("domestic", "partner", "international", "none")
ACTIONS: Final = ("notice", "police", "referral", "international")
# What a reason may name: {country} hosting country, {home}, {target}, {host} the URL's host
# name, {cdn} " behind a CDN" or "", {unresolved} what the trace could not find.
PLACEHOLDERS: Final = ("country", "home", "target", "host", "cdn", "unresolved")


class RoutingRulesError(Invalid):
    """A routing rules file that cannot be used; the message names the file and line."""


class Hoster(Protocol):
    """What routing reads of a hoster in the operator's registry (hotline/hosters.py)."""

    @property
    def name(self) -> str: ...
    @property
    def country(self) -> str | None: ...
    @property
    def abuse_email(self) -> str | None: ...


class HostingTrace(Protocol):
    """What routing (and a referral) reads of a hosting trace (hotline/trace.py's Trace)."""

    @property
    def host(self) -> str: ...
    @property
    def country(self) -> str | None: ...
    @property
    def cdn(self) -> bool: ...
    @property
    def hoster(self) -> Hoster | None: ...
    @property
    def unresolved(self) -> tuple[str, ...]: ...
    def as_json(self) -> dict[str, Any]: ...


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Partners(Protocol):
    """What routing asks the partner registry (hotline/partners.py's PartnerRegistry)."""

    def for_country(self, country: str | None) -> Named | None: ...
    @property
    def international(self) -> Named | None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where a URL's items go: ``kind`` domestic, partner, international or none; ``target``
    the hoster (or CDN), partner or endpoint named ("" for none); the actions to queue; why."""

    kind: str
    target: str
    actions: tuple[str, ...]
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "actions": list(self.actions),
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """Holds when the URL is hosted at one of ``hosted`` (empty: anywhere), is illegal at one
    of ``illegal`` (empty: whatever its legality), and its CDN and unresolved flags are as
    given (None: either). ``because`` is the reason's template (PLACEHOLDERS in braces)."""

    hosted: frozenset[str]
    illegal: frozenset[str]
    cdn: bool | None
    unresolved: bool | None
    kind: str
    actions: tuple[str, ...]
    because: str


@dataclass(frozen=True, slots=True)
class RoutingRules:
    rules: tuple[RoutingRule, ...]


@dataclass(frozen=True, slots=True)
class _Facts:
    place: str
    illegal: frozenset[str]
    cdn: bool
    unresolved: bool


def load_rules(path: Path) -> RoutingRules:
    """The routing rules in the TOML file ``path`` (``[[rule]]`` tables, in order). Raises
    RoutingRulesError naming the file and line of what is wrong."""
    return _rules(read(path, RoutingRulesError))


def _rules(file: TomlFile) -> RoutingRules:
    unknown = set(file.document) - {"rule"}
    if unknown:
        key = sorted(unknown)[0]
        raise RoutingRulesError(f"{file.where(key=key)}: unknown key {key!r} (expected "
                                "[[rule]] tables)")  # fmt: skip
    entries = file.document.get("rule")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict)
                                                                for e in entries):  # fmt: skip
        raise RoutingRulesError(f"{file.path}: no rules: expected [[rule]] tables")
    return RoutingRules(tuple(_rule(file, i, entry) for i, entry in enumerate(entries)))


_KEYS: Final = ("hosted", "illegal", "cdn", "unresolved", "route", "actions", "because")


def _rule(file: TomlFile, index: int, entry: dict[str, Any]) -> RoutingRule:
    def fail(key: str | None, problem: str) -> RoutingRulesError:
        return RoutingRulesError(f"{file.where('rule', index, key)}: rule {index + 1}: {problem}")

    for key in entry:
        if key not in _KEYS:
            raise fail(key, f"unknown key {key!r} (the keys: {', '.join(_KEYS)})")

    def names(key: str, allowed: tuple[str, ...]) -> frozenset[str]:
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(key, f"{key}: expected a list of names")
        for name in value:
            if name not in allowed:
                raise fail(key, f"{key}: unknown {name!r} (one of: {', '.join(allowed)})")
        return frozenset(value)

    def flag(key: str) -> bool | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, bool):
            raise fail(key, f"{key}: expected true or false (or leave it out: either)")
        return value

    hosted, illegal = names("hosted", PLACES), names("illegal", WHERE_ILLEGAL)
    kind = entry.get("route")
    if kind not in KINDS:
        raise fail("route", f"route: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "partner" and hosted != {"partner"}:
        raise fail("hosted", 'a partner route needs hosted = ["partner"] (a partner covers '
                   "the hosting country)")  # fmt: skip
    actions = entry.get("actions", [])
    if not isinstance(actions, list) or any(a not in ACTIONS for a in actions):
        raise fail("actions", f"actions: expected a list of {', '.join(ACTIONS)}")
    if kind == "none" and actions:
        raise fail("actions", "a route none takes no actions")
    because = entry.get("because")
    if not isinstance(because, str) or not because.strip():
        raise fail("because", "because: expected the reason, a sentence")
    try:
        named = {field for _, field, _, _ in string.Formatter().parse(because)
                 if field is not None}  # fmt: skip
    except ValueError as error:
        raise fail("because", f"because: {error}") from None
    if named - set(PLACEHOLDERS):
        unknown = sorted(named - set(PLACEHOLDERS))[0]  # "{}" is unknown too
        raise fail("because", f"because: unknown placeholder {{{unknown}}} (the "
                   f"placeholders: {', '.join(PLACEHOLDERS)})")  # fmt: skip
    return RoutingRule(hosted, illegal, flag("cdn"), flag("unresolved"), kind, tuple(actions),
                       because.strip())  # fmt: skip


DEFAULT_DOCUMENT: Final[dict[str, Any]] = {"rule": [
    {"hosted": ["home"], "illegal": ["home"], "route": "domestic",
     "actions": ["notice", "police"],
     "because": "hosted{cdn} in {country}, the hotline's own country, and illegal there: a "
                "notice to {target} and a report to the police"},
    {"hosted": ["partner"], "illegal": ["host", "home"], "route": "partner",
     "actions": ["referral"],
     "because": "hosted{cdn} in {country}, where the partner hotline {target} works, and "
                "illegal there or here: referred to it"},
    {"hosted": ["elsewhere"], "illegal": ["home"], "route": "international",
     "actions": ["international"],
     "because": "hosted{cdn} in {country}, where no partner hotline works, and illegal in "
                "{home}: reported to the international endpoint {target}"},
    {"illegal": ["nowhere"], "route": "none",
     "because": "no item is illegal in any country of the rules table: nothing to route"},
    {"hosted": ["unknown"], "route": "none",
     "because": "the hosting country of {host} is unknown ({unresolved}): an analyst must "
                "route it"},
]}  # fmt: skip

DEFAULT: Final = _rules(TomlFile(Path("<built-in routing rules>"), DEFAULT_DOCUMENT, ()))


def route(
    trace: HostingTrace,
    legality: Mapping[str, str],
    home: str,
    partners: Partners,
    rules: RoutingRules = DEFAULT,
) -> Route:
    """The route of a traced URL whose items are illegal where ``legality`` says (country ->
    "illegal" | "not-illegal", over all its items), for a hotline in ``home``, by ``rules``
    (default: DEFAULT). Raises Invalid when ``legality`` does not name ``home``."""
    home = home.upper()
    if home not in legality:
        raise Invalid(f"no legality for the home country {home}: the vocabulary's rules table "
                      "must name it")  # fmt: skip
    country = trace.country.upper() if trace.country else None
    partner = partners.for_country(country) if country is not None else None
    place = ("unknown" if country is None else "home" if country == home
             else "partner" if partner is not None else "elsewhere")  # fmt: skip
    illegal = {c.upper() for c, status in legality.items() if status == "illegal"}
    where = {"home" if home in illegal else "", "host" if country in illegal else "",
             "anywhere" if illegal else "nowhere"} - {""}  # fmt: skip
    facts = _Facts(place, frozenset(where), trace.cdn, bool(trace.unresolved))
    for rule in rules.rules:
        if _holds(rule, facts):
            return _route(rule, trace, country, home, partner, partners)
    return Route("none", "", (), _sentence(
        f"no routing rule applies (hosted: {place}; illegal: {', '.join(sorted(where))}): an "
        "analyst must route it"))  # fmt: skip


def _holds(rule: RoutingRule, facts: _Facts) -> bool:
    return ((not rule.hosted or facts.place in rule.hosted)
            and (not rule.illegal or bool(rule.illegal & facts.illegal))
            and (rule.cdn is None or rule.cdn == facts.cdn)
            and (rule.unresolved is None or rule.unresolved == facts.unresolved))  # fmt: skip


def _route(rule: RoutingRule, trace: HostingTrace, country: str | None, home: str,
           partner: Named | None, partners: Partners) -> Route:  # fmt: skip
    target = ""
    if rule.kind == "domestic":
        target = trace.hoster.name if trace.hoster is not None else trace.host
    elif rule.kind == "partner" and partner is not None:
        target = partner.name
    elif rule.kind == "international":
        endpoint = partners.international
        if endpoint is None:
            hosted = country or "an unknown country"
            return Route("none", "", (), _sentence(
                f"it would go to the international endpoint, but none is configured: an "
                f"analyst must route it (hosted in {hosted})"))  # fmt: skip
        target = endpoint.name
    unresolved = "; ".join(trace.unresolved) or "nothing more is known"
    values = {"country": country or "an unknown country", "home": home, "target": target,
              "host": trace.host, "cdn": " behind a CDN" if trace.cdn else "",
              "unresolved": unresolved}  # fmt: skip
    return Route(rule.kind, target, rule.actions, _sentence(rule.because.format_map(values)))


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
