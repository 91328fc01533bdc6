"""``hashguard scan`` on Ray, against the reference engines: 2,000 generated files (planted
edits of listed scenes, broken files) give the same rows in this process, in a local process
pool and on a real local Ray cluster (two nodes, one Ray start for the module); a Ray worker
killed mid-scan and a node removed mid-scan change nothing in the result."""

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import ray

from hashguard.cluster import scan as cluster_scan
from hashguard.cluster.scan import scan_on_ray
from hashguard.matching import Matcher
from hashguard.scan.pool import scan_locally
from hashguard.scan.source import StoredFile, open_source
from hashguard.scan.work import ScanSettings, scan_part
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.media import jpeg
from support.scan_corpus import LIST, Corpus, comparable, make_corpus
from support.waiting import eventually

# One xdist worker runs the module (make test: --dist loadgroup): one corpus, one Ray instance.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("cluster-scan")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("scan"), 2000)


@pytest.fixture(scope="module")
def matcher(corpus: Corpus) -> Iterator[Matcher]:
    engine = open_engine(corpus.database_url)
    yield Matcher(ListStore(engine), [LIST])
    engine.dispose()


def _parts(root: Path, size: int, limit: int | None = None) -> list[tuple[int, Any]]:
    files = list(open_source(str(root)).files())[:limit]
    return list(enumerate(files[start : start + size] for start in range(0, len(files), size)))


def _rows(found: Iterator[tuple[int, pa.Table]]) -> pa.Table:
    return pa.concat_tables(rows for _, rows in sorted(found, key=lambda p: p[0]))


@pytest.fixture(scope="module")
def reference(corpus: Corpus, matcher: Matcher) -> pa.Table:
    """The single-process run."""
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    reader = open_source(str(corpus.root)).reader
    return _rows(scan_locally(_parts(corpus.root, 250), reader, matcher, settings, 0))


def test_the_reference_run_finds_every_planted_edit_and_names_each_broken_file(
    corpus: Corpus, reference: pa.Table
) -> None:
    rows = {row["key"]: row for row in reference.to_pylist()}
    assert len(rows) == 2000
    matched = {key for key, row in rows.items() if row["matches"]}
    assert matched == set(corpus.planted)
    edits = {corpus.planted[key]: rows[key]["matches"][0]["variant"] for key in matched}
    assert edits["mirrored"] != "original" and edits["reencoded"] == "original"
    broken = {key: row["error_kind"] for key, row in rows.items() if row["error"]}
    assert broken == corpus.broken
    assert all(rows[key]["md5"] for key, kind in corpus.broken.items() if kind != "empty")


def test_the_process_pool_and_ray_give_the_same_rows(
    corpus: Corpus, matcher: Matcher, reference: pa.Table, ray_two_nodes: Any
) -> None:
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    reader = open_source(str(corpus.root)).reader
    parts = _parts(corpus.root, 100)
    pooled = _rows(scan_locally(parts, reader, matcher, settings, 2))
    loads: Counter[int] = Counter()
    on_ray = _rows(scan_on_ray(parts, reader, matcher, settings, 2, loads=loads))
    assert comparable(pooled) == comparable(reference)
    assert comparable(on_ray) == comparable(reference)
    # Each worker process unpickled the Matcher for its first part only.
    assert set(loads.values()) == {1} and len(loads) < len(parts)


