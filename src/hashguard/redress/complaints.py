"""Complaints against a decision, filed by the user through the link in their statement of
reasons, within the profile's complaint period (at least 6 months).

Someone other than the reviewers of the detection, and other than whoever took the action,
decides. Upheld: the detection was wrong after all, so it is undone as a false positive
(actions reversed, entry contested, error counted, data purged). The time from lodging to
decision is counted per outcome for the transparency report.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashguard.redress import notices
from hashguard.review import actions
from hashguard.review.detections import Review
from hashguard.review.model import CONFIRMED_STATES, NotFound, ReviewError
from hashguard.store import audit
from hashguard.store.counts import bump
from hashguard.store.tables import ComplaintRow, utc

MAX_STATEMENT = 10_000


class Outcome(StrEnum):
    RECEIVED = "received"
    UPHELD = "upheld"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Complaint:
    id: int
    notice_id: int
    detection_id: int
    statement: str
    state: Outcome
    lodged_at: datetime
    reviewer: str
    decided_at: datetime | None
    outcome_reason: str


class Complaints:
    def __init__(self, engine: Engine, review: Review | None = None) -> None:
        self.engine = engine
        self.review = review or Review(engine)

    def lodge(self, token: str, statement: str, now: datetime | None = None) -> Complaint:
        """File the complaint of the link ``token``. Raises NotFound for an unknown link, and
        ReviewError after the complaint period, for an empty or overlong statement, or when a
        complaint was filed already."""
        now = now or datetime.now(UTC)
        statement = statement.strip()
        if not statement:
            raise ReviewError("say in a few words why the decision is wrong")
        if len(statement) > MAX_STATEMENT:
            raise ReviewError(f"the statement is longer than {MAX_STATEMENT:,} characters")
        notice = notices.by_token(self.engine, token)
        detection = self.review.get(notice.detection_id)
        if detection.state not in CONFIRMED_STATES:
            raise ReviewError(f"the decision was reversed already ({detection.state.value}): "
                              "nothing remains to complain about")  # fmt: skip
        if now > notice.complaint_until:
            raise ReviewError(
                f"the complaint period ended on {notice.complaint_until.date().isoformat()}; "
                "the data protection authority and the courts remain open to you"
            )
        try:
            with self.engine.begin() as connection:
                key = connection.execute(
                    insert(ComplaintRow).values(
                        notice_id=notice.id, detection_id=notice.detection_id,
                        statement=statement, state=Outcome.RECEIVED.value, lodged_at=now,
                        reviewer="", decided_at=None, outcome_reason="",
                    )
                ).inserted_primary_key  # fmt: skip
                bump(connection, now, "complaints", Outcome.RECEIVED.value)
                assert key is not None
                subject = f"detection:{notice.detection_id}"
                audit.append(connection, "complainant", "complaint.lodge", subject,
                             {"complaint": int(key[0])})  # fmt: skip
        except IntegrityError:
            raise ReviewError("a complaint about this decision was filed already") from None
        return self.get(int(key[0]))

    def get(self, ident: int) -> Complaint:
        table = ComplaintRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == ident)).one_or_none()
        if row is None:
            raise NotFound(f"no complaint number {ident}")
        return _complaint(row)

    def of_token(self, token: str) -> Complaint | None:
        """The complaint filed through ``token``'s link, if any (what the user sees)."""
        notice = notices.by_token(self.engine, token)
        table = ComplaintRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.notice_id == notice.id)
            ).one_or_none()
        return None if row is None else _complaint(row)

    def open(self) -> list[Complaint]:
        table = ComplaintRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.state == Outcome.RECEIVED.value).order_by(table.c.id)
            ).all()
        return [_complaint(r) for r in rows]

    def decide(self, ident: int, reviewer: str, upheld: bool, reason: str) -> Complaint:
        """Decide a complaint. Raises ReviewError when ``reviewer`` took part in the decision
        complained of, when it is decided already, or without a reason."""
        if not reason.strip():
            raise ReviewError("a decision on a complaint needs a reason")
        complaint = self.get(ident)
        involved = {v.reviewer for v in self.review.votes(complaint.detection_id)}
        involved |= {a.actor for a in actions.actions(self.engine, complaint.detection_id)}
        if reviewer in involved:
            raise ReviewError(
                f"{reviewer} took part in the decision complained of: another reviewer decides"
            )
        now = datetime.now(UTC)
        outcome = Outcome.UPHELD if upheld else Outcome.REJECTED
        table = ComplaintRow.__table__
        with self.engine.begin() as connection:
            detection = actions.locked(connection, complaint.detection_id)
            if detection["state"] not in CONFIRMED_STATES:
                raise ReviewError(f"detection {complaint.detection_id} is {detection['state']}: "
                                  "nothing to decide")  # fmt: skip
            changed = connection.execute(
                update(ComplaintRow)
                .where(table.c.id == ident, table.c.state == Outcome.RECEIVED.value)
                .values(state=outcome.value, reviewer=reviewer, decided_at=now,
                        outcome_reason=reason)
            ).rowcount  # fmt: skip
            if not changed:
                raise ReviewError(f"complaint {ident} was decided already")
            bump(connection, now, "complaints", outcome.value)
            bump(connection, now, "complaint_seconds", outcome.value,
                 (now - complaint.lodged_at).total_seconds())  # fmt: skip
            audit.append(connection, reviewer, f"complaint.{outcome.value}",
                         f"detection:{complaint.detection_id}",
                         {"complaint": ident, "reason": reason})  # fmt: skip
        if upheld:
            self.review.overturn(complaint.detection_id, reviewer, f"complaint upheld: {reason}")
        return self.get(ident)


def _complaint(r: object) -> Complaint:
    m = r._mapping  # type: ignore[attr-defined]
    return Complaint(m["id"], m["notice_id"], m["detection_id"], m["statement"],
                     Outcome(m["state"]), utc(m["lodged_at"]), m["reviewer"],
                     utc(m["decided_at"]) if m["decided_at"] else None,
                     m["outcome_reason"])  # fmt: skip
