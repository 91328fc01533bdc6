"""A scan's output directory: nothing in it that is not the scan's own is ever removed; one
driver at a time; the listing streamed a part at a time and read back lazily; the summary's
counts from the parts' footers; resumes refused or noted for what changed; damage named."""

import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hashguard.lists.model import ListPolicy
from hashguard.scan.results import (
    LISTING,
    OutputError,
    Plan,
    Results,
    ResumeRefused,
    ScannedList,
    error_counts,
    policy_digest,
)
from hashguard.scan.source import StoredFile
from hashguard.scan.work import row_schema

PLAN = Plan("/data", {"known": ScannedList(1, 12, "aaaa")}, part_size=10)
FILES = [StoredFile(f"f/{n:03d}.jpg", n) for n in range(25)]


def listed() -> Iterator[StoredFile]:
    yield from FILES


def not_listed() -> Iterator[StoredFile]:
    raise AssertionError("the source was listed again")


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


def test_the_listing_is_written_a_part_at_a_time_and_read_back_lazily(tmp_path: Path) -> None:
    results = Results(tmp_path / "out")
    begun = results.begin(PLAN, listed)
    assert begun.sizes == [10, 10, 5] and not begun.resumed
    assert pq.read_metadata(tmp_path / "out" / LISTING).num_row_groups == 3
    last = results.part_files(2, 5)
    assert list(last) == FILES[20:] and len(last) == 5 and last[0] == FILES[20]
    assert list(pickle.loads(pickle.dumps(last))) == FILES[20:]  # a worker reads it itself
    assert list(results.listing()) == FILES
    del results
    # A resume does not list the source again, unless asked to.
    resumed = Results(tmp_path / "out").begin(PLAN, not_listed)
    assert (resumed.resumed, resumed.changed, resumed.sizes) == (True, None, [10, 10, 5])
    assert Results(tmp_path / "out").begin(PLAN, listed, check_source=True).changed is False
    fewer = Results(tmp_path / "out").begin(PLAN, lambda: FILES[:-1], check_source=True)
    assert fewer.changed is True and fewer.sizes == [10, 10, 5]


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
    (tmp_path / "out" / LISTING).unlink()
    with pytest.raises(OutputError, match=r"listing\.parquet: damaged or missing.*--restart"):
        Results(tmp_path / "out").begin(PLAN, not_listed)
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


def test_a_policy_digest_changes_with_what_matches_not_with_how_it_is_reviewed() -> None:
    policy = ListPolicy({"pdq": 31})
    assert policy_digest(replace(policy, four_eyes=True)) == policy_digest(policy)
    for changed in (replace(policy, thresholds={"pdq": 20}), replace(policy, negative=True),
                    replace(policy, variants=frozenset())):  # fmt: skip
        assert policy_digest(changed) != policy_digest(policy)
