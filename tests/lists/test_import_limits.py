"""Imports refuse what used to crash them, and every text a record may carry has a limit
(hashguard.lists.limits): StopNCII JSON nested too deeply, an NCMEC XML declaration naming an
encoding expat cannot read, a CSV header that is not CSV, and fields longer than their limit
are each refused with the file, the line or entry, the field and the limit; nothing is
applied. The same files sent to the import route get a 400 with that message, never a 500."""

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashguard.lists import limits
from hashguard.lists.formats import ListFormatError, ncmec, reader
from hashguard.lists.model import Category, Change, ChangeKind, Provenance, Source
from hashguard.lists.records import InvalidRecord, Submission, bounded
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.server import Server, running

MD5 = "0cc175b9c0f1b6a831c399e269772661"  # md5("a"): benign
PDQ = "0f" * 32
DEEP = "[" * 100_000 + "]" * 100_000  # far deeper than any JSON parser's recursion


def _ncmec(classifications: list[str], member_name: str = "Member 7", ident: str = "e1") -> str:
    labels = "".join(f"<classification>{text}</classification>" for text in classifications)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images>'
        f'<image><member id="7">{member_name}</member><id>{ident}</id>{labels}'
        f"<fingerprints><md5>{MD5}</md5></fingerprints></image>"
        "</images><videos/></queryResult>\n"
    )


def _csv(**columns: str) -> str:
    names = ["signal", "value", *columns]
    return ",".join(names) + "\n" + ",".join(["md5", MD5, *columns.values()]) + "\n"


# What crashed an import (issue 23), each with the format, the file and the refusal expected.
CRASHED = [
    pytest.param("stopncii", DEEP, r"x: not JSON \(maximum recursion depth", id="stopncii-deep"),
    pytest.param(
        "stopncii",
        (f'{{"signalType": "VideoMD5", "hashValue": "{MD5}", "hashStatus": "Active"}}\n' * 2)
        + '{"hashRecords": '
        + DEEP
        + "}\n",
        r"x:3: not JSON \(maximum recursion depth",
        id="stopncii-lines-deep",
    ),
    pytest.param(
        "ncmec",
        '<?xml version="1.0" encoding="nonsense"?><queryResult/>',
        r"x:1: the encoding the XML declaration names cannot be read \(unknown encoding: "
        r"nonsense\)",
        id="ncmec-encoding-unknown",
    ),
    pytest.param(
        "ncmec",
        '<?xml version="1.0" encoding="UTF-7"?><queryResult/>',
        r"x:1: the encoding the XML declaration names cannot be read \(multi-byte",
        id="ncmec-encoding-utf7",
    ),
    pytest.param(
        "csv", '"sig"nal,value\nmd5,' + MD5 + "\n", r"x:1: malformed CSV", id="csv-header-quote"
    ),
    pytest.param(
        "csv",
        "signal,value," + "x" * 200_000 + "\n",
        r"x:1: unknown column 'x{40}\.\.\.'; the columns are",
        id="csv-header-field-200k",
    ),
    pytest.param(
        "csv",
        "signal,value\nmd5," + "a" * (limits.VALUE + 1) + "\n",
        r"x:2: malformed CSV: field larger than field limit",
        id="csv-field-over-the-value-limit",
    ),
]


# A field over its limit, in each format that carries it: the file, where, the field, the limit.
TOO_LONG = [
    *(
        pytest.param(
            "csv",
            _csv(**{column: "x" * (limit + 1)}),
            rf"x:2: {field} of {limit + 1:,} characters \('x{{20}}'\.\.\.\); the limit is "
            rf"{limit:,}",
            id=f"csv-{column}",
        )
        for column, field, limit in (
            ("labels", "label", limits.LABEL),
            ("submitted_by", "submitted_by", limits.NAME),
            ("assessed_by", "assessed_by", limits.NAME),
            ("organisation", "organisation", limits.NAME),
        )
    ),
    pytest.param(
        "csv",
        _csv(organisation="Org", reference="r" * (limits.REFERENCE + 1)),
        rf"x:2: reference of {limits.REFERENCE + 1:,} characters",
        id="csv-reference",
    ),
    pytest.param(
        "csv",
        _csv(organisation="Org", jurisdiction="N" * (limits.JURISDICTION + 1)),
        rf"x:2: jurisdiction of {limits.JURISDICTION + 1} characters",
        id="csv-jurisdiction",
    ),
    pytest.param(
        "csv",
        _csv(labels=";".join(f"l{n}" for n in range(limits.LABELS + 1))),
        rf"x:2: {limits.LABELS + 1:,} labels; the limit is {limits.LABELS:,} a record",
        id="csv-label-count",
    ),
    pytest.param(
        "pytx",
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ},{'c' * (limits.NAME + 1)},POSITIVE_CLASS,t\n",
        rf"x:2: submitted_by of {limits.NAME + 1:,} characters",
        id="pytx-collab",
    ),
    pytest.param(
        "pytx",
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ},c,POSITIVE_CLASS,{'t' * (limits.LABEL + 1)}\n",
        rf"x:2: label of {limits.LABEL + 1:,} characters",
        id="pytx-tag",
    ),
    pytest.param(
        "ncmec",
        _ncmec(["A1", "c" * 5_000_000, "c" * 5_000_000, "c" * 5_000_000]),
        rf"<image> 1 \(member 7, id e1\): label of 5,000,000 characters \('c{{20}}'\.\.\.\); "
        rf"the limit is {limits.LABEL}",
        id="ncmec-three-5MB-classifications",
    ),
    pytest.param(
        "ncmec",
        _ncmec(["A1"], member_name="m" * (limits.NAME + 1)),
        rf"<image> 1 \(member 7, id e1\): submitted_by of {limits.NAME + 1:,} characters",
        id="ncmec-member-name",
    ),
    pytest.param(
        "ncmec",
        _ncmec(["A1"], ident="i" * 1000),
        r"<image> 1: <id> of 1,000 characters; the limit is \d+",
        id="ncmec-entry-id",
    ),
    pytest.param(
        "text",
        "[" + "0" * (limits.VALUE + 1) + "]\n",
        rf"x:1: expected a vpdq value, got .*value of {limits.VALUE + 3:,} characters",
        id="text-vpdq-value",
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ListStore]:
    engine = open_engine(f"sqlite:///{tmp_path / 'hashguard.db'}")
    store = ListStore(engine)
    store.create("target", "Org", Category.TEST)
    yield store
    engine.dispose()


