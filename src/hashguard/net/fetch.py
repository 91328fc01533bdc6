"""Fetching a URL safely (SSRF): for callers that send a link instead of the bytes (HMA's
``url=``), the desk's content proxy, and the hotline's crawler.

Off unless hosts are allowed (or ``any_host``). When on: http and https only, no credentials in
the URL; the host must be allowed (a name, or ``*.example.org`` for its subdomains; any host with
``any_host``); every address the name resolves to must be public (no private, loopback,
link-local, multicast or reserved address, unless the operator names its network); the
connection goes to the address that was checked, so a second DNS answer cannot redirect it
(rebinding); redirects are followed only to the same host (to any host with
``cross_host_redirects``), each checked again as the first; the whole fetch ends at its deadline
however slowly the server sends (name resolution included: the resolver is given what is
left); the body is read into memory up to a size limit, never to disk.
Every refusal names its outcome (``FetchRefused.reason``, one of ``OUTCOMES``).

``request`` is the general form for clients of an API (the exchanges): any method, headers and
a body, every status returned; the same checks, and redirects followed for GET only, on the
same host only.
"""

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urljoin, urlsplit

from hashguard.errors import Invalid

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port, seconds left of the fetch's deadline) -> addresses; raises FetchRefused
Resolver = Callable[[str, int, float], Sequence[str]]

# Why a fetch ended without the body: what the hotline records for each fetch.
OUTCOMES: Final = (
    "bad-url",  # not an http(s) URL with a host
    "not-allowed",  # fetching off, a host not allowed, credentials, a redirect to another host
    "unresolvable",  # the host has no address
    "private-address",  # an address that is not public (and not in a named network)
    "connection-failed",  # refused, reset, TLS failed, not HTTP
    "timed-out",  # the deadline passed (however slowly the server was sending)
    "too-large",  # over the size limit, declared or while reading
    "too-many-redirects",
    "http-error",  # an answer other than 200 (``status``)
)

_REDIRECTS: Final = {301, 302, 303, 307, 308}
# Characters a request target keeps as they are; anything else (spaces, non-ASCII) is
# percent-encoded as a browser would, and existing escapes stay.
_TARGET_SAFE: Final = "!#$%&'()*+,/:;=?@[]~"
_NOT_IN_NAMES: Final = '()<>@,;:\\"/[]?={} \t'


class FetchRefused(Invalid):
    """The URL may not or could not be fetched; the message says why, ``reason`` names the
    outcome (one of ``OUTCOMES``), ``status`` is the server's answer when it answered with
    something else than the body, and ``url`` the last URL that answered ("" when none did)."""

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        if reason not in OUTCOMES:
            raise ValueError(f"not a fetch outcome: {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.url = ""


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    content_type: str  # as the server declared it, lower case, without parameters
    url: str  # the final URL, after redirects
    status: int  # 200
    charset: str = ""  # the Content-Type's charset parameter, lower case ("" when none)


@dataclass(frozen=True, slots=True)
class Response:
    """What a server answered a ``request`` (any status)."""

    status: int
    body: bytes
    content_type: str  # as the server declared it, lower case, without parameters
    url: str  # the final URL, after redirects
    headers: Mapping[str, str]  # lower-case names (a repeated header: its values joined by ", ")
    charset: str = ""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    location: str
    content_type: str
    charset: str
    body: bytes
    headers: Mapping[str, str]


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that are not public though ``is_global`` may say so, or that carry an IPv4
# address a gateway may reach: NAT64 (RFC 6052, 8215), 6to4, Teredo, the deprecated
# IPv4-compatible form, SIIT's IPv4-translated form (RFC 6145) and the deprecated site-local
# networks (RFC 3879). Refused unless the operator names them.
_NOT_PUBLIC: Final = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
                                      "::/96", "::ffff:0:0:0/96", "fec0::/10")
)  # fmt: skip


