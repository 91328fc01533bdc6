"""The purge: deletes what has passed its ``retain_until`` (12 months after identification by
default, per legal profile), unless a legal hold, an open complaint or a complaint period still
running keeps it.

What is kept and why (``PURPOSES``, recorded with every purge): detections with their votes,
actions, notices and complaints (review, action, redress and reports), the match log (evidence
of what was answered), webhook calls (delivery of actions and notices to the service). What a
hotline reporter gave of themselves (the contact, the description and where the URLs were seen:
free text that may say who they are) is cleared when due; the report stays, as the record of
what was reported. Counts for the transparency report carry no personal
data and are not purged.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, and_, delete, exists, or_, select, update

from hashguard.review.detections import delete_detection
from hashguard.review.webhook import MAX_ATTEMPTS
from hashguard.store import audit
from hashguard.store.match_log import RETENTION
from hashguard.store.tables import (
    ComplaintRow,
    DetectionRow,
    HotlineReportRow,
    MatchRow,
    NoticeRow,
    WebhookRow,
)

PURPOSES: Final = {
    "detections": "human review, then the actions, reports and redress that follow from it",
    "match_log": "evidence of each match answered, for audits and complaints",
    "webhook_outbox": "delivering actions and notices to the service, and proof of delivery",
    "hotline_reports": "asking the reporter about a hotline report and reading what they wrote "
    "of it, while it is handled",
}
HOTLINE_REPORT: Final = "hotline-report"  # a report's purpose once it holds no contact


@dataclass(frozen=True)
class Purged:
    detections: list[int]
    matches: int
    webhook_calls: int
    held: int  # due, but kept by a legal hold or an open complaint
    hotline_reports: int  # reports cleared of the reporter's contact and text

    @property
    def total(self) -> int:
        return len(self.detections) + self.matches + self.webhook_calls + self.hotline_reports


def purge(engine: Engine, now: datetime | None = None, actor: str = "hashguard purge") -> Purged:
    """Delete everything due at ``now`` in one transaction, and record it in the audit log."""
    now = now or datetime.now(UTC)
    detections, complaints = DetectionRow.__table__, ComplaintRow.__table__
    open_complaint = exists().where(
        complaints.c.detection_id == detections.c.id, complaints.c.state == "received"
    )
    notices = NoticeRow.__table__
    complaint_period = exists().where(
        notices.c.detection_id == detections.c.id, notices.c.complaint_until > now
    )
    due = detections.c.retain_until <= now
    kept = or_(and_(detections.c.held_until.is_not(None), detections.c.held_until > now),
               open_complaint, complaint_period)  # fmt: skip
    matches, outbox = MatchRow.__table__, WebhookRow.__table__
    # Rows from before retention was recorded: their time plus the retention then in force.
    unrecorded = and_(matches.c.retain_until.is_(None), matches.c.at <= now - RETENTION)
    match_due = or_(matches.c.retain_until <= now, unrecorded)
    # A call not yet delivered (nor given up) stays: it may be the reversal of an action.
    finished = or_(outbox.c.delivered_at.is_not(None), outbox.c.attempts >= MAX_ATTEMPTS)
    call_due = and_(outbox.c.retain_until <= now, finished)
    reports = HotlineReportRow.__table__
    reporter_text = or_(reports.c.contact.is_not(None), reports.c.description != "",
                        reports.c.seen_where != "")  # fmt: skip
    report_due = and_(reporter_text, reports.c.retain_until <= now)
    with engine.begin() as connection:
        gone = [r.id for r in connection.execute(select(detections.c.id).where(due, ~kept))]
        held = len(connection.execute(select(detections.c.id).where(due, kept)).all())
        for ident in gone:
            delete_detection(connection, ident)
        match_count = connection.execute(delete(MatchRow).where(match_due)).rowcount
        call_count = connection.execute(delete(WebhookRow).where(call_due)).rowcount
        cleared = connection.execute(
            update(HotlineReportRow).where(report_due)
            .values(contact=None, description="", seen_where="", purpose=HOTLINE_REPORT)
        ).rowcount  # fmt: skip
        purged = Purged(gone, match_count, call_count, held, cleared)
        if purged.total or held:
            audit.append(connection, actor, "retention.purge", "retention",
                         {"purposes": PURPOSES, "detections": gone, "matches": match_count,
                          "webhook_calls": call_count, "held": held,
                          "hotline_reports": cleared, "at": now.isoformat()})  # fmt: skip
    return purged
