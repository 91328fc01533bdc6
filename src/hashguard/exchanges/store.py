"""The configured exchanges (``Exchanges``): each reads one exchange's API (a plug-in) into the
list of the same name, on its own interval, with its settings, its credentials (sealed; its
own, or its plug-in's shared ones as HMA keeps them) and its fetch state as HMA reports it
(``FetchStatus``). Every change is audited in the transaction that makes it; credentials never
appear in an answer, an audit event or a log.

Credentials are bound to the origin (scheme, host, port) they were set for: an exchange's own
to its base URL's when they are set, a plug-in's shared ones to its default base URL's or the
one the admin names. They apply to an exchange only while its base URL is on that origin, and
never over plain http but to the networks the operator names (``networks``); an exchange moved
to another origin loses its own credentials, unless the move carries them (an admin's).
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashguard.errors import Conflict, NotFound
from hashguard.exchanges import credentials as vault
from hashguard.exchanges import registry
from hashguard.exchanges.api import ExchangeApi, ExchangeConfigError
from hashguard.exchanges.credentials import Bound, CredentialsUnreadable, Sealer
from hashguard.exchanges.http import Http, clear_text_problem, origin_of
from hashguard.lists.model import NAME_PATTERN, Category
from hashguard.net.fetch import Network
from hashguard.store import audit
from hashguard.store.database import for_update
from hashguard.store.lists import ListStore
from hashguard.store.tables import (
    ExchangeFeedbackRow,
    ExchangeQuarantineRow,
    ExchangeRow,
    HashListRow,
    utc,
)

DEFAULT_INTERVAL: Final = 900  # seconds between fetches
MIN_INTERVAL: Final = 10
MAX_INTERVAL: Final = 7 * 24 * 3600
BASE_URL: Final = "base_url"  # the one setting every exchange has, besides its plug-in's

Clock = Callable[[], datetime]


def now() -> datetime:
    return datetime.now(UTC)


class ExchangeNotFound(NotFound):
    """No exchange of that name."""


class ExchangeExists(Conflict):
    """An exchange of that name exists already."""


class ExchangeListTaken(Conflict):
    """The list an exchange would fill is another exchange's, or of another category."""


class FetchRunning(Conflict):
    """The exchange is being fetched already (by this instance or another)."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """A configured exchange (never its credentials: ``has_credentials`` says whether any
    apply)."""

    id: int
    name: str
    api: str  # the plug-in's name
    list: str  # the list it fills (its own name)
    config: Mapping[str, Any]  # the plug-in's settings, base_url included
    enabled: bool
    interval: int  # seconds between fetches
    created_at: datetime
    has_credentials: bool

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "api": self.api, "list": self.list,
                "config": dict(self.config), "enabled": self.enabled,
                "interval_seconds": self.interval, "created_at": self.created_at.isoformat(),
                "has_credentials": self.has_credentials}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FetchStatus:
    """Where an exchange's fetching stands: HMA's FetchStatus (Unix times in seconds) and
    hashguard's own: the last error and counts, failures in a row, the next fetch, how many
    records are quarantined."""

    checkpoint_ts: int | None  # the exchange's data is complete to this time, when known
    running_fetch_start_ts: int | None  # a fetch is running since
    last_fetch_complete_ts: int | None
    last_fetch_succeeded: bool | None  # None: never fetched
    up_to_date: bool
    fetched_items: int  # records applied over all fetches
    last_error: str
    last_counts: Mapping[str, Any]
    failures: int
    next_fetch_at: datetime
    quarantined: int

    def as_json(self) -> dict[str, Any]:
        return {"checkpoint_ts": self.checkpoint_ts,
                "running_fetch_start_ts": self.running_fetch_start_ts,
                "last_fetch_complete_ts": self.last_fetch_complete_ts,
                "last_fetch_succeeded": self.last_fetch_succeeded,
                "up_to_date": self.up_to_date, "fetched_items": self.fetched_items,
                "last_error": self.last_error, "last_counts": dict(self.last_counts),
                "failures": self.failures, "next_fetch_at": self.next_fetch_at.isoformat(),
                "quarantined": self.quarantined}  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    id: int
    at: datetime
    position: str
    reason: str
    excerpt: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "position": self.position,
                "reason": self.reason, "excerpt": self.excerpt}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Removed:
    """A removed exchange, and what became of its list (it stays)."""

    exchange: Exchange
    message: str


def check_settings(plugin: type[ExchangeApi], config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` checked by ``plugin`` (defaults filled in), with the base URL (given, or
    the one the plug-in's settings name, or its default) checked as an http(s) URL. Raises
    ExchangeConfigError naming the field."""
    given = dict(config)
    base = str(given.pop(BASE_URL, "") or "").strip()
    checked = plugin.check_config(given)
    # Without a base URL given, the plug-in's settings may say it (NCMEC's environment).
    base = base or str(checked.get(BASE_URL) or plugin.default_base_url or "").strip()
    if base:
        Http(base)  # raises ExchangeConfigError for what is not an http(s) URL with a host
    elif not plugin.local:
        raise ExchangeConfigError(
            f"base_url: required (the {plugin.name} plug-in has no default): the exchange's "
            "http or https URL"
        )
    return {**checked, BASE_URL: base}


