"""Exchange fetches: NCMEC entries fetched and applied through ``Sync.fetch``, and how soon a
serving Matcher has them, against a file import of the same entries and a full index rebuild
after each fetch (HMA's behaviour), hashguard's and HMA's own.

    make bench-exchanges   # or: .venv/bin/python bench/exchanges.py [--entries N] [--delta M]

The NCMEC stand-in of the tests (``tests/support/exchanges/ncmec.py``, a real HTTP server on
loopback, 1,000 entries a page) runs in a process of its own, its entries' XML built before the
clock starts, so the figures are hashguard's cost, not the stand-in's. It holds N entries
(default 1M) of one member, each an image with a random PDQ hash, changed over the last 30
days. On SQLite files in a temporary directory:

  (r) the references, measured in the same run: the same N PDQ hashes imported from a plain
      text file (``hashguard lists import --format text``), and the same N entries from an
      NCMEC XML file (``--format ncmec``), each into a list of its own, one transaction;
  (a) the exchange is added and fetched with ``Sync.fetch`` until it is up to date (each fetch
      applies at most Sync's cap of records in one transaction, and the next goes on from its
      checkpoint): the time in ``Sync.fetch``, the whole time with the waits for the Matcher
      between fetches, and for a Matcher following the list's change log (as
      ``hashguard serve``'s does) its lag after each fetch's commit: the time until it holds the
      list's new version (the median and the maximum over the fetches, and after the last);
  (b) a full rebuild of the list's index, what HMA does after each fetch before a new entry
      can match: a new hashguard Matcher loading every entry from the database, and HMA's own
      (OpenMediaMatch ``background_tasks/build_index.py``: every signal of the type read from
      its database, then the signal type's index class ``build``), threatexchange's
      ``PDQIndex2.build`` (pytx 2.0's PDQ index) and ``PdqSignal.get_index_cls().build``
      (``PDQIndex``, what ``build_index`` calls with threatexchange 1.2.17) over the same
      hashes, read from the database before the clock starts: build time only, without HMA's
      database read or its storing the built index;
  (c) a delta of M changed entries (default 10,000: half new, half deleted) fetched with one
      ``Sync.fetch``: the time, the following Matcher's lag, and the full rebuilds again.

Target (issue 20): (a) within 2x the plain text import of (r).
"""

import argparse
import ipaddress
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from threatexchange.signal_type.pdq.pdq_index2 import PDQIndex2
from threatexchange.signal_type.pdq.signal import PdqSignal as TePdqSignal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Sync
from hashguard.lists.formats import ncmec as ncmec_file
from hashguard.lists.formats import plain
from hashguard.lists.model import Category, EntryStatus
from hashguard.matching import Matcher
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from report import table

from support.exchanges.ncmec import NAMESPACE, Entry, NcmecStandIn

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


