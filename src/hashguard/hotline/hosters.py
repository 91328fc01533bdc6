"""The operator's registry of hosters: who runs which networks and AS numbers, in which country,
where their abuse desk is, whether they are a CDN, and who their upstream network is (the abuse
desk a takedown escalates to). A TOML file of ``[[hoster]]`` tables
(docs/formats.md, examples/hosters.toml); an address's hoster is the one with the most specific
network holding it, else the one with its AS number."""

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Invalid
from hashguard.hotline import tomlfile
from hashguard.net.fetch import Network

FIELDS: Final = ("name", "country", "asns", "networks", "abuse_email", "abuse_api", "cdn",
                  "upstream")  # fmt: skip


class HosterError(Invalid):
    """A registry file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Hoster:
    """One entry of the operator's registry."""

    name: str
    country: str | None  # ISO 3166 alpha-2, upper case
    asns: tuple[int, ...]
    networks: tuple[Network, ...]
    abuse_email: str | None
    abuse_api: str | None
    cdn: bool
    upstream: str | None = None  # the name of the hoster that gives it transit (its network)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "country": self.country, "asns": list(self.asns),
                "networks": [str(n) for n in self.networks], "abuse_email": self.abuse_email,
                "abuse_api": self.abuse_api, "cdn": self.cdn,
                "upstream": self.upstream}  # fmt: skip


class HosterRegistry:
    """The hosters, looked up by address and AS number."""

    def __init__(self, hosters: Sequence[Hoster] = ()) -> None:
        self.hosters = tuple(hosters)
        self._by_asn: dict[int, Hoster] = {}
        for hoster in self.hosters:
            for asn in hoster.asns:
                self._by_asn.setdefault(asn, hoster)
        # most specific first: the first network holding an address is its hoster's
        self._networks = sorted(((network, hoster) for hoster in self.hosters
                                 for network in hoster.networks),
                                key=lambda pair: -pair[0].prefixlen)  # fmt: skip

    def __iter__(self) -> Iterator[Hoster]:
        return iter(self.hosters)

    def __len__(self) -> int:
        return len(self.hosters)

    def named(self, name: str) -> Hoster | None:
        return next((hoster for hoster in self.hosters if hoster.name == name), None)

    def lookup(self, address: str, asn: int | None = None) -> Hoster | None:
        """The hoster of ``address`` (most specific network first), else of ``asn``, or None."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for network, hoster in self._networks:
            if ip.version == network.version and ip in network:
                return hoster
        return self._by_asn.get(asn) if asn is not None else None

    def upstream_of(self, name: str) -> Hoster | None:
        """The upstream network of the hoster ``name`` as the registry names it, or None."""
        hoster = self.named(name)
        return self.named(hoster.upstream) if hoster is not None and hoster.upstream else None


def load(path: Path) -> HosterRegistry:
    """The registry in the TOML file ``path``.

    Raises HosterError naming the file and line of anything malformed or unknown.
    """
    file = tomlfile.read(path, HosterError)
    document = file.document
    for key in document:
        if key != "hoster":
            raise HosterError(f"{path}: unknown key {key!r} (the file holds [[hoster]] tables)")
    tables = document.get("hoster", [])
    if not isinstance(tables, list):
        raise HosterError(f"{path}: 'hoster' must be [[hoster]] tables")
    hosters: list[Hoster] = []
    seen: dict[str, str] = {}
    for index, table in enumerate(tables):
        hoster = _hoster(table, partial(file.where, "hoster", index))
        if hoster.name in seen:
            raise HosterError(f"{file.where('hoster', index, 'name')}: hoster {hoster.name!r} "
                              f"is named twice (also at {seen[hoster.name]})")  # fmt: skip
        seen[hoster.name] = file.where("hoster", index)
        hosters.append(hoster)
    for index, hoster in enumerate(hosters):
        if hoster.upstream is None:
            continue
        if hoster.upstream == hoster.name:
            raise HosterError(f"{file.where('hoster', index, 'upstream')}: hoster "
                              f"{hoster.name!r} names itself as its upstream")  # fmt: skip
        if hoster.upstream not in seen:
            near = difflib.get_close_matches(hoster.upstream, list(seen), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            where = file.where("hoster", index, "upstream")
            raise HosterError(f"{where}: upstream {hoster.upstream!r} is not a hoster of this "
                              f"file{hint}")  # fmt: skip
    return HosterRegistry(hosters)


def _hoster(table: Any, at: Callable[..., str]) -> Hoster:
    """The hoster ``table`` describes; ``at(key)`` says where a key is (``at()``: the table)."""
    where = at()
    if not isinstance(table, dict):
        raise HosterError(f"{where}: a hoster must be a table")

    for key in table:
        if key not in FIELDS:
            near = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise HosterError(f"{at(key)}: unknown key {key!r}{hint} "
                              f"(the keys: {', '.join(FIELDS)})")  # fmt: skip
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HosterError(f"{at('name')}: a hoster needs a name (a non-empty string)")
    country = table.get("country")
    if country is not None:
        if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country):
            raise HosterError(f"{at('country')}: expected a two-letter country code "
                              f"(ISO 3166), got {country!r}")  # fmt: skip
        country = country.upper()
    asns = table.get("asns", [])
    if not isinstance(asns, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 < n < 2**32 for n in asns
    ):
        raise HosterError(f"{at('asns')}: expected a list of AS numbers (1 to 4294967295), "
                          f"got {asns!r}")  # fmt: skip
    networks: list[Network] = []
    given = table.get("networks", [])
    if not isinstance(given, list):
        raise HosterError(f"{at('networks')}: expected a list of networks like "
                          f"\"192.0.2.0/24\", got {given!r}")  # fmt: skip
    for network in given:
        try:
            networks.append(ipaddress.ip_network(network))
        except (ValueError, TypeError) as error:
            raise HosterError(f"{at('networks')}: {network!r} is not a network like "
                              f"\"192.0.2.0/24\" ({error})") from None  # fmt: skip
    if not asns and not networks:
        raise HosterError(f"{where}: hoster {name!r} has neither asns nor networks: "
                          "nothing would be found as theirs")  # fmt: skip
    email = table.get("abuse_email")
    if email is not None and (not isinstance(email, str)
                              or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):  # fmt: skip
        raise HosterError(f"{at('abuse_email')}: expected an email address, got {email!r}")
    api = table.get("abuse_api")
    if api is not None and (not isinstance(api, str) or not re.match(r"https?://[^\s/]+", api)):
        raise HosterError(f"{at('abuse_api')}: expected an http(s) URL, got {api!r}")
    cdn = table.get("cdn", False)
    if not isinstance(cdn, bool):
        raise HosterError(f"{at('cdn')}: expected true or false, got {cdn!r}")
    upstream = table.get("upstream")
    if upstream is not None and (not isinstance(upstream, str) or not upstream.strip()):
        raise HosterError(f"{at('upstream')}: expected the name of another hoster in this file, "
                          f"got {upstream!r}")  # fmt: skip
    return Hoster(name.strip(), country, tuple(asns), tuple(networks), email, api, cdn,
                  upstream.strip() if upstream is not None else None)  # fmt: skip
