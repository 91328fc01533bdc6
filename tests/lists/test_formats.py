"""List file formats: what they accept, and errors that name the file and line."""

import pytest

from hashguard.lists.formats import ListFormatError, labelled_csv, plain
from hashguard.lists.model import Category, ChangeKind, EntryStatus, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore


def test_plain_list_reads_hashes_in_canonical_form(tmp_path) -> None:
    path = tmp_path / "list.txt"
    first, second = "0f" * 32, "A1" * 32
    path.write_bytes(f"\ufeff# header\n{first}\n\n   {second}\t\r\n".encode())
    assert [(r.signal, r.value) for r in plain.read(path, "pdq")] == [
        ("pdq", first),
        ("pdq", second.lower()),
    ]


def test_empty_plain_list_is_an_empty_list(tmp_path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert list(plain.read(path, "pdq")) == []


@pytest.mark.parametrize(
    ("content", "line", "shown"),
    [
        (b"0f" * 32 + b"\n" + b"0f" * 31 + b"\n", 2, "'" + "0f" * 20 + "...'"),
        (b"0g" * 32 + b"\n", 1, "'" + "0g" * 20 + "...'"),
        (b"\n\n\xff\xfe not hex\n", 3, r"'\xff\xfe not hex'"),
        (b"0f" * 32 + b" label\n", 1, "'" + "0f" * 20 + "...'"),
        ((b"0f" * 32 + b"\n") * 5000 + b"0f" * 32 + b"0\n", 5001, "'" + "0f" * 20 + "...'"),
    ],
)
def test_malformed_lines_are_named(tmp_path, content, line, shown) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ListFormatError) as error:
        list(plain.read(path, "pdq"))
    assert str(error.value) == f"{path}:{line}: expected a pdq value, got {shown}"
    assert error.value.line == line


# --- plain lists of any signal, and the labelled CSV, through the store ----------------------


def test_plain_list_of_digests_streams_submissions(tmp_path) -> None:
    path = tmp_path / "md5.txt"
    path.write_text("# md5 list\n" + "AB" * 16 + "\n\n" + "cd" * 16 + "\n")
    records = list(plain.read(path, "md5"))
    assert [(r.signal, r.value) for r in records] == [("md5", "ab" * 16), ("md5", "cd" * 16)]
    path.write_text("ab" * 16 + "\n" + "ab" * 15 + "\n")
    with pytest.raises(ListFormatError, match=r"md5\.txt:2: expected a md5 value"):
        list(plain.read(path, "md5"))


@pytest.fixture
def store(database_url: str):
    engine = open_engine(database_url)
    yield ListStore(engine)
    engine.dispose()


