"""The service's settings: one frozen object. Each setting a person can set is declared once, on
its field (``setting()``): its name, kind, section, help and default; the command-line flag
(``--name``), the environment variable (``HASHGUARD_NAME``) and the configuration file's key
(``name``, at the top or in its section) are all made from that (api/configuration.py reads
them, ``hashguard serve`` and ``hashguard config check`` offer them). Nothing in it is secret:
key files are named by path."""

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hashguard.media.limits import MIB, Limits
from hashguard.net.fetch import Network

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Kind:
    """What a setting holds: ``expected`` (for messages: "an integer"), the metavar its flag
    shows, how its text (a flag's or a variable's) is read, and how a TOML value is checked
    (both raise ValueError for a value not of the kind)."""

    expected: str
    metavar: str
    from_text: Callable[[str], Any]
    from_toml: Callable[[Any], Any]


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(value)  # nan and inf are no number of seconds or bytes
    return float(value)


_USER_PASSWORD = re.compile(r"(?<=://)([^:/@?#]*):[^@/?#]*@")
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&#]*")


def masked_url(url: str) -> str:
    """``url`` as it may be shown: a password in it (``user:password@``, or libpq's
    ``?password=``) replaced by ``***``."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _USER_PASSWORD.sub(r"\1:***@", url))


def _url_text(text: str) -> str:
    """A URL (http or https, a host, a port if any in range), or "" for none."""
    if text:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (raises ValueError for a port out of range)
        except ValueError:
            raise ValueError(text) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(text)
    return text


def _database_url_text(text: str) -> str:
    """A SQLAlchemy URL whose parts parse (the port a number)."""
    from sqlalchemy.engine import make_url  # loaded when a database URL is given
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text).port  # noqa: B018
    except (ArgumentError, ValueError):
        raise ValueError(text) from None
    return text


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _flag_text(text: str) -> bool:
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise ValueError(text)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(value)
    return value


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(text) from None


def _words(text: str) -> list[str]:
    """A list given as text: separated by commas or white space."""
    return text.replace(",", " ").split()


def _text_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(value)
    return tuple(value)


INTEGER = Kind("an integer", "INTEGER", lambda t: int(t.strip()), _integer)
NUMBER = Kind("a number", "NUMBER", lambda t: _number(float(t.strip())), _number)
TEXT = Kind("a string", "TEXT", str, _text)
URL = Kind("an http(s) URL", "URL", _url_text, lambda v: _url_text(_text(v)))
# URLs are shown (in errors, in ``config check``) without their passwords.
DATABASE_URL = Kind(
    "a database URL (sqlite:///file.db, postgresql://user@host:5432/name)",
    "URL",
    _database_url_text,
    lambda v: _database_url_text(_text(v)),
)
PATH = Kind("a path", "PATH", Path, lambda v: Path(_text(v)))
FLAG = Kind("true or false", "", _flag_text, _flag)
HOSTS = Kind("a list of host names", "HOST", lambda t: tuple(_words(t)), _text_list)
NETWORKS = Kind(
    "a list of networks (e.g. 10.1.2.0/24)",
    "NETWORK",
    lambda t: tuple(_network(n) for n in _words(t)),
    lambda v: tuple(_network(n) for n in _text_list(v)),
)
NAMES = Kind("a list of names", "NAME", lambda t: tuple(_words(t)), _text_list)
PATHS = Kind(
    "a list of paths",
    "PATH",
    lambda t: tuple(Path(p) for p in _words(t)),
    lambda v: tuple(Path(p) for p in _text_list(v)),
)


MAX_DAYS = 3650  # re-checks: ten years at most
MAX_HOURS = 8760  # takedown deadlines and intervals: a year at most


def _days(value: Any) -> tuple[int, ...]:
    """Whole days, each 1 to MAX_DAYS, in increasing order (re-checks after a removal)."""
    if not isinstance(value, list) or not value:
        raise ValueError(value)
    days = tuple(_integer(v) for v in value)
    if any(not 1 <= d <= MAX_DAYS for d in days) or list(days) != sorted(set(days)):
        raise ValueError(value)
    return days


def _days_text(text: str) -> tuple[int, ...]:
    try:
        return _days([int(word) for word in _words(text)])
    except ValueError:
        raise ValueError(text) from None


def _host_port(text: str) -> str:
    """``host:port`` (an IPv6 address in brackets), or "" for none."""
    if text:
        host, colon, port = text.rpartition(":")
        if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(text)
    return text


SERVERS = ("uvicorn", "granian")  # the HTTP server cores ``hashguard serve`` runs on


def _server(text: str) -> str:
    if text.strip() not in SERVERS:
        raise ValueError(text)
    return text.strip()


SERVER = Kind(" or ".join(SERVERS), "NAME", _server, lambda v: _server(_text(v)))
DAYS = Kind(f"a list of days, each 1 to {MAX_DAYS}, increasing (e.g. 1,7,30)", "DAYS",
            _days_text, _days)  # fmt: skip
HOST_PORT = Kind("host:port (e.g. smtp.example.org:25)", "HOST:PORT", _host_port,
                 lambda v: _host_port(_text(v)))  # fmt: skip
SECTIONS = ("server", "database", "limits", "fetch", "releases", "reports", "device", "victims",
            "hotline", "takedown")  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """A setting a person sets. ``name`` is its key in the file and, made upper case after
    ``HASHGUARD_``, its environment variable; ``flag`` its option (``--name`` unless given;
    ``repeat``: given once per value). A field in bytes is set in MiB (``scale``). ``unset``
    says what no value means."""

    name: str
    kind: Kind
    section: str
    help: str
    flag: str = ""
    repeat: bool = False
    scale: int = 1
    minimum: float | None = None
    maximum: float | None = None
    unset: str = "-"

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "HASHGUARD_" + self.name.upper()


def setting(default: Any, kind: Kind, section: str, help: str, **declared: Any) -> Any:
    """A settings field (named ``declared['name']``, else as the field) with its declaration."""
    assert section in SECTIONS, section
    return field(default=default, metadata={"setting": (kind, section, help, declared)})


@dataclass(frozen=True)
class ServiceSettings:
    # -- server: where it listens, and what it says users reach it at
    host: str = setting("127.0.0.1", TEXT, "server", "The address to listen on.")
    port: int = setting(8000, INTEGER, "server", "The port to listen on.", minimum=1, maximum=65535)
    public_url: str = setting(
        "", URL, "server", "This service's address as users reach it (complaint links).",
        unset="http://HOST:PORT",
    )  # fmt: skip
    server: str = setting(
        "uvicorn", SERVER, "server",
        "The HTTP server core: uvicorn, or granian (a Rust HTTP server; the granian extra; "
        "measured to need more CPU per match request than uvicorn: docs/benchmarks.md). One "
        "process either way: the index lives in it.",
    )  # fmt: skip
    access_log: bool = setting(
        False, FLAG, "server", "Log every request line (never keys or bodies)."
    )
    forwarded_allow_ips: str = setting(
        "127.0.0.1", TEXT, "server",
        "The reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For "
        "is believed: the client's address, which the per-address limits count (the desks' "
        "cookie is Secure whatever X-Forwarded-Proto says). Name the balancer; * believes "
        "any sender, so any client can claim any address.",
    )  # fmt: skip
    insecure_cookies: bool = setting(
        False, FLAG, "server",
        "Send the desks' session cookie without Secure: only for plain-HTTP development from "
        "another machine (browsers keep a Secure cookie over http from 127.0.0.1 and localhost "
        "alone). Never in production.",
    )  # fmt: skip
    # The server's secret (webhook signatures are derived from it), made on first use.
    secret_file: Path = setting(
        Path("hashguard-secret.key"), PATH, "server",
        "The server's secret (webhook signatures, sealed exchange credentials); made on first "
        "use. Replicas must share the same one.",
    )  # fmt: skip
    database_url: str | None = setting(
        None, DATABASE_URL, "database",
        "SQLAlchemy URL (sqlite:///file.db, postgresql://...); migrated at start.",
        unset="sqlite:///hashguard.db",
    )  # fmt: skip
    # Replicas: how each follows the lists' change logs, and where it may load them from.
    refresh_interval: float = setting(
        0.2, NUMBER, "database",
        "Seconds between reads of the lists' change logs (changes made by other instances "
        "hold here within this).", minimum=0.01,
    )  # fmt: skip
    max_lag: float = setting(
        30.0, NUMBER, "database",
        "Seconds this replica may stay behind the database (measured on its own clock from "
        "when it first saw a change it has not applied) before it reports not ready "
        "(/status/ready answers 503, so a load balancer sends it no requests); it also bounds "
        "the time since the index last caught up (at least 5 s).",
        minimum=1.0,
    )  # fmt: skip
    snapshot: Path | None = setting(
        None, PATH, "database",
        "A list snapshot (hashguard lists snapshot) to load the lists from at start, then "
        "catch up from the change logs; the database is read instead when it does not fit.",
    )  # fmt: skip
    snapshot_key: Path | None = setting(
        None, PATH, "database",
        "The public key (.pub) the snapshot must be signed with; needed with snapshot.",
    )  # fmt: skip
    # -- limits: request bodies (media uploads, list imports, everything else: JSON)
    max_upload_bytes: int = setting(
        64 * MIB, INTEGER, "limits", "Largest media upload, in MiB.",
        name="max_upload_mb", scale=MIB, minimum=1,
    )  # fmt: skip
    max_import_bytes: int = setting(
        1024 * MIB, INTEGER, "limits", "Largest list import, in MiB.",
        name="max_import_mb", scale=MIB, minimum=1,
    )  # fmt: skip
    max_json_bytes: int = 2 * MIB
    # The decode budget (media/budget.py): the whole server's, every media route and the
    # hotline's crawler share it.
    max_decodes: int = setting(
        4, INTEGER, "limits",
        "Most uploads decoded at once, for the whole server; more wait their turn.",
        minimum=1,
    )  # fmt: skip
    max_decode_bytes: int = setting(
        1024 * MIB, INTEGER, "limits",
        "Most memory the uploads being decoded may hold together, in MiB (each estimated from "
        "its header: pixels times what a pixel of its format costs); a larger one is decoded "
        "alone.",
        name="max_decode_mb", scale=MIB, minimum=1,
    )  # fmt: skip
    decode_wait: float = setting(
        10.0, NUMBER, "limits",
        "Seconds an upload waits for room in the decode budget before it is refused (503 with "
        "Retry-After); 0: refused at once.",
        minimum=0.0,
    )  # fmt: skip
    decode_waiters: int = setting(
        16, INTEGER, "limits",
        "Most uploads waiting for room in the decode budget at once (each holds its body in "
        "memory meanwhile); one more is refused at once (503 with Retry-After).",
        minimum=0,
    )  # fmt: skip
    max_batch: int = setting(
        1000, INTEGER, "limits", "Most hashes in one match request.", minimum=1
    )
    min_quality: int | None = None  # values of lower quality never match (None: the signal's)
    min_stability: int | None = setting(
        None, INTEGER, "limits",
        "Hashes less stable than this (0-100: how little they move under a 1 % resize) are "
        "not matched, as queries or as list entries measured when listed.",
        minimum=0, maximum=100, unset="each signal's own (PDQ: 50)",
    )  # fmt: skip
    # -- limits: guessing secrets on the routes anyone may call (complaint links, reports'
    # status tokens, keys at sign-in); docs/configuration.md lists every public route's limit
    guess_failures: int = setting(
        20, INTEGER, "limits",
        "Wrong complaint links, report status tokens or keys at sign-in one address may try "
        "(each kind apart) before it must wait (429 with Retry-After).", minimum=1,
    )  # fmt: skip
    guess_window: float = setting(
        900.0, NUMBER, "limits",
        "Seconds the wrong guesses of an address are remembered (and it waits at most).",
        minimum=1.0,
    )  # fmt: skip
    secret_uses_per_hour: int = setting(
        120, INTEGER, "limits",
        "Uses of one complaint link, report status token or key at sign-in per hour, from any "
        "address.", minimum=1,
    )  # fmt: skip
    # -- fetch: hashing media by URL, off unless hosts are allowed; private, loopback and
    # link-local addresses are refused unless their network is named.
    fetch_hosts: tuple[str, ...] = setting(
        (), HOSTS, "fetch",
        "Allow hashing media by URL from this host (repeat; '*.example.org' for its "
        "subdomains). Off by default.",
        flag="--fetch-host", repeat=True, unset="- (media by URL is off)",
    )  # fmt: skip
    fetch_networks: tuple[Network, ...] = setting(
        (), NETWORKS, "fetch",
        "A private network URLs may resolve to (repeat; e.g. an internal CDN). Private, "
        "loopback and link-local addresses are refused otherwise.",
        flag="--fetch-network", repeat=True,
    )  # fmt: skip
    fetch_timeout: float = setting(
        10.0, NUMBER, "fetch", "Seconds to wait for media fetched by URL.", minimum=0.1
    )
    # -- exchanges (NCMEC, StopNCII, ThreatExchange, another hashguard) are reached on public
    # addresses only, unless their network is named.
    exchange_networks: tuple[Network, ...] = setting(
        (), NETWORKS, "fetch",
        "A private network exchanges may be reached on (repeat; tests, an intranet peer). "
        "Private, loopback and link-local addresses are refused otherwise.",
        flag="--exchange-network", repeat=True,
    )  # fmt: skip
    # -- releases: signed releases through the API (without all three the route answers 409)
    release_key: Path | None = setting(
        None, PATH, "releases", "The owner's signing key, to sign releases via the API."
    )
    release_log: Path | None = setting(
        None, PATH, "releases", "The transparency log directory for releases."
    )
    release_dir: Path | None = setting(
        None, PATH, "releases", "Where releases made via the API are written."
    )
    # -- reports: who reports, the key that signs EU reports, where reports go ("" = kept,
    # not sent). NCMEC's password comes from HASHGUARD_NCMEC_PASSWORD only, never recorded.
    provider_name: str = setting("", TEXT, "reports", "Who reports (provider reports).")
    provider_email: str = setting("", TEXT, "reports", "The provider's contact e-mail.")
    provider_country: str = setting("", TEXT, "reports", "The provider's country (NL).")
    report_key: Path | None = setting(
        None, PATH, "reports", "The Ed25519 key that signs EU reports."
    )
    eu_centre_url: str = setting("", URL, "reports", "Where EU reports are sent.")
    ncmec_url: str = setting("", URL, "reports", "NCMEC's CyberTipline API base URL.")
    ncmec_user: str = setting(
        "", TEXT, "reports", "NCMEC user (password: HASHGUARD_NCMEC_PASSWORD)."
    )
    # -- device: on-device checks, server-assisted: the VOPRF key (hashguard device keygen)
    # and how many evaluations one device key may ask for per hour. Without a key: 404.
    oprf_key: Path | None = setting(
        None, PATH, "device", "On-device checks: the VOPRF key to evaluate with (device keygen)."
    )
    oprf_limit: int = setting(
        2000, INTEGER, "device", "Evaluations per hour per device key.", minimum=1
    )
    oprf_address_limit: int = setting(
        20000, INTEGER, "device",
        "Evaluations per hour per client address (IPv6 per /64), whatever the device keys.",
        minimum=1,
    )  # fmt: skip
    # -- victims: cases the person shown opens (hashguard.victims): where their hashes go, the
    # hotline under-18 cases are referred to, and the limits against floods and PIN guessing.
    victims_adult_list: str = setting(
        "victims-ncii", TEXT, "victims",
        "The list adults' case hashes go to (category ncii-victim; made on first use).",
    )  # fmt: skip
    victims_minor_list: str = setting(
        "victims-csam", TEXT, "victims",
        "The list under-18s' case hashes go to (category csam-victim; made on first use).",
    )  # fmt: skip
    victims_owner: str = setting(
        "hashguard", TEXT, "victims", "The organisation named as the victim lists' owner."
    )
    victims_hotline_url: str = setting(
        "", URL, "victims",
        "Where under-18 cases are referred (POST JSON: case, counts, hashes; never an image).",
        unset="- (referrals kept, not sent)",
    )  # fmt: skip
    victims_max_hashes: int = setting(
        100, INTEGER, "victims", "Most hashes in one case.", minimum=1
    )
    victims_pin_failures: int = setting(
        5, INTEGER, "victims", "Wrong PINs in a row before a case is locked.", minimum=1
    )
    victims_lockout_minutes: int = setting(
        15, INTEGER, "victims", "How long a case (or an address) stays locked.", minimum=1
    )
    victims_address_failures: int = setting(
        20, INTEGER, "victims",
        "Wrong PINs (or unknown cases) from one address before it is locked out.", minimum=1,
    )  # fmt: skip
    victims_cases_per_hour: int = setting(
        30, INTEGER, "victims", "Cases one address may open per hour.", minimum=1
    )
    # -- victims: the victims' pages (/victims); their quick exit goes to a neutral site
    victims_exit_url: str = setting(
        "https://www.google.com/", URL, "victims",
        "Where the quick exit of the public pages (victims' pages, report page) goes.",
    )  # fmt: skip
    # -- the hotline (hashguard.hotline): on when its country is set. Public URL reports
    # (/report), crawled in memory, triaged against what was assessed before, assessed by
    # analysts, traced to their hoster and routed (docs/hotline.md).
    hotline_country: str = setting(
        "", TEXT, "hotline",
        "The hotline's country (ISO 3166 code, e.g. NL): where notices and police reports go "
        "for content hosted there.",
        unset="- (no hotline: /report and /v1/hotline are off)",
    )  # fmt: skip
    hotline_name: str = setting(
        "hashguard hotline", TEXT, "hotline", "The hotline's name, as partners see it."
    )
    hotline_four_eyes: bool = setting(
        False, FLAG, "hotline", "Every assessment needs a second analyst who agrees."
    )
    hotline_illegal_list: str = setting(
        "hotline-illegal", TEXT, "hotline",
        "The list assessed illegal items' hashes go to (made on first use).",
    )  # fmt: skip
    hotline_not_illegal_list: str = setting(
        "hotline-not-illegal", TEXT, "hotline",
        "The list assessed-not-illegal items' hashes go to, so they are triaged next time.",
    )  # fmt: skip
    hotline_known_lists: tuple[str, ...] = setting(
        (), NAMES, "hotline",
        "A list of known material items are also triaged against (repeat; e.g. a police list).",
        flag="--hotline-known-list", repeat=True,
    )  # fmt: skip
    hotline_reports_per_hour: int = setting(
        20, INTEGER, "hotline", "Reports one address may send per hour.", minimum=1
    )
    hotline_contact_days: int = setting(
        90,
        INTEGER,
        "hotline",
        "Days a reporter's contact address, description and where they saw the URLs are kept.",
        minimum=1,
    )
    hotline_resolver: tuple[str, ...] = setting(
        (), NAMES, "hotline",
        "A DNS server for crawling and hosting traces (repeat; an IP address, optionally with "
        ":port).",
        flag="--hotline-resolver", repeat=True, unset="- (the system's)",
    )  # fmt: skip
    hotline_ip_databases: tuple[Path, ...] = setting(
        (), PATHS, "hotline",
        "An IP database for hosting traces (repeat; libloc location.db or ip2asn TSV).",
        flag="--hotline-ip-database", repeat=True, unset="- (addresses without AS or country)",
    )  # fmt: skip
    hotline_hosters: Path | None = setting(
        None, PATH, "hotline", "The registry of hosters and their abuse contacts (TOML).",
        unset="- (hosters unnamed)",
    )  # fmt: skip
    hotline_partners: Path | None = setting(
        None, PATH, "hotline",
        "Partner hotlines, the police and international endpoints (TOML).",
        unset="- (no partners: referrals wait)",
    )  # fmt: skip
    hotline_vocabulary: Path | None = setting(
        None, PATH, "hotline", "The assessment labels and legality rules per country (TOML).",
        unset="- (the built-in vocabulary)",
    )  # fmt: skip
    hotline_routing: Path | None = setting(
        None, PATH, "hotline", "The routing rules (TOML).", unset="- (the built-in rules)"
    )
    hotline_crawlers: int = setting(
        2, INTEGER, "hotline", "Reported URLs crawled at the same time.", minimum=1, maximum=64
    )
    hotline_crawl_timeout: float = setting(
        10.0, NUMBER, "hotline", "Seconds one fetch of the crawler may take.", minimum=0.1
    )
    hotline_networks: tuple[Network, ...] = setting(
        (), NETWORKS, "hotline",
        "A private network reported URLs may name and the crawler may reach (repeat; tests, an "
        "intranet). Anyone can report a URL: name none in production.",
        flag="--hotline-network", repeat=True,
    )  # fmt: skip
    hotline_derived_hashes: bool = setting(
        True, FLAG, "hotline",
        "List the derived PDQ hashes of assessed images (crops: 5, 10, 20 % centred, 10 % off "
        "one side; the image inside uniform borders) with their hashes, so cropped copies are "
        "triaged too.",
    )  # fmt: skip
    # -- notice and takedown (hashguard.takedown; on with the hotline): the key notices are
    # signed with, the deadlines, re-checks, the escalation ladder and where e-mail goes.
    takedown_key: Path = setting(
        Path("hashguard-takedown.key"), PATH, "takedown",
        "The Ed25519 key notices are signed with (made on first start; its public key beside "
        "it, .pub).",
    )  # fmt: skip
    takedown_profile: str = setting(
        "known-only", TEXT, "takedown", "The legal profile whose deadlines notices and orders get."
    )
    takedown_notice_hours: int = setting(
        0, INTEGER, "takedown", "A hoster's deadline after a notice, in hours (0: the profile's).",
        minimum=0, maximum=MAX_HOURS,
    )  # fmt: skip
    takedown_order_hours: int = setting(
        0, INTEGER, "takedown",
        "A hoster's deadline after a removal order, in hours (0: the profile's).",
        minimum=0, maximum=MAX_HOURS,
    )  # fmt: skip
    takedown_renotice_hours: int = setting(
        24, INTEGER, "takedown", "Hours between re-notices while content stays up.", minimum=1,
        maximum=MAX_HOURS,
    )  # fmt: skip
    takedown_recheck_days: tuple[int, ...] = setting(
        (1, 7, 30), DAYS, "takedown",
        "Days after a verified removal the URLs are checked again (reappearance).",
    )  # fmt: skip
    takedown_escalation: Path | None = setting(
        None, PATH, "takedown", "The escalation ladder (TOML): steps, when, to whom.",
        unset="- (no escalation: re-notices only)",
    )  # fmt: skip
    takedown_smtp: str = setting(
        "", HOST_PORT, "takedown", "The mail server notices are sent through (host:port).",
        unset="- (e-mail notices wait, unsent)",
    )  # fmt: skip
    takedown_from: str = setting(
        "", TEXT, "takedown", "The address notices are sent from.",
        unset="notices@DOMAIN",
    )  # fmt: skip
    takedown_domain: str = setting(
        "", TEXT, "takedown", "The hotline's domain, as notices name their sender.",
        unset="the public URL's host",
    )  # fmt: skip
    key_cache_seconds: float = 2.0  # a revoked key stops working within this (at once here)

    def __post_init__(self) -> None:
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        object.__setattr__(self, "provider_country", self.provider_country.upper())
        object.__setattr__(self, "hotline_country", self.hotline_country.upper())

    @property
    def fetching(self) -> bool:
        return bool(self.fetch_hosts)

    @property
    def media_limits(self) -> Limits:
        """The limits of uploaded media: no larger than an upload may be."""
        return Limits(max_image_bytes=self.max_upload_bytes, max_video_bytes=self.max_upload_bytes)

    def recorded(self) -> dict[str, Any]:
        """The settings as the audit log records them (paths, limits, hosts; no secrets)."""
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_import_bytes": self.max_import_bytes,
            "max_json_bytes": self.max_json_bytes,
            "max_batch": self.max_batch,
            "decode_budget": [
                self.max_decodes,
                self.max_decode_bytes,
                self.decode_wait,
                self.decode_waiters,
            ],
            "media_limits": {
                name: getattr(self.media_limits, name) for name in self.media_limits.__slots__
            },
            "min_quality": self.min_quality,
            "min_stability": self.min_stability,
            "fetch_hosts": list(self.fetch_hosts),
            "fetch_networks": [str(n) for n in self.fetch_networks],
            "fetch_timeout": self.fetch_timeout,
            "exchange_networks": [str(n) for n in self.exchange_networks],
            "release_key": str(self.release_key or ""),
            "release_log": str(self.release_log or ""),
            "release_dir": str(self.release_dir or ""),
            "secret_file": str(self.secret_file),
            "provider": [self.provider_name, self.provider_email, self.provider_country],
            "report_key": str(self.report_key or ""),
            "eu_centre_url": self.eu_centre_url,
            "ncmec_url": self.ncmec_url,
            "ncmec_user": self.ncmec_user,
            "oprf_key": str(self.oprf_key or ""),
            "oprf_limit": self.oprf_limit,
            "oprf_address_limit": self.oprf_address_limit,
            "guesses": [self.guess_failures, self.guess_window, self.secret_uses_per_hour],
            "victims": [
                self.victims_adult_list,
                self.victims_minor_list,
                self.victims_owner,
                self.victims_hotline_url,
                self.victims_max_hashes,
                self.victims_pin_failures,
                self.victims_lockout_minutes,
                self.victims_address_failures,
                self.victims_cases_per_hour,
            ],
            "takedown": self._section("takedown"),
            "hotline": self._section("hotline"),
        }

    def _section(self, prefix: str) -> dict[str, Any]:
        """The settings named ``prefix_...`` as JSON values (tuples as lists, paths as text)."""
        values = {}
        for f in fields(self):
            if f.name.startswith(f"{prefix}_"):
                value = getattr(self, f.name)
                if isinstance(value, tuple):
                    value = [str(v) for v in value]
                elif isinstance(value, Path):
                    value = str(value)
                values[f.name] = value
        return values


def _declared() -> dict[str, tuple[str, Setting]]:
    found = {}
    for f in fields(ServiceSettings):
        if "setting" in f.metadata:
            kind, section, help_text, declared = f.metadata["setting"]
            options = {k: v for k, v in declared.items() if k != "name"}
            spec = Setting(declared.get("name", f.name), kind, section, help_text, **options)
            found[spec.name] = (f.name, spec)
    return found


NCMEC_PASSWORD = "HASHGUARD_NCMEC_PASSWORD"  # a secret: read from the environment only

# Every setting by name, in the order the file, the help and the report list them, with the
# field of ServiceSettings it sets.
SETTINGS: dict[str, tuple[str, Setting]] = _declared()


def default_of(name: str) -> Any:
    """The default of the setting ``name`` as a person would set it (MiB, not bytes)."""
    attribute, spec = SETTINGS[name]
    value: Any = next(f.default for f in fields(ServiceSettings) if f.name == attribute)
    return value // spec.scale if spec.scale != 1 else value
