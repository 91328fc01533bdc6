"""A StopNCII stand-in: a real HTTP server on loopback implementing the hash exchange API
(docs/research/exchange-formats.md §3) with benign hashes.

``GET /v1/FetchHashes?startTimestamp=S&pageSize=P[&nextPageToken=T]`` answers the hash records
last modified at or after S, oldest first, P at a time: ``count``, ``hashRecords``,
``hasMoreRecords``, ``nextPageToken`` (while there are more; bound to S, refused with 400 for
another S or when ``expire_tokens()`` was called) and ``nextSetTimestamp`` (while there are
more, the last record's time; after the last page, the second after the stand-in's clock).
Records are snapshots: a hash's new status replaces its record, which moves to the end.
``POST /v1/SubmitFeedback`` keeps what it receives (``feedback``). Every request needs the keys
(``x-functions-key`` for the endpoint, ``Ocp-Apim-Subscription-Key``): without them, 401 as
Azure API Management answers.

What a test can make happen: ``add``/``withdraw`` records, ``add_raw`` a record as it is (a
corrupt one), ``poison`` a record so every page holding it is served as broken JSON (the
ThreatExchange #2004 story), ``corrupt_next`` pages once (a truncated answer that heals),
``hold_next`` page until the test or ``close`` releases it (a slow page), ``refuse_keys``.

    with StopNciiStandIn() as stopncii:
        stopncii.add("aa" * 32)
        ... Http(stopncii.base_url, networks=[ip_network("127.0.0.0/8")]) ...
"""

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

FETCH_KEY: Final = "fetch-function-key-for-tests"
FEEDBACK_KEY: Final = "feedback-function-key-for-tests"
SUBSCRIPTION_KEY: Final = "subscription-key-for-tests"
START: Final = 1_700_000_000


@dataclass
class Request:
    method: str
    path: str  # without the query
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Stored:
    key: tuple[str, str]
    record: dict[str, Any]
    poisoned: bool = False


