"""The hosting trace end to end on loopback: a real DNS server answering a test zone (a site
behind a CNAME into a "CDN", a plain site, names without hoster or database entry, a missing
name, a CNAME loop), an ip2asn file and a libloc database written by the test mapping loopback
ranges to made-up networks, AS numbers and countries, and a registry of hosters. Each trace
names hoster, AS, country, CDN and the databases' dates, and says what it could not find."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hashguard.hotline.hosters import HosterRegistry, load
from hashguard.hotline.ipdb import Ip2AsnDatabase, IpDatabase, LiblocDatabase
from hashguard.hotline.trace import TracedAddress, Tracer
from hashguard.net.dns import DnsResolver

from support.dns import DnsServer, dns_server

ZONE = {
    "www.site-a.test": ["CNAME site-a.edge.cdn.test"],
    "site-a.edge.cdn.test": ["A 127.0.2.10"],
    "plain.test": ["A 127.0.1.5", "AAAA 2001:db8:1::5"],
    "elsewhere.test": ["A 127.0.3.3"],
    "unknown.test": ["A 127.0.9.9"],
    "loop.test": ["CNAME loop2.test"],
    "loop2.test": ["CNAME loop.test"],
}
IP2ASN = """\
# date: 2026-11-30
127.0.1.0\t127.0.1.255\t64500\tNL\tEXAMPLE-HOSTING
127.0.2.0\t127.0.2.255\t64510\tUS\tEDGE-CDN
127.0.3.0\t127.0.3.255\t4200000001\tFR\tFAR-AWAY
2001:db8:1::\t2001:db8:1:ffff:ffff:ffff:ffff:ffff\t64500\tNL\tEXAMPLE-HOSTING
"""
REGISTRY = """\
[[hoster]]
name = "Example Hosting B.V."
country = "NL"
asns = [64500]
abuse_email = "abuse@hosting.example"

