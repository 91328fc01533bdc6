"""The annual transparency report, risk assessment records and the classifier plug-in."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import Engine
from typer.testing import CliRunner

from hashguard.cli import app
from hashguard.media.synthetic import encode
from hashguard.reports.risk import FACTORS, RiskAssessments
from hashguard.review.classifiers import FlatImageClassifier, classify
from hashguard.review.detections import Review
from hashguard.review.model import ReviewError, Source, State
from hashguard.review.services import ServiceStore
from hashguard.stats import annual
from hashguard.store.counts import bump

from support.media import png

YEAR = 2026


def seed(engine: Engine, figures: dict[tuple[str, str], float]) -> None:
    moment = datetime(YEAR, 6, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for (metric, key), value in figures.items():
            bump(connection, moment, metric, key, value)


def test_the_annual_report_suppresses_small_cells_and_computes_error_ratios(
    engine: Engine,
) -> None:
    ServiceStore(engine).create("photos")
    seed(engine, {("detections", "pdq"): 120, ("detections", "md5"): 4,
                  ("confirmed", "pdq"): 100, ("false_positives", "pdq"): 15,
                  ("confirmed", "md5"): 4, ("complaints", "received"): 12,
                  ("complaints", "upheld"): 3, ("complaints", "rejected"): 8,
                  ("complaint_seconds", "upheld"): 3 * 86400,
                  ("complaint_seconds", "rejected"): 8 * 43200,
                  ("reports", "eu-centre"): 100, ("actions", "remove"): 90})  # fmt: skip
    document = annual.report(engine, YEAR, "Photos Example BV", ["Offlimits"])
    eu = document["regulation_2021_1232"]
    assert eu["data_processed"]["detections_by_technology"] == {"md5": "<10", "pdq": 120}
    assert eu["errors_by_technology"]["pdq"] == {"false_positives": 15, "decided": 115,
                                                  "error_ratio": round(15 / 115, 4)}  # fmt: skip
    assert eu["errors_by_technology"]["md5"]["error_ratio"] == "<10"
    assert eu["complaints"] == {"received": 12, "upheld": "<10", "rejected": "<10",
                                "judicial": "not recorded by hashguard"}  # fmt: skip
    assert eu["shared_with"] == ["Offlimits", "eu-centre"]
    assert eu["retention"]["photos"].startswith("365 days")
    art83 = document["csa_regulation_art_83"]
    assert art83["complaints_decided"] == "<10"  # 11, but it would give away the upheld 3
    assert art83["average_days_to_decide"] == round((3 * 86400 + 8 * 43200) / 11 / 86400, 2)
    page = annual.render_html(document)
    assert "<svg" in page and "&lt;10" in page and "Photos Example BV" in page
    assert "md5" in page.split("Not charted")[1]  # a suppressed cell is not drawn


def test_the_annual_report_command_writes_json_and_html(engine: Engine, database_url, tmp_path):
    seed(engine, {("detections", "pdq"): 30, ("confirmed", "pdq"): 30})
    arguments = ["stats", "annual", "--year", str(YEAR), "--provider", "P", "--out",
                 str(tmp_path), "--database-url", database_url]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / f"annual-{YEAR}.json").read_text())
    assert written["regulation_2021_1232"]["cases"]["child_sexual_abuse_material"] == 30
    assert "<svg" in (tmp_path / f"annual-{YEAR}.html").read_text()


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


def test_classifier_flags_only_reach_the_queue_and_only_where_allowed(engine: Engine) -> None:
    services = ServiceStore(engine)
    review = Review(engine)
    flat = encode(Image.new("L", (64, 64), 128), "PNG")
    with pytest.raises(ReviewError, match="known material only"):
        classify(review, FlatImageClassifier(), services.create("default-profile"), "i-1", flat)
    allowed = services.create("research", legal_profile="csar-council-2025")
    assert classify(review, FlatImageClassifier(), allowed, "i-2", png(3)) is None
    flagged = classify(review, FlatImageClassifier(), allowed, "i-3", flat)
    assert flagged is not None
    assert flagged.source is Source.CLASSIFIER and flagged.state is State.PENDING
    assert flagged.technology == "classifier:demo-flat-image" and not flagged.quarantined
    assert [d.id for d in review.queue()] == [flagged.id]
    with pytest.raises(ReviewError, match="i-4: "):
        classify(review, FlatImageClassifier(), allowed, "i-4", b"not an image")


def test_services_and_purge_commands(database_url: str, tmp_path) -> None:
    secret = str(tmp_path / "secret.key")
    runner = CliRunner()
    base = ["--database-url", database_url]
    hook = ["--webhook", "https://photos.example/hook"]
    made = runner.invoke(app, ["services", "create", "photos", *hook, "--secret-file", secret,
                               *base])  # fmt: skip
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["services", "secret", "photos", "--secret-file", secret, *base])
    assert shown.output.strip() in made.output  # the same secret, derived again
    assert "photos\tknown-only\t-\thttps://photos.example/hook" in runner.invoke(
        app, ["services", "list", *base]).output  # fmt: skip
    refused = runner.invoke(app, ["services", "create", "bad name", *base])
    assert refused.exit_code == 1 and "service name" in refused.output
    purged = runner.invoke(app, ["purge", *base])
    assert purged.exit_code == 0 and "purged 0 detections" in purged.output
