"""The hotline: reports per second through intake, items per second through crawl + hash + triage
against a list of 1M hashes, and the share of analyst work saved on a stream with 63 % repeats.

    make bench-hotline    # or: .venv/bin/python bench/hotline.py [--quick]

(1) Intake. The public form, ``POST /report``, of a real ``hashguard serve --hotline-country NL``
    on a SQLite file, as fast as it answers (wrk: one thread, 16 connections), every report a new
    URL, so each opens a case (the limit per address raised). The service's two crawlers run as
    deployed: each reported URL is a closed port on loopback, so each crawl ends at once (the
    case unreachable). In process: ``Intake.report`` of one new URL per call. The reference, in
    the same run: the same rows (report, case, the link, the chained audit event) written by plain
    inserts, a transaction per report: what intake's checks, normal form, reference, token and
    rate limiter add to the writes themselves.
(2) Crawl + hash + triage. The hotline's known list holds 1,000,000 random PDQ hashes and 100,000
    each of MD5, SHA-1 and SHA-256, imported through the ListStore. A website on loopback (a
    process of its own, on either core) serves pages of 8 generated benign 1024x768 JPEGs. Each
    page is reported, then the hotline's pipeline (``Pipeline.run_once`` on 1 or 2 threads of
    a process pinned to 1 or 2 cores, or in 2 processes on one database) claims each case,
    fetches the page and its images through the SSRF-safe fetcher, hashes them in memory (PDQ,
    MD5, SHA-1, SHA-256), triages them against the lists, traces the host and writes it all.
    The reference, in the same run, on the same cores and threads or processes: ``hash_values``
    of the same image files (what the crawl adds on top).
(3) Analyst work saved. A stream of reports, each a page of 6 images: 37 % new images, 63 %
    repeats of earlier ones (INHOPE's 2024 share of records seen before), half exact copies at
    other URLs, the rest edited (re-encoded, resized, watermarked, cropped). Each report is
    crawled and triaged as it comes; an analyst then views and assesses each item left in the
    queue (``Cases.record_view``, ``Assessments.assess``) before the next report arrives.
    Counted per kind of item: triaged automatically, or viewed by an analyst.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import hashlib
import ipaddress
import multiprocessing
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine, func, insert, select

from hashguard.api import ServiceSettings
from hashguard.api.service import decode_budget
from hashguard.hotline import crawl
from hashguard.hotline.intake import Intake
from hashguard.hotline.model import PUBLIC_SOURCE, CaseState, ItemState
from hashguard.hotline.pipeline import Pipeline
from hashguard.hotline.service import Hotline, HotlineSettings
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.media.synthetic import encode, scene
from hashguard.signals import registry
from hashguard.signals.batch import hash_values
from hashguard.store import audit
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineItemRow,
    HotlineReportRow,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table
from service import Server, wrk

HASHGUARD = str(Path(sys.executable).with_name("hashguard"))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
RETAIN = timedelta(days=90)
WIDTH, HEIGHT = 1024, 768
PER_PAGE = 8  # images on a page of (2)
STREAM_PER_PAGE = 6  # images on a page of (3)
NEW_SHARE = 0.37  # INHOPE 2024: 63 % of records had been seen before
# How a repeat differs from the image it repeats, and the share of repeats of each kind.
REPEATS = {"exact": 0.5, "re-encoded": 0.15, "resized": 0.15, "watermarked": 0.1, "cropped": 0.1}
ANALYST = "bench-analyst"
# Labels in the built-in vocabulary (hotline.vocabulary.default()).
ILLEGAL = {"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}
NOT_ILLEGAL = {"iccam": "not-illegal", "age": "adult", "industry": "none", "depiction": "real"}

_FORM_SCRIPT = """
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = i + 1
  return wrk.format(nil, "/report", nil,
    "urls=http%%3A%%2F%%2F127.0.0.1%%3A%(port)d%%2F%(run)s%%2F" .. i ..
    "&seen_where=a+forum&description=bench")
