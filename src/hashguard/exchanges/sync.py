"""Fetching exchanges into their lists (``Sync``), and the thread that does it when each is due
(``Scheduler``).

A fetch builds the exchange's plug-in (its settings, its credentials opened, an ``Http`` to
its base URL), reads its pages from the stored checkpoint, then applies them all in one
transaction with the new checkpoint, the status, the counts, the quarantined records (each
audited: which exchange, where, why) and an ``exchange.fetch`` audit event: the list and the
checkpoint move together or not at all. After the commit the list store is told
(``ListStore.committed``), so a serving Matcher takes the changes in at once. A record the
plug-in could not read, or whose value its signal refuses, is quarantined; the rest applies.
At most ``max_records`` are applied per fetch (a transaction stays bounded); the next fetch is
then due at once.

A failure (the exchange unreachable, credentials refused, a plug-in's error, a change the list
refuses) applies nothing: the status says failed with the error, the failures in a row are
counted, and the next fetch waits a backoff (doubling, capped, never less than the interval).

Several instances may share the database: an exchange is claimed before it is fetched (a
conditional update of ``next_fetch_at`` and ``lease_until``, as takedown's scheduler claims a
notice), so one instance fetches it; the lease is renewed while a long fetch reads, and a fetch
whose lease was lost meanwhile applies nothing (the other instance does it).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, insert, or_, select, update

from hashguard.errors import Conflict, HashguardError, kind_of
from hashguard.exchanges import registry
from hashguard.exchanges.api import (
    EXCERPT,
    Answer,
    ExchangeApi,
    ExchangeConfigError,
    Page,
    Quarantined,
)
from hashguard.exchanges.http import MAX_BYTES, Http, clear_text_problem
from hashguard.exchanges.store import (
    BASE_URL,
    ExchangeNotFound,
    Exchanges,
    backoff,
    plugin_config,
)
from hashguard.lists.records import InvalidRecord, Record, Withdrawal, canonical
from hashguard.net.fetch import Network, Resolver
from hashguard.store import audit
from hashguard.store.tables import ExchangeQuarantineRow, ExchangeRow, HashListRow, utc

log = logging.getLogger("hashguard.exchanges")

MAX_RECORDS: Final = 100_000  # applied per fetch: one transaction stays bounded
LEASE: Final = timedelta(minutes=5)
ERROR_CHARS: Final = 2000


class FetchRunning(Conflict):
    """The exchange is being fetched already (by this instance or another)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one fetch did."""

    name: str
    succeeded: bool
    records: int = 0  # applied
    quarantined: int = 0
    counts: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    up_to_date: bool = False
    lost: bool = False  # another instance took the exchange meanwhile: nothing done here
    kind: type[HashguardError] | None = None  # a failure's kind (None: a plug-in's bug)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "succeeded": self.succeeded, "records": self.records,
                "quarantined": self.quarantined, "counts": dict(self.counts),
                "error": self.error, "up_to_date": self.up_to_date}  # fmt: skip


@dataclass
class Lease:
    """This instance's hold of an exchange: until when (renewed while a fetch reads)."""

    exchange_id: int
    name: str
    until: datetime


@dataclass
class _Read:
    records: list[Record] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    checkpoint: dict[str, Any] | None = None
    checkpoint_at: datetime | None = None
    pages: int = 0
    capped: bool = False


class _Lost(Exception):
    """The lease ran out and another instance took the exchange: apply nothing."""


class _NoHttp:
    """The Http of an exchange without a base URL (a plug-in that reaches no host)."""

    base_url = ""

    def __init__(self, name: str) -> None:
        self.name = name

    def request(self, method: str, path: str, **_: Any) -> Answer:
        raise ExchangeConfigError(f"exchange {self.name} has no base_url to send {method} to")


