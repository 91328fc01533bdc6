"""The victims' pages (``/victims``, ``/victims/follow``) in a real headless Chromium against a
real ``hashguard serve``: English and Dutch, the promise said first, a quick exit that leaves no
way Back, every request kept on the page's origin with none carrying the files' bytes,
low-quality hashes refused and near duplicates shown as one before anything is sent, keyboard
use alone, and axe-core finding no serious or critical violation in any state.
Benign generated media only."""

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hashguard.media.synthetic import encode
from hashguard.web.victims_words import WORDS

from support.browser import chromium, launched
from support.database import scratch_database
from support.loopback import Loopback
from support.media import jpeg, make_video, png
from support.server import Server, running

chromium()  # else the module is skipped, saying what installs it

PICTURE = png(3, 640, 480)
NEAR_COPY = jpeg(3, 640, 480, quality=85)  # the same scene re-encoded: within PDQ distance 31
OTHER = png(7, 800, 600)
FLAT = encode(Image.new("RGB", (400, 300), (128, 128, 128)), "PNG")  # PDQ quality 0
VIDEO = make_video(6, seconds=3, codec="libvpx-vp9", container="webm")
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def neutral() -> Iterator[Loopback]:
    """A neutral site: where the quick exit goes, and a page visited before the victims' page."""
    made = Loopback(lambda path, headers, body: (200, "text/html", b"<title>Weather</title>"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, neutral: Loopback) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("victims")
    with (
        scratch_database("sqlite", directory) as url,
        running(url, "--victims-exit-url", neutral.url + "/weather") as served,
    ):
        yield served


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, neutral: Loopback) -> Iterator[Server]:
    """A server taking 2 hashes a case and locking a case for 1 minute: its refusals and
    waits as the pages say them."""
    directory = tmp_path_factory.mktemp("strict")
    with (
        scratch_database("sqlite", directory) as url,
        running(url, "--victims-exit-url", neutral.url + "/weather", "--victims-max-hashes", "2",
                "--victims-lockout-minutes", "1") as served,
    ):  # fmt: skip
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for name, data in [("holiday.png", PICTURE), ("holiday-copy.jpg", NEAR_COPY),
                       ("beach.png", OTHER), ("grey.png", FLAT), ("clip.webm", VIDEO)]:  # fmt: skip
        (folder / name).write_bytes(data)
    return folder


class Recorded:
    """Every request a browser context makes, and any to another origin (refused)."""

    def __init__(self, context: Any, origin: str) -> None:
        self.requests: list[Any] = []
        self.foreign: list[str] = []
        context.on("request", lambda request: self.requests.append(request))

        def keep_home(route: Any) -> None:
            if route.request.url.startswith((origin + "/", "blob:" + origin + "/")):
                route.continue_()
            else:
                self.foreign.append(route.request.url)
                route.abort()

        context.route("**/*", keep_home)

    def posted(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.post_data) for r in self.requests
                if r.method == "POST" and r.url.endswith(path)]  # fmt: skip


def opened(browser: Any, server: Server, path: str = "/victims", **options: Any) -> Any:
    context = browser.new_context(**options)
    page = context.new_page()
    page.recorded = Recorded(context, server.url)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(server.url + path)
    return page


def chosen(page: Any, *files: Path) -> None:
    page.set_input_files("#files", [str(f) for f in files])
    page.wait_for_selector("#progress-box[data-done=true]", timeout=120_000)


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in found if v["impact"] in SERIOUS]  # fmt: skip


