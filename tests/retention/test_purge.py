"""The purge and the hotline, on SQLite and PostgreSQL: what a reporter gave of themselves (the
contact, the description, where the URLs were seen) is cleared once its retention is over (the
report and its cases stay), and the purge says so in the audit log. (The purge of detections,
matches and webhook calls is tested with the review workflow, in tests/review/test_review.py.)"""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from hashguard.hotline.intake import Intake
from hashguard.retention.purge import PURPOSES, purge
from hashguard.store import audit
from hashguard.store.tables import HotlineReportRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_reporters_contact_and_text_are_cleared_when_due_and_the_report_stays(
    engine: Engine,
) -> None:
    intake = Intake(engine, reports_per_hour=10, retain=timedelta(days=30), clock=lambda: T0)
    old = intake.report(["https://site-a.example/"], "a forum", "my cousin Jan sent it",
                        contact="old@example.org")  # fmt: skip
    anonymous = intake.report(["https://site-b.example/"], "a chat")
    later = Intake(engine, reports_per_hour=10, retain=timedelta(days=30),
                   clock=lambda: T0 + timedelta(days=20))  # fmt: skip
    fresh = later.report(["https://site-a.example/"], "an app", contact="fresh@example.org")

    assert purge(engine, now=T0 + timedelta(days=29)).total == 0
    assert audit.events(engine, limit=100, action="retention.purge") == []

    done = purge(engine, now=T0 + timedelta(days=30))
    assert done.hotline_reports == 2 and done.total == 2  # the anonymous one's text too
    table = HotlineReportRow.__table__
    with engine.connect() as connection:
        rows = {r.reference: r for r in connection.execute(select(table))}
    assert (rows[old.reference].contact, rows[old.reference].purpose) == (None, "hotline-report")
    assert (rows[old.reference].seen_where, rows[old.reference].description) == ("", "")
    assert rows[anonymous.reference].seen_where == ""
    assert rows[fresh.reference].seen_where == "an app"  # not due yet
    assert (rows[fresh.reference].contact, rows[fresh.reference].purpose) == (
        "fresh@example.org", "hotline-contact")  # fmt: skip
    assert rows[anonymous.reference].purpose == "hotline-report"
    [event] = audit.events(engine, limit=100, action="retention.purge")
    details = json.loads(event.details)
    assert details["hotline_reports"] == 2 and details["purposes"] == PURPOSES
    assert "old@example.org" not in event.details and "Jan" not in event.details
    assert intake.status(old.token).value == "received"  # the reporter can still follow it

    assert purge(engine, now=T0 + timedelta(days=30)).hotline_reports == 0  # once
    assert purge(engine, now=T0 + timedelta(days=51)).hotline_reports == 1
    assert audit.verify(engine) > 0