class Sync:
    """Fetches the exchanges of ``exchanges``: their hosts reached on public addresses or in
    ``networks``, each request within ``timeout`` seconds and ``max_bytes``."""

    def __init__(
        self,
        exchanges: Exchanges,
        networks: Sequence[Network] = (),
        timeout: float = 60.0,
        max_bytes: int = MAX_BYTES,
        max_records: int = MAX_RECORDS,
        lease: timedelta = LEASE,
        resolve: Resolver | None = None,
    ) -> None:
        self.exchanges = exchanges
        self.engine = exchanges.engine
        self.networks = tuple(networks)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.lease = lease
        self.resolve = resolve

    def clock(self) -> datetime:
        return self.exchanges.clock()

    # --- claiming ---------------------------------------------------------------------------

    def due(self, at: datetime, limit: int = 100) -> list[Any]:
        """The enabled exchanges due at ``at`` (id, name, next_fetch_at), soonest first."""
        table = ExchangeRow.__table__
        with self.engine.connect() as connection:
            return list(connection.execute(
                select(table.c.id, table.c.name, table.c.next_fetch_at)
                .where(table.c.enabled.is_(True), table.c.next_fetch_at <= at)
                .order_by(table.c.next_fetch_at, table.c.id).limit(limit)
            ).all())  # fmt: skip

    def claim_due(self, candidate: Any) -> Lease | None:
        """This instance's lease of a due exchange (as ``due`` read it), or None when another
        instance claimed it meanwhile."""
        table = ExchangeRow.__table__
        at = self.clock()
        until = at + self.lease
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == candidate.id,
                       table.c.next_fetch_at == candidate.next_fetch_at,
                       or_(table.c.lease_until.is_(None), table.c.lease_until <= at))
                .values(lease_until=until, next_fetch_at=until)
            ).rowcount  # fmt: skip
        return Lease(int(candidate.id), str(candidate.name), until) if taken == 1 else None

    def claim(self, name: str) -> Lease:
        """This instance's lease of the exchange ``name``, due or not. Raises
        ExchangeNotFound, FetchRunning (a fetch of it holds the lease)."""
        table = ExchangeRow.__table__
        at = self.clock()
        until = at + self.lease
        with self.engine.begin() as connection:
            row = connection.execute(
                select(table.c.id, table.c.lease_until).where(table.c.name == name)
            ).first()
            if row is None:
                raise ExchangeNotFound(f"no exchange named {name[:100]!r}")
            taken = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == row.id,
                       or_(table.c.lease_until.is_(None), table.c.lease_until <= at))
                .values(lease_until=until, next_fetch_at=until)
            ).rowcount  # fmt: skip
        if taken != 1:
            raise FetchRunning(f"exchange {name} is being fetched now; its status says when done")
        return Lease(int(row.id), name, until)

    # --- fetching ---------------------------------------------------------------------------

    def fetch(self, name: str) -> Fetched:
        """Fetch the exchange ``name`` now (enabled or not). Raises ExchangeNotFound,
        FetchRunning; a failure of the fetch itself is in the answer and the status."""
        return self.run(self.claim(name))

    def run(self, lease: Lease) -> Fetched:
        """Fetch the exchange ``lease`` holds and release it (see the module's docstring)."""
        table = ExchangeRow.__table__
        started = self.clock()
        with self.engine.begin() as connection:
            marked = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == lease.exchange_id, table.c.lease_until == lease.until)
                .values(fetch_started_at=started)
            ).rowcount  # fmt: skip
            row = connection.execute(
                select(table, HashListRow.name.label("list_name"))
                .join(HashListRow, HashListRow.id == table.c.list_id)
                .where(table.c.id == lease.exchange_id)
            ).first()  # fmt: skip
        if marked != 1 or row is None:
            return Fetched(lease.name, False, lost=True)
        try:
            read = self._read(self._plugin(row), row, lease)
        except _Lost:
            return Fetched(lease.name, False, lost=True)
        except Exception as error:  # anything a plug-in raises: the fetch failed, retried later
            return self._failed(lease, row, error)
        try:
            return self._apply(lease, row, read)
        except _Lost:
            return Fetched(lease.name, False, lost=True)
        except Exception as error:  # the list refused a change, the database failed
            return self._failed(lease, row, error)

    def plugin(self, exchange_id: int) -> ExchangeApi:
        """The plug-in of exchange ``exchange_id`` built as a fetch builds it (its settings,
        credentials, Http). Raises ExchangeNotFound, CredentialsUnreadable,
        ExchangeConfigError."""
        table = ExchangeRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == exchange_id)).first()
        if row is None:
            raise ExchangeNotFound(f"no exchange {exchange_id}")
        return self._plugin(row)

    def _plugin(self, row: Any) -> ExchangeApi:
        plugin = registry.get(row.api)
        opened = self.exchanges.credentials_for(row.name)
        schema = plugin.credentials_schema
        if opened is None and schema is not None and any(f.required for f in schema.fields):
            raise ExchangeConfigError(
                f"exchange {row.name} has no credentials: set its own, or the {row.api} "
                "plug-in's shared ones"
            )
        base = str(row.config.get(BASE_URL, ""))
        # credentials bound to this origin (Exchanges.credentials_for), never in clear text
        problem = clear_text_problem(base, self.networks) if opened is not None else ""
        if problem:
            raise ExchangeConfigError(f"exchange {row.name}: {problem}")
        http = (Http(base, self.networks, self.timeout, self.max_bytes, self.resolve) if base
                else _NoHttp(row.name))  # fmt: skip
        return plugin(plugin_config(row.config), opened, http)

    def _read(self, plugin: ExchangeApi, row: Any, lease: Lease) -> _Read:
        """Every page after the stored checkpoint, up to ``max_records``; records whose value
        their signal refuses are quarantined here."""
        read = _Read(checkpoint=row.checkpoint)
        pages: Iterator[Page] = plugin.fetch(row.checkpoint)
        try:
            for page in pages:
                read.pages += 1
                read.quarantined.extend(page.quarantined)
                read.skipped.update(page.skipped)
                for number, record in enumerate(page.records, start=1):
                    refused = _refused(record)
                    if refused is None:
                        read.records.append(record)
                    else:
                        where = f"page {read.pages}, record {number}"
                        read.quarantined.append(Quarantined(where, refused, repr(record)[:EXCERPT]))
                if page.checkpoint is not None:
                    read.checkpoint = dict(page.checkpoint)
                if page.checkpoint_at is not None:
                    read.checkpoint_at = page.checkpoint_at
                self._renew(lease)
                if len(read.records) >= self.max_records:
                    read.capped = True
                    break
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        return read

    def _apply(self, lease: Lease, row: Any, read: _Read) -> Fetched:
        actor = f"exchange:{row.name}"
        at = self.clock()
        table = ExchangeRow.__table__
        with self.engine.begin() as connection:
            self._held(connection, lease)
            summary = self.exchanges.lists.apply(row.list_name, read.records, actor, connection)
            for held in read.quarantined:
                connection.execute(insert(ExchangeQuarantineRow).values(
                    exchange_id=row.id, at=at, position=held.position[:500],
                    reason=held.reason[:ERROR_CHARS], excerpt=held.excerpt[:EXCERPT],
                ))  # fmt: skip
                audit.append(connection, actor, "exchange.quarantine", row.name,
                             {"exchange": row.name, "position": held.position,
                              "reason": held.reason})  # fmt: skip
            counts: dict[str, Any] = {
                **summary.counts(), "records": len(read.records), "pages": read.pages,
                "quarantined": len(read.quarantined), "skipped": dict(read.skipped),
            }  # fmt: skip
            due = at if read.capped else at + timedelta(seconds=row.interval_seconds)
            released = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == lease.exchange_id, table.c.lease_until == lease.until)
                .values(checkpoint=read.checkpoint,
                        checkpoint_at=read.checkpoint_at or row.checkpoint_at,
                        fetch_completed_at=at, fetch_succeeded=True,
                        up_to_date=not read.capped, last_error="", last_counts=counts,
                        fetched_items=row.fetched_items + len(read.records), failures=0,
                        next_fetch_at=due, lease_until=None)
            ).rowcount  # fmt: skip
            if released != 1:
                raise _Lost()
            audit.append(connection, actor, "exchange.fetch", row.name,
                         {"succeeded": True, "checkpoint": read.checkpoint,
                          "up_to_date": not read.capped, **counts})  # fmt: skip
        self.exchanges.lists.committed()
        log.info("exchange %s: %d record(s) applied, %d quarantined", row.name,
                 len(read.records), len(read.quarantined))  # fmt: skip
        return Fetched(row.name, True, len(read.records), len(read.quarantined), counts,
                       up_to_date=not read.capped)  # fmt: skip

    def _failed(self, lease: Lease, row: Any, error: Exception) -> Fetched:
        """Record the failure (nothing of the fetch applied) and the backoff."""
        if isinstance(error, HashguardError):
            message = str(error)
        else:  # a plug-in's bug: its kind too, and the traceback in the log
            message = f"{type(error).__name__}: {error}"
            log.error("exchange %s: the %s plug-in failed", row.name, row.api, exc_info=error)
        message = message[:ERROR_CHARS]
        at = self.clock()
        failures = int(row.failures) + 1
        due = at + backoff(int(row.interval_seconds), failures)
        table = ExchangeRow.__table__
        with self.engine.begin() as connection:
            released = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == lease.exchange_id, table.c.lease_until == lease.until)
                .values(fetch_completed_at=at, fetch_succeeded=False, last_error=message,
                        failures=failures, next_fetch_at=due, lease_until=None)
            ).rowcount  # fmt: skip
            if released != 1:
                return Fetched(row.name, False, error=message, lost=True)
            audit.append(connection, f"exchange:{row.name}", "exchange.fetch", row.name,
                         {"succeeded": False, "error": message, "failures": failures,
                          "next_fetch_at": due.isoformat()})  # fmt: skip
        log.warning("exchange %s: fetch failed (%d in a row; next at %s): %s", row.name,
                    failures, due.isoformat(timespec="seconds"), message)  # fmt: skip
        return Fetched(row.name, False, error=message, kind=kind_of(error))

    # --- leases -----------------------------------------------------------------------------

    def _renew(self, lease: Lease) -> None:
        """A long fetch keeps its lease: extended to a full one when less than half is left;
        _Lost when another instance took the exchange meanwhile."""
        at = self.clock()
        if lease.until - at > self.lease / 2:
            return
        until = at + self.lease
        table = ExchangeRow.__table__
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == lease.exchange_id, table.c.lease_until == lease.until)
                .values(lease_until=until, next_fetch_at=until)
            ).rowcount  # fmt: skip
        if changed != 1:
            raise _Lost()
        lease.until = until

    def _held(self, connection: Connection, lease: Lease) -> None:
        """The exchange locked while this instance still holds its lease; else _Lost."""
        table = ExchangeRow.__table__
        current = connection.execute(
            select(table.c.lease_until).where(table.c.id == lease.exchange_id).with_for_update()
        ).first()
        if (
            current is None
            or current.lease_until is None
            or utc(current.lease_until) != (lease.until)
        ):
            raise _Lost()


