"""An append-only, hash-chained audit log in the database (floor 3).

Event n holds ``hash = SHA-256(canonical JSON of {seq, at, actor, action, subject, details,
prev})`` where ``prev`` is event n-1's hash (64 zeros before the first). A one-row head holds
the newest number and hash. ``verify`` recomputes the chain from the first event: an edited
event no longer gives its hash, a removed or reordered one breaks the numbering or the chain,
and a log cut short no longer reaches the head. Someone who can rewrite the whole database can
rewrite the chain too; a head recorded elsewhere (``verify(known=...)``) catches that.

Events are appended on the caller's connection, inside the transaction of the change they
record, so a change and its event are committed together or not at all.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from hashguard.errors import Unverified
from hashguard.store.tables import AuditEventRow, AuditHeadRow

GENESIS: Final = "0" * 64


class AuditError(Unverified):
    """The audit log does not verify; the message names the first event that fails."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: str
    actor: str
    action: str  # e.g. "list.create", "list.import", "key.create"
    subject: str  # what it acted on, e.g. a list's name
    details: str  # canonical JSON
    prev_hash: str
    hash: str


def event_hash(
    seq: int, at: str, actor: str, action: str, subject: str, details: str, prev: str
) -> str:
    body = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
            "details": details, "prev": prev}  # fmt: skip
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    connection: Connection,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the connection's current transaction. Updating the head first takes
    its lock (a row lock on PostgreSQL, the write lock on SQLite), so appends never fork."""
    head_row = AuditHeadRow.__table__
    connection.execute(update(AuditHeadRow).where(head_row.c.id == 1).values(seq=head_row.c.seq))
    seq, prev = connection.execute(select(head_row.c.seq, head_row.c.hash)).one()
    seq += 1
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    text = json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)  # fmt: skip
    digest = event_hash(seq, at, actor, action, subject, text, prev)
    event = AuditEvent(seq, at, actor, action, subject, text, prev, digest)
    connection.execute(
        insert(AuditEventRow).values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=text,
            prev_hash=prev,
            hash=digest,
        )
    )
    connection.execute(update(AuditHeadRow).where(head_row.c.id == 1).values(seq=seq, hash=digest))
    return event


def head(engine: Engine) -> tuple[int, str]:
    """The newest event's number and hash (0 and 64 zeros for an empty log): record it
    elsewhere to detect a rewrite later."""
    table = AuditHeadRow.__table__
    with engine.connect() as connection:
        seq, digest = connection.execute(select(table.c.seq, table.c.hash)).one()
    return int(seq), str(digest)


def last_details(engine: Engine, action: str) -> Any:
    """The details of the newest event of ``action``, or None if there is none."""
    table = AuditEventRow.__table__
    query = (
        select(table.c.details)
        .where(table.c.action == action)
        .order_by(table.c.seq.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        text = connection.execute(query).scalar_one_or_none()
    return None if text is None else json.loads(text)


def events(
    engine: Engine,
    after: int = 0,
    limit: int = 100,
    subjects: Sequence[str] | None = None,
    action: str | None = None,
) -> list[AuditEvent]:
    """Events numbered above ``after``, oldest first, at most ``limit``; only those about
    ``subjects``, and of ``action``, when given."""
    table = AuditEventRow.__table__
    query = select(table).where(table.c.seq > after).order_by(table.c.seq).limit(limit)
    if subjects is not None:
        query = query.where(table.c.subject.in_(list(subjects)))
    if action is not None:
        query = query.where(table.c.action == action)
    with engine.connect() as connection:
        return [AuditEvent(*row) for row in connection.execute(query)]


def verify(engine: Engine, known: tuple[int, str] | None = None) -> int:
    """Check the whole chain; the number of events. Raises AuditError naming the first event
    that is edited, missing or out of place, or a head the log does not reach."""
    table = AuditEventRow.__table__
    expected_seq, prev = 1, GENESIS
    hashes_at_known: str | None = None
    with engine.connect() as connection:
        head_seq, head_hash = connection.execute(
            select(AuditHeadRow.__table__.c.seq, AuditHeadRow.__table__.c.hash)
        ).one()
        rows = connection.execution_options(yield_per=5000).execute(
            select(table).order_by(table.c.seq)
        )
        for row in rows:
            event = AuditEvent(*row)
            if event.seq != expected_seq:
                raise AuditError(
                    f"event {expected_seq} is missing (the next one is {event.seq}): removed"
                )
            if event.prev_hash != prev:
                raise AuditError(
                    f"event {event.seq} does not follow event {event.seq - 1} "
                    "(removed, inserted or reordered)"
                )
            recomputed = event_hash(event.seq, event.at, event.actor, event.action,
                                    event.subject, event.details, event.prev_hash)  # fmt: skip
            if recomputed != event.hash:
                raise AuditError(
                    f"event {event.seq} ({event.action} {event.subject}) was edited: "
                    "it no longer gives its hash"
                )
            if known is not None and event.seq == known[0]:
                hashes_at_known = event.hash
            prev, expected_seq = event.hash, expected_seq + 1
    count = expected_seq - 1
    if (count, prev) != (head_seq, head_hash):
        raise AuditError(
            f"the log ends at event {count}, its head says {head_seq}: events were removed "
            "from the end, or the head was edited"
        )
    if known is not None and known[0] > 0 and hashes_at_known != known[1]:
        raise AuditError(f"event {known[0]} is not the one recorded earlier: the log was rewritten")
    return count
