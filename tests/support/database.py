"""Scratch databases: a SQLite file, or a throwaway database on a PostgreSQL server."""

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from hashguard.store.api_keys import WATCH_NAME
from hashguard.store.database import current_revision, open_engine, temporary_database

POSTGRES_URL = os.environ.get("HASHGUARD_TEST_POSTGRES_URL", "")


@contextmanager
def scratch_database(kind: str, directory: Path, schema: bool = True) -> Iterator[str]:
    """A database of ``kind`` with the newest schema and no data (``schema=False``: nothing at
    all, for tests of migrations): a SQLite file in ``directory``, or a fresh database on the
    PostgreSQL server named by HASHGUARD_TEST_POSTGRES_URL (``make test`` starts one of its own
    with scripts/with-postgresql), dropped afterwards. Without that server the test is skipped,
    with this notice.

    The schema is a copy of one this process migrated once (a file copy, ``CREATE DATABASE ...
    TEMPLATE``): migrating every test's database would cost about 0.3 s on SQLite and 0.5 s on
    PostgreSQL, over a thousand times a run."""
    if kind == "sqlite":
        path = directory / "hashguard.db"
        if schema:
            shutil.copyfile(_templates.sqlite(), path)
        yield f"sqlite:///{path}"
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL absent: HASHGUARD_TEST_POSTGRES_URL is not set (`make test` starts a "
            "server of its own with scripts/with-postgresql, or says why it could not)"
        )
    template = _templates.postgresql() if schema else None
    with temporary_database(POSTGRES_URL, template) as url:
        yield url


def cut_key_watches(engine: Engine) -> int:
    """PostgreSQL: end, as the server does when it restarts, the connections to this database
    that listen for changed keys (``KeyWatch``); how many."""
    ended = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND application_name = :name")  # fmt: skip
    with engine.begin() as connection:
        return len(connection.execute(ended, {"name": WATCH_NAME}).all())


def open_when_released(url: str, barrier: Any, answers: Any) -> None:
    """In a process of its own: open ``url`` once ``barrier`` lets every opener go, and put the
    schema's revision (or the error) on ``answers``."""
    barrier.wait()
    try:
        engine = open_engine(url)
        answers.put(current_revision(engine))
        engine.dispose()
    except Exception as error:
        answers.put(f"{type(error).__name__}: {error}")


class _Templates:
    """The databases this process migrated once, to be copied: made on first use, removed
    when the process ends."""

    def __init__(self) -> None:
        self._made: dict[str, str] = {}
        self._stack = ExitStack()
        atexit.register(self._stack.close)

    def sqlite(self) -> str:
        if "sqlite" not in self._made:
            directory = self._stack.enter_context(tempfile.TemporaryDirectory())
            path = str(Path(directory) / "template.db")
            open_engine(f"sqlite:///{path}").dispose()  # closed: the WAL is checkpointed
            self._made["sqlite"] = path
        return self._made["sqlite"]

    def postgresql(self) -> str:
        if "postgresql" not in self._made:
            url = self._stack.enter_context(temporary_database(POSTGRES_URL))
            open_engine(url).dispose()  # nobody may be connected to a template
            self._made["postgresql"] = str(make_url(url).database)
        return self._made["postgresql"]


_templates = _Templates()