[[hoster]]
name = "Edge CDN"
networks = ["127.0.2.0/24"]
abuse_api = "https://edge.example/abuse"
cdn = true
"""
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)

zone = dns_server(ZONE)


@pytest.fixture
def tracer(zone: DnsServer, tmp_path: Path) -> Tracer:
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN)
    (tmp_path / "hosters.toml").write_text(REGISTRY)
    return Tracer(
        DnsResolver([zone.address]),
        [Ip2AsnDatabase([tmp_path / "ip2asn.tsv"])],
        load(tmp_path / "hosters.toml"),
        cdn_asns=(),  # the CDN is found by the registry here, by AS in the next test
        clock=lambda: AT,
    )


def test_a_site_behind_a_cdn_names_the_cdn_its_as_and_the_database(tracer: Tracer) -> None:
    trace = tracer.trace("https://www.site-a.test/gallery?id=7")
    assert trace.host == "www.site-a.test"
    assert trace.dns.cnames == ("site-a.edge.cdn.test",)
    assert trace.addresses == (
        TracedAddress(
            "127.0.2.10", "127.0.2.0/24", 64510, "EDGE-CDN", "US", False, True, "Edge CDN"
        ),
    )
    assert trace.hoster is not None and trace.hoster.name == "Edge CDN"
    assert trace.hoster.abuse_api == "https://edge.example/abuse"
    assert (trace.country, trace.cdn) == ("US", True)  # the CDN has no country: the address's
    assert trace.databases == ("ip2asn 2026-11-30",)
    assert trace.unresolved == ()
    assert trace.as_json() == {
        "url": "https://www.site-a.test/gallery?id=7",
        "host": "www.site-a.test",
        "at": "2026-12-01T09:30:00Z",
        "dns": {"name": "www.site-a.test", "cnames": ["site-a.edge.cdn.test"],
                "addresses": ["127.0.2.10"], "error": None},
        "addresses": [{"address": "127.0.2.10", "network": "127.0.2.0/24", "asn": 64510,
                       "as_name": "EDGE-CDN", "country": "US", "anycast": False, "cdn": True,
                       "hoster": "Edge CDN"}],
        "hoster": {"name": "Edge CDN", "country": None, "asns": [],
                   "networks": ["127.0.2.0/24"], "abuse_email": None,
                   "abuse_api": "https://edge.example/abuse", "cdn": True, "upstream": None},
        "country": "US",
        "cdn": True,
        "databases": ["ip2asn 2026-11-30"],
        "unresolved": [],
    }  # fmt: skip


def test_a_cdn_is_found_by_its_as_number_or_its_cname(zone: DnsServer, tmp_path: Path) -> None:
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN)
    databases = [Ip2AsnDatabase([tmp_path / "ip2asn.tsv"])]
    resolver = DnsResolver([zone.address])
    by_as = Tracer(resolver, databases, HosterRegistry(), cdn_asns=[64510], cdn_domains=[])
    assert by_as.trace("http://www.site-a.test/").cdn
    by_name = Tracer(resolver, databases, HosterRegistry(), cdn_asns=[], cdn_domains=["cdn.test"])
    assert by_name.trace("http://www.site-a.test/").cdn
    neither = Tracer(resolver, databases, HosterRegistry(), cdn_asns=[], cdn_domains=[])
    trace = neither.trace("http://www.site-a.test/")
    assert not trace.cdn
    assert trace.unresolved == ("no hoster in the registry for AS64510",)


def test_a_plain_site_names_its_hoster_and_the_hosters_country(tracer: Tracer) -> None:
    trace = tracer.trace("http://PLAIN.test:8080/a.jpg")
    assert trace.dns.addresses == ("127.0.1.5", "2001:db8:1::5")
    assert [(a.asn, a.hoster, a.cdn) for a in trace.addresses] == [
        (64500, "Example Hosting B.V.", False),
        (64500, "Example Hosting B.V.", False),
    ]
    assert trace.hoster is not None and trace.hoster.abuse_email == "abuse@hosting.example"
    assert (trace.country, trace.cdn, trace.unresolved) == ("NL", False, ())


@pytest.mark.parametrize(
    ("url", "unresolved"),
    [
        ("http://elsewhere.test/", ("no hoster in the registry for AS4200000001",)),
        ("http://unknown.test/", ("no IP database knows 127.0.9.9",
                                  "no hoster in the registry for 127.0.9.9",
                                  "no country for any address")),
        ("http://missing.test/", ("no address: no such domain",)),
        ("http://loop.test/", ("no address: CNAME loop at loop.test",)),
        ("not a url", ("no address: no host in the URL",)),
    ],
)  # fmt: skip
def test_what_cannot_be_found_is_said(
    tracer: Tracer, url: str, unresolved: tuple[str, ...]
) -> None:
    trace = tracer.trace(url)
    assert trace.unresolved == unresolved
    assert trace.databases == ("ip2asn 2026-11-30",)
    assert trace.at == AT


def test_the_country_of_an_address_without_a_hoster(tracer: Tracer) -> None:
    trace = tracer.trace("https://elsewhere.test/x")
    assert (trace.hoster, trace.country) == (None, "FR")
    assert trace.addresses[0].as_name == "FAR-AWAY"


def test_both_databases_each_field_from_the_first_that_knows(
    zone: DnsServer, tmp_path: Path
) -> None:
    written = subprocess.run(
        ["/usr/bin/python3", "-c", LIBLOC_WRITER, str(tmp_path / "location.db")],
        capture_output=True,
        text=True,
    )
    if written.returncode != 0 and "No module named 'location'" in written.stderr:
        pytest.skip("Debian's python3-location is not installed "
                    "(scripts/ensure-system-packages python3 --test installs it)")  # fmt: skip
    assert written.returncode == 0, written.stderr
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN)
    libloc = LiblocDatabase(tmp_path / "location.db")
    databases: list[IpDatabase] = [libloc, Ip2AsnDatabase([tmp_path / "ip2asn.tsv"])]
    tracer = Tracer(DnsResolver([zone.address]), databases, HosterRegistry(), cdn_asns=())
    trace = tracer.trace("https://www.site-a.test/")
    (info,) = trace.addresses  # libloc first: its network, AS, country and anycast flag
    assert (info.network, info.asn, info.country, info.anycast, info.cdn) == (
        "127.0.2.0/25",
        64520,
        "CA",
        True,
        True,
    )
    assert info.as_name is None  # ip2asn's name belongs to another AS (64510)
    elsewhere = tracer.trace("http://elsewhere.test/").addresses[0]
    assert (elsewhere.asn, elsewhere.as_name, elsewhere.country) == (
        4200000001,
        "FAR-AWAY",
        "FR",
    )  # libloc does not know it: ip2asn answers
    assert trace.databases == (f"libloc {libloc.date}", "ip2asn 2026-11-30")
    assert trace.cdn


LIBLOC_WRITER = """
import sys, location
writer = location.Writer()
writer.vendor = "hashguard tests"
network = writer.add_network("127.0.2.0/25")
network.asn, network.country_code = 64520, "CA"
network.set_flag(location.NETWORK_FLAG_ANYCAST)
writer.write(sys.argv[1])
"""
