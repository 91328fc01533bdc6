"""Fetching exchanges into their lists (``Sync``), and the thread that does it when each is due
(``Scheduler``).

A fetch builds the exchange's plug-in (its settings, its credentials opened, an ``Http`` to
its base URL), reads its pages from the stored checkpoint, then applies them all in one
transaction with the new checkpoint, the status, the counts, the quarantined records (each
audited: which exchange, where, why) and an ``exchange.fetch`` audit event: the list and the
checkpoint move together or not at all. After the commit the list store is told
(``ListStore.committed``), so a serving Matcher takes the changes in at once. A record the
plug-in could not read, or whose value its signal refuses, is quarantined; the rest applies.
So is a record the list refuses (a change to a value it lacks, a name too long for its column,
text the database cannot hold): the records are applied in a savepoint, and when that fails
the failing part is halved, each half in its own savepoint, until the refused records are found
and quarantined with the list's reason, all within the fetch's one transaction. At most
``max_records`` are applied per fetch (a transaction stays bounded); the next fetch is then due
at once.

A failure (the exchange unreachable, credentials refused, a plug-in's error, the database
failing) applies nothing: the status says failed with the error, the failures in a row are
counted, and the next fetch waits a backoff (doubling, capped, never less than the interval).

Several instances may share the database: an exchange is claimed before it is fetched (a
conditional update of ``next_fetch_at``, ``lease_until`` and ``lease_holder``, as takedown's
scheduler claims a notice), so one instance fetches it; the lease is renewed while a fetch reads
(between pages, and from a thread six times a lease, however long a plug-in works inside one
page), and a fetch whose lease was lost meanwhile applies nothing (the other instance does it).
A fetch asked for by name (``claim``) takes over at once a lease whose holder is known to run no
longer (a process on this machine that was killed: ``holder.Holder.gone``), by a conditional
update on that holder, so of two such fetches one takes it.
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, and_, insert, or_, select, update
from sqlalchemy.exc import DataError

from hashguard.collector import collector_paused
from hashguard.errors import HashguardError, kind_of
from hashguard.exchanges import holder, registry
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
    FetchRunning,
    backoff,
    plugin_config,
)
from hashguard.lists.records import (
    InvalidRecord,
    Record,
    Withdrawal,
    all_canonical,
    canonical,
)
from hashguard.net.fetch import Network, Resolver
from hashguard.store import audit
from hashguard.store.list_errors import ListError, ListNotFound
from hashguard.store.list_import import ImportSummary
from hashguard.store.tables import (
    EntryRow,
    ExchangeQuarantineRow,
    ExchangeRow,
    HashListRow,
    utc,
)

log = logging.getLogger("hashguard.exchanges")

MAX_RECORDS: Final = 100_000  # applied per fetch: one transaction stays bounded
LEASE: Final = timedelta(minutes=5)
ERROR_CHARS: Final = 2000
# What the list refuses of one record (rather than the database failing): found and quarantined.
_REFUSED: Final = (ListError, InvalidRecord, DataError)
# Names the list keeps (entries' submitted_by and assessed_by), at most this long.
NAME_CHARS: Final = min(
    getattr(EntryRow.__table__.c[column].type, "length", None) or 200
    for column in ("submitted_by", "assessed_by")
)


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
    """This instance's hold of an exchange: until when (renewed while a fetch reads), and the
    process holding it (``holder.Holder.text``)."""

    exchange_id: int
    name: str
    until: datetime
    holder: str
    # Renewed from the fetch's thread and its keeper's: one at a time.
    renewing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass
class _Read:
    records: list[Record] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)  # where each record was read
    quarantined: list[Quarantined] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    checkpoint: dict[str, Any] | None = None
    checkpoint_at: datetime | None = None
    pages: int = 0
    capped: bool = False


class _Lost(Exception):
    """The lease ran out and another instance took the exchange: apply nothing."""


class _Keeper:
    """Renews a lease every ``every`` seconds from a thread of its own while a fetch reads, so
    that a plug-in working long inside one page (retries, probes, a slow exchange) keeps it.
    ``lost``: another instance took the exchange meanwhile."""

    def __init__(self, sync: "Sync", lease: Lease, every: float) -> None:
        self.sync = sync
        self.lease = lease
        self.every = every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hashguard-lease-{lease.name}",
                                        daemon=True)  # fmt: skip

    def __enter__(self) -> "_Keeper":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sync._renew(self.lease)
            except _Lost:
                self.lost = True
                return
            except Exception:  # the database briefly gone: tried again at the next beat
                log.warning("exchange %s: renewing the fetch's lease failed", self.lease.name,
                            exc_info=True)  # fmt: skip


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
        renew_every: float | None = None,
    ) -> None:
        self.exchanges = exchanges
        self.engine = exchanges.engine
        self.networks = tuple(networks)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.lease = lease
        self.resolve = resolve
        # Seconds between renewals while a fetch reads (a sixth of the lease: several chances).
        self.renew_every = renew_every or lease.total_seconds() / 6

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
        lease = Lease(int(candidate.id), str(candidate.name), at + self.lease,
                      holder.this_process().text())  # fmt: skip
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == candidate.id,
                       table.c.next_fetch_at == candidate.next_fetch_at,
                       or_(table.c.lease_until.is_(None), table.c.lease_until <= at))
                .values(lease_until=lease.until, next_fetch_at=lease.until,
                        lease_holder=lease.holder)
            ).rowcount  # fmt: skip
        return lease if taken == 1 else None

    def claim(self, name: str) -> Lease:
        """This instance's lease of the exchange ``name``, due or not, taken over at once from
        a holder known to run no longer (see the module's docstring). Raises
        ExchangeNotFound, FetchRunning (a fetch of it holds the lease: who, until when)."""
        table = ExchangeRow.__table__
        at = self.clock()
        until = at + self.lease
        me = holder.this_process().text()
        query = select(table.c.id, table.c.lease_until, table.c.lease_holder).where(
            table.c.name == name
        )
        with self.engine.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                raise ExchangeNotFound(f"no exchange named {name[:100]!r}")
            free: ColumnElement[bool] = or_(table.c.lease_until.is_(None),
                                            table.c.lease_until <= at)  # fmt: skip
            dead = _dead_holder(row, at)
            if dead is not None:  # on the old holder: of two fetches taking it over, one does
                free = or_(free, table.c.lease_holder == row.lease_holder)
            taken = connection.execute(
                update(ExchangeRow)
                .where(table.c.id == row.id, free)
                .values(lease_until=until, next_fetch_at=until, lease_holder=me)
            ).rowcount  # fmt: skip
            if taken != 1:  # who holds it now (another fetch may have taken it just now)
                row = connection.execute(query).first() or row
        if taken != 1:
            raise FetchRunning(_running(name, row))
        if dead is not None:
            log.warning("exchange %s: took over the lease of %s, which runs no longer", name,
                        dead.describe())  # fmt: skip
        return Lease(int(row.id), name, until, me)

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
                .where(_holds(lease))
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
            with _Keeper(self, lease, self.renew_every) as keeper:
                read = self._read(self._plugin(row), row, lease, keeper)
            if keeper.lost:
                raise _Lost()
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

    def _read(self, plugin: ExchangeApi, row: Any, lease: Lease, keeper: _Keeper) -> _Read:
        """Every page after the stored checkpoint, up to ``max_records``; records whose value
        their signal refuses are quarantined here."""
        read = _Read(checkpoint=row.checkpoint)
        pages: Iterator[Page] = plugin.fetch(row.checkpoint)
        # Up to max_records records pile up: the collector would walk them all again and again.
        with collector_paused():
            self._read_pages(pages, read, lease, keeper)
        return read

    def _read_pages(
        self, pages: Iterator[Page], read: _Read, lease: Lease, keeper: _Keeper
    ) -> None:
        try:
            for page in pages:
                read.pages += 1
                read.quarantined.extend(page.quarantined)
                read.skipped.update(page.skipped)
                if _all_listable(page.records):  # one pass: a page of canonical values
                    read.records.extend(page.records)
                    read.positions.extend(
                        f"page {read.pages}, record {number}"
                        for number in range(1, len(page.records) + 1)
                    )
                else:
                    for number, record in enumerate(page.records, start=1):
                        where = f"page {read.pages}, record {number}"
                        refused = _refused(record)
                        if refused is None:
                            read.records.append(record)
                            read.positions.append(where)
                        else:
                            excerpt = repr(record)[:EXCERPT]
                            read.quarantined.append(Quarantined(where, refused, excerpt))
                if page.checkpoint is not None:
                    read.checkpoint = dict(page.checkpoint)
                if page.checkpoint_at is not None:
                    read.checkpoint_at = page.checkpoint_at
                if keeper.lost:
                    raise _Lost()
                self._renew(lease)
                if len(read.records) >= self.max_records:
                    read.capped = True
                    break
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def _apply(self, lease: Lease, row: Any, read: _Read) -> Fetched:
        actor = f"exchange:{row.name}"
        at = self.clock()
        with self.engine.begin() as connection:
            self._held(connection, lease)
            summary = ImportSummary(row.list_name)
            applied = self._apply_records(connection, row.list_name, actor, read, summary)
            for held in read.quarantined:
                position = _printable(held.position)[:500]
                reason = _printable(held.reason)[:ERROR_CHARS]
                connection.execute(insert(ExchangeQuarantineRow).values(
                    exchange_id=row.id, at=at, position=position, reason=reason,
                    excerpt=_printable(held.excerpt, keep="\n\t")[:EXCERPT],
                ))  # fmt: skip
                audit.append(connection, actor, "exchange.quarantine", row.name,
                             {"exchange": row.name, "position": position,
                              "reason": reason})  # fmt: skip
            counts: dict[str, Any] = {
                **summary.counts(), "records": applied, "pages": read.pages,
                "quarantined": len(read.quarantined), "skipped": dict(read.skipped),
            }  # fmt: skip
            due = at if read.capped else at + timedelta(seconds=row.interval_seconds)
            released = connection.execute(
                update(ExchangeRow)
                .where(_holds(lease))
                .values(checkpoint=read.checkpoint,
                        checkpoint_at=read.checkpoint_at or row.checkpoint_at,
                        fetch_completed_at=at, fetch_succeeded=True,
                        up_to_date=not read.capped, last_error="", last_counts=counts,
                        fetched_items=row.fetched_items + applied, failures=0,
                        next_fetch_at=due, lease_until=None, lease_holder=None)
            ).rowcount  # fmt: skip
            if released != 1:
                raise _Lost()
            audit.append(connection, actor, "exchange.fetch", row.name,
                         {"succeeded": True, "checkpoint": read.checkpoint,
                          "up_to_date": not read.capped, **counts})  # fmt: skip
        self.exchanges.lists.committed()
        log.info("exchange %s: %d record(s) applied, %d quarantined", row.name,
                 applied, len(read.quarantined))  # fmt: skip
        return Fetched(row.name, True, applied, len(read.quarantined), counts,
                       up_to_date=not read.capped)  # fmt: skip

    def _apply_records(
        self, connection: Connection, list_name: str, actor: str, read: _Read,
        summary: ImportSummary,
    ) -> int:  # fmt: skip
        """Apply ``read``'s records to the list in ``connection``'s transaction, each part in
        a savepoint: a part the list refuses is halved until the records it refuses are found,
        and those are quarantined (added to ``read.quarantined``) while the rest applies. Adds
        what was done to ``summary``; the number of records applied. Raises what is not a
        refusal of a record (the database failing, the list gone)."""
        lists = self.exchanges.lists
        # The driver's own DataError too: bulk writes (COPY) raise it unwrapped.
        refused = (*_REFUSED, getattr(connection.dialect.loaded_dbapi, "DataError", DataError))

        def attempt(first: int, last: int) -> int:
            part = read.records[first:last]
            try:
                with connection.begin_nested():
                    done = lists.apply(list_name, part, actor, connection)
            except refused as error:
                if isinstance(error, ListNotFound) or not part:
                    raise
                if len(part) == 1:
                    read.quarantined.append(Quarantined(
                        read.positions[first], f"the list refused it: {_refusal(error)}",
                        repr(part[0])[:EXCERPT],
                    ))  # fmt: skip
                    return 0
                middle = (first + last) // 2
                return attempt(first, middle) + attempt(middle, last)
            _add(summary, done)
            return len(part)

        if not read.records:
            return 0
        return attempt(0, len(read.records))

    def _failed(self, lease: Lease, row: Any, error: Exception) -> Fetched:
        """Record the failure (nothing of the fetch applied) and the backoff."""
        if isinstance(error, HashguardError):
            message = str(error)
        else:  # a plug-in's bug: its kind too, and the traceback in the log
            message = f"{type(error).__name__}: {error}"
            log.error("exchange %s: the %s plug-in failed", row.name, row.api, exc_info=error)
        message = _printable(message)[:ERROR_CHARS]
        at = self.clock()
        failures = int(row.failures) + 1
        due = at + backoff(int(row.interval_seconds), failures)
        with self.engine.begin() as connection:
            released = connection.execute(
                update(ExchangeRow)
                .where(_holds(lease))
                .values(fetch_completed_at=at, fetch_succeeded=False, last_error=message,
                        failures=failures, next_fetch_at=due, lease_until=None,
                        lease_holder=None)
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
        with lease.renewing:
            at = self.clock()
            if lease.until - at > self.lease / 2:
                return
            until = at + self.lease
            with self.engine.begin() as connection:
                changed = connection.execute(
                    update(ExchangeRow)
                    .where(_holds(lease))
                    .values(lease_until=until, next_fetch_at=until)
                ).rowcount  # fmt: skip
            if changed != 1:
                raise _Lost()
            lease.until = until

    def _held(self, connection: Connection, lease: Lease) -> None:
        """The exchange's row locked while this instance still holds its lease; else _Lost.

        Locked by writing it: on SQLite the sqlite3 module begins the transaction only at a
        write, and a savepoint taken before that would commit on its own when released (the
        records applied without the checkpoint that goes with them)."""
        held = connection.execute(
            update(ExchangeRow).where(_holds(lease)).values(lease_until=lease.until)
        ).rowcount
        if held != 1:
            raise _Lost()


def _holds(lease: Lease) -> ColumnElement[bool]:
    """The exchange's row while ``lease`` still holds it."""
    table = ExchangeRow.__table__
    return and_(table.c.id == lease.exchange_id, table.c.lease_until == lease.until,
                table.c.lease_holder == lease.holder)  # fmt: skip


def _dead_holder(row: Any, at: datetime) -> holder.Holder | None:
    """The holder of ``row``'s lease when the lease still holds at ``at`` but its holder is
    known to run no longer; else None."""
    if row.lease_until is None or utc(row.lease_until) <= at:
        return None
    held_by = holder.Holder.parse(row.lease_holder)
    return held_by if held_by is not None and held_by.gone() else None


def _running(name: str, row: Any) -> str:
    """Why the exchange ``name`` (its ``row``: lease_until, lease_holder) cannot be fetched
    now: who holds its lease, until when."""
    until = utc(row.lease_until).strftime("%Y-%m-%d %H:%M:%SZ") if row.lease_until else "?"
    held_by = holder.Holder.parse(row.lease_holder)
    if held_by is None:  # taken before holders were recorded
        return (f"exchange {name} is being fetched now (or was, by a process that died): its "
                f"lease holds until {until}; its status says when done")  # fmt: skip
    if held_by.running():
        return (f"exchange {name} is being fetched now by {held_by.describe()}, which is "
                f"running: its lease holds until {until}; its status says when done")  # fmt: skip
    return (f"exchange {name} is being fetched now by {held_by.describe()} (or was: whether "
            f"it still runs cannot be told from here), so it can be fetched again when that "
            f"lease ends, at {until}; its status says when done")  # fmt: skip


def _all_listable(records: list[Record]) -> bool:
    """Whether ``_refused`` refuses none of ``records``: every value already canonical for its
    listable signal (checked a signal at a time), every name within what a list keeps."""
    values: dict[str, list[str]] = {}
    for record in records:
        if isinstance(record, Withdrawal):
            continue
        values.setdefault(record.signal, []).append(record.value)
        provenance = getattr(record, "provenance", None)
        if provenance is not None and (
            len(provenance.submitted_by or "") > NAME_CHARS
            or len(provenance.assessed_by or "") > NAME_CHARS
        ):
            return False
    return all(all_canonical(signal, given) for signal, given in values.items())


def _refused(record: Record) -> str | None:
    """Why a record cannot be listed (its signal refuses its value, a name is longer than a
    list keeps), or None."""
    if isinstance(record, Withdrawal):
        return None
    try:
        canonical(record.signal, record.value)
    except InvalidRecord as error:
        return str(error)
    provenance = getattr(record, "provenance", None)
    for name in ("submitted_by", "assessed_by"):
        given = getattr(provenance, name, "") or ""
        if len(given) > NAME_CHARS:
            return (f"{name} is {len(given)} characters long; a list keeps names of at most "
                    f"{NAME_CHARS}")  # fmt: skip
    return None


def _add(summary: ImportSummary, done: ImportSummary) -> None:
    summary.added += done.added
    summary.updated += done.updated
    summary.unchanged += done.unchanged
    summary.removed += done.removed
    summary.unknown_tombstones += done.unknown_tombstones
    summary.version = done.version


def _refusal(error: Exception) -> str:
    """What the list or the database said refusing a record: one line, no SQL."""
    if isinstance(error, HashguardError):
        return str(error)
    cause = error.orig if isinstance(error, DataError) else error
    said = str(cause).strip().splitlines()
    return f"the database refused it ({said[0][:300] if said else type(cause).__name__})"


def _printable(text: str, keep: str = "") -> str:
    """``text`` with control characters but those in ``keep`` escaped (NUL, which PostgreSQL
    refuses, among them), so that what a record held can be kept and shown."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else ascii(c)[1:-1] for c in text)


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
