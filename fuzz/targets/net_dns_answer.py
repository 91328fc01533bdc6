"""A nameserver's answer as the hotline's tracer reads it (``net.dns.DnsResolver.resolve``: the
CNAME chain, loops and its length, then A and AAAA records). The input is the answer in DNS's
wire format, given to dnspython's parser in place of the network (its query id set to the
query's), for every question the resolver asks."""

from pathlib import Path

import dns.message
import dns.query

from hashguard.net.dns import DnsResolver

RESOLVER = DnsResolver(["127.0.0.1:53"], timeout=1.0)


def one(data: bytes, scratch: Path) -> None:
    def answer(query: dns.message.Message, *_: object, **__: object) -> tuple[object, bool]:
        wire = query.id.to_bytes(2, "big") + data[2:] if len(data) >= 2 else data
        return dns.message.from_wire(wire), False

    real = dns.query.udp_with_fallback
    dns.query.udp_with_fallback = answer  # type: ignore[assignment]
    try:
        RESOLVER.resolve("media.site.example")
    finally:
        dns.query.udp_with_fallback = real
