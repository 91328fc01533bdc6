"""Notice and takedown: the bad-hoster monitor at 1M notices, the scheduler's re-check cycle over
100k open notices, and notices delivered per second.

    make bench-takedown    # or: .venv/bin/python bench/takedown.py [--quick] [--notices N]
                           #     [--open N] [--slice N] [--deliveries N]
                           #     [--section monitor|scheduler|delivery] [--database-url URL]

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
(scheduler) 100,000 open notices (``--open``; ``--quick``: 10,000) past their deadline, all due,
    inserted with executemany, each naming one image URL on a website on loopback (a process of
    its own): the even ones serve a benign generated 640x480 JPEG whose hashes the notice holds
    (present: a re-notice by e-mail and API is queued), the odd ones answer 404 (gone: removal
    verified). ``Scheduler.tick`` (passes of 500, the re-fetch through the hotline's crawler,
    the SSRF-safe fetcher allowing 127.0.0.0/8) handles a slice of 2,000 of them (``--slice``):
    a full cycle over 100,000 would take about half an hour, so the slice is timed (wall and this
    process's CPU) and the full cycle extrapolated; the selection of the due notices (the
    pass's query, 500 of all 100,000 due) is timed at the full count. Memory: the growth of this
    process's RSS over the slice, and tracemalloc's peak over a further 500 notices. The
    reference, in the same run: the bare crawl (fetch + hash) of the same URLs.
(delivery) 1,000 notices (``--deliveries``) queued as e-mail to an SMTP server on loopback
    (aiosmtpd, a process of its own) and 1,000 to a hoster's API on loopback, each sent by
    ``Deliveries.deliver_due`` (claimed, sent, the event and audit entry written). The
    references, in the same run, to the same servers with the same payloads: smtplib sending
    each message on a connection of its own (as Deliveries does), and httpx posting each body
    with one client.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import ipaddress
import json
import multiprocessing
import random
import smtplib
import tempfile
import threading
import time
import tracemalloc
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection as MultiConnection
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select, text

from hashguard.api import ServiceSettings
from hashguard.api.service import decode_budget
from hashguard.hotline.crawl import Crawl, CrawlLimits, crawl
from hashguard.hotline.hosters import HosterRegistry
from hashguard.media.synthetic import encode, scene
from hashguard.net.fetch import UrlFetcher
from hashguard.store.database import open_engine
from hashguard.store.tables import TakedownEventRow, TakedownNoticeRow
from hashguard.takedown.delivery import Deliveries, SmtpSettings
from hashguard.takedown.model import Channel, DeliveryPurpose, Timing
from hashguard.takedown.monitor import Monitor
from hashguard.takedown.notice import Sender, api_body, compose, email
from hashguard.takedown.notices import Notices
from hashguard.takedown.scheduler import Scheduler, Tick
from report import table

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


def section_monitor(engine: Engine, sizes: "Sizes") -> None:
    count = sizes.notices
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


@dataclass(frozen=True)
class Sizes:
    notices: int  # monitor
    open: int  # scheduler: open notices, all due
    slice: int  # scheduler: due notices a timed cycle handles
    deliveries: int  # delivery: per channel


# --- the loopback servers (processes of their own: their CPU is not the measured process's) ---

API_PATH = "/abuse/notices"


def _serve_http(ready: MultiConnection) -> None:
    """A hoster's website and abuse API: ``/i/N.jpg`` a benign generated 640x480 JPEG (the same
    picture for every N), ``/gone/N.jpg`` 404; ``POST /abuse/notices`` answers a ticket."""
    picture = encode(scene(19, 640, 480), "JPEG", quality=85)
    posted = 0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # each answer in one segment, no delayed-ACK stall

        def do_GET(self) -> None:
            if self.path.startswith("/i/"):
                self.answer(200, "image/jpeg", picture)
            else:
                self.answer(404, "text/plain", b"not found")

        def do_POST(self) -> None:
            nonlocal posted
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posted += 1
            if self.path != API_PATH:
                self.answer(404, "text/plain", b"not found")
            else:
                self.answer(200, "application/json", b'{"ticket": "T-%d"}' % posted)

        def answer(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(int(server.server_address[1]))
    server.serve_forever()


def _serve_smtp(ready: MultiConnection) -> None:
    """An SMTP server (aiosmtpd) that accepts every message (and keeps none)."""
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 Message accepted"

    class OnAnyPort(Controller):
        def _trigger_server(self) -> None:
            assert self.server is not None
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    controller = OnAnyPort(Accept(), hostname="127.0.0.1", port=0)
    controller.start()
    ready.send(int(controller.port))
    threading.Event().wait()


@contextmanager
def server(target: Callable[[MultiConnection], None]) -> Iterator[int]:
    """``target`` serving in a process of its own until the block ends; its port."""
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(target=target, args=(send,),
                                                           daemon=True)  # fmt: skip
    process.start()
    try:
        yield int(receive.recv())
    finally:
        process.terminate()
        process.join()


# --- (scheduler) ------------------------------------------------------------------------------

SENDER = Sender("Bench Hotline", "notices@hotline.example", "hotline.example", "NL")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def crawler() -> Callable[[str], Crawl]:
    """The hotline's crawl (the SSRF-safe fetcher, loopback allowed), as the service builds it."""
    fetcher = UrlFetcher((), LOOPBACK, timeout=10.0, any_host=True, cross_host_redirects=True,
                         max_redirects=5)  # fmt: skip
    decodes = decode_budget(ServiceSettings())  # the server's
    return lambda url: crawl(url, fetcher, CrawlLimits(), decodes=decodes)


