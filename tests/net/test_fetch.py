"""Fetching media by URL: off by default, allow-listed hosts only, no private, loopback or
link-local addresses, no redirects to other hosts, bounded bodies. A real HTTP server on
loopback serves the media; other addresses come from a resolver given to the fetcher (the
fetcher refuses them before connecting)."""

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
    return lambda host, port: list(addresses)


def test_fetching_is_off_by_default(media_server: int) -> None:
    with pytest.raises(FetchRefused, match="does not fetch URLs"):
        UrlFetcher(()).fetch(f"http://localhost:{media_server}/img.jpg")


def test_only_allowed_hosts_and_web_schemes(media_server: int) -> None:
    fetcher = UrlFetcher(["media.example.org", "*.cdn.example.org"], LOOPBACK,
                         resolve=_resolving("127.0.0.1"))  # fmt: skip
    for url, reason in [
        (f"http://localhost:{media_server}/img.jpg", "not on this service's fetch allow-list"),
        ("http://cdn.example.org/a.jpg", "allow-list"),  # *.cdn: subdomains only
        ("file:///etc/passwd", "only http and https"),
        ("ftp://media.example.org/a.jpg", "only http and https"),
        ("http://user:pw@media.example.org/a.jpg", "credentials"),
        ("http:///a.jpg", "no host"),
    ]:
        with pytest.raises(FetchRefused, match=reason):
            fetcher.fetch(url)
    fetched = fetcher.fetch(f"http://img.cdn.example.org:{media_server}/img.jpg")
    assert fetched.body == IMAGE and fetched.content_type == "image/jpeg"


def test_a_name_no_resolver_takes_is_refused() -> None:
    fetcher = UrlFetcher(["*.cdn.example.org"])  # the system resolver, which refuses it itself
    with pytest.raises(FetchRefused, match="cannot resolve"):
        fetcher.fetch(f"http://{'a' * 64}.cdn.example.org/a.jpg")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1",
     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1",
     "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe", "2001:0:4136:e378::1"],
)  # fmt: skip
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    fetcher = UrlFetcher(["media.example.org"], resolve=_resolving(address))
    with pytest.raises(FetchRefused, match="private, loopback, link-local or reserved"):
        fetcher.fetch("http://media.example.org/a.jpg")


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
    assert fetcher.fetch(f"{base}/same-host").body == IMAGE
    with pytest.raises(FetchRefused, match="another host"):
        fetcher.fetch(f"{base}/other-host")
    with pytest.raises(FetchRefused, match="answered 404"):
        fetcher.fetch(f"{base}/missing")


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
