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
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import Connection, Engine, func, insert, select, update

from hashguard.review.webhook import failure_reason, status_reason
from hashguard.store.tables import VictimReferralRow, utc
from hashguard.victims.model import SubmittedHash

log = logging.getLogger("hashguard.victims")

_FIRST_RETRY: Final = 2.0
_LONGEST_RETRY: Final = 3600.0


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
        self.timeout = timeout

    def send_due(self, now: datetime | None = None, limit: int = 100) -> int:
        """Send the referrals due (none without a URL); how many were delivered."""
        if not self.url:
            return 0
        now = now or datetime.now(UTC)
        table = VictimReferralRow.__table__
        with self.engine.connect() as connection:
            due = connection.execute(
                select(table).where(table.c.delivered_at.is_(None),
                                    table.c.next_attempt_at <= now)
                .order_by(table.c.id).limit(limit)
            ).all()  # fmt: skip
        delivered = 0
        for row in due:
            error = self._post(row.payload, row.idempotency_key)
            attempts = row.attempts + 1
            if error is None:
                values: dict[str, Any] = {"attempts": attempts, "delivered_at": datetime.now(UTC),
                                          "last_error": ""}  # fmt: skip
                delivered += 1
            else:
                wait = timedelta(seconds=min(_FIRST_RETRY * 2 ** (attempts - 1), _LONGEST_RETRY))
                values = {"attempts": attempts, "last_error": error,
                          "next_attempt_at": datetime.now(UTC) + wait}  # fmt: skip
                log.warning("hotline referral %d: attempt %d failed (%s); next in %.0f s",
                            row.id, attempts, error, wait.total_seconds())  # fmt: skip
            with self.engine.begin() as connection:
                connection.execute(
                    update(VictimReferralRow).where(table.c.id == row.id).values(values)
                )
        return delivered

    def _post(self, body: str, key: str) -> str | None:
        """None when delivered, else why not."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   "X-Hashguard-Event": "victims.referral"}  # fmt: skip
        try:
            answer = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as error:
            return failure_reason(error)
        if 200 <= answer.status_code < 300:
            return None
        return status_reason(answer.status_code)