def template(base: str, hashes: dict[str, str], key: Ed25519PrivateKey) -> str:
    """A signed notice as compose_queued leaves it, stored on every benchmark notice (composing
    100k of them would time the composer, not the scheduler)."""
    url = f"{base}/i/0.jpg"
    row = {"id": 1, "kind": "notice", "urls": [url], "items": [{"url": url, "kind": "image",
           "hashes": hashes, "labels": {"iccam": "baseline"}}], "legal_basis": "",
           "report_id": str(uuid.uuid4()), "reported_at": NOW - timedelta(hours=25),
           "deadline_at": NOW - timedelta(hours=1), "reference": "bench", "issued_by": "hotline",
           "hoster": "hoster-000", "country": "NL"}  # fmt: skip
    return json.dumps(compose(row, SENDER, key, NOW - timedelta(hours=25)))


def open_notices(count: int, base: str, hashes: dict[str, str], document: str,
                 sqlite: bool) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """``count`` open notices past their deadline, all due now: one image URL each, the even
    ones still served (present: a re-notice by e-mail and API), the odd ones 404 (gone:
    verified)."""
    reported = _stored(NOW - timedelta(hours=25), sqlite)
    deadline = _stored(NOW - timedelta(hours=1), sqlite)
    for n in range(count):
        hoster = n % HOSTERS
        url = f"{base}/i/{n}.jpg" if n % 2 == 0 else f"{base}/gone/{n}.jpg"
        yield (None, "notice", None, None, f"hoster-{hoster:03d}", f"C{hoster % COUNTRIES:02d}",
               f"abuse@h{hoster}.example", f"{base}{API_PATH}", False, json.dumps([url]),
               json.dumps([{"url": url, "kind": "image", "hashes": hashes,
                            "labels": {"iccam": "baseline"}}]), "", f"case-{n}", "hotline",
               "open", str(uuid.uuid4()), document, reported, reported,
               _stored(NOW - timedelta(hours=25), sqlite), deadline, None, None, None, "", None,
               None, "", "", None, 0, 0, 0, deadline, None, "")  # fmt: skip


def insert_rows(engine: Engine, rows: Iterable[tuple[Any, ...]]) -> None:
    """Rows of COLUMNS into takedown_notices, CHUNK at a time with executemany."""
    sqlite = engine.dialect.name == "sqlite"
    placeholders = ", ".join("?" for _ in COLUMNS)
    raw = f"INSERT INTO takedown_notices ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:
        with engine.begin() as connection:
            if sqlite:
                connection.exec_driver_sql(raw, chunk)
            else:
                connection.execute(insert(TakedownNoticeRow), [
                    dict(zip(COLUMNS, row, strict=True)) for row in chunk])  # fmt: skip
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            flush()
    if chunk:
        flush()


