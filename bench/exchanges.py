"""Exchange fetches: NCMEC entries fetched and applied through ``Sync.fetch``, and how soon a
serving Matcher has them, against a full index rebuild after each fetch (HMA's behaviour).

    make bench-exchanges   # or: .venv/bin/python bench/exchanges.py [--entries N] [--delta M]

The NCMEC stand-in of the tests (``tests/support/exchanges/ncmec.py``, a real HTTP server on
loopback, 1,000 entries a page) holds N entries (default 1M) of one member, each an image with a
random PDQ hash, changed over the last 30 days. On a SQLite file in a temporary directory:

  (a) the exchange is added and fetched with ``Sync.fetch`` until it is up to date (each fetch
      applies at most Sync's cap of records in one transaction, and the next goes on from its
      checkpoint): the time, and for a Matcher following the list's change log (as
      ``hashguard serve``'s does) its lag after each fetch's commit: the time until it holds the
      list's new version (the median and the maximum over the fetches, and after the last);
  (b) the reference: a full rebuild of the list's index (a new Matcher loading every entry),
      what HMA does after each fetch before a new entry can match;
  (c) a delta of M changed entries (default 10,000: half new, half deleted) fetched with one
      ``Sync.fetch``: the time, the following Matcher's lag, and the full rebuild again.
"""

import argparse
import ipaddress
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Sync
from hashguard.matching import Matcher
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from report import table

from support.exchanges.ncmec import Entry, NcmecStandIn

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def random_pdqs(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [row.tobytes().hex() for row in rng.integers(0, 256, (count, 32), dtype=np.uint8)]


def lag(matcher: Matcher, store: ListStore, name: str) -> float:
    """Seconds from now until the following ``matcher`` holds the list's current version."""
    version = store.get(name).version
    committed = time.perf_counter()
    pause = threading.Event()
    while matcher.versions()[name] < version:
        pause.wait(0.001)
    matcher.refresh()  # waits for the follower's refresh to finish its index update
    return time.perf_counter() - committed


def rebuild(store: ListStore, name: str) -> tuple[float, int]:
    """A full rebuild of the list's index: seconds, and the entries it can match."""
    start = time.perf_counter()
    matcher = Matcher(store, [name])
    seconds = time.perf_counter() - start
    size = sum(matcher.sizes().values())
    matcher.close()
    return seconds, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--delta", type=int, default=10_000)
    options = parser.parse_args()
    size, delta = options.entries, options.delta
    now = datetime.now(UTC)
    first = now - timedelta(days=30)
    span = int((now - timedelta(hours=1) - first).total_seconds())
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as directory, NcmecStandIn(page_size=1000) as ncmec:
        values = random_pdqs(size + delta, seed=1)
        stamps = np.random.default_rng(2).integers(0, span, size)
        ncmec.add_many([
            Entry(7, f"e{n}", "image", int(first.timestamp()) + int(stamps[n]), "A1",
                  {"pdq": values[n]})
            for n in range(size)
        ])  # fmt: skip
        print(f"stand-in holds {size:,} entries", flush=True)
        engine = open_engine(f"sqlite:///{Path(directory) / 'exchanges.db'}")
        store = ListStore(engine)
        exchanges = Exchanges(engine, store, Sealer(secrets.token_bytes(32)))
        credentials = {"username": ncmec.username, "password": ncmec.password}
        exchanges.add("ncmec", "ncmec", {"base_url": ncmec.url}, credentials)
        sync = Sync(exchanges, networks=LOOPBACK)
        matcher = Matcher(store, ["ncmec"])
        matcher.follow(interval=0.05)
        try:
            # (a) the whole list, fetch after fetch
            lags: list[float] = []
            fetches = records = 0
            start = time.perf_counter()
            while True:
                fetched = sync.fetch("ncmec")
                assert fetched.succeeded, fetched.error
                fetches += 1
                records += fetched.records
                lags.append(lag(matcher, store, "ncmec"))
                print(f"fetch {fetches}: {fetched.records:,} records, matcher lag "
                      f"{lags[-1] * 1000:.0f} ms", flush=True)  # fmt: skip
                if fetched.up_to_date:
                    break
            seconds = time.perf_counter() - start
            held = sum(matcher.sizes().values())
            assert held == size, (held, size)
            rows.append([f"fetch and apply {size:,} NCMEC entries ({records:,} records, "
                         f"{fetches} fetches)", f"{seconds:.1f} s", ""])  # fmt: skip
            rows.append(["following Matcher's lag after each fetch's commit",
                         f"median {statistics.median(lags) * 1000:.0f} ms, max "
                         f"{max(lags) * 1000:.0f} ms", ""])  # fmt: skip
            full, entries = rebuild(store, "ncmec")
            ratio = f"rebuild / last lag: {full / max(lags[-1], 1e-3):,.1f}"
            rows.append([f"full index rebuild of {entries:,} entries (HMA, after each fetch)",
                         f"{full:.1f} s", ratio])  # fmt: skip

            # (c) a delta: half the changes new entries, half deletions, after the checkpoint
            at = exchanges.status("ncmec").checkpoint_ts or int(now.timestamp())
            half = delta // 2
            ncmec.add_many(
                [Entry(8, f"d{n}", "image", at, "B1", {"pdq": values[size + n]})
                 for n in range(delta - half)]
                + [Entry(7, f"e{n}", "image", at, deleted=True) for n in range(half)]
            )  # fmt: skip
            settled = threading.Event()  # the plug-in leaves NCMEC's newest 5 seconds for later
            while datetime.now(UTC) - timedelta(seconds=6) < datetime.fromtimestamp(at, UTC):
                settled.wait(0.1)
            start = time.perf_counter()
            fetched = sync.fetch("ncmec")
            seconds = time.perf_counter() - start
            assert fetched.succeeded, fetched.error
            after = lag(matcher, store, "ncmec")
            assert sum(matcher.sizes().values()) == size - half + (delta - half)
            step = (f"fetch and apply a delta of {delta:,} changed entries ({half:,} deleted; "
                    f"{fetched.records:,} records)")  # fmt: skip
            rows.append([step, f"{seconds:.2f} s", ""])
            rows.append(["following Matcher's lag after the delta's commit",
                         f"{after * 1000:.0f} ms", ""])  # fmt: skip
            full, entries = rebuild(store, "ncmec")
            ratio = f"rebuild / lag: {full / max(after, 1e-3):,.1f}"
            rows.append([f"full index rebuild of {entries:,} entries (HMA, after the delta)",
                         f"{full:.1f} s", ratio])  # fmt: skip
        finally:
            matcher.close()
            engine.dispose()
    table(["SQLite, one process", "measured", "ratio"], rows)


if __name__ == "__main__":
    sys.exit(main())
