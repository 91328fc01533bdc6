"""The hosting trace of a reported URL, logged with its time: DNS (the CNAME chain, A and AAAA
answers), each address's network, AS and country from the offline IP databases (their dates
stated), whether a CDN is in front, the hoster from the operator's registry, and a sentence for
everything that could not be found. ``Tracer.trace`` never raises for anything the network or
the databases say."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from hashguard.hotline.hosters import Hoster, HosterRegistry
from hashguard.hotline.ipdb import IpDatabase, IpDatabaseError, IpRecord
from hashguard.net.dns import DnsResolver, Resolution

# CDN and reverse-proxy networks by origin AS: each operator's own AS numbers as registered in
# the RIRs' WHOIS and listed on PeeringDB (checked against Debian's libloc database of
# 2022-10-29 for 13335 CLOUDFLARENET and 15169 GOOGLE, 1.1.1.0/24 and 8.8.8.0/24 anycast there).
DEFAULT_CDN_ASNS: Final = frozenset({
    13335,  # Cloudflare
    20940, 16625,  # Akamai International, Akamai Technologies
    54113,  # Fastly
    16509,  # Amazon: CloudFront shares it with EC2 (a registry entry can say more)
    15169, 396982,  # Google, Google Cloud
    8075,  # Microsoft (Azure Front Door, Azure CDN)
    20446, 33438,  # StackPath / Highwinds
    200325,  # Bunny (bunny.net)
    60068,  # CDN77 (DataCamp)
    22822,  # Limelight (Edgio)
    19551,  # Imperva Incapsula
    30148,  # Sucuri
})  # fmt: skip

# Names a CNAME chain ends in when a CDN serves the site (the providers' documented edge names).
DEFAULT_CDN_DOMAINS: Final = (
    "cdn.cloudflare.net", "cloudfront.net", "akamaiedge.net", "akamai.net", "edgekey.net",
    "edgesuite.net", "fastly.net", "fastlylb.net", "azureedge.net", "azurefd.net",
    "b-cdn.net", "cdn77.org", "stackpathdns.com", "edgecastcdn.net", "incapdns.net",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TracedAddress:
    """One address of the host: what the databases and the registry say of it."""

    address: str
    network: str | None
    asn: int | None
    as_name: str | None
    country: str | None
    anycast: bool
    cdn: bool
    hoster: str | None  # a name from the registry

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "network": self.network, "asn": self.asn,
                "as_name": self.as_name, "country": self.country, "anycast": self.anycast,
                "cdn": self.cdn, "hoster": self.hoster}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Trace:
    """Where a URL is hosted, as far as could be found, and when that was looked up."""

    url: str
    host: str
    at: datetime
    dns: Resolution
    addresses: tuple[TracedAddress, ...]
    hoster: Hoster | None  # the hoster of the first address the registry knows
    country: str | None  # the hoster's country, else the first address's
    cdn: bool  # behind a CDN: by AS number, anycast flag, registry or CNAME
    databases: tuple[str, ...]  # each IP database with the date of its data
    unresolved: tuple[str, ...]  # what could not be found, each a sentence

    def as_json(self) -> dict[str, Any]:
        """Every field, JSON-ready; the keys are always present (null when unknown)."""
        return {
            "url": self.url,
            "host": self.host,
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "dns": self.dns.as_json(),
            "addresses": [info.as_json() for info in self.addresses],
            "hoster": None if self.hoster is None else self.hoster.as_json(),
            "country": self.country,
            "cdn": self.cdn,
            "databases": list(self.databases),
            "unresolved": list(self.unresolved),
        }


def _now() -> datetime:
    return datetime.now(UTC)


class Tracer:
    """Traces URLs through ``resolver``, the IP ``databases`` (asked in order: per field the
    first that knows wins) and the registry of ``hosters``."""

    def __init__(
        self,
        resolver: DnsResolver,
        databases: Sequence[IpDatabase],
        hosters: HosterRegistry,
        cdn_asns: Iterable[int] = DEFAULT_CDN_ASNS,
        clock: Callable[[], datetime] = _now,
        cdn_domains: Iterable[str] = DEFAULT_CDN_DOMAINS,
    ) -> None:
        self.resolver = resolver
        self.databases = tuple(databases)
        self.hosters = hosters
        self.cdn_asns = frozenset(cdn_asns)
        self.cdn_domains = tuple(d.lower().strip(".") for d in cdn_domains)
        self.clock = clock

    def trace(self, url: str) -> Trace:
        """The trace of ``url``'s host (at the time the clock gives when it starts)."""
        at = self.clock()
        unresolved: list[str] = []
        try:
            host = (urlsplit(url.strip()).hostname or "").rstrip(".")
        except ValueError:
            host = ""
        if not host:
            resolution = Resolution("", (), (), "no host in the URL")
        else:
            resolution = self.resolver.resolve(host)
        if resolution.error is not None:
            unresolved.append(f"no address: {resolution.error}")
        if not self.databases:
            unresolved.append("no IP database configured")
        addresses = tuple(self._address(a, unresolved) for a in resolution.addresses)
        hoster = next((self.hosters.named(a.hoster) for a in addresses if a.hoster), None)
        country = hoster.country if hoster is not None and hoster.country else None
        country = country or next((a.country for a in addresses if a.country), None)
        if addresses and country is None:
            unresolved.append("no country for any address")
        cname_cdn = any(_under(name, self.cdn_domains) for name in resolution.cnames)
        return Trace(
            url=url,
            host=resolution.name or host,
            at=at,
            dns=resolution,
            addresses=addresses,
            hoster=hoster,
            country=country,
            cdn=cname_cdn or any(a.cdn for a in addresses),
            databases=tuple(f"{database.name} {database.date}" for database in self.databases),
            unresolved=tuple(dict.fromkeys(unresolved)),
        )

    def _address(self, address: str, unresolved: list[str]) -> TracedAddress:
        records: list[IpRecord] = []
        for database in self.databases:
            try:
                record = database.lookup(address)
            except IpDatabaseError as error:  # a file found corrupt at this address
                unresolved.append(f"{database.name}: {error}")
                continue
            if record is not None:
                records.append(record)
        if self.databases and not records:
            unresolved.append(f"no IP database knows {address}")
        network = next((r.network for r in records if r.network), None)
        asn = next((r.asn for r in records if r.asn is not None), None)
        as_name = next((r.as_name for r in records if r.asn == asn and r.as_name), None)
        country = next((r.country for r in records if r.country), None)
        anycast = any(r.anycast for r in records)
        if records and asn is None:
            unresolved.append(f"no AS number for {address}")
        hoster = self.hosters.lookup(address, asn)
        if hoster is None:
            unresolved.append(f"no hoster in the registry for AS{asn}" if asn is not None
                              else f"no hoster in the registry for {address}")  # fmt: skip
        cdn = anycast or asn in self.cdn_asns or (hoster is not None and hoster.cdn)
        name = None if hoster is None else hoster.name
        return TracedAddress(address, network, asn, as_name, country, anycast, cdn, name)


def _under(name: str, domains: Sequence[str]) -> bool:
    return any(name == domain or name.endswith("." + domain) for domain in domains)
