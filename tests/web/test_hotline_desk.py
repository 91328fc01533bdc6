"""The hotline's assessment desk in a real headless Chromium against a real ``hashguard serve``
(``--hotline-country NL``, ``--hotline-network 127.0.0.0/8`` so that its crawler reaches loopback)
and a real website on loopback serving benign generated images: analysts sign in with analyst
keys, see the queue (never a thumbnail), open an item fetched again from its URL, shielded until
revealed and each viewing audited, and assess it with labels; four eyes with two analysts; what
each role may open."""

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hashguard.hotline.model import CaseState, ItemState
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.store.tables import HotlineCaseRow, HotlineItemRow

from support.browser import chromium, launched
from support.hotline_items import BASELINE, NOT_ILLEGAL, events
from support.media import png
from support.server import Server, running
from support.waiting import eventually
from support.website import Page, Website, website

chromium()  # else the module is skipped, saying what installs it

PICTURE = png(21, 320, 240)
OTHER = png(22, 300, 200)
THIRD = png(23, 280, 210)
CONTACT = "reporter@example.org"


def gallery(*images: str) -> Page:
    shown = "".join(f'<img src="{name}" alt="">' for name in images)
    return Page(f"<!doctype html><title>Gallery</title><p>Photos</p>{shown}".encode())


@pytest.fixture
def site() -> Iterator[Website]:
    """A website whose pages the test may change while it runs (``site.pages``)."""
    pages = {"/gallery.html": gallery("/a.png"), "/a.png": Page(PICTURE, "image/png"),
             "/two.html": gallery("/b.png", "/c.png"), "/b.png": Page(OTHER, "image/png"),
             "/c.png": Page(THIRD, "image/png")}  # fmt: skip
    with website(pages) as made:
        yield made


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def keys(engine: Engine) -> dict[str, str]:
    store = ApiKeyStore(engine)
    return {name: store.create(role, name=name)[1] for name, role in (
        ("ana", Role.ANALYST), ("ben", Role.ANALYST), ("cy", Role.ANALYST),
        ("rita", Role.REVIEWER), ("adam", Role.ADMIN))}  # fmt: skip


def hotline(database_url: str, *options: str) -> Any:
    return running(database_url, "--hotline-country", "NL", "--hotline-network", "127.0.0.0/8",
                   *options)  # fmt: skip


def reported(server: Server, engine: Engine, *urls: str) -> list[int]:
    """Report ``urls`` on the public page; the ids of the items queued from them once crawled,
    in the order of ``urls`` (each in its normal form)."""
    answer = server.client.post(
        "/report", data={"urls": "\n".join(urls), "seen_where": "a forum", "contact": CONTACT}
    )
    assert answer.status_code == 201, answer.text
    cases, items = HotlineCaseRow.__table__, HotlineItemRow.__table__
    crawling = [CaseState.NEW.value, CaseState.CRAWLING.value]

    def crawled() -> bool:
        with engine.connect() as connection:
            waiting = connection.execute(select(cases.c.id).where(cases.c.state.in_(crawling)))
            return waiting.first() is None

    assert eventually(crawled, 60.0), "the hotline never crawled every reported page"
    with engine.connect() as connection:
        queued = connection.execute(
            select(items.c.id, cases.c.url)
            .join(cases, cases.c.id == items.c.case_id)
            .where(items.c.state == ItemState.QUEUED.value)
        ).all()
    # the page order of ``urls``, then the page's own order (two crawlers take the pages in any
    # order, so item ids alone do not say which page an item came from)
    return [row.id for row in sorted(queued, key=lambda row: (urls.index(row.url), row.id))]


def sign_in(browser: Any, server: Server, token: str, lands: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url + "/desk/login")
    page.fill("input[name=key]", token)
    with page.expect_navigation():
        page.click("text=Sign in")
    assert page.url == server.url + lands
    return page


def shielded(page: Any) -> bool:
    look = page.eval_on_selector("#content", "e => getComputedStyle(e).filter")
    return "blur" in look and "grayscale" in look


