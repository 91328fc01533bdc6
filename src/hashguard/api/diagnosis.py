"""What is wrong with a configuration before the service starts with it (``hashguard config
check``): the database is tried (with a short timeout), key files are read, and settings that
contradict each other or point users nowhere are named, each with what to do. With the hotline
on, its files are loaded (each found fine says what it holds) and its resolver asked. Nothing
secret is read into a message: files are named by path, the database URL without its
password."""

import ipaddress
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from hashguard.api.configuration import Configuration, secret_set
from hashguard.api.settings import NCMEC_PASSWORD, ServiceSettings, masked_url
from hashguard.net.fetch import Network
from hashguard.store.database import database_url


class Severity(StrEnum):
    ERROR = "error"  # the service would not start, or a feature it is set up for would fail
    WARNING = "warning"  # it would run, but not as meant
    NOTE = "note"  # worth knowing
    OK = "ok"  # checked and found fine: what it holds (config check lists these apart)


@dataclass(frozen=True)
class Problem:
    severity: Severity
    setting: str
    message: str  # what is wrong and what to do


def diagnose(
    configuration: Configuration, environ: Mapping[str, str] | None = None, timeout: float = 3
) -> list[Problem]:
    """Every problem found in ``configuration``, errors first, then what was checked and found
    fine (``Severity.OK``); the database is connected to and the hotline's resolver asked
    (waiting at most ``timeout`` seconds)."""
    s = configuration.settings
    found = [
        *_database(s, timeout),
        *_secret(s.secret_file),
        *_links(s),
        *_fetching(s),
        *_releases(s),
        *_snapshot(s),
        *_forwarding(s),
        *_reports(s, secret_set(environ)),
        *_device(s),
        *_hotline(s, timeout),
        *_takedown(s, timeout),
    ]
    order = list(Severity)
    return sorted(found, key=lambda p: order.index(p.severity))


def shown_url(url: str) -> str:
    """A URL as it may be shown: without its password."""
    return masked_url(url)


def unreachable_links(public_url: str) -> str | None:
    """Why the complaint links in statements of reasons, made from ``public_url``, would not
    reach users (its host is a loopback or unspecified address), or None."""
    if not _loopback((urlsplit(public_url).hostname or "").lower()):
        return None
    return (f"complaint links in statements of reasons will point to {public_url}, which "
            "users cannot reach: start the service with --public-url set to the address "
            "users reach it at (e.g. https://hashguard.example.org)")  # fmt: skip


