"""A scan's output directory: nothing in it that is not the scan's own is ever removed; one
driver at a time; the listing committed a chunk of parts at a time, resumed after its last key
when stopped, a part read back alone whatever the number of parts; the summary's counts from
the parts' footers; resumes refused or noted for what changed; damage named."""

import json
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hashguard.lists.model import ListPolicy
from hashguard.scan.results import (
    LISTING,
    MARKER,
    PROGRESS,
    OutputError,
    Plan,
    Results,
    ResumeRefused,
    ScannedList,
    error_counts,
    policy_digest,
)
from hashguard.scan.source import SourceUnavailable, StoredFile, open_source
from hashguard.scan.work import row_schema

PLAN = Plan("/data", {"known": ScannedList(1, 12, "aaaa")}, part_size=10)
FILES = [StoredFile(f"f/{n:03d}.jpg", n) for n in range(25)]


def listed(after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
    assert after is None, "listed again from the start"
    yield from FILES


def not_listed(after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
    raise AssertionError("the source was listed again")


def fewer(after: str | None = None, skipping: Path | None = None) -> Iterable[StoredFile]:
    return FILES[:-1]


def rows(part: list[StoredFile], kinds: dict[int, str] = {}, matched: int = 0) -> pa.Table:  # noqa: B006
    """Rows for ``part``: errors of ``kinds`` (by index), the first ``matched`` matched."""
    match = {"list": "known", "entry": 1, "signal": "pdq", "distance": 3.0,
             "variant": "original", "hash": "00"}  # fmt: skip
    found: list[dict[str, Any]] = [
        {"key": f.key, "size": f.size, "lists": '{"known": 12}', "error_kind": kinds.get(n),
         "matches": [match] if n < matched else []}
        for n, f in enumerate(part)
    ]  # fmt: skip
    return pa.Table.from_pylist(found, schema=row_schema())


def test_a_directory_that_is_not_the_scans_is_left_untouched(tmp_path: Path) -> None:
    """A mistyped --out: a user's parts/ or summary.json, with --restart or without."""
    alone, beside = tmp_path / "alone", tmp_path / "beside"
    (alone / "parts").mkdir(parents=True)
    (alone / "parts" / "design.txt").write_text("precious")
    (alone / "summary.json").write_text("{}")
    (beside / "parts").mkdir(parents=True)
    (beside / "parts" / "design.txt").write_text("precious")
    (beside / "readme.txt").write_text("n")
    for directory in (alone, beside):
        for restart in (False, True):
            with pytest.raises(OutputError, match="not empty, and holds no scan"):
                Results(directory).begin(PLAN, listed, restart=restart)
        assert (directory / "parts" / "design.txt").read_text() == "precious"
        assert sorted(p.name for p in directory.rglob("*")) == sorted(
            p.name for p in directory.rglob("*") if not p.name.startswith(".")
        ), "nothing added either"
    assert (alone / "summary.json").read_text() == "{}"


def test_a_restart_removes_the_scans_files_only(tmp_path: Path) -> None:
    results = Results(tmp_path / "out")
    results.begin(PLAN, listed)
    results.write_part(0, rows(FILES[:10]))
    results.mark_reported(0)
    mine = results.parts_directory / "notes.txt"
    mine.write_text("kept")
    del results  # the driver ends (its lock with it)
    again = Results(tmp_path / "out")
    again.begin(PLAN, listed, restart=True)
    assert again.done() == set() and again.reported() == set()
    assert mine.read_text() == "kept"


def test_a_second_driver_on_the_directory_is_refused(tmp_path: Path) -> None:
    first = Results(tmp_path / "out")
    first.begin(PLAN, listed)
    with pytest.raises(ResumeRefused, match="another scan is running in it"):
        Results(tmp_path / "out").begin(PLAN, not_listed)
    del first
    Results(tmp_path / "out").begin(PLAN, not_listed)  # resumed, once the first has ended


def test_what_a_killed_write_left_aside_is_removed(tmp_path: Path) -> None:
    Results(tmp_path / "out").begin(PLAN, listed)
    left = [tmp_path / "out" / "parts" / ".part-00001.parquet.x1y2.tmp",
            tmp_path / "out" / ".summary.json.abc.tmp"]  # fmt: skip
    for path in left:
        path.write_bytes(b"half")
    Results(tmp_path / "out").begin(PLAN, not_listed)
    assert not any(path.exists() for path in left)


def test_the_listing_is_written_in_chunks_and_read_back_a_part_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = Results(tmp_path / "out")
    begun = results.begin(PLAN, listed)
    assert begun.sizes == [10, 10, 5] and not begun.resumed
    assert sorted(p.name for p in (tmp_path / "out" / LISTING).iterdir()) == [
        "chunk-00000.parquet",
        PROGRESS,
    ]
    opened = _spy_on_reads(monkeypatch)
    last = results.part_files(2, 5)
    assert [last[n] for n in range(5)] == FILES[20:] == list(last) and len(last) == 5
    assert len(opened) == 1, "a part indexed file by file, then iterated, is read once"
    assert list(pickle.loads(pickle.dumps(last))) == FILES[20:]  # a worker reads it itself
    assert list(results.listing()) == FILES
    del results
    # A resume does not list the source again, unless asked to.
    resumed = Results(tmp_path / "out").begin(PLAN, not_listed)
    assert (resumed.resumed, resumed.changed, resumed.sizes) == (True, None, [10, 10, 5])
    assert Results(tmp_path / "out").begin(PLAN, listed, check_source=True).changed is False
    changed = Results(tmp_path / "out").begin(PLAN, fewer, check_source=True)
    assert changed.changed is True and changed.sizes == [10, 10, 5]


def test_the_summary_counts_are_read_from_the_parts_footers(tmp_path: Path) -> None:
    results = Results(tmp_path / "out")
    results.begin(PLAN, listed)
    results.write_part(0, rows(FILES[:10], {1: "corrupt", 2: "not media"}, matched=3))
    results.write_part(2, rows(FILES[20:], {0: "not media"}))
    counted = results.counts()
    assert counted["files"] == 15 and counted["matched"] == 3
    assert counted["bytes"] == sum(f.size for f in FILES[:10] + FILES[20:])
    assert counted["by_list"] == {"known": 3}
    assert counted["kinds"] == {"corrupt": 1, "not media": 2}
    assert error_counts(counted["kinds"]) == {"corrupt": 1}
    assert counted["versions_used"] == {'{"known": 12}': {"parts": 2, "files": 15}}
    assert results.rows()["policies"].to_pylist() == ['{"known": "aaaa"}'] * 15


def test_damaged_files_are_named_with_what_to_do(tmp_path: Path) -> None:
    results = Results(tmp_path / "out")
    results.begin(PLAN, listed)
    results.write_part(0, rows(FILES[:10]))
    results.part_path(0).write_bytes(b"not parquet")
    with pytest.raises(OutputError, match=r"part-00000\.parquet: damaged.*--restart"):
        results.counts()
    del results
    (tmp_path / "out" / LISTING / PROGRESS).write_text("{")
    with pytest.raises(OutputError, match=r"progress\.json: damaged or missing.*--restart"):
        Results(tmp_path / "out").begin(PLAN, not_listed)
    (tmp_path / "out" / LISTING / PROGRESS).unlink()  # as if no chunk was committed
    resumed = Results(tmp_path / "out")
    resumed.begin(PLAN, listed)  # listed again, from the start
    (tmp_path / "out" / LISTING / "chunk-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(OutputError, match=r"chunk-00000\.parquet: damaged.*--restart"):
        list(resumed.part_files(1, 10))
    del resumed
    (tmp_path / "out" / "scan.json").write_text("{")
    with pytest.raises(OutputError, match=r"scan\.json: not a scan's plan.*--restart"):
        Results(tmp_path / "out").begin(PLAN, not_listed)
    Results(tmp_path / "out").begin(PLAN, listed, restart=True)


def test_what_a_resume_refuses_and_what_it_notes(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def begin(plan: Plan) -> Any:
        return Results(out).begin(plan, not_listed)

    Results(out).begin(PLAN, listed)
    refused = {
        "--endpoint-url": Plan(**{**_fields(PLAN), "endpoint": "http://minio:9000"}),
        "--min-stability": Plan(**{**_fields(PLAN), "min_stability": 60}),
    }
    for option, plan in refused.items():
        with pytest.raises(ResumeRefused, match=option):
            begin(plan)
    assert begin(Plan(**{**_fields(PLAN), "source": "/data/"})).resumed  # the same place
    # The same version under another policy: the parts left are matched under it, noted.
    changed = {"known": ScannedList(1, 12, "bbbb")}
    assert begin(Plan(**{**_fields(PLAN), "lists": changed})).moved == {
        "known": "12, its policy changed"
    }
    # A report target, once given, is kept; another is refused.
    reported = Plan(**{**_fields(PLAN), "lists": changed, "report_to": "http://a"})
    assert begin(reported).report_to == "http://a"
    assert begin(Plan(**{**_fields(PLAN), "lists": changed})).report_to == "http://a"
    with pytest.raises(ResumeRefused, match="matches reported to http://a"):
        begin(Plan(**{**_fields(PLAN), "lists": changed, "report_to": "http://b"}))


def _fields(plan: Plan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}


def test_a_listing_stopped_midway_resumes_after_its_last_key(tmp_path: Path) -> None:
    """The source fails while it is listed: the chunks committed (100,000 files each) are
    kept, and the next run lists the source after the last key committed, not from the
    start."""
    keys = [f"{n:06d}" for n in range(150_000)]
    asked: list[str | None] = []
    given: list[StoredFile] = []

    def failing(after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
        for key in keys[:130_000]:
            yield StoredFile(key, 1)
        raise SourceUnavailable("the store is down")

    def recorded(after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
        asked.append(after)
        for key in keys:
            if after is None or key > after:  # as the source lists after a key
                given.append(StoredFile(key, 1))
                yield given[-1]

    plan = Plan("/data", PLAN.lists, part_size=1000)
    with pytest.raises(SourceUnavailable, match="the store is down"):
        Results(tmp_path / "out").begin(plan, failing)
    progress = json.loads((tmp_path / "out" / LISTING / PROGRESS).read_text())
    assert (progress["parts"], progress["last"], progress["complete"]) == (100, "099999", False)
    results = Results(tmp_path / "out")
    begun = results.begin(plan, recorded, check_source=True)
    assert asked == ["099999"] and [f.key for f in given] == keys[100_000:]
    assert begun.resumed and begun.changed is None and begun.sizes == [1000] * 150
    for number in (0, 99, 100, 149):  # the first and last parts, and those either side
        assert [f.key for f in results.part_files(number, 1000)] == keys[number * 1000 :][:1000]
    del results
    Results(tmp_path / "out").begin(plan, not_listed)  # complete: not listed again


def test_a_part_is_read_alone_whatever_the_number_of_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,001 parts of a file each: reading one opens its chunk alone, parses a footer of
    100 row groups at most and reads one of them; the parts' sizes come from the progress
    record, with no listing file read; the whole listing (--check-source) reads each chunk
    once."""
    count = 100_001

    def many(after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
        return (StoredFile(f"{n:06d}", n) for n in range(count))

    plan = Plan("/data", PLAN.lists, part_size=1)
    assert len(Results(tmp_path / "out").begin(plan, many).sizes) == count
    opened = _spy_on_reads(monkeypatch)
    results = Results(tmp_path / "out")
    assert results.begin(plan, not_listed).sizes == [1] * count
    assert opened == []
    for number in (0, 54_321, count - 1):
        assert list(results.part_files(number, 1)) == [StoredFile(f"{number:06d}", number)]
        chunk, group = divmod(number, 100_000)
        groups = 100 if chunk == 0 else 1
        assert opened.pop() == (f"chunk-{chunk:05d}.parquet", groups, [group // 1000])
        assert opened == []
    assert sum(1 for _ in results.listing()) == count and len(opened) == 2


def _spy_on_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, list[int]]]:
    """The Parquet files opened from now on: name, row groups, the row groups read."""
    opened: list[tuple[str, int, list[int]]] = []

    class Spied(pq.ParquetFile):
        def __init__(self, source: Any, *args: Any, **options: Any) -> None:
            super().__init__(source, *args, **options)
            opened.append((Path(source).name, self.metadata.num_row_groups, []))
            self.groups = opened[-1][2]

        def read_row_group(self, group: int, *args: Any, **options: Any) -> pa.Table:
            self.groups.append(group)
            return super().read_row_group(group, *args, **options)

    monkeypatch.setattr(pq, "ParquetFile", Spied)
    return opened


def test_a_marker_a_killed_run_began_to_write_is_no_obstacle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    left = out / f".{MARKER}.k1ll3d.tmp"
    left.write_bytes(b"half")
    Results(out).begin(PLAN, listed)
    assert not left.exists() and (out / MARKER).is_file()


def test_a_scan_of_an_older_hashguard_is_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    Results(out).begin(PLAN, listed)
    (out / "listing.parquet").write_bytes(b"a listing of one row group per part")
    with pytest.raises(OutputError, match="made by an older hashguard; run again with --restart"):
        Results(out).begin(PLAN, not_listed)
    Results(out).begin(PLAN, listed, restart=True)
    assert not (out / "listing.parquet").exists()


def test_an_output_directory_inside_the_source_is_not_listed(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")
    (tmp_path / "z.jpg").write_bytes(b"z")
    out = tmp_path / "scan-out"
    plan = Plan(str(tmp_path), PLAN.lists, part_size=10)
    results = Results(out)
    results.begin(plan, open_source(str(tmp_path)).files)
    results.write_part(0, rows(list(results.part_files(0, 2))))
    assert [f.key for f in results.listing()] == ["a.jpg", "z.jpg"]
    del results
    # Its own files since (a part, a summary) are no change of the source either.
    again = Results(out).begin(plan, open_source(str(tmp_path)).files, check_source=True)
    assert again.changed is False


def test_a_policy_digest_changes_with_what_matches_not_with_how_it_is_reviewed() -> None:
    policy = ListPolicy({"pdq": 31})
    assert policy_digest(replace(policy, four_eyes=True)) == policy_digest(policy)
    for changed in (replace(policy, thresholds={"pdq": 20}), replace(policy, negative=True),
                    replace(policy, variants=frozenset())):  # fmt: skip
        assert policy_digest(changed) != policy_digest(policy)
