"""The server's decode budget through real HTTP: an upload beyond it is refused with 503 and
Retry-After once its wait is over, or decoded once room is made; beyond as many waiting uploads
as may wait, refused at once; what decodes nothing, and media over a limit, never wait for it.
The console's match tester takes the same path: 503 with Retry-After, and its uploads wait
for the budget holding no worker thread. (Served in this process, so the test can hold the
budget as a decode in flight does.)"""

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from hashguard.api import ServiceSettings
from hashguard.app import create_app
from hashguard.hotline.model import CaseState
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.media.budget import DecodeBudget, DecodeBusy
from hashguard.media.synthetic import encode, scene
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.desk_session import sign_in
from support.hotline_items import hashes_of, new_case, queued_item
from support.in_process import serving
from support.media import png_declaring
from support.waiting import eventually
from support.website import Page, website

IMAGE = encode(scene(31, 800, 600), "PNG")  # 0.48 MP


@dataclass
class World:
    client: httpx.Client
    app: FastAPI
    budget: DecodeBudget
    admin: str  # a key that may open the console's tester
    engine: Engine


def _world(tmp_path: Path, settings: ServiceSettings) -> Iterator[World]:
    # The budget is the server's own, the same on either database: SQLite alone.
    with scratch_database("sqlite", tmp_path) as database_url:
        engine = open_engine(database_url)
        keys = ApiKeyStore(engine)
        token, admin = keys.create(Role.MATCHER)[1], keys.create(Role.ADMIN)[1]
        lists = ListStore(engine)  # an entry for the tester to test against
        lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
        lists.apply("known", [Submission("pdq", "f" * 32 + "0" * 32, frozenset({"A1"}))])
        app = create_app(engine, settings)

        @app.get("/test/pool-threads")
        async def pool_threads() -> int:  # the worker threads busy now (this route uses none)
            return int(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)

        headers = {"Authorization": f"Bearer {token}"}
        try:
            with (
                serving(app) as url,
                httpx.Client(base_url=url, headers=headers, timeout=60) as client,
            ):
                yield World(client, app, app.state.service.decodes, admin, engine)
        finally:
            engine.dispose()


def _tester(world: World) -> tuple[httpx.Client, str]:
    """A client signed in at the console (the world's admin key) and its form's CSRF token."""
    client = httpx.Client(base_url=str(world.client.base_url), timeout=60)
    assert sign_in(client, world.admin).status_code == 303
    form = client.get("/console/tester")
    assert form.status_code == 200, form.text
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None
    return client, found[1]


def _test_upload(client: httpx.Client, csrf: str) -> httpx.Response:
    return client.post("/console/tester", data={"csrf": csrf, "what": "file"},
                       files={"file": ("a.png", IMAGE, "image/png")})  # fmt: skip


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
    tester, csrf = _tester(refusing)
    with refusing.budget.holding(1):  # an upload being decoded
        refused = client.post("/v1/hash", content=IMAGE)
        hma = client.post("/h/hash", files={"photo": ("a.png", IMAGE, "image/png")})
        page = _test_upload(tester, csrf)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "decode" in refused.json()["error"]["message"]
    assert hma.status_code == 503 and "decode" in hma.json()["message"]
    assert int(hma.headers["Retry-After"]) >= 1
    assert page.status_code == 503 and "decoding as much media" in page.text
    assert int(page.headers["Retry-After"]) >= 1
    assert page.headers["content-type"].startswith("text/html")
    tester.close()
    answered = client.post("/v1/hash", content=IMAGE)  # the budget free again
    assert answered.status_code == 200, answered.text
    assert "pdq" in answered.json()["hashes"]
    auditor = ApiKeyStore(refusing.app.state.service.engine).create(Role.AUDITOR)[1]
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {auditor}"}).text
    assert "hashguard_decodes_refused_total 3.0" in metrics
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


