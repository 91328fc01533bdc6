"""The bad-hoster monitor's figures equal the figures computed by hand from the notices this test
inserts with known times (SQLite and PostgreSQL): hours from report to verified removal and
their quantiles (linear between ranks), the share within 24 h of the notices whose 24 h have
passed or that were removed, open and overdue now, re-notices, escalations, reappearance,
disputes; CDN notices left out; the period on reported_at; the public figures suppressing what
is under 10; the distribution and the monthly trend; a signed evidence bundle that verifies
and breaks when altered; CSV."""

import csv as csv_module
import io
import itertools
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert

from hashguard.errors import Invalid
from hashguard.store.tables import (
    TakedownCheckRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
)
from hashguard.takedown import signing
from hashguard.takedown.monitor import Monitor, UnknownHoster, csv, parse_moment

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


def by_hand(made: Sequence[Made]) -> dict[str, Any]:
    counted = [m for m in made if m.kind != "cdn"]
    hours = [(m.verified_at - m.reported_at) / HOUR for m in counted if m.verified_at]
    due = [m for m in counted if m.verified_at or (m.reported_at + 24 * HOUR <= NOW
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
        "overdue_now": sum(1 for m in opened if m.deadline_at and m.deadline_at < NOW),
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


@pytest.fixture
def monitor(engine: Engine) -> Monitor:
    return Monitor(engine, clock=lambda: NOW)


def test_figures_per_hoster_country_and_all_equal_the_hand_computation(
    engine: Engine, monitor: Monitor
) -> None:
    made = fleet(engine)
    rows = {row.group: row for row in monitor.figures("hoster")}
    assert sorted(rows) == ["fast", "slow", "small"]  # the CDN's notices count nowhere
    for hoster, row in rows.items():
        assert_row(row, by_hand([m for m in made if m.hoster == hoster]))
    slow = rows["slow"]
    assert slow.overdue_now == 1 and slow.open_now == 2
    countries = {row.group: row for row in monitor.figures("country")}
    assert sorted(countries) == ["DE", "NL", "unknown"]
    assert_row(countries["NL"], by_hand([m for m in made if m.country == "NL"]))
    assert_row(countries["unknown"], by_hand([m for m in made if m.country is None]))
    (everything,) = monitor.figures("all")
    assert everything.group == "all"
    assert_row(everything, by_hand(made))
    assert monitor.figures("hoster", hoster="slow") == [slow]


def test_a_period_selects_notices_by_the_time_they_were_reported(
    engine: Engine, monitor: Monitor
) -> None:
    made = fleet(engine)
    since, until = datetime(2026, 4, 10, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    inside = [m for m in made if since <= m.reported_at < until]
    (row,) = monitor.figures("all", since=since, until=until)
    assert_row(row, by_hand(inside))
    assert 0 < row.notices < by_hand(made)["notices"]
    assert monitor.figures("hoster", since=NOW) == []


def test_the_public_figures_suppress_counts_under_ten(engine: Engine, monitor: Monitor) -> None:
    made = fleet(engine)
    public = {row.group: row for row in monitor.public("hoster")}
    fast, slow, small = public["fast"], public["slow"], public["small"]
    expected = by_hand([m for m in made if m.hoster == "fast"])
    assert fast.notices == expected["notices"] == 14 and fast.removed == 12
    assert fast.median_hours == pytest.approx(expected["median_hours"])  # 12 removals: shown
    assert fast.within_24h == pytest.approx(expected["within_24h"])  # 10 within, of 13
    assert fast.open_now is None and fast.disputes is None and fast.reappeared is None
    assert fast.reappearance_rate is None  # 2 reappeared: under 10
    assert slow.removed == 12 and slow.p90_hours is not None
    assert slow.within_24h is None  # none within 24 h: a count under 10
    assert small.notices is None and small.removed is None  # 3 notices
    assert small.median_hours is None and small.p99_hours is None  # 3 removals
    assert "<10" in csv(public.values())


def test_the_distribution_counts_removals_per_bin_of_hours(
    engine: Engine, monitor: Monitor
) -> None:
    made = fleet(engine)
    hours = [(m.verified_at - m.reported_at) / HOUR
             for m in made if m.verified_at and m.kind != "cdn"]  # fmt: skip
    edges = [0, 1, 6, 12, 24, 48, 72, 168, 720, math.inf]
    expected = [sum(1 for h in hours if (low < h or low == 0) and h <= high)
                for low, high in itertools.pairwise(edges)]  # fmt: skip
    bins = monitor.distribution()
    assert [b.label for b in bins] == ["0-1", "1-6", "6-12", "12-24", "24-48", "48-72",
                                       "72-168", "168-720", ">720"]  # fmt: skip
    assert [b.removals for b in bins] == expected
    assert sum(expected) == len(hours)
    public = monitor.distribution(public=True)
    assert [b.removals for b in public] == [n if n >= 10 else None for n in expected]
    assert [b.removals for b in monitor.distribution(hoster="fast")][0] == 1  # 0.5 h


def test_the_trend_per_month(engine: Engine, monitor: Monitor) -> None:
    made = fleet(engine)
    points = monitor.trend()
    months = sorted({m.reported_at.strftime("%Y-%m") for m in made if m.kind != "cdn"})
    assert [p.period for p in points] == months
    for point in points:
        expected = by_hand([m for m in made if m.reported_at.strftime("%Y-%m") == point.period])
        assert point.notices == expected["notices"]
        assert point.removed == expected["removed"]
        for name in ("median_hours", "p90_hours", "within_24h"):
            value = expected[name]
            assert getattr(point, name) == (None if value is None else pytest.approx(value))
    with pytest.raises(Invalid, match="period"):
        monitor.trend("week")


def test_the_evidence_bundle_is_signed_and_breaks_when_altered(
    engine: Engine, monitor: Monitor
) -> None:
    made = fleet(engine)
    slow = [m for m in made if m.hoster == "slow"]
    with engine.begin() as connection:
        connection.execute(insert(TakedownCheckRow).values(
            notice_id=1 + made.index(slow[0]), url="https://slow.example/x.jpg", at=NOW,
            purpose="deadline", outcome="gone", status=404, detail="", hashes=[]))  # fmt: skip
        connection.execute(insert(TakedownDeliveryRow).values(
            notice_id=1 + made.index(slow[0]), purpose="notice", step="", channel="smtp",
            target="abuse@slow.example", payload="Subject: notice", idempotency_key="k" * 64,
            created_at=NOW, attempts=1, next_attempt_at=NOW, delivered_at=NOW, last_error="",
            reply=""))  # fmt: skip
    key = Ed25519PrivateKey.generate()
    bundle = monitor.evidence("slow", key)
    public = signing.verify(bundle, signing.verify(bundle))
    assert len(bundle["notices"]) == len(slow)
    first = bundle["notices"][0]
    assert first["reported_at"] == slow[0].reported_at.isoformat()
    assert first["hours_to_removal"] == pytest.approx(30)
    assert first["checks"][0] | {"id": 0} == {
        "id": 0, "url": "https://slow.example/x.jpg", "at": NOW.isoformat(),
        "purpose": "deadline", "outcome": "gone", "status": 404, "detail": "", "hashes": []}  # fmt: skip
    assert first["deliveries"][0]["target"] == "abuse@slow.example"
    assert first["document"] == {"urls": first["urls"]}
    assert bundle["figures"]["removed"] == by_hand(slow)["removed"]
    altered = json.loads(json.dumps(bundle))
    altered["notices"][0]["verified_at"] = None
    with pytest.raises(signing.BadSignature):
        signing.verify(altered, public)
    with pytest.raises(UnknownHoster, match="nowhere"):
        monitor.evidence("nowhere", key)


def test_csv_has_a_header_and_a_line_per_row(engine: Engine, monitor: Monitor) -> None:
    fleet(engine)
    rows = monitor.figures("hoster")
    read = list(csv_module.DictReader(io.StringIO(csv(rows))))
    assert [line["group"] for line in read] == ["fast", "slow", "small"]
    assert float(read[1]["median_hours"]) == pytest.approx(rows[1].median_hours)
    assert read[0]["notices"] == "14"


def test_bad_input_is_refused_clearly(monitor: Monitor) -> None:
    with pytest.raises(Invalid, match="by: expected one of hoster, country, all"):
        monitor.figures("planet")
    assert parse_moment("2026-05-01", "since") == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_moment("", "since") is None
    with pytest.raises(Invalid, match="until: expected a date"):
        parse_moment("yesterday", "until")
