"""Fixtures and pytest hooks for every test. What tests share besides fixtures (generated media,
scratch databases, servers on loopback) is in the ``support`` package; ``../shared`` is optional
and only read by tests marked ``shared``."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine

from hashguard.store.database import open_engine

from support.conformance import KEY, ConformanceReport
from support.database import scratch_database

# No timing assertions in tests, Hypothesis's included: a busy 2-core CI machine is slow.
settings.register_profile("hashguard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hashguard")

# ../shared/data beside the repository, or wherever HASHGUARD_SHARED_DATA points.
SHARED_DATA = Path(
    os.environ.get("HASHGUARD_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; the test is skipped, with this notice, when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"conformance data absent: {SHARED_DATA} not found (optional)")
    return SHARED_DATA


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with the newest schema and no data, SQLite and PostgreSQL
    (``support.database.scratch_database``)."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even a schema: for tests of the migrations."""
    with scratch_database(request.param, tmp_path, schema=False) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """That database opened, its schema migrated."""
    opened = open_engine(database_url)
    yield opened
    opened.dispose()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> ConformanceReport:
    """Lines for the conformance section of the run's summary."""
    return ConformanceReport(request.node)


_REPORT: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _REPORT.extend(line for key, line in report.user_properties if key == KEY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("conformance")
        for line in _REPORT:
            terminalreporter.write_line(line)
