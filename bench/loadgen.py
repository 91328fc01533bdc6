"""An open-loop HTTP load generator: a fixed request rate, latency counted from when each was due.

    .venv/bin/python bench/loadgen.py URL PATH BODIES --token T --rate 2000 --seconds 20

``BODIES`` is a file of request bodies, one per line (sent in turn, as JSON, to ``PATH``); with
``--get``, of query strings (``GET PATH?<line>``). Request ``i`` is
due at ``start + i / rate`` whatever happened to the ones before it, and its latency runs from
that moment to the end of its response. A request that finds no idle connection waits for one,
and that wait counts too, so a slow server cannot hide its queue by slowing the sender down
(what closed-loop tools such as wrk do at saturation: "coordinated omission"). Prints one JSON
object: the rate achieved, latency percentiles in ms, errors (non-2xx, lost connections,
responses still missing 10 s after the last request was due), and the responses received in
all (warm-up included).
"""

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import uvloop

_TICK = 0.001  # how often the sender wakes to send what is due (libuv timers count whole ms)
_DRAIN = 10.0  # how long to wait for the last responses


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, generator: "Generator") -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.due = 0.0
        self.buffer = b""
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is duck-typed

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        status = int(head[0].split()[1])
        self.busy = False
        self.generator.completed(self, status, self.due)

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)


class Generator:
    def __init__(self, host: str, port: int, requests: list[bytes], rate: float) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.rate = rate
        self.idle: deque[Connection] = deque()
        self.waiting: deque[tuple[bytes, float]] = deque()
        self.latencies: list[float] = []
        self.dues: list[float] = []
        self.errors = 0
        self.answered = 0  # every response, warm-up included (the server's work)
        self.outstanding = 0
        self.record_after = 0.0

    async def connect(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, connection = await loop.create_connection(
                lambda: Connection(self), self.host, self.port
            )
            self.idle.append(connection)

    def dispatch(self, request: bytes, due: float) -> None:
        while self.idle:
            connection = self.idle.popleft()
            if connection.transport is not None and not connection.transport.is_closing():
                connection.send(request, due)
                return
        self.waiting.append((request, due))

    def completed(self, connection: Connection, status: int, due: float) -> None:
        self.outstanding -= 1
        self.answered += 1
        if due >= self.record_after:
            if 200 <= status < 300:
                self.latencies.append(time.perf_counter() - due)
                self.dues.append(due - self.record_after)
            else:
                self.errors += 1
        if self.waiting:
            request, next_due = self.waiting.popleft()
            connection.send(request, next_due)
        else:
            self.idle.append(connection)

    def lost(self, connection: Connection) -> None:
        if connection.busy:
            self.outstanding -= 1
            self.errors += 1
        asyncio.get_running_loop().create_task(self.connect(1))

    async def run(self, seconds: float, warmup: float, worst: int = 0) -> dict[str, float]:
        start = time.perf_counter() + 0.05
        self.record_after = start + warmup
        total = int((seconds + warmup) * self.rate)
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due_count = min(total, int((now - start) * self.rate) + 1) if now >= start else 0
            while sent < due_count:
                due = start + sent / self.rate
                self.outstanding += 1
                self.dispatch(self.requests[sent % len(self.requests)], due)
                sent += 1
            await asyncio.sleep(_TICK)
        finished = time.perf_counter()
        deadline = finished + _DRAIN
        while self.outstanding > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        self.errors += self.outstanding
        latencies = np.array(self.latencies) * 1000.0
        measured = finished - self.record_after
        for i in np.argsort(latencies)[len(latencies) - worst :]:  # where the stalls were
            print(f"due at {self.dues[i]:.3f} s: {latencies[i]:.1f} ms", file=sys.stderr)
        return {
            "rate": float(len(latencies) / measured) if measured > 0 else 0.0,
            "offered": self.rate,
            "p50": float(np.percentile(latencies, 50)) if len(latencies) else 0.0,
            "p90": float(np.percentile(latencies, 90)) if len(latencies) else 0.0,
            "p99": float(np.percentile(latencies, 99)) if len(latencies) else 0.0,
            "max": float(latencies.max()) if len(latencies) else 0.0,
            "errors": float(self.errors),
            "answered": float(self.answered),
        }


def requests(url: str, path: str, bodies: Path, token: str, get: bool = False) -> list[bytes]:
    host = urlsplit(url).netloc
    made = []
    for line in bodies.read_text().splitlines():
        if get:
            made.append(f"GET {path}?{line} HTTP/1.1\r\nHost: {host}\r\n"
                        f"Authorization: Bearer {token}\r\n\r\n".encode())  # fmt: skip
            continue
        body = line.encode()
        made.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("bodies", type=Path)
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--get", action="store_true", help="BODIES holds query strings")
    parser.add_argument("--worst", type=int, default=0, help="print the N slowest to stderr")
    options = parser.parse_args()
    split = urlsplit(options.url)
    generator = Generator(
        split.hostname or "127.0.0.1",
        split.port or 80,
        requests(options.url, options.path, options.bodies, options.token, options.get),
        options.rate,
    )

    async def go() -> dict[str, float]:
        await generator.connect(options.connections)
        return await generator.run(options.seconds, options.warmup, options.worst)

    print(json.dumps(uvloop.run(go())))


if __name__ == "__main__":
    sys.exit(main())
