"""The service for an hour: steady match load, list changes and webhook traffic at once.

    make bench-soak    # or: .venv/bin/python bench/soak.py [--size 10000000] [--minutes 60]

A SQLite database holds one list of ``--size`` PDQ hashes (``hashsets.generate``, as
bench/service.py builds it); ``hashguard serve`` runs as its own process. For ``--minutes``:

  - ``POST /v1/match/hashes`` at ``--rate`` requests/s, one PDQ hash each, from ``loadgen.py``
    (fixed rate, latency counted from when each request was due), in one-minute runs back to
    back: 1 % of the queries are edits of a listed hash (matched, stored in the match log);
  - list changes: a curator imports ``--batch`` new hashes into a second list every
    ``--change-every`` seconds (each import a new list version the Matcher takes in);
  - webhook traffic: a service's key matches one listed hash a second; each match opens a
    detection and quarantines the upload (the service is called at its webhook, a real receiver
    on loopback here); a reviewer confirms each, has it removed (a second call) and closes it.

Every 5 s the server's resident memory, open file descriptors and threads are read from /proc.
Printed at the end: one row per minute (requests/s, p50, p99, errors, memory, descriptors),
then the verdict: memory growth after the warm-up (target < 5 %), errors (target 0: failed
requests, failed changes, webhook calls not delivered), descriptors at start and end.
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashsets import pool
from report import table
from service import Server, at_rate, build, hash_bodies

SAMPLE_EVERY = 5.0  # seconds between readings of the server's memory and descriptors


class Sample(NamedTuple):
    at: float  # seconds since the soak started
    mb: float  # resident memory
    fds: int  # open file descriptors
    threads: int


class Receiver(ThreadingHTTPServer):
    """A service's webhook endpoint on loopback: answers 200 and counts the calls by event."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Hook)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        event = self.headers.get("X-Hashguard-Event", "?")
        with self.server.lock:
            self.server.calls[event] = self.server.calls.get(event, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Soak:
    """The side traffic and the readings, on threads, until ``stop`` is set."""

    def __init__(self, server: Server, tokens: dict[str, str], listed: np.ndarray,
                 batch: int, change_every: float) -> None:  # fmt: skip
        self.server = server
        self.tokens = tokens
        self.listed = listed
        self.batch = batch
        self.change_every = change_every
        self.stop = threading.Event()
        self.samples: list[Sample] = []
        self.changes = 0
        self.change_errors: list[str] = []
        self.detections = 0
        self.reviewed = 0
        self.review_errors: list[str] = []
        self.started = time.monotonic()
        runs = (self._sample, self._change, self._match, self._review)
        self.threads = [threading.Thread(target=run, daemon=True) for run in runs]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)

    def _headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def _sample(self) -> None:
        pid = self.server.process.pid
        while not self.stop.is_set():
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
            threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            descriptors = len(os.listdir(f"/proc/{pid}/fd"))
            self.samples.append(Sample(time.monotonic() - self.started, rss, descriptors, threads))
            self.stop.wait(SAMPLE_EVERY)

    def _change(self) -> None:
        rng = np.random.default_rng(11)
        with httpx.Client(base_url=self.server.base, timeout=120) as client:
            while not self.stop.wait(self.change_every):
                values = rng.integers(0, 256, (self.batch, 32), dtype=np.uint8)
                body = "".join(row.tobytes().hex() + "\n" for row in values).encode()
                try:
                    answer = client.post("/v1/lists/incoming/import", content=body,
                                         params={"format": "text", "signal": "pdq"},
                                         headers=self._headers("curator"))  # fmt: skip
                except httpx.HTTPError as error:
                    self.change_errors.append(f"import: {error!r}")
                    continue
                if answer.status_code == 200:
                    self.changes += 1
                else:
                    self.change_errors.append(f"import: {answer.status_code} {answer.text[:200]}")

    def _match(self) -> None:
        """One listed hash a second through the service's key: each opens a detection."""
        n = 0
        with httpx.Client(base_url=self.server.base, timeout=60) as client:
            while not self.stop.wait(1.0):
                value = self.listed[n % len(self.listed)].tobytes().hex()
                n += 1
                body = {"hashes": [{"signal": "pdq", "value": value,
                                    "content_ref": f"soak-upload-{n}"}]}  # fmt: skip
                try:
                    answer = client.post("/v1/match/hashes", json=body,
                                         headers=self._headers("service"))  # fmt: skip
                except httpx.HTTPError as error:
                    self.review_errors.append(f"service match: {error!r}")
                    continue
                if answer.status_code == 200:
                    self.detections += 1
                else:
                    self.review_errors.append(f"service match: {answer.status_code}")

    def _review(self) -> None:
        """Each open detection (quarantined at once through the webhook, as the service's
        profile allows) confirmed, removed (a second webhook call) and closed."""
        reason = {"reason": "soak test: a benign listed hash"}
        steps = (("decision", {"decision": "confirm", **reason}, 200),
                 ("actions", {"kind": "remove", **reason}, 201), ("close", None, 200))  # fmt: skip
        with httpx.Client(base_url=self.server.base, timeout=60,
                          headers=self._headers("reviewer")) as client:  # fmt: skip
            while not self.stop.wait(2.0):
                try:
                    found = client.get("/v1/detections", params={"limit": 100})
                    found.raise_for_status()
                    for detection in found.json()["detections"]:
                        if self.stop.is_set():
                            break
                        for step, body, status in steps:
                            path = f"/v1/detections/{detection['id']}/{step}"
                            answer = client.post(path, json=body)
                            if answer.status_code != status:
                                self.review_errors.append(
                                    f"{step}: {answer.status_code} {answer.text[:200]}"
                                )
                                break
                        else:
                            self.reviewed += 1
                except httpx.HTTPError as error:
                    self.review_errors.append(f"review: {error!r}")


