"""The user's complaint page and the delivery state on the desk, against a real ``hashguard
serve``: the page carries the provider's name (else the service's), never hashguard's, and the
user's real personal link, never a placeholder; it fits a desktop and a phone (headless
Chromium, screenshots kept in the test's directory). Guessing links is bounded per address:
the right link after the limit waits too, until the window has passed. The desk's detection
page shows each delivery's state. Benign test hashes only."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.redress.notices import REDACTED
from hashguard.review import webhook
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore

from support.browser import launched
from support.desk_session import sign_in as desk_sign_in
from support.loopback import Loopback
from support.server import Server, running
from support.waiting import eventually

KNOWN = "f" * 32 + "0" * 32
PUBLIC = "https://complaints.photos.example"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    made = Loopback(lambda path, headers, body: (204, "text/plain", b""))
    yield made
    made.close()


def prepared(engine: Engine, receiver: Loopback) -> dict[str, str]:
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("known", [Submission("pdq", KNOWN, frozenset({"A1"}))])
    ServiceStore(engine).create("photos", webhook_url=receiver.url + "/hook")
    keys = ApiKeyStore(engine)
    return {"upload": keys.create(Role.MATCHER, name="upload check", service="photos")[1],
            "ana": keys.create(Role.REVIEWER, name="ana")[1]}  # fmt: skip


def removed(server: Server, tokens: dict[str, str], engine: Engine, language: str) -> int:
    """A confirmed, removed upload of service photos; its detection's id."""
    bearer = {key: {"Authorization": f"Bearer {token}"} for key, token in tokens.items()}
    matched = server.client.post("/v1/match/hashes", headers=bearer["upload"], json={
        "hashes": [{"signal": "pdq", "value": KNOWN, "content_ref": "upload-1"}]})  # fmt: skip
    assert matched.json()["matched"] == 1, matched.text
    [found] = server.client.get("/v1/detections", headers=bearer["ana"]).json()["detections"]
    ident = found["id"]
    decided = server.client.post(
        f"/v1/detections/{ident}/decision",
        headers=bearer["ana"],
        json={"decision": "confirm", "reason": "the listed image"},
    )
    assert decided.status_code == 200, decided.text
    acted = server.client.post(f"/v1/detections/{ident}/actions", headers=bearer["ana"],
                               json={"kind": "remove", "reason": "known material",
                                     "language": language, "country": "NL"})  # fmt: skip
    assert acted.status_code == 201, acted.text
    return int(ident)


def personal_link(engine: Engine) -> str:
    [notice] = [c for c in webhook.calls(engine) if c.event == "notice"]  # as the user got it
    return str(notice.payload["complaint_url"])


def test_the_complaint_page_carries_the_providers_name_and_the_real_link(
    engine: Engine, database_url: str, receiver: Loopback, tmp_path: Path
) -> None:
    tokens = prepared(engine, receiver)
    options = ("--provider-name", "Photos Example BV", "--public-url", PUBLIC)
    with running(database_url, *options) as server:
        removed(server, tokens, engine, "en")
        link = personal_link(engine)
        assert link.startswith(PUBLIC + "/complaints/")
        page = server.client.get(link.removeprefix(PUBLIC))
        screenshots(server, link.removeprefix(PUBLIC), tmp_path, "complaint")
    assert page.status_code == 200
    assert REDACTED not in page.text and f'<a id="link" href="{link}">{link}</a>' in page.text
    assert "<title>Complaint · Photos Example BV</title>" in page.text
    assert '<strong id="brand">Photos Example BV</strong>' in page.text
    assert "hashguard" not in page.text.lower()


def test_without_a_provider_name_the_page_carries_the_services(
    engine: Engine, database_url: str, receiver: Loopback
) -> None:
    tokens = prepared(engine, receiver)
    with running(database_url) as server:
        removed(server, tokens, engine, "nl")
        link = personal_link(engine)
        assert link.startswith(server.url + "/complaints/")  # the listening address
        page = server.client.get(link)
    assert REDACTED not in page.text and link in page.text
    assert '<strong id="brand">photos</strong>' in page.text and "Klacht · photos" in page.text
    assert "hashguard" not in page.text.lower()


