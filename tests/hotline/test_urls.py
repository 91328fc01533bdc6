"""Reported URLs: every rule a URL is refused by, with the sentence the reporter reads, and the
normal form that makes the same address in other spellings one case."""

import hashlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashguard.errors import Invalid
from hashguard.hotline.urls import InvalidUrl, check, check_all

NOT_PUBLIC = "which is not public: a hotline can only look at pages anyone on the internet can"
NEVER_PUBLIC = "a name that is never public"

REFUSED = [
    ("", "URL '' is empty: give the page's address, starting with https://"),
    ("https://example.com/" + "a" * 2030, "has 2050 characters: at most 2048 are taken"),
    ("https://example.com/a\nb", "holds a control character"),
    ("example.com/page", "URL 'example.com/page' has no scheme: start it with https://"),
    ("www.example.com:8080/x", "has no scheme: start it with https://"),
    ("localhost:8080", "has no scheme: start it with https://"),
    ("ftp://example.com/x", "URL 'ftp://example.com/x' is of scheme ftp: only http and https"),
    ("javascript:alert(1)", "is of scheme javascript: only http and https"),
    ("file:///etc/passwd", "is of scheme file: only http and https"),
    ("https:/example.com", "has no host: write it as https://host/path"),
    ("https://", "URL 'https://' has no host"),
    ("https:///path", "has no host"),
    ("https://user:secret@example.com/", "holds a user name or password (before @): leave it out"),
    ("https://user@example.com/", "holds a user name or password"),
    ("https://example.com:0/", "has port '0': expected a number from 1 to 65535"),
    ("https://example.com:65536/", "has port '65536': expected a number from 1 to 65535"),
    ("https://example.com:http/", "has port 'http': expected a number"),
    ("https://10.0.0.1/", f"names address 10.0.0.1, {NOT_PUBLIC}"),
    ("https://192.168.1.1/", "names address 192.168.1.1, which is not public"),
    ("http://127.0.0.1:8000/", "names address 127.0.0.1, which is not public"),
    ("http://127.1/", "names address 127.0.0.1, which is not public"),  # as browsers read it
    ("http://0x7f000001/", "names address 127.0.0.1, which is not public"),
    ("http://2130706433/", "names address 127.0.0.1, which is not public"),
    ("http://0177.0.0.1/", "names address 127.0.0.1, which is not public"),  # octal
    ("http://169.254.169.254/latest/meta-data/", "names address 169.254.169.254, which is not"),
    ("http://100.64.0.1/", "names address 100.64.0.1, which is not public"),  # shared (CGNAT)
    ("http://0.0.0.0/", "names address 0.0.0.0, which is not public"),
    ("http://224.0.0.251/", "names address 224.0.0.251, which is not public"),  # multicast
    ("http://[::1]/", "names address ::1, which is not public"),
    ("http://[fd00::1]/", "names address fd00::1, which is not public"),
    ("http://[::ffff:10.0.0.1]/", "names address 10.0.0.1, which is not public"),
    # the IPv6 forms the fetcher refuses, refused as the reporter sends them
    ("http://[::ffff:0:7f00:1]/", "names address ::ffff:0:7f00:1, which is not public"),  # SIIT
    ("http://[fec0::1]/", "names address fec0::1, which is not public"),  # site-local
    ("http://[64:ff9b::7f00:1]/", "names address 64:ff9b::7f00:1, which is not public"),  # NAT64
    ("http://[2002:7f00:1::1]/", "names address 2002:7f00:1::1, which is not public"),  # 6to4
    ("http://[::7f00:1]/", "names address ::7f00:1, which is not public"),  # IPv4-compatible
    ("http://[ff02::1]/", "names address ff02::1, which is not public"),
    ("http://[::1/", "has an IPv6 address without its closing ]"),
    ("http://[::1]x/", "has text after its IPv6 address: expected :port"),
    ("http://[example]/", "has '[example]': not an IPv6 address"),
    ("http://1.2.3.4.5/", "has host '1.2.3.4.5': not an IPv4 address"),
    ("http://256.1.1.1/", "has host '256.1.1.1': not an IPv4 address"),
    ("http://localhost/", f"has host localhost, {NEVER_PUBLIC}"),
    ("http://LOCALHOST./", f"has host localhost, {NEVER_PUBLIC}"),
    ("http://app.localhost/", f"has host app.localhost, {NEVER_PUBLIC}"),
    ("http://printer.local/", f"has host printer.local, {NEVER_PUBLIC}"),
    ("http://db.internal/", f"has host db.internal, {NEVER_PUBLIC}"),
    ("http://router.home.arpa/", f"has host router.home.arpa, {NEVER_PUBLIC}"),
    ("http://nas.lan/", f"has host nas.lan, {NEVER_PUBLIC}"),
    ("http://site.invalid/", f"has host site.invalid, {NEVER_PUBLIC}"),
    ("http://intranet/", f"has host intranet, {NEVER_PUBLIC}"),
    ("http://exa mple.com/", "has host 'exa mple.com': not a valid host name"),
    ("http://exa%6dple.com/", "not a valid host name"),
    ("http://" + "a" * 64 + ".com/", "not a valid host name"),
    ("http://-site.com/", "not a valid host name"),
    ("http://xn--a.com\u2028/", "not a valid name"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED)
def test_a_refused_url_is_named_with_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(InvalidUrl) as refused:
        check(url)
    assert message in str(refused.value)
    assert str(refused.value).startswith("URL ")
    assert isinstance(refused.value, Invalid)


def test_of_several_urls_the_refused_one_is_named_by_its_position() -> None:
    with pytest.raises(InvalidUrl) as refused:
        check_all(["https://example.com/", "ftp://example.org/x"])
    assert str(refused.value) == (
        "URL 2: 'ftp://example.org/x' is of scheme ftp: only http and https addresses are taken"
    )


def test_a_long_url_is_quoted_cut_short() -> None:
    with pytest.raises(InvalidUrl) as refused:
        check("gopher://example.com/" + "x" * 500)
    assert "..." in str(refused.value) and len(str(refused.value)) < 200


def test_addresses_in_the_operators_networks_are_taken() -> None:
    loopback = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert check("http://127.0.0.2:8080/page", loopback).url == "http://127.0.0.2:8080/page"
    assert check("http://[::1]:8080/", loopback).host == "::1"
    with pytest.raises(InvalidUrl, match=r"10\.0\.0\.1, which is not public"):
        check("http://10.0.0.1/", loopback)


SAME = [
    ("https://example.com/", ["HTTPS://EXAMPLE.COM", "https://Example.com:443/",
                              "https://example.com./", "https://example.com/#top",
                              "  https://example.com  ", "https://example.com:/"]),
    ("http://example.com/a~b/%2F?q=%3D", ["http://example.com:80/a%7Eb/%2f?q=%3d",
                                          "http://EXAMPLE.com/%61%7e%62/%2F?q=%3D#x"]),
    ("https://xn--bcher-kva.example/", ["https://Bücher.example/", "https://BÜCHER.example"]),
    ("https://xn--fa-hia.de/", ["https://faß.de/"]),  # UTS 46 as browsers: not "fass.de"
    ("https://example.com/caf%C3%A9%20menu", ["https://example.com/café menu",
                                              "https://example.com/caf%c3%a9%20menu"]),
    ("http://8.8.8.8:8080/", ["http://8.8.8.8:8080", "http://134744072:8080/",
                              "http://0x8.0x8.0x8.0x8:8080/"]),
    ("https://[2001:4860::8888]/x", ["https://[2001:4860:0:0:0:0:0:8888]:443/x"]),
    ("https://example.com/?", ["https://example.com/?"]),
    ("http://8.8.8.8/b", ["http://[::ffff:8.8.8.8]/b", "http://[::ffff:808:808]:80/b"]),
    ("https://example.com/b/", ["https://example.com/a/../b/", "https://example.com/./b/.",
                                "https://example.com/a/%2E%2E/b/", "https://example.com/../b/"]),
    ("https://example.com/a//c?x=/../y", ["https://example.com/a//b/../c?x=/../y"]),
]  # fmt: skip


@pytest.mark.parametrize(("normal", "spellings"), SAME)
def test_spellings_of_one_address_have_one_normal_form_and_key(
    normal: str, spellings: list[str]
) -> None:
    first = check(normal)
    for spelling in spellings:
        reported = check(spelling)
        assert (reported.url, reported.key) == (first.url, first.key), spelling
    assert first.url == normal.removesuffix("?")


def test_the_query_is_kept_in_its_order_and_other_paths_are_other_addresses() -> None:
    a, b = check("https://example.com/p?b=1&a=2"), check("https://example.com/p?a=2&b=1")
    assert a.url == "https://example.com/p?b=1&a=2" and a.key != b.key
    assert check("https://example.com/P").key != check("https://example.com/p").key
    assert check("https://example.com/p").key != check("http://example.com/p").key
    assert check("https://example.com:8443/").url == "https://example.com:8443/"


def test_the_key_is_the_sha256_of_the_normal_form_and_the_host_is_ascii() -> None:
    reported = check("https://Bücher.Example/x")
    assert reported.host == "xn--bcher-kva.example"
    assert reported.key == hashlib.sha256(reported.url.encode()).hexdigest()


def test_duplicates_in_one_report_collapse_in_order() -> None:
    found = check_all(["https://b.example/", "https://a.example/", "HTTPS://B.EXAMPLE"])
    assert [r.url for r in found] == ["https://b.example/", "https://a.example/"]


@given(st.text(max_size=300))
def test_any_text_is_either_refused_with_a_sentence_or_a_normal_url(text: str) -> None:
    try:
        reported = check(text)
    except InvalidUrl as error:
        assert str(error).startswith("URL ")
        return
    assert reported.url.startswith(("http://", "https://")) and reported.url.isascii()
    assert len(reported.url) <= 2048
    assert check(reported.url) == reported  # the normal form is its own normal form
