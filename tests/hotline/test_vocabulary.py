"""The hotline's label vocabulary: legality per country derived from labels by the rules table,
the labels refused (each with its sentence), and vocabulary files with their errors' lines."""

from pathlib import Path

import pytest

from hashguard.hotline.vocabulary import (
    LabelError,
    Vocabulary,
    VocabularyError,
    default,
    load,
)

from support.paths import REPOSITORY

ALL = {"BE", "DE", "FR", "GB", "NL", "US", "CA", "AU", "JP"}


def labels(iccam: str, age: str, industry: str, depiction: str, iwf: str | None = None
           ) -> dict[str, str]:  # fmt: skip
    given = {"iccam": iccam, "age": age, "industry": industry, "depiction": depiction}
    return given | ({"iwf": iwf} if iwf else {})


# labels -> the countries where the item is illegal (everywhere else in the table: not illegal)
LEGALITY = [
    (labels("baseline", "prepubescent", "A1", "real", "A"), ALL),
    (labels("baseline", "infant-toddler", "A2", "real"), ALL),
    (labels("nationally-illegal", "pubescent", "B1", "real", "B"), ALL),
    (labels("nationally-illegal", "pubescent", "B2", "real", "C"), ALL),
    # computer-made: a pseudo-photograph in GB, indistinguishable in the US; JP's law is real
    # children only
    (labels("nationally-illegal", "prepubescent", "A1", "computer-generated"), ALL - {"JP"}),
    # drawn: illegal where the law covers any representation; not in the US (only if obscene)
    # nor in JP
    (labels("nationally-illegal", "pubescent", "B2", "drawn"), ALL - {"US", "JP"}),
    # indecent but no sexual act or lascivious exhibition: the UK's category C alone
    (labels("nationally-illegal", "pubescent", "none", "real", "C"), {"GB"}),
    (labels("not-illegal", "pubescent", "none", "drawn", "C"), set()),
    (labels("not-illegal", "adult", "none", "real", "none"), set()),
    (labels("not-illegal", "unknown", "none", "real"), set()),
]


@pytest.mark.parametrize(("given", "illegal"), LEGALITY)
def test_legality_per_country_follows_the_rules_table(given: dict[str, str],
                                                      illegal: set[str]) -> None:  # fmt: skip
    legality = default().legality(given)
    assert set(legality) == ALL
    assert {c for c, status in legality.items() if status == "illegal"} == illegal
    assert set(legality.values()) <= {"illegal", "not-illegal"}


def test_each_illegal_country_says_why_by_its_law() -> None:
    reasons = default().reasons(labels("nationally-illegal", "pubescent", "B2", "drawn"))
    assert "Coroners and Justice Act 2009" in reasons["GB"]
    assert "Sr art. 240b" in reasons["NL"]
    assert reasons["US"] == reasons["JP"] == ""
    baseline = default().reasons(labels("baseline", "prepubescent", "A1", "real"))
    assert all("INTERPOL baseline" in reason for reason in baseline.values())


def test_nationally_illegal_makes_it_illegal_at_the_assessing_hotlines_home_only() -> None:
    given = labels("nationally-illegal", "pubescent", "none", "real", "C")
    assert default().legality(given, home="NL")["NL"] == "illegal"
    assert default().legality(given, home="NL")["DE"] == "not-illegal"
    assert (
        default().reasons(given, home="NL")["NL"]
        == "assessed as nationally illegal by this hotline"
    )
    assert default().legality(given)["NL"] == "not-illegal"
    assert default().legality(labels("not-illegal", "adult", "none", "real"), "NL")["NL"] == (
        "not-illegal"
    )


def test_check_gives_the_vocabularys_spelling_in_group_order() -> None:
    given = {"Depiction": " Real ", "industry": "a1", "age": "PREPUBESCENT", "iccam": "baseline"}
    assert list(default().check(given).items()) == [
        ("iccam", "baseline"),
        ("age", "prepubescent"),
        ("industry", "A1"),
        ("depiction", "real"),
    ]


