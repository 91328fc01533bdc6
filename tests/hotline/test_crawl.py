"""The crawl of a reported URL: real websites on loopback serve generated images, a generated
video and HTML pages; the crawl finds the media, fetches and hashes each in memory, and records
every fetch with a named outcome, whatever the website does (huge, slow, endless redirects,
private addresses, not HTML, corrupt media, decompression bombs, too many items)."""

import hashlib
import ipaddress
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hashguard.hotline.crawl import Crawl, CrawlLimits, FetchRecord, crawl, media_urls
from hashguard.media.budget import DecodeBudget, DecodeBusy
from hashguard.media.limits import MIB
from hashguard.net.fetch import UrlFetcher
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal

from support.media import jpeg, make_video, png, png_declaring
from support.waiting import eventually
from support.website import Page, redirect, resolving, website

NAMES = {"site.test": "127.0.0.1", "cdn.test": "127.0.0.1", "intranet.test": "10.0.0.7",
         "elsewhere.test": "127.0.0.2"}  # fmt: skip
IMAGES = {name: jpeg(seed, 160, 120) for seed, name in enumerate(
    ["og.jpg", "one.jpg", "two.jpg", "four.webp", "four-large.jpg", "five.jpg", "poster.jpg",
     "six.jpeg", "seven.jpg", "eight.jpg"], start=1)}  # fmt: skip
IMAGES["three.png"] = png(20, 160, 120)
VIDEO = make_video(3, seconds=2.0, fps=5, size=(160, 120))
HERE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _fetcher() -> UrlFetcher:
    """The hotline's fetcher: any public host, redirects across hosts; the test's loopback
    address counts as public, no other (127.0.0.2 is refused like a private address)."""
    return UrlFetcher((), [ipaddress.ip_network("127.0.0.1/32")], resolve=resolving(NAMES),
                      any_host=True, cross_host_redirects=True)  # fmt: skip


def _budget(wait: float = 10.0) -> DecodeBudget:
    """A decode budget of one decode at a time (the server's is shared by its routes)."""
    return DecodeBudget(decodes=1, memory=1024 * MIB, wait=wait, waiters=4)


def _crawl(url: str, decodes: DecodeBudget | None = None, **limits: object) -> Crawl:
    return crawl(url, _fetcher(), CrawlLimits(**limits), clock=lambda: HERE,  # type: ignore[arg-type]
                 decodes=decodes or _budget())  # fmt: skip


