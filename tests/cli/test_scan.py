"""``hashguard scan`` as a user runs it: the output directory, a driver killed mid-scan and run
again (a real process), an S3 prefix on a real S3 API server on loopback (moto), matched files
reported to a real ``hashguard serve``, and the errors for what cannot be scanned."""

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from moto.server import ThreadedMotoServer

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review.services import ServiceStore
from hashguard.scan.results import MARKER, Results
from hashguard.signals.pdq import MIN_QUALITY, MIN_STABILITY
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.invoke import Ran, hashguard
from support.media import jpeg
from support.object_store import S3_ENV, fill_bucket, moto_server
from support.scan_corpus import LIST, Corpus, comparable, make_corpus
from support.scripted_service import Scripted
from support.server import free_port, running
from support.waiting import eventually

HASHGUARD = str(Path(sys.executable).with_name("hashguard"))
# One xdist worker runs the module (make test: --dist loadgroup): its corpus made once.
pytestmark = pytest.mark.xdist_group("cli-scan")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("scan"), 200, planted=12)


def scan(
    corpus: Corpus,
    out: Path,
    *options: str,
    source: str = "",
    env: dict | None = None,
    database_url: str = "",
) -> Ran:
    return hashguard(
        "scan", source or str(corpus.root), "--list", LIST, "--out", str(out),
        "--database-url", database_url or corpus.database_url, "--quiet", *options, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Results:
    out = tmp_path_factory.mktemp("whole") / "out"
    ran = scan(corpus, out, "--workers", "0", "--part-size", "10")
    assert ran.returncode == 0, ran.stderr
    return Results(out)


def test_a_scan_writes_parts_and_a_summary(corpus: Corpus, uninterrupted: Results) -> None:
    summary = json.loads((uninterrupted.directory / "summary.json").read_text())
    assert summary["files"] == 200 and summary["files_matched"] == len(corpus.planted)
    assert summary["matches_by_list"] == {LIST: len(corpus.planted)}
    not_media = sum(1 for kind in corpus.broken.values() if kind == "not media")
    assert summary["files_not_media"] == not_media
    assert sum(summary["errors"].values()) == len(corpus.broken) - not_media
    assert summary["lists"] == {LIST: 12} and summary["this_run"]["engine"] == "local"
    assert len(uninterrupted.done()) == 20
    row = uninterrupted.rows().to_pylist()[0]
    assert row["lists"] == '{"known": 12}' and row["hashguard"]


def test_a_killed_driver_resumes_without_redoing_a_part(
    corpus: Corpus, uninterrupted: Results, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [
        HASHGUARD, "scan", str(corpus.root), "--list", LIST, "--out", str(out),
        "--database-url", corpus.database_url, "--workers", "1", "--part-size", "10",
    ]  # fmt: skip
    driver = subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
    results = Results(out)
    try:
        assert eventually(lambda: len(results.done()) >= 3, timeout=120)
    finally:
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its workers die with it
        driver.wait()
    assert eventually(lambda: _unlocked(out / MARKER), timeout=30)
    before = {n: results.part_path(n).stat() for n in results.done()}
    assert 3 <= len(before) < 20, "the scan ended before it was killed"
    ran = scan(corpus, out, "--workers", "1", "--part-size", "10")
    assert ran.returncode == 0, ran.stderr
    assert f"resuming: {len(before)} of 20 parts done before" in ran.stderr
    for number, stat in before.items():
        again = results.part_path(number).stat()
        assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert comparable(results.rows()) == comparable(uninterrupted.rows())
    assert results.rows().num_rows == 200  # no row twice
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_run"]["files"] == 200 - 10 * len(before)
    assert summary["files"] == 200


def _unlocked(marker: Path) -> bool:
    """Whether no process holds the scan directory's lock (no orphaned worker keeps it)."""
    with open(marker, "rb") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(held, fcntl.LOCK_UN)
        return True


def test_a_folder_deleted_after_the_listing_is_rows_not_a_stopped_scan(
    corpus: Corpus, tmp_path: Path
) -> None:
    """A user's folder deleted while a long scan runs (here: before its part was written, the
    driver killed): the scan goes on, its files' rows say they are gone."""
    source, out = tmp_path / "uploads", tmp_path / "out"
    for folder, first in (("a", 0), ("b", 20)):
        (source / folder).mkdir(parents=True)
        for number in range(10):
            (source / folder / f"{number}.jpg").write_bytes(jpeg(first + number))
    options = ("--workers", "0", "--part-size", "10")
    assert scan(corpus, out, *options, source=str(source)).returncode == 0
    results = Results(out)
    results.part_path(0).unlink()
    shutil.rmtree(source / "a")
    ran = scan(corpus, out, *options, source=str(source))
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    rows = results.part_rows(0, ["key", "error", "error_kind"]).to_pylist()
    assert [row["key"] for row in rows] == [f"a/{number}.jpg" for number in range(10)]
    assert {(row["error_kind"], row["error"]) for row in rows} == {
        ("unreadable", "cannot read: No such file or directory")
    }
    assert json.loads((out / "summary.json").read_text())["errors"] == {"unreadable": 10}


def test_a_directory_of_another_scan_is_refused_unless_restarted(
    corpus: Corpus, uninterrupted: Results, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = Results(out)
    assert scan(corpus, out, "--workers", "0", "--part-size", "100").returncode == 0
    ran = scan(corpus, out, "--workers", "0", "--part-size", "50")
    assert ran.returncode == 1
    assert ran.stderr == (f"hashguard: {out} holds a scan of parts of 100 files (--part-size): "
                          "use --restart to start it again\n")  # fmt: skip
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("another source")
    ran = scan(corpus, out, "--workers", "0", "--part-size", "100", source=str(other))
    assert ran.returncode == 1 and f"holds a scan of {corpus.root}, not {other}" in ran.stderr
    ran = scan(corpus, out, "--workers", "0", "--part-size", "50", "--restart")
    assert ran.returncode == 0, ran.stderr
    assert len(first.done()) == 4
    assert comparable(first.rows()) == comparable(uninterrupted.rows())


def test_a_resume_matches_against_the_lists_as_they_are_now(
    corpus: Corpus, uninterrupted: Results, tmp_path: Path
) -> None:
    """Lists change while a long scan runs: a resume carries on with their versions now, the
    parts done keep theirs, and the summary says which versions matched how many files."""
    database = tmp_path / "lists.db"
    shutil.copy(corpus.database_url.removeprefix("sqlite:///"), database)
    url, out = f"sqlite:///{database}", tmp_path / "out"
    options = ("--workers", "0", "--part-size", "50")
    assert scan(corpus, out, *options, database_url=url).returncode == 0
    results = Results(out)
    results.part_path(3).unlink()  # as if stopped before its last part
    unmatched = [
        r for r in uninterrupted.rows().to_pylist() if r["pdq"] and not r["matches"]
        and r["pdq_quality"] >= MIN_QUALITY and r["pdq_stability"] >= MIN_STABILITY
    ]  # fmt: skip
    done, left = unmatched[0], unmatched[-1]  # in the first part, in the last
    engine = open_engine(url)
    ListStore(engine).apply(LIST, [Submission("pdq", done["pdq"]), Submission("pdq", left["pdq"])])
    ran = scan(corpus, out, *options, database_url=url)
    assert ran.returncode == 0, ran.stderr
    assert f"lists changed since this scan's last run ({LIST}: 12 -> 14)" in ran.stderr
    assert "--restart scans everything again" in ran.stderr
    rows = {row["key"]: row for row in results.rows().to_pylist()}
    assert rows[left["key"]]["matches"] and rows[left["key"]]["lists"] == '{"known": 14}'
    assert not rows[done["key"]]["matches"] and rows[done["key"]]["lists"] == '{"known": 12}'
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lists"] == {LIST: 14}
    assert summary["versions_used"] == {'{"known": 12}': {"parts": 3, "files": 150},
                                        '{"known": 14}': {"parts": 1, "files": 50}}  # fmt: skip
    # A list removed and made again under its name is another list: no resume.
    store = ListStore(engine)
    store.remove(LIST)
    store.create(LIST, "Test Org", Category.TEST)
    engine.dispose()
    ran = scan(corpus, out, *options, database_url=url)
    assert (ran.returncode, ran.stderr) == (1, f"hashguard: {out} holds a scan of lists since "
                                            f"removed and made again: {LIST}: use --restart to "
                                            "start it again\n")  # fmt: skip


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--list", "nothing"], "hashguard: no list named 'nothing'"),
        (["--address", "127.0.0.1:6379"], "--address is for --engine ray"),
        (
            ["--engine", "ray", "--workers", "0"],
            "--workers 0 (in this process) is for --engine local",
        ),
        (["--report-to", "http://127.0.0.1:9"], "--report-to needs --key"),
        (
            ["--engine", "ray", "--address", "127.0.0.1:6379", "--workers", "4"],
            "--workers is for a local Ray instance: with --address the cluster's CPUs are used",
        ),
    ],
)
def test_options_that_cannot_work_are_refused(
    corpus: Corpus, tmp_path: Path, options: list[str], message: str
) -> None:
    ran = scan(corpus, tmp_path / "out", *options)
    assert ran.returncode == 1 and message in ran.stderr, ran.stderr  # as the help says
    assert "Traceback" not in ran.stderr


def test_the_help_shows_the_defaults_and_exit_statuses_it_names(tmp_path: Path) -> None:
    shown = " ".join(hashguard("scan", "--help", env={"COLUMNS": "300"}).stdout.split())
    assert "[default: the machine's cores]" in shown
    assert "--min-stability" in shown and "[default: each signal's own]" in shown
    assert "--report-patience" in shown and "[default: 600.0]" in shown
    assert "1 when it could not be done, 2 for a usage error" in shown
    ran = hashguard("scan", str(tmp_path), "--out", str(tmp_path / "out"), "--list", "x",
                    "--part-size", "0")  # fmt: skip
    assert ran.returncode == 2 and "--part-size" in ran.stderr


def test_a_mistyped_out_removes_nothing(corpus: Corpus, tmp_path: Path) -> None:
    """A user's parts/ alone, or beside other files: refused, untouched, with --restart too."""
    for name, beside in (("alone", False), ("beside", True)):
        out = tmp_path / name
        (out / "parts").mkdir(parents=True)
        (out / "parts" / "design.txt").write_text("precious")
        if beside:
            (out / "readme.txt").write_text("n")
        for options in ((), ("--restart",)):
            ran = scan(corpus, out, "--workers", "0", *options)
            assert (ran.returncode, ran.stderr) == (
                1, f"hashguard: {out}: not empty, and holds no scan\n"
            )  # fmt: skip
        assert (out / "parts" / "design.txt").read_text() == "precious"


def test_sources_and_outputs_that_cannot_be_used_are_named(corpus: Corpus, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    ran = scan(corpus, tmp_path / "out", source=str(missing))
    assert (ran.returncode, ran.stderr) == (1, f"hashguard: {missing}: no such directory\n")
    ran = scan(corpus, tmp_path / "out", source="s3://")
    assert ran.stderr == "hashguard: s3://: expected s3://BUCKET[/PREFIX]\n"
    ran = scan(corpus, tmp_path / "out", source="nosuch://bucket")
    assert ran.stderr == (
        "hashguard: nosuch://bucket: unsupported storage protocol nosuch:// "
        "(a directory, or s3://)\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    ran = scan(corpus, tmp_path / "out", source=str(empty))
    assert ran.stderr == f"hashguard: {empty}: no files to scan (empty, or no such prefix)\n"
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    ran = scan(corpus, occupied)
    assert ran.stderr == f"hashguard: {occupied}: not empty, and holds no scan\n"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A real S3 API server on loopback (moto); its endpoint."""
    with moto_server() as endpoint:
        yield endpoint


def test_an_s3_prefix_gives_the_rows_of_the_same_files_in_a_directory(
    corpus: Corpus, uninterrupted: Results, s3: str, tmp_path: Path
) -> None:
    chosen = [p for p in sorted(corpus.root.rglob("*")) if p.is_file()][:60]
    large = os.urandom(9 * 1024 * 1024)  # over a block: streamed, not read at once
    fill_bucket(s3, "stored", {
        **{f"uploads/{p.relative_to(corpus.root).as_posix()}": p.read_bytes() for p in chosen},
        "uploads/sub/": b"", "uploads/zz-large.bin": large, "uploads-other/a.jpg": b"x",
    })  # fmt: skip
    out = tmp_path / "out"
    env = {**S3_ENV, "AWS_ENDPOINT_URL": s3}
    ran = scan(corpus, out, "--workers", "1", source="s3://stored/uploads/", env=env)
    assert ran.returncode == 0, ran.stderr
    rows = Results(out).rows()
    assert all(rows["etag"].to_pylist())
    [big] = rows.filter(
        pa.array([k == "zz-large.bin" for k in rows["key"].to_pylist()])
    ).to_pylist()
    assert (big["sha256"], big["md5"]) == (hashlib.sha256(large).hexdigest(),
                                           hashlib.md5(large).hexdigest())  # fmt: skip
    assert (big["size"], big["error_kind"]) == (len(large), "not media")
    rows = rows.slice(0, rows.num_rows - 1)
    wanted = {p.relative_to(corpus.root).as_posix() for p in chosen}
    whole = uninterrupted.rows()
    directory = whole.filter(pa.array([key in wanted for key in whole["key"].to_pylist()]))
    assert rows["key"].to_pylist() == sorted(wanted)
    assert comparable(rows, keyed=False) == comparable(directory, keyed=False)


def test_an_s3_store_lost_mid_scan_fails_the_scan_with_no_row_made_up(
    corpus: Corpus, uninterrupted: Results, tmp_path: Path
) -> None:
    """The parts the store was lost for are not written (no "unreadable" rows for files that
    are fine), the scan says so in one line, and a run once the store is back resumes."""
    port = free_port()
    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    store.start()
    endpoint = f"http://127.0.0.1:{port}"
    chosen = [p for p in sorted(corpus.root.rglob("*")) if p.is_file()][:80]
    fill_bucket(endpoint, "lost", {p.relative_to(corpus.root).as_posix(): p.read_bytes()
                               for p in chosen})  # fmt: skip
    out = tmp_path / "out"
    env = {**os.environ, **S3_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1"}
    command = [
        HASHGUARD, "scan", "s3://lost", "--list", LIST, "--out", str(out), "--quiet",
        "--database-url", corpus.database_url, "--workers", "0", "--part-size", "2",
    ]  # fmt: skip
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env,
                              start_new_session=True)  # fmt: skip
    results = Results(out)
    try:
        assert eventually(lambda: results.done(), timeout=120)
        os.killpg(driver.pid, signal.SIGSTOP)  # still, while its store goes away
        store.stop()
        os.killpg(driver.pid, signal.SIGCONT)
        _, said = driver.communicate(timeout=120)
    finally:
        driver.kill()
    written = results.done()
    assert driver.returncode == 1 and len(written) < 40, said
    assert said.startswith("hashguard: s3://lost/") and said.count("\n") == 1, said
    assert "cannot read (Could not connect" in said and "run the scan again to resume" in said
    assert not any(results.rows()["error_kind"].to_pylist())
    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port)  # the same objects
    store.start()
    try:
        ran = scan(corpus, out, "--workers", "0", "--part-size", "2", source="s3://lost",
                   env={**S3_ENV, "AWS_ENDPOINT_URL": endpoint})  # fmt: skip
    finally:
        store.stop()
    assert ran.returncode == 0, ran.stderr
    assert f"resuming: {len(written)} of 40 parts done before" in ran.stderr
    wanted = {p.relative_to(corpus.root).as_posix() for p in chosen}
    whole = uninterrupted.rows()
    directory = whole.filter(pa.array([key in wanted for key in whole["key"].to_pylist()]))
    assert results.rows()["key"].to_pylist() == sorted(wanted)
    assert comparable(results.rows(), keyed=False) == comparable(directory, keyed=False)


def test_a_service_that_says_retry_at_once_ends_the_scan_in_one_line(
    corpus: Corpus, tmp_path: Path
) -> None:
    """A proxy answering 503 with ``Retry-After: 0`` for good: tried again a second apart, not
    in a tight loop, until the patience runs out; then one line, no traceback."""
    with Scripted([(503, {"Retry-After": "0"})] * 100_000) as down:
        ran = scan(corpus, tmp_path / "out", "--report-to", down.url, "--key", "k",
                   "--report-patience", "2")  # fmt: skip
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    tried = re.search(r"refused the report: HTTP 503 .* \(tried (\d+) times\)\n$", ran.stderr)
    assert tried is not None, ran.stderr
    assert int(tried[1]) == len(down.bodies) <= 4


def test_matched_files_open_one_detection_each_on_a_service(corpus: Corpus, tmp_path: Path) -> None:
    engine = open_engine(corpus.database_url)
    ServiceStore(engine).create("photos")
    token = ApiKeyStore(engine).create(Role.MATCHER, name="photos check", service="photos")[1]
    engine.dispose()
    out, folder = tmp_path / "out", corpus.root / "00"  # a seventh of the files: faster
    with running(corpus.database_url) as server:
        wrong = ["--workers", "0", "--report-to", server.url, "--key", "not-a-key"]
        ran = scan(corpus, out, *wrong, source=str(folder))
        assert ran.returncode == 1 and "refused the report: HTTP 401" in ran.stderr, ran.stderr
        assert not out.exists()  # refused before any work
        # Scanned first without reporting, then its finished parts reported by a rerun.
        assert scan(corpus, out, "--workers", "0", source=str(folder)).returncode == 0
        assert not server.get("/v1/detections", "reviewer").json()["detections"]
        options = ["--workers", "0", "--report-to", server.url, "--key", token]
        ran = scan(corpus, out, *options, source=str(folder))
        assert ran.returncode == 0, ran.stderr
        reported = server.get("/v1/detections", "reviewer").json()["detections"]
        # Every part scanned and reported again: no detection twice.
        again = scan(corpus, out, *options, "--restart", source=str(folder))
        assert again.returncode == 0, again.stderr
        found = server.get("/v1/detections", "reviewer").json()["detections"]
        # Reported to one service, the scan is not reported to another.
        options[3] = server.url.replace("127.0.0.1", "localhost")  # the same service, named
        ran = scan(corpus, out, *options, source=str(folder))  # otherwise: another target
        assert ran.returncode == 1 and f"matches reported to {server.url.rstrip('/')}" in ran.stderr
        small = Results(tmp_path / "small")
        options = ["--workers", "0", "--part-size", "5"]
        ran = scan(corpus, small.directory, *options, "--report-to", server.url, "--key", token,
                   source=str(folder))  # fmt: skip
        assert ran.returncode == 0, ran.stderr
    # Two parts left to do, one with matches: a run without --report-to says one waits.
    matching = {n for n in small.done() if any(small.part_rows(n, ["matches"])["matches"])}
    for number in (min(matching), min(small.done() - matching)):
        small.part_path(number).unlink()
        (small.parts_directory / f"part-{number:05d}.reported").unlink()
    ran = scan(corpus, small.directory, *options, source=str(folder))
    assert f"note: 1 parts' matches are not reported to {server.url.rstrip('/')} yet" in ran.stderr
    assert len(reported) == len(found)
    refs = sorted(d["content_ref"] for d in found)
    assert refs == sorted(f"{corpus.root}/{key}" for key in corpus.planted if key.startswith("00/"))
    assert len(refs) >= 2