def _loopback(host: str, unspecified: bool = True) -> bool:
    """Whether ``host`` is a loopback address (or localhost), or the unspecified address (a
    link to it reaches no one; listening on it is listening everywhere)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")
    return address.is_loopback or (unspecified and address.is_unspecified)


def _database(s: ServiceSettings, timeout: float) -> Iterator[Problem]:
    url = database_url(s.database_url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        yield Problem(Severity.ERROR, "database_url", f"not a database URL: {url!r} (e.g. "
                      "sqlite:///hashguard.db or postgresql://user@host/hashguard)")  # fmt: skip
        return
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        yield from _sqlite(parsed)
        return
    if parsed.drivername == "postgresql":  # the driver hashguard installs
        parsed = parsed.set(drivername="postgresql+psycopg")
    options = {"connect_timeout": max(1, round(timeout))} if backend == "postgresql" else {}
    try:
        engine = create_engine(parsed, connect_args=options)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        yield Problem(Severity.ERROR, "database_url",
                      f"cannot connect to {shown_url(url)}: {reason}; check that the server "
                      "runs and the URL's host, port, user and database")  # fmt: skip


def _sqlite(url: URL) -> Iterator[Problem]:
    name = url.database or ""
    if name in ("", ":memory:"):
        yield Problem(
            Severity.WARNING,
            "database_url",
            "the database is in memory: everything is lost when the service stops",
        )
        return
    path = Path(name)
    if not path.exists():
        folder = path.parent
        if not folder.is_dir():
            yield Problem(
                Severity.ERROR,
                "database_url",
                f"{path}: its directory {folder} does not exist; create it",
            )
        else:
            yield Problem(
                Severity.NOTE, "database_url", f"{path} does not exist yet: it is created at start"
            )
        return
    uri = f"{path.resolve().as_uri()}?mode=ro"  # read only: a check changes nothing
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=3)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as error:
        yield Problem(Severity.ERROR, "database_url", f"{path}: cannot be used as a database "
                      f"({error}); name another file")  # fmt: skip
        return
    if not _writable(path) or not _writable(path.parent):
        yield Problem(
            Severity.ERROR,
            "database_url",
            f"{path}: the service cannot write it or "
            "its directory (SQLite writes a journal beside it); fix its permissions",
        )


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _secret(path: Path) -> Iterator[Problem]:
    from hashguard.review.webhook import SecretFileError, load_secret

    if not path.exists():
        if path.parent.is_dir() and _writable(path.parent):
            yield Problem(
                Severity.NOTE,
                "secret_file",
                f"{path} does not exist yet: it is "
                "created at start (back it up: webhook signatures depend on it; replicas "
                "must all have the same one: copy it to each, do not let each make its own)",
            )
        else:
            yield Problem(Severity.ERROR, "secret_file", f"{path} cannot be created at start: "
                          f"its directory {path.parent} is missing or not writable")  # fmt: skip
        return
    try:
        load_secret(path)  # it exists: read, never made
    except SecretFileError as error:
        yield Problem(Severity.ERROR, "secret_file", f"{error}; name the server's secret file "
                      "(or a new path: one is made at start)")  # fmt: skip


def _links(s: ServiceSettings) -> Iterator[Problem]:
    parts = urlsplit(s.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        yield Problem(
            Severity.ERROR,
            "public_url",
            f"{s.public_url!r} is not an http(s) URL (e.g. https://hashguard.example.org)",
        )
        return
    unreachable = unreachable_links(s.public_url)
    if unreachable is not None:
        # Serving on loopback with links to it: trying it out; anywhere else it is a mistake.
        severity = Severity.NOTE if _loopback(s.host, unspecified=False) else Severity.WARNING
        yield Problem(severity, "public_url", unreachable)
    if not _loopback(s.host, unspecified=False):
        yield Problem(
            Severity.WARNING,
            "host",
            f"hashguard speaks plain HTTP on {s.host}: keys "
            "and uploads cross the network unencrypted unless a reverse proxy with TLS "
            "is in front; listen on 127.0.0.1 behind one (README: Deploying)",
        )
    elif parts.scheme == "http" and unreachable is None:
        yield Problem(
            Severity.WARNING,
            "public_url",
            f"{s.public_url} is plain HTTP: users' "
            "complaint links should be https:// (the reverse proxy's address)",
        )


def _fetching(s: ServiceSettings) -> Iterator[Problem]:
    if s.fetch_hosts:
        return
    if s.fetch_networks:
        yield Problem(
            Severity.WARNING,
            "fetch_networks",
            "fetch_networks has no effect while "
            "fetch_hosts is empty: name the hosts media may be fetched from",
        )
    yield Problem(Severity.NOTE, "fetch_hosts", "no hosts are allowed: media by URL is off "
                  "(/v1/hash?url=..., HMA's /h/hash?url=...); uploads work")  # fmt: skip


def _key(setting: str, path: Path, make: str) -> Iterator[Problem]:
    """A private key file that must be there and readable (``make``: the command that makes
    one)."""
    from hashguard.transparency import keys

    try:
        keys.load(path)
    except keys.KeyFileError as error:
        yield Problem(Severity.ERROR, setting, f"{error}; make one with {make}")


def _releases(s: ServiceSettings) -> Iterator[Problem]:
    named = {"release_key": s.release_key, "release_log": s.release_log,
             "release_dir": s.release_dir}  # fmt: skip
    missing = [name for name, value in named.items() if value is None]
    if len(missing) == len(named):
        return
    if missing:
        yield Problem(Severity.WARNING, missing[0], f"releases through the API need "
                      f"release_key, release_log and release_dir; {', '.join(missing)} not set, "
                      "so POST /v1/lists/NAME/releases answers 409")  # fmt: skip
    if s.release_key is not None:
        yield from _key("release_key", s.release_key, f"hashguard keys generate --out "
                        f"{s.release_key}")  # fmt: skip
    for name in ("release_log", "release_dir"):
        path = named[name]
        if path is not None and path.exists() and not path.is_dir():
            yield Problem(Severity.ERROR, name, f"{path} is not a directory")
    if s.release_log is not None:
        log_key = s.release_log.with_name(s.release_log.name + ".key")
        if log_key.exists():
            yield from _key("release_log", log_key, "care: it signs the log's tree heads")
        else:
            yield Problem(Severity.NOTE, "release_log", f"{log_key}, the log's signing key, is "
                          "made at the first release: back it up with the log")  # fmt: skip


def _snapshot(s: ServiceSettings) -> Iterator[Problem]:
    """A snapshot to start from: it and its key readable, and signed by that key (the lists
    load from the database otherwise, more slowly)."""
    from hashguard.lists import snapshot
    from hashguard.transparency import keys

    if s.snapshot is None:
        if s.snapshot_key is not None:
            yield Problem(Severity.WARNING, "snapshot_key", "set without snapshot: not used")
        return
    if s.snapshot_key is None:
        yield Problem(Severity.ERROR, "snapshot_key", "snapshot is set without the key it must "
                      "be signed with: the lists would load from the database")  # fmt: skip
        return
    try:
        held = snapshot.read(s.snapshot, keys.read_public(s.snapshot_key))
    except (snapshot.SnapshotError, keys.KeyFileError) as error:
        yield Problem(Severity.ERROR, "snapshot", f"{error}: the lists would load from the "
                      "database; make one with hashguard lists snapshot")  # fmt: skip
        return
    yield Problem(Severity.OK, "snapshot", f"{s.snapshot.name}: {len(held.lists)} list(s), "
                  f"made {held.made}, signed by the key given")  # fmt: skip


def _forwarding(s: ServiceSettings) -> Iterator[Problem]:
    """Who may say who the client is: ``*`` lets every client claim any address."""
    if "*" in (part.strip() for part in s.forwarded_allow_ips.split(",")):
        yield Problem(Severity.WARNING, "forwarded_allow_ips", "* believes X-Forwarded-For from "
                      "anyone: any client can claim any address, past the per-address limits; "
                      "name the balancer's address")  # fmt: skip


def _reports(s: ServiceSettings, password: bool) -> Iterator[Problem]:
    destinations = [name for name in ("eu_centre_url", "ncmec_url") if getattr(s, name)]
    for name in destinations:
        parts = urlsplit(getattr(s, name))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            yield Problem(Severity.ERROR, name, f"{getattr(s, name)!r} is not an http(s) URL")
    if not destinations and s.report_key is None:
        return
    provider = ("provider_name", "provider_email", "provider_country")
    unset = [name for name in provider if not getattr(s, name)]
    if unset:
        yield Problem(Severity.ERROR, unset[0], f"reports need the provider's name, e-mail and "
                      f"country: set {', '.join(unset)}")  # fmt: skip
    if s.report_key is None:
        yield Problem(
            Severity.ERROR,
            "report_key",
            f"reports are signed, and "
            f"{' and '.join(destinations)} is set without report_key: make one with "
            "hashguard keys generate --out report.key and set report_key",
        )
    else:
        yield from _key("report_key", s.report_key, f"hashguard keys generate --out "
                        f"{s.report_key}")  # fmt: skip
    if s.ncmec_url and not (s.ncmec_user and password):
        yield Problem(Severity.ERROR, "ncmec_url", "reports to NCMEC need ncmec_user and the "
                      f"password in {NCMEC_PASSWORD} (environment only)")  # fmt: skip


def _device(s: ServiceSettings) -> Iterator[Problem]:
    if s.oprf_key is None:
        return
    from hashguard.device.oprf import OprfError, ServerKey

    try:
        ServerKey.load(s.oprf_key)
    except OprfError as error:
        yield Problem(Severity.ERROR, "oprf_key", f"{error}; make one with hashguard device "
                      f"keygen --out {s.oprf_key}")  # fmt: skip


_HOTLINE_FILES = ("hotline_vocabulary", "hotline_routing", "hotline_partners", "hotline_hosters",
                  "hotline_ip_databases", "hotline_resolver")  # fmt: skip


def _hotline(s: ServiceSettings, timeout: float) -> Iterator[Problem]:
    """With the hotline on: each of its files loaded (what it holds, or the error with file and
    line) and its resolver asked (no answer: a warning, traces will say so)."""
    if not s.hotline_country:
        named = [name for name in _HOTLINE_FILES if getattr(s, name)]
        if named:
            yield Problem(Severity.WARNING, named[0], f"{', '.join(named)} set, but "
                          "hotline_country is not: the hotline is off")  # fmt: skip
        return
    yield from _vocabulary(s.hotline_vocabulary, s.hotline_country)
    yield from _routing(s.hotline_routing)
    yield from _partners(s.hotline_partners, s.hotline_networks)
    yield from _hosters(s.hotline_hosters)
    yield from _ip_databases(s.hotline_ip_databases)
    yield from _resolver(s.hotline_resolver, timeout)
    yield from _known_lists(s, timeout)


def _known_lists(s: ServiceSettings, timeout: float) -> Iterator[Problem]:
    """A known list the database does not hold matches nothing: said (a warning: it may be
    imported later). Nothing is said when the database cannot be read (reported above)."""
    if not s.hotline_known_lists:
        return
    parsed = make_url(database_url(s.database_url))
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        held: set[str] = set()
    else:
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        options = ({"connect_timeout": max(1, round(timeout))}
                   if parsed.get_backend_name() == "postgresql" else {})  # fmt: skip
        try:
            engine = create_engine(parsed, connect_args=options)
            try:
                with engine.connect() as connection:
                    held = set(connection.execute(text("SELECT name FROM hash_lists")).scalars())
            finally:
                engine.dispose()
        except (SQLAlchemyError, ImportError):
            return
    missing = [name for name in s.hotline_known_lists if name not in held]
    if missing:
        yield Problem(Severity.WARNING, "hotline_known_lists",
                      f"the database holds no list {', '.join(map(repr, missing))}: items are "
                      "triaged against the lists it holds only (import it, or check the "
                      "name)")  # fmt: skip


def _vocabulary(path: Path | None, home: str) -> Iterator[Problem]:
    from hashguard.hotline import vocabulary

    try:
        loaded = vocabulary.load(path) if path is not None else vocabulary.default()
    except vocabulary.VocabularyError as error:
        yield Problem(Severity.ERROR, "hotline_vocabulary", str(error))
        return
    name = str(path) if path is not None else "the built-in vocabulary"
    if home not in loaded.rules:
        yield Problem(Severity.ERROR, "hotline_vocabulary", f"{name} has no legality rules for "
                      f"{home}, the hotline's country: add them (docs/formats.md, \"Hotline "
                      "vocabulary\")")  # fmt: skip
        return
    yield Problem(Severity.OK, "hotline_vocabulary", f"{name}: {len(loaded.groups)} label "
                  f"groups, legality rules for {len(loaded.rules)} countries "
                  f"({', '.join(loaded.rules)})")  # fmt: skip


def _routing(path: Path | None) -> Iterator[Problem]:
    from hashguard.hotline import routing

    try:
        rules = routing.load_rules(path) if path is not None else routing.DEFAULT
    except routing.RoutingRulesError as error:
        yield Problem(Severity.ERROR, "hotline_routing", str(error))
        return
    name = str(path) if path is not None else "the built-in rules"
    count = len(rules.rules)
    yield Problem(Severity.OK, "hotline_routing", f"{name}: {count} rule{'s' * (count != 1)}")


def _partners(path: Path | None, networks: Sequence[Network]) -> Iterator[Problem]:
    from hashguard.hotline import partners

    if path is None:
        yield Problem(Severity.WARNING, "hotline_partners", "no partners file: referrals and "
                      "police and international reports wait in the outbox, unsent; set "
                      "hotline_partners (examples/hotline-partners.toml)")  # fmt: skip
        return
    try:
        registry = partners.load(path, networks)
    except partners.PartnerFileError as error:
        yield Problem(Severity.ERROR, "hotline_partners", str(error))
        return
    held = [f"{len(registry.partners)} partner{'s' * (len(registry.partners) != 1)}"]
    held += [f"{kind} endpoint" for kind in ("police", "international")
             if getattr(registry, kind) is not None]  # fmt: skip
    yield Problem(Severity.OK, "hotline_partners", f"{path}: {', '.join(held)}")
    if registry.police is None:
        yield Problem(
            Severity.WARNING,
            "hotline_partners",
            f"{path}: no [police] endpoint: "
            "reports of domestic cases to the police wait in the outbox, unsent",
        )
    for destination in (*registry.partners, registry.police, registry.international):
        if destination is None or destination.key_file is None:
            continue
        try:
            partners.read_key(destination.key_file)
        except partners.PartnerKeyError as error:
            yield Problem(Severity.ERROR, "hotline_partners", f"{destination.name}: {error}")


def _hosters(path: Path | None) -> Iterator[Problem]:
    from hashguard.hotline import hosters

    if path is None:
        yield Problem(Severity.WARNING, "hotline_hosters", "no registry of hosters: traces name "
                      "no hoster and notices go to no abuse contact; set hotline_hosters "
                      "(examples/hosters.toml)")  # fmt: skip
        return
    try:
        registry = hosters.load(path)
    except hosters.HosterError as error:
        yield Problem(Severity.ERROR, "hotline_hosters", str(error))
        return
    cdns = sum(hoster.cdn for hoster in registry)
    yield Problem(
        Severity.OK,
        "hotline_hosters",
        f"{path}: {len(registry)} "
        f"hoster{'s' * (len(registry) != 1)} ({cdns} CDN{'s' * (cdns != 1)})",
    )


def _ip_databases(paths: tuple[Path, ...]) -> Iterator[Problem]:
    from hashguard.hotline.ipdb import IpDatabaseError, open_database

    if not paths:
        yield Problem(Severity.WARNING, "hotline_ip_databases", "no IP database: traces give no "
                      "network, AS or country, so routing cannot tell where a URL is hosted; "
                      "set hotline_ip_databases (Debian's libloc-database, or an ip2asn "
                      "file)")  # fmt: skip
    for path in paths:
        try:
            database = open_database(path)
        except IpDatabaseError as error:
            yield Problem(Severity.ERROR, "hotline_ip_databases", str(error))
            continue
        yield Problem(Severity.OK, "hotline_ip_databases", f"{path}: {database.name} database "
                      f"of {database.date}")  # fmt: skip


def _resolver(nameservers: tuple[str, ...], timeout: float) -> Iterator[Problem]:
    from hashguard.errors import Invalid
    from hashguard.net.dns import DnsResolver

    try:
        resolver = DnsResolver(nameservers, timeout=min(timeout, 2.0))
    except Invalid as error:
        yield Problem(Severity.ERROR, "hotline_resolver", str(error))
        return
    asked = ", ".join(f"{address}:{port}" for address, port in resolver.nameservers)
    named = asked if nameservers else f"the system's nameservers ({asked or 'none'})"
    why = resolver.answers()
    if why is None:
        yield Problem(Severity.OK, "hotline_resolver", f"{named} answer")
    else:
        yield Problem(Severity.WARNING, "hotline_resolver", f"{named}: no answer ({why}): "
                      "traces will have no addresses until one answers")  # fmt: skip


_TAKEDOWN_FILES = ("takedown_escalation", "takedown_smtp")


def _takedown(s: ServiceSettings, timeout: float) -> Iterator[Problem]:
    """With the hotline on, notice and takedown: the signing key (read, or made at start), the
    legal profile, the escalation ladder (loaded, or its error with file and line), the mail
    server (asked: no answer is a warning, e-mail notices wait)."""
    if not s.hotline_country:
        named = [name for name in _TAKEDOWN_FILES if getattr(s, name)]
        if named:
            yield Problem(Severity.WARNING, named[0], f"{', '.join(named)} set, but "
                          "hotline_country is not: notice and takedown is off")  # fmt: skip
        return
    yield from _takedown_key(s.takedown_key)
    from hashguard.legal.profiles import UnknownProfile, profile

    try:
        profile(s.takedown_profile)
    except UnknownProfile as error:
        yield Problem(Severity.ERROR, "takedown_profile", str(error))
    if s.takedown_escalation is not None:
        from hashguard.takedown import ladder

        try:
            steps = ladder.load(s.takedown_escalation, s.hotline_networks)
        except ladder.LadderError as error:
            yield Problem(Severity.ERROR, "takedown_escalation", str(error))
        else:
            shown = ", ".join(f"{step.name} after {step.after.total_seconds() / 3600:g} h"
                              for step in steps)  # fmt: skip
            yield Problem(Severity.OK, "takedown_escalation",
                          f"{s.takedown_escalation}: {shown or 'no steps'}")  # fmt: skip
    yield from _smtp(s.takedown_smtp, timeout)


def _takedown_key(path: Path) -> Iterator[Problem]:
    from hashguard.transparency import keys

    if not path.exists():
        if path.parent.is_dir() and _writable(path.parent):
            yield Problem(Severity.NOTE, "takedown_key", f"{path} does not exist yet: it is made "
                          "at start (back it up: hosters check notices with its public "
                          "key)")  # fmt: skip
        else:
            yield Problem(Severity.ERROR, "takedown_key", f"{path} cannot be made at start: its "
                          f"directory {path.parent} is missing or not writable")  # fmt: skip
        return
    try:
        keys.load(path)
    except keys.KeyFileError as error:
        yield Problem(Severity.ERROR, "takedown_key", f"{error}; name the notices' signing key "
                      "(or a new path: one is made at start)")  # fmt: skip


def _smtp(address: str, timeout: float) -> Iterator[Problem]:
    import socket

    if not address:
        yield Problem(Severity.WARNING, "takedown_smtp", "no mail server: notices to "
                      "hosters without an abuse API wait, unsent; set takedown_smtp "
                      "(host:port)")  # fmt: skip
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 2.0)):
            pass
    except OSError as error:
        yield Problem(Severity.WARNING, "takedown_smtp", f"{address}: no answer ({error}): "
                      "e-mail notices wait and are retried until it answers")  # fmt: skip
        return
    yield Problem(Severity.OK, "takedown_smtp", f"{address} answers")
