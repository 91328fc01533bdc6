"""The crawl of a reported URL, in memory: the page is fetched through the SSRF-safe fetcher, the
media it shows or links are found (img, srcset, picture, video and source elements, links to
media files, og:image and og:video), each is fetched and hashed (PDQ, MD5, SHA-1, SHA-256; vPDQ
for video) and its bytes dropped. Every fetch is recorded (time, final URL, status, content
type, size, hashes) with a named outcome; nothing fetched is written to disk, and nothing a
website does makes ``crawl`` raise.
"""

import hashlib
import io
import posixpath
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

from lxml import etree
from lxml import html as lxml_html

from hashguard.media.budget import DecodeBudget
from hashguard.media.errors import LimitExceeded, MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, file_kind
from hashguard.media.limits import DEFAULT_LIMITS, MIB, Limits
from hashguard.net.fetch import Fetched, FetchRefused, UrlFetcher, escaped
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue, SignalType
from hashguard.signals.batch import decode_bytes, hash_stream
from hashguard.signals.derived import derived_pdq
from hashguard.signals.pdq import PdqHash

# What a crawl records besides "ok" and the fetcher's own outcomes (net.fetch.OUTCOMES).
CRAWL_OUTCOMES: Final = (
    "not-html",  # the reported URL answered neither HTML nor media
    "not-media",  # a media URL answered something else (HTML, text, nothing)
    "corrupt-media",  # recognised as media, but could not be decoded (its digests are kept)
    "media-limit",  # over the media limits: pixels, frames, duration (decompression bombs)
    "too-many-items",  # media URLs beyond max_items, not fetched (one record says how many)
    "crawl-time-limit",  # not reached within the crawl's total time
)

