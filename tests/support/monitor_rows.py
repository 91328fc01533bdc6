"""Notices as the takedown workflow leaves them, inserted with known times, and the monitor's
figures computed from them by hand: for the monitor's tests and the page's."""

import itertools
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from hashguard.store.tables import TakedownEventRow, TakedownNoticeRow

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
_serial = itertools.count(1)


@dataclass(frozen=True)
class Made:
    """What the test inserted for a notice: the hand computation works from these alone."""

    hoster: str
    country: str | None
    kind: str
    state: str
    reported_at: datetime
    verified_at: datetime | None
    deadline_at: datetime | None
    renotices: int
    escalations: int
    disputed: bool
    reappeared: bool


def add(engine: Engine, hoster: str, country: str | None, reported_at: datetime,
        removed_after: float | None = None, *, kind: str = "notice", state: str | None = None,
        deadline: float = 24, renotices: int = 0, escalations: int = 0, disputed: bool = False,
        reappeared: bool = False) -> Made:  # fmt: skip
    """Insert a notice (and its reappeared event), as the takedown workflow leaves it."""
    verified = None if removed_after is None else reported_at + removed_after * HOUR
    state = state or ("removed" if verified else "open")
    deadline_at = reported_at + deadline * HOUR
    serial = next(_serial)
    with engine.begin() as connection:
        notice_id = connection.execute(insert(TakedownNoticeRow).values(
            case_id=None, kind=kind, parent_id=None, previous_id=None, hoster=hoster,
            country=country, abuse_email=f"abuse@{hoster}.example", abuse_api=None,
            cdn=kind == "cdn", urls=[f"https://{hoster}.example/{serial}.jpg"],
            items=[{"url": f"https://{hoster}.example/{serial}.jpg", "kind": "image",
                    "hashes": {"sha256": f"{serial:064x}"}, "labels": {}}],
            legal_basis="", reference="", issued_by="", state=state,
            report_id=str(uuid.uuid4()), document=json.dumps({"urls": [f"https://{hoster}.example/{serial}.jpg"]}),
            reported_at=reported_at, created_at=reported_at, sent_at=reported_at + HOUR / 6,
            deadline_at=deadline_at, acknowledged_at=None, claimed_at=None,
            disputed_at=reported_at + 2 * HOUR if disputed else None,
            dispute_reason="not ours" if disputed else "", verified_at=verified,
            withdrawn_at=reported_at + 3 * HOUR if state == "withdrawn" else None,
            outcome="", outcome_reason="", outcome_at=None, renotices=renotices,
            escalations=escalations, rechecks=0, next_action_at=None, lease_until=None,
            last_error="",
        ).returning(TakedownNoticeRow.id)).scalar_one()  # fmt: skip
        if reappeared:
            connection.execute(insert(TakedownEventRow).values(
                notice_id=notice_id, at=NOW - HOUR, kind="reappeared", actor="scheduler",
                detail={"notice": notice_id + 1000}))  # fmt: skip
    return Made(hoster, country, kind, state, reported_at, verified,
                deadline_at, renotices, escalations, disputed, reappeared)  # fmt: skip


def linear(values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between closest ranks, by hand."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def by_hand(made: Sequence[Made], now: datetime = NOW) -> dict[str, Any]:
    """The figures of ``made`` as the monitor defines them, computed here from the rows."""
    counted = [m for m in made if m.kind != "cdn"]
    hours = [(m.verified_at - m.reported_at) / HOUR for m in counted if m.verified_at]
    due = [m for m in counted if m.verified_at or (m.reported_at + 24 * HOUR <= now
                                                   and m.state != "withdrawn")]  # fmt: skip
    within = [m for m in due if m.verified_at and m.verified_at - m.reported_at <= 24 * HOUR]
    reappeared = sum(1 for m in counted if m.verified_at and m.reappeared)
    opened = [m for m in counted if m.state in ("queued", "open")]
    return {
        "notices": len(counted), "removed": len(hours),
        "median_hours": linear(hours, 0.5) if hours else None,
        "p90_hours": linear(hours, 0.9) if hours else None,
        "p99_hours": linear(hours, 0.99) if hours else None,
        "within_24h": len(within) / len(due) if due else None,
        "open_now": len(opened),
        "overdue_now": sum(1 for m in opened if m.deadline_at and m.deadline_at < now),
        "renotices": sum(m.renotices for m in counted),
        "escalations": sum(m.escalations for m in counted),
        "reappeared": reappeared,
        "reappearance_rate": reappeared / len(hours) if hours else None,
        "disputes": sum(1 for m in counted if m.disputed),
    }  # fmt: skip


def assert_row(row: Any, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = getattr(row, name)
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-9, abs=1e-6), (row.group, name)
        else:
            assert got == value, (row.group, name)


def fleet(engine: Engine) -> list[Made]:
    """Hoster "fast" (NL) removes 12 of 14 quickly; "slow" (DE) takes days, is re-noticed and
    escalated; "cdn" fronts some (its notices not counted); "small" (no country) has 3."""
    made = []
    start = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    for n in range(12):  # within an hour to a day, a few reappearing
        made.append(add(engine, "fast", "NL", start + n * 37 * HOUR, 0.5 + n * 2.25,
                        reappeared=n in (2, 5), renotices=n // 11))  # fmt: skip
    made.append(add(engine, "fast", "NL", NOW - 2 * HOUR))  # open, 24 h not passed yet
    made.append(add(engine, "fast", "NL", start + 2 * HOUR, disputed=True, state="withdrawn"))
    for n in range(11):
        made.append(add(engine, "slow", "DE", start + n * 50 * HOUR, 30 + n * 70.5,
                        renotices=1 + n // 3, escalations=n // 4,
                        disputed=n == 4))  # fmt: skip
    made.append(add(engine, "slow", "DE", NOW - 72 * HOUR, renotices=2, escalations=1))  # overdue
    made.append(add(engine, "slow", "DE", NOW - 30 * HOUR, kind="order", deadline=48))  # open
    made.append(add(engine, "slow", "DE", NOW - 300 * HOUR, 400, kind="order"))
    for n in range(4):  # CDN notices: forwarded, never counted
        made.append(add(engine, "cdn", "US", start + n * HOUR, kind="cdn", state="forwarded"))
    made.append(add(engine, "cdn", "US", start, 1, kind="cdn"))
    for n in range(3):
        made.append(add(engine, "small", None, start + n * 100 * HOUR, 5 + n))
    return made