end
"""


@dataclass(frozen=True)
class Sizes:
    pdq: int  # PDQ hashes on the known list
    digests: int  # of each of MD5, SHA-1, SHA-256
    wrk_seconds: int
    reports: int  # Intake.report calls in process, and plain inserts
    pages: int  # pages crawled per configuration of (2)
    stream: int  # reports in the stream of (3)


# (2): how the pipeline runs: cores, workers, whether the workers are processes
CONFIGURATIONS = (
    ("1 core, 1 thread", 1, 1, False),
    ("2 cores, 2 threads (the service's default crawlers)", 2, 2, False),
    ("2 cores, 2 processes (two instances, one database)", 2, 2, True),
)
ATTEMPTS = 2
FULL = Sizes(1_000_000, 100_000, 20, 2000, 100, 150)
QUICK = Sizes(100_000, 10_000, 5, 300, 15, 40)


def pin(cores: int) -> None:
    """This thread (and the threads it starts from now on) on the first ``cores`` CPUs."""
    available = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    os.sched_setaffinity(0, set(available[:cores]))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the website ---------------------------------------------------------------------------


def _serve(directory: str, ready: Connection) -> None:
    """The website: ``/i/NAME.jpg`` the file NAME.jpg of ``directory`` (read into memory first);
    ``/p/ANY/A.B.C`` a page showing the images A, B and C (ANY makes the page's URL new)."""
    images = {path.stem: path.read_bytes() for path in Path(directory).glob("*.jpg")}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = self.path.split("/")
            status, kind, body = 404, "text/plain", b"not found"
            if len(parts) == 3 and parts[1] == "i" and parts[2].removesuffix(".jpg") in images:
                status, kind, body = 200, "image/jpeg", images[parts[2].removesuffix(".jpg")]
            elif len(parts) == 4 and parts[1] == "p":
                tags = "".join(f'<img src="/i/{name}.jpg" alt="">' for name in parts[3].split("."))
                page = f"<!doctype html><html><body>{tags}</body></html>"
                status, kind, body = 200, "text/html; charset=utf-8", page.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(int(server.server_address[1]))
    server.serve_forever()


@contextmanager
def website(directory: Path) -> Iterator[str]:
    """The website serving ``directory``'s images, in a process of its own; its base URL."""
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(str(directory), send), daemon=True
    )
    process.start()
    try:
        yield f"http://127.0.0.1:{receive.recv()}"
    finally:
        process.terminate()
        process.join()


# --- (1) intake ----------------------------------------------------------------------------


def hotline_service(database: str, port: int) -> Server:
    """``hashguard serve`` with the hotline on, as its own process."""
    return Server(database, port, "--hotline-country", "NL", "--hotline-reports-per-hour",
                  "1000000000", "--hotline-network", "127.0.0.0/8")  # fmt: skip


def cases_by_state(engine: Engine) -> Counter[str]:
    cases = HotlineCaseRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(cases.c.state, func.count()).group_by(cases.c.state)).all()
    return Counter({str(state): int(count) for state, count in rows})


def intake_over_http(scratch: Path, seconds: int) -> tuple[dict[str, float], Counter[str]]:
    """wrk on ``POST /report``: its figures, and the cases by state when it ended."""
    database = f"sqlite:///{scratch / 'intake-http.db'}"
    open_engine(database).dispose()  # the schema, before the server starts
    closed = free_port()
    service = hotline_service(database, free_port())
    service.loaded.wait()
    if service.process.poll() is not None:
        raise SystemExit("the server did not start:\n" + "".join(service.lines))
    try:
        for run, length in (("warm", 3), ("bench", seconds)):
            script = scratch / f"report-{run}.lua"
            script.write_text(_FORM_SCRIPT % {"port": closed, "run": run})
            figures = wrk(service.base, script, length)
    finally:
        service.stop()
    engine = open_engine(database)
    states = cases_by_state(engine)
    engine.dispose()
    return figures, states