def test_labelled_csv_round_trips_labels_sources_and_tombstones(tmp_path, store) -> None:
    store.create("source", "Offlimits", Category.KNOWN_CSAM)
    nl = Provenance("Offlimits", "analyst", (Source("Offlimits", "NL", "case, 1"),))
    us = Provenance("NCMEC", "", (Source("NCMEC", "US", 'ref "9"'),))
    store.apply(
        "source",
        [
            Submission("pdq", "0f" * 32, frozenset({"A1", "baseline"}), nl),
            Submission("pdq", "0f" * 32, frozenset({"B1"}), us),
            Submission("md5", "ab" * 16, frozenset(), Provenance("Offlimits")),
            Submission("sha1", "cd" * 20, frozenset({"x"}), nl),
            Submission("pdq", "1e" * 32, frozenset(), nl, stability=12),  # measured unstable
            Submission("pdq", "2d" * 32, frozenset(), nl, stability=88),
        ],
    )
    store.change("source", ChangeKind.DELIST, "sha1", "cd" * 20, "appeal")
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as out:
        assert labelled_csv.write(store.entries("source")[1], out) == 5
    store.create("copy", "Hotline", Category.KNOWN_CSAM)
    store.apply("copy", [Submission("sha1", "cd" * 20, frozenset({"x"}), nl)])  # then delisted
    store.apply("copy", labelled_csv.read(path))

    def state(name: str) -> dict:
        return {
            (e.signal, e.value): (e.labels, e.provenance, e.status, e.stability)
            for e in store.entries(name)[1]
        }

    assert state("copy") == state("source")
    assert state("copy")[("pdq", "1e" * 32)][3] == 12  # still not matched where imported


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"bad\.csv:1: empty file"),
        ("signal,hash\n", r"bad\.csv:1: unknown column 'hash'"),
        ("signal,labels\n", r"bad\.csv:1: the header lacks the 'value' column"),
        ("signal,value,labels,labels\n", r"bad\.csv:1: the column 'labels' appears twice"),
        ("signal,value\npdq," + "0" * 64 + "\npdq,xyz\n", r"bad\.csv:3: pdq: expected a PDQ"),
        ("signal,value\npdna,00\n", r"bad\.csv:2: signal 'pdna' cannot be listed"),
        ("signal,value,status\nmd5," + "a" * 32 + ",gone\n", r"bad\.csv:2: status 'gone'"),
        ("signal,value\nmd5\n", r"bad\.csv:2: 1 fields, the header has 2"),
        *(
            (
                "signal,value,stability\npdq," + "0f" * 32 + f",{bad}\n",
                rf"bad\.csv:2: stability '{bad}'; expected a whole number 0-100",
            )
            for bad in ("101", "-1", "5.5", "high", "٣")
        ),
        ('signal,value\nmd5,"' + "a" * 32 + "\n", r"bad\.csv:\d+: malformed CSV"),
    ],
)
def test_malformed_csv_is_named_and_imports_nothing(tmp_path, store, content, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    store.create("target", "Org", Category.TEST)
    with pytest.raises(ListFormatError, match=message):
        store.apply("target", labelled_csv.read(path))
    assert store.get("target").version == 0


# --- pytx signal files --------------------------------------------------------------------------


def test_pytx_signal_csv_imports_positives_and_counts_what_it_leaves_out(tmp_path, store) -> None:
    from collections import Counter

    from hashguard.lists.formats import pytx

    path = tmp_path / "signals.csv"
    path.write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{'AB' * 32},Sample Signals,POSITIVE_CLASS,tag_a tag_b\n"
        f'video_md5,{"cd" * 16},"NCMEC, industry",INVESTIGATION_SEED,A1\n'
        f"pdq,{'ef' * 32},Sample Signals,NEGATIVE_CLASS,\n"
        "raw_text,hello world,Sample Signals,POSITIVE_CLASS,\n"
        f"pdq,{'01' * 32},Sample Signals,DISPUTED,x\n"
    )
    skipped: Counter[str] = Counter()
    records = list(pytx.read(path, skipped))
    assert [(r.signal, r.value, r.labels) for r in records] == [
        ("pdq", "ab" * 32, {"tag_a", "tag_b"}),
        ("md5", "cd" * 16, {"A1"}),
    ]
    assert records[1].provenance.sources[0].organisation == "NCMEC, industry"
    assert skipped == {
        "NEGATIVE_CLASS rows": 1,
        "DISPUTED rows": 1,
        "raw_text signals (not supported)": 1,
    }
    store.create("pytx", "Org", Category.TEST)
    store.apply("pytx", pytx.read(path))
    out = tmp_path / "export.csv"
    with open(out, "w", newline="") as file:
        assert pytx.write(store.entries("pytx")[1], file, "My List") == (1, 1)
    assert list(pytx.read(out)) == [
        Submission(
            "pdq",
            "ab" * 32,
            frozenset({"tag_a", "tag_b"}),
            Provenance("My List", "", (Source("My List"),)),
        )
    ]