def test_the_testers_uploads_wait_for_the_budget_holding_no_worker_thread(
    queueing: World,
) -> None:
    tester, csrf = _tester(queueing)
    answers: list[httpx.Response] = []
    with queueing.budget.holding(1):
        waiting = [threading.Thread(target=lambda: answers.append(_test_upload(tester, csrf)))
                   for _ in range(3)]  # fmt: skip
        for thread in waiting:
            thread.start()
        assert eventually(lambda: queueing.budget.load().waiting == 3)
        busy = queueing.client.get("/test/pool-threads").json()
        assert not answers
    for thread in waiting:
        thread.join()
    tester.close()
    assert busy == 0  # the three wait in the event loop, not in the pool every route shares
    assert [answer.status_code for answer in answers] == [200, 200, 200], answers[0].text
    assert not any("Not now" in answer.text for answer in answers)


@pytest.fixture
def hotline(tmp_path: Path) -> Iterator[World]:
    """As ``queueing``, with a hotline whose crawler and desk reach loopback."""
    settings = ServiceSettings(secret_file=tmp_path / "secret.key", max_decodes=1,
                               decode_wait=600, hotline_country="NL",
                               hotline_networks=(ip_network("127.0.0.0/8"),))  # fmt: skip
    yield from _world(tmp_path, settings)


def test_the_hotline_desks_check_of_a_pdq_hash_waits_holding_no_worker_thread(
    hotline: World,
) -> None:
    """An item recorded by its PDQ hash alone (as a partner's referral may carry it) is shown
    once the bytes its URL serves now have that hash, decoded within the server's budget: the
    check waits for it in the event loop, not in the pool every route shares."""
    with website({"/a.png": Page(IMAGE, "image/png")}) as site:
        case = new_case(hotline.engine, site.url + "/page", CaseState.TRIAGED)
        pdq = {"pdq": hashes_of(IMAGE)["pdq"]}
        item = queued_item(hotline.engine, case, site.url + "/a.png", pdq)
        analyst = ApiKeyStore(hotline.engine).create(Role.ANALYST, name="ana")[1]
        desk = httpx.Client(base_url=str(hotline.client.base_url), timeout=60)
        assert sign_in(desk, analyst).status_code == 303
        answers: list[httpx.Response] = []
        with hotline.budget.holding(1):
            shown = threading.Thread(
                target=lambda: answers.append(desk.get(f"/desk/hotline/items/{item}/content"))
            )
            shown.start()
            assert eventually(lambda: hotline.budget.load().waiting == 1)
            busy = hotline.client.get("/test/pool-threads").json()
            assert not answers
        shown.join()
        desk.close()
    assert busy == 0
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].content == IMAGE


@pytest.fixture
def crowded(tmp_path: Path) -> Iterator[World]:
    """One decode at a time, one upload waiting at most (long enough never to give up here)."""
    secret = tmp_path / "secret.key"
    yield from _world(tmp_path, ServiceSettings(secret_file=secret, max_decodes=1,
                                                decode_wait=600, decode_waiters=1))  # fmt: skip


def test_beyond_as_many_waiting_uploads_as_may_wait_one_is_refused_at_once(
    crowded: World,
) -> None:
    answers: list[httpx.Response] = []
    with crowded.budget.holding(1):
        waiting = threading.Thread(
            target=lambda: answers.append(crowded.client.post("/v1/hash", content=IMAGE))
        )
        waiting.start()
        assert eventually(lambda: crowded.budget.load().waiting == 1)
        refused = crowded.client.post("/v1/hash", content=IMAGE)  # answered while still held
        assert not answers
    waiting.join()
    assert refused.status_code == 503, refused.text
    assert "as many uploads as may (1) already wait" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert answers[0].status_code == 200, answers[0].text


def test_the_budget_serves_in_order_and_a_large_decode_runs_alone() -> None:
    budget = DecodeBudget(decodes=4, memory=100, wait=0.0, waiters=4)
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
