"""The partner hotlines and endpoints a hotline sends to, and the referrals between hotlines.

The registry is a TOML file the operator keeps (docs/hotline.md, "Partners and endpoints";
``examples/hotline-partners.toml``): a ``[[partner]]`` per partner hotline (its name, the
countries it covers, its hashguard's base URL, the file holding the key we send it), and the
``[police]`` and ``[international]`` endpoints. A key file is read when a call is made, never
logged, and refused when other users can read it. Keys travel as Bearer tokens, so a plain http
URL is refused unless its host is a loopback address, ``localhost`` or in the hotline's own
networks (tests, an intranet).

A referral (``POST /v1/hotline/referrals`` on the partner's hashguard) carries the reported URL,
per item its URL, hashes, labels, legality and the sender's assessment reference, the hosting
trace and the route's reason: never content, never anything about the reporter.
``referral_payload`` builds it from the listed fields only; ``check_referral`` is the receiving
side's validation. ``hotline.outbox`` sends them.
"""

import ipaddress
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from hashguard.errors import Invalid, NotFound
from hashguard.hotline.routing import HostingTrace, Route
from hashguard.hotline.tomlfile import TomlFile, read
from hashguard.net.fetch import Network
from hashguard.signals import get

REFERRALS_PATH: Final = "/v1/hotline/referrals"
VERSION: Final = 1
MAX_ITEMS: Final = 500
MAX_URL: Final = 2048
MAX_TEXT: Final = 200  # names and references
MAX_REASON: Final = 1000
MAX_HASH: Final = 1 << 20  # a long video's vPDQ runs to hundreds of kilobytes
MAX_TRACE: Final = 64 * 1024  # bytes of the trace's JSON
MAX_KEY: Final = 1024