def test_pytx_local_file_lines_import(tmp_path) -> None:
    from collections import Counter

    from hashguard.lists.formats import pytx

    path = tmp_path / "local.txt"
    path.write_text(f"pdq {'0f' * 32}\nvideo_md5 {'1e' * 16}\nurl https://example.org/x\n")
    skipped: Counter[str] = Counter()
    assert [(r.signal, r.value) for r in pytx.read(path, skipped)] == [
        ("pdq", "0f" * 32),
        ("md5", "1e" * 16),
    ]
    assert skipped == {"url signals (not supported)": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "signal_type,signal_str,collab,category,tags\npdq,xyz,c,POSITIVE_CLASS,\n",
            r"x\.csv:2: pdq: .*expected a PDQ",
        ),
        (
            "signal_type,signal_str,collab,category,tags\npdq," + "0" * 64 + ",c,MAYBE,\n",
            r"x\.csv:2: category 'MAYBE'",
        ),
        ("signal_type,signal_str,collab,category,tags\npdq\n", r"x\.csv:2: 1 fields"),
        ("pdq " + "0" * 64 + "\nlonely\n", r"x\.csv:2: expected '<signal type> <signal>'"),
    ],
)
def test_malformed_pytx_files_are_named(tmp_path, content, message) -> None:
    from hashguard.lists.formats import pytx

    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(ListFormatError, match=message):
        list(pytx.read(path))


# --- StopNCII hash records ----------------------------------------------------------------------


def stopncii_record(value: str, status: str, signal_type: str = "ImagePDQ") -> dict:
    return {
        "lastModtimestamp": 1700000100,
        "signalType": signal_type,
        "hashValue": value,
        "hashStatus": status,
        "caseNumbers": {"00000000-0000-4000-8000-000000000001": status},
    }


def test_stopncii_withdrawal_stops_matching_where_hma_keeps_it(tmp_path, store) -> None:
    import json
    from collections import Counter

    from hashguard.lists.formats import stopncii
    from hashguard.lists.model import EntryStatus
    from hashguard.matching import Matcher
    from hashguard.matching.query import Query
    from hashguard.signals.pdq import PdqHash

    page = {
        "count": 4,
        "nextPageToken": "ZXhhbXBsZQ==",
        "nextSetTimestamp": 1700000500,
        "hasMoreRecords": False,
        "hashRecords": [
            stopncii_record("ac" * 32, "Active"),
            stopncii_record("bb" * 32, "Received"),
            stopncii_record("cc" * 16, "Active", "VideoMD5"),
            stopncii_record("dd" * 16, "Active", "VideoTMK"),
            stopncii_record("ee" * 32, "Unknown"),
        ],
    }
    first = tmp_path / "page1.json"
    first.write_text(json.dumps(page))
    store.create("ncii", "StopNCII", Category.NCII)
    skipped: Counter[str] = Counter()
    summary = store.apply("ncii", stopncii.read(first, skipped))
    assert summary.added == 3
    assert skipped == {
        "VideoTMK records (not supported)": 1,
        "records of status 'Unknown' (not activated)": 1,
    }
    matcher = Matcher(store, ["ncii"])
    query = Query.of([("pdq", PdqHash(bytes.fromhex("ac" * 32), 100))])
    assert len(matcher.match(query)) == 1
    # The next fetch says the victim withdrew: as JSON Lines, one record per line.
    later = tmp_path / "page2.jsonl"
    later.write_text(
        json.dumps(stopncii_record("ac" * 32, "Withdrawn"))
        + "\n"
        + json.dumps(stopncii_record("cc" * 16, "Deleted", "VideoMD5"))
        + "\n"
    )
    assert store.apply("ncii", stopncii.read(later)).removed == 2
    matcher.refresh()
    assert matcher.match(query) == []
    status = {e.value: e.status for e in store.entries("ncii")[1]}
    assert status["ac" * 32] is EntryStatus.DELETED and status["bb" * 32] is EntryStatus.ACTIVE
    assert all("0000-4000" not in str(e.provenance) for e in store.entries("ncii")[1])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"hashRecords": [{"signalType": "ImagePDQ", "hashValue": "xyz", '
            '"hashStatus": "Active"}]}',
            r"record 1: pdq: expected a PDQ",
        ),
        (
            '{"hashRecords": [{"signalType": "ImagePDQ", "hashStatus": "Active"}]}',
            r"record 1: the record lacks 'hashValue'",
        ),
        ('{"hashRecords": [5]}', r"record 1: expected a hash record object"),
        ("{not json", r"not JSON"),
        ('{"a": 1}\n{broken\n', r"s\.json:2: not JSON|not JSON"),
    ],
)
def test_malformed_stopncii_files_are_named(tmp_path, content, message) -> None:
    from hashguard.lists.formats import stopncii

    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(ListFormatError, match=message):
        list(stopncii.read(path))


