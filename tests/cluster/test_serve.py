"""Replicas on Ray Serve (``hashguard.cluster.serve``), on a real local Ray with Ray Serve's HTTP
proxy on a loopback port, over one PostgreSQL database: requests are answered, every replica
takes a change made elsewhere, and a replica behind the database by more than ``max_lag`` is
not ready yet stays healthy (Ray would restart it, which cures no shared lag). All hashes are
random benign values."""

import sys
from collections.abc import Iterator

import httpx
import pytest
from ray import serve
from sqlalchemy import text

from hashguard.api import ServiceSettings
from hashguard.cluster.serve import NAME, start
from hashguard.lists.model import Category, ChangeKind
from hashguard.lists.records import Submission
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.paths import BENCH
from support.server import free_port
from support.waiting import eventually

sys.path.insert(0, str(BENCH))
from scale_replicas import random_values

LIST = "served"
LISTED = random_values(6, seed=5)
MAX_LAG = 1.0  # the least: a replica held behind the database is soon not ready
# Seconds between a replica's reads of the change logs: a change read in the moment between its
# commit and the lock on the change logs cannot be held; the longer the interval, the rarer.
REFRESH = 2.0


@pytest.fixture(scope="module")
def deployment(
    ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, str, ListStore]]:
    """Two replicas behind Ray Serve's proxy; a client of it, a matcher key, and the store
    (changes made elsewhere)."""
    directory = tmp_path_factory.mktemp("serve")
    with scratch_database("postgresql", directory) as url:
        engine = open_engine(url)
        store = ListStore(engine)
        store.create(LIST, "Hotline", Category.TEST, ["NL"])
        store.apply(LIST, [Submission("pdq", value) for value in LISTED])
        token = ApiKeyStore(engine).create(Role.MATCHER, name="test matcher")[1]
        port = free_port()
        settings = ServiceSettings(database_url=url, port=port, max_lag=MAX_LAG,
                                   refresh_interval=REFRESH,
                                   secret_file=directory / "secret.key")  # fmt: skip
        start(settings, replicas=2)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        try:
            yield client, token, store
        finally:
            client.close()
            serve.shutdown()
            engine.dispose()


def _reason(client: httpx.Client) -> str:
    """Why the replica that answered is not ready ("" when it is)."""
    answer = client.get("/status/ready")
    return "" if answer.status_code == 200 else str(answer.json()["reason"])


def _answers(client: httpx.Client, value: str) -> tuple[str, bool]:
    """Which replica answered a match of ``value``, and whether it matched."""
    answer = client.post("/v1/match/hashes", json={"hashes": [{"signal": "pdq", "value": value}]})
    assert answer.status_code == 200, answer.text
    return answer.headers["x-served-by"], bool(answer.json()["results"][0]["matches"])


def test_requests_are_answered_by_both_replicas(
    deployment: tuple[httpx.Client, str, ListStore],
) -> None:
    client, _, _ = deployment
    seen = eventually(lambda: len({_answers(client, LISTED[0])[0] for _ in range(10)}) == 2, 30)
    assert seen, "requests reached one replica only"
    assert all(_answers(client, LISTED[0])[1] for _ in range(4))
    assert not _answers(client, random_values(1, seed=77)[0])[1]
    assert client.get("/status/live").text == "I-AM-ALIVE"


def test_a_lagging_replica_stays_healthy_and_both_replicas_take_a_change(
    deployment: tuple[httpx.Client, str, ListStore],
) -> None:
    client, _, store = deployment
    handle = serve.get_deployment_handle(NAME, app_name=NAME)

    def unhealthy() -> str | None:
        try:
            handle.check_health.remote().result()
        except Exception as error:  # Ray wraps the replica's NotReady
            return str(error)
        return None

    # A change made elsewhere, its change log held: both replicas see the new version and
    # cannot read it, so they fall behind past max_lag. Not ready, yet healthy: Ray restarts
    # an unhealthy replica, and a restart does not cure a lag every replica shares.
    # (A replica may read the change before the lock: then again with the next value.)
    behind, value, seen = None, "", set()

    def reason() -> str:
        seen.add(answer := _reason(client))
        return answer

    for value in LISTED[1:]:
        store.change(LIST, ChangeKind.DELIST, "pdq", value, "test")
        with store.engine.connect() as connection:
            connection.execute(text("LOCK TABLE list_changes IN ACCESS EXCLUSIVE MODE"))
            try:
                behind = eventually(lambda: "behind the database" in reason(), 10)
                if behind:
                    assert all(unhealthy() is None for _ in range(4))
                    break
            finally:
                connection.rollback()
    assert behind, f"no replica was ever held behind; readiness seen: {seen}"
    # Both replicas take the delisting.
    latest: dict[str, bool] = {}  # replica: whether it matched at its latest answer

    def both_delisted() -> bool:
        latest.update(_answers(client, value) for _ in range(6))
        return len(latest) == 2 and not any(latest.values())

    assert eventually(both_delisted, 30), latest