SIGNALS: Final = ("pdq", "vpdq", "md5", "sha1", "sha256")
MEDIA_EXTENSIONS: Final = frozenset(
    {"jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "avif",
     "mp4", "m4v", "mov", "webm", "mkv", "avi"}
)  # fmt: skip
_HOST: Final = re.compile(r"[\x21-\x7e]+")  # a host (and port) as it stands in a URL
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_OPEN_GRAPH: Final = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url",
     "og:video", "og:video:url", "og:video:secure_url"}
)  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One fetch, as the hotline logs it (never the bytes)."""

    url: str  # asked for
    final_url: str  # after redirects ("" when nothing was fetched)
    at: datetime  # UTC, when the fetch started
    status: int | None  # the HTTP status, None when no answer
    content_type: str
    size: int  # bytes received
    kind: str  # "page", "image", "video", "other"
    outcome: str  # "ok", one of net.fetch.OUTCOMES, or one of CRAWL_OUTCOMES
    detail: str  # the human sentence
    hashes: dict[str, str] = field(default_factory=dict)  # signal name -> canonical value
    quality: int | None = None  # PDQ quality of an image
    # An image's derived PDQ hashes (signals.derived: "crop-10" -> hex), when asked for.
    derived: dict[str, str] = field(default_factory=dict)
    # The stability of its PDQ hash ("pdq") and of each derived hash, where it was measured.
    stability: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "at": self.at.isoformat(),
            "status": self.status,
            "content_type": self.content_type,
            "size": self.size,
            "kind": self.kind,
            "outcome": self.outcome,
            "detail": self.detail,
            "hashes": dict(self.hashes),
            "quality": self.quality,
            "derived": dict(self.derived),
            "stability": dict(self.stability),
        }


@dataclass(frozen=True, slots=True)
class Crawl:
    page: FetchRecord  # the reported URL itself
    # The media found on it (each fetched and hashed), in page order, one per distinct URL; a
    # reported URL that is media: itself only.
    items: tuple[FetchRecord, ...]

    def as_json(self) -> dict[str, Any]:
        return {"page": self.page.as_json(), "items": [item.as_json() for item in self.items]}


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    page_bytes: int = 5 * MIB
    media_bytes: int = 64 * MIB
    max_items: int = 50
    timeout: float = 10.0  # seconds, per fetch
    total_time: float = 60.0  # seconds, for the whole crawl
    media: Limits = DEFAULT_LIMITS


def crawl(
    url: str,
    fetcher: UrlFetcher,
    limits: CrawlLimits = CrawlLimits(),
    clock: Callable[[], datetime] = now,
    *,
    decodes: DecodeBudget,
    derived: bool = False,
) -> Crawl:
    """The page at ``url`` and the media on it, each fetched, hashed in memory within the
    decode budget ``decodes`` (the server's, shared with its routes) and recorded; a URL that
    is media itself is the page and its one item. With ``derived``, each image's derived PDQ
    hashes too (``signals.derived``: for a list owner who holds the image). Raises nothing for
    anything a website does: each failure is a record with its named outcome; DecodeBusy when
    the server's decode budget stayed full for the rest of the crawl's time."""
    budget = time.monotonic() + limits.total_time
    at = clock()
    try:
        fetched = _page(url, fetcher, limits, budget)
    except FetchRefused as refused:
        return Crawl(_refused(url, at, "page", refused), ())
    if _kind(fetched.body) is not MediaKind.OTHER:
        record = _media_record(url, at, fetched, limits.media, decodes, budget, derived)
        return Crawl(record, (record,))
    if not _is_html(fetched):
        shown = fetched.content_type or "of no declared type"
        detail = f"the answer is {shown} ({len(fetched.body)} bytes): neither HTML nor media"
        return Crawl(_answered(url, at, fetched, "other", "not-html", detail,
                               _digest(fetched.body)), ())  # fmt: skip
    # One more than is fetched: enough to say there were more (a huge page is not collected).
    found = media_urls(fetched.body, fetched.url, fetched.charset, limits.max_items + 1)
    chosen = found[: limits.max_items]
    more = len(found) > len(chosen)
    shown = f"more than {limits.max_items} media URLs" if more else _count(len(found), "media URL")
    page = _answered(url, at, fetched, "page", "ok", f"an HTML page showing or linking {shown}",
                     _digest(fetched.body))  # fmt: skip
    del fetched  # the page's bytes are not kept
    items: list[FetchRecord] = []
    for index, media_url in enumerate(chosen):
        remaining = budget - time.monotonic()
        if remaining <= 0:
            reason = f"not fetched: the crawl's {limits.total_time:g} s were spent"
            items.extend(_unfetched(u, clock(), "crawl-time-limit", reason) for u in chosen[index:])
            break
        timeout = min(limits.timeout, remaining)
        items.append(_item(media_url, fetcher, limits, timeout, clock, decodes, budget,
                           derived))  # fmt: skip
    if more:
        reason = (
            f"more media URLs on the page not fetched (at most {limits.max_items} per page), "
            "from this one on"
        )
        items.append(_unfetched(found[len(chosen)], clock(), "too-many-items", reason))
    return Crawl(page, tuple(items))


def _page(url: str, fetcher: UrlFetcher, limits: CrawlLimits, budget: float) -> Fetched:
    """The reported URL's answer: a page within ``page_bytes``, or media (a URL reported
    for an image or video) within ``media_bytes``. Raises FetchRefused."""
    timeout = min(limits.timeout, limits.total_time)
    try:
        return fetcher.fetch(url, max_bytes=limits.page_bytes, timeout=timeout)
    except FetchRefused as refused:
        remaining = budget - time.monotonic()
        larger = refused.reason == "too-large" and limits.media_bytes > limits.page_bytes
        if not larger or remaining <= 0:
            raise
        # Over a page's size: taken again only as media (a video reported by its own URL).
        fetched = fetcher.fetch(
            url, max_bytes=limits.media_bytes, timeout=min(limits.timeout, remaining)
        )
        if _kind(fetched.body) is MediaKind.OTHER:
            raise refused from None
        return fetched


def media_urls(page: bytes, url: str, charset: str = "", most: int | None = None) -> list[str]:
    """The http(s) URLs of the media an HTML ``page`` fetched from ``url`` shows or links,
    absolute (against its ``<base href>`` or ``url``), escaped as a browser sends them, without
    fragments, each once, in page order; the first ``most`` of them when given. ``charset``:
    the page's, as its server declared it (else the page's own ``<meta charset>``, or
    Latin-1)."""
    try:
        root = lxml_html.document_fromstring(page, parser=_parser(charset))
    except (etree.ParserError, etree.XMLSyntaxError):
        return []  # an empty page
    base = url
    for element in root.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = _absolute(url, href) or url
            break
    found: dict[str, None] = {}
    for element in root.iter(etree.Element):
        for reference in _references(element):
            absolute = _absolute(base, reference)
            if absolute is not None:
                found[absolute] = None
                if most is not None and len(found) >= most:
                    return list(found)
    return list(found)


def _parser(charset: str) -> etree.HTMLParser:
    # A parser per page (lxml parsers are not shared between threads); nothing from the network.
    options = {"no_network": True, "remove_comments": True, "remove_pis": True}
    try:
        return lxml_html.HTMLParser(encoding=charset or None, **options)
    # A charset lxml does not know (LookupError), or one it cannot take at all, such as a name
    # with control characters in a site's header (ValueError): the page's own declaration decides.
    except (LookupError, ValueError):
        return lxml_html.HTMLParser(**options)


def _references(element: Any) -> Iterator[str]:
    """The media references of one element, in attribute order."""
    tag = element.tag
    if tag in ("img", "source"):
        yield from _present(element.get("src"))
        yield from _srcset(element.get("srcset") or "")
    elif tag == "video":
        yield from _present(element.get("src"))
        yield from _present(element.get("poster"))
    elif tag == "a":
        href = (element.get("href") or "").strip()
        if _extension(href) in MEDIA_EXTENSIONS:
            yield href
    elif tag == "meta":
        name = (element.get("property") or element.get("name") or "").strip().lower()
        if name in _OPEN_GRAPH:
            yield from _present(element.get("content"))


def _present(value: str | None) -> list[str]:
    value = (value or "").strip()
    return [value] if value else []


def _srcset(value: str) -> list[str]:
    """The URL of each candidate in a ``srcset`` (as the HTML standard splits it: a URL runs to
    white space, descriptors to the next comma outside parentheses)."""
    urls: list[str] = []
    at, end = 0, len(value)
    while at < end:
        while at < end and (value[at].isspace() or value[at] == ","):
            at += 1
        start = at
        while at < end and not value[at].isspace():
            at += 1
        url = value[start:at]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while at < end and (value[at] != "," or depth):
                if value[at] == "(":
                    depth += 1
                elif value[at] == ")" and depth:
                    depth -= 1
                at += 1
        if url:
            urls.append(url)
    return urls


def _extension(reference: str) -> str:
    try:
        path = urlsplit(reference).path
    except ValueError:
        return ""
    return posixpath.splitext(path)[1].lower().lstrip(".")


def _absolute(base: str, reference: str) -> str | None:
    """``reference`` resolved against ``base``, without its fragment, its host in ASCII
    (IDNA) and its path and query escaped; None unless an http(s) URL with a host."""
    try:
        parts = urlsplit(urldefrag(urljoin(base, reference)).url)
        netloc = parts.netloc if parts.netloc.isascii() else parts.netloc.encode("idna").decode()
    except (ValueError, UnicodeError):
        return None
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(netloc):
        return None
    return urlunsplit((parts.scheme, netloc, escaped(parts.path), escaped(parts.query), ""))


def _is_html(fetched: Fetched) -> bool:
    if fetched.content_type:
        return fetched.content_type in _HTML_TYPES
    head = fetched.body[:SNIFF_BYTES].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _kind(body: bytes) -> MediaKind:
    return file_kind(body[:SNIFF_BYTES]) if body else MediaKind.OTHER


def _item(
    url: str,
    fetcher: UrlFetcher,
    limits: CrawlLimits,
    timeout: float,
    clock: Callable[[], datetime],
    decodes: DecodeBudget,
    deadline: float,
    derived: bool = False,
) -> FetchRecord:
    at = clock()
    try:
        fetched = fetcher.fetch(url, max_bytes=limits.media_bytes, timeout=timeout)
    except FetchRefused as refused:
        return _refused(url, at, "other", refused)
    if _kind(fetched.body) is MediaKind.OTHER:
        shown = fetched.content_type or "of no declared type"
        detail = f"the answer is {shown} ({len(fetched.body)} bytes), not an image or video"
        return _answered(url, at, fetched, "other", "not-media", detail)
    return _media_record(url, at, fetched, limits.media, decodes, deadline, derived)


def _media_record(
    url: str,
    at: datetime,
    fetched: Fetched,
    limits: Limits,
    decodes: DecodeBudget,
    deadline: float,
    derived: bool = False,
) -> FetchRecord:
    """The record of media fetched: its hashes, computed in memory within ``limits`` and the
    decode budget, waited for until ``deadline`` (monotonic: the crawl's time limit); with
    ``derived``, an image's derived PDQ hashes too, in the same share. Raises DecodeBusy when
    the budget stayed full that long (the crawl is tried again later)."""
    kind = _kind(fetched.body)
    signals = [registry.get(name) for name in SIGNALS]
    wait = max(0.0, deadline - time.monotonic())
    try:
        with _share(decodes, fetched.body, signals, limits, wait):
            hashed = hash_stream(io.BytesIO(fetched.body), len(fetched.body), signals, limits)
            pdq = next((value for _, value in hashed.values if isinstance(value, PdqHash)), None)
            crops = {} if not derived or pdq is None or hashed.undecodable is not None else (
                _derived(fetched.body, pdq, limits))  # fmt: skip
    except MediaError as error:  # not even its bytes could be hashed
        return _answered(url, at, fetched, kind.value, "corrupt-media", str(error))
    hashes = {signal.name: signal.canonical_of(value) for signal, value in hashed.values}
    quality = None if pdq is None else pdq.quality
    stability = {} if pdq is None or pdq.stability is None else {"pdq": pdq.stability}
    undecodable = hashed.undecodable
    if undecodable is None:
        outcome, detail = "ok", f"{kind.value}, hashed"
    else:
        outcome = "media-limit" if isinstance(undecodable, LimitExceeded) else "corrupt-media"
        detail = f"{undecodable} (only its bytes' digests were computed)"
    for name, value in crops.items():
        if value.stability is not None:
            stability[name] = value.stability
    return replace(_answered(url, at, fetched, kind.value, outcome, detail, hashes, quality),
                   derived={name: value.hex for name, value in crops.items()},
                   stability=stability)  # fmt: skip


def _share(
    decodes: DecodeBudget,
    body: bytes,
    signals: Sequence[SignalType[Any]],
    limits: Limits,
    wait: float | None = None,
) -> AbstractContextManager[None]:
    """The decode budget's share that decoding ``body`` with ``signals`` needs, held in the
    calling thread (none for what decodes nothing or is refused from its header); ``wait``:
    as ``DecodeBudget.holding``."""
    try:
        cost = decode_bytes(body, signals, limits)
    except MediaError:
        cost = 0  # refused or failed by the decoder at once, as from the header here
    return decodes.holding(cost, wait) if cost else nullcontext()


def _derived(body: bytes, original: PdqHash, limits: Limits) -> dict[str, PdqHash]:
    """An image's derived PDQ hashes ({} when it cannot be decoded again)."""
    try:
        return derived_pdq(body, limits, original)
    except MediaError:
        return {}


def _answered(
    url: str,
    at: datetime,
    fetched: Fetched,
    kind: str,
    outcome: str,
    detail: str,
    hashes: dict[str, str] | None = None,
    quality: int | None = None,
) -> FetchRecord:
    return FetchRecord(
        url, fetched.url, at, fetched.status, fetched.content_type, len(fetched.body), kind,
        outcome, detail, hashes or {}, quality,
    )  # fmt: skip


def _refused(url: str, at: datetime, kind: str, refused: FetchRefused) -> FetchRecord:
    return FetchRecord(url, refused.url, at, refused.status, "", 0, kind, refused.reason,
                       str(refused))  # fmt: skip


def _digest(body: bytes) -> dict[str, str]:
    """A page's own fingerprint (its bytes' SHA-256): what a re-check compares a page without
    media with (takedown.verify)."""
    return {"sha256": hashlib.sha256(body).hexdigest()}


def _unfetched(url: str, at: datetime, outcome: str, detail: str) -> FetchRecord:
    return FetchRecord(url, "", at, None, "", 0, "other", outcome, detail)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


DIGESTS: Final = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}


