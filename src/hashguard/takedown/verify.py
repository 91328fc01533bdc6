"""Whether a notice's content is still there: the URL fetched again through the hotline's crawler
(the SSRF-safe fetcher; nothing fetched is kept, only hashes) and what it serves compared with
the notice's items by hash. The hotline's own look, never the hoster's word.

- ``gone``: the URL answers 404, 410 or 451, or its host no longer resolves (or only to
  addresses that are not public);
- ``inconclusive``: timed out, refused, a server error (5xx), 429, 401, 403, 407 or any other
  error answer (a hoster that shuts the hotline out has not removed anything), too many
  redirects, or a medium on the page that could not be fetched for such a reason: the check
  is tried again later;
- ``unverifiable``: a check that can never succeed: the answer is over the crawler's size
  limit, the URL cannot be fetched (not http(s), credentials, fetching not allowed): treated
  like ``present`` for re-notices and escalation, never as removal;
- ``present``: the URL (or a medium on its page) serves one of the notice's items: SHA-256,
  SHA-1 or MD5 equal, or PDQ within ``PDQ_RADIUS`` (re-encoded, resized);
- ``changed``: anything else (other content, an empty page).

A removal order names URLs only (no items, no hashes): its first check, before the order is
delivered, takes the **baseline** (``check(..., baseline=True)``): what each URL serves as the
order is issued, by hash, kept as the order's items; later checks compare with it like with any
notice's items. What a page's baseline holds:

- its media, **less those the host's root page ("/") also shows** (the site's logo, banners,
  buttons: one more fetch of the root through the same crawler, at baseline time only), so that
  removing only the picture reads as removed. When the root cannot be fetched, nothing is left
  out; when every medium of the page is also on the root, all of them are kept (a false
  "present" is looked at by staff; a false "removed" is not);
- a page (or other answer) with no media: the SHA-256 of its bytes. A dynamic page (a date, a
  counter, a token in its HTML) therefore reads as ``changed`` at the next check, whether or not
  the content was removed: an order for such a page is verified by its answers (gone) or by staff,
  not by this comparison.

A baseline is taken only while the order is not delivered: once the hoster can act, what a URL
serves may already be its "removed" page. A URL whose baseline could not be taken in time (the
check was inconclusive) has none for good: ``check(..., without=CheckOutcome.UNVERIFIABLE)``
reads such a URL as ``unverifiable`` while it answers (``gone`` still counts); a re-check of a
removed order never takes one either, and reads it as ``inconclusive`` (``without=``), never
as ``present``. Only ``check`` called without items and without ``without`` reads a URL still
answering with content as ``present``.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from hashguard.hotline.crawl import Crawl, FetchRecord
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue
from hashguard.takedown.model import CheckOutcome, Clock

PDQ_RADIUS: Final = 31  # bits of 256: the same picture re-encoded, resized or recompressed
DIGESTS: Final = ("sha256", "sha1", "md5")
GONE_STATUSES: Final = frozenset({404, 410, 451})  # 451: unavailable for legal reasons
# A fetch that could not tell: it may answer next time.
TRANSIENT: Final = frozenset({"timed-out", "connection-failed", "crawl-time-limit",
                              "too-many-redirects"})  # fmt: skip
# A fetch that can never tell: the same limits and rules refuse it every time.
PERMANENT: Final = frozenset({"too-large", "bad-url", "not-allowed"})
GONE_OUTCOMES: Final = frozenset({"unresolvable", "private-address"})
ANSWERED: Final = frozenset({"ok", "not-html", "corrupt-media", "media-limit"})  # content served


@dataclass(frozen=True, slots=True)
class Check:
    """One re-fetch of a URL: the outcome, the HTTP status of the URL itself (None without an
    answer), a sentence saying why, what was served by hash (``{url, kind, hashes}`` per
    medium) and when the check began."""

    outcome: CheckOutcome
    status: int | None
    detail: str
    hashes: tuple[dict[str, Any], ...]
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "status": self.status, "detail": self.detail,
                "hashes": [dict(h) for h in self.hashes], "at": self.at.isoformat()}  # fmt: skip


def check(
    url: str,
    items: Sequence[Mapping[str, Any]],
    fetch: Callable[[str], Crawl],
    clock: Clock,
    *,
    baseline: bool = False,
    without: CheckOutcome | None = None,
) -> Check:
    """Fetch ``url`` again (``fetch``: the hotline's crawl of a URL) and compare what it serves
    with ``items`` (a notice's items: ``{"hashes": {signal: value}, ...}``). ``baseline``:
    the URL's first check for a notice without items: what it serves is ``present`` (its
    hashes, in ``hashes``, are the baseline, less the media the host's root page also shows),
    unless it is gone or cannot be seen whole now. ``without``: the URL has no baseline and
    can get none (an order delivered, or removed and checked again): what the URL reads as
    while it answers and serves none of ``items`` (``UNVERIFIABLE``, ``INCONCLUSIVE``).
    Raises nothing for anything a website does."""
    at = clock()
    crawled = fetch(url)
    page = crawled.page
    # what was hashed: the media; a page (or other answer) without any: its own bytes' digest
    records = crawled.items if any(r is page for r in crawled.items) else (page, *crawled.items)
    media = tuple(_served(record) for record in crawled.items if record.hashes)
    served = media or tuple(_served(record) for record in records if record.hashes)
    if page.outcome == "http-error" and page.status in GONE_STATUSES:
        return Check(CheckOutcome.GONE, page.status, f"the URL answers {page.status}", (), at)
    if page.outcome in GONE_OUTCOMES:
        return Check(CheckOutcome.GONE, None, f"the host is gone: {page.detail}", (), at)
    if page.outcome in PERMANENT:
        return Check(CheckOutcome.UNVERIFIABLE, page.status,
                     f"can never tell: {page.detail}", (), at)  # fmt: skip
    if page.outcome == "http-error":
        return Check(CheckOutcome.INCONCLUSIVE, page.status,
                     f"the server answered {page.status}: looked again later", (), at)  # fmt: skip
    if page.outcome not in ANSWERED:  # timed out, refused, too many redirects
        return Check(CheckOutcome.INCONCLUSIVE, page.status,
                     f"could not tell: {page.detail}", (), at)  # fmt: skip
    failed = [r for r in crawled.items if r is not page and _failed_transiently(r)]
    if baseline:
        if failed:
            detail = (f"no baseline yet: {len(failed)} medium(s) on the page could not be "
                      f"fetched (the first: {failed[0].url}: {failed[0].detail})")  # fmt: skip
            return Check(CheckOutcome.INCONCLUSIVE, page.status, detail, served, at)
        own, shared = _own_media(url, media, fetch)
        kept = _count(len(own or served), "hashed answer")
        left = f", less {_count(shared, 'medium')} the site's root page shows too" if own else ""
        detail = (f"the baseline: the URL answers {page.status} ({page.detail}); what it serves "
                  f"({kept}{left}) is what later checks compare with")  # fmt: skip
        return Check(CheckOutcome.PRESENT, page.status, detail, own or served, at)
    if not items and without is None:
        detail = f"the URL still answers {page.status} ({page.detail}); no hashes to compare"
        return Check(CheckOutcome.PRESENT, page.status, detail, served, at)
    for record in records:
        for number, item in enumerate(items):
            why = matches(record.hashes, item.get("hashes") or {})
            if why:
                where = "the URL" if record is page else f"the medium {record.url} on the page"
                detail = f"{where} still serves item {number + 1} ({why})"
                return Check(CheckOutcome.PRESENT, page.status, detail, served, at)
    if without is not None:
        detail = (f"the URL answers {page.status} ({page.detail}) but has no baseline to compare "
                  "with (none was taken before the order was delivered)")  # fmt: skip
        return Check(without, page.status, detail, served, at)
    if failed:
        detail = (f"no item of the notice seen, but {len(failed)} medium(s) on the page could "
                  f"not be fetched (the first: {failed[0].url}: {failed[0].detail})")  # fmt: skip
        return Check(CheckOutcome.INCONCLUSIVE, page.status, detail, served, at)
    refused = [r for r in crawled.items if r is not page and r.outcome in PERMANENT]
    if refused:
        first = refused[0]
        detail = (f"no item of the notice seen, but {len(refused)} medium(s) on the page can "
                  f"never be fetched (the first: {first.url}: {first.detail})")  # fmt: skip
        return Check(CheckOutcome.UNVERIFIABLE, page.status, detail, served, at)
    if crawled.items:
        detail = f"the URL serves {len(crawled.items)} other medium(s), none of the notice's"
    else:
        detail = f"the URL serves no media and other content ({page.detail})"
    return Check(CheckOutcome.CHANGED, page.status, detail, served, at)


def matches(served: Mapping[str, str], item: Mapping[str, Any]) -> str:
    """Why the medium whose hashes are ``served`` is the item whose hashes are ``item`` ("sha256
    equal", "pdq distance 12"); "" when it is not (or nothing can be compared)."""
    for name in DIGESTS:
        mine, theirs = served.get(name), item.get(name)
        same = isinstance(mine, str) and isinstance(theirs, str) and mine != ""
        if same and str(mine).strip().lower() == str(theirs).strip().lower():
            return f"{name} equal"
    mine, theirs = served.get("pdq"), item.get("pdq")
    if isinstance(mine, str) and isinstance(theirs, str):
        pdq = registry.get("pdq")
        try:
            distance = pdq.distance(pdq.parse(mine), pdq.parse(theirs))
        except InvalidSignalValue:
            return ""
        if distance <= PDQ_RADIUS:
            return f"pdq distance {distance:g}"
    return ""


def _own_media(
    url: str, media: Sequence[dict[str, Any]], fetch: Callable[[str], Crawl]
) -> tuple[tuple[dict[str, Any], ...], int]:
    """The page's ``media`` less those the host's root page ("/", fetched through ``fetch``)
    also shows, and how many were left out; ``()`` when none would be left out, or none left
    (then the caller keeps them all). The root fetched only when the page has media and is
    not the root itself."""
    parts = urlsplit(url)
    root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    if not media or root == url:
        return (), 0
    shown = [record.hashes for record in fetch(root).items if record.hashes]
    own = tuple(medium for medium in media
                if not any(matches(medium["hashes"], hashes) for hashes in shown))  # fmt: skip
    if not own or len(own) == len(media):
        return (), 0
    return own, len(media) - len(own)


def _served(record: FetchRecord) -> dict[str, Any]:
    return {"url": record.url, "kind": record.kind, "hashes": dict(record.hashes)}


def _failed_transiently(record: FetchRecord) -> bool:
    """A medium on the page that did not answer now (an error answer other than gone, a
    timeout, a refused connection): it may answer next time."""
    if record.outcome == "http-error":
        return record.status not in GONE_STATUSES
    return record.outcome in TRANSIENT


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