def test_guessing_complaint_links_is_bounded_per_address_and_counted(
    engine: Engine, database_url: str, receiver: Loopback
) -> None:
    tokens = prepared(engine, receiver)
    options = ("--guess-failures", "3", "--guess-window", "2")  # a short window to wait out
    with running(database_url, *options) as server:
        removed(server, tokens, engine, "en")
        path = personal_link(engine).removeprefix(server.url)
        for number in range(3):
            assert server.get(f"/complaints/wrong-guess-{number}").status_code == 404
        limited = server.get(path)  # the right link, after the limit: refused all the same
        complaint = {"token": path.rsplit("/", 1)[1], "statement": "it is my own photo"}
        refused = server.post("/v1/complaints", json=complaint)
        metrics = server.get("/metrics", "auditor").text
        wait = int(limited.headers["retry-after"])

        def reopened() -> httpx.Response | None:  # a refused request is not counted as a guess
            answer = server.get(path)
            return None if answer.status_code == 429 else answer

        opened = eventually(reopened)  # once the short window has passed
    assert limited.status_code == 429 and 1 <= wait <= 2
    assert limited.headers["content-type"].startswith("text/html")
    assert "Please wait a little" in limited.text and "come back in a minute" in limited.text
    assert "hashguard" not in limited.text.lower()  # the provider's page, not ours
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert 'hashguard_rate_limited_total{route="/complaints/{token}",scope="address"} 1.0' in (
        metrics
    )
    assert 'hashguard_rate_limited_total{route="/v1/complaints",scope="address"} 1.0' in metrics
    assert opened is not None and opened.status_code == 200
    assert "Complain about this decision" in opened.text


def test_a_refused_complaint_counts_one_use_of_the_link(
    engine: Engine, database_url: str, receiver: Loopback
) -> None:
    tokens = prepared(engine, receiver)
    with running(database_url, "--secret-uses-per-hour", "3") as server:
        removed(server, tokens, engine, "en")
        path = personal_link(engine).removeprefix(server.url)
        refused = server.post(path, data={"statement": " "})  # one use: refused, the page again
        uses = [server.get(path).status_code for _ in range(3)]  # two more uses, then past
    assert refused.status_code == 409 and "say in a few words" in refused.text
    assert uses == [200, 200, 429]


def test_the_desks_detection_page_shows_each_deliverys_state(
    engine: Engine, database_url: str, receiver: Loopback, tmp_path: Path
) -> None:
    tokens = prepared(engine, receiver)
    with running(database_url) as server:
        ident = removed(server, tokens, engine, "en")
        assert receiver.wait_for(3)  # the quarantine, the removal, the notice
        desk = httpx.Client(base_url=server.url)
        signed_in = desk_sign_in(desk, tokens["ana"])
        assert signed_in.status_code == 303
        page = desk.get(f"/desk/detections/{ident}")
        desk.close()
        # At phone width its tables scroll within the page; the page is no wider than the phone.
        screenshots(server, f"/desk/detections/{ident}", tmp_path, "detection", tokens["ana"])
    assert page.status_code == 200
    rows = page.text.split('<table id="deliveries">', 1)[1].split("</table>", 1)[0]
    assert rows.count('<tr class="delivery') == 3  # the quarantine, the removal, the notice
    for what in ("quarantine", "remove", "statement of reasons"):
        assert f"<td>{what}</td>\n<td>delivered</td>" in rows, rows


def screenshots(server: Server, path: str, directory: Path, name: str, key: str = "") -> None:
    """``path`` on the live server in headless Chromium at desktop and phone width (signed in
    to the desk with ``key`` first, if given), nothing wider than the screen. The PNGs stay in
    ``directory``."""
    with launched() as browser:
        for size, (width, height) in SIZES.items():
            view = browser.new_page(viewport={"width": width, "height": height})
            if key:
                view.goto(server.url + "/desk/login")
                view.fill("input[name=key]", key)
                view.click("text=Sign in")
                view.wait_for_url(server.url + "/desk")
            view.goto(server.url + path)
            view.screenshot(path=directory / f"{name}-{size}.png", full_page=True)
            overflow = view.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{name} is {overflow} px wider than a {size} screen"
            view.close()