def unmapped(address: Address) -> Address:
    """``address``, or the IPv4 address it is when it is IPv4-mapped (``::ffff:1.2.3.4``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: Address, networks: Sequence[Network] = ()) -> bool:
    """Whether ``address`` may be reached: in one of ``networks`` (which the operator names),
    or public (not private, loopback, link-local, multicast, reserved, nor an IPv6 form that
    embeds an IPv4 address). The one check of the fetcher and of the hotline's reported URLs."""
    address = unmapped(address)
    if any(address in network for network in networks):
        return True
    if isinstance(address, ipaddress.IPv6Address) and any(address in n for n in _NOT_PUBLIC):
        return False
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """The system's resolver (it has its own timeouts: the fetch checks its deadline after)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise FetchRefused(
            f"cannot resolve {host}: {getattr(error, 'strerror', None) or error}",
            reason="unresolvable",
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
        any_host: bool = False,
        cross_host_redirects: bool = False,
        max_redirects: int = 3,
    ) -> None:
        self.hosts = tuple(h.lower().rstrip(".") for h in hosts)
        self.networks = tuple(networks)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.resolve = resolve
        self.any_host = any_host
        self.cross_host_redirects = cross_host_redirects
        self.max_redirects = max_redirects

    def fetch(
        self, url: str, *, max_bytes: int | None = None, timeout: float | None = None
    ) -> Fetched:
        """The answer at ``url`` (after redirects), within ``max_bytes`` and ``timeout``
        seconds for the whole fetch (the fetcher's own when not given). Raises FetchRefused
        naming the rule or failure that ended it."""
        if not self.hosts and not self.any_host:
            raise FetchRefused(
                "this service does not fetch URLs (off by default; the operator can allow hosts "
                "with 'hashguard serve --fetch-host'): send the media itself",
                reason="not-allowed",
            )
        limit = self.max_bytes if max_bytes is None else max_bytes
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        url, answer = self._follow(
            "GET", url, {}, None, deadline, limit, follow=True, cross_host=self.cross_host_redirects
        )
        if answer.status != 200:
            refused = FetchRefused(
                f"{url}: the server answered {answer.status}",
                reason="http-error",
                status=answer.status,
            )
            refused.url = url
            raise refused
        return Fetched(answer.body, answer.content_type, url, answer.status, answer.charset)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Response:
        """The server's answer to ``method`` on ``url`` with ``headers`` and ``body``, whatever
        its status, within ``max_bytes`` and ``timeout`` seconds for the whole exchange. Checked
        as ``fetch`` is. A redirect is answered as it came (its ``location`` header), never
        followed here: only the caller knows where its headers (credentials) may go. Raises
        FetchRefused naming the rule or failure that ended it (never "http-error")."""
        if not self.hosts and not self.any_host:
            raise FetchRefused("this fetcher has no allowed host", reason="not-allowed")
        for name, value in (headers or {}).items():
            _check_header(name, value)
        limit = self.max_bytes if max_bytes is None else max_bytes
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        method = method.upper()
        url, answer = self._follow(
            method, url, dict(headers or {}), body, deadline, limit, follow=False, cross_host=False
        )
        return Response(answer.status, answer.body, answer.content_type, url, answer.headers,
                        answer.charset)  # fmt: skip

    def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: float,
        limit: int,
        *,
        follow: bool,
        cross_host: bool,
    ) -> tuple[str, _Answer]:
        """The final URL and its answer, redirects followed when ``follow`` (each checked)."""
        answered = ""
        try:
            first_host: str | None = None
            for _ in range(self.max_redirects + 1):
                if first_host is not None and not cross_host:
                    host = (urlsplit(url).hostname or "").lower().rstrip(".")
                    if host != first_host:
                        raise FetchRefused(
                            f"{url}: a redirect to another host ({host}) is not followed",
                            reason="not-allowed",
                        )
                scheme, host, port, target = self._check(url)
                first_host = first_host or host
                address = self._public_address(host, port, deadline)
                answer = self._exchange(
                    scheme, host, port, address, method, target, headers, body, deadline, limit
                )
                answered = url
                if follow and answer.status in _REDIRECTS and answer.location:
                    url = _redirected(url, answer.location)
                    continue
                return url, answer
            raise FetchRefused(
                f"{url}: more than {self.max_redirects} redirects", reason="too-many-redirects"
            )
        except FetchRefused as refused:
            refused.url = answered
            raise

    def _check(self, url: str) -> tuple[str, str, int, str]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise FetchRefused(f"not a URL: {error}", reason="bad-url") from None
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"{url}: only http and https URLs are fetched", reason="bad-url")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise FetchRefused(f"{url}: the URL has no host", reason="bad-url")
        if parts.username or parts.password:
            raise FetchRefused(
                f"{url}: URLs with credentials are not fetched", reason="not-allowed"
            )
        if not self._allowed(host):
            raise FetchRefused(
                f"{url}: host {host} is not on this service's fetch allow-list",
                reason="not-allowed",
            )
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        target = escaped(target)
        return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target

    def _allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        for allowed in self.hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]):
                    return True
            elif host == allowed:
                return True
        return False

    def _public_address(self, host: str, port: int, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchRefused(f"{host}: timed out", reason="timed-out")
        addresses = self.resolve(host, port, remaining)  # within what is left of the deadline
        if time.monotonic() > deadline:
            raise FetchRefused(f"{host}: timed out resolving the name", reason="timed-out")
        if not addresses:
            raise FetchRefused(f"{host} resolves to no address", reason="unresolvable")
        for text in addresses:
            address = unmapped(ipaddress.ip_address(text.split("%")[0]))
            if not is_public(address, self.networks):
                raise FetchRefused(
                    f"{host} resolves to {address}, a private, loopback, link-local or reserved "
                    "address: not fetched",
                    reason="private-address",
                )
        return addresses[0]

    def _exchange(
        self,
        scheme: str,
        host: str,
        port: int,
        address: str,
        method: str,
        target: str,
        extra: Mapping[str, str],
        body: bytes | None,
        deadline: float,
        limit: int,
    ) -> _Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchRefused(f"{host}: timed out", reason="timed-out")
        try:
            sock = socket.create_connection((address, port), timeout=remaining)
        except TimeoutError:
            raise FetchRefused(f"{host}: timed out", reason="timed-out") from None
        except OSError as error:
            raise FetchRefused(
                f"{host}: cannot connect: {error.strerror or error}", reason="connection-failed"
            ) from None
        # A server sending a byte at a time never trips a socket timeout: at the deadline the
        # connection is shut down under whatever read is waiting (through a duplicate, which
        # stays valid whatever TLS does with the original).
        watchdog = Cutoff(deadline)
        watchdog.watch(sock)
        try:
            if scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            connection = http.client.HTTPConnection(host, port, timeout=remaining)
            connection.sock = sock  # connected to the checked address
            try:
                headers = {"User-Agent": "hashguard", **extra, "Accept-Encoding": "identity"}
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                declared = response.getheader("Content-Length") or ""
                # Decimal digits only ("²" is a digit to isdigit), and as many as a size over the
                # limit can have (thousands of digits are more than int() takes); a length that
                # is not one is left to the read, bounded as a body of no declared length.
                digits = declared.strip()
                if (digits.isascii() and digits.isdigit()
                        and (len(digits.lstrip("0")) > 20 or int(digits) > limit)):  # fmt: skip
                    raise FetchRefused(
                        f"{host}: the media is larger than {limit} bytes", reason="too-large"
                    )
                content = self._body(response, host, deadline, limit)
                if watchdog.cut.is_set():  # the end seen was the cut, not the body's
                    raise FetchRefused(f"{host}: timed out", reason="timed-out")
                content_type, charset = _content_type(response.getheader("Content-Type") or "")
                location = response.getheader("Location") or ""
                answered: dict[str, str] = {}
                for name, value in response.getheaders():
                    name = name.lower()
                    answered[name] = f"{answered[name]}, {value}" if name in answered else value
                return _Answer(response.status, location, content_type, charset, content,
                               answered)  # fmt: skip
            finally:
                connection.close()
        except FetchRefused:
            raise
        except (OSError, http.client.HTTPException, UnicodeError) as error:
            if watchdog.cut.is_set() or isinstance(error, TimeoutError):
                raise FetchRefused(f"{host}: timed out", reason="timed-out") from None
            raise FetchRefused(f"{host}: {error}", reason="connection-failed") from None
        finally:
            watchdog.stop()
            sock.close()

    def _body(
        self, response: http.client.HTTPResponse, host: str, deadline: float, limit: int
    ) -> bytes:
        """The body, within the size limit and the deadline."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > limit:
                raise FetchRefused(
                    f"{host}: the media is larger than {limit} bytes", reason="too-large"
                )
            if time.monotonic() > deadline:
                raise FetchRefused(f"{host}: timed out", reason="timed-out")
            chunks.append(chunk)
        return b"".join(chunks)


def _check_header(name: str, value: str) -> None:
    """Raises Invalid for a header that cannot be sent, naming it (never its value: it may be
    a credential)."""
    if not name or any(c in _NOT_IN_NAMES or not c.isascii() or ord(c) < 33 for c in name):
        raise Invalid(f"{name[:60]!r} is not an HTTP header name")
    if any(c in "\r\n\0" for c in value):
        raise Invalid(f"the value of header {name} holds a line break or a NUL: not sent")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise Invalid(
            f"the value of header {name} holds characters a header cannot carry (not Latin-1)"
        ) from None


def _content_type(header: str) -> tuple[str, str]:
    """A Content-Type header's media type and charset parameter, lower case ("" when absent)."""
    media_type, *parameters = header.split(";")
    charset = ""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip().lower()
    return media_type.strip().lower(), charset


def escaped(text: str) -> str:
    """``text`` (a URL's path or query) with what may not stand in a URL (spaces, characters
    outside ASCII) percent-encoded as UTF-8, as a browser sends it; existing escapes kept."""
    return quote(text, safe=_TARGET_SAFE)


def _redirected(url: str, location: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError:
        raise FetchRefused(
            f"{url}: redirected to {location[:200]!r}, which is not a URL", reason="bad-url"
        ) from None


class Cutoff:
    """Shuts a connection down at ``deadline`` (``time.monotonic``) unless stopped first: a
    server trickling a byte at a time never trips a per-read timeout. Watches the socket
    given to ``watch`` (or, as an httpx ``trace`` extension, the one it connects); ``cut``
    says it did. The fetcher's connections and takedown's deliveries (SMTP, APIs) use it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.cut = threading.Event()
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.timer: threading.Timer | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            if isinstance(sock, socket.socket):
                self.watch(sock)

    def watch(self, sock: socket.socket) -> None:
        """Watch ``sock`` (through a duplicate, which stays valid whatever TLS does to it)."""
        with self.lock:
            if self.sock is not None:
                self.sock.close()
            if self.timer is not None:
                self.timer.cancel()
            self.sock = sock.dup()
            self.timer = threading.Timer(max(self.deadline - time.monotonic(), 0.0), self._cut)
            self.timer.daemon = True
            self.timer.start()

    def _cut(self) -> None:
        with self.lock:
            if self.sock is None or self.sock.fileno() == -1:  # stopped meanwhile
                return
            self.cut.set()
            with contextlib.suppress(OSError):  # the peer closed it already
                self.sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            if self.sock is not None:
                self.sock.close()