def rss() -> int:
    """This process's resident memory now, bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def section_scheduler(engine: Engine, sizes: Sizes) -> None:
    print(f"\n(scheduler) {sizes.open:,} open notices, all due; a cycle over {sizes.slice:,} "
          "of them timed")  # fmt: skip
    with server(_serve_http) as port:
        base = f"http://127.0.0.1:{port}"
        fetch = crawler()
        first = fetch(f"{base}/i/0.jpg")
        hashes = dict(first.page.hashes)
        key = Ed25519PrivateKey.generate()
        started = time.perf_counter()
        insert_rows(engine, open_notices(sizes.open, base, hashes, template(base, hashes, key),
                                         engine.dialect.name == "sqlite"))  # fmt: skip
        inserted = time.perf_counter() - started
        print(f"  inserted in {inserted:.1f} s ({sizes.open / inserted:,.0f} notices/s, "
              "executemany)", flush=True)  # fmt: skip
        timing = Timing()
        hosters = HosterRegistry()
        deliveries = Deliveries(engine, None, LOOPBACK, clock=lambda: NOW)
        notices = Notices(engine, timing, hosters, SENDER, key, deliveries, clock=lambda: NOW)
        scheduler = Scheduler(engine, notices, deliveries, fetch, timing, hosters,
                              clock=lambda: NOW)  # fmt: skip

        def select_due() -> None:  # the pass's selection, as tick makes it
            scheduler.due(NOW, 500)

        selection = best(select_due)

        def cycle(count: int) -> tuple[float, float, Tick]:
            """Ticks of 500 until ``count`` due notices are handled: (wall, CPU seconds)."""
            total = Tick()
            wall, cpu = time.perf_counter(), time.process_time()
            while total.handled < count:
                done = scheduler.tick(min(500, count - total.handled))
                if not done.handled:
                    raise SystemExit("the scheduler handled nothing: is every notice done?")
                for name in ("checks", "verified", "present", "renotices", "inconclusive",
                             "lost"):  # fmt: skip
                    setattr(total, name, getattr(total, name) + getattr(done, name))
                total.notices.extend(done.notices)
            return time.perf_counter() - wall, time.process_time() - cpu, total

        cycle(20)  # warm up: connections, kernels, caches
        before = rss()
        wall, cpu, done = cycle(sizes.slice)
        grown = rss() - before
        if done.inconclusive or done.lost or done.checks != sizes.slice:
            raise SystemExit(f"not every check was conclusive: {done}")
        traced = min(sizes.slice, 500)
        tracemalloc.start()
        cycle(traced)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        urls = [f"{base}/i/{n}.jpg" if n % 2 == 0 else f"{base}/gone/{n}.jpg"
                for n in range(sizes.slice)]  # fmt: skip
        bare_wall, bare_cpu = time.perf_counter(), time.process_time()
        for url in urls:
            fetch(url)
        bare_wall, bare_cpu = time.perf_counter() - bare_wall, time.process_time() - bare_cpu
    per, bare = cpu / sizes.slice, bare_cpu / sizes.slice
    print(f"  the timed cycle: {done.handled:,} notices, {done.checks:,} checks, "
          f"{done.verified:,} verified, {done.present:,} present, {done.renotices:,} "
          "re-notices (e-mail + API deliveries queued)")  # fmt: skip
    rows = [
        ["selection of 500 due among all (tick's query)", f"{selection * 1000:.1f} ms", "", "",
         ""],
        ["crawl (fetch + hash) of the same URLs, per URL", f"{bare_wall / sizes.slice * 1000:.2f}",
         f"{bare * 1000:.2f}", "1", f"{sizes.slice / bare_wall:,.0f}"],
        ["Scheduler.tick, per due notice", f"{wall / sizes.slice * 1000:.2f}",
         f"{per * 1000:.2f}", f"{per / bare:.1f}", f"{sizes.slice / wall:,.0f}"],
        [f"a full cycle over {sizes.open:,} (extrapolated)",
         f"{wall / sizes.slice * sizes.open:,.0f} s", f"{per * sizes.open:,.0f} s", "", ""],
    ]  # fmt: skip
    table(["operation", "wall ms", "CPU ms", "x crawl CPU", "per s"], rows)
    print(f"  memory: RSS {before / 2**20:.0f} MiB before the {sizes.slice:,}-notice cycle (all "
          f"the process held already, earlier sections' data included), grown by "
          f"{grown / 2**20:.1f} MiB after it; tracemalloc's peak over {traced:,} more notices: "
          f"{peak / 2**20:.1f} MiB")  # fmt: skip


# --- (delivery) -------------------------------------------------------------------------------


def section_delivery(engine: Engine, sizes: Sizes) -> None:
    count = sizes.deliveries
    print(f"\n(delivery) {count:,} notices by e-mail and {count:,} by API, to loopback servers")
    with server(_serve_http) as http_port, server(_serve_smtp) as smtp_port:
        base = f"http://127.0.0.1:{http_port}"
        api = f"{base}{API_PATH}"
        key = Ed25519PrivateKey.generate()
        hashes = dict(crawler()(f"{base}/i/0.jpg").page.hashes)
        document = template(base, hashes, key)
        insert_rows(engine, open_notices(count, base, hashes, document,
                                         engine.dialect.name == "sqlite"))  # fmt: skip
        signed = json.loads(document)
        message = email(signed, DeliveryPurpose.NOTICE, to="abuse@h0.example", sender=SENDER)
        mail, body = message.as_string(), json.dumps(api_body(signed, DeliveryPurpose.NOTICE))
        print(f"  an e-mail of {len(mail) / 1000:.1f} kB, an API body of "
              f"{len(body) / 1000:.1f} kB", flush=True)  # fmt: skip
        deliveries = Deliveries(engine, SmtpSettings("127.0.0.1", smtp_port), LOOPBACK,
                                clock=lambda: NOW)  # fmt: skip
        notices = TakedownNoticeRow.__table__
        with engine.connect() as connection:
            ids = list(connection.execute(select(notices.c.id).order_by(notices.c.id)).scalars())

        def deliver(channel: Channel, target: Callable[[int], str], payload: str) -> float:
            """Every notice's delivery on ``channel`` queued, then sent: seconds to send."""
            with engine.begin() as connection:
                for ident in ids:
                    deliveries.enqueue(connection, ident, DeliveryPurpose.NOTICE, channel,
                                       target(ident), payload, at=NOW)  # fmt: skip
            started, sent = time.perf_counter(), 0
            while sent < count:
                done = deliveries.deliver_due(limit=500)
                if not done:
                    raise SystemExit(f"{channel.value}: {sent} of {count} delivered, then none")
                sent += done
            return time.perf_counter() - started

        def raw_smtp() -> float:
            started = time.perf_counter()
            for ident in ids:
                with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="hotline.example",
                                  timeout=10) as connection:  # fmt: skip
                    connection.sendmail(SENDER.email, [f"abuse@h{ident % HOSTERS}.example"], mail)
            return time.perf_counter() - started

        def raw_http() -> float:
            started = time.perf_counter()
            with httpx.Client(timeout=10.0, follow_redirects=False) as client:
                for ident in ids:
                    answer = client.post(
                        api,
                        content=body.encode(),
                        headers={"Content-Type": "application/json", "Idempotency-Key": str(ident)},
                    )
                    answer.raise_for_status()
            return time.perf_counter() - started  # fmt: skip

        raw_smtp()  # warm up (both servers, the client's imports)
        smtp_raw = raw_smtp()
        smtp_ours = deliver(Channel.SMTP, lambda ident: f"abuse@h{ident % HOSTERS}.example", mail)
        http_raw = raw_http()
        http_ours = deliver(Channel.API, lambda ident: api, body)
    rows = [
        ["e-mail: smtplib, a connection per message", f"{count / smtp_raw:,.0f}", "1"],
        ["e-mail: Deliveries.deliver_due", f"{count / smtp_ours:,.0f}",
         f"{smtp_raw / smtp_ours:.2f}"],
        ["API: httpx posts, one client", f"{count / http_raw:,.0f}", "1"],
        ["API: Deliveries.deliver_due", f"{count / http_ours:,.0f}",
         f"{http_raw / http_ours:.2f}"],
    ]  # fmt: skip
    table(["sending", "notices/s", "x raw"], rows)


