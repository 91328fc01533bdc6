"""A running service and keys changed by another process (the CLI, another replica), through a
real server on loopback: on PostgreSQL, its watch's connection cut by the server and made
again, after which a key revoked meanwhile is refused."""

import functools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from hashguard.api import ServiceSettings
from hashguard.api import service as service_module
from hashguard.app import create_app
from hashguard.store.api_keys import ApiKeyStore, KeyWatch, Role
from hashguard.store.database import open_engine

from support.database import cut_key_watches, scratch_database
from support.in_process import serving
from support.metrics import sample
from support.waiting import eventually


@pytest.fixture
def postgresql(tmp_path: Path) -> Iterator[Engine]:
    with scratch_database("postgresql", tmp_path) as url:
        engine = open_engine(url)
        yield engine
        engine.dispose()


def test_a_key_revoked_while_the_watch_was_cut_is_refused_once_it_is_back(
    postgresql: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]  # the watch's clock: when it may connect again
    clocked = functools.partial(KeyWatch, retry_seconds=5.0, clock=lambda: now[0])
    monkeypatch.setattr(service_module, "KeyWatch", clocked)
    keys = ApiKeyStore(postgresql)
    key, token = keys.create(Role.REVIEWER, name="desk")
    auditor = keys.create(Role.AUDITOR, name="metrics")[1]
    # Cached for an hour: only the watch can make the revocation hold before then.
    settings = ServiceSettings(key_cache_seconds=3600.0, secret_file=tmp_path / "secret.key")
    app = create_app(postgresql, settings)
    headers = {"Authorization": f"Bearer {token}"}
    with serving(app) as url, httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        watch = app.state.service.key_watch
        assert client.get("/v1/matches").status_code == 200  # the key is cached now
        assert cut_key_watches(postgresql) == 1

        def seen_down() -> bool:
            assert client.get("/v1/matches").status_code == 200
            return not watch.watching

        assert eventually(seen_down)
        keys.revoke(key.id, actor="cli")  # its notification reaches no one
        assert client.get("/v1/matches").status_code == 200  # the cache's bound holds meanwhile
        assert _metric(client, auditor, "hashguard_key_watch_up") == 0.0
        assert _metric(client, auditor, "hashguard_key_watch_lost_total") == 1.0
        now[0] = 5.0
        assert eventually(lambda: client.get("/v1/matches").status_code == 401)
        assert client.get("/v1/matches").status_code == 401
        assert watch.watching and _metric(client, auditor, "hashguard_key_watch_up") == 1.0


def _metric(client: httpx.Client, auditor: str, name: str) -> float | None:
    """The value of a metric without labels, as /metrics shows it."""
    shown = client.get("/metrics", headers={"Authorization": f"Bearer {auditor}"})
    assert shown.status_code == 200, shown.text
    return sample(shown.text, name)
