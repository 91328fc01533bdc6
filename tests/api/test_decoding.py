"""The server's decode budget through real HTTP: an upload beyond it is refused with 503 and
Retry-After once its wait is over, or decoded once room is made; what decodes nothing, and media
over a limit, never wait for it. (Served in this process, so the test can hold the budget as a
decode in flight does.)"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hashguard.api import ServiceSettings
from hashguard.api.decoding import DecodeBudget, DecodeBusy
from hashguard.app import create_app
from hashguard.media.synthetic import encode, scene
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine

from support.database import scratch_database
from support.in_process import serving
from support.media import png_declaring
from support.waiting import eventually

IMAGE = encode(scene(31, 800, 600), "PNG")  # 0.48 MP


@dataclass
class World:
    client: httpx.Client
    app: FastAPI
    budget: DecodeBudget


def _world(tmp_path: Path, settings: ServiceSettings) -> Iterator[World]:
    # The budget is the server's own, the same on either database: SQLite alone.
    with scratch_database("sqlite", tmp_path) as database_url:
        engine = open_engine(database_url)
        token = ApiKeyStore(engine).create(Role.MATCHER)[1]
        app = create_app(engine, settings)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with (
                serving(app) as url,
                httpx.Client(base_url=url, headers=headers, timeout=60) as client,
            ):
                yield World(client, app, app.state.service.decodes)
        finally:
            engine.dispose()


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[World]:
    """One decode at a time; an upload beyond it is refused at once."""
    secret = tmp_path / "secret.key"
    yield from _world(tmp_path, ServiceSettings(secret_file=secret, max_decodes=1, decode_wait=0))


@pytest.fixture
def queueing(tmp_path: Path) -> Iterator[World]:
    """One decode at a time; an upload beyond it waits (long enough never to give up here)."""
    secret = tmp_path / "secret.key"
    yield from _world(tmp_path, ServiceSettings(secret_file=secret, max_decodes=1, decode_wait=600))


def test_an_upload_beyond_the_budget_is_refused_with_503_and_retry_after(
    refusing: World,
) -> None:
    client = refusing.client
    with refusing.budget.holding(1):  # an upload being decoded
        refused = client.post("/v1/hash", content=IMAGE)
        hma = client.post("/h/hash", files={"photo": ("a.png", IMAGE, "image/png")})
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "decode" in refused.json()["error"]["message"]
    assert hma.status_code == 503 and "decode" in hma.json()["message"]
    assert int(hma.headers["Retry-After"]) >= 1
    answered = client.post("/v1/hash", content=IMAGE)  # the budget free again
    assert answered.status_code == 200, answered.text
    assert "pdq" in answered.json()["hashes"]
    auditor = ApiKeyStore(refusing.app.state.service.engine).create(Role.AUDITOR)[1]
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {auditor}"}).text
    assert "hashguard_decodes_refused_total 2.0" in metrics
    assert "hashguard_decodes_in_flight 0.0" in metrics


def test_what_decodes_nothing_or_is_over_a_limit_never_waits(refusing: World) -> None:
    client = refusing.client
    with refusing.budget.holding(1):
        digests = client.post("/v1/hash", params={"signals": "sha256"}, content=IMAGE)
        other = client.post("/v1/hash", content=b"plain text, not media " * 10)
        bomb = png_declaring(100_000, 100_000)
        digested = client.post("/v1/hash", content=bomb)
        refused = client.post("/v1/hash", params={"signals": "pdq"}, content=bomb)
    assert digests.status_code == 200, digests.text
    assert other.status_code == 200 and other.json()["kind"] == "other"
    # A bomb is refused from its header, not queued: its digests alone, or 413 for PDQ alone.
    assert digested.status_code == 200 and "pixel count" in digested.json()["failed"]
    assert refused.status_code == 413, refused.text


def test_an_upload_beyond_the_budget_waits_its_turn(queueing: World) -> None:
    answers: list[httpx.Response] = []
    with queueing.budget.holding(1):
        waiting = threading.Thread(
            target=lambda: answers.append(queueing.client.post("/v1/hash", content=IMAGE))
        )
        waiting.start()
        assert eventually(lambda: queueing.budget.load().waiting == 1)
        assert not answers  # still waiting while the budget is held
    waiting.join()
    assert answers[0].status_code == 200, answers[0].text


def test_the_budget_serves_in_order_and_a_large_decode_runs_alone() -> None:
    budget = DecodeBudget(decodes=4, memory=100, wait=0.0)
    with budget.holding(60):
        with pytest.raises(DecodeBusy), budget.holding(50):  # 60 + 50 > 100
            pass
        with budget.holding(40):
            assert budget.load().memory == 100
    with budget.holding(10_000):  # larger than the budget: alone
        assert budget.load().memory == 100
        with pytest.raises(DecodeBusy, match="try again in"), budget.holding(1):
            pass
    assert budget.load().decodes == 0 and budget.load().refused == 2


def test_the_document_declares_503_with_retry_after_on_every_route_that_decodes(
    refusing: World,
) -> None:
    paths = refusing.client.get("/openapi.json").json()["paths"]
    decoding = [("/v1/hash", "post"), ("/v1/match/media", "post"), ("/h/hash", "post"),
                ("/h/hash", "get"), ("/m/lookup", "get"), ("/m/lookup", "post"),
                ("/c/bank/{name}/content", "post")]  # fmt: skip
    for path, method in decoding:
        refusal = paths[path][method]["responses"]["503"]
        assert "Retry-After" in refusal["headers"], (path, method)