def labelled(page: Any, labels: dict[str, str]) -> None:
    """Choose ``labels`` on the item's form and send it."""
    for group, value in labels.items():
        page.select_option(f"#label-{group}", value)
    with page.expect_navigation():
        page.click("#submit")


def sha256s(engine: Engine, list_name: str, *images: bytes) -> bool:
    """Whether the list holds each image's SHA-256."""
    lists = ListStore(engine)
    return all(lists.entry(list_name, "sha256", hashlib.sha256(i).hexdigest()) for i in images)


def test_an_analyst_assesses_an_item_fetched_again_shielded_and_audited(
    engine: Engine, database_url: str, site: Website, browser: Any
) -> None:
    tokens = keys(engine)
    with hotline(database_url) as server:
        [item] = reported(server, engine, site.url + "/gallery.html")
        page = sign_in(browser, server, tokens["ana"], "/desk/hotline")
        assert page.locator("#queue tr[data-href]").count() == 1
        assert page.text_content("#queue td[data-label=Host]") == f"127.0.0.1:{site.port}"
        assert page.locator("img, video").count() == 0  # never a thumbnail
        assert "no analyst had to view them" in page.text_content("#auto-share-means")
        fetched_before = site.fetched.count("/a.png")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/desk/hotline/items/{item}")
        page.wait_for_function("document.getElementById('content').naturalWidth > 0")
        assert page.eval_on_selector("#content", "e => e.naturalWidth") == 320
        assert site.fetched.count("/a.png") == fetched_before + 1  # fetched again, now
        assert shielded(page)
        assert page.text_content("#item-url") == site.url + "/a.png"
        assert page.text_content("#case-url") == site.url + "/gallery.html"
        assert "200" in page.text_content("#fetch") and "image/png" in page.text_content("#fetch")
        assert hashlib.sha256(PICTURE).hexdigest() in page.text_content("#fetch")
        assert "127.0.0.1" in page.text_content("#trace")
        [viewed] = events(engine, "hotline.item.viewed")
        assert viewed.actor.endswith("(ana)") and viewed.subject == f"item:{item}"
        page.click("#reveal")
        assert page.eval_on_selector("#content", "e => getComputedStyle(e).filter") == "none"
        page.evaluate("window.dispatchEvent(new Event('blur'))")  # the analyst looks away
        assert shielded(page)
        page.keyboard.press("r")
        page.hover("#content")
        assert not shielded(page)
        page.hover("h1")  # the pointer leaves the image
        assert shielded(page)

        labelled(page, {**BASELINE, "age": "adult"})  # refused: inconsistent
        assert "inconsistent labels" in page.text_content("#error")
        assert page.input_value("#label-age") == "adult"  # what was chosen, chosen again
        assert page.input_value("#label-industry") == "A1"
        labelled(page, BASELINE)
        assert page.get_attribute("#result", "data-state") == "final"
        assert "hotline-illegal" in page.text_content("#listed")
        assert re.search(r"NL \(here\)\s*illegal", page.text_content("#legality"))
        assert sha256s(engine, "hotline-illegal", PICTURE)

        page.goto(server.url + "/desk/hotline")
        assert page.text_content("#items-assessed") == "1"
        assert page.text_content("#empty") == "Nothing to assess."
        page.click("#reports a")  # the report's case
        page.wait_for_selector("#items")
        case = page.content()
        assert "Assessed" in page.text_content("#items") and "baseline" in case
        assert "a forum" in page.text_content("#reports")
        assert CONTACT not in case  # never the contact itself
        assert page.locator("img, video").count() == 0  # never content
        assert page.locator("#fetches details").count() == 2  # the page and the image
        page.goto(f"{server.url}/desk/hotline/items/{item}")  # assessed: not shown again
        assert page.locator("#content").count() == 0 and page.locator("#assess").count() == 0
        assert server.get(f"/desk/hotline/items/{item}/content").status_code == 401  # no session