def said_in(page: Any, selector: str) -> Any:
    """Playwright's assertions on ``selector``, which wait until the page has said it."""
    from playwright.sync_api import expect

    return expect(page.locator(selector))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_the_pages_speak_english_and_dutch_and_first_say_the_pictures_stay_here(
    server: Server, neutral: Loopback
) -> None:
    asked = {
        ("/victims", ""): "en",
        ("/victims?lang=nl", ""): "nl",
        ("/victims", "nl-NL,nl;q=0.9,en;q=0.8"): "nl",
        ("/victims", "de-DE, nl;q=0.5, en;q=0.3"): "nl",
        ("/victims", "fr-FR"): "en",
        ("/victims?lang=en", "nl"): "en",
        ("/victims/follow", "nl-BE"): "nl",
        ("/victims/follow?lang=nl", ""): "nl",
    }
    for (path, accept), language in asked.items():
        answer = server.get(path, headers={"Accept-Language": accept} if accept else {})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-language"] == language
        assert f'<html lang="{language}">' in answer.text
        words = WORDS[language]
        main = re.sub(r"\s+", " ", answer.text.split('<main id="main" tabindex="-1">', 1)[1])
        first = words["follow_title"] if "/follow" in path else words["start_title"]
        assert main.lstrip().startswith(f"<h1>{first}</h1>"), path
        csp = answer.headers["content-security-policy"]
        for rule in ("default-src 'self'", "img-src 'self' blob:", "media-src 'self' blob:",
                     "worker-src 'self'"):  # fmt: skip
            assert rule in csp
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in answer.headers
        # Nothing the page loads comes from elsewhere; the quick exit is its one outside link.
        outside = [u for u in re.findall(r'(?:src|href)="([^"]+)"', answer.text)
                   if not u.startswith(("/", "#"))]  # fmt: skip
        assert outside == [neutral.url + "/weather"]
    english, dutch = server.get("/victims").text, server.get("/victims?lang=nl").text
    assert "Your pictures never leave this device" in english
    assert "Only fingerprints are sent" in english
    assert "The pictures and videos themselves are never sent." in english
    assert "Je beelden verlaten dit apparaat nooit" in dutch
    assert "De foto's en video's zelf worden nooit verstuurd." in dutch.replace("&#39;", "'")
    # A fingerprint can be turned back into a coarse picture (Hawkes et al., IEEE S&P 2024).
    assert "back into your picture" not in english and "terugmaken" not in dutch
    assert "Snel deze pagina verlaten" in dutch


