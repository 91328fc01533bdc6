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

from support.decoding import servers_decodes
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


def _fetch(dns: DnsServer, timeout: float = 10.0, page_bytes: int = 5 << 20) -> Any:
    """The crawl as the hotline does it: any host, through the configured resolver, the
    loopback network allowed (as the operator's ``networks``)."""
    resolver = DnsResolver([dns.address], timeout=2.0)
    fetcher = UrlFetcher((), [ipaddress.ip_network("127.0.0.0/8")], timeout,
                         resolve=resolver.addresses, any_host=True,
                         cross_host_redirects=True)  # fmt: skip

    def fetch(url: str) -> Crawl:
        limits = CrawlLimits(page_bytes=page_bytes, media_bytes=page_bytes, timeout=timeout,
                             total_time=timeout * 3)  # fmt: skip
        return crawl(url, fetcher, limits, decodes=servers_decodes())

    return fetch


def _site(pages: dict[str, Page]) -> Website:
    return Website(pages, ADDRESS)


def _url(site: Website, path: str) -> str:
    return f"http://hoster.test:{site.port}{path}"


def _page(*images: str) -> Page:
    tags = "".join(f'<img src="{src}">' for src in images)
    return Page(f"<!doctype html><html><body><h1>Gallery</h1>{tags}</body></html>".encode())


@pytest.mark.parametrize("status", [404, 410, 451])
def test_a_url_answering_404_410_or_451_is_gone(dns: DnsServer, status: int) -> None:
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


@pytest.mark.parametrize("status", [500, 503, 429, 401, 403, 407, 400])
def test_an_error_answer_is_inconclusive_never_removal(dns: DnsServer, status: int) -> None:
    """A hoster that shuts the hotline out (403, a login) has not shown the content gone."""
    with website({"/a.jpg": Page(b"no", "text/plain", status)}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns), lambda: AT)
    assert (result.outcome, result.status) == (CheckOutcome.INCONCLUSIVE, status)


def test_a_medium_on_the_page_refused_with_403_is_inconclusive(dns: DnsServer) -> None:
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(b"no", "text/plain", 403)}
    with website(pages, ADDRESS) as site:
        result = check(_url(site, "/gallery"), ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.INCONCLUSIVE
    assert "x.jpg" in result.detail


def test_an_answer_too_large_to_fetch_is_unverifiable(dns: DnsServer) -> None:
    with website({"/a.jpg": Page(PICTURE, "image/jpeg")}, ADDRESS) as site:
        result = check(_url(site, "/a.jpg"), ITEMS, _fetch(dns, page_bytes=1000), lambda: AT)
    assert result.outcome is CheckOutcome.UNVERIFIABLE
    assert result.detail.startswith("can never tell")


def test_a_url_that_cannot_be_fetched_is_unverifiable(dns: DnsServer) -> None:
    result = check("ftp://hoster.test/a.jpg", ITEMS, _fetch(dns), lambda: AT)
    assert result.outcome is CheckOutcome.UNVERIFIABLE


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


def test_an_orders_baseline_is_what_its_urls_serve_and_later_checks_compare_with_it(
    dns: DnsServer,
) -> None:
    """An order names URLs only: the first check's hashes are the baseline (the media of a page;
    a page without media: its own bytes' digest); the same later is present, other content is
    changed, a 404 gone."""
    text = Page(b"<!doctype html><html><body><p>a story</p></body></html>")
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(OTHER, "image/jpeg"), "/story": text}
    with website(pages, ADDRESS) as site:
        gallery, story = _url(site, "/gallery"), _url(site, "/story")
        fetch = _fetch(dns)
        first = check(gallery, [], fetch, lambda: AT, baseline=True)
        page = check(story, [], fetch, lambda: AT, baseline=True)
        assert (first.outcome, page.outcome) == (CheckOutcome.PRESENT, CheckOutcome.PRESENT)
        assert "baseline" in first.detail
        assert [h["url"] for h in first.hashes] == [_url(site, "/x.jpg")]
        assert page.hashes[0]["hashes"] == {
            "sha256": hashlib.sha256(b"<!doctype html><html><body><p>a story</p></body></html>")
            .hexdigest()}  # fmt: skip
        baseline = [{"url": h["url"], "hashes": h["hashes"]} for h in first.hashes + page.hashes]
        assert check(gallery, baseline, fetch, lambda: AT).outcome is CheckOutcome.PRESENT
        assert check(story, baseline, fetch, lambda: AT).outcome is CheckOutcome.PRESENT
        pages["/x.jpg"] = Page(jpeg(11, 320, 240), "image/jpeg")
        pages["/story"] = Page(b"<!doctype html><html><body>Removed by order</body></html>")
        assert check(gallery, baseline, fetch, lambda: AT).outcome is CheckOutcome.CHANGED
        assert check(story, baseline, fetch, lambda: AT).outcome is CheckOutcome.CHANGED
        pages["/story"] = Page(b"gone", "text/plain", 404)
        assert check(story, baseline, fetch, lambda: AT).outcome is CheckOutcome.GONE