def plugin_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a plug-in is built with: its own, without the base URL (its Http has it)."""
    return {key: value for key, value in config.items() if key != BASE_URL}


def _check_credentials(plugin: type[ExchangeApi], given: Mapping[str, Any]) -> dict[str, Any]:
    if plugin.credentials_schema is None:
        raise ExchangeConfigError(f"the {plugin.name} plug-in takes no credentials")
    return plugin.check_credentials(given)


def _check_interval(interval: int) -> int:
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ExchangeConfigError(
            f"interval: {interval} s; expected {MIN_INTERVAL} to {MAX_INTERVAL} seconds"
        )
    return int(interval)


class Exchanges:
    """The exchanges in ``engine``'s database, filling lists through ``lists``; credentials
    sealed with ``sealer``, sent over plain http only to addresses in ``networks`` (the
    operator's exchange_networks); times from ``clock``."""

    def __init__(
        self,
        engine: Engine,
        lists: ListStore,
        sealer: Sealer,
        clock: Clock = now,
        networks: Sequence[Network] = (),
    ) -> None:
        self.engine = engine
        self.lists = lists
        self.sealer = sealer
        self.clock = clock
        self.networks = tuple(networks)

    # --- exchanges --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        api: str,
        config: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        *,
        enabled: bool = True,
        interval: int = DEFAULT_INTERVAL,
        actor: str = "",
    ) -> Exchange:
        """A new exchange ``name`` reading the plug-in ``api`` into the list ``name`` (made
        with the plug-in's category when absent), first fetched at once when enabled.
        Raises UnknownExchangeApi, ExchangeConfigError (a setting or credential, named),
        ExchangeExists, ExchangeListTaken (the list is another exchange's or of another
        category). One transaction: a refused add leaves nothing, not even the list."""
        plugin = registry.get(api)
        if re.fullmatch(NAME_PATTERN, name) is None:
            raise ExchangeConfigError(
                f"exchange name {name[:100]!r}: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (it names the list it fills too)"
            )
        checked = check_settings(plugin, config or {})
        sealed = None if credentials is None else _check_credentials(plugin, credentials)
        if sealed is not None:
            self._check_clear_text(checked[BASE_URL])
        interval = _check_interval(interval)
        category = Category(plugin.category)
        at = self.clock()
        # One transaction: a list made for the exchange goes with it when the add is refused.
        with self.engine.begin() as connection:
            if connection.execute(select(ExchangeRow.id).where(ExchangeRow.name == name)).first():
                raise ExchangeExists(f"an exchange named {name!r} already exists")
            held = connection.execute(
                select(HashListRow.id, HashListRow.category).where(HashListRow.name == name)
            ).first()
            if held is None:
                made = self.lists.create(name, plugin.title, category, actor=actor,
                                         connection=connection)  # fmt: skip
                list_id = made.id
            elif held.category != category:
                raise ExchangeListTaken(
                    f"list {name} holds {held.category}, not {category} as the {api} plug-in's "
                    "lists do: name the exchange after a list of that category, or a new one"
                )
            else:
                list_id = held.id
            taken = connection.execute(
                select(ExchangeRow.name).where(ExchangeRow.list_id == list_id)
            ).first()
            if taken is not None:
                raise ExchangeListTaken(f"list {name} is filled by exchange {taken.name} already")
            try:
                connection.execute(insert(ExchangeRow).values(
                    name=name, api=api, list_id=list_id, config=checked, enabled=enabled,
                    interval_seconds=interval, created_at=at, checkpoint=None,
                    checkpoint_at=None, fetch_started_at=None, fetch_completed_at=None,
                    fetch_succeeded=None, up_to_date=False, last_error="", last_counts={},
                    fetched_items=0, failures=0, next_fetch_at=at, lease_until=None,
                ))  # fmt: skip
            except IntegrityError:  # added meanwhile by another writer
                raise ExchangeExists(f"an exchange named {name!r} already exists") from None
            if sealed is not None:
                scope = vault.scope_of("exchange", name)
                vault.put(connection, self.sealer, scope, sealed, origin_of(checked[BASE_URL]), at)
            else:
                self._check_shared(connection, api, checked[BASE_URL])
            audit.append(connection, actor, "exchange.add", name,
                         {"api": api, "list": name, "config": checked, "enabled": enabled,
                          "interval_seconds": interval,
                          "credentials": sealed is not None})  # fmt: skip
        if held is None:
            self.lists.committed()
        return self.get(name)

    def get(self, name: str) -> Exchange:
        """The exchange ``name``; raises ExchangeNotFound."""
        with self.engine.connect() as connection:
            return self._exchange(connection, self._row(connection, name))

    def all(self) -> list[Exchange]:
        """Every exchange, by name."""
        with self.engine.connect() as connection:
            rows = connection.execute(_selected().order_by(ExchangeRow.name)).all()
            return [self._exchange(connection, row) for row in rows]

    def update(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        interval: int | None = None,
        config: Mapping[str, Any] | None = None,
        actor: str = "",
        carry_credentials: bool = False,
    ) -> Exchange:
        """Change what is given: enabled (a re-enabled exchange is fetched at once), the
        interval, settings (replacing the old ones; checked by the plug-in). Settings that move
        the exchange to another origin (scheme, host, port) forget its own credentials, unless
        ``carry_credentials`` (an admin's change: they are bound to the new origin, which must
        not be plain http). Raises ExchangeNotFound, ExchangeConfigError."""
        with self.engine.begin() as connection:
            row = self._row(connection, name, lock=True)
            plugin = registry.get(row.api)
            values: dict[str, Any] = {}
            if enabled is not None and enabled != row.enabled:
                values["enabled"] = enabled
                if enabled:
                    values["next_fetch_at"] = self.clock()
            if interval is not None and interval != row.interval_seconds:
                values["interval_seconds"] = _check_interval(interval)
            moved = ""
            if config is not None:
                checked = check_settings(plugin, config)
                if checked != row.config:
                    values["config"] = checked
                    moved = self._move(connection, row, checked[BASE_URL], carry_credentials,
                                       actor)  # fmt: skip
            if values:
                connection.execute(
                    update(ExchangeRow).where(ExchangeRow.id == row.id).values(**values)
                )
                shown = {k: v for k, v in values.items() if k != "next_fetch_at"}
                before = {"enabled": row.enabled, "interval_seconds": row.interval_seconds,
                          "config": row.config}  # fmt: skip
                details: dict[str, Any] = {"before": {k: before[k] for k in shown}, "after": shown}
                if moved:
                    details["credentials"] = moved
                audit.append(connection, actor, "exchange.update", name, details)
        return self.get(name)

    def _move(
        self, connection: Connection, row: Any, base_url: str, carry: bool, actor: str
    ) -> str:
        """The exchange ``row`` moves to ``base_url``: its own credentials stay bound to it when
        the origin is the same; else forgotten ("removed"), or bound to the new origin when
        ``carry`` ("moved"); "" when it has none to move. Raises ExchangeConfigError for
        credentials that would then go over plain http."""
        old = str(row.config.get(BASE_URL) or "")
        new_origin = origin_of(base_url) if base_url else ""
        if old and new_origin == origin_of(old):
            return ""  # the same origin: what applied applies, bound as it was
        scope = vault.scope_of("exchange", row.name)
        own = vault.get(connection, self.sealer, scope) if carry and new_origin else None
        if own is not None:
            self._check_clear_text(base_url)
            vault.put(connection, self.sealer, scope, own.values, new_origin, self.clock())
            return "moved"
        if new_origin:
            self._check_shared(connection, row.api, base_url)
        if not vault.remove(connection, scope):
            return ""
        details = {"scope": scope, "reason": "the exchange moved to another origin"}
        audit.append(connection, actor, "exchange.credentials.remove", row.name, details)
        return "removed"

    def remove(self, name: str, actor: str = "") -> Removed:
        """Remove the exchange, its own credentials, quarantined records and feedback owed
        (its list stays, with what it fetched). Raises ExchangeNotFound."""
        exchange = self.get(name)
        with self.engine.begin() as connection:
            row = self._row(connection, name, lock=True)
            vault.remove(connection, vault.scope_of("exchange", name))
            connection.execute(delete(ExchangeQuarantineRow).where(
                ExchangeQuarantineRow.exchange_id == row.id))  # fmt: skip
            connection.execute(delete(ExchangeFeedbackRow).where(
                ExchangeFeedbackRow.exchange_id == row.id))  # fmt: skip
            connection.execute(delete(ExchangeRow).where(ExchangeRow.id == row.id))
            audit.append(connection, actor, "exchange.remove", name,
                         {"api": row.api, "list_kept": exchange.list})  # fmt: skip
        message = (
            f"exchange {name} removed; its list {exchange.list} stays with what it fetched "
            "(remove the list itself to stop matching it)"
        )
        return Removed(exchange, message)

    # --- credentials ------------------------------------------------------------------------

    def set_credentials(
        self, name: str, given: Mapping[str, Any] | None, actor: str = ""
    ) -> str | None:
        """Set (None: forget) the exchange's own credentials, checked by its plug-in and bound
        to its base URL's origin; they win over its plug-in's shared ones. The origin they are
        bound to (None: forgotten). Raises ExchangeNotFound, ExchangeConfigError (a
        credential, or a plain http base URL)."""
        exchange = self.get(name)
        base = str(exchange.config.get(BASE_URL) or "")
        return self._set(vault.scope_of("exchange", name), exchange.api, given, base, actor, name)

    def set_api_credentials(
        self,
        api: str,
        given: Mapping[str, Any] | None,
        actor: str = "",
        base_url: str = "",
    ) -> str | None:
        """Set (None: forget) the credentials every exchange of plug-in ``api`` uses unless
        it has its own (HMA's per-API credentials), bound to the origin of ``base_url`` (when
        not given, the plug-in's default base URL): they apply only to exchanges there. The
        origin they are bound to (None: forgotten). Raises
        UnknownExchangeApi, ExchangeConfigError (a credential; no base URL for a plug-in
        without a default; a plain http one)."""
        plugin = registry.get(api)
        base = base_url.strip() or plugin.default_base_url
        if given is not None and not base:
            raise ExchangeConfigError(
                f"base_url: required (the {api} plug-in has no default): the base URL of the "
                "exchanges these shared credentials are for (they go to no other host)"
            )
        return self._set(vault.scope_of("api", api), api, given, base, actor, f"api {api}")

    def _set(
        self,
        scope: str,
        api: str,
        given: Mapping[str, Any] | None,
        base_url: str,
        actor: str,
        subject: str,
    ) -> str | None:
        checked = None if given is None else _check_credentials(registry.get(api), given)
        if checked is not None:
            self._check_clear_text(base_url)
        with self.engine.begin() as connection:
            if checked is None:
                if vault.remove(connection, scope):
                    audit.append(connection, actor, "exchange.credentials.remove", subject,
                                 {"scope": scope})  # fmt: skip
                return None
            origin = origin_of(base_url)
            vault.put(connection, self.sealer, scope, checked, origin, self.clock())
            audit.append(connection, actor, "exchange.credentials.set", subject,
                         {"scope": scope, "fields": sorted(checked), "origin": origin})  # fmt: skip
        return origin

    def has_api_credentials(self, api: str) -> bool:
        with self.engine.connect() as connection:
            return vault.has(connection, vault.scope_of("api", api))

    def api_credentials_origin(self, api: str) -> str | None:
        """The origin the plug-in's shared credentials are for (None: none set). Raises
        CredentialsUnreadable."""
        with self.engine.connect() as connection:
            shared = vault.get(connection, self.sealer, vault.scope_of("api", api))
        return None if shared is None else shared.origin

    def credentials_for(self, name: str) -> dict[str, Any] | None:
        """The credentials the exchange ``name`` uses, opened: its own, else its plug-in's,
        each only when bound to the origin of its base URL now (None: neither). Raises
        ExchangeNotFound, CredentialsUnreadable."""
        with self.engine.connect() as connection:
            row = self._row(connection, name)
            base = str(row.config.get(BASE_URL) or "")
            bound = self._applying(connection, name, row.api, base)
        return None if bound is None else bound.values

    def _applying(self, connection: Connection, name: str, api: str, base_url: str) -> Bound | None:
        """The credentials an exchange at ``base_url`` uses: its own, else its plug-in's, of
        those bound to that origin. Raises CredentialsUnreadable."""
        if not base_url:
            return None
        origin = origin_of(base_url)
        for scope in (vault.scope_of("exchange", name), vault.scope_of("api", api)):
            bound = vault.get(connection, self.sealer, scope)
            if bound is not None and bound.origin == origin:
                return bound
        return None

    def _check_shared(self, connection: Connection, api: str, base_url: str) -> None:
        """Raise ExchangeConfigError when the plug-in's shared credentials would go to
        ``base_url`` over plain http."""
        if not base_url:
            return
        try:
            shared = vault.get(connection, self.sealer, vault.scope_of("api", api))
        except CredentialsUnreadable:
            return  # they are sent nowhere: the fetch says why
        if shared is not None and shared.origin == origin_of(base_url):
            self._check_clear_text(base_url)

    def _check_clear_text(self, base_url: str) -> None:
        problem = clear_text_problem(base_url, self.networks)
        if problem:
            raise ExchangeConfigError(problem)

    # --- state ------------------------------------------------------------------------------

    def status(self, name: str) -> FetchStatus:
        """Where the exchange's fetching stands. Raises ExchangeNotFound."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ExchangeRow.__table__).where(ExchangeRow.name == name)
            ).first()
            if row is None:
                raise ExchangeNotFound(f"no exchange named {name[:100]!r}")
            held = connection.execute(
                select(func.count()).select_from(ExchangeQuarantineRow)
                .where(ExchangeQuarantineRow.exchange_id == row.id)
            ).scalar_one()  # fmt: skip
        # Running while a fetch started after the last one completed and its lease holds: a
        # fetch whose instance died (or lost the lease) is not running once the lease ends.
        running = (
            row.fetch_started_at is not None
            and (row.fetch_completed_at is None
                 or utc(row.fetch_completed_at) < utc(row.fetch_started_at))
            and row.lease_until is not None
            and utc(row.lease_until) > self.clock()
        )  # fmt: skip
        return FetchStatus(
            _ts(row.checkpoint_at), _ts(row.fetch_started_at) if running else None,
            _ts(row.fetch_completed_at), row.fetch_succeeded, bool(row.up_to_date),
            int(row.fetched_items), row.last_error, dict(row.last_counts or {}),
            int(row.failures), utc(row.next_fetch_at), int(held),
        )  # fmt: skip

    def quarantined(
        self, name: str, limit: int = 100, before: int | None = None
    ) -> list[QuarantinedRecord]:
        """The exchange's quarantined records, newest first, at most ``limit`` (those with an
        id below ``before`` when given). Raises ExchangeNotFound."""
        table = ExchangeQuarantineRow.__table__
        with self.engine.connect() as connection:
            row = self._row(connection, name)
            query = select(table).where(table.c.exchange_id == row.id)
            if before is not None:
                query = query.where(table.c.id < before)
            found = connection.execute(query.order_by(table.c.id.desc()).limit(limit)).all()
        return [QuarantinedRecord(r.id, utc(r.at), r.position, r.reason, r.excerpt)
                for r in found]  # fmt: skip

    def checkpoint(self, name: str) -> dict[str, Any] | None:
        """Where the exchange's next fetch starts, as its plug-in wrote it (None: from the
        beginning). Raises ExchangeNotFound."""
        with self.engine.connect() as connection:
            row = self._row(connection, name)
            held = connection.execute(
                select(ExchangeRow.checkpoint).where(ExchangeRow.id == row.id)
            ).scalar()
        return None if held is None else dict(held)

    def set_checkpoint(
        self, name: str, checkpoint: Mapping[str, Any] | None, actor: str = ""
    ) -> dict[str, Any] | None:
        """Set where the exchange's next fetch starts (None: from the beginning), as its
        plug-in reads checkpoints (checked by its ``check_checkpoint`` when it has one): to
        fetch a skipped span again. The next fetch is due at once; audited with the checkpoint
        before and after. Returns the checkpoint set. Raises ExchangeNotFound,
        ExchangeConfigError (one the plug-in refuses, named), FetchRunning (a fetch of it holds
        its lease: it would store its own checkpoint over this one)."""
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, name, lock=True)
            check = getattr(registry.get(row.api), "check_checkpoint", None)
            if checkpoint is not None and not isinstance(checkpoint, Mapping):
                raise ExchangeConfigError(
                    f"checkpoint: a JSON object as the {row.api} plug-in reads it, not "
                    f"{type(checkpoint).__name__}"
                )
            checked = None if checkpoint is None else (
                dict(check(checkpoint)) if check is not None else dict(checkpoint))  # fmt: skip
            if row.lease_until is not None and utc(row.lease_until) > at:
                raise FetchRunning(
                    f"exchange {name} is being fetched now: set its checkpoint once the fetch "
                    "is done (its status says when)"
                )
            before = connection.execute(
                select(ExchangeRow.checkpoint).where(ExchangeRow.id == row.id)
            ).scalar()
            connection.execute(update(ExchangeRow).where(ExchangeRow.id == row.id).values(
                checkpoint=checked, checkpoint_at=None, up_to_date=False, next_fetch_at=at,
            ))  # fmt: skip
            audit.append(connection, actor, "exchange.checkpoint", name,
                         {"before": before, "after": checked})  # fmt: skip
        return checked

    def fetch_now(self, name: str, actor: str = "") -> bool:
        """Make the exchange due now (unless a fetch of it is running); whether it was.
        Raises ExchangeNotFound."""
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, name, lock=True)
            if row.lease_until is not None and utc(row.lease_until) > at:
                return False
            connection.execute(
                update(ExchangeRow).where(ExchangeRow.id == row.id).values(next_fetch_at=at)
            )
        return True

    # --- rows -------------------------------------------------------------------------------

    def _row(self, connection: Connection, name: str, lock: bool = False) -> Any:
        where = ExchangeRow.name == name
        query = _selected().where(where)
        if lock:
            query = for_update(connection, query, ExchangeRow.interval_seconds, where)
        row = connection.execute(query).first()
        if row is None:
            raise ExchangeNotFound(f"no exchange named {name[:100]!r}")
        return row

    def _exchange(self, connection: Connection, row: Any) -> Exchange:
        try:
            base = str(row.config.get(BASE_URL) or "")
            held = self._applying(connection, row.name, row.api, base) is not None
        except CredentialsUnreadable:
            held = True  # stored, but they do not open: the fetch says why
        return Exchange(row.id, row.name, row.api, row.list_name, dict(row.config),
                        bool(row.enabled), int(row.interval_seconds), utc(row.created_at),
                        held)  # fmt: skip


def _selected() -> Any:
    return select(
        ExchangeRow.id, ExchangeRow.name, ExchangeRow.api, ExchangeRow.config,
        ExchangeRow.enabled, ExchangeRow.interval_seconds, ExchangeRow.created_at,
        ExchangeRow.lease_until, HashListRow.name.label("list_name"),
    ).join(HashListRow, HashListRow.id == ExchangeRow.list_id)  # fmt: skip


def _ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(utc(moment).timestamp())


def backoff(
    interval: int, failures: int, first: float = 60.0, longest: float = 6 * 3600
) -> timedelta:
    """How long after the ``failures``-th failure in a row the next fetch waits: ``first``
    seconds, doubled each time, at most ``longest``, never less than the interval."""
    delay = min(first * 2 ** max(failures - 1, 0), longest)
    return timedelta(seconds=max(delay, interval))
