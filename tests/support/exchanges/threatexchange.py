"""Meta ThreatExchange's Graph API on loopback (a real HTTP server in a thread): a privacy
group's ``GET /v21.0/{group}/threat_updates?fields=&limit=&start_time=`` as its documentation
and pytx describe it. Updates come in ``last_updated`` order from ``start_time`` (included),
``limit`` at a time (at most ``page_size``); a page with more after it has ``paging.next``,
an absolute URL with an ``after`` cursor (and the ``access_token`` when the request had it
there, as the Graph API does). Each update holds the fields asked for among id, indicator,
type, last_updated, should_delete (a tombstone: ``delete``) and tags
(``{"data": [{"text": ...}]}``).

The token is taken from ``Authorization: OAuth|Bearer TOKEN`` or ``access_token``; another is
answered as the Graph API does (HTTP 400, OAuthException 190), an unknown group with
GraphMethodException 100. Faults: ``add_raw(update)`` serves an update as given (a corrupt
record); ``corrupt_page(number, times)`` answers that page with HTML; ``answer_page(number,
status, body)`` answers it with that status and JSON body (an error the Graph API might send);
``slow_page(number)`` holds it until ``release()``. Requests (path and query, headers) are
kept in ``requests``.
"""

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

VERSION = "v21.0"
APP_ID = "1234567890123"


@dataclass
class Update:
    id: str
    type: str
    indicator: str
    last_updated: int
    should_delete: bool = False
    tags: list[str] = field(default_factory=list)
    raw: dict[str, Any] | None = None  # served as it is (a corrupt record)

    def json(self, fields: list[str]) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        full = {
            "id": self.id,
            "indicator": self.indicator,
            "type": self.type,
            "last_updated": self.last_updated,
            "should_delete": self.should_delete,
            "tags": {"data": [{"id": str(1000 + n), "text": t} for n, t in enumerate(self.tags)]},
        }
        return {name: full[name] for name in fields if name in full}


class ThreatExchangeStandIn:
    def __init__(self, groups: tuple[int, ...] = (1012185296055235,), page_size: int = 500) -> None:
        self.page_size = page_size  # the most a page holds, whatever limit asks
        self.token = f"{APP_ID}|{secrets.token_hex(16)}"
        self.groups = set(groups)
        self.updates: dict[int, dict[str, Update]] = {group: {} for group in groups}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.corrupt: dict[int, int | None] = {}  # page number -> times left (None: always)
        self.slow: set[int] = set()
        self.answers: dict[int, tuple[int, bytes]] = {}  # page number -> (status, JSON body)
        self.released = threading.Event()
        self.lock = threading.Lock()
        self._raw = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = stand_in.get(self.path, dict(self.headers))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a slow page): as it should

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/{VERSION}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- what the test sets ---------------------------------------------------------------

    def add(
        self,
        ident: str,
        kind: str,
        indicator: str,
        *,
        at: datetime,
        tags: tuple[str, ...] = (),
        group: int | None = None,
    ) -> None:
        """Add or update the indicator ``ident`` of ``group`` (the first by default)."""
        update = Update(ident, kind, indicator, int(at.timestamp()), tags=list(tags))
        with self.lock:
            self.updates[group or min(self.groups)][ident] = update

    def delete(self, ident: str, *, at: datetime, group: int | None = None) -> None:
        """A tombstone for ``ident`` (ThreatExchange keeps its type and indicator)."""
        with self.lock:
            held = self.updates[group or min(self.groups)]
            old = held.get(ident) or Update(ident, "HASH_PDQ", "", 0)
            held[ident] = Update(ident, old.type, old.indicator, int(at.timestamp()), True)

    def add_raw(self, update: dict[str, Any], *, at: datetime, group: int | None = None) -> None:
        """An update served exactly as ``update`` (a corrupt record), ordered at ``at``."""
        with self.lock:
            self._raw += 1
            key = f"raw-{self._raw}"
            self.updates[group or min(self.groups)][key] = Update(
                key, "", "", int(at.timestamp()), raw=update
            )

    def corrupt_page(self, number: int, times: int | None = None) -> None:
        self.corrupt[number] = times

    def answer_page(self, number: int, status: int, body: bytes) -> None:
        self.answers[number] = (status, body)

    def slow_page(self, number: int) -> None:
        self.slow.add(number)

    def release(self) -> None:
        self.released.set()

    # --- the API ------------------------------------------------------------------------------

    def get(self, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        self.requests.append((target, headers))
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        given = query.get("access_token", "")
        scheme, _, credential = headers.get("Authorization", "").partition(" ")
        if scheme in ("OAuth", "Bearer"):
            given = credential
        if not secrets.compare_digest(given, self.token):
            return _error(400, "Invalid OAuth access token - Cannot parse access token",
                          "OAuthException", 190)  # fmt: skip
        steps = parts.path.strip("/").split("/")
        if len(steps) != 3 or steps[0] != VERSION or steps[2] != "threat_updates":
            return _error(400, "Unknown path components", "OAuthException", 2500)
        if not steps[1].isdigit() or int(steps[1]) not in self.groups:
            return _error(400, f"Unsupported get request. Object with ID '{steps[1][:20]}' does "
                          "not exist", "GraphMethodException", 100)  # fmt: skip
        group = int(steps[1])
        fields = query.get("fields", "id").split(",")
        limit = min(int(query.get("limit", "25")), self.page_size)
        start = int(query.get("start_time", "0"))
        after = int(query.get("after", "0"))
        number = after // limit + 1
        if number in self.slow:
            self.released.wait(30)
        if number in self.answers:
            status, body = self.answers[number]
            return status, "application/json", body
        with self.lock:
            left = self.corrupt.get(number, 0)
            if number in self.corrupt and (left is None or left > 0):
                self.corrupt[number] = None if left is None else left - 1
                return 200, "text/html", b"<html><body>Please try again later</body></html>"
            chosen = sorted(
                (u for u in self.updates[group].values() if u.last_updated >= start),
                key=lambda u: (u.last_updated, u.id),
            )
        page = chosen[after : after + limit]
        document: dict[str, Any] = {"data": [update.json(fields) for update in page]}
        if after + limit < len(chosen):
            following = {**query, "after": str(after + limit)}
            document["paging"] = {
                "cursors": {"after": str(after + limit)},
                "next": f"{self.origin}{parts.path}?{urlencode(following)}",
            }
        return 200, "application/json", json.dumps(document).encode()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "ThreatExchangeStandIn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(status: int, message: str, kind: str, code: int) -> tuple[int, str, bytes]:
    body = {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "Atest"}}
    return status, "application/json", json.dumps(body).encode()
