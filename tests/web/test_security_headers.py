"""Every page's security headers, from one source, in a real headless Chromium against a real
``hashguard serve`` (hotline and takedown on): each page of every router, public and signed in,
carries the Content-Security-Policy (no inline script, nothing from another origin, framed by
no one), no referrer, nosniff and no-store, and loads with no policy violation reported; the
desks' session cookie is Secure, HttpOnly and SameSite=Strict, and the desk works with it over
http://127.0.0.1. JSON answers carry the API's headers. Benign test hashes only."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.web.headers import OTHER, PAGE

from support.browser import launched
from support.server import Server, running

KNOWN = "f" * 32 + "0" * 32
# Each page anyone may open: (path, status).
PUBLIC = [("/victims", 200), ("/victims/follow", 200), ("/report", 200),
          ("/report/status", 200), ("/monitor", 200), ("/desk/login", 200),
          ("/hosters/login", 200), ("/complaints/not-a-link", 404)]  # fmt: skip
# Each page of a signed-in admin: (path, status); {detection}: a real detection.
SIGNED_IN = [("/", 200), ("/console/tester", 200), ("/desk", 200),
             ("/desk/detections/{detection}", 200), ("/desk/detections/999999", 404),
             ("/desk/hotline", 200), ("/desk/hotline/items/999999", 404),
             ("/desk/hotline/cases/999999", 404)]  # fmt: skip
HOSTER = [("/hosters", 200), ("/hosters/notices/999999", 404)]
# Reports the page's violations of its policy to the test (an init script runs under no CSP).
WATCH = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"""


@pytest.fixture
def served(engine: Engine, database_url: str) -> Iterator[tuple[Server, dict[str, str], int]]:
    """The service with one detection (its id), and keys: admin, hoster."""
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("known", [Submission("pdq", KNOWN, frozenset({"A1"}))])
    ServiceStore(engine).create("photos")
    keys = ApiKeyStore(engine)
    tokens = {"upload": keys.create(Role.MATCHER, name="upload", service="photos")[1],
              "admin": keys.create(Role.ADMIN, name="adam")[1],
              "hoster": keys.create(Role.HOSTER, name="files", hoster="Files BV")[1]}  # fmt: skip
    with running(database_url, "--hotline-country", "NL") as server:
        matched = server.client.post(
            "/v1/match/hashes", headers={"Authorization": f"Bearer {tokens['upload']}"},
            json={"hashes": [{"signal": "pdq", "value": KNOWN, "content_ref": "upload-1"}]},
        )  # fmt: skip
        assert matched.json()["matched"] == 1, matched.text
        detections = server.get("/v1/detections", "admin").json()["detections"]
        yield server, tokens, detections[0]["id"]


def _signed_in(browser: Any, server: Server, key: str, login: str, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    if key:
        page.goto(server.url + login)
        page.fill("input[name=key]", key)
        with page.expect_navigation():
            page.click("button:has-text('Sign in')")
        assert "/login" not in page.url, page.content()
    return page


def _visit(page: Any, url: str, status: int, console: list[str]) -> list[str]:
    """What is wrong with the page at ``url``: its status, a missing header, a violation."""
    answer = page.goto(url)
    page.wait_for_load_state("networkidle")
    wrong = [] if answer.status == status else [f"{url}: status {answer.status}"]
    headers = answer.all_headers()
    wrong += [f"{url}: {name}: {headers.get(name.lower())!r}" for name, value in PAGE.items()
              if headers.get(name.lower()) != value]  # fmt: skip
    wrong += [f"{url}: {v}" for v in page.evaluate("window.__violations")]
    wrong += [f"{url}: {m}" for m in console if "Content Security Policy" in m]
    console.clear()
    return wrong


def test_every_page_carries_the_headers_and_breaks_no_policy(
    served: tuple[Server, dict[str, str], int],
) -> None:
    server, tokens, detection = served
    wrong: list[str] = []
    with launched() as browser:
        for key, login, pages in (("", "", PUBLIC), (tokens["admin"], "/desk/login", SIGNED_IN),
                                  (tokens["hoster"], "/hosters/login", HOSTER)):  # fmt: skip
            page = _signed_in(browser, server, key, login, 1280)
            console: list[str] = []
            page.on("console", lambda message, seen=console: seen.append(message.text))
            for path, status in pages:
                wrong += _visit(page, server.url + path.format(detection=detection), status,
                                console)  # fmt: skip
            if key:
                [cookie] = [c for c in page.context.cookies() if c["name"] == "hg_desk"]
                assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (
                    True, True, "Strict")  # fmt: skip
            page.context.close()
    assert not wrong, "\n".join(wrong)


def test_a_limited_page_is_calm_and_fits_a_phone(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with running(database_url, "--guess-failures", "1") as server, launched() as browser:
        for width in (1280, 390):
            page = _signed_in(browser, server, "", "", width)
            for path in ("/complaints/a-guess", "/complaints/another-guess"):
                answer = page.goto(server.url + path)  # the first, once: 404
            assert answer.status == 429 and "Please wait a little" in page.content()
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / f"limited-complaint-{width}.png"),
                            full_page=True)  # fmt: skip
            for _ in range(2):
                page.goto(server.url + "/desk/login")
                page.fill("input[name=key]", "hg_not-a-key")
                with page.expect_navigation() as sent:
                    page.click("button:has-text('Sign in')")
            assert sent.value.status == 429 and "Too many sign-ins" in page.content()
            assert page.evaluate("window.__violations") == []
            page.screenshot(path=str(tmp_path / f"limited-login-{width}.png"), full_page=True)
            page.context.close()


def test_json_answers_carry_the_apis_headers(served: tuple[Server, dict[str, str], int]) -> None:
    server, tokens, _ = served
    upload = {"Authorization": f"Bearer {tokens['upload']}"}
    lookup = {"signal_type": "pdq", "signal": KNOWN}
    answers = [
        server.get("/v1/lists"), server.get("/v1/lists", "admin"),
        # the hot routes (api/hot.py), answered below the framework: matches and refusals
        server.client.post("/v1/match/hashes", headers=upload,
                           json={"hashes": [{"signal": "pdq", "value": KNOWN}]}),
        server.client.post("/v1/match/hashes", headers=upload,
                           json={"hashes": [{"signal": "pdq", "value": KNOWN}], "lists": ["no"]}),
        server.get("/m/raw_lookup", "admin", params=lookup),
        server.get("/m/lookup", "admin", params=lookup),
        server.get("/m/lookup", "admin", params={**lookup, "banks": "NONE"}),
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [401, 200, 200, 404, 200, 200, 200]
    for answer in answers:
        for name, value in OTHER.items():
            assert answer.headers[name] == value, (answer.request.url, name)