@pytest.mark.parametrize(("format", "content", "message"), [*CRASHED, *TOO_LONG])
def test_a_file_that_crashed_an_import_or_carries_too_much_text_is_refused_whole(
    tmp_path: Path, store: ListStore, format: str, content: str, message: str
) -> None:
    path = tmp_path / "x"
    path.write_text(content)
    with pytest.raises(ListFormatError, match=message) as refused:
        store.apply("target", reader.read(path, format, signal="vpdq"))
    assert len(str(refused.value)) < 1000  # the message names the text, never repeats it
    assert store.get("target").version == 0


@pytest.mark.parametrize(
    "columns",
    [
        {"labels": "x" * limits.LABEL},
        {"labels": ";".join(f"l{n}" for n in range(limits.LABELS))},
        {
            "organisation": "o" * limits.NAME,
            "jurisdiction": "J" * limits.JURISDICTION,
            "reference": "r" * limits.REFERENCE,
            "submitted_by": "s" * limits.NAME,
            "assessed_by": "a" * limits.NAME,
        },
    ],
    ids=["one-label", "label-count", "provenance"],
)
def test_text_at_its_limit_is_imported(tmp_path: Path, store: ListStore, columns) -> None:
    path = tmp_path / "x.csv"
    path.write_text(_csv(**columns))
    store.apply("target", reader.read(path, "csv"))
    assert store.get("target").version == 1


def test_an_ncmec_page_fetched_with_long_classifications_sets_that_entry_aside() -> None:
    """The NCMEC exchange's page: the entry over a limit is named and kept out; the page's
    other entries apply."""
    page = _ncmec(["c" * 5_000_000]).replace(
        "</images>",
        f'<image><member id="7">M</member><id>e2</id><fingerprints><md5>{"b" * 32}</md5>'
        "</fingerprints></image></images>",
    )
    read = ncmec.parse_page(page.encode(), Counter())
    [bad] = read.bad
    assert bad.where == "<image> 1 (member 7, id e1)"
    assert bad.reason.startswith("label of 5,000,000 characters")
    assert len(bad.excerpt) <= ncmec.EXCERPT
    assert [r.value for r in read.records if isinstance(r, Submission)] == ["b" * 32]


def test_a_change_from_another_instances_feed_is_bounded_too() -> None:
    change = Change(1, 1, ChangeKind.ADD, 1, "md5", MD5, frozenset({"A1"}),
                    Provenance("Org", "", (Source("Org", "NL", "r" * 600),)))  # fmt: skip
    with pytest.raises(InvalidRecord, match=r"reference of 600 characters .* limit is 512"):
        bounded(change)
    assert bounded(Change(1, 1, ChangeKind.DELETE, 1, "md5", MD5, reason="gone")).reason


# --- the same files over HTTP ---------------------------------------------------------------


OVER_HTTP = {
    "stopncii-deep",
    "ncmec-encoding-unknown",
    "csv-header-quote",
    "ncmec-three-5MB-classifications",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with scratch_database("sqlite", tmp_path_factory.mktemp("limits")) as url:
        engine = open_engine(url)
        ListStore(engine).create("target", "Org", Category.TEST, actor="setup")
        engine.dispose()
        with running(url) as served:
            yield served


@pytest.mark.parametrize(
    ("format", "content", "message"),
    [case for case in [*CRASHED, *TOO_LONG] if case.id in OVER_HTTP],
)
def test_the_import_route_refuses_them_with_a_400_and_the_message(
    server: Server, format: str, content: str, message: str
) -> None:
    answer = server.post(
        "/v1/lists/target/import", "curator", content=content.encode(), params={"format": format}
    )
    assert answer.status_code == 400, answer.text
    said = answer.json()["error"]["message"]
    assert said.startswith("the request body")
    assert len(said) < 1000
    assert re.search(message.removeprefix("x"), said), said  # "x" was the file's name
    listed = server.get("/v1/lists/target", "curator").json()
    assert listed["version"] == 0
