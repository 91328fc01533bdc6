"""The review desk in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against a real ``hashguard serve`` and a service's content store on loopback: content shown
blurred and grey until revealed and shielded again on leaving, keyboard shortcuts, decisions
with a reason, four eyes, and the user's complaint page. Benign generated images only."""

import re
import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.review import webhook
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore

from support.loopback import Loopback
from support.media import png
from support.server import Server, running

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "chromium absent: `make install` installs it (scripts/ensure-system-packages)",
        allow_module_level=True,
    )

KNOWN = "f" * 32 + "0" * 32
CAREFUL = "0f" * 32
IMAGE = png(5, 320, 240)


@pytest.fixture
def store() -> Iterator[Loopback]:
    """The service's content store: the item behind each reference (benign images)."""

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return (200, "image/png", IMAGE) if path.startswith("/content/") else (404, "", b"")

    made = Loopback(answer)
    yield made
    made.close()


@pytest.fixture
def desk(engine: Engine, database_url: str, store: Loopback) -> Iterator[tuple[Server, dict]]:
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.create("careful", "Test Hotline", Category.KNOWN_CSAM, ["NL"],
                 policy=ListPolicy(four_eyes=True))  # fmt: skip
    lists.apply("known", [Submission("pdq", KNOWN, frozenset({"A1"}))])
    lists.apply("careful", [Submission("pdq", CAREFUL)])
    ServiceStore(engine).create("photos", content_url=store.url + "/content/{ref}")
    keys = ApiKeyStore(engine)
    tokens = {
        "upload": keys.create(Role.MATCHER, name="photos upload check", service="photos")[1],
        "ana": keys.create(Role.REVIEWER, name="ana")[1],
        "ben": keys.create(Role.REVIEWER, name="ben")[1],
        "admin": keys.create(Role.ADMIN, name="hotline admin")[1],
    }
    with running(database_url, "--fetch-network", "127.0.0.0/8") as server:
        yield server, tokens


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def upload(server: Server, token: str, ref: str, value: str) -> None:
    answer = server.client.post(
        "/v1/match/hashes",
        json={"hashes": [{"signal": "pdq", "value": value, "content_ref": ref,
                          "account_ref": "account-1", "ip": "192.0.2.7",
                          "ip_at": "2026-11-01T10:00:00Z"}]},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json()["matched"] == 1, answer.text


def sign_in(browser, server: Server, token: str):  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/desk")
    assert page.url.endswith("/desk/login")
    page.fill("input[name=key]", token)
    page.click("text=Sign in")
    page.wait_for_url(server.url + "/desk")
    return page


def shielded(page) -> bool:  # type: ignore[no-untyped-def]
    look = page.eval_on_selector("#content", "e => getComputedStyle(e).filter")
    return "blur" in look and "grayscale" in look


def test_the_desk_shields_content_and_takes_decisions_by_keyboard(desk, browser) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "upload-1", KNOWN)
    page = sign_in(browser, server, tokens["ana"])
    assert page.locator("#queue tr[data-href]").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/desk/detections/\d+$"))
    assert page.text_content("#state") == "In review"  # opened: claimed
    page.wait_for_function("document.getElementById('content').naturalWidth > 0")
    assert page.eval_on_selector("#content", "e => e.naturalWidth") == 320  # fetched through
    assert shielded(page)
    assert "known" in page.text_content("#evidence") and "A1" in page.text_content("#evidence")
    page.click("#reveal")
    assert page.eval_on_selector("#content", "e => getComputedStyle(e).filter") == "none"
    page.evaluate("window.dispatchEvent(new Event('blur'))")  # the reviewer looks away
    assert shielded(page)
    page.keyboard.press("r")
    assert not shielded(page)
    page.hover("#content")
    assert not shielded(page)
    page.hover("h1")  # the pointer leaves the image
    assert shielded(page)
    page.keyboard.press("c")
    assert page.is_checked("input[value=confirm]")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("the listed image, slightly cropped")
    with page.expect_navigation():
        page.click("#submit")
    page.wait_for_selector("#state")
    assert page.text_content("#state") == "Confirmed"
    events = server.get("/v1/audit?limit=500", "auditor").json()["events"]
    assert any(e["action"] == "detection.view" for e in events)


