"""Fetching by URL: off by default, allow-listed hosts only (or any public host), no private,
loopback or link-local addresses, no redirects to other hosts unless asked for (each checked
again), bounded bodies and time, every refusal a named outcome. Real HTTP servers on loopback
serve the answers; other addresses come from a resolver given to the fetcher (the fetcher
refuses them before connecting)."""

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hashguard.net.fetch import FetchRefused, UrlFetcher
from hashguard.signals.pdq import PdqSignal
from hashguard.store import audit
from hashguard.store.database import open_engine

from support.media import jpeg
from support.server import running
from support.website import Page, redirect, resolving, website

IMAGE = jpeg(5, 400, 300)
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class _Media(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/img.jpg": (200, {"Content-Type": "image/jpeg"}, IMAGE),
            "/same-host": (302, {"Location": "/img.jpg"}, b""),
            "/other-host": (302, {"Location": f"http://elsewhere.test:{port}/img.jpg"}, b""),
            "/big": (200, {"Content-Type": "image/jpeg"}, b"\xff" * 5000),
            "/missing": (404, {}, b""),
        }
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def media_server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Media)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def _resolving(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port, timeout: list(addresses)


def test_fetching_is_off_by_default(media_server: int) -> None:
    with pytest.raises(FetchRefused, match="does not fetch URLs") as refused:
        UrlFetcher(()).fetch(f"http://localhost:{media_server}/img.jpg")
    assert refused.value.reason == "not-allowed"


def test_only_allowed_hosts_and_web_schemes(media_server: int) -> None:
    fetcher = UrlFetcher(["media.example.org", "*.cdn.example.org"], LOOPBACK,
                         resolve=_resolving("127.0.0.1"))  # fmt: skip
    for url, message, reason in [
        (f"http://localhost:{media_server}/img.jpg", "not on this service's fetch allow-list",
         "not-allowed"),
        ("http://cdn.example.org/a.jpg", "allow-list", "not-allowed"),  # *.cdn: subdomains only
        ("file:///etc/passwd", "only http and https", "bad-url"),
        ("ftp://media.example.org/a.jpg", "only http and https", "bad-url"),
        ("http://user:pw@media.example.org/a.jpg", "credentials", "not-allowed"),
        ("http:///a.jpg", "no host", "bad-url"),
        ("http://media.example.org:99999/a.jpg", "not a URL", "bad-url"),
    ]:  # fmt: skip
        with pytest.raises(FetchRefused, match=message) as refused:
            fetcher.fetch(url)
        assert refused.value.reason == reason and refused.value.url == ""
    fetched = fetcher.fetch(f"http://img.cdn.example.org:{media_server}/img.jpg")
    assert fetched.body == IMAGE and fetched.content_type == "image/jpeg"


def test_a_name_no_resolver_takes_is_refused() -> None:
    fetcher = UrlFetcher(["*.cdn.example.org"])  # the system resolver, which refuses it itself
    with pytest.raises(FetchRefused, match="cannot resolve") as refused:
        fetcher.fetch(f"http://{'a' * 64}.cdn.example.org/a.jpg")
    assert refused.value.reason == "unresolvable"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1",
     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1",
     "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe", "2001:0:4136:e378::1",
     "::ffff:0:7f00:1", "fec0::1"],
)  # fmt: skip
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    fetcher = UrlFetcher(["media.example.org"], resolve=_resolving(address))
    with pytest.raises(FetchRefused, match="private, loopback, link-local or reserved") as refused:
        fetcher.fetch("http://media.example.org/a.jpg")
    assert refused.value.reason == "private-address"


def test_one_private_address_among_public_ones_is_refused() -> None:
    fetcher = UrlFetcher(["media.example.org"], resolve=_resolving("93.184.215.14", "10.0.0.1"))
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.1"):
        fetcher.fetch("http://media.example.org/a.jpg")


def test_redirects_stay_on_the_host_and_bodies_are_bounded(media_server: int) -> None:
    here = _resolving("127.0.0.1")  # the machine's own resolver may add ::1 for localhost
    fetcher = UrlFetcher(["localhost"], LOOPBACK, max_bytes=4096, resolve=here)
    base = f"http://localhost:{media_server}"
    with pytest.raises(FetchRefused, match="larger than"):
        fetcher.fetch(f"{base}/img.jpg")  # IMAGE is over 4 KiB
    fetcher = UrlFetcher(["localhost", "elsewhere.test"], LOOPBACK, resolve=here)  # both allowed
    fetched = fetcher.fetch(f"{base}/same-host")
    assert (fetched.body, fetched.url, fetched.status) == (IMAGE, f"{base}/img.jpg", 200)
    with pytest.raises(FetchRefused, match="another host") as refused:
        fetcher.fetch(f"{base}/other-host")
    assert (refused.value.reason, refused.value.url) == ("not-allowed", f"{base}/other-host")
    with pytest.raises(FetchRefused, match="answered 404") as refused:
        fetcher.fetch(f"{base}/missing")
    assert (refused.value.reason, refused.value.status) == ("http-error", 404)


