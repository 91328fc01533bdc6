"""The hoster portal in a real headless Chromium against a real ``hashguard serve`` with a
hotline: a hoster signs in with its hoster key, sees its open notices most urgent first (the
overdue marked), opens one (addresses, hashes, labels, deadline, history; never content) and
answers it (acknowledge, dispute with a reason, removed), confirms a removal order; another
hoster's notice is not there for it; a form without the session's token is refused; its
figures are shown. Screenshots at desktop and phone width go to /work/shots when it exists."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.tables import TakedownEventRow

from support.browser import chromium, launched
from support.notice_rows import stored_notice
from support.server import Server, running

chromium()  # else the module is skipped, saying what installs it

HOSTERS = """\
[[hoster]]
name = "Files BV"
country = "NL"
networks = ["192.0.2.0/24"]
abuse_email = "abuse@files.example"

[[hoster]]
name = "Other Hosting"
country = "NL"
networks = ["198.51.100.0/24"]
abuse_email = "abuse@other.example"
"""
SHOTS = Path("/work/shots")


class Portal:
    def __init__(self, server: Server, tokens: dict[str, str], ids: dict[str, int]) -> None:
        self.server = server
        self.tokens = tokens
        self.ids = ids


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    directory = tmp_path_factory.mktemp("hosters")
    (directory / "hosters.toml").write_text(HOSTERS)
    url = f"sqlite:///{directory / 'hashguard.db'}"
    engine = open_engine(url)
    now = datetime.now(UTC)
    later = now + timedelta(days=300)  # the scheduler leaves them be
    ids = {
        "late": stored_notice(engine, hoster="Files BV", state="open", next_action_at=later,
                              deadline_at=now - timedelta(hours=5),
                              sent_at=now - timedelta(hours=29),
                              urls=["https://files.example/late/1.jpg"]).id,
        "soon": stored_notice(engine, hoster="Files BV", state="open", next_action_at=later,
                              deadline_at=now + timedelta(hours=3), sent_at=now).id,
        "order": stored_notice(engine, hoster="Files BV", state="open", next_action_at=later,
                               kind="order", items=[], urls=["https://files.example/order.jpg"],
                               legal_basis="CSA Regulation, Art 14", reference="ATKM-2026-12",
                               deadline_at=now + timedelta(hours=20), sent_at=now).id,
        "theirs": stored_notice(engine, hoster="Other Hosting", state="open",
                                next_action_at=later).id,
        "removed": stored_notice(engine, hoster="Files BV", state="removed",
                                 reported_at=now - timedelta(days=6),
                                 verified_at=now - timedelta(days=1), next_action_at=None).id,
    }  # fmt: skip
    store = ApiKeyStore(engine)
    tokens = {
        "files": store.create(Role.HOSTER, name="files desk", hoster="Files BV")[1],
        "other": store.create(Role.HOSTER, name="other", hoster="Other Hosting")[1],
    }
    engine.dispose()
    with running(url, "--hotline-country", "NL", "--hotline-hosters",
                 str(directory / "hosters.toml")) as server:  # fmt: skip
        yield Portal(server, tokens, ids)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def sign_in(browser: Any, portal: Portal, token: str, width: int = 1280) -> Any:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(portal.server.url + "/hosters")
    assert page.url == portal.server.url + "/hosters/login"  # not signed in: the sign-in page
    page.fill("input[name=key]", token)
    with page.expect_navigation():
        page.click("text=Sign in")
    assert page.url == portal.server.url + "/hosters"
    return page


def shoot(page: Any, name: str) -> None:
    if SHOTS.is_dir():
        page.screenshot(path=str(SHOTS / f"hosters-{name}.png"), full_page=True)


def test_the_open_notices_most_urgent_first_with_the_overdue_marked(
    browser: Any, portal: Portal
) -> None:
    page = sign_in(browser, portal, portal.tokens["files"])
    rows = page.locator("#open tbody tr")
    ids = portal.ids
    assert [rows.nth(i).get_attribute("id") for i in range(rows.count())] == [
        f"notice-{ids['late']}",
        f"notice-{ids['soon']}",
        f"notice-{ids['order']}",
    ]
    assert "overdue" in (rows.nth(0).get_attribute("class") or "")
    assert "overdue" not in (rows.nth(1).get_attribute("class") or "")
    assert page.locator("#overdue-alert").inner_text().startswith("1 past the deadline.")
    assert page.locator("#closed").inner_text().count("Removal verified") == 1
    assert f"notice-{ids['theirs']}" not in page.content()
    assert page.locator("#count-notices").inner_text() == "4"
    # its one verified removal took 5 days from the report: long spans read in days
    assert page.locator("#median").inner_text() == "5.0 days"
    shoot(page, "portal-1280")
    phone = sign_in(browser, portal, portal.tokens["files"], width=390)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sideways
    shoot(phone, "portal-390")


def test_a_notice_is_answered_acknowledged_disputed_and_removed(
    browser: Any, portal: Portal
) -> None:
    page = sign_in(browser, portal, portal.tokens["files"])
    notice = portal.ids["late"]
    page.click(f"#notice-{notice} a")
    assert page.url.endswith(f"/hosters/notices/{notice}")
    assert "https://files.example/late/1.jpg" in page.locator("#urls").inner_text()
    assert "pdq" in page.locator("#items").inner_text()
    assert "OVERDUE" in page.locator("#deadline").inner_text().upper()
    assert page.locator("img, video").count() == 0  # never content
    shoot(page, "notice-1280")
    with page.expect_navigation():
        page.click("#acknowledge")
    assert page.locator("#done").inner_text() == "Acknowledged. Thank you."
    assert "acknowledged" in page.locator("#state").inner_text()
    assert page.locator("#acknowledge").count() == 0
    page.fill("#dispute", "These are medical illustrations, not abuse.")
    with page.expect_navigation():
        page.click("#dispute-send")
    assert page.locator("#dispute-reason").inner_text() == (
        "These are medical illustrations, not abuse."
    )
    with page.expect_navigation():
        page.click("#removed")
    assert "the hotline is checking" in page.locator("#claimed").inner_text()
    history = page.locator("#history").inner_text()
    assert "You acknowledged it" in history and "You disputed it" in history
    assert "You said it was removed" in history
    engine = open_engine(portal.server.database_url)
    try:
        with engine.connect() as connection:
            kinds = [e.kind for e in connection.execute(
                select(TakedownEventRow).where(TakedownEventRow.notice_id == notice))]  # fmt: skip
    finally:
        engine.dispose()
    assert kinds[:3] == ["acknowledged", "disputed", "claimed"]
    phone = sign_in(browser, portal, portal.tokens["files"], width=390)
    phone.goto(portal.server.url + f"/hosters/notices/{portal.ids['soon']}")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(phone, "notice-390")


def test_an_order_is_confirmed(browser: Any, portal: Portal) -> None:
    page = sign_in(browser, portal, portal.tokens["files"])
    page.goto(portal.server.url + f"/hosters/notices/{portal.ids['order']}")
    assert page.locator("#basis").inner_text() == "CSA Regulation, Art 14"
    assert page.locator("#removed").count() == 0  # an order is confirmed, not claimed
    with page.expect_navigation():
        page.click("#confirm")
    assert page.locator("#outcome").inner_text() == "confirmed"
    assert page.locator("#confirm").count() == 0


def test_another_hosters_notice_is_not_there(browser: Any, portal: Portal) -> None:
    page = sign_in(browser, portal, portal.tokens["other"])
    answer = page.goto(portal.server.url + f"/hosters/notices/{portal.ids['late']}")
    assert answer.status == 404
    assert f"no notice {portal.ids['late']}" in page.content()
    missing = page.goto(portal.server.url + "/hosters/notices/999999")
    assert missing.status == 404


def test_a_refused_answer_says_why_and_a_stale_form_is_refused(browser: Any,
                                                              portal: Portal) -> None:  # fmt: skip
    page = sign_in(browser, portal, portal.tokens["files"])
    page.goto(portal.server.url + f"/hosters/notices/{portal.ids['soon']}")
    page.evaluate("document.querySelector('#dispute').removeAttribute('required')")
    page.click("#dispute-send")
    page.wait_for_selector("#error")
    assert "a dispute needs a reason" in page.locator("#error").inner_text()
    session = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=portal.server.url, cookies=session) as client:
        forged = client.post(f"/hosters/notices/{portal.ids['soon']}/acknowledge",
                             data={"csrf": "guess"})  # fmt: skip
    assert forged.status_code == 403 and "stale" in forged.text


def test_other_roles_and_wrong_keys_are_turned_away(browser: Any, portal: Portal) -> None:
    page = browser.new_context().new_page()
    page.goto(portal.server.url + "/hosters/login")
    page.fill("input[name=key]", "hg_nonsense")
    page.click("text=Sign in")
    page.wait_for_selector("#error")
    assert "not a live hoster key" in page.locator("#error").inner_text()
    analyst = portal.server.tokens["analyst"]
    page.fill("input[name=key]", analyst)
    with page.expect_navigation():
        page.click("text=Sign in")
    answer = page.goto(portal.server.url + "/hosters")
    assert answer.status == 403
