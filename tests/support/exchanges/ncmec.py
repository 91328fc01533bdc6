"""NCMEC's hash sharing API v2 on loopback (a real HTTP server in a thread), as its
documentation and pytx's client describe it:

- ``GET /v2/entries?from=&to=`` (UTC, ``%Y-%m-%dT%H:%M:%SZ``): the entries whose timestamp lies
  in [from, to), current state only (an update replaces the entry, a deletion turns it into a
  ``deletedImage`` / ``deletedVideo``), ``page_size`` at a time and NOT in time order (as NCMEC
  warns); a page with more after it has ``paging/next`` = ``/v2/entries?from&to&start&size&max``
  (XML-escaped).
- ``GET /v2/feedback/{TYPE}/reasons``: ``availableFeedbackReasons``.
- ``PUT /v2/entries/{espId}/{entryId}/{TYPE}/feedback``: kept in ``feedback``.
- HTTP Basic credentials: anything else is 401.

Faults a test asks for: ``corrupt_page(start, times)`` answers the page at ``start`` with HTML
instead of XML (``times`` times; None: always); ``add(..., raw=...)`` serves an entry's XML as
given (a corrupt record); ``slow_page(start)`` holds the page at ``start`` until ``release()``.
Every request's method and path is kept in ``requests``.

    with NcmecStandIn() as ncmec:
        ncmec.add(7, "e1", at=t, md5=..., pdq=..., classification="A1")
        ncmec.delete(7, "e0", at=t)
"""

import base64
import secrets
import threading
import zlib
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree.ElementTree import fromstring
from xml.sax.saxutils import escape, quoteattr

NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
FORMAT = "%Y-%m-%dT%H:%M:%SZ"
REASONS = {
    "PDQ": {"a1b2c3d4-0000-4000-8000-000000000001": "Not CSAM"},
    "MD5": {
        "a1b2c3d4-0000-4000-8000-000000000002": "Not CSAM",
        "a1b2c3d4-0000-4000-8000-000000000003": "Poor quality",
    },
    "SHA1": {"a1b2c3d4-0000-4000-8000-000000000004": "Not CSAM"},
}


@dataclass
class Entry:
    member: int
    id: str
    media: str  # image | video
    at: int  # Unix seconds
    classification: str = ""
    fingerprints: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    raw: str = ""  # served as it is instead (a corrupt record)

    def xml(self, members: dict[int, str]) -> str:
        if self.raw:
            return self.raw
        name = escape(members.get(self.member, ""))
        head = f"<member id={quoteattr(str(self.member))}>{name}</member>"
        head += f"<timestamp>{_format(self.at)}</timestamp>"
        head += f"<id>{escape(self.id)}</id>"
        if self.deleted:
            tag = "deleted" + self.media.capitalize()
            return f"<{tag}>{head}</{tag}>"
        if self.classification:
            head += f"<classification>{escape(self.classification)}</classification>"
        prints = "".join(
            f'<{name} rel="self" href="{text[5:]}"/>'
            if text.startswith("href:")
            else f"<{name}>{escape(text)}</{name}>"
            for name, text in self.fingerprints.items()
        )
        return (
            f"<{self.media}>{head}<fingerprints>{prints}</fingerprints><feedback/></{self.media}>"
        )


@dataclass(frozen=True)
class Feedback:
    member: str
    entry: str
    type: str
    verdict: str  # affirmative | negative
    reasons: tuple[str, ...]
    content_type: str


