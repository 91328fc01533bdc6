"""HTTP to an exchange: only its base URL and below, any method, every status returned, the
fetcher's SSRF checks kept, failures as ExchangeUnavailable, credentials never in a message.
Real HTTP servers on loopback answer."""

import ipaddress
import socket

import pytest

from hashguard.exchanges.api import ExchangeConfigError, ExchangeUnavailable
from hashguard.exchanges.http import Http, OutsideExchange

from support.loopback import Loopback
from support.website import Page, redirect, website

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
SECRET = "s3cr3t-token-value"


def test_requests_carry_method_headers_query_and_body_and_every_status_comes_back() -> None:
    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if path.startswith("/api/v2/missing"):
            return 404, "application/json", b'{"error": "no such thing"}'
        return 200, "application/json; charset=utf-8", b'{"ok": true}'

    server = Loopback(answer)
    try:
        http = Http(server.url + "/api/v2/", LOOPBACK)
        got = http.request("GET", "/hashes", params={"since": "12", "kind": "a b"},
                           headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip
        assert (got.status, got.content_type) == (200, "application/json")
        assert got.body == b'{"ok": true}'
        assert got.headers["content-type"] == "application/json; charset=utf-8"
        assert server.fetched[-1] == "/api/v2/hashes?since=12&kind=a+b"

        missing = http.request("GET", "missing")
        assert (missing.status, missing.body) == (404, b'{"error": "no such thing"}')

        posted = http.request("POST", "feedback", body=b'{"x": 1}', content_type="application/json",
                              headers={"X-Key": SECRET})  # fmt: skip
        assert posted.status == 200
        path, headers, body = server.requests[-1]
        assert (path, body) == ("/api/v2/feedback", b'{"x": 1}')
        assert headers["Content-Type"] == "application/json" and headers["X-Key"] == SECRET
    finally:
        server.close()


def test_links_under_the_base_url_are_followed_and_links_elsewhere_refused_by_name() -> None:
    with website({"/feed/page2": Page(b"two", "text/plain")}) as site:
        http = Http(site.url + "/feed", LOOPBACK)
        assert http.request("GET", f"{site.url}/feed/page2").body == b"two"
        another_port = site.url[:-1] + ("8" if site.url.endswith("9") else "9")
        for link, said in [
            (f"{site.url}/admin", "leads outside /feed"),
            (f"{site.url}/feed/../admin", "leads outside /feed"),
            (f"{site.url}/feed/%2e%2e/admin", "leads outside /feed"),
            ("../admin", "leads outside /feed"),
            (f"http://127.0.0.2:{site.port}/feed/page2", "another host"),
            (f"http://localhost:{site.port}/feed/page2", "another host"),
            (f"https://127.0.0.1:{site.port}/feed/page2", "another host, scheme or port"),
            (f"{another_port}/feed/page2", "another host, scheme or port"),
        ]:
            with pytest.raises(OutsideExchange, match=said) as refused:
                http.request("GET", link + "?token=" + SECRET)
            assert SECRET not in str(refused.value)
            assert isinstance(refused.value, ExchangeUnavailable)
        assert site.fetched == ["/feed/page2"]


def test_get_follows_redirects_under_the_base_url_only_and_other_methods_none() -> None:
    keys = {"x-functions-key": SECRET, "Ocp-Apim-Subscription-Key": SECRET + "-2"}
    with website({"/admin/secrets": Page(b"{}"), "/x/new": Page(b"elsewhere")}) as other:
        pages = {"/x/old": redirect("/x/new"), "/x/new": Page(b"new", "text/plain"),
                 "/x/away": redirect("http://elsewhere.test/x/new"),
                 "/x/port": redirect(f"{other.url}/admin/secrets"),
                 "/x/same-path-other-port": redirect(f"{other.url}/x/new"),
                 "/x/up": redirect("/admin/secrets"), "/x/dots": redirect("../admin/secrets"),
                 "/x/scheme": redirect("https://127.0.0.1/x/new"),
                 "/x/loop": redirect("/x/loop")}  # fmt: skip

        def posted(path: str, headers: dict[str, str], body: bytes) -> Page:
            return redirect("/x/new", 307)

        with website(pages, posted=posted) as site:
            http = Http(site.url + "/x", LOOPBACK)
            assert http.request("GET", "old", headers=keys).body == b"new"
            assert http.request("POST", "old", body=b"{}").status == 307
            for path, said in [
                ("away", "another host"),
                ("port", "another host, scheme or port"),
                ("same-path-other-port", "another host, scheme or port"),
                ("scheme", "another host, scheme or port"),
                ("up", "leads outside /x"),
                ("dots", "leads outside /x"),
            ]:
                with pytest.raises(OutsideExchange, match=said) as refused:
                    http.request("GET", path, headers=keys)
                assert "redirected away from the exchange's base URL" in str(refused.value)
            with pytest.raises(ExchangeUnavailable, match="more than 3 redirects"):
                http.request("GET", "loop")
            assert site.fetched.count("/admin/secrets") == 0
        # The exchange's keys never reached another port of its host.
        assert other.fetched == []


def test_an_https_exchange_is_never_followed_down_to_http() -> None:
    http = Http("https://exchange.example/v1")
    here = "https://exchange.example/v1/FetchHashes?token=" + SECRET
    assert http.redirected(here, "/v1/page2") == "https://exchange.example/v1/page2"
    for location in (
        "http://exchange.example/v1/page2",
        "http://exchange.example:443/v1/x",
        "https://exchange.example:8443/v1/page2",
        "//other.example/v1/page2",
    ):
        with pytest.raises(OutsideExchange) as refused:
            http.redirected(here, location)
        assert SECRET not in str(refused.value)


def test_loopback_is_refused_unless_its_network_is_named() -> None:
    with website({"/a": Page(b"a")}) as site:
        with pytest.raises(ExchangeUnavailable, match="loopback"):
            Http(site.url).request("GET", "/a")
        assert site.fetched == []


def test_network_failures_are_unavailable_and_never_show_credentials() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    http = Http(f"http://127.0.0.1:{port}/v1", LOOPBACK, timeout=5)
    with pytest.raises(ExchangeUnavailable, match="cannot connect") as failed:
        http.request("GET", "/changes", params={"access_token": SECRET},
                     headers={"Authorization": SECRET})  # fmt: skip
    assert SECRET not in str(failed.value)
    assert f"GET http://127.0.0.1:{port}/v1/changes" in str(failed.value)


def test_slow_and_oversized_answers_are_cut() -> None:
    pages = {"/slow": Page([b"a"] * 50, pause=0.2), "/big": Page(b"x" * 5000)}
    with website(pages) as site:
        http = Http(site.url, LOOPBACK, timeout=1, max_bytes=1000)
        with pytest.raises(ExchangeUnavailable, match="timed out"):
            http.request("GET", "slow")
        with pytest.raises(ExchangeUnavailable, match="larger than 1000 bytes"):
            http.request("GET", "big")


def test_a_header_that_cannot_be_sent_is_named_without_its_value() -> None:
    with website({}) as site:
        http = Http(site.url, LOOPBACK)
        for value in (f"{SECRET}\r\nX-Injected: 1", f"{SECRET}\u2019"):
            with pytest.raises(ExchangeConfigError, match="header Authorization") as refused:
                http.request("GET", "/", headers={"Authorization": value})
            assert SECRET not in str(refused.value)
        assert site.fetched == []


@pytest.mark.parametrize(
    "base", ["ftp://example.org/", "example.org/feed", "https://user:pw@example.org", "https://"]
)
def test_a_base_url_that_is_not_one_is_refused(base: str) -> None:
    with pytest.raises(ExchangeConfigError, match="base_url"):
        Http(base)