# --- NCMEC hash-sharing XML ---------------------------------------------------------------------


def ncmec_entry(tag: str, member: int, ident: str, classification: str = "", **prints: str) -> str:
    """One entry of a composed NCMEC page (``prints``: fingerprint element -> text, or
    "href:..." for a large fingerprint served by URL)."""
    body = f'<member id="{member}">Member {member}</member><timestamp>2026-01-02T03:04:05Z'
    body += f"</timestamp><id>{ident}</id>"
    if classification:
        body += f"<classification>{classification}</classification>"
    if not tag.startswith("deleted"):
        fingerprints = "".join(
            f'<{name} rel="self" href="{text[5:]}"/>'
            if text.startswith("href:")
            else f"<{name}>{text}</{name}>"
            for name, text in ((n.replace("_", "-"), t) for n, t in prints.items())
        )
        body += f"<fingerprints>{fingerprints}</fingerprints><feedback/>"
    return f"<{tag}>{body}</{tag}>"


def ncmec_page(images: list[str], videos: list[str] = ()) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">\n'
        f'<images count="{len(images)}" maxTimestamp="2026-01-02T03:04:05Z">'
        + "\n".join(images)
        + "</images>\n<videos>"
        + "\n".join(videos)
        + "</videos>\n<paging><next>/v2/entries?from=a&amp;to=b&amp;start=3</next></paging>"
        "</queryResult>\n"
    )