class NcmecStandIn:
    def __init__(self, page_size: int = 1000, members: dict[int, str] | None = None) -> None:
        self.username = "hashguard-test"
        self.password = secrets.token_urlsafe(16)
        self.page_size = page_size
        self.members = members or {7: "Example ESP", 8: "Other ESP", 9: "Third ESP"}
        self.entries: dict[tuple[int, str, str], Entry] = {}
        self.order: list[tuple[int, tuple[int, str, str]]] = []  # (at, key), sorted
        self.requests: list[tuple[str, str]] = []
        self.feedback: list[Feedback] = []
        self.corrupt: dict[int, int | None] = {}  # page start -> times left (None: always)
        self.slow: set[int] = set()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self._selection: dict[tuple[int, int], list[Entry]] = {}
        self._rendered: dict[tuple[int, str, str], str] = {}  # entries' XML, built once
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer(*stand_in.get(self.path, self.headers.get("Authorization", "")))

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = stand_in.put(
                    self.path,
                    self.headers.get("Authorization", ""),
                    self.headers.get("Content-Type", ""),
                    body,
                )
                self.answer(*answer)

            def answer(self, status: int, kind: str, content: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a slow page): as it should

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hashsharing"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- what the test sets ---------------------------------------------------------------

    def add(
        self,
        member: int,
        entry_id: str,
        *,
        at: datetime,
        media: str = "image",
        classification: str = "",
        raw: str = "",
        **fingerprints: str,
    ) -> None:
        """Add or replace an entry (``fingerprints``: element name -> text; ``tmk_pdqf`` is
        ``tmk-pdqf``; "href:/v2/..." a large fingerprint served by URL)."""
        prints = {name.replace("_", "-"): text for name, text in fingerprints.items()}
        self._put(Entry(member, entry_id, media, _seconds(at), classification, prints, raw=raw))

    def add_many(self, entries: list[Entry]) -> None:
        """Many entries added or replaced at once (a benchmark's million), their XML built
        now, so serving a page costs the stand-in little."""
        with self.lock:
            for entry in entries:
                key = (entry.member, entry.media, entry.id)
                self.entries[key] = entry
                self._rendered[key] = entry.xml(self.members)
            self.order = sorted((e.at, k) for k, e in self.entries.items())
            self._selection.clear()

    def delete(self, member: int, entry_id: str, *, at: datetime, media: str = "image") -> None:
        self._put(Entry(member, entry_id, media, _seconds(at), deleted=True))

    def corrupt_page(self, start: int = 1, times: int | None = None) -> None:
        """Answer the page starting at entry ``start`` with an HTML error page, ``times``
        times (None: every time)."""
        self.corrupt[start] = times

    def slow_page(self, start: int = 1) -> None:
        """Hold the page at ``start`` until ``release()``."""
        self.slow.add(start)

    def release(self) -> None:
        self.released.set()

    def _put(self, entry: Entry) -> None:
        key = (entry.member, entry.media, entry.id)
        with self.lock:
            old = self.entries.get(key)
            if old is not None:
                del self.order[bisect_left(self.order, (old.at, key))]
            self.entries[key] = entry
            self._rendered.pop(key, None)
            insort(self.order, (entry.at, key))
            self._selection.clear()

    # --- the API ------------------------------------------------------------------------------

    def authorised(self, header: str) -> bool:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return secrets.compare_digest(header, f"Basic {token}")

    def get(self, target: str, authorization: str) -> tuple[int, str, bytes]:
        self.requests.append(("GET", target))
        if not self.authorised(authorization):
            return 401, "text/plain", b"Unauthorized"
        parts = urlsplit(target)
        path = parts.path.removeprefix("/hashsharing")
        if path.startswith("/v2/feedback/") and path.endswith("/reasons"):
            kind = path.split("/")[3]
            reasons = "".join(
                f"<reason guid={quoteattr(guid)} name={quoteattr(name)} type={quoteattr(kind)}/>"
                for guid, name in REASONS.get(kind, {}).items()
            )
            root = "availableFeedbackReasons"
            body = f'<{root} xmlns="{NAMESPACE}">{reasons}</{root}>'
            return 200, "application/xml", body.encode()
        if path != "/v2/entries":
            return 404, "text/plain", b"Not Found"
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        try:
            low, high = _parse(query["from"]), _parse(query["to"])
            start = int(query.get("start", "1"))
            size = int(query.get("size", str(self.page_size)))
        except (KeyError, ValueError):
            return 400, "text/plain", b"Bad Request: from and to are required"
        if start in self.slow:
            self.released.wait(30)
        with self.lock:
            if start in self.corrupt:
                left = self.corrupt[start]
                if left is None or left > 0:
                    self.corrupt[start] = None if left is None else left - 1
                    return 200, "text/html", b"<html><body>Service Unavailable</body></html>"
            selection = self._select(low, high)
            page = selection[start - 1 : start - 1 + size]
            images = [e for e in page if e.media == "image"]
            videos = [e for e in page if e.media == "video"]
            body = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            body += f'<queryResult xmlns="{NAMESPACE}">'
            for name, chosen in (("images", images), ("videos", videos)):
                if chosen:
                    newest = _format(max(e.at for e in chosen))
                    body += f'<{name} count="{len(chosen)}" maxTimestamp="{newest}">'
                    body += "".join(self._xml(e) for e in chosen) + f"</{name}>"
        if start - 1 + size < len(selection):
            following = {
                "from": query["from"],
                "to": query["to"],
                "start": str(start + size),
                "size": str(size),
                "max": str(len(selection)),
            }
            body += f"<paging><next>{escape('/v2/entries?' + urlencode(following))}</next></paging>"
        body += "</queryResult>"
        return 200, "application/xml", body.encode()

    def _xml(self, entry: Entry) -> str:
        key = (entry.member, entry.media, entry.id)
        text = self._rendered.get(key)
        if text is None:
            text = self._rendered[key] = entry.xml(self.members)
        return text

    def _select(self, low: int, high: int) -> list[Entry]:
        """The entries in [low, high), in NCMEC's order (not by time)."""
        chosen = self._selection.get((low, high))
        if chosen is None:
            first = bisect_left(self.order, (low,))
            last = bisect_left(self.order, (high,))
            keys = [key for _, key in self.order[first:last]]
            keys.sort(key=lambda k: zlib.crc32(repr(k).encode()))
            chosen = self._selection[(low, high)] = [self.entries[k] for k in keys]
        return chosen

    def put(
        self, target: str, authorization: str, content_type: str, body: bytes
    ) -> tuple[int, str, bytes]:
        self.requests.append(("PUT", target))
        if not self.authorised(authorization):
            return 401, "text/plain", b"Unauthorized"
        parts = urlsplit(target).path.removeprefix("/hashsharing").split("/")
        if len(parts) != 7 or parts[1:3] != ["v2", "entries"] or parts[6] != "feedback":
            return 404, "text/plain", b"Not Found"
        _, _, _, member, entry, kind, _ = parts
        try:
            root = fromstring(body)
        except Exception:
            return 400, "text/plain", b"Bad Request: not XML"
        verdicts = [child.tag.rpartition("}")[2] for child in root]
        guids = tuple(
            (element.text or "") for element in root.iter() if element.tag.endswith("guid")
        )
        if verdicts not in (["affirmative"], ["negative"]) or (verdicts == ["negative"]) != bool(
            guids
        ):
            return 400, "text/plain", b"Bad Request: affirmative, or negative with reasons"
        self.feedback.append(Feedback(member, entry, kind, verdicts[0], guids, content_type))
        return 200, "application/xml", b""

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "NcmecStandIn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _format(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(FORMAT)


def _parse(text: str) -> int:
    return int(datetime.strptime(text, FORMAT).replace(tzinfo=UTC).timestamp())


def _seconds(at: datetime) -> int:
    return int(at.timestamp())
