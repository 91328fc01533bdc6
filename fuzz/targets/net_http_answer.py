"""An HTTP answer as the SSRF-safe fetcher reads it (``net.fetch.UrlFetcher``: what the hotline's
crawler, the takedown checks, the exchanges and the ``url=`` routes all fetch through): the
input is the raw answer (status line, headers, body) on a connected socket in place of the
network, so http.client's parsing and the fetcher's own checks of the status, the declared
length, the body's limit, the content type and redirects (each answered with the same bytes
again) all run."""

import ipaddress
import socket
from pathlib import Path
from typing import Any

from hashguard.net import fetch

# The host resolves to a documentation address, in a network the fetcher is told it may reach.
FETCHER = fetch.UrlFetcher(["media.site.example"], [ipaddress.ip_network("192.0.2.0/24")],
                           max_bytes=64 * 1024, timeout=5.0,
                           resolve=lambda host, port, timeout: ["192.0.2.10"])  # fmt: skip


def one(data: bytes, scratch: Path) -> None:
    def connect(address: Any, timeout: float | None = None, *_: Any, **__: Any) -> socket.socket:
        ours, theirs = socket.socketpair()
        theirs.sendall(data)  # the server's answer, whole, then its end of the connection
        theirs.shutdown(socket.SHUT_WR)
        ours.settimeout(timeout)
        connect.peers.append(theirs)  # type: ignore[attr-defined]
        return ours

    connect.peers = []  # type: ignore[attr-defined]
    real = fetch.socket.create_connection
    fetch.socket.create_connection = connect  # type: ignore[assignment]
    try:
        FETCHER.fetch("http://media.site.example/pictures/a.jpg")
    finally:
        fetch.socket.create_connection = real
        for peer in connect.peers:  # type: ignore[attr-defined]
            peer.close()