def test_four_eyes_on_the_desk_and_the_users_complaint_page(desk, browser, engine) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "upload-2", CAREFUL)
    ana = sign_in(browser, server, tokens["ana"])
    with ana.expect_navigation():
        ana.click("#queue a")
    ana.keyboard.press("c")
    ana.fill("#reason", "matches the listed image")
    with ana.expect_navigation():
        ana.click("#submit")
    ana.wait_for_selector("#four-eyes")
    assert "1 for confirm, 0 for false positive" in ana.text_content("#four-eyes")
    assert ana.text_content("#state") == "In review"
    assert ana.locator("#decide").count() == 1  # still open: someone else must agree
    ben = sign_in(browser, server, tokens["ben"])
    with ben.expect_navigation():
        ben.click("#queue a")
    ben.keyboard.press("c")
    ben.fill("#reason", "agreed")
    with ben.expect_navigation():
        ben.click("#submit")
    ben.wait_for_selector("#state")
    assert ben.text_content("#state") == "Confirmed"
    ident = int(ben.url.rsplit("/", 1)[1])
    acted = server.client.post(
        f"/v1/detections/{ident}/actions",
        json={"kind": "remove", "reason": "known material", "language": "nl", "country": "NL"},
        headers={"Authorization": f"Bearer {tokens['ben']}"},
    )
    assert acted.status_code == 201, acted.text
    [notice] = [c for c in webhook.calls(engine) if c.event == "notice"]  # to the service
    link = notice.payload["complaint_url"]
    user = browser.new_context().new_page()
    user.goto(link)
    assert "Verklaring van redenen" in user.text_content("#notice")
    user.fill("#statement", "Dit is mijn eigen vakantiefoto.")
    with user.expect_navigation():
        user.click("#send")
    user.wait_for_selector("#status")
    assert user.text_content("#status").startswith("received")
    complaints = server.get("/v1/complaints", "reviewer").json()["complaints"]
    assert [c["statement"] for c in complaints] == ["Dit is mijn eigen vakantiefoto."]


def test_a_false_positive_shows_its_contested_entry_and_an_admin_reinstates_it(
    desk, browser
) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "upload-3", KNOWN)
    ana = sign_in(browser, server, tokens["ana"])
    with ana.expect_navigation():
        ana.click("#queue a")
    ana.keyboard.press("f")
    ana.fill("#reason", "a different picture")
    with ana.expect_navigation():
        ana.click("#submit")
    ana.wait_for_selector("#contested")
    assert ana.text_content("#state") == "False positive"
    row = ana.text_content("#contested tr:nth-child(2)")
    assert "known" in row and KNOWN in row and "contested" in row
    assert "until the list's curator reinstates it" in row
    assert ana.locator("form.reinstate").count() == 0  # a reviewer key curates no list
    ident = int(ana.url.rsplit("/", 1)[1])
    entry = ana.text_content("#contested tr:nth-child(2) td:nth-child(2)")
    form = {"list": "known", "entry": entry, "reason": "x",
            "csrf": ana.input_value("input[name=csrf]")}  # fmt: skip
    refused = ana.request.post(f"{server.url}/desk/detections/{ident}/reinstate", form=form)
    assert refused.status == 403
    assert f"entry {entry} of list known is not one this key may reinstate" in refused.text()
    assert server.get(f"/v1/lists/known/entries/pdq/{KNOWN}", "auditor").json()["status"] == (
        "contested"
    )

    admin = sign_in(browser, server, tokens["admin"])
    admin.goto(ana.url)
    admin.fill("form.reinstate textarea", "the listed image after all")
    with admin.expect_navigation():
        admin.click("form.reinstate button")
    admin.wait_for_selector("#contested")
    assert "active again: it matches" in admin.text_content("#contested tr:nth-child(2)")
    upload(server, tokens["upload"], "upload-4", KNOWN)  # matched at once
    events = server.get("/v1/audit?limit=500", "auditor").json()["events"]
    (reinstated,) = [e for e in events if e["action"] == "list.reinstate"]
    assert reinstated["actor"].endswith("(hotline admin)")
    assert '"reason":"the listed image after all"' in reinstated["details"]
