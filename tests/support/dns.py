"""A real DNS server on loopback for tests (dnslib's UDP and TCP servers on one free port),
answering a zone given as a dict: ``{"www.site-a.test": ["CNAME edge.cdn.test"],
"edge.cdn.test": ["A 127.0.0.2", "AAAA ::1"]}``. Unknown names get NXDOMAIN.

It answers as an authoritative server does: a CNAME chain inside the zone is followed in the
answer (``chase=False``: only the first CNAME, so the client asks again), a loop stops where it
closes; an answer over 512 bytes is truncated over UDP (the client asks over TCP). Two records
say how a name fails instead: ``SERVFAIL`` answers SERVFAIL, ``SILENT``
never answers (the client's timeout); ``A/1280 ADDRESS`` and ``CNAME/1280 NAME`` are records of
class 1280 (not the Internet's: a nameserver's oddity). Every question is kept in ``asked`` as
("name", "TYPE").

    with DnsServer(zone) as server:
        DnsResolver([server.address]).resolve("www.site-a.test")

or ``server = dns_server(zone)`` at module level: a pytest fixture of that name.
"""

import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

Zone = Mapping[str, Sequence[str]]


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone, chase: bool, asked: list[tuple[str, str]]) -> None:
        self.zone = {name.lower().rstrip("."): list(records) for name, records in zone.items()}
        self.chase = chase
        self.asked = asked
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.asked.append((qname, qtype))
        reply = request.reply()
        name, seen = qname, {qname}
        while True:
            records = self.zone.get(name)
            if records is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if "SILENT" in records:
                raise DNSError("silent")  # dnslib's handler sends nothing then
            if "SERVFAIL" in records:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            target = next((r.split()[1] for r in records if r.split()[0] == "CNAME"), None)
            if target is None or qtype == "CNAME":
                break
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(target), ttl=60))
            name = target.lower().rstrip(".")
            if name in seen or not self.chase:
                return reply
            seen.add(name)
        for record in records:
            kind, value = record.split()
            if kind == qtype == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A(value), ttl=60))
            elif kind == "A/1280" and qtype == "A":  # an A record of a class no one defines
                reply.add_answer(RR(name, QTYPE.A, rclass=1280, rdata=A(value), ttl=60))
            elif kind == "CNAME/1280" and qtype == "A":
                reply.add_answer(RR(name, QTYPE.CNAME, rclass=1280, rdata=CNAME(value), ttl=60))
            elif kind == qtype == "AAAA":
                reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(value), ttl=60))
            elif kind == qtype == "CNAME":
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(value), ttl=60))
        return reply


class _Handler(DNSHandler):  # type: ignore[misc]
    udplen = 512  # a longer answer over UDP is truncated: the client asks again over TCP


class DnsServer:
    """The zone served on 127.0.0.1, UDP and TCP on the same free port (``address``)."""

    def __init__(self, zone: Zone, chase: bool = True) -> None:
        self.asked: list[tuple[str, str]] = []
        resolver = _ZoneResolver(zone, chase, self.asked)
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        for _ in range(20):  # the TCP port may be taken where the UDP one was free
            udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet, handler=_Handler)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True,
                                logger=quiet, handler=_Handler)  # fmt: skip
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for both UDP and TCP on 127.0.0.1")
        self.servers = (udp, tcp)
        self.port = port
        self.address = f"127.0.0.1:{port}"

    def __enter__(self) -> "DnsServer":
        for server in self.servers:
            server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.server.shutdown()
            server.server.server_close()


def dns_server(zone: Zone, chase: bool = True) -> Callable[[], Iterator[DnsServer]]:
    """A module-scoped pytest fixture serving ``zone`` (assign it to the fixture's name)."""

    @pytest.fixture(scope="module")
    def serving() -> Iterator[DnsServer]:
        with DnsServer(zone, chase) as server:
            yield server

    return serving  # type: ignore[no-any-return]


def free_udp_port() -> int:
    """A loopback UDP port nothing answers on (for a nameserver that is not there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