def test_ncmec_entries_follow_members_updates_and_deletions(tmp_path, store) -> None:
    from collections import Counter

    from hashguard.lists.formats import ncmec
    from hashguard.lists.model import EntryStatus, fold
    from hashguard.matching import Matcher
    from hashguard.matching.query import Query
    from hashguard.signals.pdq import PdqHash

    first = tmp_path / "page1.xml"
    first.write_text(
        ncmec_page(
            [
                ncmec_entry("image", 7, "keep", "A1", md5="aa" * 16, pdq="AA" * 32, pdna="x" * 40),
                ncmec_entry("image", 7, "update", "A1", md5="bb" * 16, sha1="bb" * 20),
                ncmec_entry("image", 7, "delete", "B1", pdq="cc" * 32),
                ncmec_entry("image", 8, "shared", "B1", pdq="cc" * 32),
                ncmec_entry("image", 8, "photodna-only", "A2", pdna="y" * 40),
            ],
            [ncmec_entry("video", 9, "clip", "A1", md5="dd" * 16, tmk_pdqf="href:/v2/x/TMK")],
        )
    )
    store.create("ncmec", "NCMEC", Category.KNOWN_CSAM)
    skipped: Counter[str] = Counter()
    summary = store.apply("ncmec", ncmec.read(first, skipped))
    assert (summary.added, summary.updated, summary.version) == (6, 1, 7)  # 8 joins a PDQ
    assert skipped == {
        "pdna fingerprints (not supported)": 2,
        "tmk-pdqf fingerprints (served by URL, not fetched)": 1,
        "image entries with no md5, sha1 or pdq fingerprint": 1,
    }
    entries = {(e.signal, e.value): e for e in store.entries("ncmec")[1]}
    assert entries[("pdq", "aa" * 32)].labels == {"A1"}
    assert entries[("pdq", "cc" * 32)].labels == {"B1"}
    assert [s.reference for s in entries[("pdq", "cc" * 32)].provenance.sources] == [
        "ncmec:7:image:delete",
        "ncmec:8:image:shared",
    ]
    assert entries[("md5", "dd" * 16)].provenance.sources == (
        Source("Member 9", "", "ncmec:9:video:clip"),
    )
    # The same page again changes nothing.
    assert store.apply("ncmec", ncmec.read(first)).version == 7

    matcher = Matcher(store, ["ncmec"])
    shared = Query.of([("pdq", PdqHash(bytes.fromhex("cc" * 32), 100))])
    updated = Query.of([("md5", bytes.fromhex("bb" * 16))])
    assert len(matcher.match(shared)) == 1 and len(matcher.match(updated)) == 1

    # Member 7 reclassifies "update" and drops its md5; deletes "delete"; member 9 deletes
    # its video; an unknown deletion is counted, not applied.
    second = tmp_path / "page2.xml"
    second.write_text(
        ncmec_page(
            [
                ncmec_entry("image", 7, "update", "A2", sha1="BB" * 20),
                ncmec_entry("deletedImage", 7, "delete"),
                ncmec_entry("deletedImage", 7, "never-sent"),
            ],
            [ncmec_entry("deletedVideo", 9, "clip")],
        )
    )
    summary = store.apply("ncmec", ncmec.read(second))
    assert (summary.updated, summary.removed, summary.unknown_tombstones) == (2, 2, 1)
    entries = {(e.signal, e.value): e for e in store.entries("ncmec")[1]}
    assert entries[("md5", "bb" * 16)].status is EntryStatus.DELETED
    assert entries[("sha1", "bb" * 20)].labels == {"A2"}  # restated: replaced, not added
    assert entries[("md5", "dd" * 16)].status is EntryStatus.DELETED
    # Member 8 still holds the shared PDQ: it stays active, with one source left.
    held = entries[("pdq", "cc" * 32)]
    assert held.status is EntryStatus.ACTIVE
    assert [s.reference for s in held.provenance.sources] == ["ncmec:8:image:shared"]
    matcher.refresh()
    assert len(matcher.match(shared)) == 1 and matcher.match(updated) == []

    # Member 8 deletes it too: now nobody holds it, and it stops matching.
    third = tmp_path / "page3.xml"
    third.write_text(ncmec_page([ncmec_entry("deletedImage", 8, "shared")]))
    assert store.apply("ncmec", ncmec.read(third)).removed == 1
    matcher.refresh()
    assert matcher.match(shared) == []
    # The log replays to the same state, withdrawals included.
    replayed = fold(store.changes_since("ncmec", 0))
    assert {e.id: e for e in store.entries("ncmec")[1]} == replayed
    kinds = [c.kind for c in store.changes_since("ncmec", 7)]
    assert ChangeKind.WITHDRAW in kinds and ChangeKind.RELABEL in kinds

    # A member sending the entry again revives it with that source.
    fourth = tmp_path / "page4.xml"
    fourth.write_text(ncmec_page([ncmec_entry("image", 8, "shared", "B1", pdq="cc" * 32)]))
    store.apply("ncmec", ncmec.read(fourth))
    matcher.refresh()
    assert len(matcher.match(shared)) == 1


