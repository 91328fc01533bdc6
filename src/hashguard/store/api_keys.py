"""API keys for the service: created with a role and optionally limited to lists, shown once,
stored as the SHA-256 of their secret, checked in constant time, revocable; every creation and
revocation is in the audit log (never the secret).

A key reads ``hg_<id>_<secret>``: the id (public, 16 hex digits) finds the row, the secret (32
random bytes, URL-safe base64) proves possession. A random 256-bit secret needs no slow hash.
"""

import contextlib
import hashlib
import hmac
import logging
import os
import queue
import re
import secrets
import select as selecting
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.orm import Session

from hashguard.errors import Invalid
from hashguard.store import audit
from hashguard.store.tables import ApiKeyRow, HashListRow, ServiceRow, utc

log = logging.getLogger("hashguard.store")
_TOKEN: Final = re.compile(r"hg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
KEYS_CHANNEL: Final = "hashguard_keys"  # PostgreSQL's notification of changed keys
TAKEN_CHANNEL: Final = "hashguard_keys_taken"  # a watch's confirmation that it took a change
WATCH_NAME: Final = "hashguard key watch"  # the watch's connection, in pg_stat_activity
CONFIRM_SECONDS: Final = 5.0  # how long a revocation waits for running services to confirm


class Role(StrEnum):
    ADMIN = "admin"  # keys, configuration, everything
    CURATOR = "curator"  # lists: create, import, change, release
    MATCHER = "matcher"  # hash and match
    REVIEWER = "reviewer"  # the review desk
    AUDITOR = "auditor"  # read-only: lists, logs, audit
    DEVICE = "device"  # on-device checks: OPRF evaluations only, rate-limited per key
    ANALYST = "analyst"  # the hotline: reports, assessment, traces, routing
    PARTNER = "partner"  # a partner hotline: sends referrals (POST /v1/hotline/referrals)
    HOSTER = "hoster"  # a hosting provider: its own notices and orders, re-upload checks
    AUTHORITY = "authority"  # a competent authority: issues removal orders


class ApiKeyError(Invalid):
    """A key operation that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """A running service's watch that did not confirm a revocation in time: its PostgreSQL
    connection (``pid`` in pg_stat_activity) and the address it connected from."""

    pid: int
    address: str | None

    def __str__(self) -> str:
        return f"connection {self.pid}" + (f" from {self.address}" if self.address else "")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: Role
    lists: tuple[str, ...]  # empty: every list
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    service: str | None = None  # the service whose uploads a matcher key checks
    hoster: str | None = None  # the hoster a hoster key speaks for

    def may_use(self, list_name: str) -> bool:
        return not self.lists or list_name in self.lists


class ApiKeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        role: Role,
        lists: Iterable[str] = (),
        name: str = "",
        actor: str = "",
        service: str | None = None,
        hoster: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token, which is not stored: show it once. With ``service``, the
        key's matches open detections for that service's review; a hoster key names the
        ``hoster`` (as the hotline's registry names it) whose notices it sees. Raises
        ApiKeyError for a list or service that does not exist, a hoster key without its
        hoster, or a hoster named for a key of another role."""
        role = Role(role)
        hoster = hoster.strip() if hoster is not None else None
        if role is Role.HOSTER and not hoster:
            raise ApiKeyError("a hoster key names its hoster (--hoster NAME, as the hotline's "
                              "registry of hosters names it)")  # fmt: skip
        if role is not Role.HOSTER and hoster:
            raise ApiKeyError(f"only a hoster key names a hoster, not a {role.value} key")
        scope = tuple(dict.fromkeys(lists))
        ident = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            if scope:
                known = set(
                    session.scalars(select(HashListRow.name).where(HashListRow.name.in_(scope)))
                )
                missing = [name for name in scope if name not in known]
                if missing:
                    raise ApiKeyError(f"no list named {missing[0]!r}: a key can only be limited "
                                    "to existing lists")  # fmt: skip
            if (
                service is not None
                and session.scalar(select(ServiceRow.id).where(ServiceRow.name == service)) is None
            ):
                raise ApiKeyError(f"no service named {service!r} (hashguard services create)")
            session.add(
                ApiKeyRow(
                    id=ident,
                    secret_hash=_digest(secret),
                    role=role.value,
                    lists=list(scope),
                    name=name,
                    created_at=now,
                    service=service,
                    hoster=hoster,
                )
            )
            session.flush()
            details = {"role": role.value, "lists": list(scope), "name": name}
            if service is not None:
                details["service"] = service
            if hoster is not None:
                details["hoster"] = hoster
            audit.append(session.connection(), actor, "key.create", ident, details)
            tell_watchers(session.connection())
        key = ApiKey(ident, role, scope, name, now, None, service, hoster)
        return key, f"hg_{ident}_{secret}"

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key ``token`` is, or None (malformed, unknown, wrong secret, revoked)."""
        found = _TOKEN.fullmatch(token.strip())
        if found is None:
            return None
        ident, secret = found.groups()
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, ident)
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.secret_hash, _digest(secret)):
                return None
            return _key(row)

    def revoke(
        self, ident: str, actor: str = "", confirm_seconds: float = CONFIRM_SECONDS
    ) -> tuple[ApiKey, tuple[Unconfirmed, ...] | None]:
        """Revoke a key at once: the revoked key, and the running services (their
        ``KeyWatch``) that did not confirm within ``confirm_seconds`` that they took it (None:
        that could not be found out). On PostgreSQL this returns once every watch up when the
        revocation committed has emptied its key cache, so the very next request to any of
        those services is refused; one that did not confirm in time, or whose watch was down,
        holds it within its key cache's time bound. On SQLite each service reads the change on
        its next request: nothing to wait for. Raises ApiKeyError if there is no such live
        key."""
        change = secrets.token_hex(8)
        with _Confirmations(self.engine, change) as confirmations:
            with Session(self.engine) as session, session.begin():
                tell_watchers(session.connection(), change)
                now = datetime.now(UTC)
                changed = session.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == ident, ApiKeyRow.revoked_at.is_(None))
                    .values(revoked_at=now)
                ).rowcount  # type: ignore[attr-defined]
                if not changed:
                    raise ApiKeyError(f"no live key {ident!r}")
                audit.append(session.connection(), actor, "key.revoke", ident, {})
                row = session.get(ApiKeyRow, ident)
                assert row is not None
                key = _key(row)
                confirmations.before_commit(session.connection())
            return key, confirmations.wait(confirm_seconds)

    def all(self) -> list[ApiKey]:
        with Session(self.engine) as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_key(row) for row in rows]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.id,
        Role(row.role),
        tuple(row.lists),
        row.name,
        utc(row.created_at),
        utc(row.revoked_at) if row.revoked_at is not None else None,
        row.service,
        row.hoster,
    )


class KeyWatch:
    """Whether keys may have changed since last asked (created, revoked, their scope changed),
    by any process, cheaply enough to ask on every request (a service caches keys; a
    revocation must hold for the next request).

    SQLite: ``PRAGMA data_version`` on a connection of its own, which changes with every commit
    of any other connection (the match log's, the audit's, a delivery's); only when it moved,
    the count of key changes that every change to keys moves in its transaction
    (``tell_watchers``, SQLite's user version) tells whether the keys did.
    PostgreSQL: a connection of its own LISTENs for the NOTIFY that every change to the keys
    table sends in its transaction (``tell_watchers``). A thread of the watch reads what
    reaches its socket as it arrives, and each call answers what the thread took (no round
    trip, no read of the socket per call). PostgreSQL hands a notification over a little
    after the commit (a median 30 us, 10 ms and more on a loaded machine), so a revocation
    waits for the watches to confirm: once the thread has taken a change that asks for it (its
    payload, the change's id), it answers on ``TAKEN_CHANNEL`` (``ApiKeyStore.revoke``
    listens), and the next call answers True whatever came between (the watch gone down).

    A link that goes silent (a partition, a host gone, a firewall dropping it) says nothing
    itself, so every ``beat_seconds`` a call sends a round trip (``SELECT 1``) on the watch's
    connection, whose answer the thread takes: what the server sent before it has arrived. No
    answer within ``beat_seconds``: the watch is down. While no round trip has been answered
    for twice ``beat_seconds`` (a service idle for long, a round trip on its way), the watch
    answers None.

    A watch whose connection fails is down: it answers None (the cache's time bound holds) and
    connects again in a thread of its own, tried at most every ``retry_seconds`` (by
    ``clock``) from a call; the first call once it is back answers True (what changed while it
    was down is unknown). Any other database: None."""

    def __init__(
        self,
        engine: Engine,
        retry_seconds: float = 5.0,
        beat_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._retry_seconds = retry_seconds
        self._beat_seconds = beat_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._dialect = engine.dialect.name
        self._connection: Any = None
        self._seen: tuple[Any, ...] = ()  # SQLite: the data version and the count of key changes
        self._heard = 0.0  # PostgreSQL: when the last round trip answered was sent
        self._beat_sent: float | None = None  # PostgreSQL: when the round trip on its way was
        self._retry_at: float | None = None  # down: when to connect again (None: never)
        self._connecting = False
        self._back = False  # connected again: the next call answers True
        self._closed = False
        self._told = False  # PostgreSQL: a change taken, not yet answered by a call
        self._pid = 0  # PostgreSQL: the watch connection's backend, named in confirmations
        self._confirmer: _Confirmer | None = None  # PostgreSQL: sends the confirmations
        self._reading = True  # False once PostgreSQL's reading thread has stopped
        self._wake_read, self._wake_write = -1, -1  # PostgreSQL: the reading thread's wake-up
        self.lost = 0  # times the watch went down
        if self._dialect == "postgresql":  # before connecting: it may take a change at once
            self._confirmer = _Confirmer(engine)
            self._wake_read, self._wake_write = os.pipe()
            os.set_blocking(self._wake_read, False)
            os.set_blocking(self._wake_write, False)
        if self._dialect in ("sqlite", "postgresql"):
            self._reconnect()
        if self._dialect == "postgresql":
            threading.Thread(target=self._read_as_it_arrives, name="hashguard-key-watch-reader",
                             daemon=True).start()  # fmt: skip

    @property
    def watching(self) -> bool:
        """Whether the watch is up (False: the key cache's time bound holds)."""
        return self._connection is not None

    def changed(self) -> bool | None:
        """True when keys may have changed since the last call, False when they have not,
        None when that is not known."""
        with self._lock:
            if self._told:  # taken and perhaps confirmed: holds even if the watch went down
                self._told = False
                return True
            if self._connection is None or not self._reading:
                due = self._retry_at is not None and self._clock() >= self._retry_at
                if due and not self._connecting and not self._closed and self._reading:
                    self._connecting = True
                    threading.Thread(target=self._reconnect, name="hashguard-key-watch",
                                     daemon=True).start()  # fmt: skip
                return None
            if self._back:
                self._back = False
                return True
            try:
                if self._dialect == "sqlite":
                    return self._sqlite_changed()
                return self._beat()
            except Exception:
                log.warning("lost the watch for changed keys; the key cache's bound holds "
                            "until it is back")  # fmt: skip
                self._down()
                return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            _dropped(self._connection)
            self._connection = None
            self._wake()

    def _wake(self) -> None:
        """PostgreSQL, under the lock: the reading thread looks again at which connection to
        read (it changed, or the watch closed)."""
        if self._wake_write >= 0:
            with contextlib.suppress(BlockingIOError):  # already woken: it will look again
                os.write(self._wake_write, b".")

    def _read_as_it_arrives(self) -> None:
        """PostgreSQL, in a thread of its own until the watch closes: take what reaches the
        watch's connection as it arrives (``_take``)."""
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    connection = self._connection
                    socket = _socket_of(connection)
                poller = selecting.poll()  # unlike select(), any descriptor number
                poller.register(self._wake_read, selecting.POLLIN)
                if socket is not None:
                    poller.register(socket, selecting.POLLIN)
                events = dict(poller.poll())
                if self._wake_read in events:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_read, 4096)
                with self._lock:
                    if socket in events and connection is self._connection:
                        try:
                            if events[socket] & (selecting.POLLERR | selecting.POLLNVAL):
                                raise ConnectionError("the key watch's socket failed")
                            self._take()
                        except Exception:
                            log.warning("lost the watch for changed keys; the key cache's "
                                        "bound holds until it is back")  # fmt: skip
                            self._down()
        except Exception:
            log.exception("the watch for changed keys stopped; the key cache's bound holds")
        finally:
            with self._lock:
                self._reading = False
                _dropped(self._connection)  # nobody reads it: not named as a watch any more
                self._connection, self._retry_at = None, None
                if self._confirmer is not None:
                    self._confirmer.close()
                os.close(self._wake_read)
                os.close(self._wake_write)
                self._wake_read, self._wake_write = -1, -1

    def _reconnect(self) -> None:
        """Connect (outside the lock: it may take long), then be up, or down again."""
        connection: Any = None
        seen: tuple[int, ...] = ()  # SQLite's versions (PostgreSQL's watch keeps none)
        try:
            connection = self._engine.raw_connection()
            driver = connection.driver_connection
            if self._dialect == "sqlite":
                seen = _sqlite_seen(driver)
            else:
                driver.autocommit = True
                # Through libpq: a notification that comes with an answer stays where _take
                # reads it. Named once it listens: a revocation waits for the watches it finds
                # by name (pg_stat_activity).
                from psycopg.pq import ExecStatus

                for command in (f"LISTEN {KEYS_CHANNEL}", f"SET application_name = '{WATCH_NAME}'"):
                    done = driver.pgconn.exec_(command.encode())
                    if done.status != ExecStatus.COMMAND_OK:
                        raise ConnectionError(f"{command}: {done.error_message!r}")
        except Exception:
            _dropped(connection)
            log.warning("cannot watch for changed keys; the key cache's bound holds (trying "
                        "again in %g s)", self._retry_seconds)  # fmt: skip
            with self._lock:
                self._connecting = False
                self._retry_at = self._clock() + self._retry_seconds
            return
        with self._lock:
            self._connecting = False
            if self._closed or not self._reading:  # nobody would read it
                _dropped(connection)
                return
            self._connection, self._seen = connection, seen
            self._heard, self._beat_sent = self._clock(), None
            self._back = self._retry_at is not None  # a first connection has missed nothing
            self._retry_at = None
            if self._dialect == "postgresql":
                self._pid = connection.driver_connection.pgconn.backend_pid
                try:
                    self._take()  # what came with the answers above
                except Exception:
                    self._down()
            self._wake()

    def _down(self) -> None:
        _dropped(self._connection)
        self._connection = None
        self.lost += 1
        self._retry_at = self._clock() + self._retry_seconds
        self._wake()

    def _sqlite_changed(self) -> bool:
        driver = self._connection.driver_connection
        if driver.execute("PRAGMA data_version").fetchall()[0][0] == self._seen[0]:
            return False  # no other connection committed
        seen, self._seen = self._seen, _sqlite_seen(driver)
        return seen[1:] != self._seen[1:]

    def _beat(self) -> bool | None:
        """PostgreSQL, under the lock: a round trip sent every ``beat_seconds`` (the reading
        thread takes its answer), and whether the link is known to carry what the server
        sends."""
        now = self._clock()
        pgconn = self._connection.driver_connection.pgconn
        if self._beat_sent is not None:
            pgconn.flush()  # what a non-blocking connection could not send at once
            if now - self._beat_sent > self._beat_seconds:
                # The answer may have come while the process was paused (stopped, swapped
                # out), before the reading thread could run: read it before calling it lost.
                self._take()
            if self._beat_sent is not None and now - self._beat_sent > self._beat_seconds:
                raise ConnectionError(
                    f"the key watch's round trip went unanswered for {self._beat_seconds:g} s"
                )
        elif now - self._heard >= self._beat_seconds:
            pgconn.send_query(b"SELECT 1")  # a few bytes: never waits for the socket
            self._beat_sent = now
        return False if now - self._heard <= 2 * self._beat_seconds else None

    def _take(self) -> None:
        """PostgreSQL, in the reading thread, under the lock: read what has reached the
        watch's connection, without waiting: the answer to its round trip, and the changes
        notified (told to the next call; those that ask for it, to be confirmed)."""
        driver = self._connection.driver_connection
        pgconn = driver.pgconn
        pgconn.consume_input()
        if driver.closed:  # the server ended the connection, saying so
            raise ConnectionError("the key watch's connection is closed")
        if self._beat_sent is not None and _answered(pgconn):
            self._heard, self._beat_sent = self._beat_sent, None
        while (notified := pgconn.notifies()) is not None:
            self._told = True
            change = notified.extra.decode() if isinstance(notified.extra, bytes) else ""
            if change and self._confirmer is not None:
                self._confirmer.confirm(change, self._pid)


def _answered(pgconn: Any) -> bool:
    """Whether the query sent on ``pgconn`` has been answered in full, read from what has
    arrived (never waits)."""
    while not pgconn.is_busy():
        if pgconn.get_result() is None:
            return True
    return False


# SQLite: every change to keys counts itself in the database header's user version (an integer
# SQLite keeps for the application, written in the change's transaction): read in O(1), whatever
# the number of keys. A signed 32-bit integer: counted modulo 2**31.
_KEYS_COUNTED: Final = 2**31


def _sqlite_seen(driver: Any) -> tuple[int, int]:
    """SQLite's data version, then the keys' count of changes: in this order, a change
    committed between the two shows in the count, and the next call finds it unchanged."""
    version = driver.execute("PRAGMA data_version").fetchall()[0][0]
    return version, driver.execute("PRAGMA user_version").fetchall()[0][0]


def tell_watchers(connection: Connection, change: str = "") -> None:
    """Keys change in the caller's transaction: running services' ``KeyWatch`` is told as it
    commits (PostgreSQL: a NOTIFY, whose payload ``change``, when given, asks each watch to
    confirm it on ``TAKEN_CHANNEL``; SQLite: the count of key changes moves)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :change)"),
                           {"channel": KEYS_CHANNEL, "change": change})  # fmt: skip
    elif connection.dialect.name == "sqlite":
        counted = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA user_version = {(counted + 1) % _KEYS_COUNTED}")


def _socket_of(connection: Any) -> int | None:
    """The socket of a watch's PostgreSQL connection, or None (none, or closed)."""
    if connection is None:
        return None
    try:
        return int(connection.driver_connection.pgconn.socket)
    except Exception:  # closed: psycopg says so by raising
        return None


class _Confirmer:
    """PostgreSQL: a watch's confirmations of the changes it took (``TAKEN_CHANNEL``), sent
    from a thread of its own on a connection of its own, so a slow or broken link never holds
    up the reading of notifications; a connection gone stale (a restart) is replaced once per
    confirmation."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()
        threading.Thread(target=self._send_all, name="hashguard-key-watch-confirmer",
                         daemon=True).start()  # fmt: skip

    def confirm(self, change: str, pid: int) -> None:
        """Tell the revocation ``change`` that the watch of connection ``pid`` took it."""
        self._queue.put((change, pid))

    def close(self) -> None:
        self._queue.put(None)

    def _send_all(self) -> None:
        connection: Any = None
        try:
            while (confirmation := self._queue.get()) is not None:
                connection = self._send(connection, *confirmation)
        finally:
            _closed(connection)

    def _send(self, connection: Any, change: str, pid: int) -> Any:
        """The confirmation sent; the connection to send the next one on (None: open one)."""
        for _ in range(2):
            try:
                if connection is None:  # a new one: an idle one of the pool may be dead
                    engine = self._engine
                    arguments, options = engine.dialect.create_connect_args(engine.url)
                    connection = engine.dialect.connect(*arguments, **options)
                    connection.autocommit = True
                connection.execute("SELECT pg_notify(%s, %s)", (TAKEN_CHANNEL, f"{change} {pid}"))
                return connection
            except Exception:
                _closed(connection)
                connection = None
        log.warning("could not confirm a change to keys: its revocation waits for this service "
                    "until its wait ends")  # fmt: skip
        return None


class _Confirmations:
    """PostgreSQL: the confirmations of a change by the running services' watches
    (``KeyWatch``), listened for from before the change commits, on a connection of its own.
    Any other database: nothing to wait for."""

    def __init__(self, engine: Engine, change: str) -> None:
        self._engine = engine
        self._change = change
        self._postgresql = engine.dialect.name == "postgresql"
        self._connection: Any = None
        self._waiting: dict[int, Unconfirmed] | None = None  # the watches named at the commit

    def __enter__(self) -> "_Confirmations":
        if self._postgresql:
            try:
                self._connection = self._engine.raw_connection()
                driver = self._connection.driver_connection
                driver.autocommit = True
                driver.execute(f"LISTEN {TAKEN_CHANNEL}")
            except Exception:
                log.warning("cannot listen for the services' confirmations")
                _dropped(self._connection)
                self._connection = None
        return self

    def __exit__(self, *raised: object) -> None:
        _dropped(self._connection)

    def before_commit(self, connection: Connection) -> None:
        """In the change's transaction: the watches to wait for, those named now. A watch is
        named once it listens, so each of them will be told of the change. Other roles'
        sessions show their pid and name too."""
        if self._connection is None:
            return
        rows = connection.execute(
            text("SELECT pid, host(client_addr) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND application_name = :name"),
            {"name": WATCH_NAME},
        ).all()  # fmt: skip
        self._waiting = {int(pid): Unconfirmed(int(pid), address) for pid, address in rows}

    def wait(self, seconds: float) -> tuple[Unconfirmed, ...] | None:
        """Once the change has committed: the watches that did not confirm it within
        ``seconds`` (one whose connection ends meanwhile is not waited for: its service holds
        the change within its key cache's time bound); None when that could not be found
        out."""
        if not self._postgresql:
            return ()
        if self._connection is None or self._waiting is None:
            return None
        waiting, gone = self._waiting, dict[int, Unconfirmed]()
        driver = self._connection.driver_connection
        deadline = time.monotonic() + seconds
        try:
            while waiting and (left := deadline - time.monotonic()) > 0:
                for notified in driver.notifies(timeout=min(left, 1.0), stop_after=1):
                    self._confirmed(notified.payload, waiting, gone)
                if waiting:  # a watch whose connection ended will never confirm: not waited for
                    present = {row[0] for row in driver.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                        "AND pid = ANY(%s)", (WATCH_NAME, list(waiting)))}  # fmt: skip
                    gone.update((pid, waiting.pop(pid)) for pid in set(waiting) - present)
            # Its confirmer may confirm after the watch's own connection ended (a service that
            # stops), and a confirmation that came during the query above waits in the backlog.
            for notified in driver.notifies(timeout=0):
                self._confirmed(notified.payload, waiting, gone)
        except Exception:
            log.warning("lost the wait for the services' confirmations")
            return None
        return tuple(sorted([*waiting.values(), *gone.values()], key=lambda late: late.pid))

    def _confirmed(self, payload: str, *unconfirmed: dict[int, Unconfirmed]) -> None:
        """A confirmation ``payload`` ("CHANGE PID") received: that watch, if it confirms this
        change, is no longer unconfirmed."""
        change, _, pid = payload.partition(" ")
        if change == self._change and pid.isdigit():
            for watches in unconfirmed:
                watches.pop(int(pid), None)


def _closed(connection: Any) -> None:
    """A driver's connection closed, if any."""
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def _dropped(connection: Any) -> None:
    """A watch's connection closed, not returned to the pool (it listens, in autocommit)."""
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.invalidate()