_COUNTRY = re.compile(r"[A-Z]{2}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_REFERRAL_ID = re.compile(r"[0-9a-f]{32}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")
_KEY = re.compile(r"[\x21-\x7e]+")


class PartnerFileError(Invalid):
    """A partners file that cannot be used; the message names the file and line."""


class PartnerKeyError(Invalid):
    """A key file that cannot be used for a call; the message names the file (never the key)."""


class ReferralError(Invalid):
    """A referral the receiving hotline refuses; the message names the field."""


def read_key(path: Path) -> str:
    """The key in ``path`` (one line). Raises PartnerKeyError when the file cannot be read, is
    not a regular file, gives other users (than its owner and group) any access, or holds no
    single key."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise PartnerKeyError(f"{path}: cannot read the key file: {error.strerror or error}"
                              ) from None  # fmt: skip
    if not stat.S_ISREG(status.st_mode):
        raise PartnerKeyError(f"{path}: the key file is not a regular file")
    if status.st_mode & 0o007:
        raise PartnerKeyError(f"{path}: the key file can be read by every user (mode "
                              f"{stat.S_IMODE(status.st_mode):04o}); make it owner-only: "
                              f"chmod 600 {path}")  # fmt: skip
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise PartnerKeyError(f"{path}: the key file is not a key (ASCII text)") from None
    if not _KEY.fullmatch(text) or len(text) > MAX_KEY:
        raise PartnerKeyError(f"{path}: expected one key on one line (no spaces, at most "
                              f"{MAX_KEY} characters)")  # fmt: skip
    return text


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The police's or the international endpoint: reports are POSTed to ``url``."""

    name: str
    url: str
    key_file: Path | None

    @property
    def post_url(self) -> str:
        return self.url

    def key(self) -> str | None:
        """The key sent as a Bearer token (read now; None without a key file)."""
        return read_key(self.key_file) if self.key_file is not None else None


@dataclass(frozen=True, slots=True)
class Partner:
    """A partner hotline: the countries it covers, its hashguard's base URL and our key there."""

    name: str
    countries: tuple[str, ...]
    url: str
    key_file: Path | None

    @property
    def post_url(self) -> str:
        """Where referrals go: ``{url}/v1/hotline/referrals``."""
        return self.url.rstrip("/") + REFERRALS_PATH

    def status_url(self, referral: str) -> str:
        """Where the takedown status of its referral ``referral`` goes:
        ``{url}/v1/hotline/referrals/{referral}/status``."""
        return f"{self.post_url}/{quote(referral, safe='')}/status"

    def key(self) -> str | None:
        """The key sent as a Bearer token (read now; None without a key file)."""
        return read_key(self.key_file) if self.key_file is not None else None


@dataclass(frozen=True, slots=True)
class PartnerRegistry:
    partners: tuple[Partner, ...] = ()
    police: Endpoint | None = None
    international: Endpoint | None = None

    def for_country(self, country: str | None) -> Partner | None:
        """The partner covering ``country`` (ISO 3166 alpha-2), or None."""
        if not country:
            return None
        code = country.upper()
        return next((p for p in self.partners if code in p.countries), None)

    def partner(self, name: str) -> Partner:
        """The partner called ``name``. Raises NotFound."""
        for partner in self.partners:
            if partner.name == name:
                return partner
        raise NotFound(f"no partner hotline {name!r} (the partners: "
                       f"{', '.join(p.name for p in self.partners) or 'none'})")  # fmt: skip


def load(path: Path, networks: Sequence[Network] = ()) -> PartnerRegistry:
    """The registry in the TOML file ``path``; key files named relative to it are found beside
    it; plain http only to loopback or ``networks``. Raises PartnerFileError naming the file
    and line of what is wrong."""
    file = read(path, PartnerFileError)
    unknown = set(file.document) - {"partner", "police", "international"}
    if unknown:
        key = sorted(unknown)[0]
        raise PartnerFileError(f"{file.where(key=key)}: unknown key {key!r} (expected "
                               "[[partner]], [police] and [international])")  # fmt: skip
    entries = file.document.get("partner", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PartnerFileError(f"{file.where('partner', 0)}: expected [[partner]] tables")
    partners: list[Partner] = []
    covered: dict[str, str] = {}
    for index, entry in enumerate(entries):
        partner = _partner(file, index, entry, networks)
        for code in partner.countries:
            if code in covered:
                raise PartnerFileError(f"{file.where('partner', index, 'countries')}: {code} "
                                       f"is covered by {covered[code]} already")  # fmt: skip
            covered[code] = partner.name
        if any(p.name == partner.name for p in partners):
            raise PartnerFileError(f"{file.where('partner', index, 'name')}: a second partner "
                                   f"called {partner.name!r}")  # fmt: skip
        partners.append(partner)
    return PartnerRegistry(tuple(partners), _endpoint(file, "police", networks),
                           _endpoint(file, "international", networks))  # fmt: skip


def _partner(
    file: TomlFile, index: int, entry: dict[str, Any], networks: Sequence[Network]
) -> Partner:
    def fail(key: str | None, problem: str) -> PartnerFileError:
        return PartnerFileError(f"{file.where('partner', index, key)}: partner {index + 1}: "
                                f"{problem}")  # fmt: skip

    for key in entry:
        if key not in ("name", "countries", "url", "key_file"):
            raise fail(key, f"unknown key {key!r} (name, countries, url, key_file)")
    countries = entry.get("countries")
    if not isinstance(countries, list) or not countries:
        raise fail("countries", 'expected countries = ["CC", ...] (ISO 3166 alpha-2)')
    for code in countries:
        if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
            raise fail("countries", f"{code!r} is not a country code (two capital letters)")
    name, url, key_file = _named_url(file, entry, fail, networks)
    return Partner(name, tuple(countries), url, key_file)


def _endpoint(file: TomlFile, table: str, networks: Sequence[Network]) -> Endpoint | None:
    entry = file.document.get(table)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise PartnerFileError(f"{file.where(key=table)}: expected a [{table}] table")

    def fail(key: str | None, problem: str) -> PartnerFileError:
        return PartnerFileError(f"{file.where(table, None, key)}: [{table}]: {problem}")

    for key in entry:
        if key not in ("name", "url", "key_file"):
            raise fail(key, f"unknown key {key!r} (name, url, key_file)")
    return Endpoint(*_named_url(file, entry, fail, networks))


def _named_url(
    file: TomlFile, entry: dict[str, Any], fail: Any, networks: Sequence[Network]
) -> tuple[str, str, Path | None]:
    name = entry.get("name")
    if not isinstance(name, str) or not _PRINTABLE.fullmatch(name) or len(name) > MAX_TEXT:
        raise fail("name", f"expected name = the organisation's name (1-{MAX_TEXT} characters)")
    url = entry.get("url")
    problem = _url_problem(url) or _clear_text_problem(str(url), networks)
    if problem:
        raise fail("url", f"url: {problem}")
    key_file = entry.get("key_file")
    if key_file is None:
        return name, str(url), None
    if not isinstance(key_file, str) or not key_file:
        raise fail("key_file", "expected key_file = the path of the file holding the key")
    return name, str(url), file.path.parent / key_file


def _clear_text_problem(url: str, networks: Sequence[Network]) -> str:
    """Why the key would travel readable to ``url`` ("" when it would not: https, or a host
    on loopback or in ``networks``)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return ""
    host = parts.hostname or ""
    if host == "localhost":
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_loopback or any(address in n for n in networks)):
        return ""
    return (
        f"{url[:80]!r} is plain http: the key would be sent readable; use https (http "
        "only to loopback or the hotline's own networks)"
    )


def _url_problem(url: Any) -> str:
    """Why ``url`` is not an http(s) URL hashguard sends to or refers ("" when it is)."""
    if not isinstance(url, str) or not url:
        return "expected an http or https URL"
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if not _KEY.fullmatch(url):
        return "spaces or control characters in the URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port raises for a bad one)
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http or https URL with a host, got {url[:80]!r}"
    if parts.username is not None or parts.password is not None:
        return "a URL with a user name or password (send keys in key files)"
    return ""


@dataclass(frozen=True, slots=True)
class ReferralItem:
    url: str
    hashes: Mapping[str, str]  # signal -> canonical value
    labels: Mapping[str, str]
    legality: Mapping[str, str]  # country -> "illegal" | "not-illegal"
    assessment: str  # the sending hotline's assessment reference


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral as the receiving hotline accepted it (every field checked)."""

    referral: str  # a random id (32 hex digits), the same on every retry
    hotline: str  # the sending hotline's name
    country: str  # and country
    reference: str  # its reference for the case
    url: str  # the reported URL
    items: tuple[ReferralItem, ...]
    trace: Mapping[str, Any]  # the sender's hosting trace
    reason: str  # why the sender routed it here


def referral_payload(
    case_url: str,
    items: Sequence[Mapping[str, Any]],
    trace: HostingTrace,
    route: Route,
    reference: str,
    *,
    hotline: str,
    country: str,
) -> dict[str, Any]:
    """The JSON a partner receives for the case ``reference`` of the hotline ``hotline`` in
    ``country``: a new random referral id, the URL, per item only its ``url``, ``hashes``,
    ``labels``, ``legality`` and ``assessment`` (anything else an item holds is left out), the
    trace and the route's reason. Raises ReferralError when it is not what check_referral
    accepts (the partner would refuse it)."""
    payload = {
        "version": VERSION,
        "referral": secrets.token_hex(16),
        "from": {"hotline": hotline, "country": country, "reference": reference},
        "url": case_url,
        "items": [{key: item.get(key) for key in _ITEM_KEYS} for item in items],
        "trace": trace.as_json(),
        "reason": route.reason,
    }
    check_referral(payload)
    return payload


_KEYS: Final = ("version", "referral", "from", "url", "items", "trace", "reason")
_FROM_KEYS: Final = ("hotline", "country", "reference")
_ITEM_KEYS: Final = ("url", "hashes", "labels", "legality", "assessment")


def check_referral(payload: Any) -> Referral:
    """The referral in ``payload`` (parsed JSON). Raises ReferralError naming the first field
    that is missing, unknown, of the wrong kind or over its limit: at most MAX_ITEMS items,
    URLs of at most MAX_URL characters, hashes that parse as their signal's."""
    document = _object(payload, "the referral", _KEYS)
    if document.get("version") != VERSION:
        raise ReferralError(f"version: expected {VERSION}, got {document.get('version')!r}")
    referral = document.get("referral")
    if not isinstance(referral, str) or not _REFERRAL_ID.fullmatch(referral):
        raise ReferralError("referral: expected a referral id of 32 lower-case hex digits")
    sender = _object(document.get("from"), "from", _FROM_KEYS)
    hotline = _text(sender.get("hotline"), "from.hotline")
    country = sender.get("country")
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise ReferralError("from.country: expected a country code (two capital letters)")
    reference = _text(sender.get("reference"), "from.reference")
    url = _url(document.get("url"), "url")
    items = document.get("items")
    if not isinstance(items, list) or not items:
        raise ReferralError("items: expected a list of at least one item")
    if len(items) > MAX_ITEMS:
        raise ReferralError(f"items: {len(items)} items, at most {MAX_ITEMS} in one referral")
    checked = tuple(_item(item, f"items[{i}]") for i, item in enumerate(items))
    trace = document.get("trace")
    if not isinstance(trace, dict):
        raise ReferralError("trace: expected the hosting trace, an object")
    if len(json.dumps(trace).encode()) > MAX_TRACE:
        raise ReferralError(f"trace: more than {MAX_TRACE // 1024} KiB")
    _check_shape(trace, _TRACE, "trace")
    reason = _text(document.get("reason"), "reason", MAX_REASON)
    return Referral(referral, hotline, country, reference, url, checked, trace, reason)


# The hosting trace as hotline.trace.Trace.as_json writes it, field by field: each may be left
# out or null (a sender's version may know less), and what is given is of its kind, as the
# desk's pages show it. Fields not named here are kept and never shown.
_Kind = type | tuple[type, ...] | dict[str, Any] | list[Any]
_ADDRESS: Final[dict[str, _Kind]] = {
    "address": str, "network": str, "asn": int, "as_name": str, "country": str,
    "anycast": bool, "cdn": bool, "hoster": str,
}  # fmt: skip
_TRACE: Final[dict[str, _Kind]] = {
    "url": str, "host": str, "at": str, "country": str, "cdn": bool,
    "dns": {"name": str, "cnames": [str], "addresses": [str], "error": str},
    "addresses": [_ADDRESS],
    "hoster": {"name": str, "country": str, "asns": [int], "networks": [str],
               "abuse_email": str, "abuse_api": str, "cdn": bool, "upstream": str},
    "databases": [str], "unresolved": [str],
}  # fmt: skip


def _check_shape(value: Any, kind: _Kind, where: str) -> None:
    """Raises ReferralError naming the first field of ``value`` not of ``kind`` (a type, an
    object's fields, or ``[kind]`` for a list of them); null is taken for any field."""
    if value is None:
        return
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise ReferralError(f"{where}: expected an object")
        for name, inner in kind.items():
            _check_shape(value.get(name), inner, f"{where}.{name}")
    elif isinstance(kind, list):
        if not isinstance(value, list):
            raise ReferralError(f"{where}: expected a list")
        for number, item in enumerate(value):
            _check_shape(item, kind[0], f"{where}[{number}]")
    elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ReferralError(f"{where}: expected {_KIND_NAMES.get(kind, 'a value')}")


_KIND_NAMES: Final[dict[Any, str]] = {str: "text", int: "a whole number", bool: "true or false"}


def _object(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReferralError(f"{where}: expected an object")
    for key in value:
        if key not in keys:  # nothing else travels: no content, no reporter
            raise ReferralError(f"{where}: unknown field {key!r} (the fields: {', '.join(keys)})")
    for key in keys:
        if key not in value:
            raise ReferralError(f"{where}: the field {key!r} is missing")
    return value


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReferralError(f"{where}: expected text")
    if len(value) > limit:
        raise ReferralError(f"{where}: longer than {limit} characters")
    if not _PRINTABLE.fullmatch(value):
        raise ReferralError(f"{where}: control characters in the text")
    return value


def _url(value: Any, where: str) -> str:
    problem = _url_problem(value)
    if problem:
        raise ReferralError(f"{where}: {problem}")
    return str(value)


def _item(value: Any, where: str) -> ReferralItem:
    item = _object(value, where, _ITEM_KEYS)
    url = _url(item["url"], f"{where}.url")
    hashes = item["hashes"]
    if not isinstance(hashes, dict) or not hashes:
        raise ReferralError(f"{where}.hashes: expected an object of signal -> hash")
    canonical = {}
    for signal, text in hashes.items():
        if not isinstance(text, str) or len(text) > MAX_HASH:
            raise ReferralError(f"{where}.hashes.{signal}: expected a hash in its text form")
        try:
            canonical[signal] = get(signal).canonical(text)
        except Invalid as error:
            raise ReferralError(f"{where}.hashes.{signal}: {error}") from None
    labels = item["labels"]
    if not isinstance(labels, dict) or len(labels) > 32:
        raise ReferralError(f"{where}.labels: expected an object of group -> value (at most 32)")
    for group, label in labels.items():
        if not _LABEL.fullmatch(group) or not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise ReferralError(f"{where}.labels.{group[:40]}: expected a label (letters, "
                                "digits and -, at most 32)")  # fmt: skip
    legality = item["legality"]
    if not isinstance(legality, dict) or len(legality) > 300:
        raise ReferralError(f"{where}.legality: expected an object of country -> legality")
    for code, status in legality.items():
        if not _COUNTRY.fullmatch(code) or status not in ("illegal", "not-illegal"):
            raise ReferralError(f"{where}.legality.{code[:40]}: expected a country code and "
                                '"illegal" or "not-illegal"')  # fmt: skip
    assessment = _text(item["assessment"], f"{where}.assessment")
    return ReferralItem(url, canonical, dict(labels), dict(legality), assessment)