def test_ncmec_and_stopncii_exports_round_trip(tmp_path, store) -> None:
    import io

    from hashguard.lists.formats import ncmec, stopncii

    store.create("source", "Hotline", Category.KNOWN_CSAM)
    page = tmp_path / "page.xml"
    page.write_text(
        ncmec_page(
            [
                ncmec_entry("image", 7, "a", "A1", md5="aa" * 16, pdq="aa" * 32),
                ncmec_entry("image", 7, "b", "B2", sha1="bb" * 20),
            ],
            [ncmec_entry("video", 9, "c", "A2", md5="cc" * 16)],
        )
    )
    store.apply("source", ncmec.read(page))
    store.apply(
        "source",
        [
            Submission("sha256", "ee" * 32, frozenset({"x"})),
            Submission("pdq", "0f" * 32, frozenset({"A1", "baseline"})),
        ],
    )

    def state(name: str, signals: set[str]) -> dict:
        return {
            (e.signal, e.value): (e.labels, e.status)
            for e in store.entries(name)[1]
            if e.signal in signals
        }

    def export(path) -> tuple[int, int]:  # every entry; those not active as deletions
        with open(path, "w", encoding="utf-8") as out:
            return ncmec.write(store.entries("source")[1], out, "1", "Hotline & co")

    # A subscriber imports the list as published, then a later export with a removal.
    assert export(tmp_path / "v1.xml") == (5, 1)  # sha256 has no NCMEC fingerprint
    store.create("copy", "Other", Category.KNOWN_CSAM)
    store.apply("copy", ncmec.read(tmp_path / "v1.xml"))
    assert state("copy", {"md5", "sha1", "pdq"}) == state("source", {"md5", "sha1", "pdq"})
    video = next(e for e in store.entries("copy")[1] if e.value == "cc" * 16)
    assert video.provenance.sources[0].reference.startswith("ncmec:1:video:")
    store.change("source", ChangeKind.DELIST, "pdq", "0f" * 32, "appeal")
    assert export(tmp_path / "v2.xml") == (5, 1)  # the delisted one as a deletion
    text = (tmp_path / "v2.xml").read_text()
    assert "<deletedImage>" in text and "<video>" in text and "Hotline &amp; co" in text
    store.apply("copy", ncmec.read(tmp_path / "v2.xml"))
    removed = {
        k: (labels, EntryStatus.DELETED if status.value != "active" else status)
        for k, (labels, status) in state("source", {"md5", "sha1", "pdq"}).items()
    }
    assert state("copy", {"md5", "sha1", "pdq"}) == removed

    buffer = io.StringIO()
    assert stopncii.write(store.entries("source")[1], buffer) == (4, 2)
    records = tmp_path / "records.jsonl"
    records.write_text(buffer.getvalue())
    store.create("ncii", "StopNCII", Category.NCII)
    store.apply("ncii", [Submission("pdq", "0f" * 32)])
    store.apply("ncii", stopncii.read(records))
    expected = {k: v[1] for k, v in state("source", {"pdq", "md5"}).items()}
    assert {k: v[1] for k, v in state("ncii", {"pdq", "md5"}).items()} == {
        k: (s if s.value == "active" else EntryStatus.DELETED) for k, s in expected.items()
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r"x\.xml:1: malformed XML"),
        ("<queryResult><images><image>\n<id>1</id>\n", r"x\.xml:3: malformed XML"),
        ("<entries/>", r"root element <entries>; expected an NCMEC <queryResult>"),
        (
            ncmec_page(
                [
                    ncmec_entry("image", 7, "ok", md5="aa" * 16),
                    ncmec_entry("image", 7, "bad", pdq="xyz"),
                ]
            ),
            r"<image> 2 \(member 7, id bad\): pdq: expected a PDQ",
        ),
        (ncmec_page(["<image><id>5</id></image>"]), r"<image> 1 \(member , id 5\): no <member"),
        (
            ncmec_page(['<deletedImage><member id="7"/></deletedImage>']),
            r"<deletedImage> 1: no <id>",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaa">]><queryResult>&a;</queryResult>',
            r"refused XML",
        ),
    ],
)
def test_malformed_ncmec_files_are_named_and_import_nothing(tmp_path, store, content, message):
    from hashguard.lists.formats import ncmec

    path = tmp_path / "x.xml"
    path.write_text(content)
    store.create("target", "Org", Category.TEST)
    with pytest.raises(ListFormatError, match=message):
        store.apply("target", ncmec.read(path))
    assert store.get("target").version == 0 and list(store.entries("target")[1]) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaa">]><queryResult>&a;</queryResult>',
            "refused XML",
        ),
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE q [<!ENTITY a "aa">]>'
            "<queryResult>&a;</queryResult>",
            "refused XML",
        ),
        ("<queryResult><images>&undeclared;</images></queryResult>", "line 1: malformed XML"),
        ("<html><body>Service Unavailable</body></html>", "root element <html>"),
    ],
)
def test_ncmec_pages_with_a_dtd_or_broken_xml_are_refused_whole(body, message) -> None:
    """A page fetched from NCMEC is refused as a whole when it declares a DTD (whatever its
    encoding hides it in) or is not an entries document: nothing of it is read."""
    from collections import Counter

    from hashguard.lists.formats import ncmec

    encoding = "utf-16" if 'encoding="UTF-16"' in body else "utf-8"
    with pytest.raises(ncmec.MalformedPage, match=message):
        ncmec.parse_page(body.encode(encoding), Counter())


