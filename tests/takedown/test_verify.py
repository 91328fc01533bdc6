"""Verified removal: the notice's URL fetched again through the hotline's crawler (real websites
on loopback addresses, names resolved by a real DNS server) and judged by the hashes of what it
serves: gone, changed, still present (the same picture re-encoded too), or inconclusive (a
server error, refused, timed out) to be tried again."""

import hashlib
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hashguard.hotline.crawl import Crawl, CrawlLimits, crawl
from hashguard.net.dns import DnsResolver
from hashguard.net.fetch import UrlFetcher
from hashguard.signals.pdq import PdqSignal
from hashguard.takedown.model import CheckOutcome
from hashguard.takedown.verify import PDQ_RADIUS, check, matches

from support.dns import DnsServer
from support.media import jpeg
from support.server import free_port
from support.website import Page, Website, website

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ADDRESS = "127.0.0.7"  # the hoster's website
PICTURE = jpeg(5, 320, 240)
REENCODED = jpeg(5, 300, 225, quality=35)  # the same scene, smaller and recompressed
OTHER = jpeg(9, 320, 240)


def _item(data: bytes) -> dict[str, Any]:
    return {"url": "http://x.test/a.jpg", "kind": "image", "labels": {"iccam": "baseline"},
            "hashes": {"pdq": PdqSignal().hash(data).hex,
                       "md5": hashlib.md5(data).hexdigest(),
                       "sha256": hashlib.sha256(data).hexdigest()}}  # fmt: skip


ITEMS = [_item(PICTURE)]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer({"hoster.test": [f"A {ADDRESS}"], "down.test": ["A 127.0.0.8"]}) as server:
        yield server


def _fetch(dns: DnsServer, timeout: float = 10.0) -> Any:
    """The crawl as the hotline does it: any host, through the configured resolver, the
    loopback network allowed (as the operator's ``networks``)."""
    resolver = DnsResolver([dns.address], timeout=2.0)
    fetcher = UrlFetcher((), [ipaddress.ip_network("127.0.0.0/8")], timeout,
                         resolve=resolver.addresses, any_host=True,
                         cross_host_redirects=True)  # fmt: skip

    def fetch(url: str) -> Crawl:
        return crawl(url, fetcher, CrawlLimits(timeout=timeout, total_time=timeout * 3))

    return fetch


def _site(pages: dict[str, Page]) -> Website:
    return Website(pages, ADDRESS)


def _url(site: Website, path: str) -> str:
    return f"http://hoster.test:{site.port}{path}"


def _page(*images: str) -> Page:
    tags = "".join(f'<img src="{src}">' for src in images)
    return Page(f"<!doctype html><html><body><h1>Gallery</h1>{tags}</body></html>".encode())


