"""What the exchange tests share: loopback allowed, a clock that moves only when told, a list
store that counts the commits it is told of, and an exchange reading a stand-in feed."""

import ipaddress
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from hashguard.exchanges.store import Exchanges
from hashguard.store.lists import ListStore

from support.exchanges.hashguard_peer import PeerFeed

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class Committed(ListStore):
    """A ListStore that counts the commits it is told of (a serving store catches up then)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.told = 0

    def committed(self) -> None:
        self.told += 1


def add_peer(exchanges: Exchanges, feed: PeerFeed, name: str = "PEER", interval: int = 60) -> None:
    """An exchange of the ``hashguard`` plug-in reading ``feed``."""
    exchanges.add(name, "hashguard", {"base_url": feed.url, "list": feed.name},
                  {"api_key": feed.key}, interval=interval, actor="tester")  # fmt: skip