def _digests(data: bytes) -> dict[str, str]:
    return {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def _hashes(data: bytes) -> dict[str, str]:
    """What hashing ``data`` directly gives (the digests; PDQ of an image, vPDQ of a video)."""
    found = _digests(data)
    if data is VIDEO:
        vpdq = VpdqSignal()
        found["vpdq"] = vpdq.canonical_of(vpdq.hash(data))
    else:
        found["pdq"] = PdqSignal().hash(data).hex
    return found


def _media(path: str) -> Page | None:
    name = path.rsplit("/", 1)[-1].split("?")[0]
    if name in IMAGES:
        return Page(IMAGES[name], "image/jpeg" if name.endswith("jpg") else "image/other")
    if name == "clip.mp4":
        return Page(VIDEO, "video/mp4")
    return None


GALLERY = """<!doctype html>
<html><head>
<title>A gallery</title>
<base href="/gallery/">
<meta property="og:image" content="og.jpg">
<meta property="og:video" content="http://cdn.test:{port}/clip.mp4">
</head><body>
<img src="one.jpg" alt="one">
<img src="one.jpg">
<img srcset="two.jpg 1x, three.png 2x" src="one.jpg#top">
<picture>
  <source srcset="four.webp?w=100 100w, four-large.jpg 200w" type="image/webp">
  <img src="five.jpg">
</picture>
<video src="/videos/clip.mp4" poster="poster.jpg"><source src="missing.webm"></video>
<a href="six.jpeg">six</a> <a href="about.html">about</a> <a href="mailto:someone@site.test">m</a>
<a href="not-an-image.jpg">a page pretending</a>
<img src="data:image/png;base64,iVBORw0KGgo="> <img src="javascript:void(0)">
<p>unclosed <b>markup <div><img src=seven.jpg>
"""


def test_a_page_with_every_kind_of_media_reference() -> None:
    def pages(path: str) -> Page | None:
        if path == "/gallery":
            return Page(GALLERY.replace("{port}", str(site.port)).encode())
        if path == "/gallery/not-an-image.jpg":
            return Page(b"<html><body>no image here</body></html>")
        return _media(path)

    with website(pages) as site:
        base = f"http://site.test:{site.port}"
        found = _crawl(f"{base}/gallery")
    page = found.page
    assert (page.url, page.final_url, page.status, page.content_type) == (
        f"{base}/gallery", f"{base}/gallery", 200, "text/html")  # fmt: skip
    body = GALLERY.replace("{port}", str(site.port)).encode()
    # the page's own bytes by digest only (a re-check compares a page without media by it)
    assert (page.kind, page.outcome, page.at) == ("page", "ok", HERE)
    assert page.hashes == {"sha256": hashlib.sha256(body).hexdigest()}
    assert page.size == len(body)
    gallery = f"{base}/gallery/"
    assert [item.url for item in found.items] == [
        f"{gallery}og.jpg", f"http://cdn.test:{site.port}/clip.mp4", f"{gallery}one.jpg",
        f"{gallery}two.jpg", f"{gallery}three.png", f"{gallery}four.webp?w=100",
        f"{gallery}four-large.jpg", f"{gallery}five.jpg", f"{base}/videos/clip.mp4",
        f"{gallery}poster.jpg", f"{gallery}missing.webm", f"{gallery}six.jpeg",
        f"{gallery}not-an-image.jpg", f"{gallery}seven.jpg",
    ]  # page order, each once, absolute, no fragment, only http(s)  # fmt: skip
    by_url = {item.url: item for item in found.items}
    for item in found.items:
        name = item.url.rsplit("/", 1)[-1].split("?")[0]
        if name in IMAGES or name == "clip.mp4":
            data = IMAGES.get(name, VIDEO)
            assert (item.final_url, item.status, item.size) == (item.url, 200, len(data))
            assert (item.outcome, item.kind) == ("ok", "video" if data is VIDEO else "image")
            assert item.hashes == _hashes(data), item.url
            expected_quality = None if data is VIDEO else PdqSignal().hash(data).quality
            assert item.quality == expected_quality
    assert by_url[f"{gallery}one.jpg"].content_type == "image/jpeg"
    missing = by_url[f"{gallery}missing.webm"]
    assert (missing.outcome, missing.status, missing.final_url) == (
        "http-error", 404, f"{gallery}missing.webm")  # fmt: skip
    assert "answered 404" in missing.detail and missing.hashes == {}
    pretending = by_url[f"{gallery}not-an-image.jpg"]
    assert (pretending.outcome, pretending.kind, pretending.hashes) == ("not-media", "other", {})
    assert pretending.content_type == "text/html"


def test_a_url_that_is_media_is_its_own_item() -> None:
    with website(_media) as site:
        image = _crawl(f"{site.url}/one.jpg")
        video = _crawl(f"{site.url}/clip.mp4")
    assert image.items == (image.page,)
    assert (image.page.kind, image.page.outcome, image.page.status) == ("image", "ok", 200)
    assert image.page.hashes == _hashes(IMAGES["one.jpg"])
    assert video.items == (video.page,) and video.page.kind == "video"
    assert video.page.hashes == _hashes(VIDEO) and video.page.quality is None


def test_the_crawl_decodes_within_the_servers_decode_budget() -> None:
    """Reported media waits for its share of the budget the server's routes share, up to the
    crawl's time; the digests of what decodes nothing are taken at once."""
    decodes = _budget(wait=0.0)  # the routes' wait: none; the crawler's: the crawl's time
    crawled: list[Crawl] = []
    with website(_media) as site:
        with decodes.holding(1):  # an upload being decoded
            crawler = threading.Thread(target=lambda: crawled.append(
                _crawl(f"{site.url}/one.jpg", decodes, total_time=600)))  # fmt: skip
            crawler.start()
            assert eventually(lambda: decodes.load().waiting == 1)
            assert not crawled  # waiting its turn
        crawler.join()
        with decodes.holding(1), pytest.raises(DecodeBusy):  # full for the whole crawl
            _crawl(f"{site.url}/one.jpg", decodes, total_time=3.0)
    assert crawled[0].page.outcome == "ok"
    assert crawled[0].page.hashes == _hashes(IMAGES["one.jpg"])
    assert decodes.load().refused == 1 and decodes.load().decodes == 0


def test_other_content_is_not_html() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    pages = {"/notes.txt": Page(b"just words", "text/plain; charset=utf-8"),
             "/paper": Page(pdf, "application/pdf"),
             "/data": Page(b'{"img": "one.jpg"}', "application/json")}  # fmt: skip
    with website(pages) as site:
        for path, content_type, size in [("/notes.txt", "text/plain", 10),
                                         ("/paper", "application/pdf", len(pdf)),
                                         ("/data", "application/json", 18)]:  # fmt: skip
            found = _crawl(f"{site.url}{path}")
            assert found.items == ()
            page = found.page
            assert (page.outcome, page.status, page.content_type, page.size) == (
                "not-html", 200, content_type, size)  # fmt: skip
            assert "neither HTML nor media" in page.detail


def test_a_huge_page_is_too_large_declared_or_not_and_a_large_image_is_still_media() -> None:
    huge = b"<html><body>" + b"<p>words</p>" * 20_000  # 240 kB
    big_image = jpeg(9, 1200, 900, quality=100)
    pages = {
        "/declared": Page(huge),
        "/chunked": Page([huge[i : i + 8192] for i in range(0, len(huge), 8192)], length=False),
        "/big.jpg": Page(big_image, "image/jpeg"),
    }
    with website(pages) as site:
        for path in ("/declared", "/chunked"):
            found = _crawl(f"{site.url}{path}", page_bytes=64 * 1024)
            assert (found.page.outcome, found.items) == ("too-large", ()), path
            assert f"larger than {64 * 1024} bytes" in found.page.detail
        assert len(big_image) > 64 * 1024
        image = _crawl(f"{site.url}/big.jpg", page_bytes=64 * 1024)
        assert (image.page.outcome, image.page.hashes) == ("ok", _hashes(big_image))
        too_big = _crawl(f"{site.url}/big.jpg", page_bytes=64 * 1024, media_bytes=100_000)
        assert too_big.page.outcome == "too-large"


def test_a_slow_page_or_item_is_cut_at_the_timeout_and_the_rest_goes_on() -> None:
    trickle = Page([b"<html>"] + [b" "] * 500, pause=0.02)  # 10 s in all
    pages = {
        "/slow": trickle,
        "/page": Page(b'<img src="/slow-image.jpg"><img src="/one.jpg">'),
        "/slow-image.jpg": Page([IMAGES["one.jpg"][:100]] + [b"\0"] * 500, "image/jpeg",
                                pause=0.02, length=False),
        "/one.jpg": Page(IMAGES["one.jpg"], "image/jpeg"),
    }  # fmt: skip
    with website(pages) as site:
        slow = _crawl(f"{site.url}/slow", timeout=0.5)
        assert (slow.page.outcome, slow.items) == ("timed-out", ())
        found = _crawl(f"{site.url}/page", timeout=0.5)
    assert [(i.url.rsplit("/", 1)[1], i.outcome) for i in found.items] == [
        ("slow-image.jpg", "timed-out"), ("one.jpg", "ok")]  # fmt: skip


def test_the_crawl_ends_at_its_total_time() -> None:
    pages = {
        "/page": Page(b'<img src="/slow.jpg"><img src="/one.jpg"><img src="/two.jpg">'),
        "/slow.jpg": Page([b"\xff\xd8\xff"] + [b"\0"] * 500, "image/jpeg", pause=0.02),
        "/one.jpg": Page(IMAGES["one.jpg"], "image/jpeg"),
        "/two.jpg": Page(IMAGES["two.jpg"], "image/jpeg"),
    }
    with website(pages) as site:
        found = _crawl(f"{site.url}/page", timeout=30, total_time=1.0)
        assert site.fetched == ["/page", "/slow.jpg"]  # the others never asked for
    assert [i.outcome for i in found.items] == ["timed-out", "crawl-time-limit", "crawl-time-limit"]
    unreached = found.items[1]
    assert (unreached.final_url, unreached.status, unreached.size) == ("", None, 0)
    assert "1 s were spent" in unreached.detail


def test_endless_redirects_and_redirects_to_private_addresses() -> None:
    def pages(path: str) -> Page | None:
        if path.startswith("/loop/"):
            return redirect(f"/loop/{int(path.rsplit('/', 1)[1]) + 1}")
        return {
            "/to-intranet": redirect("http://intranet.test/admin"),
            "/to-elsewhere": redirect(f"http://elsewhere.test:{site.port}/one.jpg"),
            "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
            "/page": Page(b'<img src="/to-intranet"><img src="/to-cdn"><img src="/loop/0">'),
            "/to-cdn": redirect(f"http://cdn.test:{site.port}/one.jpg"),
        }.get(path) or _media(path)

    with website(pages) as site:
        endless = _crawl(f"{site.url}/loop/0")
        assert (endless.page.outcome, endless.items) == ("too-many-redirects", ())
        assert endless.page.final_url == f"{site.url}/loop/3"  # the last that answered
        for path, address in [("/to-intranet", "10.0.0.7"), ("/to-elsewhere", "127.0.0.2"),
                              ("/to-metadata", "169.254.169.254")]:  # fmt: skip
            refused = _crawl(f"{site.url}{path}").page
            assert refused.outcome == "private-address" and address in refused.detail
            assert (refused.final_url, refused.status) == (f"{site.url}{path}", None)
        items = _crawl(f"{site.url}/page").items
        assert [i.outcome for i in items] == ["private-address", "ok", "too-many-redirects"]
        assert items[1].final_url == f"http://cdn.test:{site.port}/one.jpg"


def test_malformed_and_private_urls_are_refused_before_anything_is_sent() -> None:
    for url, outcome in [("not a url", "bad-url"), ("ftp://site.test/a.jpg", "bad-url"),
                         ("http://site.test:99999/", "bad-url"),
                         ("http://user:secret@site.test/", "not-allowed"),
                         ("http://intranet.test/", "private-address"),
                         ("http://10.1.2.3/", "private-address"),
                         ("http://nowhere.test/", "unresolvable")]:  # fmt: skip
        found = _crawl(url)
        assert (found.page.outcome, found.page.final_url, found.items) == (outcome, "", ()), url
        assert found.page.detail


def test_corrupt_media_and_decompression_bombs_keep_their_digests() -> None:
    good = IMAGES["one.jpg"]
    corrupt = good[:4] + bytes(3000)
    bomb = png_declaring(50_000, 50_000)
    pages = {"/page": Page(b'<img src="/corrupt.jpg"><img src="/bomb.png"><img src="/one.jpg">'),
             "/corrupt.jpg": Page(corrupt, "image/jpeg"), "/bomb.png": Page(bomb, "image/png"),
             "/one.jpg": Page(good, "image/jpeg")}  # fmt: skip
    with website(pages) as site:
        items = _crawl(f"{site.url}/page").items
    corrupted, bombed, fine = items
    assert (corrupted.outcome, corrupted.kind, corrupted.size) == ("corrupt-media", "image", 3004)
    assert corrupted.hashes == _digests(corrupt) and corrupted.quality is None
    assert (bombed.outcome, bombed.kind) == ("media-limit", "image")
    assert "declared pixel count 2,500,000,000 exceeds the limit" in bombed.detail
    assert bombed.hashes == _digests(bomb)
    assert fine.outcome == "ok" and fine.hashes == _hashes(good)


def test_more_media_than_max_items() -> None:
    names = ["one.jpg", "two.jpg", "five.jpg", "six.jpeg", "seven.jpg"]
    page = "".join(f'<img src="/{name}">' for name in names).encode()
    with website(lambda path: Page(page) if path == "/page" else _media(path)) as site:
        found = _crawl(f"{site.url}/page", max_items=3)
        assert site.fetched == ["/page", "/one.jpg", "/two.jpg", "/five.jpg"]
    assert [i.outcome for i in found.items] == ["ok", "ok", "ok", "too-many-items"]
    assert found.page.detail == "an HTML page showing or linking more than 3 media URLs"
    skipped = found.items[-1]
    assert skipped.url == f"{site.url}/six.jpeg" and skipped.final_url == ""
    assert "more media URLs" in skipped.detail and "at most 3" in skipped.detail


def test_a_huge_page_is_collected_only_up_to_what_is_fetched() -> None:
    page = "".join(f'<img src="/{n}.jpg">' for n in range(100_000)).encode()
    assert media_urls(page, "http://site.test/", most=4) == [
        f"http://site.test/{n}.jpg" for n in range(4)]  # fmt: skip


def test_media_urls_are_escaped_as_a_browser_sends_them() -> None:
    page = '<img src="/foto été 1.jpg?q=ü x"><img src="http://bücher.test/a%20b.jpg">'.encode()
    assert media_urls(page, "http://site.test/", "utf-8") == [
        "http://site.test/foto%20%C3%A9t%C3%A9%201.jpg?q=%C3%BC%20x",
        "http://xn--bcher-kva.test/a%20b.jpg",
    ]  # fmt: skip


def test_the_page_is_read_in_the_charset_its_server_declares() -> None:
    """A UTF-8 page without <meta charset>: its Content-Type's charset says how to read it."""
    page = '<html><body><img src="/été.jpg"></body></html>'.encode()
    found_at = "/%C3%A9t%C3%A9.jpg"

    def pages(path: str) -> Page | None:
        if path == "/page":
            return Page(page, "text/html; charset=UTF-8")
        return Page(IMAGES["one.jpg"], "image/jpeg") if path == found_at else None

    with website(pages) as site:
        found = _crawl(f"http://site.test:{site.port}/page")
        assert site.fetched == ["/page", found_at]
    [item] = found.items
    assert item.outcome == "ok" and item.url == f"http://site.test:{site.port}{found_at}"
    # A charset lxml does not know: the page's own declaration (none here: Latin-1) decides.
    assert media_urls(page, "http://site.test/", "x-unknown") == [
        "http://site.test/%C3%83%C2%A9t%C3%83%C2%A9.jpg"]  # fmt: skip
    # One lxml cannot take at all (a control character in the site's header): the same.
    assert media_urls(page, "http://site.test/", "a\x01b") == [
        "http://site.test/%C3%83%C2%A9t%C3%83%C2%A9.jpg"]  # fmt: skip


def test_the_crawl_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch, work = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(work)

    def pages(path: str) -> Page | None:
        if path == "/gallery":
            return Page(GALLERY.replace("{port}", str(site.port)).encode())
        return _media(path)

    with website(pages) as site:
        found = _crawl(f"http://site.test:{site.port}/gallery")
    assert sum(item.outcome == "ok" for item in found.items) == 12  # images and the video
    assert os.listdir(scratch) == [] and os.listdir(work) == []


def test_records_as_json() -> None:
    url = "http://site.test/a.jpg"
    record = FetchRecord(url, url, HERE, 200, "image/jpeg", 10, "image", "ok", "image, hashed",
                         {"md5": "0" * 32}, 90)  # fmt: skip
    assert Crawl(record, (record,)).as_json()["items"] == [{
        "url": "http://site.test/a.jpg", "final_url": "http://site.test/a.jpg",
        "at": "2026-05-01T12:00:00+00:00", "status": 200, "content_type": "image/jpeg",
        "size": 10, "kind": "image", "outcome": "ok", "detail": "image, hashed",
        "hashes": {"md5": "0" * 32}, "quality": 90, "derived": {}, "stability": {}}]  # fmt: skip


def test_media_urls_from_broken_markup_and_srcset() -> None:
    base = "http://site.test/a/page.html"
    assert media_urls(b"", base) == []
    assert media_urls(b"\x00\xff not html at all", base) == []
    page = b"""<img srcset="x.jpg, y.jpg 2x,z.jpg 3x, /w,1.jpg 100w, q.jpg (junk, more) 5w">
               <IMG SRC=' b.jpg '><a href="/v.MP4?x=1#t">v</a><meta name="og:image" content="o.png">
               <table><tr><td><div><img src=c.gif></table></span>"""
    assert media_urls(page, base) == [
        "http://site.test/a/x.jpg", "http://site.test/a/y.jpg", "http://site.test/a/z.jpg",
        "http://site.test/w,1.jpg", "http://site.test/a/q.jpg", "http://site.test/a/b.jpg",
        "http://site.test/v.MP4?x=1", "http://site.test/a/o.png", "http://site.test/a/c.gif",
    ]  # fmt: skip
    # The first <base href> counts for the whole page, wherever it is.
    based = media_urls(b'<img src="x.jpg"><base href="http://other.test/b/">', base)
    assert based == ["http://other.test/b/x.jpg"]
