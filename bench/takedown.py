"""Notice and takedown: the bad-hoster monitor's figures, page and exports at 1M notices (more
sections, the scheduler's and the deliveries', join this script).

    make bench-takedown    # or: .venv/bin/python bench/takedown.py [--quick] [--notices N]
                           #     [--section monitor] [--database-url URL]

(monitor) A SQLite file (or ``--database-url``) holds 1,000,000 notices (``--quick``: 100,000)
    to 200 hosters in 40 countries, reported over two years: 92 % removed after a log-normal
    number of hours (median 10 h, a long tail to months), 5 % open, 3 % withdrawn; 4 % of the
    removed came back (a ``reappeared`` event each); CDN notices (not counted) 2 %. Inserted
    with executemany. Timed, the best of 3 runs each: ``Monitor.figures`` per hoster, per
    country and all, ``public``, ``distribution`` and ``trend``; the public page ``/monitor``,
    ``/monitor.json`` and ``/monitor.csv`` through the app in process (rendering included),
    cold, and the page again within the minute it keeps a period's figures.
    The references, in the same run on the same database: one grouped count per hoster
    (``SELECT hoster, count(*) ... GROUP BY hoster``) and reading the quantiles' columns
    (hoster, reported_at, verified_at) of the removed notices: what the monitor's one grouped
    query and its hours add to the least any monitor must read.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import random
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text

from hashguard.store.database import open_engine
from hashguard.store.tables import TakedownEventRow, TakedownNoticeRow
from hashguard.takedown.monitor import Monitor

HOSTERS = 200
COUNTRIES = 40
RUNS = 3
CHUNK = 50_000
NOW = datetime.now(UTC)
COLUMNS = ("case_id", "kind", "parent_id", "previous_id", "hoster", "country", "abuse_email",
           "abuse_api", "cdn", "urls", "items", "legal_basis", "reference", "issued_by", "state",
           "report_id", "document", "reported_at", "created_at", "sent_at", "deadline_at",
           "acknowledged_at", "claimed_at", "disputed_at", "dispute_reason", "verified_at",
           "withdrawn_at", "outcome", "outcome_reason", "outcome_at", "renotices",
           "escalations", "rechecks", "next_action_at", "lease_until", "last_error")  # fmt: skip


def _stored(moment: datetime | None, sqlite: bool) -> Any:
    """A time as SQLAlchemy stores it in SQLite (text, UTC), else the datetime itself."""
    if moment is None or not sqlite:
        return moment
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def notices(count: int, sqlite: bool, seed: int = 19) -> Iterator[tuple[Any, ...]]:
    """``count`` notices as rows of COLUMNS, as the takedown workflow leaves them."""
    rng = random.Random(seed)
    span = timedelta(days=730).total_seconds()
    for n in range(count):
        hoster = rng.randrange(HOSTERS)
        reported = NOW - timedelta(seconds=rng.random() * span)
        draw = rng.random()
        kind = "cdn" if draw < 0.02 else ("order" if draw < 0.04 else "notice")
        fate = rng.random()
        verified = None
        if fate < 0.92:
            verified = reported + timedelta(hours=rng.lognormvariate(2.3, 1.6))
            verified = min(verified, NOW)
            state = "removed"
        elif fate < 0.97:
            state = "open"
        else:
            state = "withdrawn"
        url = f"https://h{hoster}.example/{n}.jpg"
        yield (None, kind, None, None, f"hoster-{hoster:03d}", f"C{hoster % COUNTRIES:02d}",
               f"abuse@h{hoster}.example", None, kind == "cdn", json.dumps([url]),
               json.dumps([{"url": url, "kind": "image", "hashes": {}, "labels": {}}]), "", "",
               "", state, str(uuid.UUID(int=rng.getrandbits(128), version=4)), "",
               _stored(reported, sqlite), _stored(reported, sqlite),
               _stored(reported + timedelta(minutes=5), sqlite),
               _stored(reported + timedelta(hours=24), sqlite), None, None, None, "",
               _stored(verified, sqlite),
               _stored(reported + timedelta(hours=2), sqlite) if state == "withdrawn" else None,
               "", "", None, rng.choice((0, 0, 0, 1, 2)), rng.choice((0, 0, 0, 0, 1)), 0, None,
               None, "")  # fmt: skip


def fill(engine: Engine, count: int) -> float:
    """Insert ``count`` notices (and the reappeared events of 4 % of the removed); seconds."""
    sqlite = engine.dialect.name == "sqlite"
    started = time.perf_counter()
    chunk: list[tuple[Any, ...]] = []
    statement = insert(TakedownNoticeRow)
    placeholders = ", ".join("?" for _ in COLUMNS)
    raw = f"INSERT INTO takedown_notices ({', '.join(COLUMNS)}) VALUES ({placeholders})"

    def flush() -> None:
        with engine.begin() as connection:
            if sqlite:
                connection.exec_driver_sql(raw, chunk)
            else:
                connection.execute(statement, [dict(zip(COLUMNS, row, strict=True))
                                               for row in chunk])  # fmt: skip
        chunk.clear()

    for row in notices(count, sqlite):
        chunk.append(row)
        if len(chunk) == CHUNK:
            flush()
    if chunk:
        flush()
    with engine.begin() as connection:
        every_25th = select(TakedownNoticeRow.id).where(
            TakedownNoticeRow.state == "removed", TakedownNoticeRow.id % 25 == 0)  # fmt: skip
        removed = connection.execute(every_25th).scalars().all()
        events = [{"notice_id": notice, "at": NOW, "kind": "reappeared", "actor": "bench",
                   "detail": {}} for notice in removed]  # fmt: skip
        for start in range(0, len(events), CHUNK):
            connection.execute(insert(TakedownEventRow), events[start : start + CHUNK])
    return time.perf_counter() - started


def best(action: Callable[[], Any]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def section_monitor(engine: Engine, count: int) -> None:
    print(f"\n(monitor) {count:,} notices, {HOSTERS} hosters, {COUNTRIES} countries")
    inserted = fill(engine, count)
    print(f"  inserted in {inserted:.1f} s ({count / inserted:,.0f} notices/s, executemany)")
    monitor = Monitor(engine)
    notice = TakedownNoticeRow

    def grouped_count() -> None:
        with engine.connect() as connection:
            connection.execute(
                select(notice.hoster, text("count(*)")).group_by(notice.hoster)
            ).all()

    def quantile_columns() -> None:
        with engine.connect() as connection:
            connection.execute(select(notice.hoster, notice.reported_at, notice.verified_at)
                               .where(notice.verified_at.is_not(None))).all()  # fmt: skip

    reference = best(grouped_count)
    columns = best(quantile_columns)
    warnings.simplefilter("ignore")  # starlette's note on its test client
    from fastapi.testclient import TestClient

    from hashguard.app import create_app

    app = create_app(engine)
    client = TestClient(app)
    year = (NOW - timedelta(days=365)).date().isoformat()

    def page(path: str, cold: bool = True) -> Callable[[], None]:
        def get() -> None:
            if cold:  # not the figures the page keeps for a minute
                app.state.monitor_recent = None
            answer = client.get(path)
            assert answer.status_code == 200, answer.text[:200]

        return get

    timed = [
        ("reference: grouped count per hoster", reference),
        ("reference: read the quantiles' columns", columns),
        ("figures per hoster", best(lambda: monitor.figures("hoster"))),
        ("figures per country", best(lambda: monitor.figures("country"))),
        ("figures, all", best(lambda: monitor.figures("all"))),
        ("public per hoster", best(lambda: monitor.public("hoster"))),
        ("distribution", best(lambda: monitor.distribution())),
        ("trend per month", best(lambda: monitor.trend())),
        ("page /monitor (all time)", best(page("/monitor"))),
        ("page /monitor (last year)", best(page(f"/monitor?since={year}"))),
        ("export /monitor.json", best(page("/monitor.json"))),
        ("export /monitor.csv", best(page("/monitor.csv"))),
        ("page /monitor, again within the minute", best(page("/monitor", cold=False))),
        ("overview (the page's one pass)", best(lambda: monitor.overview(public=True))),
    ]
    width = max(len(name) for name, _ in timed)
    print(f"  {'operation':<{width}}  {'seconds':>8}  {'x grouped count':>15}  "
          f"{'x columns':>9}")  # fmt: skip
    for name, seconds in timed:
        print(f"  {name:<{width}}  {seconds:8.3f}  {seconds / reference:15.1f}  "
              f"{seconds / columns:9.2f}")  # fmt: skip


SECTIONS = {"monitor": section_monitor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 notices, not 1,000,000")
    parser.add_argument("--notices", type=int, default=0, help="how many notices (overrides)")
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS),
                        help="run only this section (repeatable); default: all")  # fmt: skip
    parser.add_argument("--database-url", default="", help="default: a SQLite file in /tmp")
    options = parser.parse_args()
    count = options.notices or (100_000 if options.quick else 1_000_000)
    for name in options.section or list(SECTIONS):
        with tempfile.TemporaryDirectory(prefix="hashguard-bench-takedown-") as directory:
            url = options.database_url or f"sqlite:///{Path(directory) / 'takedown.db'}"
            engine = open_engine(url)
            try:
                SECTIONS[name](engine, count)
            finally:
                engine.dispose()


if __name__ == "__main__":
    main()