def test_ncmec_pages_read_the_same_in_any_encoding_and_spelling() -> None:
    """A page's entries read the same whether it is plain UTF-8 or in another encoding, with
    comments inside values or upper-case hex: names as written, values canonical."""
    from collections import Counter

    from hashguard.lists.formats import ncmec

    plain_page = ncmec_page([
        ncmec_entry("image", 7, "e1", "A1", pdq="ab" * 32, md5="CD" * 16),
        ncmec_entry("image", 7, "e2", "B1", md5=f"<!-- a comment -->{'ef' * 16}"),
    ]).replace("Member 7", "Mitglied Ü")  # fmt: skip
    latin = plain_page.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    utf16 = plain_page.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    read = [ncmec.parse_page(body, Counter()) for body in (plain_page.encode(), latin, utf16)]
    expected = [
        ("pdq", "ab" * 32, "Mitglied Ü", "ncmec:7:image:e1"),
        ("md5", "cd" * 16, "Mitglied Ü", "ncmec:7:image:e1"),
        ("md5", "ef" * 16, "Mitglied Ü", "ncmec:7:image:e2"),
    ]
    for page in read:
        assert [
            (r.signal, r.value, r.provenance.submitted_by, r.provenance.sources[0].reference)
            for r in page.records
            if isinstance(r, Submission)
        ] == expected
        assert page.records == read[0].records and not page.bad and page.entries == 2


