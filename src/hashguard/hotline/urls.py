"""Reported URLs, checked once as they come in and written in one normal form, so that the same
address reported twice (in another spelling) joins one case.

What is refused, each with a sentence naming the URL: more than 2,048 characters, a scheme other
than http or https (or none), no host, a user name or password, a port that is no port, an IP
address that is not public (unless in ``networks``, which the operator names for tests or an
intranet), a name that is never public (``localhost``, ``.local``, ``.internal``, ``.home.arpa``,
``.lan``, ``.invalid``, one label without a dot). IPv4 addresses in the other forms browsers
accept (``127.1``, ``0x7f000001``) are read as browsers read them, so they cannot slip past.

The normal form: scheme and host in lower case, an international name in its ASCII (punycode)
form as browsers write it (UTS 46), an IPv4-mapped IPv6 address as the IPv4 address it is, no
trailing dot, no default port, no fragment, "/" for an empty path, "." and ".." segments resolved
(RFC 3986), percent-escapes of unreserved characters decoded and the others upper-cased, spaces
and other characters outside ASCII percent-encoded; the query otherwise kept as it is (its order
matters to some sites).
"""

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import idna

from hashguard.errors import Invalid
from hashguard.net.fetch import Address, Network, is_public, unmapped

MAX_LENGTH: Final = 2048
SCHEMES: Final = {"http": 80, "https": 443}
NEVER_PUBLIC: Final = ("localhost", "local", "internal", "home.arpa", "lan", "invalid")

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What may stand in a path or query unescaped (RFC 3986), "%" kept for its escapes.
_ALLOWED: Final = _UNRESERVED | frozenset("!$&'()*+,;=:@/?%[]")


class InvalidUrl(Invalid):
    """A reported URL that is refused; the message names it and says why."""


class NotPublic(InvalidUrl):
    """A URL whose host is a private or local address, or a name that is never public."""


@dataclass(frozen=True, slots=True)
class ReportedUrl:
    url: str  # the normal form
    key: str  # the SHA-256 (hex) of the normal form: what a case is found by
    host: str  # lower case, ASCII; an IPv6 address without brackets


def check(url: str, networks: Sequence[Network] = ()) -> ReportedUrl:
    """``url`` checked and normalised. Raises InvalidUrl naming it and what is wrong."""
    return _check(url, networks, "URL")


def _check(url: str, networks: Sequence[Network], name: str) -> ReportedUrl:
    text = url.strip()
    shown = f"{name} {_shown(text)}"
    if not text:
        raise InvalidUrl(f"{name} '' is empty: give the page's address, starting with https://")
    if len(text) > MAX_LENGTH:
        raise InvalidUrl(f"{shown} has {len(text)} characters: at most {MAX_LENGTH} are taken")
    if _CONTROL.search(text):
        raise InvalidUrl(f"{shown} holds a control character (a line break, a tab, ...)")
    scheme, rest = _scheme(text, shown)
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, after = rest[:end], rest[end:]
    if "@" in authority:
        raise InvalidUrl(f"{shown} holds a user name or password (before @): leave it out")
    host_text, port = _host_and_port(authority, scheme, shown)
    host, written = _host(host_text, shown, networks)
    path, _, query = after.partition("#")[0].partition("?")
    normal = f"{scheme}://{written}{'' if port is None else f':{port}'}"
    normal += _without_dot_segments(_escaped(path)) or "/"
    if query:
        normal += "?" + _escaped(query)
    if len(normal) > MAX_LENGTH:
        raise InvalidUrl(f"{shown} has more than {MAX_LENGTH} characters once its host and "
                         "characters are written as ASCII")  # fmt: skip
    return ReportedUrl(normal, hashlib.sha256(normal.encode()).hexdigest(), host)


def check_all(urls: Sequence[str], networks: Sequence[Network] = ()) -> list[ReportedUrl]:
    """Each of ``urls`` checked (``check``), in order, the same URL given twice (in any
    spelling) kept once. Raises InvalidUrl naming the URL and, of several, its position
    ("URL 2: ...")."""
    found: dict[str, ReportedUrl] = {}
    for position, url in enumerate(urls, start=1):
        reported = _check(url, networks, "URL" if len(urls) == 1 else f"URL {position}:")
        found.setdefault(reported.key, reported)
    return list(found.values())


def _shown(text: str) -> str:
    """The URL as a message quotes it: cut short when long."""
    return repr(text if len(text) <= 100 else text[:100] + "...")


def _scheme(text: str, shown: str) -> tuple[str, str]:
    """The scheme (lower case) and what follows its "//"."""
    found = _SCHEME.match(text)
    if found is None or (not text[found.end() :].startswith("//") and _port_like(found, text)):
        raise InvalidUrl(f"{shown} has no scheme: start it with https:// (or http://)")
    scheme = found.group(1).lower()
    if scheme not in SCHEMES:
        raise InvalidUrl(f"{shown} is of scheme {scheme}: only http and https addresses "
                         "are taken")  # fmt: skip
    rest = text[found.end() :]
    if not rest.startswith("//"):
        raise InvalidUrl(f"{shown} has no host: write it as {scheme}://host/path")
    return scheme, rest[2:]


