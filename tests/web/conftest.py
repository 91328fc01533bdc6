"""Page tests that ask for ``database_url`` run on PostgreSQL only, not on both databases: what a
page shows does not depend on the database, and the stores and routes beneath the pages are
tested on SQLite and PostgreSQL both. (Tests that make their own database choose it; the demo's
desk runs on SQLite in tests/cli/test_demo.py.)"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.database import scratch_database


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """An empty PostgreSQL database (the suite-wide fixture of the same name gives both)."""
    with scratch_database("postgresql", tmp_path) as url:
        yield url