def test_ncmec_deletions_reach_subscribers_and_leave_owner_decisions(tmp_path, store) -> None:
    from hashguard.lists.formats import ncmec

    def export(name: str, path) -> None:
        hash_list = store.get(name)
        with open(path, "w", encoding="utf-8") as out:
            ncmec.write(store.entries(name)[1], out, str(hash_list.id), hash_list.owner)

    def status(name: str) -> dict:
        return {e.value: e.status for e in store.entries(name)[1]}

    store.create("source", "Hotline", Category.KNOWN_CSAM)
    first = tmp_path / "page1.xml"
    first.write_text(
        ncmec_page(
            [ncmec_entry("image", 6, "2", "B1", pdq="ee" * 32)],
            [ncmec_entry("video", 6, "1", "A1", md5="dd" * 16)],
        )
    )
    store.apply("source", ncmec.read(first))
    export("source", tmp_path / "v1.xml")
    store.create("subscriber", "Other", Category.KNOWN_CSAM)
    store.apply("subscriber", ncmec.read(tmp_path / "v1.xml"))
    # The owner delists the image; then the member deletes both entries.
    store.change("source", ChangeKind.DELIST, "pdq", "ee" * 32, "appeal upheld")
    second = tmp_path / "page2.xml"
    second.write_text(
        ncmec_page([ncmec_entry("deletedImage", 6, "2")], [ncmec_entry("deletedVideo", 6, "1")])
    )
    store.apply("source", ncmec.read(second))
    assert status("source") == {"dd" * 16: EntryStatus.DELETED, "ee" * 32: EntryStatus.DELISTED}
    video = next(e for e in store.entries("source")[1] if e.signal == "md5")
    assert [s.reference for s in video.provenance.sources] == ["ncmec:6:video:1"]  # on record
    # Another member submitting the image does not undo the owner's decision.
    third = tmp_path / "page3.xml"
    third.write_text(ncmec_page([ncmec_entry("image", 9, "5", "B1", pdq="ee" * 32)]))
    store.apply("source", ncmec.read(third))
    assert status("source")["ee" * 32] is EntryStatus.DELISTED
    # The subscriber learns of both removals, the video as a deleted video.
    export("source", tmp_path / "v2.xml")
    assert "<deletedVideo>" in (tmp_path / "v2.xml").read_text()
    summary = store.apply("subscriber", ncmec.read(tmp_path / "v2.xml"))
    assert (summary.removed, summary.unknown_tombstones) == (2, 0)
    assert set(status("subscriber").values()) == {EntryStatus.DELETED}


def test_an_ncmec_entry_revived_by_another_member_is_held_by_that_member_alone(
    tmp_path, store
) -> None:
    from sqlalchemy import select

    from hashguard.lists.formats import ncmec
    from hashguard.lists.model import fold
    from hashguard.matching import Matcher
    from hashguard.matching.query import Query
    from hashguard.signals.pdq import PdqHash
    from hashguard.store.tables import ReferenceRow

    store.create("ncmec", "NCMEC", Category.KNOWN_CSAM)
    matcher = Matcher(store, ["ncmec"])
    value = "ab" * 32
    image = Query.of([("pdq", PdqHash(bytes.fromhex(value), 100))])

    def fetched(name: str, *entries: str) -> None:
        page = tmp_path / f"{name}.xml"
        page.write_text(ncmec_page(list(entries)))
        store.apply("ncmec", ncmec.read(page))
        matcher.refresh()

    def held() -> tuple[EntryStatus, list[str]]:
        entry = store.entry("ncmec", "pdq", value)
        return entry.status, [s.reference for s in entry.provenance.sources]

    def linked() -> list[str]:
        with store.engine.connect() as connection:
            return sorted(connection.scalars(select(ReferenceRow.reference)))

    fetched("a-holds", ncmec_entry("image", 7, "a", "A1", pdq=value))
    fetched("a-withdraws", ncmec_entry("deletedImage", 7, "a"))
    assert held() == (EntryStatus.DELETED, ["ncmec:7:image:a"])  # A's source on record
    assert matcher.match(image) == []
    fetched("b-revives", ncmec_entry("image", 8, "b", "A1", pdq=value))
    assert held() == (EntryStatus.ACTIVE, ["ncmec:8:image:b"])  # B's alone: A withdrew
    assert linked() == ["ncmec:8:image:b"]
    assert len(matcher.match(image)) == 1
    fetched("b-withdraws", ncmec_entry("deletedImage", 8, "b"))
    assert held() == (EntryStatus.DELETED, ["ncmec:8:image:b"])  # nobody holds it now
    assert matcher.match(image) == []
    # A late deletion by A again finds nothing of A's to withdraw.
    page = tmp_path / "a-again.xml"
    page.write_text(ncmec_page([ncmec_entry("deletedImage", 7, "a")]))
    assert store.apply("ncmec", ncmec.read(page)).unknown_tombstones == 1
    # The log replays to the state stored (a mirror's fold agrees).
    assert fold(store.changes_since("ncmec", 0)) == {e.id: e for e in store.entries("ncmec")[1]}