@pytest.mark.parametrize("status", [404, 410])
def test_a_url_answering_404_or_410_is_gone(dns: DnsServer, status: int) -> None:
    with website({"/a.jpg": Page(b"gone", "text/plain", status)}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert (result.outcome, result.status, result.at) == (CheckOutcome.GONE, status, AT)
    assert str(status) in result.detail


def test_a_host_that_no_longer_resolves_is_gone(dns: DnsServer) -> None:
    result = check("http://vanished.test/a.jpg", ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.GONE
    assert result.status is None
    assert "no such domain" in result.detail
    assert ("vanished.test", "A") in dns.asked


def test_the_same_picture_still_served_is_present(dns: DnsServer) -> None:
    with website({"/a.jpg": Page(PICTURE, "image/jpeg")}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.PRESENT
    assert "sha256 equal" in result.detail
    assert result.hashes[0]["hashes"]["sha256"] == hashlib.sha256(PICTURE).hexdigest()


def test_the_same_picture_re_encoded_is_present_by_pdq(dns: DnsServer) -> None:
    pdq = PdqSignal()
    distance = pdq.distance(pdq.hash(PICTURE), pdq.hash(REENCODED))
    assert 0 < distance <= PDQ_RADIUS  # the test's premise: other bytes, near PDQ
    with website({"/a.jpg": Page(REENCODED, "image/jpeg")}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.PRESENT
    assert f"pdq distance {distance}" in result.detail


def test_another_picture_at_the_url_is_changed(dns: DnsServer) -> None:
    pdq = PdqSignal()
    assert pdq.distance(pdq.hash(PICTURE), pdq.hash(OTHER)) > PDQ_RADIUS
    with website({"/a.jpg": Page(OTHER, "image/jpeg")}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.CHANGED
    assert result.hashes[0]["hashes"]["md5"] == hashlib.md5(OTHER).hexdigest()


def test_a_page_still_showing_the_picture_is_present(dns: DnsServer) -> None:
    pages = {"/gallery": _page("/x.jpg", "/new-name.jpg"), "/x.jpg": Page(OTHER, "image/jpeg"),
             "/new-name.jpg": Page(REENCODED, "image/jpeg")}  # fmt: skip
    with website(pages, ADDRESS) as site:
        result = check(_url(site, "/gallery"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.PRESENT
    assert "new-name.jpg" in result.detail
    assert [h["url"].rsplit("/", 1)[-1] for h in result.hashes] == ["x.jpg", "new-name.jpg"]


def test_a_page_without_the_picture_is_changed(dns: DnsServer) -> None:
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(OTHER, "image/jpeg")}
    with website(pages, ADDRESS) as site:
        result = check(_url(site, "/gallery"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.CHANGED


def test_a_page_whose_media_cannot_be_fetched_now_is_inconclusive(dns: DnsServer) -> None:
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(b"busy", "text/plain", 503)}
    with website(pages, ADDRESS) as site:
        result = check(_url(site, "/gallery"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.INCONCLUSIVE
    assert "x.jpg" in result.detail


def test_a_server_error_is_inconclusive(dns: DnsServer) -> None:
    with website({"/a.jpg": Page(b"oops", "text/plain", 503)}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert (result.outcome, result.status) == (CheckOutcome.INCONCLUSIVE, 503)


def test_a_refused_connection_is_inconclusive(dns: DnsServer) -> None:
    result = check(f"http://hoster.test:{free_port()}/a.jpg", ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.INCONCLUSIVE
    assert result.status is None


def test_a_server_that_does_not_answer_in_time_is_inconclusive(dns: DnsServer) -> None:
    slow = Page([b"<!doctype html><html>", b"<body></body></html>"], pause=5.0)
    with website({"/a": slow}, ADDRESS) as site:
        result = check(_url(site, "/a"), ITEMS, _fetch(dns, timeout=0.5), lambda: AT)
    assert result.outcome is CheckOutcome.INCONCLUSIVE
    assert "timed out" in result.detail or "deadline" in result.detail


def test_without_items_a_url_still_answering_is_present(dns: DnsServer) -> None:
    """A removal order names URLs, not hashes: a URL that still serves anything is there."""
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(OTHER, "image/jpeg"),
             "/gone": Page(b"gone", "text/plain", 404)}  # fmt: skip
    with website(pages, ADDRESS) as site:
        served = check(_url(site, "/gallery"), [], _fetch(dns), lambda: AT)
        gone = check(_url(site, "/gone"), [], _fetch(dns), lambda: AT)
    assert (served.outcome, served.status) == (CheckOutcome.PRESENT, 200)
    assert "no hashes to compare" in served.detail
    assert gone.outcome is CheckOutcome.GONE


def test_matching_is_by_digest_or_pdq_within_the_radius() -> None:
    one = _item(PICTURE)["hashes"]
    assert matches({"md5": one["md5"].upper()}, one) == "md5 equal"
    assert matches({"sha256": "0" * 64, "md5": "0" * 32}, one) == ""
    near = list(bytes.fromhex(one["pdq"]))
    near[0] ^= 0xFF  # 8 bits flipped
    assert matches({"pdq": bytes(near).hex()}, one) == "pdq distance 8"
    far = bytes(b ^ 0xFF for b in bytes.fromhex(one["pdq"])[:4]) + bytes.fromhex(one["pdq"])[4:]
    assert matches({"pdq": far.hex()}, one) == ""  # 32 bits: beyond the radius
    assert matches({"pdq": "not a hash"}, one) == ""
    assert matches({}, one) == ""
