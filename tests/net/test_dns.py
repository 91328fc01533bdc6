"""The hosting trace's DNS against a real DNS server on loopback: the CNAME chain in order,
A then AAAA answers, a chain the server does not chase followed by the client, loops and long
chains named, and every failure (no such domain, no address, SERVFAIL, silence, no server) a
short sentence instead of an exception."""

import re
import time

import pytest

from hashguard.errors import Invalid
from hashguard.net.dns import MAX_CNAMES, DnsResolver, Resolution
from hashguard.net.fetch import FetchRefused, UrlFetcher

from support.dns import DnsServer, dns_server, free_udp_port

ZONE = {
    "www.site-a.test": ["CNAME site-a.cdn-front.test"],
    "site-a.cdn-front.test": ["CNAME edge.cdn.test"],
    "edge.cdn.test": ["A 127.0.0.2", "A 127.0.0.3", "AAAA ::1"],
    "plain.test": ["A 127.0.1.1"],
    "odd-class.test": ["A/1280 127.0.3.1"],
    "mixed-class.test": ["A/1280 127.0.3.1", "A 127.0.3.2"],
    "odd-cname.test": ["CNAME/1280 plain.test", "A 127.0.4.1"],
    "v6only.test": ["AAAA 2001:db8::7"],
    "mail-only.test": ["CNAME nowhere.test"],
    "loop-a.test": ["CNAME loop-b.test"],
    "loop-b.test": ["CNAME loop-a.test"],
    "broken.test": ["SERVFAIL"],
    "silent.test": ["SILENT"],
    "empty.test": [],
    "many.test": [f"A 127.0.2.{n}" for n in range(1, 61)],  # over 512 bytes: TCP
    **{f"step{n}.test": [f"CNAME step{n + 1}.test"] for n in range(MAX_CNAMES + 2)},
}

zone = dns_server(ZONE)


def test_a_name_behind_a_cname_chain_resolves_with_its_chain_in_order(zone: DnsServer) -> None:
    resolution = DnsResolver([zone.address]).resolve("WWW.Site-A.test.")
    assert resolution == Resolution(
        "www.site-a.test",
        ("site-a.cdn-front.test", "edge.cdn.test"),
        ("127.0.0.2", "127.0.0.3", "::1"),
        None,
    )
    assert resolution.as_json() == {
        "name": "www.site-a.test",
        "cnames": ["site-a.cdn-front.test", "edge.cdn.test"],
        "addresses": ["127.0.0.2", "127.0.0.3", "::1"],
        "error": None,
    }


def test_a_chain_the_server_does_not_chase_is_followed_by_asking_each_name() -> None:
    with DnsServer(ZONE, chase=False) as lazy:
        resolution = DnsResolver([lazy.address]).resolve("www.site-a.test")
        assert resolution.cnames == ("site-a.cdn-front.test", "edge.cdn.test")
        assert resolution.addresses == ("127.0.0.2", "127.0.0.3", "::1")
        assert ("edge.cdn.test", "A") in lazy.asked


def test_plain_names_ipv6_only_names_and_ip_literals(zone: DnsServer) -> None:
    resolver = DnsResolver([zone.address])
    assert resolver.resolve("plain.test") == Resolution("plain.test", (), ("127.0.1.1",), None)
    assert resolver.resolve("v6only.test").addresses == ("2001:db8::7",)
    assert resolver.resolve("192.0.2.1") == Resolution("192.0.2.1", (), ("192.0.2.1",), None)
    assert resolver.resolve("2001:DB8::1").addresses == ("2001:db8::1",)
    assert resolver.addresses("plain.test", 443, 10.0) == ["127.0.1.1"]
    # Records of another class than the Internet's are no addresses (nor a crash).
    assert resolver.resolve("odd-class.test").error == "no address"
    assert resolver.resolve("mixed-class.test").addresses == ("127.0.3.2",)
    assert resolver.resolve("odd-cname.test") == Resolution(
        "odd-cname.test", (), ("127.0.4.1",), None
    )


