"""The public report page (``/report``, ``/report/status``) in a real headless Chromium against a
real ``hashguard serve`` with a hotline: the form works with JavaScript off (a report sent, its
reference and status code, the status page), refusals show the form again with what was typed,
the quick exit (a link without JavaScript, Shift 3 times with it), English and Dutch, and
axe-core finding no serious or critical violation in any state."""

from collections.abc import Iterator
from typing import Any

import pytest

from hashguard.web.report_words import WORDS

from support.browser import chromium, launched
from support.database import scratch_database
from support.loopback import Loopback
from support.server import Server, running

chromium()  # else the module is skipped, saying what installs it

SERIOUS = ("serious", "critical")
REPORTED = "https://example.com/gallery/page-1.html"


@pytest.fixture(scope="module")
def neutral() -> Iterator[Loopback]:
    """A neutral site: where the quick exit goes, and a page visited before the report page."""
    made = Loopback(lambda path, headers, body: (200, "text/html", b"<title>Weather</title>"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, neutral: Loopback) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("report")
    with (
        scratch_database("sqlite", directory) as url,
        running(url, "--hotline-country", "NL", "--victims-exit-url", neutral.url + "/weather",
                "--hotline-crawl-timeout", "1") as served,
    ):  # fmt: skip
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def opened(browser: Any, server: Server, path: str, **options: Any) -> Any:
    page = browser.new_context(**options).new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(server.url + path)
    return page


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in found if v["impact"] in SERIOUS]  # fmt: skip


def sent(page: Any, urls: str, seen_where: str, description: str = "", contact: str = "") -> Any:
    """Fill in the report form and send it; the answer's response."""
    page.fill("#urls", urls)
    page.fill("#seen_where", seen_where)
    page.fill("#description", description)
    page.fill("#contact", contact)
    with page.expect_navigation() as navigation:
        page.click("#send")
    return navigation.value


def test_a_report_is_sent_and_followed_with_javascript_off(server: Server, browser: Any) -> None:
    page = opened(browser, server, "/report", java_script_enabled=False)
    assert page.text_content("h1") == WORDS["en"]["title"]
    answer = sent(page, REPORTED, "a link in a chat group", "a gallery page", "me@example.org")
    assert answer.status == 201
    assert page.text_content("h1") == WORDS["en"]["received_title"]
    reference, token = page.text_content("#reference"), page.text_content("#token")
    assert reference and token and token not in page.url
    page.click(f"text={WORDS['en']['nav_status']}")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("#show")
    status = page.get_attribute("#status-word", "data-status")  # as far as the crawler got
    assert status in ("received", "assessed")
    assert page.text_content("#status-word") == WORDS["en"][f"status_{status}"]
    assert token not in page.url  # the code travels in the form's body only
    page.fill("#token", "not-a-status-code")
    with page.expect_navigation() as navigation:
        page.click("#show")
    assert navigation.value.status == 404 and page.locator("#status-error").count() == 1


def test_a_url_reported_again_is_taken_without_saying_so(server: Server, browser: Any) -> None:
    for seen_where in ("a forum", "an app"):
        page = opened(browser, server, "/report", java_script_enabled=False)
        assert sent(page, REPORTED, seen_where).status == 201
        assert page.text_content("h1") == WORDS["en"]["received_title"]
    text = page.text_content("#received") or ""
    assert "before" not in text and page.locator("#joined").count() == 0


def test_a_refused_report_shows_the_form_again_with_what_was_typed(
    server: Server, browser: Any
) -> None:
    for language in ("en", "nl"):
        page = opened(browser, server, f"/report?lang={language}", java_script_enabled=False)
        answer = sent(page, "ftp://example.com/file", "a forum", "seen twice", "me@example.org")
        assert answer.status == 400
        said = page.text_content("#report-error")
        assert WORDS[language]["error_title"] in said and "ftp://example.com/file" in said
        assert page.input_value("#urls") == "ftp://example.com/file"
        assert page.input_value("#seen_where") == "a forum"
        assert page.input_value("#description") == "seen twice"
        assert page.input_value("#contact") == "me@example.org"


def test_the_quick_exit_leaves_with_javascript_off_and_by_shift_with_it_on(
    server: Server, browser: Any, neutral: Loopback
) -> None:
    plain = browser.new_context(java_script_enabled=False).new_page()
    plain.goto(server.url + "/report")
    assert plain.get_attribute("#quick-exit", "href") == neutral.url + "/weather"
    plain.click("#quick-exit")  # a plain link
    plain.wait_for_url(neutral.url + "/weather")
    for path in ("/report", "/report/status?lang=nl"):
        page = browser.new_context().new_page()
        page.goto(neutral.url + "/before")
        page.goto(server.url + path)
        page.wait_for_selector("#quick-exit")
        entries = page.evaluate("history.length")
        page.click("#seen_where" if path == "/report" else "#token")
        page.keyboard.type("ABC")  # capitals typed with Shift held do not leave
        for _ in range(3):
            page.keyboard.press("Shift")
        page.wait_for_url(neutral.url + "/weather")
        assert page.evaluate("history.length") == entries  # the page replaced, not added to
        page.go_back()
        page.wait_for_url(neutral.url + "/before")
        page.context.close()


def test_the_pages_speak_dutch(server: Server, browser: Any) -> None:
    nl = WORDS["nl"]
    page = opened(browser, server, "/report", extra_http_headers={"Accept-Language": "nl-NL"})
    assert page.get_attribute("html", "lang") == "nl"
    assert page.text_content("h1") == nl["title"]
    assert page.text_content("#send") == nl["send"]
    assert page.text_content("#quick-exit").endswith(nl["exit"])
    sent(page, REPORTED, "in een app")
    assert page.text_content("h1") == nl["received_title"]
    assert nl["write_down"] in page.text_content("#received")
    page.goto(server.url + "/report?lang=en")  # asked for: English whatever the browser says
    assert page.text_content("h1") == WORDS["en"]["title"]
    page.click("#language")
    assert page.text_content("h1") == nl["title"]
    assert page.errors == []


def test_the_pages_have_no_serious_accessibility_violations(server: Server, browser: Any) -> None:
    for language in ("en", "nl"):
        page = opened(browser, server, f"/report?lang={language}")
        assert serious(page) == [], language
        sent(page, "http://localhost/x", "a forum")  # refused: not a public host
        page.wait_for_selector("#report-error")
        assert serious(page) == [], language
        sent(page, REPORTED, "a forum")
        page.wait_for_selector("#reference")
        assert serious(page) == [], language
        page.goto(f"{server.url}/report/status?lang={language}")
        assert serious(page) == [], language
        page.fill("#token", "not-a-status-code")
        with page.expect_navigation():
            page.click("#show")
        assert serious(page) == [], language
        assert page.errors == []
