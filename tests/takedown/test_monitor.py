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
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert

from hashguard.errors import Invalid
from hashguard.store.tables import TakedownCheckRow, TakedownDeliveryRow
from hashguard.takedown import signing
from hashguard.takedown.monitor import Monitor, Overview, UnknownHoster, csv, parse_moment

from support.monitor_rows import HOUR, NOW, add, assert_row, by_hand, fleet


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
    assert small.notices is None and small.removed is None  # 3 notices
    # one hidden hoster would be all minus the others: a second one is hidden with it (fast);
    # and fast alone in NL, slow alone in DE: the countries "unknown", DE, NL go with them,
    # and slow with DE
    assert [fast.notices, slow.notices] == [None, None] and expected["notices"] == 14
    assert [row.notices for row in monitor.public("country")] == [None, None, None]
    assert fast.removed is None and slow.removed is None  # 12 each, hidden beside small's 3
    (everything,) = monitor.public("all")
    assert everything.notices == by_hand(made)["notices"]
    assert fast.median_hours == pytest.approx(expected["median_hours"])  # 12 removals: shown
    assert fast.p90_hours == pytest.approx(expected["p90_hours"])
    assert fast.p99_hours is None  # the p99 from 100 removals only
    assert fast.within_24h == pytest.approx(expected["within_24h"])  # 10 within, of 13
    assert fast.open_now is None and fast.disputes is None and fast.reappeared is None
    assert fast.reappearance_rate is None  # 2 reappeared: under 10
    assert slow.within_24h is None  # none within 24 h: a count under 10
    assert small.median_hours is None and small.p99_hours is None  # 3 removals
    assert "<10" in csv(public.values())


def derived(found: Overview, country_of: dict[str, str]) -> list[str]:
    """What an attacker gets by subtraction from the public figures: every hidden cell that is
    the only unknown of a sum the figures show (all = the hosters, the countries, the months;
    all's removals = the bins; a country = its hosters, which country a hoster is in being
    known)."""
    assert found.all is not None
    sums: list[tuple[str, int | None, list[tuple[str, int | None]]]] = []
    for column in (
        "notices",
        "removed",
        "open_now",
        "overdue_now",
        "renotices",
        "escalations",
        "reappeared",
        "disputes",
    ):
        whole = getattr(found.all, column)
        for table in (found.hosters, found.countries):
            sums.append((column, whole, [(r.group, getattr(r, column)) for r in table]))
        for country in found.countries:
            sums.append(
                (
                    column,
                    getattr(country, column),
                    [
                        (r.group, getattr(r, column))
                        for r in found.hosters
                        if country_of[r.group] == country.group
                    ],
                )
            )
    for column in ("notices", "removed"):
        sums.append(
            (
                column,
                getattr(found.all, column),
                [(p.period, getattr(p, column)) for p in found.trend],
            )
        )
    sums.append(("removed", found.all.removed, [(b.label, b.removals) for b in found.distribution]))
    leaks = []
    for column, whole, parts in sums:
        unknown = [name for name, value in parts if value is None]
        if whole is not None and len(unknown) == 1:
            leaks.append(f"{unknown[0]}.{column}")
        if whole is None and parts and not unknown:
            leaks.append(f"total of {[name for name, _ in parts]}.{column}")
    return leaks


def test_no_hidden_count_follows_from_the_public_sums(engine: Engine, monitor: Monitor) -> None:
    fleet(engine)
    for n in range(25):  # a big hoster beside them, and one more with a single notice
        add(engine, "big", "NL", datetime(2026, 4, 2, tzinfo=UTC) + n * HOUR, 3 + n)
    add(engine, "tiny", "BE", datetime(2026, 4, 3, tzinfo=UTC), 2)
    country_of = {"fast": "NL", "big": "NL", "slow": "DE", "small": "unknown", "tiny": "BE"}
    found = monitor.overview(public=True)
    assert derived(found, country_of) == []
    assert found.all is not None and found.all.notices is not None
    raw = monitor.overview()
    assert derived(raw, country_of) == []  # nothing hidden: nothing to derive (the check works)
    assert {r.group: r.notices for r in found.hosters}["tiny"] is None
    big = {r.group: r for r in found.hosters}["big"]
    # open now 0 (under 10) hidden: a second cell of the row with it (notices = removed + open)
    assert big.removed == 25 and big.open_now is None and big.notices is None
    bins = [b.removals for b in found.distribution]
    assert bins.count(None) != 1


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
    public = [b.removals for b in monitor.distribution(public=True)]
    assert all(shown in (None, n) for shown, n in zip(public, expected, strict=True))
    assert all(shown is None for shown, n in zip(public, expected, strict=True) if n < 10)
    assert public.count(None) != 1  # one hidden bin alone would be all's removals minus the rest
    assert monitor.distribution(hoster="fast")[0].removals == 1  # 0.5 h


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
    check = {"url": "https://slow.example/x.jpg", "at": NOW.isoformat(), "purpose": "deadline",
             "outcome": "gone", "status": 404, "detail": "", "hashes": []}  # fmt: skip
    assert first["checks"][0] | {"id": 0} == check | {"id": 0}
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


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_a_time_out_of_range_in_utc_is_refused_clearly(text: str) -> None:
    with pytest.raises(Invalid, match=r"since: .* is out of range in UTC"):
        parse_moment(text, "since")


def test_the_overview_is_the_same_figures_from_one_pass(engine: Engine, monitor: Monitor) -> None:
    fleet(engine)
    for public in (False, True):
        found = monitor.overview(public=public)
        shown = monitor.public if public else monitor.figures
        assert [found.all] == shown("all")
        assert found.hosters == shown("hoster")
        assert found.countries == shown("country")
        assert found.distribution == monitor.distribution(public=public)
        assert found.trend == monitor.trend(public=public)
    assert monitor.overview(since=NOW).all is None


def test_no_hidden_count_follows_from_its_row(engine: Engine, monitor: Monitor) -> None:
    """notices = removed + open now + withdrawn (not shown, usually 0): with 50 notices and 45
    removed shown, 5 open now hidden alone would be plain; a second cell of the row goes too."""
    may = datetime(2026, 5, 3, tzinfo=UTC)
    for n in range(45):
        add(engine, "w", "DE", may + n * HOUR, 5)
    for n in range(5):
        add(engine, "w", "DE", may + n * HOUR)
    for n in range(30):
        add(engine, "z", "DE", may + n * HOUR, 5)
    for n in range(40):
        add(engine, "y", "NL", may + n * HOUR, 5)
    found = monitor.overview(public=True)
    assert found.all is not None
    w = {row.group: row for row in found.hosters}["w"]
    assert w.open_now is None  # 5: under 10
    assert None in (w.notices, w.removed)  # so 50 - 45 gives nothing
    for row in [found.all, *found.hosters, *found.countries]:
        cells = (row.notices, row.removed, row.open_now)
        assert cells.count(None) != 1, row
    raw = {row.group: row for row in monitor.overview().hosters}["w"]
    assert (raw.notices, raw.removed, raw.open_now) == (50, 45, 5)  # the check has a leak to find
    country_of = {"w": "DE", "z": "DE", "y": "NL"}
    assert derived(found, country_of) == []