def test_the_service_refuses_loopback_unless_its_network_is_named_and_audits_its_settings(
    media_server: int, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{media_server}/img.jpg"  # not localhost: it may resolve to ::1 too
    database = f"sqlite:///{tmp_path / 'hashguard.db'}"
    with running(database, "--fetch-host", "127.0.0.1") as served:
        refused = served.get("/h/hash", "matcher", params={"url": url})
        assert refused.status_code == 400
        assert "loopback" in refused.json()["message"]
        mine = served.post("/v1/hash", "matcher", params={"url": url})
        assert mine.status_code == 400 and "loopback" in mine.json()["error"]["message"]
    allowed = ("--fetch-host", "127.0.0.1", "--fetch-network", "127.0.0.1/32")
    with running(database, *allowed) as served:
        hashed = served.get("/h/hash", "matcher", params={"url": url})
        assert hashed.status_code == 200, hashed.text
        assert hashed.json() == {"pdq": PdqSignal().hash(IMAGE).hex}
    with running(database, *allowed):  # the same settings again: nothing new to record
        pass
    engine = open_engine(database)
    recorded = [json.loads(e.details) for e in audit.events(engine, 0, 1000)
                if e.action == "service.configuration"]  # fmt: skip
    engine.dispose()
    assert [c["fetch_networks"] for c in recorded] == [[], ["127.0.0.1/32"]]
    assert all(c["fetch_hosts"] == ["127.0.0.1"] for c in recorded)


# What the hotline's crawler asks of the fetcher: any public host, redirects across hosts (each
# checked again), and every way a website can fail named.
NAMES = {"site-a.test": "127.0.0.1", "site-b.test": "127.0.0.1", "intranet.test": "10.0.0.5",
         "other-loopback.test": "127.0.0.2"}  # fmt: skip
ONLY_ME = [ipaddress.ip_network("127.0.0.1/32")]


def _crawler(**options: object) -> UrlFetcher:
    return UrlFetcher((), ONLY_ME, resolve=resolving(NAMES), any_host=True,
                      cross_host_redirects=True, **options)  # type: ignore[arg-type]  # fmt: skip


def _refusal(fetcher: UrlFetcher, url: str, **options: object) -> FetchRefused:
    with pytest.raises(FetchRefused) as refused:
        fetcher.fetch(url, **options)  # type: ignore[arg-type]
    return refused.value


def test_any_public_host_and_redirects_across_hosts_each_checked_again() -> None:
    with website({}) as b:
        pages = {
            "/img.jpg": Page(IMAGE, "image/jpeg"),
            "/to-b": redirect(f"http://site-b.test:{b.port}/there"),
            "/to-intranet": redirect("http://intranet.test/secret"),
            "/to-loopback": redirect(f"http://other-loopback.test:{b.port}/img.jpg"),
            "/to-credentials": redirect(f"http://user:pw@site-b.test:{b.port}/img.jpg"),
            "/to-file": redirect("file:///etc/passwd"),
            "/to-nowhere": redirect("http://unknown.test/img.jpg"),
            "/to-broken": redirect("http://[::1/img.jpg"),
        }
        with website(pages) as a:
            b.pages = {"/there": redirect(f"http://site-a.test:{a.port}/img.jpg", 301)}
            base = f"http://site-a.test:{a.port}"
            fetched = _crawler().fetch(f"{base}/to-b")
            assert (fetched.body, fetched.content_type) == (IMAGE, "image/jpeg")
            assert fetched.status == 200
            assert fetched.url == f"{base}/img.jpg"  # a -> b -> a
            assert b.fetched == ["/there"]
            for path, reason, refused_at in [
                ("/to-intranet", "private-address", f"{base}/to-intranet"),
                ("/to-loopback", "private-address", f"{base}/to-loopback"),  # not in the networks
                ("/to-credentials", "not-allowed", f"{base}/to-credentials"),
                ("/to-file", "bad-url", f"{base}/to-file"),
                ("/to-nowhere", "unresolvable", f"{base}/to-nowhere"),
                ("/to-broken", "bad-url", f"{base}/to-broken"),
            ]:
                refused = _refusal(_crawler(), f"{base}{path}")
                assert (refused.reason, refused.url) == (reason, refused_at), path
            assert "10.0.0.5" in str(_refusal(_crawler(), f"{base}/to-intranet"))
            # The same host only, unless asked for.
            same_host = UrlFetcher((), ONLY_ME, resolve=resolving(NAMES), any_host=True)
            assert _refusal(same_host, f"{base}/to-b").reason == "not-allowed"
            # A host whose address is private is refused before anything is sent.
            assert _refusal(_crawler(), "http://intranet.test/").reason == "private-address"


def test_endless_redirects_end_after_max_redirects() -> None:
    def endless(path: str) -> Page:
        step = int(path.rsplit("/", 1)[1])
        return redirect(f"/loop/{step + 1}")

    with website(endless) as site:
        refused = _refusal(_crawler(max_redirects=5), f"{site.url}/loop/0")
        assert refused.reason == "too-many-redirects" and "more than 5 redirects" in str(refused)
        assert site.fetched == [f"/loop/{n}" for n in range(6)]
        assert refused.url == f"{site.url}/loop/5"
    with website({"/1": redirect("/2"), "/2": redirect("/3"), "/3": Page(b"here")}) as site:
        assert _crawler(max_redirects=2).fetch(f"{site.url}/1").url == f"{site.url}/3"
        assert _refusal(_crawler(max_redirects=1), f"{site.url}/1").reason == "too-many-redirects"


def test_bodies_over_the_limit_declared_or_while_reading_are_too_large() -> None:
    big = b"<p>" + b"x" * 300_000
    pages = {
        "/declared": Page(big),
        "/chunked": Page([big[i : i + 10_000] for i in range(0, len(big), 10_000)], length=False),
        "/small-chunks": Page([b"<p>hello", b" world</p>"], length=False),
    }
    with website(pages) as site:
        for path in ("/declared", "/chunked"):
            refused = _refusal(_crawler(), f"{site.url}{path}", max_bytes=100_000)
            assert refused.reason == "too-large" and "larger than 100000 bytes" in str(refused)
        larger = _crawler(max_bytes=100_000).fetch(f"{site.url}/declared", max_bytes=400_000)
        assert larger.body == big
        assert _crawler().fetch(f"{site.url}/small-chunks").body == b"<p>hello world</p>"


def test_a_declared_length_that_is_not_a_number_is_left_to_the_bounded_read() -> None:
    """A Content-Length of a character that is a digit only to Unicode, or of thousands of
    digits: the answer is read as one of no declared length (bounded), or refused as too large,
    never a crash of the crawl or the route that fetched it."""

    def answer(length: bytes, body: bytes = b"hello") -> Page:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        return Page([head + b"Content-Length: " + length + b"\r\n\r\n" + body], raw=True)

    with website({"/superscript": answer(b"\xb2"), "/huge": answer(b"9" * 5000),
                  "/huge-big": answer(b"9" * 5000, b"x" * 300_000)}) as site:  # fmt: skip
        assert _crawler().fetch(f"{site.url}/superscript").body == b"hello"
        for path in ("/huge", "/huge-big"):
            refused = _refusal(_crawler(), f"{site.url}{path}", max_bytes=100_000)
            assert refused.reason == "too-large", path


def test_a_slow_server_is_cut_at_the_deadline() -> None:
    trickle = [b"x"] * 1000  # a byte every 20 ms: 20 s in all, never silent for long
    head = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Slow: 1\r\n"] * 1000
    pages = {
        "/body": Page(trickle, "text/plain", pause=0.02),
        "/headers": Page(head, raw=True, pause=0.02),
    }
    with website(pages) as site:
        for path in ("/body", "/headers"):
            refused = _refusal(_crawler(timeout=30), f"{site.url}{path}", timeout=0.5)
            assert refused.reason == "timed-out" and "timed out" in str(refused), path


def test_servers_that_fail_are_named() -> None:
    with website({"/gone": Page(b"gone", "text/plain", 410),
                  "/not-http": Page([b"SSH-2.0-OpenSSH\r\n"], raw=True)}) as site:  # fmt: skip
        refused = _refusal(_crawler(), f"{site.url}/gone")
        assert (refused.reason, refused.status, refused.url) == (
            "http-error", 410, f"{site.url}/gone")  # fmt: skip
        assert _refusal(_crawler(), f"{site.url}/not-http").reason == "connection-failed"
        port = site.port
    assert _refusal(_crawler(), f"http://127.0.0.1:{port}/").reason == "connection-failed"


def test_paths_are_sent_as_a_browser_sends_them() -> None:
    with website({"/a%20b/%C3%A9.jpg": Page(IMAGE, "image/jpeg")}) as site:
        assert _crawler().fetch(f"{site.url}/a b/é.jpg").body == IMAGE
        assert _crawler().fetch(f"{site.url}/a%20b/%C3%A9.jpg").body == IMAGE
