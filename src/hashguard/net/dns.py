"""DNS for the hotline's hosting trace: a name's CNAME chain and its A and AAAA answers, asked of
configured nameservers (or the system's, from /etc/resolv.conf) with dnspython.

The chain is followed here, a query per step when a nameserver does not chase it itself, at most
``MAX_CNAMES`` steps, and a loop is named. ``resolve`` never raises for anything the network or
a nameserver does: what went wrong is the Resolution's ``error``, a short sentence.
"""

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from hashguard.errors import Invalid
from hashguard.net.fetch import FetchRefused

MAX_CNAMES: Final = 10  # steps of a CNAME chain followed before giving up
_TIMED_OUT: Final = "timed out"


@dataclass(frozen=True, slots=True)
class Resolution:
    """What DNS said of a name: ``cnames`` the chain's targets in order, ``addresses`` the A
    then the AAAA answers for the end of the chain, ``error`` None or why there are none."""

    name: str
    cnames: tuple[str, ...]
    addresses: tuple[str, ...]
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "cnames": list(self.cnames),
                "addresses": list(self.addresses), "error": self.error}  # fmt: skip


class _Failed(Invalid):
    """A query that got no usable answer (inside ``resolve``: its message is the error)."""


class DnsResolver:
    """Resolves names through ``nameservers`` ("127.0.0.1:5353", "[::1]:53", "9.9.9.9"; none:
    the system's), each query within ``timeout`` seconds per nameserver.

    Raises Invalid for a nameserver that is not an IP address with an optional port.
    """

    def __init__(self, nameservers: Sequence[str] = (), timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.nameservers = [_nameserver(text) for text in nameservers]
        if not nameservers:
            try:
                system = dns.resolver.Resolver(configure=True)
            except dns.exception.DNSException:  # no /etc/resolv.conf, or one without servers
                system = None
            if system is not None:
                self.nameservers = [(str(server), 53) for server in system.nameservers]

    def resolve(self, name: str, timeout: float | None = None) -> Resolution:
        """The CNAME chain and addresses of ``name`` (an IP literal resolves to itself), all
        its queries within ``timeout`` seconds when given (else each within the resolver's)."""
        asked = name.strip().lower().rstrip(".")
        try:
            return Resolution(asked, (), (str(ipaddress.ip_address(asked)),), None)
        except ValueError:
            pass
        try:
            qname = dns.name.from_text(asked)
        except dns.exception.DNSException:
            return Resolution(asked, (), (), f"not a domain name: {name!r}")
        cnames: list[str] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            end, response = self._chain(qname, cnames, deadline)
            addresses = _addresses(response, end, dns.rdatatype.A)
            addresses += _addresses(self._ask(end, dns.rdatatype.AAAA, deadline), end,
                                    dns.rdatatype.AAAA)  # fmt: skip
        except _Failed as failed:
            return Resolution(asked, tuple(cnames), (), str(failed))
        if not addresses:
            return Resolution(asked, tuple(cnames), (), "no address")
        return Resolution(asked, tuple(cnames), tuple(dict.fromkeys(addresses)), None)

    def answers(self) -> str | None:
        """None when a nameserver answers a question (the root's nameservers: no name of
        anyone's is asked), else why none did (``config check``)."""
        try:
            self._ask(dns.name.root, dns.rdatatype.NS)
        except _Failed as failed:
            return str(failed)
        return None

    def addresses(self, host: str, port: int, timeout: float) -> list[str]:
        """The addresses of ``host`` within ``timeout`` seconds (a resolver for the fetcher:
        what is left of its deadline; ``port`` is not asked).

        Raises FetchRefused (reason "unresolvable", or "timed-out") when there are none.
        """
        deadline = time.monotonic() + timeout
        resolution = self.resolve(host, timeout)
        if resolution.error is not None and time.monotonic() >= deadline:
            raise FetchRefused(f"{host}: timed out resolving the name", reason="timed-out")
        if resolution.error is not None:
            raise FetchRefused(f"{host}: {resolution.error}", reason="unresolvable")
        return list(resolution.addresses)

    def _chain(
        self, qname: dns.name.Name, cnames: list[str], deadline: float | None
    ) -> tuple[dns.name.Name, dns.message.Message]:
        """The end of ``qname``'s CNAME chain (its targets appended to ``cnames`` on the way)
        and the response holding its A records, if any."""
        seen = {qname}
        current = qname
        while True:
            response = self._ask(current, dns.rdatatype.A, deadline)
            moved = False
            while (target := _cname(response, current)) is not None:
                cnames.append(_text(target))
                if target in seen:
                    raise _Failed(f"CNAME loop at {_text(target)}")
                if len(cnames) > MAX_CNAMES:
                    raise _Failed(f"CNAME chain longer than {MAX_CNAMES}")
                seen.add(target)
                current, moved = target, True
            if _rrset(response, current, dns.rdatatype.A) is not None or not moved:
                if response.rcode() == dns.rcode.NXDOMAIN:
                    raise _Failed("no such domain" if not cnames else
                                  f"no such domain: {_text(current)}")  # fmt: skip
                return current, response
            # the nameserver gave the chain's next name without its records: ask for them

    def _ask(
        self,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        deadline: float | None = None,
    ) -> dns.message.Message:
        """The first usable response to a recursive query, over UDP (TCP when truncated),
        each nameserver asked within the resolver's timeout and all before ``deadline``."""
        if not self.nameservers:
            raise _Failed("no nameserver configured")
        query = dns.message.make_query(name, rdtype)
        error = "no answer"
        for address, port in self.nameservers:
            timeout = self.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise _Failed(_TIMED_OUT)
            try:
                response, _ = dns.query.udp_with_fallback(query, address, timeout, port)
            except dns.exception.Timeout:
                error = _TIMED_OUT
                continue
            except OSError as failure:
                error = f"nameserver {address} unreachable: {failure.strerror or failure}"
                continue
            except dns.exception.DNSException:
                error = f"nameserver {address} answered a malformed message"
                continue
            rcode = response.rcode()
            if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return response
            error = f"nameserver {address} answered {dns.rcode.to_text(rcode)}"
        raise _Failed(error)


def _nameserver(text: str) -> tuple[str, int]:
    spec = text.strip()
    host, port = spec, "53"
    if spec.startswith("["):  # [IPv6]:port
        host, _, rest = spec[1:].partition("]")
        port = rest.removeprefix(":") if rest else "53"
    elif spec.count(":") == 1:  # IPv4:port (an IPv6 address has two colons at least)
        host, port = spec.split(":")
    try:
        address = str(ipaddress.ip_address(host))
        number = int(port)
        if not 0 < number < 65536 or not port.isdigit():
            raise ValueError(spec)
    except ValueError:
        raise Invalid(f"nameserver {text!r}: expected an IP address with an optional port, "
                      "like 9.9.9.9, 127.0.0.1:5353 or [::1]:53") from None  # fmt: skip
    return address, number


def _rrset(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> Any:
    for rrset in response.answer:  # records of the Internet class only (CH, HS: no address)
        if (rrset.name == name and rrset.rdtype == rdtype and rrset.rdclass == dns.rdataclass.IN
                and len(rrset)):  # fmt: skip
            return rrset
    return None


def _addresses(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> list[str]:
    found = _rrset(response, name, rdtype)
    return [] if found is None else [str(ipaddress.ip_address(r.address)) for r in found]


def _cname(response: dns.message.Message, name: dns.name.Name) -> dns.name.Name | None:
    found = _rrset(response, name, dns.rdatatype.CNAME)
    return None if found is None else found[0].target


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