def prepare(
    directory: Path, size: int, receiver: Receiver
) -> tuple[str, dict[str, str], np.ndarray, np.ndarray]:
    """The database (one list of ``size`` hashes, a second for the changes), keys by role plus
    a key of a service whose webhook is ``receiver``."""
    url, tokens, queries, entries = build(directory, size, pool())
    engine = open_engine(url)
    ServiceStore(engine).create("soak", webhook_url=receiver.url, actor="bench")
    _, tokens["service"] = ApiKeyStore(engine).create(Role.MATCHER, ["bench"], name="soak service",
                                                      service="soak")  # fmt: skip
    engine.dispose()
    return url, tokens, queries, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=int, default=1000, help="match requests/s")
    parser.add_argument("--warm-up", type=int, default=5, help="minutes before memory is judged")
    parser.add_argument("--batch", type=int, default=200, help="hashes per list change")
    parser.add_argument("--change-every", type=float, default=2.0, help="seconds between changes")
    parser.add_argument("--server", default="uvicorn", help="the server core: uvicorn, granian")
    parser.add_argument("--port", type=int, default=8751)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    options = parser.parse_args()
    if options.warm_up >= options.minutes:
        raise SystemExit("--warm-up must be shorter than --minutes")
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        url, tokens, queries, entries = prepare(directory, options.size, receiver)
        bodies = directory / "bodies.jsonl"
        hash_bodies(bodies, queries)
        server = Server(url, options.port, "--server", options.server)
        started = time.perf_counter()
        server.loaded.wait()
        if not any("lists loaded" in line for line in server.lines):
            server.stop()
            raise SystemExit("the server did not start:\n" + "".join(server.lines))
        print(f"lists loaded in {time.perf_counter() - started:.0f} s", flush=True)
        soak = Soak(server, tokens, entries[:10_000], options.batch, options.change_every)
        minutes: list[dict[str, float]] = []
        try:
            soak.start()
            for minute in range(1, options.minutes + 1):
                figures = at_rate(server.base, bodies, tokens["matcher"], options.rate, 60)
                figures["minute"] = minute
                figures["elapsed"] = time.monotonic() - soak.started
                minutes.append(figures)
                last = soak.samples[-1]
                print(f"minute {minute}: {figures['rps']:,.0f}/s p50 {figures['p50']:.1f} ms "
                      f"p99 {figures['p99']:.1f} ms errors {figures['errors']:.0f}; "
                      f"{last.mb:,.0f} MB, {last.fds} fds", flush=True)  # fmt: skip
        finally:
            soak.finish()
            expected = soak.detections + soak.reviewed  # the last calls leave within seconds
            deadline = time.monotonic() + 30
            while sum(receiver.calls.values()) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
            delivered = dict(receiver.calls)
            server.stop()
            receiver.shutdown()
    report(options, minutes, soak, delivered)


