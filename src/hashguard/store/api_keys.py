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
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from hashguard.errors import Invalid
from hashguard.store import audit
from hashguard.store.tables import ApiKeyRow, HashListRow, ServiceRow, utc

log = logging.getLogger("hashguard.store")
_TOKEN: Final = re.compile(r"hg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
KEYS_CHANNEL: Final = "hashguard_keys"  # PostgreSQL's notification of a revoked key


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

    def revoke(self, ident: str, actor: str = "") -> ApiKey:
        """Revoke a key at once (running services are told: ``KeyWatch``). Raises ApiKeyError
        if there is no such live key."""
        with Session(self.engine) as session, session.begin():
            if self.engine.dialect.name == "postgresql":  # delivered at the commit
                session.execute(text(f"NOTIFY {KEYS_CHANNEL}"))
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
            return _key(row)

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
    """Whether keys may have been revoked since last asked, by any process, cheaply enough to
    ask on every request (a service caches keys; a revocation must hold for the next request).
    SQLite: ``PRAGMA data_version`` on a connection of its own, which changes with every commit
    of any other connection. PostgreSQL: a connection of its own LISTENs for the NOTIFY that
    ``revoke`` sends in its transaction, and each call reads what has reached its socket (no
    round trip to the server; the notification is sent as the revocation commits, so only a
    request racing the commit within the server's hand-over, well under a millisecond, can
    slip through). Any other database, or a watch that failed: None (the cache's time bound
    then holds)."""

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._dialect = engine.dialect.name
        self._connection: Any = None
        self._version: int | None = None
        try:
            if self._dialect == "sqlite":
                self._connection = engine.raw_connection()
                self._version = self._data_version()
            elif self._dialect == "postgresql":
                self._connection = engine.raw_connection()
                self._connection.driver_connection.autocommit = True
                self._connection.driver_connection.execute(f"LISTEN {KEYS_CHANNEL}")
        except Exception:  # no watch: the time bound holds
            log.warning("cannot watch for revoked keys; the key cache's bound holds instead")
            self.close()

    def changed(self) -> bool | None:
        """True when keys may have changed since the last call, False when they have not,
        None when that is not known."""
        with self._lock:
            if self._connection is None:
                return None
            try:
                if self._dialect == "sqlite":
                    version = self._data_version()
                    changed, self._version = version != self._version, version
                    return changed
                pgconn = self._connection.driver_connection.pgconn
                pgconn.consume_input()  # what has arrived, without waiting
                notified = False
                while pgconn.notifies() is not None:
                    notified = True
                return notified
            except Exception:  # the connection is gone: the time bound holds from now on
                log.warning("stopped watching for revoked keys; the key cache's bound holds")
                self._close()
                return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                # Closed, not returned to the pool: it is listening, in autocommit.
                self._connection.invalidate()
        self._connection = None

    def _data_version(self) -> int:
        return int(self._connection.driver_connection.execute("PRAGMA data_version").fetchone()[0])
