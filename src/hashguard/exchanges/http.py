"""HTTP to one exchange (``api.ExchangeHttp``): requests go to the exchange's base URL and
below it only, through the SSRF-safe fetcher (an allowed host, a public address or a network
the operator names, the connection to the address checked, a deadline and a size limit).

A path is relative to the base URL, or an absolute URL under it (a page's ``next`` link); a
link anywhere else is refused (``OutsideExchange``) rather than followed. A GET redirected is
followed here (the fetcher follows none), and only to a location under the base URL: same
scheme, host and port, within the base path; so the exchange's headers (its credentials) never
go anywhere else, and https is never followed down to http. Network failures and
refusals are ExchangeUnavailable; every status the server answers is returned. Header values
(credentials) never appear in a message, nor do query strings (some APIs take a token there).
"""

import ipaddress
import posixpath
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import unquote, urlencode, urljoin, urlsplit, urlunsplit

from hashguard.errors import Invalid
from hashguard.exchanges.api import Answer, ExchangeConfigError, ExchangeUnavailable
from hashguard.net.fetch import FetchRefused, Network, Resolver, UrlFetcher

MAX_BYTES: Final = 256 * 1024 * 1024  # one page of an exchange's answer
MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class OutsideExchange(ExchangeUnavailable):
    """A link that leads away from the exchange's base URL (another host, scheme, port or a
    path outside the base path): not followed."""


