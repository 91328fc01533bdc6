"""Replicated matchers: how soon a change made through one replica holds on another, and how
much faster a replica loads its lists from a snapshot than from the database.

    scripts/with-postgresql .venv/bin/python bench/scale_replicas.py [--changes 50]
        [--sizes 1000000]

(a) Propagation: two ``hashguard serve`` processes over one PostgreSQL database; ``--changes``
    changes made through replica A (a new entry added, then that entry delisted, in turn),
    each followed by polling replica B's ``/v1/match/hashes`` every 10 ms until it holds there.
    The delay is from A's answer (the change committed) to B's first answer that holds it;
    p50 and p99 are reported. Target (issue 22): p99 <= 1 s, with the default refresh interval
    of 0.2 s (a change made elsewhere waits at most that long, plus the reading).
(b) Load time of one list of each size (random PDQ hashes), in-process: a Matcher reading the
    entries from the database, and one reading them from a signed snapshot (checked, then
    loaded) and catching up from the database.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from hashguard.lists import snapshot
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.store.database import open_engine, temporary_database
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

POLL_SECONDS = 0.01


def random_values(count: int, seed: int) -> list[str]:
    """``count`` random PDQ hashes (64 hex digits), benign values."""
    rows = np.random.default_rng(seed).integers(0, 256, (count, 32), dtype=np.uint8)
    return [row.tobytes().hex() for row in rows]


def propagation(
    writer: httpx.Client,
    reader: httpx.Client,
    curator: str,
    matcher: str,
    list_name: str,
    count: int,
    timeout: float = 10.0,
    seed: int = 22,
) -> list[float]:
    """Make ``count`` changes to ``list_name`` through ``writer`` (a replica, with the
    ``curator`` token): in turn a new entry added, then that entry delisted; after each, poll
    ``reader`` (another replica, with the ``matcher`` token) until it holds there. The delay of
    each, in seconds. Raises TimeoutError naming the change that did not hold within
    ``timeout`` seconds, and RuntimeError for a change refused."""
    delays = []
    values = random_values((count + 1) // 2, seed)
    for number in range(count):
        value = values[number // 2]
        if number % 2 == 0:
            # HMA's route: one hash added at once (an import runs as a job of its own).
            answer = writer.post(f"/c/bank/{list_name}/signal", headers=_bearer(curator),
                                 json={"pdq": value})  # fmt: skip
            listed = True
        else:
            answer = writer.post(
                f"/v1/lists/{list_name}/changes",
                headers=_bearer(curator),
                json={"kind": "delist", "signal": "pdq", "value": value, "reason": "bench"},
            )
            listed = False
        if answer.status_code != 200:
            raise RuntimeError(f"change {number}: {answer.status_code} {answer.text}")
        made = time.perf_counter()
        deadline = made + timeout
        while _matches(reader, matcher, value) != listed:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"change {number} did not hold within {timeout} s")
            time.sleep(POLL_SECONDS)
        delays.append(time.perf_counter() - made)
    return delays


def _matches(reader: httpx.Client, token: str, value: str) -> bool:
    answer = reader.post("/v1/match/hashes", headers=_bearer(token),
                         json={"hashes": [{"signal": "pdq", "value": value}]})  # fmt: skip
    answer.raise_for_status()
    return bool(answer.json()["results"][0]["matches"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def percentile(delays: list[float], share: float) -> float:
    """The ``share`` (0-1) percentile of ``delays``, nearest rank."""
    ranked = sorted(delays)
    return ranked[min(len(ranked) - 1, max(0, int(np.ceil(share * len(ranked))) - 1))]


def load_times(url: str, size: int, scratch: Path, repeats: int = 3) -> tuple[float, float]:
    """Median seconds to load a list of ``size`` random PDQ hashes into a Matcher from the
    database, and from a signed snapshot of it (read, verified, loaded, caught up), over
    ``repeats`` rounds; the load that goes first alternates, so that neither always finds the
    caches the other warmed."""
    engine = open_engine(url)
    store = ListStore(engine)
    name = f"load{size}"
    store.create(name, "Bench Org", Category.TEST)
    store.apply(name, (Submission("pdq", value) for value in random_values(size, size)))
    key = scratch / f"{name}.key"
    keys.generate(key)
    path = scratch / f"{name}.snapshot"
    snapshot.write(path, store, [name], keys.load(key))
    public = keys.read_public(key.with_name(key.name + ".pub"))

    def from_database() -> Matcher:
        return Matcher(store, [name])

    def from_snapshot() -> Matcher:
        matcher = Matcher(snapshot.SnapshotSource(snapshot.read(path, public), store), [name])
        matcher.refresh()
        return matcher

    seconds: dict[str, list[float]] = {"database": [], "snapshot": []}
    loads = [("database", from_database), ("snapshot", from_snapshot)]
    for round_number in range(repeats):
        sizes = []
        for kind, load in loads if round_number % 2 == 0 else loads[::-1]:
            started = time.perf_counter()
            sizes.append(load().sizes())
            seconds[kind].append(time.perf_counter() - started)
        assert sizes[0] == sizes[1]
    engine.dispose()
    return statistics.median(seconds["database"]), statistics.median(seconds["snapshot"])


def replicas(url: str, changes: int, scratch: Path) -> list[float]:
    """The propagation delays of ``changes`` changes between two ``hashguard serve``
    replicas over ``url``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support.server import running  # the tests' real-process server

    ListStore(open_engine(url)).create("replicated", "Bench Org", Category.TEST)
    with running(url) as a, running(url, roles=False) as b:
        return propagation(a.client, b.client, a.tokens["curator"], a.tokens["matcher"],
                           "replicated", changes)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--sizes", default="1000000", help="list sizes for the load times")
    options = parser.parse_args()
    server = os.environ.get("HASHGUARD_TEST_POSTGRES_URL")
    if not server:
        sys.exit("run under scripts/with-postgresql (needs a PostgreSQL server)")
    with tempfile.TemporaryDirectory() as directory, temporary_database(server) as url:
        scratch = Path(directory)
        delays = replicas(url, options.changes, scratch)
        print(f"propagation of {len(delays)} changes: p50 {statistics.median(delays) * 1000:.0f}"
              f" ms, p99 {percentile(delays, 0.99) * 1000:.0f} ms, max "
              f"{max(delays) * 1000:.0f} ms (target p99 <= 1000 ms)")  # fmt: skip
        print("| entries | from the database | from a snapshot | ratio |")
        print("|---:|---:|---:|---:|")
        for size in (int(s) for s in options.sizes.split(",")):
            database_seconds, snapshot_seconds = load_times(url, size, scratch)
            print(f"| {size:,} | {database_seconds:.2f} s | {snapshot_seconds:.2f} s | "
                  f"{database_seconds / snapshot_seconds:.1f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