def _until(samples: list[Sample], elapsed: float) -> list[Sample]:
    """The readings up to ``elapsed`` seconds (at least the first)."""
    return [s for s in samples if s.at <= elapsed] or samples[:1]


def report(options: argparse.Namespace, minutes: list[dict[str, float]], soak: Soak,
           delivered: dict[str, int]) -> None:  # fmt: skip
    rows = []
    for figures in minutes:
        sample = _until(soak.samples, figures["elapsed"])[-1]
        rows.append([str(int(figures["minute"])), f"{figures['rps']:,.0f}", f"{figures['p50']:.1f}",
                     f"{figures['p99']:.1f}", f"{figures['errors']:.0f}", f"{sample.mb:,.0f}",
                     str(sample.fds), str(sample.threads)])  # fmt: skip
    print(f"\n{options.size:,} hashes, {options.server}, {options.rate:,} match requests/s offered "
          f"(loadgen.py, one-minute runs), a change of {options.batch} hashes every "
          f"{options.change_every:g} s, a detection a second reviewed (webhooks)")  # fmt: skip
    table(["minute", "requests/s", "p50 ms", "p99 ms", "errors", "memory MB", "fds", "threads"],
          rows)  # fmt: skip
    warmed = minutes[options.warm_up - 1]["elapsed"]
    warm = _until(soak.samples, warmed)[-1].mb
    after = [s.mb for s in soak.samples if s.at > warmed]
    end = statistics.mean(after[-6:]) if after else warm
    growth = (end - warm) / warm
    load_errors = sum(f["errors"] for f in minutes)
    webhooks = sum(delivered.values())
    # Each detection is quarantined through the webhook, each one reviewed removed.
    missing = max(0, soak.detections + soak.reviewed - webhooks)
    backlog = soak.detections - soak.reviewed
    errors = int(load_errors) + len(soak.change_errors) + len(soak.review_errors) + missing
    p99s = [f["p99"] for f in minutes]
    print(f"\nmemory: {warm:,.0f} MB after the {options.warm_up}-minute warm-up, "
          f"{end:,.0f} MB at the end: {growth:+.1%} "
          f"(target < 5 %: {'met' if growth < 0.05 else 'MISSED'})")  # fmt: skip
    print(f"errors: {errors} (load {load_errors:.0f}, changes {len(soak.change_errors)}, "
          f"review {len(soak.review_errors)}, webhook calls missing {missing}; "
          f"target 0: {'met' if errors == 0 else 'MISSED'})")  # fmt: skip
    for line in (soak.change_errors + soak.review_errors)[:10]:
        print(f"  {line}")
    print(f"p99 per minute: median {statistics.median(p99s):.1f} ms, worst {max(p99s):.1f} ms")
    print(f"file descriptors: {soak.samples[0].fds} at start, {soak.samples[-1].fds} at the "
          f"end, at most {max(s.fds for s in soak.samples)}")  # fmt: skip
    print(f"list changes: {soak.changes}; detections opened: {soak.detections}, confirmed, "
          f"removed and closed: {soak.reviewed} (backlog {backlog}); webhook calls "
          f"received: {webhooks} {delivered}")  # fmt: skip
    if options.json:
        options.json.write_text(json.dumps({
            "options": {k: str(v) for k, v in vars(options).items()}, "minutes": minutes,
            "samples": soak.samples, "changes": soak.changes, "change_errors": soak.change_errors,
            "review_errors": soak.review_errors, "webhooks": delivered,
            "growth": growth, "errors": errors,
        }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