class Http:
    """``api.ExchangeHttp`` for the exchange at ``base_url`` (http or https), reachable on
    public addresses or in ``networks``; each request within ``timeout`` seconds and
    ``max_bytes`` of answer. Raises ExchangeConfigError for a base URL that is not one."""

    def __init__(
        self,
        base_url: str,
        networks: Sequence[Network] = (),
        timeout: float = 60.0,
        max_bytes: int = MAX_BYTES,
        resolve: Resolver | None = None,
    ) -> None:
        try:
            parts = urlsplit(base_url.strip())
            port = parts.port
        except ValueError as error:
            raise ExchangeConfigError(f"base_url: not a URL ({error})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ExchangeConfigError(
                f"base_url: {_shown(base_url)} is not an http or https URL with a host"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ExchangeConfigError(
                "base_url: a base URL holds no credentials, query or fragment "
                f"({parts.scheme}://{parts.hostname}...)"
            )
        self.scheme = parts.scheme
        self.host = parts.hostname.lower().rstrip(".")
        self.port = port or (443 if parts.scheme == "https" else 80)
        self.base_path = "/" + parts.path.strip("/")  # "/" or "/v2", no trailing slash
        netloc = parts.netloc.lower()
        self.base_url = urlunsplit((self.scheme, netloc, self.base_path.rstrip("/"), "", ""))
        self.fetcher = UrlFetcher([self.host], networks, timeout=timeout, max_bytes=max_bytes)
        if resolve is not None:  # tests: names resolved to loopback addresses
            self.fetcher.resolve = resolve

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The URL ``path`` names (relative to the base URL, or absolute under it), with
        ``params`` added to its query. Raises OutsideExchange when it leads elsewhere."""
        try:
            parts = urlsplit(path)
            port = parts.port
        except ValueError:
            raise OutsideExchange(f"{self.base_url}: {_shown(path)} is not a URL") from None
        if parts.scheme or parts.netloc:
            host = (parts.hostname or "").lower().rstrip(".")
            port = port or (443 if parts.scheme == "https" else 80)
            if (parts.scheme, host, port) != (self.scheme, self.host, self.port):
                raise OutsideExchange(
                    f"{self.base_url}: a link to {_shown(path)} leads to another host, scheme "
                    "or port: not followed"
                )
            if parts.username or parts.password:
                raise OutsideExchange(
                    f"{self.base_url}: a link with credentials in it is not followed"
                )
            full = parts.path or "/"
        else:
            full = self.base_path.rstrip("/") + "/" + parts.path.lstrip("/")
        normal = posixpath.normpath(full) if full not in ("", "/") else "/"
        if full.endswith("/") and normal != "/":
            normal += "/"
        meant = posixpath.normpath(unquote(full))  # "%2e%2e" is ".." to some servers
        if self.base_path != "/" and not (
            meant == self.base_path or meant.startswith(self.base_path + "/")
        ):
            raise OutsideExchange(
                f"{self.base_url}: a link to {_shown(path)} leads outside {self.base_path}: "
                "not followed"
            )
        query = parts.query
        if params:
            query = "&".join(q for q in (query, urlencode(dict(params))) if q)
        return urlunsplit((self.scheme, urlsplit(self.base_url).netloc, normal, query, ""))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "",
    ) -> Answer:
        """The exchange's answer (any status). Raises OutsideExchange for a path that leads
        away from the base URL, ExchangeUnavailable when the request could not be made or
        answered (network, deadline, size), ExchangeConfigError for a header that cannot be
        sent (naming the header, not its value)."""
        url = self.url(path, params)
        sent = dict(headers or {})
        if content_type:
            sent["Content-Type"] = content_type
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._send(method, url, sent, body)
            location = answer.headers.get("location", "")
            if method.upper() != "GET" or answer.status not in _REDIRECTS or not location:
                return answer
            url = self.redirected(url, location)
        raise ExchangeUnavailable(
            f"{method.upper()} {_shown(url)}: more than {MAX_REDIRECTS} redirects"
        )

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Answer:
        try:
            response = self.fetcher.request(method, url, headers=headers, body=body)
        except FetchRefused as refused:
            message = str(refused).replace(url, _shown(url))
            raise ExchangeUnavailable(
                f"{method.upper()} {_shown(url)}: {_without_queries(message)}"
            ) from None
        except Invalid as error:  # a header that cannot be sent
            raise ExchangeConfigError(f"{method.upper()} {_shown(url)}: {error}") from None
        return Answer(response.status, response.body, response.content_type,
                      dict(response.headers))  # fmt: skip

    def redirected(self, url: str, location: str) -> str:
        """Where a redirect from ``url`` to ``location`` leads, when that lies under the base
        URL. Raises OutsideExchange (naming neither query) when it does not."""
        try:
            target = urljoin(url, location.strip())
        except ValueError:
            raise OutsideExchange(
                f"{_shown(url)}: redirected to {_shown(location)!r}, which is not a URL"
            ) from None
        try:
            return self.url(target)
        except OutsideExchange as outside:
            raise OutsideExchange(
                f"{_shown(url)} redirected away from the exchange's base URL: {outside}"
            ) from None


def origin_of(base_url: str) -> str:
    """Where credentials set for ``base_url`` may go: its scheme, host and port
    (``https://host:443``), as the exchange's Http reaches them. Raises ExchangeConfigError for
    what is not an http(s) URL with a host."""
    http = Http(base_url)
    host = f"[{http.host}]" if ":" in http.host else http.host
    return f"{http.scheme}://{host}:{http.port}"


def clear_text_problem(base_url: str, networks: Sequence[Network]) -> str:
    """Why credentials may not be sent to ``base_url`` ("" when they may): https always, plain
    http only to an address in ``networks`` (the operator's exchange_networks: a test's
    loopback stand-in, an intranet peer). Raises ExchangeConfigError for what is not an http(s)
    URL with a host."""
    http = Http(base_url)
    if http.scheme == "https":
        return ""
    try:
        address = ipaddress.ip_address(http.host)
    except ValueError:
        address = None
    if address is not None and any(address in network for network in networks):
        return ""
    return (
        f"base_url: {_shown(http.base_url)} is plain http, and credentials go over https only "
        "(plain http only to an address in a network named in exchange_networks)"
    )


def _shown(url: str) -> str:
    """``url`` as messages show it: without its query (it may carry a token), at most 200
    characters."""
    return url.split("?", 1)[0].split("#", 1)[0][:200]


def _without_queries(message: str) -> str:
    """``message`` with the query of any URL in it left out."""
    return " ".join(_shown(word) if "://" in word else word for word in message.split(" "))