def intake_in_process(scratch: Path, count: int) -> float:
    """``Intake.report`` calls per second, one new URL each, from one client address."""
    engine = open_engine(f"sqlite:///{scratch / 'intake.db'}")
    intake = Intake(engine, reports_per_hour=10**9, retain=RETAIN, networks=LOOPBACK)
    port = free_port()
    for n in range(50):  # warm up
        intake.report([f"http://127.0.0.1:{port}/warm/{n}"], "a forum", "bench", None, "en",
                      "192.0.2.1")  # fmt: skip
    started = time.perf_counter()
    for n in range(count):
        intake.report([f"http://127.0.0.1:{port}/bench/{n}"], "a forum", "bench", None, "en",
                      "192.0.2.1")  # fmt: skip
    rate = count / (time.perf_counter() - started)
    engine.dispose()
    return rate


def plain_inserts(scratch: Path, count: int) -> float:
    """The same rows as ``Intake.report`` writes, by plain inserts: reports per second."""
    engine = open_engine(f"sqlite:///{scratch / 'plain.db'}")
    port = free_port()
    started = time.perf_counter()
    for n in range(count):
        url = f"http://127.0.0.1:{port}/bench/{n}"
        reference = f"HR-{n:012d}"
        now = datetime.now(UTC)
        with engine.begin() as connection:
            report_id = connection.execute(insert(HotlineReportRow).values(
                reference=reference, token_digest=hashlib.sha256(url.encode()).hexdigest(),
                source=PUBLIC_SOURCE, partner_reference=None, seen_where="a forum",
                description="bench", contact=None, language="en", created_at=now,
                purpose="hotline-report", retain_until=now + RETAIN,
            )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            case_id = connection.execute(insert(HotlineCaseRow).values(
                url=url, url_key=hashlib.sha256(url.encode()).hexdigest(), host="127.0.0.1",
                state=CaseState.NEW.value, created_at=now, updated_at=now, attempts=0,
                lease_until=None, last_error="",
            )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
            connection.execute(
                insert(HotlineCaseReportRow).values(case_id=case_id, report_id=report_id)
            )
            audit.append(connection, "hotline", "hotline.report", reference,
                         {"reference": reference, "source": PUBLIC_SOURCE, "urls": 1,
                          "cases": [case_id], "joined": [False]})  # fmt: skip
    rate = count / (time.perf_counter() - started)
    engine.dispose()
    return rate


def bench_intake(scratch: Path, sizes: Sizes) -> list[list[str]]:
    print("(1) intake ...", flush=True)
    figures, states = intake_over_http(scratch, sizes.wrk_seconds)
    in_process = intake_in_process(scratch, sizes.reports)
    plain = plain_inserts(scratch, sizes.reports)
    crawled = sum(n for state, n in states.items() if state != CaseState.NEW.value)
    return [
        ["`POST /report` (the form) to `hashguard serve`, wrk", f"{figures['rps']:,.0f}",
         f"{figures['p50']:.1f}", f"{figures['p99']:.1f}", f"{figures['errors']:.0f}",
         f"{figures['rps'] / in_process:.2f}x in process"],
        ["`Intake.report` in process, one thread", f"{in_process:,.0f}", "", "", "",
         f"{in_process / plain:.2f}x plain inserts"],
        ["reference: the same rows by plain inserts, one thread", f"{plain:,.0f}", "", "", "",
         "1.00x"],
        [f"(the service's crawlers meanwhile: {crawled:,} of {states.total():,} cases crawled)",
         "", "", "", "", ""],
    ]  # fmt: skip


# --- (2) crawl + hash + triage -------------------------------------------------------------


def known_list(store: ListStore, pdq: int, digests: int) -> float:
    """The known list ``known``: random PDQ hashes and digests; the import's seconds."""
    store.create("known", "Bench Org", Category.TEST, ["NL"])
    rng = np.random.default_rng(18)

    def submissions() -> Iterator[Submission]:
        for start in range(0, pdq, 100_000):
            rows = rng.integers(0, 256, (min(100_000, pdq - start), 32), dtype=np.uint8)
            yield from (Submission("pdq", row.tobytes().hex()) for row in rows)
        for signal, size in (("md5", 16), ("sha1", 20), ("sha256", 32)):
            rows = rng.integers(0, 256, (digests, size), dtype=np.uint8)
            yield from (Submission(signal, row.tobytes().hex()) for row in rows)

    started = time.perf_counter()
    store.apply("known", submissions())
    return time.perf_counter() - started


def drain(pipeline: Pipeline) -> None:
    """Handle cases until none is due (what a pipeline worker does while there is work)."""
    while pipeline.run_once(1):
        pass


def run_threads(count: int, target: Callable[..., object],
                shares: Sequence[Sequence[str]] | None = None) -> float:  # fmt: skip
    """Seconds for ``count`` threads running ``target`` (given its share each, if any)."""
    threads = [
        threading.Thread(target=target, args=() if shares is None else (shares[n],))
        for n in range(count)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def items_of(engine: Engine) -> Counter[str]:
    items = HotlineItemRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(items.c.state, func.count()).group_by(items.c.state))
        return Counter({str(state): int(count) for state, count in rows})


def _child(database: str, paths: list[str], ready: Connection, go: EventType) -> None:
    """One process of a run on processes: with ``database``, a hotline on it handling cases
    until none is due (its Matcher loaded first); without, ``hash_values`` of ``paths``."""
    signals = [registry.get(name) for name in crawl.SIGNALS]
    hash_values(paths[0], signals)  # the kernels loaded before the start
    if database:
        engine = open_engine(database)
        store = ListStore(engine)
        hotline = Hotline(engine, store, HotlineSettings("NL", known_lists=("known",),
                                                         networks=LOOPBACK),
                          decodes=decode_budget(ServiceSettings()))  # fmt: skip
        ready.send(True)
        go.wait()
        drain(hotline.pipeline)
        hotline.stop()
        engine.dispose()
        return
    ready.send(True)
    go.wait()
    for path in paths:
        hash_values(path, signals)


def run_processes(count: int, database: str, shares: Sequence[Sequence[str]]) -> float:
    """Seconds for ``count`` processes of ``_child`` (each with its share of the paths), from
    when all are ready to when the last ends."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    children = []
    for n in range(count):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(database, list(shares[n]), send, go))
        process.start()
        children.append((process, receive))
    for _, receive in children:
        receive.recv()
    started = time.perf_counter()
    go.set()
    for process, _ in children:
        process.join()
    return time.perf_counter() - started


def bench_crawl(scratch: Path, sizes: Sizes) -> list[list[str]]:
    print("(2) crawl + hash + triage ...", flush=True)
    images = scratch / "images"
    images.mkdir()
    names = []
    for n in range(min(240, sizes.pages * PER_PAGE)):
        names.append(f"c{n}")
        (images / f"c{n}.jpg").write_bytes(encode(scene(5000 + n, WIDTH, HEIGHT), "JPEG",
                                                  quality=85))  # fmt: skip
    mean_bytes = statistics.mean(path.stat().st_size for path in images.iterdir())
    database = f"sqlite:///{scratch / 'crawl.db'}"
    engine = open_engine(database)
    store = ListStore(engine)
    imported = known_list(store, sizes.pdq, sizes.digests)
    print(f"  known list imported in {imported:.0f} s", flush=True)
    settings = HotlineSettings("NL", known_lists=("known",), networks=LOOPBACK)
    started = time.perf_counter()
    hotline = Hotline(engine, store, settings, decodes=decode_budget(ServiceSettings()))
    loaded = time.perf_counter() - started
    print(f"  the hotline's Matcher loaded the list in {loaded:.0f} s", flush=True)
    signals = [registry.get(name) for name in crawl.SIGNALS]
    rows = []
    with website(images) as site:
        page = 0

        def report(pages: int) -> int:
            nonlocal page
            for _ in range(pages):
                shown = [names[(page * PER_PAGE + k) % len(names)] for k in range(PER_PAGE)]
                hotline.intake.report([f"{site}/p/{page}/{'.'.join(shown)}"], "a forum")
                page += 1
            return pages * PER_PAGE

        report(2)
        drain(hotline.pipeline)  # warm up: kernels compiled or loaded, connections open
        for shown, cores, workers, processes in CONFIGURATIONS:
            pin(cores)
            rate = reference = 0.0
            for _ in range(ATTEMPTS):  # the best of each: the machine is shared
                before = items_of(engine).total()
                count = report(sizes.pages)
                paths = [str(images / f"{names[n % len(names)]}.jpg") for n in range(count)]
                shares = [paths[n::workers] for n in range(workers)]
                if processes:  # two instances of the hotline on one database, as two services
                    seconds = run_processes(workers, database, shares)
                    hashing = run_processes(workers, "", shares)
                else:
                    seconds = run_threads(workers, lambda: drain(hotline.pipeline))
                    hashing = run_threads(
                        workers, lambda share: [hash_values(p, signals) for p in share], shares
                    )
                done = items_of(engine)
                if done.total() - before != count or done[ItemState.FAILED.value]:
                    raise SystemExit(f"not every item was hashed: {dict(done)}")
                rate, reference = max(rate, count / seconds), max(reference, count / hashing)
            rows.append([shown, f"{ATTEMPTS} x {count:,}", f"{rate:,.0f}", f"{reference:,.0f}",
                         f"{rate / reference:.2f}x"])  # fmt: skip
            print(f"  {shown}: {rate:,.0f} items/s (hash_values {reference:,.0f}/s)", flush=True)
        pin(2)
    hotline.stop()
    engine.dispose()
    print(f"\n(2) known list: {sizes.pdq:,} PDQ hashes + {sizes.digests:,} each of MD5, "
          f"SHA-1, SHA-256 (imported in {imported:.0f} s, loaded in {loaded:.0f} s); pages "
          f"of {PER_PAGE} JPEGs of {WIDTH}x{HEIGHT}, {mean_bytes / 1000:.0f} kB each")  # fmt: skip
    return rows


# --- (3) analyst work saved ----------------------------------------------------------------


@dataclass(frozen=True)
class StreamItem:
    name: str  # served at /i/NAME.jpg
    original: int  # the distinct image it shows
    kind: str  # "new" or one of REPEATS


def edited(original: int, kind: str, rng: np.random.Generator) -> bytes:
    """The image ``original`` as a repeat of ``kind`` shows it."""
    image = scene(original, WIDTH, HEIGHT)
    if kind == "re-encoded":
        return encode(image, "JPEG", quality=int(rng.integers(40, 70)))
    if kind == "resized":
        scale = float(rng.uniform(0.4, 0.8))
        smaller = image.resize((int(WIDTH * scale), int(HEIGHT * scale)), Image.Resampling.LANCZOS)
        return encode(smaller, "JPEG", quality=80)
    if kind == "watermarked":
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=32)
        draw.text((WIDTH - 320, HEIGHT - 60), "reposted.example", fill=(255, 255, 255), font=font)
        return encode(image, "JPEG", quality=80)
    if kind == "cropped":  # 2-5 % off each side: beyond what PDQ survives
        edge = float(rng.uniform(0.02, 0.05))
        box = (int(WIDTH * edge), int(HEIGHT * edge), int(WIDTH * (1 - edge)),
               int(HEIGHT * (1 - edge)))  # fmt: skip
        return encode(image.crop(box), "JPEG", quality=85)
    return encode(image, "JPEG", quality=85)


def stream(count: int, directory: Path, seed: int = 63) -> list[StreamItem]:
    """``count`` items, their files written to ``directory``: each new with NEW_SHARE, else a
    repeat of an earlier image (any, alike) of a kind drawn from REPEATS."""
    rng = np.random.default_rng(seed)
    kinds, weights = list(REPEATS), list(REPEATS.values())
    originals: dict[int, bytes] = {}
    items = []
    for n in range(count):
        if not originals or rng.random() < NEW_SHARE:
            original, kind = 20_000 + n, "new"
            data = originals[original] = edited(original, kind, rng)
        else:
            original = int(rng.choice(list(originals)))
            kind = str(rng.choice(kinds, p=weights))
            data = originals[original] if kind == "exact" else edited(original, kind, rng)
        (directory / f"s{n}.jpg").write_bytes(data)
        items.append(StreamItem(f"s{n}", original, kind))
    return items


def bench_saved(scratch: Path, sizes: Sizes) -> tuple[list[list[str]], str]:
    print("(3) analyst work saved ...", flush=True)
    directory = scratch / "stream"
    directory.mkdir()
    items = stream(sizes.stream * STREAM_PER_PAGE, directory)
    by_name = {item.name: item for item in items}
    engine = open_engine(f"sqlite:///{scratch / 'stream.db'}")
    store = ListStore(engine)
    hotline = Hotline(
        engine,
        store,
        HotlineSettings("NL", networks=LOOPBACK),
        decodes=decode_budget(ServiceSettings()),
    )
    views = 0
    started = time.perf_counter()
    with website(directory) as site:
        for report in range(sizes.stream):
            shown = items[report * STREAM_PER_PAGE : (report + 1) * STREAM_PER_PAGE]
            page = f"{site}/p/{report}/{'.'.join(item.name for item in shown)}"
            hotline.intake.report([page], "a forum")
            drain(hotline.pipeline)
            while waiting := hotline.cases.queue(limit=1):
                item = waiting[0]
                hotline.cases.record_view(item.id, ANALYST)  # as the desk does on reveal
                views += 1
                original = by_name[item.url.rsplit("/", 1)[1].removesuffix(".jpg")].original
                labels = ILLEGAL if original % 3 == 0 else NOT_ILLEGAL
                hotline.assessments.assess(item.id, labels, ANALYST)
        drain(hotline.pipeline)  # the last cases routed
    seconds = time.perf_counter() - started
    figures = hotline.cases.figures()
    table_ = HotlineItemRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table_.c.url, table_.c.state, table_.c.triage)).all()
    hotline.stop()
    engine.dispose()
    states: dict[str, Counter[str]] = {kind: Counter() for kind in ("new", *REPEATS)}
    signals: dict[str, Counter[str]] = {kind: Counter() for kind in states}
    distances: dict[str, list[int]] = {kind: [] for kind in states}
    for url, state, triage in rows:
        kind = by_name[url.rsplit("/", 1)[1].removesuffix(".jpg")].kind
        states[kind][state] += 1
        if state == ItemState.AUTO.value:
            signals[kind][triage["signal"]] += 1
            distances[kind].append(int(triage["distance"]))
    table_rows = []
    for kind, found in states.items():
        count, auto, near = found.total(), found[ItemState.AUTO.value], distances[kind]
        matched = ", ".join(f"{n:,} by {signal.upper()}" for signal, n in signals[kind].items())
        table_rows.append([
            kind, f"{count:,}", f"{auto:,}", f"{found[ItemState.ASSESSED.value]:,}",
            f"{auto / count:.0%}" if count else "", matched,
            f"{statistics.median(near):.0f} / {max(near)}" if near else "",
        ])  # fmt: skip
    total = len(rows)
    repeats = sum(1 for item in items if item.kind != "new")
    auto = figures.auto
    table_rows.append([
        "**all**", f"{total:,}", f"{auto:,}", f"{figures.assessed:,}",
        f"**{auto / total:.1%}**", f"the dashboard's share: {figures.auto_share:.1%}", "",
    ])  # fmt: skip
    summary = (
        f"(3) {sizes.stream} reports of {STREAM_PER_PAGE} images, {total:,} items: "
        f"{repeats / total:.1%} repeats (the most that can be saved); {auto / total:.1%} "
        f"triaged automatically, {views:,} analyst views ({figures.assessed:,} assessments); "
        f"{seconds:.0f} s in all, crawls and assessments included"
    )
    return table_rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a list of 100k hashes and fewer reports"
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: make bench-hotline installs it (Debian package wrk)")
    sizes = QUICK if options.quick else FULL
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        intake = bench_intake(scratch, sizes)
        crawled = bench_crawl(scratch, sizes)
        saved, summary = bench_saved(scratch, sizes)
    print(f"\nload average (1 min): {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("\n(1) intake: one new URL per report; wrk 1 thread, 16 connections, "
          f"{sizes.wrk_seconds} s; in process {sizes.reports:,} reports")  # fmt: skip
    table(["intake", "reports/s", "p50 ms", "p99 ms", "errors", "ratio"], intake)
    print()
    table(["crawl + hash + triage", "runs x items", "items/s (best)",
           "hash_values alone: items/s (best)", "ratio"], crawled)  # fmt: skip
    print(f"\n{summary}")
    table(["items", "count", "triaged automatically", "viewed and assessed", "share automatic",
           "matched by", "PDQ distance median / max"], saved)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
