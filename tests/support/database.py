"""Scratch databases: a SQLite file, or a throwaway database on a PostgreSQL server."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hashguard.store.database import temporary_database

POSTGRES_URL = os.environ.get("HASHGUARD_TEST_POSTGRES_URL", "")


@contextmanager
def scratch_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database of ``kind``: a SQLite file in ``directory``, or a fresh database on the
    PostgreSQL server named by HASHGUARD_TEST_POSTGRES_URL (``make test`` starts one of its own
    with scripts/with-postgresql), dropped afterwards. Without that server the test is skipped,
    with this notice."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'hashguard.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL absent: HASHGUARD_TEST_POSTGRES_URL is not set (`make test` starts a "
            "server of its own with scripts/with-postgresql, or says why it could not)"
        )
    with temporary_database(POSTGRES_URL) as url:
        yield url
