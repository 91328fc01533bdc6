"""Fixtures of the port of HMA's own API tests (HMA 1.1.7 ``OpenMediaMatch/tests``): one real
``hashguard serve`` per database for the whole suite, allowed to fetch media from the loopback
image server, and reset before each test as HMA's ``app`` fixture resets its tables.

``make test-hma`` runs the suite alone; ``make test`` runs it with the rest.
"""

from collections.abc import Iterator

import pytest

from hashguard.store.database import open_engine

from support.database import scratch_database
from support.hma_port import HmaClient, ImageServer, Served, reset
from support.server import running

# HMA fetches media by URL from anywhere; hashguard only from the hosts and networks allowed.
FETCH_LOOPBACK = ("--fetch-host", "127.0.0.1", "--fetch-network", "127.0.0.1/32")


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """HMA's ``image_server``: two checkerboards served on loopback."""
    images = ImageServer()
    yield images
    images.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    image_server: ImageServer,
) -> Iterator[Served]:
    with (
        scratch_database(request.param, tmp_path_factory.mktemp("hma-port")) as url,
        running(url, *FETCH_LOOPBACK) as server,
    ):
        engine = open_engine(url)
        yield Served(server, engine)
        engine.dispose()


@pytest.fixture
def client(served: Served) -> HmaClient:
    """HMA's ``client`` (with its ``app``: the tables reset first), as an admin key."""
    hma = HmaClient(served.server)
    reset(hma, served.engine)
    return hma
