"""A real ``hashguard serve`` process on a loopback port, for the service tests.

The server is ready when its log says the lists are loaded; its output is kept (every line) so
tests can check what it logs. Keys for every role are created in the database beforehand.
"""

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine

HASHGUARD = str(Path(sys.executable).with_name("hashguard"))
STARTUP_SECONDS = 120


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, database_url: str) -> None:
        self.process = process
        self.url = url
        self.database_url = database_url
        self.log: list[str] = []
        self.logged = threading.Condition()  # notified at each line the server prints
        self.tokens: dict[str, str] = {}  # role -> token
        self.secret_file = Path()  # the server's secret (webhook signatures)
        self.client = httpx.Client(base_url=url, timeout=60)
        self.started = threading.Event()  # set when it listens, or when it ended

    def wait_for_log(self, text: str, timeout: float = 30) -> bool:
        """Whether the server prints a line holding ``text`` (within ``timeout`` seconds):
        its output is read by another thread, a little after each request."""
        with self.logged:
            return self.logged.wait_for(lambda: any(text in line for line in self.log), timeout)

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = None, **options: Any) -> httpx.Response:
        return self.request("GET", path, role, **options)

    def post(self, path: str, role: str | None = None, **options: Any) -> httpx.Response:
        return self.request("POST", path, role, **options)

    def request(
        self, method: str, path: str, role: str | None = None, **options: Any
    ) -> httpx.Response:
        """``method path`` with ``role``'s key (none for None), plus any ``headers`` given."""
        headers = {**self.headers(role), **options.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **options)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LISTENING = "Uvicorn running on"
GRANIAN_LISTENING = "Listening at: "  # serve --server granian


def listening(line: str) -> bool:
    """Whether the server's ``line`` says it listens (under either server core)."""
    return LISTENING in line or GRANIAN_LISTENING in line


PORT_TAKEN = "address already in use"  # another test took the free port before the server bound it
PORT_ATTEMPTS = 3


@contextmanager
def running(
    database_url: str,
    *options: str,
    roles: bool = True,
    environment: Mapping[str, str] = {},
    ready: bool = True,
) -> Iterator[Server]:
    """Serve ``database_url`` until the block ends; keys for every role (``server.tokens``).
    ``environment`` adds to (or replaces some of) the server's environment variables. The block
    starts once the server is ready (its lists loaded), or, with ``ready=False``, as soon as it
    listens."""
    engine = open_engine(database_url)
    tokens = {}
    if roles:
        keys = ApiKeyStore(engine)
        tokens = {role.value: keys.create(role, name=f"test {role.value}",
                                          hoster="test hoster" if role is Role.HOSTER else None)[1]
                  for role in Role}  # fmt: skip
    engine.dispose()
    # One secret per database: a restart on the same database keeps its configuration.
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    secret_file = Path(tempfile.gettempdir()) / f"hashguard-test-secret-{digest}.key"
    takedown_key = Path(tempfile.gettempdir()) / f"hashguard-test-takedown-{digest}.key"
    env = {**os.environ, "HASHGUARD_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1",
           "HASHGUARD_SECRET_FILE": str(secret_file),
           "HASHGUARD_TAKEDOWN_KEY": str(takedown_key), **environment}  # fmt: skip
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server, reader = _start(env, options)
        server.started.wait(STARTUP_SECONDS)
        if any(map(listening, server.log)):  # not poll(): its output may end before it does
            break
        _stop(server, reader)
        taken = any(PORT_TAKEN in line.lower() for line in server.log)
        if not taken or attempt == PORT_ATTEMPTS:
            raise RuntimeError("hashguard serve did not start:\n" + "".join(server.log))
    server.tokens = tokens
    server.secret_file = secret_file
    try:
        if ready:
            wait_until_ready(server)
        yield server
    finally:
        _stop(server, reader)


def _start(env: dict[str, str], options: tuple[str, ...]) -> tuple[Server, threading.Thread]:
    """A ``hashguard serve`` process on a free port, and the thread reading its output
    (``server.started`` is set once it listens, or once it ended)."""
    port = free_port()
    process = subprocess.Popen(
        [HASHGUARD, "serve", "--port", str(port), "--access-log", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    server = Server(process, f"http://127.0.0.1:{port}", env["HASHGUARD_DATABASE_URL"])

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with server.logged:
                server.log.append(line)
                server.logged.notify_all()
            if listening(line):
                server.started.set()
        server.started.set()  # the process ended: let the waiter see it

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    return server, reader


def _stop(server: Server, reader: threading.Thread) -> None:
    server.client.close()
    server.process.terminate()
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    reader.join(10)


def wait_until_ready(server: Server) -> None:
    """Block until the server logs that its lists are loaded and /status/ready agrees."""
    if not server.wait_for_log("lists loaded", STARTUP_SECONDS):
        raise RuntimeError("the server never loaded its lists:\n" + "".join(server.log))
    answer = server.get("/status/ready")
    if answer.status_code != 200:
        raise RuntimeError(f"loaded but not ready: {answer.text}")
