"""Risk assessment records per service (CSA Regulation proposal Art 3-5): the factors assessed,
the mitigations in place, the risk that remains, and when the next assessment is due (at most
3 years later; sooner when the authority asks)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, insert, select, update

from hashguard.review.model import NotFound, ReviewError
from hashguard.review.services import Service, ServiceStore
from hashguard.store import audit
from hashguard.store.tables import RiskAssessmentRow, utc

# Art 3(2): what an assessment considers.
FACTORS: Final = {
    "prior_incidents": "identified use of the service for child sexual abuse so far",
    "policies": "terms prohibiting abuse and how they are enforced",
    "user_flagging": "how users can flag content, and what follows",
    "age_assurance": "functions that keep children from risky features",
    "usage": "how users use the service, and its effect on risk",
    "design": "design, business model and governance",
    "child_users": "whether and how children use the service",
    "features": "features such as user search, direct messages, image sharing",
}
LEVELS: Final = ("low", "medium", "high")
LONGEST: Final = timedelta(days=3 * 365)


@dataclass(frozen=True)
class RiskAssessment:
    id: int
    service: str
    performed_at: datetime
    factors: dict[str, Any]
    mitigations: list[str]
    remaining_risk: str
    next_due_at: datetime
    submitted_at: datetime | None
    actor: str


class RiskAssessments:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.services = ServiceStore(engine)

    def record(
        self,
        service: Service,
        factors: Mapping[str, str],
        mitigations: Sequence[str],
        remaining_risk: str,
        actor: str,
        performed_at: datetime | None = None,
        next_due_at: datetime | None = None,
    ) -> RiskAssessment:
        """Record an assessment. Raises ReviewError for an unknown factor, a factor left out,
        a risk level other than low/medium/high, or a next date more than 3 years on."""
        performed = performed_at or datetime.now(UTC)
        unknown = sorted(set(factors) - set(FACTORS))
        if unknown:
            raise ReviewError(f"unknown factor {unknown[0]!r}; the factors: {', '.join(FACTORS)}")
        missing = [f for f in FACTORS if not str(factors.get(f, "")).strip()]
        if missing:
            raise ReviewError(f"factor {missing[0]!r} is not assessed ({FACTORS[missing[0]]})")
        if remaining_risk not in LEVELS:
            raise ReviewError(f"remaining risk {remaining_risk!r}: expected low, medium or high")
        if any(t is not None and t.tzinfo is None for t in (performed_at, next_due_at)):
            raise ReviewError("times need a time zone")
        due = (next_due_at or performed + LONGEST).astimezone(UTC)
        if due > performed + LONGEST or due <= performed:
            raise ReviewError("the next assessment is due within 3 years of this one")
        with self.engine.begin() as connection:
            key = connection.execute(
                insert(RiskAssessmentRow).values(
                    service_id=service.id, performed_at=performed, factors=dict(factors),
                    mitigations=list(mitigations), remaining_risk=remaining_risk,
                    next_due_at=due, submitted_at=None, actor=actor,
                )
            ).inserted_primary_key  # fmt: skip
            assert key is not None
            details = {"remaining_risk": remaining_risk, "next_due": due.isoformat()}
            audit.append(connection, actor, "risk.assess", service.name, details)
        return self.get(int(key[0]))

    def submitted(self, ident: int, actor: str) -> RiskAssessment:
        """Note that the assessment went to the coordinating authority (due within 3 months)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(RiskAssessmentRow).where(RiskAssessmentRow.__table__.c.id == ident)
                .values(submitted_at=datetime.now(UTC))
            )  # fmt: skip
            audit.append(connection, actor, "risk.submit", f"risk:{ident}")
        return self.get(ident)

    def get(self, ident: int) -> RiskAssessment:
        table = RiskAssessmentRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == ident)).one_or_none()
        if row is None:
            raise NotFound(f"no risk assessment number {ident}")
        return self._assessment(row)

    def latest(self, service: Service) -> RiskAssessment | None:
        table = RiskAssessmentRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.service_id == service.id)
                .order_by(table.c.performed_at.desc(), table.c.id.desc()).limit(1)
            ).one_or_none()  # fmt: skip
        return None if row is None else self._assessment(row)

    def due(self, now: datetime | None = None) -> list[Service]:
        """Services never assessed, or whose next assessment is due."""
        now = now or datetime.now(UTC)
        found = []
        for service in self.services.all():
            latest = self.latest(service)
            if latest is None or latest.next_due_at <= now:
                found.append(service)
        return found

    def _assessment(self, row: Any) -> RiskAssessment:
        m = row._mapping
        return RiskAssessment(
            m["id"], self.services.by_id(m["service_id"]).name, utc(m["performed_at"]),
            dict(m["factors"]), list(m["mitigations"]), m["remaining_risk"],
            utc(m["next_due_at"]), utc(m["submitted_at"]) if m["submitted_at"] else None,
            m["actor"],
        )  # fmt: skip