def test_the_pages_files_are_served_from_the_package(server: Server) -> None:
    for name, kind in [("page.js", "text/javascript"), ("worker.js", "text/javascript"),
                       ("hasher.js", "text/javascript"), ("page.css", "text/css")]:  # fmt: skip
        answer = server.get(f"/static/victims/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(kind) and answer.content, name
    assert "/v1/victims/cases" in server.get("/openapi.json").json()["paths"]


def test_the_quick_exit_leaves_no_way_back(server: Server, browser: Any, neutral: Loopback) -> None:
    for path in ("/victims", "/victims/follow", "/victims?lang=nl"):
        for how in ("button", "shift", "keyboard"):
            context = browser.new_context()
            page = context.new_page()
            page.goto(neutral.url + "/before")
            page.goto(server.url + path)
            page.wait_for_selector("#quick-exit")
            entries = page.evaluate("history.length")
            if how == "button":
                page.click("#quick-exit")
            elif how == "shift":
                for _ in range(3):
                    page.keyboard.press("Shift")
            else:  # the first thing a keyboard reaches
                page.keyboard.press("Tab")
                assert page.evaluate("document.activeElement.id") == "quick-exit"
                page.keyboard.press("Enter")
            page.wait_for_url(neutral.url + "/weather")
            assert page.evaluate("history.length") == entries  # the page replaced, not added to
            page.go_back()
            page.wait_for_url(neutral.url + "/before")
            assert page.url == neutral.url + "/before", (path, how)
            context.close()


def test_after_several_victim_pages_the_quick_exit_leaves_no_way_back(
    server: Server, browser: Any, neutral: Loopback
) -> None:
    for how in ("click", "keyboard"):
        context = browser.new_context()
        page = context.new_page()
        page.goto("about:blank")
        page.goto(server.url + "/victims")
        page.wait_for_selector("#quick-exit")
        entries = page.evaluate("history.length")
        link = page.get_by_role("link", name="Follow your case")
        if how == "click":
            link.click()
        else:
            link.focus()
            page.keyboard.press("Enter")
        page.wait_for_url(server.url + "/victims/follow?lang=en")
        page.get_by_role("link", name="Nederlands").click()
        page.wait_for_url(server.url + "/victims/follow?lang=nl")
        page.keyboard.press("Tab")  # the skip link: moves the focus within the page
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        assert page.evaluate("history.length") == entries  # each page replaced the one before
        page.click("#quick-exit")
        page.wait_for_url(neutral.url + "/weather")
        page.go_back()
        page.wait_for_url("about:blank")
        assert page.url == "about:blank", how
        context.close()


def test_capitals_typed_with_shift_do_not_leave_but_three_bare_shifts_do(
    server: Server, browser: Any, neutral: Loopback
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/victims/follow")
    page.click("#case")
    for key in ("Shift+H", "Shift+G", "-", "7", "Shift+K", "Shift+Q"):  # Shift held each time
        page.keyboard.press(key)
    assert page.input_value("#case") == "HG-7KQ"
    assert page.evaluate("document.body.hidden") is False  # the exit hides the page at once
    assert page.url == server.url + "/victims/follow"
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.keyboard.press("a")  # another key between: the count starts again
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    assert page.evaluate("document.body.hidden") is False
    page.keyboard.press("Shift")  # the third bare Shift in a row
    page.wait_for_url(neutral.url + "/weather")
    context.close()


def test_no_request_leaves_the_origin_or_carries_the_files(
    server: Server, browser: Any, media: Path
) -> None:
    page = opened(browser, server)
    files = {"beach.png": OTHER, "grey.png": FLAT, "clip.webm": VIDEO}
    chosen(page, *(media / name for name in files))
    page.check("#adult")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.click("#send")
    page.wait_for_selector("#result:not([hidden]), #form-error:not([hidden])")
    recorded = page.recorded
    assert recorded.foreign == []
    assert all(r.url.startswith((server.url + "/", "blob:" + server.url + "/"))
               for r in recorded.requests)  # fmt: skip
    worker = [r.url for r in recorded.requests if r.url.endswith("/static/victims/worker.js")]
    assert worker, "images are hashed in a worker"
    [body] = recorded.posted("/v1/victims/cases")
    assert sent.value.url == server.url + "/v1/victims/cases"
    assert {md5(data) for data in files.values()} <= {h["value"] for h in body["hashes"]}
    assert {"vpdq", "pdq", "md5", "sha256"} == {h["signal"] for h in body["hashes"]}
    assert body["under_18"] is False and body["language"] == "en"
    for request in recorded.requests:
        carried = request.post_data_buffer or b""
        for name, data in files.items():
            for at in range(0, len(data) - 48, max(3, len(data) // 7 // 3 * 3)):
                window = data[at : at + 48]
                assert window not in carried, (name, request.url)
                assert base64.b64encode(window) not in carried, (name, request.url)
    assert page.errors == []


def test_low_quality_and_near_duplicates_are_settled_before_sending(
    server: Server, browser: Any, media: Path
) -> None:
    page = opened(browser, server)
    chosen(page, media / "holiday.png", media / "holiday-copy.jpg", media / "grey.png")
    items = page.locator("#chosen > li")
    assert items.count() == 2  # the copy shown with its original, as one
    assert "These 2 files look the same" in items.nth(0).inner_text()
    assert "holiday.png" in items.nth(0).inner_text()
    low = items.nth(1).inner_text()
    assert "grey.png" in low and "very plain or dark" in low and "will not send it" in low
    assert page.recorded.posted("/v1/victims/cases") == []  # refused before anything is sent
    assert serious(page) == []
    page.check("#under-18")
    with page.expect_request(lambda r: r.method == "POST"):
        page.click("#send")
    [body] = page.recorded.posted("/v1/victims/cases")
    pdq = [h for h in body["hashes"] if h["signal"] == "pdq"]
    assert len(pdq) == 1 and pdq[0]["quality"] >= 50  # one for the pair; none for the grey one
    values = {h["value"] for h in body["hashes"]}
    assert {md5(PICTURE), md5(NEAR_COPY), md5(FLAT)} <= values  # exact copies still found
    assert body["under_18"] is True


def test_the_pages_have_no_serious_accessibility_violations(
    server: Server, browser: Any, media: Path
) -> None:
    for language in ("en", "nl"):
        page = opened(browser, server, f"/victims?lang={language}")
        assert serious(page) == [], language
        page.click("#send")  # nothing chosen: the error is said
        page.wait_for_selector("#form-error:not([hidden])")
        assert serious(page) == [], language
        follow = opened(browser, server, f"/victims/follow?lang={language}")
        assert serious(follow) == [], language
        follow.fill("#case", "HG-NOT-A-CASE")
        follow.fill("#pin", "12345678")
        follow.click("#show")
        follow.wait_for_selector("#follow-error:not([hidden])")
        assert serious(follow) == [], language
        assert page.errors == follow.errors == []


def test_keyboard_alone_opens_a_case_and_sees_its_number_and_pin(
    server: Server, browser: Any, media: Path
) -> None:
    page = opened(browser, server)
    for _ in range(10):  # past the quick exit, the skip link and the links at the top
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "files":
            break
    assert page.evaluate("document.activeElement.id") == "files"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files([str(media / "beach.png")])
    page.wait_for_selector("#progress-box[data-done=true]", timeout=120_000)
    page.keyboard.press("Tab")  # the file's remove button
    page.keyboard.press("Tab")  # the first answer about age
    assert page.evaluate("document.activeElement.id") == "under-18"
    page.keyboard.press("ArrowDown")  # the second: chosen
    assert page.is_checked("#adult")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"
    with page.expect_request(lambda r: r.method == "POST"):
        page.keyboard.press("Enter")
    [body] = page.recorded.posted("/v1/victims/cases")
    assert md5(OTHER) in {h["value"] for h in body["hashes"]}
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "result"  # read out next
    assert page.inner_text("#case-number") and page.inner_text("#case-pin")
    assert page.locator("#case-form").is_hidden()  # and the thumbnails with it
    assert serious(page) == []


def test_a_case_is_followed_and_withdrawn_in_part_with_a_confirmation(
    server: Server, browser: Any
) -> None:
    hashes = [{"signal": "md5", "value": md5(b"one")}, {"signal": "md5", "value": md5(b"two")}]
    answer = httpx.post(server.url + "/v1/victims/cases",
                        json={"hashes": hashes, "under_18": False, "language": "nl"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    case, pin = answer.json()["case"], answer.json()["pin"]
    for language in ("en", "nl"):
        page = opened(browser, server, f"/victims/follow?lang={language}")
        page.fill("#case", case)
        page.fill("#pin", pin)
        page.keyboard.press("Enter")
        page.wait_for_selector("#status:not([hidden])")
        assert page.locator("#hash-states li").count() == 2
        assert serious(page) == [], language
    assert "2 actief" in page.inner_text("#summary")
    page.check("#withdraw-some")
    page.check("#withdraw-hashes li:first-child input")
    page.click("#withdraw")
    page.wait_for_selector("#confirm[open]")
    assert "Deze vingerafdruk intrekken?" in page.inner_text("#confirm")
    assert page.evaluate("document.querySelectorAll('dialog:modal').length") == 0  # exit in reach
    assert serious(page) == []
    page.keyboard.press("Enter")  # the focus is on "No": nothing happens
    assert page.locator("#confirm[open]").count() == 0
    assert page.recorded.posted("/withdrawal") == []
    page.click("#withdraw")
    page.click("#confirm-yes")
    page.wait_for_selector("#withdraw-done:not(:empty)")
    [asked] = page.recorded.posted("/withdrawal")
    assert asked == {"hashes": [hashes[0]]}
    assert "1 ingetrokken" in page.inner_text("#summary")
    status = httpx.get(f"{server.url}/v1/victims/cases/{case}", headers={"X-Case-Pin": pin})
    assert [h["state"] for h in status.json()["hashes"]] == ["withdrawn", "active"]
    page.fill("#pin", "0" * len(pin))
    page.click("#show")
    page.wait_for_selector("#follow-error:not([hidden])")
    assert "horen niet bij een zaak" in page.inner_text("#follow-error")
    assert page.locator("#status").is_hidden()
    for _ in range(20):  # wrong PINs until the case is locked, as the API says
        with page.expect_response(lambda r: "/v1/victims/cases/" in r.url) as answered:
            page.click("#show")
        if answered.value.status == 429:
            break
    assert answered.value.status == 429
    minutes = -(-int(answered.value.headers["retry-after"]) // 60)
    said_in(page, "#follow-error").to_contain_text(f"{minutes} minuten op slot")


def test_refusals_and_waits_are_said_in_the_page_language_with_the_server_detail_second(
    strict: Server, browser: Any, media: Path
) -> None:
    page = opened(browser, strict, "/victims?lang=nl")
    chosen(page, media / "beach.png")  # a picture and its two digests: 3 hashes, 2 are taken
    page.check("#adult")
    with page.expect_response(lambda r: r.url.endswith("/v1/victims/cases")) as answered:
        page.click("#send")
    assert answered.value.status == 413
    error = page.locator("#form-error")
    error.wait_for()
    said = page.evaluate("document.querySelector('#form-error').firstChild.textContent")
    assert said == WORDS["nl"]["js_refused_too_large"]
    assert "Technische toelichting (in het Engels):" in error.inner_text()
    assert "a case takes at most 2" in page.inner_text("#form-error .detail [lang=en]")
    assert page.inner_text("#progress-status") == "Vingerafdruk klaar voor 1 bestand."
    assert serious(page) == []

    hashes = [{"signal": "md5", "value": md5(b"one")}, {"signal": "md5", "value": md5(b"two")}]
    answer = httpx.post(strict.url + "/v1/victims/cases",
                        json={"hashes": hashes, "under_18": False, "language": "en"})  # fmt: skip
    case = answer.json()["case"]
    for language, one_minute in (("en", "locked for 1 minute."), ("nl", "1 minuut op slot.")):
        page = opened(browser, strict, f"/victims/follow?lang={language}")
        page.fill("#case", case)
        page.fill("#pin", "0" * 8)
        for _ in range(10):  # wrong PINs until the case is locked (for a minute, or less now)
            with page.expect_response(lambda r: "/v1/victims/cases/" in r.url) as answered:
                page.click("#show")
            if answered.value.status == 429:
                break
        assert answered.value.status == 429
        assert int(answered.value.headers["retry-after"]) <= 60
        said_in(page, "#follow-error").to_contain_text(one_minute)  # once it is said
        said = page.inner_text("#follow-error")
        assert "1 minutes" not in said and "1 minuten" not in said
    assert page.errors == []