def random_pdqs(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [row.tobytes().hex() for row in rng.integers(0, 256, (count, 32), dtype=np.uint8)]


def entries(size: int, first: int, seed: int = 2) -> list[Entry]:
    """The stand-in's entries: member 7's images with random PDQ hashes, after ``first``."""
    values = random_pdqs(size, seed=1)
    span = 30 * 86400 - 3600
    stamps = np.random.default_rng(seed).integers(0, span, size)
    return [Entry(7, f"e{n}", "image", first + int(stamps[n]), "A1", {"pdq": values[n]})
            for n in range(size)]  # fmt: skip


def serve(pipe: Any, size: int, first: int) -> None:
    """The NCMEC stand-in in this process: its address and login sent on ``pipe``, then lists
    of entries added (each answered with the count held) until None comes."""
    with NcmecStandIn(page_size=1000) as ncmec:
        ncmec.add_many(entries(size, first))
        pipe.send((ncmec.url, ncmec.username, ncmec.password))
        while (more := pipe.recv()) is not None:
            ncmec.add_many(more)
            pipe.send(len(ncmec.entries))


def write_files(directory: Path, size: int, first: int) -> tuple[Path, Path]:
    """The stand-in's entries as a plain text list of their hashes and an NCMEC XML file."""
    text, xml = directory / "entries.txt", directory / "entries.xml"
    held = entries(size, first)
    text.write_text("".join(entry.fingerprints["pdq"] + "\n" for entry in held))
    members = {7: "Example ESP"}
    with open(xml, "w") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<queryResult xmlns="{NAMESPACE}">')
        out.write(f'<images count="{size}">')
        out.writelines(entry.xml(members) for entry in held)
        out.write("</images></queryResult>\n")
    return text, xml


def file_imports(directory: Path, size: int, first: int) -> tuple[list[list[str]], float, float]:
    """(r): the same entries imported from files, each into a list of a database of its own;
    the rows, and the text import's time and processor time."""
    text, xml = write_files(directory, size, first)
    rows = []
    seconds: dict[str, float] = {}
    cpus: dict[str, float] = {}  # this thread's processor time: the machine may be shared
    for name, records in (("text", lambda: plain.read(text, "pdq")),
                          ("ncmec", lambda: ncmec_file.read(xml))):  # fmt: skip
        engine = open_engine(f"sqlite:///{directory / f'file-{name}.db'}")
        store = ListStore(engine)
        store.create(name, "Hotline NL", Category.KNOWN_CSAM)
        start, cpu = time.perf_counter(), time.thread_time()
        summary = store.apply(name, records())
        seconds[name] = time.perf_counter() - start
        cpus[name] = time.thread_time() - cpu
        engine.dispose()
        assert summary.added == size, (name, summary)
        print(f"file import ({name}): {seconds[name]:.1f} s ({cpus[name]:.1f} s CPU)", flush=True)
    rows.append([f"reference: import the same {size:,} PDQ hashes from a plain text file "
                 "(`lists import --format text`)",
                 f"{seconds['text']:.1f} s ({cpus['text']:.1f} s CPU)", ""])  # fmt: skip
    rows.append([f"reference: import the same {size:,} entries from an NCMEC XML file "
                 "(`lists import --format ncmec`)",
                 f"{seconds['ncmec']:.1f} s ({cpus['ncmec']:.1f} s CPU)",
                 f"/ text: {seconds['ncmec'] / seconds['text']:.1f} "
                 f"(CPU {cpus['ncmec'] / cpus['text']:.1f})"])  # fmt: skip
    return rows, seconds["text"], cpus["text"]


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


def hma_rebuilds(
    store: ListStore, name: str, loaded: int, lag: float, lag_name: str, after: str
) -> list[list[str]]:
    """HMA's index rebuild (threatexchange's ``build``) over the list's active PDQ hashes, read
    before the clock starts (the ``loaded`` a hashguard Matcher holds): a row for each index
    class, with its ratio to hashguard's ``lag`` (named ``lag_name``)."""
    _, held = store.entries(name, [EntryStatus.ACTIVE])
    signals = [(entry.value, entry.id) for entry in held if entry.signal == "pdq"]
    assert len(signals) == loaded, (len(signals), loaded)
    rows = []
    for label, index_class in (("PDQIndex2.build", PDQIndex2),
                               ("PdqSignal.get_index_cls().build (PDQIndex)",
                                TePdqSignal.get_index_cls())):  # fmt: skip
        start, cpu = time.perf_counter(), time.process_time()  # faiss may use more threads
        index = index_class.build(signals)
        seconds, cpus = time.perf_counter() - start, time.process_time() - cpu
        assert len(index) == len(signals), (label, len(index), len(signals))
        del index
        print(f"HMA rebuild ({label}): {seconds:.1f} s ({cpus:.1f} s CPU)", flush=True)
        rows.append([f"HMA's index rebuild: threatexchange {label} over the same {len(signals):,} "
                     f"hashes ({after}; build time only, from hashes already in memory: HMA "
                     "also reads them from its database first)",
                     f"{seconds:.1f} s ({cpus:.1f} s CPU)",
                     f"HMA rebuild / hashguard {lag_name}: "
                     f"{seconds / max(lag, 1e-3):,.1f}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--delta", type=int, default=10_000)
    options = parser.parse_args()
    size, delta = options.entries, options.delta
    now = datetime.now(UTC)
    first = int((now - timedelta(days=30)).timestamp())
    rows: list[list[str]] = []
    spawn = multiprocessing.get_context("spawn")
    pipe, child_end = spawn.Pipe()
    server = spawn.Process(target=serve, args=(child_end, size, first), daemon=True)
    server.start()
    with tempfile.TemporaryDirectory() as directory:
        url, username, password = pipe.recv()
        print(f"stand-in holds {size:,} entries", flush=True)
        rows, reference, reference_cpu = file_imports(Path(directory), size, first)
        engine = open_engine(f"sqlite:///{Path(directory) / 'exchanges.db'}")
        store = ListStore(engine)
        exchanges = Exchanges(engine, store, Sealer(secrets.token_bytes(32)), networks=LOOPBACK)
        credentials = {"username": username, "password": password}
        exchanges.add("ncmec", "ncmec", {"base_url": url}, credentials)
        sync = Sync(exchanges, networks=LOOPBACK)
        matcher = Matcher(store, ["ncmec"])
        matcher.follow(interval=0.05)
        try:
            # (a) the whole list, fetch after fetch
            lags: list[float] = []  # after the fetches that applied records
            fetches = records = 0
            fetching = 0.0  # in Sync.fetch alone, without the waits for the Matcher between
            fetching_cpu = 0.0  # this thread's processor time in Sync.fetch
            start = time.perf_counter()
            while True:
                began, cpu = time.perf_counter(), time.thread_time()
                fetched = sync.fetch("ncmec")
                fetching += time.perf_counter() - began
                fetching_cpu += time.thread_time() - cpu
                assert fetched.succeeded, fetched.error
                fetches += 1
                records += fetched.records
                behind = lag(matcher, store, "ncmec")
                if fetched.records:  # not the last fetch's "nothing new": no lag to speak of
                    lags.append(behind)
                print(f"fetch {fetches}: {fetched.records:,} records, matcher lag "
                      f"{behind * 1000:.0f} ms", flush=True)  # fmt: skip
                if fetched.up_to_date:
                    break
            seconds = time.perf_counter() - start
            held = sum(matcher.sizes().values())
            assert held == size, (held, size)
            rows.append([f"fetch and apply {size:,} NCMEC entries ({records:,} records, "
                         f"{fetches} fetches; time in Sync.fetch)",
                         f"{fetching:.1f} s ({fetching_cpu:.1f} s CPU)",
                         f"/ text import: {fetching / reference:.1f} (CPU "
                         f"{fetching_cpu / reference_cpu:.1f}; target <= 2)"])  # fmt: skip
            rows.append(["the same with the waits for the following Matcher after each fetch",
                         f"{seconds:.1f} s", ""])  # fmt: skip
            median = statistics.median(lags)
            rows.append([f"following Matcher's lag after each fetch's commit (the {len(lags)} "
                         "that applied records)",
                         f"median {median * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms",
                         ""])  # fmt: skip
            full, loaded = rebuild(store, "ncmec")
            ratio = f"rebuild / median lag: {full / max(median, 1e-3):,.1f}"
            rows.append([f"full index rebuild of {loaded:,} entries (a new hashguard Matcher "
                         "loading every entry, as HMA rebuilds after each fetch)",
                         f"{full:.1f} s", ratio])  # fmt: skip
            rows += hma_rebuilds(store, "ncmec", loaded, median, "median lag", "after the fetches")

            # (c) a delta: half the changes new entries, half deletions, after the checkpoint
            at = exchanges.status("ncmec").checkpoint_ts or int(now.timestamp())
            half = delta // 2
            values = random_pdqs(delta - half, seed=3)
            pipe.send(
                [Entry(8, f"d{n}", "image", at, "B1", {"pdq": values[n]})
                 for n in range(delta - half)]
                + [Entry(7, f"e{n}", "image", at, deleted=True) for n in range(half)]
            )  # fmt: skip
            pipe.recv()
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
            full, loaded = rebuild(store, "ncmec")
            ratio = f"rebuild / lag: {full / max(after, 1e-3):,.1f}"
            rows.append([f"full index rebuild of {loaded:,} entries (a new hashguard Matcher "
                         "loading every entry, after the delta)",
                         f"{full:.1f} s", ratio])  # fmt: skip
            rows += hma_rebuilds(store, "ncmec", loaded, after, "lag", "after the delta")
        finally:
            matcher.close()
            engine.dispose()
            pipe.send(None)
            server.join(30)
    table(["SQLite (the stand-in in a process of its own)", "measured", "ratio"], rows)


if __name__ == "__main__":
    sys.exit(main())
