"""The annual transparency report: small cells suppressed, error ratios; the JSON and HTML
that ``hashguard stats annual`` writes."""

import json
from datetime import UTC, datetime

from sqlalchemy import Engine
from typer.testing import CliRunner

from hashguard.cli import app
from hashguard.review.services import ServiceStore
from hashguard.stats import annual
from hashguard.store.counts import bump

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