def test_content_gone_or_different_is_said_and_not_shown(
    engine: Engine, database_url: str, site: Website, browser: Any
) -> None:
    tokens = keys(engine)
    with hotline(database_url) as server:
        changed, gone = reported(server, engine, site.url + "/two.html")
        site.pages["/b.png"] = Page(THIRD, "image/png")  # type: ignore[index]
        site.pages["/c.png"] = Page(b"gone", "text/plain", 404)  # type: ignore[index]
        page = sign_in(browser, server, tokens["ben"], "/desk/hotline")
        page.goto(f"{server.url}/desk/hotline/items/{changed}")
        page.wait_for_selector("#fetch-error:not([hidden])")
        assert "The URL now serves different content" in page.text_content("#fetch-error")
        page.goto(f"{server.url}/desk/hotline/items/{gone}")
        page.wait_for_selector("#fetch-error:not([hidden])")
        said = page.text_content("#fetch-error")
        assert said == "The URL answered 404: the content is gone from it."
        assert events(engine, "hotline.item.viewed") == []  # nothing was shown
        assert page.locator("#assess").count() == 1  # the analyst decides on the record


def test_four_eyes_with_two_analysts_and_what_each_role_may_open(
    engine: Engine, database_url: str, site: Website, browser: Any
) -> None:
    tokens = keys(engine)
    with hotline(database_url, "--hotline-four-eyes") as server:
        agreed, disagreed, _ = reported(server, engine, site.url + "/gallery.html",
                                        site.url + "/two.html")  # fmt: skip
        ana = sign_in(browser, server, tokens["ana"], "/desk/hotline")
        ana.goto(f"{server.url}/desk/hotline/items/{agreed}")
        twice = ana.context.new_page()  # the same form, open in a second tab
        twice.goto(f"{server.url}/desk/hotline/items/{agreed}")
        labelled(ana, BASELINE)
        assert ana.get_attribute("#result", "data-state") == "pending"
        assert "Waiting for a second analyst" in ana.text_content("#result-title")
        labelled(twice, BASELINE)  # the same analyst again: refused on the form
        assert "ana" in twice.text_content("#error")
        assert "four eyes need a second analyst" in twice.text_content("#error")
        ana.goto(server.url + "/desk/hotline")
        assert "Second analyst needed" in ana.text_content(f"#queue tr[data-href$='/{agreed}']")
        ana.goto(f"{server.url}/desk/hotline/items/{agreed}")
        assert ana.locator("#assess").count() == 0  # not hers to finish
        assert ana.locator("#content").count() == 0  # nor shown to her again

        ben = sign_in(browser, server, tokens["ben"], "/desk/hotline")
        ben.goto(f"{server.url}/desk/hotline/items/{agreed}")
        assert "ana has assessed it" in ben.text_content("#four-eyes")  # the key's name, as the API
        labelled(ben, BASELINE)
        assert ben.get_attribute("#result", "data-state") == "final"
        assert sha256s(engine, "hotline-illegal", PICTURE)

        ana.goto(f"{server.url}/desk/hotline/items/{disagreed}")
        labelled(ana, NOT_ILLEGAL)
        ben.goto(f"{server.url}/desk/hotline/items/{disagreed}")
        labelled(ben, BASELINE)
        assert ben.get_attribute("#result", "data-state") == "disagreed"
        assert "back in the queue" in ben.text_content("#result-title")
        cy = sign_in(browser, server, tokens["cy"], "/desk/hotline")
        assert cy.locator(f"#queue tr[data-href$='/{disagreed}']").count() == 1

        rita = sign_in(browser, server, tokens["rita"], "/desk")  # a reviewer
        answer = rita.goto(server.url + "/desk/hotline")
        assert answer.status == 403 and "Not for your key" in rita.text_content("h1")
        assert rita.goto(f"{server.url}/desk/hotline/cases/1").status == 403
        assert cy.goto(server.url + "/desk").status == 403  # an analyst: no detections queue
        adam = sign_in(browser, server, tokens["adam"], "/desk")  # an admin: both desks
        assert adam.goto(server.url + "/desk/hotline").status == 200
        assert adam.locator("header nav a").all_text_contents() == ["Detections", "Hotline",
                                                                "Console"]  # fmt: skip