def _port_like(found: re.Match[str], text: str) -> bool:
    """Whether ``name:`` is a host and port without a scheme (``example.com:8080``)."""
    return "." in found.group(1) or text[found.end() : found.end() + 1].isdigit()


def _host_and_port(authority: str, scheme: str, shown: str) -> tuple[str, int | None]:
    """The host as written and the port (None for the scheme's default)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise InvalidUrl(f"{shown} has an IPv6 address without its closing ]")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise InvalidUrl(f"{shown} has text after its IPv6 address: expected :port")
        port_text = after[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise InvalidUrl(f"{shown} has no host")
    if not port_text:  # none, or "host:" (the default)
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidUrl(f"{shown} has port {port_text[:20]!r}: expected a number from 1 to "
                         "65535")  # fmt: skip
    port = int(port_text)
    return host, None if port == SCHEMES[scheme] else port


def _host(text: str, shown: str, networks: Sequence[Network]) -> tuple[str, str]:
    """The host (ASCII, lower case) and how the URL writes it (an IPv6 address in brackets).
    Raises InvalidUrl for a host that is not public or not a host at all."""
    if text.startswith("["):
        try:
            address = unmapped(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise InvalidUrl(f"{shown} has {text!r}: not an IPv6 address") from None
        _public(address, shown, networks)
        if isinstance(address, ipaddress.IPv4Address):  # IPv4-mapped: the IPv4 address it is
            return str(address), str(address)
        return str(address), f"[{address}]"
    name = text.removesuffix(".")
    if name.isascii():
        name = name.lower()
    else:
        try:
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError as error:
            raise InvalidUrl(f"{shown} has host {text!r}, not a valid name: {error}") from None
    labels = name.split(".")
    ipv4 = _ipv4(labels, shown)
    if ipv4 is not None:
        _public(ipv4, shown, networks)
        return str(ipv4), str(ipv4)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidUrl(f"{shown} has host {text[:100]!r}: not a valid host name (letters, "
                         "digits and hyphens in labels of at most 63 between dots)")  # fmt: skip
    if len(labels) == 1 or any(name == n or name.endswith("." + n) for n in NEVER_PUBLIC):
        raise NotPublic(f"{shown} has host {name}, a name that is never public: a hotline "
                         "can only look at pages anyone on the internet can reach")  # fmt: skip
    return name, name


def _ipv4(labels: list[str], shown: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host names as browsers read it (WHATWG URL: 1 to 4 numbers,
    decimal, 0x hex or 0 octal, the last filling the remaining bytes), or None when the host
    is a name (its last label is not a number)."""
    if _number(labels[-1]) is None:
        return None
    numbers = [_number(label) for label in labels]
    if len(numbers) > 4 or any(n is None for n in numbers):
        raise InvalidUrl(f"{shown} has host {'.'.join(labels)!r}: not an IPv4 address")
    values = [n for n in numbers if n is not None]
    *front, last = values
    if any(n > 255 for n in front) or last >= 256 ** (5 - len(values)):
        raise InvalidUrl(f"{shown} has host {'.'.join(labels)!r}: not an IPv4 address")
    number = last
    for index, part in enumerate(front):
        number += part << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _number(label: str) -> int | None:
    try:
        if label[:2].lower() == "0x":
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10) if label.isdigit() and label.isascii() else None
    except ValueError:
        return None


def _public(address: Address, shown: str, networks: Sequence[Network]) -> None:
    if not is_public(address, networks):
        raise NotPublic(f"{shown} names address {address}, which is not public: a hotline "
                         "can only look at pages anyone on the internet can reach")  # fmt: skip


def _without_dot_segments(path: str) -> str:
    """``path`` (empty or starting with "/") with its "." and ".." segments resolved as a
    browser does (RFC 3986, 5.2.4): ``/a/./b/../c`` is ``/a/c``."""
    if not path:
        return path
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    resolved = "/" + "/".join(kept)
    if segments[-1] in (".", "..") and not resolved.endswith("/"):
        resolved += "/"
    return resolved


def _escaped(text: str) -> str:
    """``text`` (a path or query) with its percent-escapes in normal form: unreserved
    characters decoded, the other escapes upper-cased, and characters that may not stand in a
    URL (spaces, characters outside ASCII) percent-encoded as UTF-8."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        escape = _ESCAPE.match(text, index) if char == "%" else None
        if escape is not None:
            decoded = chr(int(escape.group(1), 16))
            out.append(decoded if decoded in _UNRESERVED else escape.group(0).upper())
            index += 3
            continue
        if char in _ALLOWED:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        index += 1
    return "".join(out)
