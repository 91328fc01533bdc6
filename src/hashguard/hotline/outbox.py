"""What the hotline sends elsewhere: referrals to partner hotlines (and, later, the takedown
status of a case a partner referred here), reports to the police and to the international
endpoint. URLs, hashes, labels and traces, never content.

``enqueue`` writes a message in the caller's transaction (the routing that decided it), under a
random idempotency key that every retry sends again; ``deliver_due`` POSTs the due ones as JSON
with ``Authorization: Bearer KEY`` (the destination's key, read from its key file when sending,
never logged) and ``Idempotency-Key``, backing off after failures and keeping each failure's reason
(``store.outbox``, shared with the victims' referrals).
"""

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import Connection, Engine, Row, insert, select

from hashguard.errors import HashguardError
from hashguard.hotline.model import OutboxKind
from hashguard.review.webhook import post_json
from hashguard.store import outbox
from hashguard.store.tables import HotlineOutboxRow, utc

log = logging.getLogger("hashguard.hotline")


class Destination(Protocol):
    """Where a message goes (``hotline.partners``' Partner or Endpoint): the URL it is POSTed
    to, and the key sent as a Bearer token, read at each use (None: no key)."""

    @property
    def post_url(self) -> str: ...

    def key(self) -> str | None: ...


DestinationOf = Callable[[OutboxKind, str], Destination | None]
"""(kind, target) -> where to send; None when nothing is configured for it (kept, retried)."""


def enqueue(
    connection: Connection,
    case_id: int,
    kind: OutboxKind | str,
    target: str,
    payload: Mapping[str, Any],
) -> str:
    """A message about the case to ``target``, waiting to be sent once the caller's transaction
    commits; its idempotency key."""
    now = datetime.now(UTC)
    key = secrets.token_hex(16)
    connection.execute(
        insert(HotlineOutboxRow).values(
            case_id=case_id, kind=OutboxKind(kind).value, target=target,
            payload=json.dumps(dict(payload), sort_keys=True, separators=(",", ":")),
            idempotency_key=key, created_at=now, attempts=0, next_attempt_at=now,
            delivered_at=None, last_error="",
        )
    )  # fmt: skip
    return key


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    case_id: int
    kind: str
    target: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    delivered_at: datetime | None
    last_error: str


def messages(engine: Engine, case_id: int | None = None) -> list[Message]:
    """The outbox (a case's, or all), oldest first."""
    table = HotlineOutboxRow.__table__
    query = select(table).order_by(table.c.id)
    if case_id is not None:
        query = query.where(table.c.case_id == case_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [Message(r.id, r.case_id, r.kind, r.target, json.loads(r.payload), r.idempotency_key,
                    r.attempts, utc(r.delivered_at) if r.delivered_at else None, r.last_error)
            for r in rows]  # fmt: skip


def deliver_due(
    engine: Engine,
    destination_of: DestinationOf,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    limit: int = 100,
) -> int:
    """Attempt each message due at ``now``; the number delivered."""
    owned = client is None
    client = client or httpx.Client(timeout=10.0, follow_redirects=False)

    def send(row: Row[Any]) -> str | None:
        try:
            destination = destination_of(OutboxKind(row.kind), row.target)
            key = destination.key() if destination is not None else None
        except HashguardError as error:  # a partner no longer configured, a key file unusable
            return str(error)
        if destination is None:
            return f"no {row.kind} endpoint is configured for {row.target}"
        headers = {"Idempotency-Key": row.idempotency_key,
                   "X-Hashguard-Event": f"hotline.{row.kind}"}  # fmt: skip
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        url = destination.post_url
        if row.kind == OutboxKind.STATUS.value:  # to the referral it is about
            status_url = getattr(destination, "status_url", None)
            if status_url is None:
                return f"{row.target} takes no takedown status"
            url = status_url(str(json.loads(row.payload).get("referral", "")))
        return post_json(client, url, row.payload.encode(), headers)

    try:
        return outbox.deliver_due(engine, HotlineOutboxRow, send,
                                  now or datetime.now(UTC), log,
                                  lambda row: f"hotline {row.kind} {row.id} to {row.target}",
                                  limit=limit)  # fmt: skip
    finally:
        if owned:
            client.close()
