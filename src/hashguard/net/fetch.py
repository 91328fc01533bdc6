"""Fetching media by URL, for callers that send a link instead of the bytes (HMA's ``url=``).

Off unless hosts are allowed. When on: http and https only; the host must be allowed (a name,
or ``*.example.org`` for its subdomains); every address the name resolves to must be public
(no private, loopback, link-local, multicast or reserved address, unless the operator names its
network); the connection goes to the address that was checked, so a second DNS answer cannot
redirect it (rebinding); redirects are followed only to the same host, and checked again; the
body is read into memory up to the upload limit, never to disk.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

from hashguard.errors import Invalid

_REDIRECTS: Final = {301, 302, 303, 307, 308}
_MAX_REDIRECTS: Final = 3

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]


class FetchRefused(Invalid):
    """The URL may not or could not be fetched; the message says why, and ``status`` is the
    server's answer when it answered with something else than the body."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str  # as the server declared it, lower case, without parameters


# IPv6 prefixes that carry an IPv4 address a gateway may reach: NAT64 (RFC 6052, 8215), 6to4,
# Teredo, and the deprecated IPv4-compatible form. Refused unless the operator names them.
_EMBEDDING: Final = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
                                      "::/96")
)  # fmt: skip


def _resolve(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise FetchRefused(
            f"cannot resolve {host}: {getattr(error, 'strerror', None) or error}"
        ) from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class UrlFetcher:
    def __init__(
        self,
        hosts: Sequence[str],
        networks: Sequence[Network] = (),
        timeout: float = 10.0,
        max_bytes: int = 64 * 1024 * 1024,
        resolve: Resolver = _resolve,
    ) -> None:
        self.hosts = tuple(h.lower().rstrip(".") for h in hosts)
        self.networks = tuple(networks)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.resolve = resolve

    def fetch(self, url: str) -> Fetched:
        """The body at ``url``. Raises FetchRefused naming the rule that refused it."""
        if not self.hosts:
            raise FetchRefused(
                "this service does not fetch URLs (off by default; the operator can allow hosts "
                "with 'hashguard serve --fetch-host'): send the media itself"
            )
        deadline = time.monotonic() + self.timeout
        first_host: str | None = None
        for _ in range(_MAX_REDIRECTS + 1):
            if first_host is not None:
                host = (urlsplit(url).hostname or "").lower().rstrip(".")
                if host != first_host:
                    raise FetchRefused(
                        f"{url}: a redirect to another host ({host}) is not followed"
                    )
            scheme, host, port, target = self._check(url)
            first_host = host
            address = self._public_address(host, port)
            status, location, content_type, body = self._get(
                scheme, host, port, address, target, deadline
            )
            if status in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                raise FetchRefused(f"{url}: the server answered {status}", status)
            return Fetched(body, content_type)
        raise FetchRefused(f"{url}: more than {_MAX_REDIRECTS} redirects")

    def _check(self, url: str) -> tuple[str, str, int, str]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise FetchRefused(f"not a URL: {error}") from None
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"{url}: only http and https URLs are fetched")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise FetchRefused(f"{url}: the URL has no host")
        if parts.username or parts.password:
            raise FetchRefused(f"{url}: URLs with credentials are not fetched")
        if not self._allowed(host):
            raise FetchRefused(f"{url}: host {host} is not on this service's fetch allow-list")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target

    def _allowed(self, host: str) -> bool:
        for allowed in self.hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]):
                    return True
            elif host == allowed:
                return True
        return False

    def _public_address(self, host: str, port: int) -> str:
        addresses = self.resolve(host, port)
        if not addresses:
            raise FetchRefused(f"{host} resolves to no address")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if any(address in network for network in self.networks):
                continue
            embeds = isinstance(address, ipaddress.IPv6Address) and any(
                address in prefix for prefix in _EMBEDDING
            )
            if embeds or not address.is_global or address.is_multicast:
                raise FetchRefused(
                    f"{host} resolves to {address}, a private, loopback, link-local or reserved "
                    "address: not fetched"
                )
        return addresses[0]

    def _get(
        self, scheme: str, host: str, port: int, address: str, target: str, deadline: float
    ) -> tuple[int, str, str, bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchRefused(f"{host}: timed out")
        try:
            sock = socket.create_connection((address, port), timeout=remaining)
            if scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPConnection(host, port, timeout=remaining)
            connection.sock = sock  # connected to the checked address
            try:
                headers = {"User-Agent": "hashguard", "Accept-Encoding": "identity"}
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                declared = response.getheader("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchRefused(f"{host}: the media is larger than {self.max_bytes} bytes")
                body = self._body(response, host, deadline)
                content_type = (response.getheader("Content-Type") or "").split(";")[0]
                location = response.getheader("Location") or ""
                return response.status, location, content_type.strip().lower(), body
            finally:
                connection.close()
        except FetchRefused:
            raise
        except (OSError, http.client.HTTPException, UnicodeError) as error:
            raise FetchRefused(f"{host}: {error}") from None

    def _body(self, response: http.client.HTTPResponse, host: str, deadline: float) -> bytes:
        """The body, within the size limit and the deadline (a slow server is cut off, not
        waited for chunk by chunk)."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchRefused(f"{host}: the media is larger than {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchRefused(f"{host}: timed out")
            chunks.append(chunk)
        return b"".join(chunks)
