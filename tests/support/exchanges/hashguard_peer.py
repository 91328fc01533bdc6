"""A stand-in for another hashguard service's change feed (``GET /v1/lists/{name}/changes``)
on a loopback port: the changes it holds (``changes``, JSON as the feed sends them, corrupt
ones included), pages of at most ``page`` changes, and a failure to answer with from a given
request on (``fail_from``: every request numbered that or later answers ``failure``). It checks
the API key and keeps every request's path (``fetched``)."""

import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.loopback import Loopback


def change(version: int, value: str, kind: str = "add", signal: str = "md5") -> dict[str, Any]:
    """A change as the feed sends it."""
    shown: dict[str, Any] = {"version": version, "kind": kind, "entry": version,
                             "signal": signal, "value": value, "actor": "origin",
                             "at": "2024-05-01T00:00:00+00:00"}  # fmt: skip
    if kind == "add":
        source = {"organisation": "Origin", "reference": f"r{version}"}
        shown["labels"] = ["peer"]
        shown["provenance"] = {"submitted_by": "Origin", "assessed_by": "", "sources": [source]}
    return shown


class PeerFeed:
    def __init__(self, name: str, key: str, page: int = 1000) -> None:
        self.name = name
        self.key = key
        self.page = page
        self.changes: list[dict[str, Any]] = []
        self.fail_from: int | None = None
        overloaded = b'{"error": {"message": "overloaded"}}'
        self.failure: tuple[int, str, bytes] = (503, "application/json", overloaded)
        self.requests = 0
        self.lock = threading.Lock()
        self.server = Loopback(self._answer)
        self.url = self.server.url
        self.fetched = self.server.fetched

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests += 1
            number = self.requests
        if self.fail_from is not None and number >= self.fail_from:
            return self.failure
        if headers.get("Authorization") != f"Bearer {self.key}":
            return 401, "application/json", b'{"error": {"message": "no such key"}}'
        parts = urlsplit(path)
        if parts.path != f"/v1/lists/{self.name}/changes":
            return 404, "application/json", b'{"error": {"message": "no such list"}}'
        since = int(parse_qs(parts.query).get("since", ["0"])[0])
        after = self.changes[since : since + self.page]
        document = {"list": self.name, "version": len(self.changes), "since": since,
                    "changes": after}  # fmt: skip
        return 200, "application/json", json.dumps(document).encode()

    def close(self) -> None:
        self.server.close()
