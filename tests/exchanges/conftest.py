"""Fixtures of the exchange tests: a stepping clock, the exchanges of a scratch database (both
kinds), fetched over loopback, and a stand-in of a hashguard change feed."""

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Sync

from support.exchanges.harness import LOOPBACK, Clock, Committed
from support.exchanges.hashguard_peer import PeerFeed

PEER_KEY = "hg_peer_" + secrets.token_hex(16)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secret() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def exchanges(engine: Engine, clock: Clock, secret: bytes) -> Exchanges:
    return Exchanges(engine, Committed(engine), Sealer(secret), clock, LOOPBACK)


@pytest.fixture
def sync(exchanges: Exchanges) -> Sync:
    return Sync(exchanges, LOOPBACK, timeout=20)


@pytest.fixture
def feed() -> Iterator[PeerFeed]:
    served = PeerFeed("known", PEER_KEY)
    yield served
    served.close()