@dataclass
class StopNciiStandIn:
    fetch_key: str = FETCH_KEY
    feedback_key: str = FEEDBACK_KEY
    subscription_key: str = SUBSCRIPTION_KEY
    now: int = START
    requests: list[Request] = field(default_factory=list)
    feedback: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[_Stored] = []
        self.corrupt_pages = 0
        self.deep_pages = 0
        self.held = 0
        self.release = threading.Event()
        self.holding = threading.Event()  # a held page's request has arrived
        self.refused = False
        self.token_epoch = 0
        self.cases = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in._serve(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                stand_in._serve(self, self.rfile.read(length))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def __enter__(self) -> "StopNciiStandIn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # --- what the test makes happen ------------------------------------------------------------

    def add(self, value: str, status: str = "Active", signal_type: str = "ImagePDQ") -> int:
        """A victim's hash (a new record, or the hash's record replaced); its time."""
        with self.lock:
            self.cases += 1
            case = f"00000000-0000-4000-8000-{self.cases:012d}"
            return self._put(
                {
                    "signalType": signal_type,
                    "hashValue": value,
                    "hashStatus": status,
                    "caseNumbers": {case: status},
                    "CSPFeedbacks": [],
                }
            )

    def withdraw(self, value: str, status: str = "Withdrawn", signal_type: str = "ImagePDQ") -> int:
        """The victim withdrew ``value``: its record replaced by one of ``status`` (every case
        too); its time."""
        with self.lock:
            old = next(s for s in self.records if s.key == (signal_type, value))
            cases = dict.fromkeys(old.record["caseNumbers"], status)
            return self._put({**old.record, "hashStatus": status, "caseNumbers": cases})

    def add_raw(self, record: dict[str, Any], poisoned: bool = False) -> int:
        """``record`` served as it is (with a time added); ``poisoned``: every page holding it
        is served as broken JSON."""
        with self.lock:
            self.now += 1
            stored = {**record, "lastModtimestamp": self.now}
            self.records.append(_Stored(("raw", str(self.now)), stored, poisoned))
            return self.now

    def poison(self, value: str, signal_type: str = "ImagePDQ") -> int:
        """A record for ``value`` whose every page the server answers with broken JSON; its
        time."""
        with self.lock:
            self.cases += 1
            self.now += 1
            record = {
                "lastModtimestamp": self.now,
                "signalType": signal_type,
                "hashValue": value,
                "hashStatus": "Active",
                "caseNumbers": {f"00000000-0000-4000-8000-{self.cases:012d}": "Active"},
            }
            self.records.append(_Stored((signal_type, value), record, poisoned=True))
            return self.now

    def corrupt_next(self, pages: int = 1) -> None:
        """The next ``pages`` FetchHashes answers are truncated (a transient fault)."""
        with self.lock:
            self.corrupt_pages += pages

    def nest_next(self, pages: int = 1) -> None:
        """The next ``pages`` FetchHashes answers hold their records inside arrays nested
        100,000 deep: valid JSON no parser's recursion reaches the bottom of."""
        with self.lock:
            self.deep_pages += pages

    def hold_next(self) -> None:
        """The next FetchHashes answer waits until ``release`` is set (or the stand-in closes)."""
        with self.lock:
            self.held += 1

    def refuse_keys(self, refused: bool = True) -> None:
        with self.lock:
            self.refused = refused

    def expire_tokens(self) -> None:
        """Page tokens handed out so far are no longer valid (StopNCII: "not valid over long
        periods of time")."""
        with self.lock:
            self.token_epoch += 1

    def fetches(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/FetchHashes")]

    # --- the server ----------------------------------------------------------------------------

    def _put(self, record: dict[str, Any]) -> int:
        self.now += 1
        key = (str(record["signalType"]), str(record["hashValue"]))
        self.records = [s for s in self.records if s.key != key]
        self.records.append(_Stored(key, {**record, "lastModtimestamp": self.now}))
        return self.now

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Request(handler.command, parts.path, params, headers, body)
        with self.lock:
            self.requests.append(request)
        status, answer = self._answer(request)
        content = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client that gave up at its deadline

    def _answer(self, request: Request) -> tuple[int, Any]:
        endpoints = {
            ("GET", "/v1/FetchHashes"): self.fetch_key,
            ("POST", "/v1/SubmitFeedback"): self.feedback_key,
        }
        function_key = endpoints.get((request.method, request.path))
        if function_key is None:
            return 404, {"statusCode": 404, "message": "Resource not found"}
        with self.lock:
            refused = self.refused
        if refused or request.headers.get("ocp-apim-subscription-key") != self.subscription_key:
            return 401, {
                "statusCode": 401,
                "message": "Access denied due to invalid subscription key. Make sure to "
                "provide a valid key for an active subscription.",
            }
        if request.headers.get("x-functions-key") != function_key:
            return 401, {"statusCode": 401, "message": "Unauthorized"}
        if request.path.endswith("/SubmitFeedback"):
            return self._take_feedback(request)
        return self._fetch(request)

    def _take_feedback(self, request: Request) -> tuple[int, Any]:
        try:
            document = json.loads(request.body)
            items = document["hashFeedbacks"]
            assert document["count"] == len(items)
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"statusCode": 400, "message": "Invalid feedback payload"}
        with self.lock:
            self.feedback.append(request)
        return 200, {"count": len(items)}

    def _fetch(self, request: Request) -> tuple[int, Any]:
        try:
            start = int(request.params["startTimestamp"])
            size = int(request.params.get("pageSize", "800"))
        except (KeyError, ValueError):
            return 400, {"statusCode": 400, "message": "startTimestamp is required"}
        with self.lock:
            offset = 0
            if token := request.params.get("nextPageToken"):
                try:
                    bound = json.loads(base64.b64decode(token))
                    valid = bound["start"] == start and bound["epoch"] == self.token_epoch
                    offset = int(bound["offset"])
                except (ValueError, KeyError, TypeError):
                    valid = False
                if not valid:
                    return 400, {"statusCode": 400, "message": "Invalid nextPageToken"}
            chosen = [s for s in self.records if s.record["lastModtimestamp"] >= start]
            page = chosen[offset : offset + size]
            more = offset + size < len(chosen)
            next_token = {"start": start, "offset": offset + size, "epoch": self.token_epoch}
            document = {
                "count": len(page),
                "nextPageToken": base64.b64encode(json.dumps(next_token).encode()).decode()
                if more
                else None,
                "nextSetTimestamp": page[-1].record["lastModtimestamp"] if more else self.now + 1,
                "hasMoreRecords": more,
                "hashRecords": [s.record for s in page],
            }
            broken = any(s.poisoned for s in page) or self.corrupt_pages > 0
            self.corrupt_pages = max(0, self.corrupt_pages - 1)
            deep = not broken and self.deep_pages > 0
            self.deep_pages = max(0, self.deep_pages - 1) if deep else self.deep_pages
            hold = self.held > 0
            self.held = max(0, self.held - 1)
        if hold:
            self.holding.set()
            self.release.wait()
        if broken:
            # What #2004 saw: HTTP 200 and a body with a delimiter missing between records.
            text = json.dumps(document).replace("}, {", "} {", 1)
            if text == json.dumps(document):
                text = text[: len(text) // 2]
            return 200, text.encode()
        if deep:
            records = json.dumps(document["hashRecords"])
            nested = "[" * 100_000 + records + "]" * 100_000
            text = json.dumps({**document, "hashRecords": None}).replace(
                '"hashRecords": null', f'"hashRecords": {nested}'
            )
            return 200, text.encode()
        return 200, document