def decodes_to_check(recorded: Mapping[str, str]) -> bool:
    """Whether ``other_content`` needs the body's PDQ hash to check it against the item whose
    hashes are ``recorded``: a PDQ hash recorded and no digest."""
    return "pdq" in recorded and not any(name in recorded for name in DIGESTS)


def other_content(recorded: Mapping[str, str], body: bytes, pdq_now: PdqHash | None) -> str:
    """Why ``body`` may not be shown as the item whose hashes are ``recorded`` ("" when it is
    that item): every digest recorded (SHA-256, SHA-1, MD5) must be the body's; with none, a
    PDQ hash recorded must be ``pdq_now``, the body's (``decodes_to_check``; None: the body has
    none), exactly. With nothing that can be checked (a partner's referral may carry a vPDQ
    hash only) nothing is shown: labels given now could describe other content than the
    hashes they list."""
    for name, digest in DIGESTS.items():
        now = digest(body).hexdigest() if name in recorded else ""
        if now and now != recorded[name].strip().lower():
            return (f"The URL now serves different content ({name.upper()} {now[:16]}…, "
                    f"recorded {recorded[name][:16]}…). It is not shown: labels given now "
                    "would describe other content than the hashes they list.")  # fmt: skip
    if any(name in recorded for name in DIGESTS):
        return ""
    if "pdq" in recorded:
        pdq = registry.get("pdq")
        try:
            distance = (
                None if pdq_now is None else pdq.distance(pdq_now, pdq.parse(recorded["pdq"]))
            )
        except InvalidSignalValue:
            distance = None
        if distance == 0:
            return ""
        return ("The URL now serves content whose PDQ hash is not the one recorded. It is not "
                "shown: labels given now would describe other content than the hashes they "
                "list.")  # fmt: skip
    return ("The item's recorded hashes cannot be checked against what the URL serves now "
            "(no SHA-256, SHA-1, MD5 or PDQ hash was recorded). It is not shown: labels given "
            "now could describe other content than the hashes they list.")  # fmt: skip