REFUSED = [
    (labels("baseline", "prepubescent", "A1", "real") | {"severity": "high"},
     "unknown label group 'severity' (the groups: iccam, age, industry, iwf, depiction)"),
    (labels("baseline", "toddler", "A1", "real"),
     "age: unknown value 'toddler' (one of: infant-toddler, prepubescent, pubescent, adult, "
     "unknown)"),
    (labels("not-illegal", "adult", "A1", "real") | {"industry": None},  # type: ignore[dict-item]
     "industry: expected a value's name, got None"),
    (labels("baseline", "prepubescent", "A1", "real") | {"Age": "prepubescent"},
     "age: labelled twice"),
    ({"iccam": "baseline", "age": "prepubescent"},
     "required label group(s) not given: industry, depiction"),
    (labels("not-illegal", "adult", "B1", "real"),
     "inconsistent labels (age adult, industry B1): the industry categories are for children, "
     "and the age says adult"),
    (labels("not-illegal", "adult", "none", "real", "C"),
     "inconsistent labels (age adult, iwf C): the IWF categories are for children, and the age "
     "says adult"),
    (labels("baseline", "adult", "none", "real"),
     "inconsistent labels (age adult, iccam baseline): baseline material shows children, and "
     "the age says adult"),
    (labels("nationally-illegal", "pubescent", "A2", "real"),
     "inconsistent labels (industry A2, age pubescent): industry A is for prepubescent children "
     "(B for pubescent ones)"),
    (labels("nationally-illegal", "infant-toddler", "B1", "real"),
     "inconsistent labels (industry B1, age infant-toddler): industry B is for pubescent "
     "children (A for prepubescent ones)"),
    (labels("baseline", "prepubescent", "A1", "drawn"),
     "inconsistent labels (iccam baseline, depiction drawn): baseline material shows real "
     "children"),
    (labels("baseline", "pubescent", "B1", "real"),
     "inconsistent labels (iccam baseline, industry B1): baseline material shows a "
     "prepubescent child in a sexual act or lascivious exhibition (industry A1 or A2)"),
    (labels("not-illegal", "pubescent", "B2", "real"),
     "inconsistent labels (iccam not-illegal, depiction real, industry B2): a real child in a "
     "sexual act or lascivious exhibition is illegal in every country of the rules table"),
    (labels("nationally-illegal", "pubescent", "B2", "real", "A"),
     "inconsistent labels (iwf A, industry B2): IWF A and B are sexual activity (industry A1 "
     "or B1)"),
    (labels("nationally-illegal", "pubescent", "B1", "real", "C"),
     "inconsistent labels (iwf C, industry B1): industry A1 and B1 are sexual acts (IWF A or "
     "B)"),
]  # fmt: skip


@pytest.mark.parametrize(("given", "message"), REFUSED)
def test_check_and_legality_refuse_bad_labels_with_a_sentence(given: dict[str, str],
                                                              message: str) -> None:  # fmt: skip
    with pytest.raises(LabelError) as refused:
        default().check(given)
    assert str(refused.value) == message
    with pytest.raises(LabelError):
        default().legality(given)


def test_the_sample_file_is_the_built_in_default() -> None:
    assert load(REPOSITORY / "examples" / "hotline-vocabulary.toml") == default()


GOOD = """\
[groups.kind]
values = ["child", "adult"]
required = true

[[countries.NL]]
when = { kind = ["child"] }
because = "a child"
"""


def test_a_vocabulary_of_ones_own_is_used_as_written(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.toml"
    path.write_text(GOOD)
    vocabulary = load(path)
    assert isinstance(vocabulary, Vocabulary)
    assert vocabulary.legality({"kind": "child"}) == {"NL": "illegal"}
    assert vocabulary.legality({"kind": "adult"}) == {"NL": "not-illegal"}


BROKEN = [
    (GOOD.replace('values = ["child", "adult"]', 'values = ["child", "adult"'),
     "not valid TOML: "),
    (GOOD + "\n[[countries.DE]]\nwhen = { kind = [\"child\"] }\nbecause = \"x\"\n"
     "\n[[countries.DE]]\nwhen = { sort = [\"child\"] }\nbecause = \"y\"\n",
     "line 14: unknown label group 'sort' (the groups: kind)"),
    (GOOD.replace('kind = ["child"] }', 'kind = ["kid"] }'),
     "line 6: kind: unknown value 'kid' (one of: child, adult)"),
    (GOOD.replace('because = "a child"', ""),
     "line 5: expected because = a sentence saying what the condition means"),
    (GOOD.replace("[[countries.NL]]", "[[countries.nl]]"),
     "line 5: 'nl': not a country code (two capital letters, ISO 3166)"),
    (GOOD.replace("required = true", "required = \"yes\""),
     "line 3: kind: required is true or false"),
    (GOOD.replace("required = true", "required = true\nlabels = 2"),
     "line 4: kind: unknown key 'labels' (values, required, description)"),
    (GOOD.replace('values = ["child", "adult"]', 'values = ["child", "Child"]'),
     "line 2: kind: a value is listed twice"),
    ("title = \"mine\"\n" + GOOD,
     "line 1: unknown key 'title' (expected [groups.NAME], [[inconsistent]] and "
     "[[countries.CC]])"),
    (GOOD.split("[[countries.NL]]")[0],
     "no countries: expected a [[countries.CC]] table per condition"),
    ("[[countries.NL]]\nwhen = { kind = [\"child\"] }\nbecause = \"x\"\n",
     "no label groups: expected [groups.NAME] tables with values = [...]"),
    (GOOD + "\n[[inconsistent]]\nwhen = { kind = [\"adult\"] }\nbecause = \"x\"\nsince = 1\n",
     "line 12: unknown key 'since' (when, because)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_a_bad_vocabulary_file_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                                message: str) -> None:  # fmt: skip
    path = tmp_path / "vocabulary.toml"
    path.write_text(text)
    with pytest.raises(VocabularyError) as refused:
        load(path)
    assert str(refused.value).startswith(str(path))
    assert message in str(refused.value)


def test_a_missing_vocabulary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match=r"absent\.toml: cannot read"):
        load(tmp_path / "absent.toml")