def _refused(record: Record) -> str | None:
    """Why a record's value cannot be listed (its signal refuses it), or None."""
    if isinstance(record, Withdrawal):
        return None
    try:
        canonical(record.signal, record.value)
    except InvalidRecord as error:
        return str(error)
    return None


class Scheduler:
    """Fetches each enabled exchange when it is due, in a thread (``start``/``stop``), a pass
    every ``poll`` seconds or at once when woken (``wake``: "fetch now"). ``deliver``, when
    given, runs after each pass (the feedback owed to exchanges)."""

    def __init__(
        self,
        sync: Sync,
        poll: float = 5.0,
        deliver: Callable[[], object] | None = None,
        limit: int = 20,
    ) -> None:
        self.sync = sync
        self.poll = poll
        self.deliver = deliver
        self.limit = limit
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, limit: int | None = None) -> list[Fetched]:
        """Fetch the exchanges due now that this instance claims; what each fetch did."""
        done: list[Fetched] = []
        for candidate in self.sync.due(self.sync.clock(), limit or self.limit):
            lease = self.sync.claim_due(candidate)
            if lease is None:
                continue
            try:
                done.append(self.sync.run(lease))
            except Exception:  # one exchange's fault never stops the others; its lease runs out
                log.exception("exchange %s: the fetch failed", candidate.name)
        return done

    def run_once(self) -> list[Fetched]:
        """A pass, then the deliveries."""
        done = self.tick()
        if self.deliver is not None:
            self.deliver()
        return done

    def wake(self, name: str | None = None) -> bool:
        """Run a pass now; with ``name``, that exchange is due now first (unless its fetch is
        running: False). Raises ExchangeNotFound."""
        due = True if name is None else self.sync.exchanges.fetch_now(name)
        self._woken.set()
        return due

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hashguard-exchanges",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the running fetch (an exchange left claimed is taken again when its
        lease runs out)."""
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._woken.clear()
            try:
                self.run_once()
            except Exception:  # a lost database: keep trying
                log.exception("the exchange scheduler failed; trying again")
            self._woken.wait(self.poll)