def test_no_part_left_starts_no_ray(
    corpus: Corpus, matcher: Matcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished scan run again on Ray: nothing to do, so no Ray instance is started."""

    def started() -> None:
        raise AssertionError("Ray started for no part")

    monkeypatch.setattr(cluster_scan, "_ray", started)
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    reader = open_source(str(corpus.root)).reader
    assert list(scan_on_ray([], reader, matcher, settings, 2)) == []


def _scan_workers() -> list[int]:
    """Ray's worker processes running a scan task now (Ray titles them by their task)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            command = Path("/proc", name, "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # not a process, or one that ended
        if name.isdigit() and b"_scan_part" in command:
            found.append(int(name))
    return found


def _parent(pid: int) -> int | None:
    """The parent of process ``pid``, or None once it has ended."""
    try:
        return int(Path("/proc", str(pid), "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _scan_while(
    corpus: Corpus, matcher: Matcher, limit: int, strike: Any, size: int = 10
) -> tuple[pa.Table, list[int]]:
    """Scan the first ``limit`` files on Ray, ``strike()`` once a part is done; the rows, and
    the order the parts finished in."""
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    reader = open_source(str(corpus.root)).reader
    found, order = [], []
    for number, rows in scan_on_ray(_parts(corpus.root, size, limit), reader, matcher, settings, 2):
        found.append((number, rows))
        order.append(number)
        if len(order) == 1:
            strike()
    return _rows(iter(found)), order


def test_a_killed_ray_worker_changes_nothing(
    corpus: Corpus, matcher: Matcher, reference: pa.Table, ray_two_nodes: Any
) -> None:
    killed: list[int] = []

    def kill_a_worker() -> None:
        [worker, *_] = eventually(_scan_workers)
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)

    rows, _ = _scan_while(corpus, matcher, 100, kill_a_worker)
    assert killed
    assert comparable(rows) == comparable(reference.slice(0, 100))


CRASH = b"kills-the-decoder"


@pytest.mark.parametrize("fault", ["exit", "out of memory"])
def test_a_file_that_kills_its_ray_worker_is_the_only_error_row(
    corpus: Corpus,
    matcher: Matcher,
    reference: pa.Table,
    ray_two_nodes: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """A JPEG that decodes (the bytes after its end are ignored) but kills PDQ's decoder in
    every Ray worker process (its process exits, or Ray's memory monitor fails the task with
    OutOfMemoryError): its part's task dies every time, then its own; the scan goes on, and
    the file is an error row with its digests."""
    monkeypatch.setattr(cluster_scan, "RETRIES", 0)  # a worker start less per retry: seconds
    root = tmp_path / "media"
    copied = [p for p in sorted(corpus.root.rglob("*")) if p.is_file()][:15]
    for path in copied:
        (root / path.relative_to(corpus.root)).parent.mkdir(parents=True, exist_ok=True)
        (root / path.relative_to(corpus.root)).write_bytes(path.read_bytes())
    crashing = "00/crash.jpg"
    (root / crashing).write_bytes(jpeg(7, 96, 64) + CRASH)
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    reader = open_source(str(root)).reader
    [alone] = scan_part([StoredFile(crashing, 0)], reader, matcher, settings).to_pylist()
    assert alone["pdq"] and alone["error"] is None  # in this process, without the fault

    def decoder_fault() -> None:
        """In each Ray worker process of the job (Ray's setup hook; pickled by value)."""
        from hashguard.signals import batch

        real = batch.hash_variants

        def crashing(source: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(source, bytes) and source.endswith(b"kills-the-decoder"):
                os._exit(3)  # what a decoder fault does to its process
            return real(source, *args, **kwargs)

        batch.hash_variants = crashing

    def memory_monitor() -> None:
        """Ray's memory monitor killing the tasks that decode the file: what ``ray.get``
        raises for them (OutOfMemoryError) instead of their result."""
        from ray.exceptions import OutOfMemoryError

        from hashguard.cluster import scan as on_ray

        real_part, real_file = on_ray.scan_part, on_ray.hash_stored
        killed = OutOfMemoryError("Task was killed due to the node running low on memory.")

        def part(files: Any, *args: Any) -> Any:
            if any(file.key == crashing for file in files):
                raise killed
            return real_part(files, *args)

        def file(file: Any, reader: Any, settings: Any, signals: Any) -> Any:
            if file.key == crashing and (not signals or "pdq" in signals):
                raise killed
            return real_file(file, reader, settings, signals)

        on_ray.scan_part, on_ray.hash_stored = part, file

    ray.shutdown()  # a job of its own, whose workers run the hook
    ray.init(address=ray_two_nodes.address, log_to_driver=False,
             runtime_env={"worker_process_setup_hook":
                          decoder_fault if fault == "exit" else memory_monitor})  # fmt: skip
    try:
        found = list(scan_on_ray(_parts(root, 8), reader, matcher, settings, 2))
    finally:
        ray.shutdown()
        ray.init(address=ray_two_nodes.address, log_to_driver=False)
    assert sorted(number for number, _ in found) == [0, 1]
    rows = {row["key"]: row for row in _rows(iter(found)).to_pylist()}
    crashed = rows.pop(crashing)
    keys = {path.relative_to(corpus.root).as_posix() for path in copied}
    expected = reference.filter(pa.array([key in keys for key in reference["key"].to_pylist()]))
    assert comparable(pa.Table.from_pylist(list(rows.values()), reference.schema)) == comparable(
        expected
    )
    assert crashed["error_kind"] == "crashed"
    assert crashed["error"] == "the decoder process crashed on this file (pdq)"
    assert crashed["pdq"] is None and crashed["matches"] == []
    digests = ("sha256", "md5", "sha1")
    assert [crashed[d] for d in digests] == [alone[d] for d in digests]


def test_a_removed_node_changes_nothing(
    corpus: Corpus, matcher: Matcher, reference: pa.Table, ray_two_nodes: Any
) -> None:
    """Last in the module: it leaves the shared cluster one node short."""
    removed = threading.Event()

    def remove_a_node() -> None:
        """The node of a worker process running a part now (its raylet is its parent; a
        process of an earlier job still titled by its task, or one ending and taken over by
        init, has another parent)."""
        raylets = {node.all_processes["raylet"][0].process.pid: node
                   for node in ray_two_nodes.worker_nodes}  # fmt: skip

        def running() -> list[Any]:
            return [raylets[parent] for parent in map(_parent, _scan_workers())
                    if parent in raylets]  # fmt: skip

        [node, *_] = eventually(running)
        ray_two_nodes.remove_node(node)
        removed.set()

    rows, _ = _scan_while(corpus, matcher, 100, remove_a_node)
    assert removed.is_set()
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2  # the head and one node
    assert comparable(rows) == comparable(reference.slice(0, 100))