def test_no_baseline_while_a_medium_on_the_page_cannot_be_fetched(dns: DnsServer) -> None:
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(b"busy", "text/plain", 503)}
    with website(pages, ADDRESS) as site:
        result = check(_url(site, "/gallery"), [], _fetch(dns), lambda: AT, baseline=True)
    assert result.outcome is CheckOutcome.INCONCLUSIVE
    assert result.detail.startswith("no baseline yet")


def test_an_orders_baseline_leaves_out_the_media_the_sites_root_page_shows(
    dns: DnsServer,
) -> None:
    """The site's logo is on every page: in the baseline, removing only the picture would
    never read as removed. Media the root page ("/") shows too are left out of it."""
    logo = jpeg(21, 120, 60)
    pages = {"/": _page("/logo.jpg"), "/logo.jpg": Page(logo, "image/jpeg"),
             "/gallery": _page("/logo.jpg", "/x.jpg"),
             "/x.jpg": Page(OTHER, "image/jpeg")}  # fmt: skip
    with website(pages, ADDRESS) as site:
        gallery, fetch = _url(site, "/gallery"), _fetch(dns)
        first = check(gallery, [], fetch, lambda: AT, baseline=True)
        assert first.outcome is CheckOutcome.PRESENT
        assert [h["url"] for h in first.hashes] == [_url(site, "/x.jpg")]
        assert "less 1 medium the site's root page shows too" in first.detail
        baseline = [{"url": h["url"], "hashes": h["hashes"]} for h in first.hashes]
        assert check(gallery, baseline, fetch, lambda: AT).outcome is CheckOutcome.PRESENT
        pages["/gallery"] = _page("/logo.jpg")  # the picture removed, the logo still there
        removed = check(gallery, baseline, fetch, lambda: AT)
        assert removed.outcome is CheckOutcome.CHANGED
        # a page showing nothing but what the root shows keeps it all (never a false removal)
        assert [h["url"] for h in check(gallery, [], fetch, lambda: AT, baseline=True).hashes] \
            == [_url(site, "/logo.jpg")]  # fmt: skip


def test_a_url_without_a_baseline_that_can_get_none_is_never_present(dns: DnsServer) -> None:
    """An order's URL whose baseline was not taken before delivery (or at a re-check): while it
    answers it reads as the caller says (unverifiable, inconclusive), gone when it is."""
    pages = {"/gallery": _page("/x.jpg"), "/x.jpg": Page(OTHER, "image/jpeg"),
             "/gone": Page(b"gone", "text/plain", 404)}  # fmt: skip
    with website(pages, ADDRESS) as site:
        fetch = _fetch(dns)
        for without in (CheckOutcome.UNVERIFIABLE, CheckOutcome.INCONCLUSIVE):
            served = check(_url(site, "/gallery"), [], fetch, lambda: AT, without=without)
            assert (served.outcome, served.status) == (without, 200)
            assert "no baseline" in served.detail
            gone = check(_url(site, "/gone"), [], fetch, lambda: AT, without=without)
            assert gone.outcome is CheckOutcome.GONE
