"""Fixtures of the port of HMA's own API tests (HMA 1.1.7 ``OpenMediaMatch/tests``): one real
``hashguard serve`` per database for the whole suite, allowed to fetch media from the loopback
image server, and reset before each test as HMA's ``app`` fixture resets its tables.

The servers are started on first use and kept until the session ends, whatever order the tests
run in (under xdist, one set per worker): a session fixture with database parameters would be
torn down and started again each time a worker's next test is on the other database.

``make test-hma`` runs the suite alone; ``make test`` runs it with the rest.
"""

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hashguard.store.database import open_engine

from support.database import scratch_database
from support.hma_port import ContentIds, HmaClient, ImageServer, Served, lists_held, reset
from support.server import Server, running

# HMA fetches media by URL from anywhere; hashguard only from the hosts and networks allowed.
FETCH_LOOPBACK = ("--fetch-host", "127.0.0.1", "--fetch-network", "127.0.0.1/32")
# HMA's test images are checkerboards, whose PDQ hash moves by about 100 bits under a 1 % resize:
# hashguard matches no such hash by default (stability below 50). Its tests run with the floor
# off, as a deployment that wants HMA's behaviour would.
HMA_STABILITY = ("--min-stability", "0")
# HMA's status tests wait for a server held behind its lists to turn stale: with the shortest
# bound a replica may have, that takes about 5 s instead of the default 30.
STALE_SOON = ("--max-lag", "1")
HELD_ON_SQLITE = (
    "SQLite (WAL) never blocks a reader, so a real server's index cannot be held unloaded or "
    "behind its lists there; this test runs on PostgreSQL"
)


class Servers:
    """The suite's servers, started when first asked for, stopped when the session ends."""

    def __init__(self, directory: Path, stack: ExitStack) -> None:
        self.directory = directory
        self.stack = stack
        self.served: dict[str, Served] = {}
        self.loading_server: Server | None = None

    def _database(self, kind: str, name: str) -> str:
        return self.stack.enter_context(scratch_database(kind, self.directory / name))

    def of(self, kind: str) -> Served:
        """The server on a database of ``kind`` (sqlite, postgresql)."""
        if kind not in self.served:
            (self.directory / kind).mkdir()
            url = self._database(kind, kind)
            server = self.stack.enter_context(
                running(url, *FETCH_LOOPBACK, *HMA_STABILITY, *STALE_SOON)
            )
            engine = open_engine(url)
            self.stack.callback(engine.dispose)
            self.served[kind] = Served(server, engine)
        return self.served[kind]

    def loading(self) -> Server:
        """A PostgreSQL server whose index is not loaded: it started while its lists could not
        be read, and stays so until the session ends."""
        if self.loading_server is None:
            (self.directory / "loading").mkdir()
            url = self._database("postgresql", "loading")
            engine = open_engine(url)
            self.stack.callback(engine.dispose)
            hold = ExitStack()
            hold.enter_context(lists_held(engine))
            try:
                server = self.stack.enter_context(running(url, ready=False))
            finally:
                self.stack.callback(hold.close)  # released before the server stops
            self.loading_server = server
        return self.loading_server


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """HMA's ``image_server``: two checkerboards served on loopback."""
    images = ImageServer()
    yield images
    images.close()


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, image_server: ImageServer
) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(tmp_path_factory.mktemp("hma-port"), stack)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, servers: Servers) -> Served:
    """The suite's server on SQLite, then on PostgreSQL."""
    return servers.of(request.param)


@pytest.fixture
def loading(served: Served, servers: Servers) -> Server:
    """A server whose index is not loaded (HMA fakes a cache with ``is_ready`` false)."""
    if served.engine.dialect.name != "postgresql":
        pytest.skip(HELD_ON_SQLITE)
    return servers.loading()


@pytest.fixture
def client(served: Served) -> HmaClient:
    """HMA's ``client`` (with its ``app``: the tables reset first), as an admin key."""
    hma = HmaClient(served.server)
    reset(hma)
    return hma


@pytest.fixture
def content_ids(client: HmaClient) -> ContentIds:
    """HMA's content ids of a fresh database (1, 2, ...), as this server hands them out now."""
    return ContentIds(client)
