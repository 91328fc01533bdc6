"""Risk assessment records: every factor assessed, the next one due within three years."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from hashguard.reports.risk import FACTORS, RiskAssessments
from hashguard.review.model import ReviewError
from hashguard.review.services import ServiceStore


def test_risk_assessments_need_every_factor_and_a_date_within_three_years(engine: Engine) -> None:
    service = ServiceStore(engine).create("photos")
    risks = RiskAssessments(engine)
    assert [s.name for s in risks.due()] == ["photos"]
    factors = {name: "assessed: see the 2026 review" for name in FACTORS}
    with pytest.raises(ReviewError, match="'features' is not assessed"):
        risks.record(service, {**factors, "features": ""}, [], "low", "officer")
    with pytest.raises(ReviewError, match="unknown factor 'weather'"):
        risks.record(service, {**factors, "weather": "sunny"}, [], "low", "officer")
    with pytest.raises(ReviewError, match="within 3 years"):
        risks.record(service, factors, [], "low", "officer",
                     next_due_at=datetime.now(UTC) + timedelta(days=4 * 365))  # fmt: skip
    done = risks.record(service, factors, ["hash matching of uploads", "user flagging"],
                        "medium", "officer")  # fmt: skip
    assert risks.latest(service) == done and risks.due() == []
    assert risks.due(done.next_due_at + timedelta(days=1))[0].name == "photos"
    assert risks.submitted(done.id, "officer").submitted_at is not None