def test_a_long_answer_comes_over_tcp(zone: DnsServer) -> None:
    addresses = DnsResolver([zone.address]).resolve("many.test").addresses
    assert addresses == tuple(f"127.0.2.{n}" for n in range(1, 61))


@pytest.mark.parametrize(
    ("name", "cnames", "error"),
    [
        ("missing.test", (), "no such domain"),
        ("mail-only.test", ("nowhere.test",), "no such domain: nowhere.test"),
        ("empty.test", (), "no address"),
        ("loop-a.test", ("loop-b.test", "loop-a.test"), "CNAME loop at loop-a.test"),
        ("broken.test", (), "nameserver 127.0.0.1 answered SERVFAIL"),
        ("step0.test", tuple(f"step{n}.test" for n in range(1, MAX_CNAMES + 2)),
         f"CNAME chain longer than {MAX_CNAMES}"),
    ],
)  # fmt: skip
def test_what_cannot_be_resolved_says_why_in_a_sentence(
    zone: DnsServer, name: str, cnames: tuple[str, ...], error: str
) -> None:
    resolver = DnsResolver([zone.address])
    assert resolver.resolve(name) == Resolution(name, cnames, (), error)
    with pytest.raises(FetchRefused, match=f"^{name}: ") as refused:
        resolver.addresses(name, 80, 10.0)
    assert refused.value.reason == "unresolvable"
    assert isinstance(refused.value, Invalid)


def test_a_silent_nameserver_times_out_and_the_next_one_is_asked(zone: DnsServer) -> None:
    assert DnsResolver([zone.address], timeout=0.3).resolve("silent.test").error == "timed out"
    nobody = f"127.0.0.1:{free_udp_port()}"
    resolution = DnsResolver([nobody, zone.address], timeout=0.3).resolve("plain.test")
    assert resolution.addresses == ("127.0.1.1",)


def test_the_fetch_deadline_bounds_every_query_and_nameserver(zone: DnsServer) -> None:
    """Two silent nameservers, 5 s each per query: a fetch with 0.5 s left ends in 0.5 s."""
    resolver = DnsResolver([zone.address, zone.address], timeout=5.0)
    started = time.monotonic()
    with pytest.raises(FetchRefused) as refused:
        resolver.addresses("silent.test", 80, 0.5)
    assert refused.value.reason == "timed-out"
    fetcher = UrlFetcher((), any_host=True, resolve=resolver.addresses)
    with pytest.raises(FetchRefused) as refused:
        fetcher.fetch("http://silent.test/page", timeout=0.5)
    assert refused.value.reason == "timed-out"
    assert time.monotonic() - started < 3.0  # unbounded: 2 nameservers x 5 s, twice


def test_whether_a_nameserver_answers_is_asked_without_naming_anyone(zone: DnsServer) -> None:
    asked = len(zone.asked)
    assert DnsResolver([zone.address]).answers() is None
    assert zone.asked[asked:] == [("", "NS")]  # the root, not a name of anyone's
    nobody = f"127.0.0.1:{free_udp_port()}"
    assert DnsResolver([nobody], timeout=0.3).answers() == "timed out"
    assert DnsResolver([nobody, zone.address], timeout=0.3).answers() is None


def test_a_bad_name_is_an_error_not_an_exception(zone: DnsServer) -> None:
    resolution = DnsResolver([zone.address]).resolve("a" * 70 + ".test")
    assert resolution.error is not None and resolution.error.startswith("not a domain name")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("9.9.9.9", ("9.9.9.9", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("[::1]:53", ("::1", 53)), ("[2001:db8::1]", ("2001:db8::1", 53)), ("::1", ("::1", 53))],
)  # fmt: skip
def test_nameservers_are_addresses_with_optional_ports(
    given: str, expected: tuple[str, int]
) -> None:
    assert DnsResolver([given]).nameservers == [expected]


@pytest.mark.parametrize("bad", ["dns.example", "1.2.3.4:0", "1.2.3.4:x", "[::1]:99999", ""])
def test_a_bad_nameserver_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(Invalid, match=re.escape(f"nameserver {bad!r}: expected an IP address")):
        DnsResolver([bad])