SECTIONS = {"monitor": section_monitor, "scheduler": section_scheduler,
            "delivery": section_delivery}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a tenth of the notices, deliveries and slice")  # fmt: skip
    parser.add_argument("--notices", type=int, default=0,
                        help="monitor: how many notices (default 1,000,000)")  # fmt: skip
    parser.add_argument("--open", type=int, default=0,
                        help="scheduler: open notices, all due (default 100,000)")  # fmt: skip
    parser.add_argument(
        "--slice",
        type=int,
        default=0,
        help="scheduler: due notices a timed cycle handles (default 2,000)",
    )
    parser.add_argument("--deliveries", type=int, default=0,
                        help="delivery: deliveries per channel (default 1,000)")  # fmt: skip
    parser.add_argument("--section", action="append", choices=sorted(SECTIONS),
                        help="run only this section (repeatable); default: all")  # fmt: skip
    parser.add_argument("--database-url", default="", help="default: a SQLite file in /tmp")
    options = parser.parse_args()
    tenth = 10 if options.quick else 1
    sizes = Sizes(
        options.notices or 1_000_000 // tenth,
        options.open or 100_000 // tenth,
        options.slice or 2_000 // tenth,
        options.deliveries or 1_000 // tenth,
    )
    for name in options.section or list(SECTIONS):
        with tempfile.TemporaryDirectory(prefix="hashguard-bench-takedown-") as directory:
            url = options.database_url or f"sqlite:///{Path(directory) / 'takedown.db'}"
            engine = open_engine(url)
            try:
                SECTIONS[name](engine, sizes)
            finally:
                engine.dispose()


if __name__ == "__main__":
    main()
