"""Under-18 cases referred to the hotline: ``POST victims_hotline_url`` with JSON (a random
referral id, counts, the hashes; never an image, nor the case number, which is kept nowhere),
written to an outbox in the case's own transaction and sent by the service's delivery thread
with an ``Idempotency-Key`` that is the same on every retry, backing off after failures like
the webhook calls. Without a hotline URL referrals are kept, waiting to be sent once one is
set."""

import json
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, Row, func, insert, select

from hashguard.review.webhook import post_json
from hashguard.store import outbox
from hashguard.store.tables import VictimReferralRow, utc
from hashguard.victims.model import SubmittedHash

log = logging.getLogger("hashguard.victims")


def enqueue(connection: Connection, case_id: int, hashes: Sequence[SubmittedHash]) -> None:
    """A referral of the case ``case_id`` with its hashes under a random referral id of its
    own, waiting to be sent."""
    now = datetime.now(UTC)
    counts: dict[str, int] = {}
    for submitted in hashes:
        counts[submitted.signal] = counts.get(submitted.signal, 0) + 1
    payload = {"referral": secrets.token_hex(16), "under_18": True,
               "counts": {"hashes": len(hashes), **counts},
               "hashes": [h.as_json() for h in hashes]}  # fmt: skip
    connection.execute(
        insert(VictimReferralRow).values(
            case_id=case_id, payload=json.dumps(payload, sort_keys=True),
            idempotency_key=secrets.token_hex(16), created_at=now, attempts=0,
            next_attempt_at=now, delivered_at=None, last_error="",
        )
    )  # fmt: skip


def waiting(engine: Engine) -> int:
    """How many referrals wait to be delivered."""
    table = VictimReferralRow.__table__
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).where(table.c.delivered_at.is_(None))).scalar_one())  # fmt: skip


def referrals(engine: Engine) -> list[dict[str, Any]]:
    """Every referral: its payload and delivery (for tests and operators)."""
    table = VictimReferralRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    return [{"payload": json.loads(r.payload), "attempts": r.attempts,
             "delivered_at": utc(r.delivered_at) if r.delivered_at else None,
             "last_error": r.last_error} for r in rows]  # fmt: skip


class ReferralSender:
    def __init__(self, engine: Engine, url: str, timeout: float = 10.0) -> None:
        self.engine = engine
        self.url = url
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send_due(self, now: datetime | None = None, limit: int = 100) -> int:
        """Send the referrals due (none without a URL); how many were delivered."""
        if not self.url:
            return 0
        return outbox.deliver_due(self.engine, VictimReferralRow, self._post,
                                  now or datetime.now(UTC), log,
                                  lambda row: f"hotline referral {row.id}",
                                  limit=limit)  # fmt: skip

    def _post(self, row: Row[Any]) -> str | None:
        """None when delivered, else why not."""
        headers = {"Idempotency-Key": row.idempotency_key,
                   "X-Hashguard-Event": "victims.referral"}  # fmt: skip
        return post_json(self.client, self.url, row.payload.encode(), headers)
