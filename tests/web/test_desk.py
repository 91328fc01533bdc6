"""The review desk in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against a real ``hashguard serve`` and a service's content store on loopback: content shown
blurred and grey until revealed and shielded again on leaving, keyboard shortcuts, decisions
with a reason, four eyes, and the user's complaint page. Benign generated images only."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.review import webhook
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.transparency import keys as key_files

from support.browser import chromium, launched
from support.loopback import Loopback
from support.media import make_video, png
from support.server import Server, running
from support.waiting import eventually

chromium()  # else the module is skipped, saying what installs it

KNOWN = "f" * 32 + "0" * 32
CAREFUL = "0f" * 32
IMAGE = png(5, 320, 240)
VIDEO = make_video(6, seconds=2, codec="libvpx-vp9", container="webm")


@pytest.fixture
def store() -> Iterator[Loopback]:
    """The service's content store: the item behind each reference (benign images)."""

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if path.startswith("/content/video"):
            return 200, "video/webm", VIDEO
        if path.startswith("/content/") and "missing" not in path:
            return 200, "image/png", IMAGE
        return 404, "text/plain", b"no such item"

    made = Loopback(answer)
    yield made
    made.close()


@pytest.fixture
def centre() -> Iterator[Loopback]:
    """The EU Centre's intake: takes every report."""
    made = Loopback(lambda path, headers, body: (201, "application/json", b'{"id": "EUC-1"}'))
    yield made
    made.close()


@pytest.fixture
def desk(
    engine: Engine, database_url: str, store: Loopback, centre: Loopback, tmp_path: Path
) -> Iterator[tuple[Server, dict]]:
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
    key_files.generate(tmp_path / "provider.key")
    reporting = ("--provider-name", "Example Photos B.V.", "--provider-email", "t@example.org",
                 "--provider-country", "NL", "--report-key", str(tmp_path / "provider.key"),
                 "--eu-centre-url", centre.url + "/reports")  # fmt: skip
    with running(database_url, "--fetch-network", "127.0.0.0/8", *reporting) as server:
        yield server, tokens


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched() as browser:
        yield browser


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


def decided(page, shortcut: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Decide the open detection by keyboard (``c`` confirm, ``f`` false positive) with
    ``reason``, and wait for the page that answers."""
    page.keyboard.press(shortcut)
    page.fill("#reason", reason)
    with page.expect_navigation():
        page.click("#submit")


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
    decided(ana, "c", "matches the listed image")
    ana.wait_for_selector("#four-eyes")
    assert "1 for confirm, 0 for false positive" in ana.text_content("#four-eyes")
    assert ana.text_content("#state") == "In review"
    assert ana.locator("#decide").count() == 1  # still open: someone else must agree
    ben = sign_in(browser, server, tokens["ben"])
    with ben.expect_navigation():
        ben.click("#queue a")
    decided(ben, "c", "agreed")
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
    decided(ana, "f", "a different picture")
    ana.wait_for_selector("#contested")
    assert ana.text_content("#state") == "False positive"
    row = ana.text_content("#contested tr:nth-child(2)")
    assert "known" in row and KNOWN in row and "contested" in row
    assert "until the list's curator reinstates it" in row
    evidence = ana.text_content("#evidence")  # what it matched stays readable
    assert "known" in evidence and "A1" in evidence and "0 of 256 bits (threshold 31)" in evidence
    assert "no list match" not in evidence
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


def opened(browser, server: Server, token: str, ref: str):  # type: ignore[no-untyped-def]
    """The desk signed in with ``token``, at the detection of item ``ref``."""
    page = sign_in(browser, server, token)
    ident = next(d["id"] for d in server.get("/v1/detections", "auditor").json()["detections"]
                 if d["content_ref"] == ref)  # fmt: skip
    page.goto(f"{server.url}/desk/detections/{ident}")
    return page, ident


def test_actions_and_reports_from_the_detection_page_with_their_reasons(
    desk, browser, centre
) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "upload-5", KNOWN)
    ana, ident = opened(browser, server, tokens["ana"], "upload-5")
    decided(ana, "c", "the listed image")
    assert ana.text_content("#state") == "Confirmed"
    # An action, confirmed in the script's dialog: the reason goes to the statement of reasons.
    ana.check("input[name=kind][value=remove]")
    ana.fill("#act-reason", "known material, confirmed by a reviewer")
    ana.select_option("#act-language", "nl")
    ana.fill("#act-country", "nl")
    asked = []
    ana.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    with ana.expect_navigation():
        ana.click("#act-submit")
    assert "remove the item" in asked[0]
    taken = ana.text_content("#taken")
    assert "Remove" in taken and "known material, confirmed by a reviewer" in taken
    shown = server.get(f"/v1/detections/{ident}", "reviewer").json()
    assert [(a["kind"], a["reason"]) for a in shown["actions"] if a["kind"] == "remove"] == [
        ("remove", "known material, confirmed by a reviewer")
    ]
    events = server.get("/v1/audit?limit=500", "auditor").json()["events"]
    (removal,) = [e for e in events if e["action"] == "action.remove"]
    assert removal["actor"].endswith("(ana)") and "known material" in removal["details"]
    assert any(c["what"] == "statement of reasons" for c in shown["deliveries"])
    # Refused: the page says why, as a page (not JSON), with the status of its kind.
    form = {"kind": "remove", "reason": "twice", "confirmed": "yes",
            "csrf": ana.input_value("input[name=csrf] >> nth=0")}  # fmt: skip
    again = ana.request.post(f"{server.url}/desk/detections/{ident}/actions", form=form)
    assert again.status == 409 and again.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in again.text() and "remove is already in force" in again.text()
    # An action number no record can have is the detection's page saying there is none.
    huge = 10**20
    form = {"reason": "undo", "confirmed": "yes", "csrf": form["csrf"]}
    undone = ana.request.post(f"{server.url}/desk/detections/{ident}/actions/{huge}/reverse",
                              form=form)  # fmt: skip
    assert undone.status == 404 and f"has no action number {huge}" in undone.text()

    # A report, without JavaScript: the server asks for confirmation on a page of its own.
    plain = browser.new_context(java_script_enabled=False).new_page()
    plain.goto(server.url + "/desk/login")
    plain.fill("input[name=key]", tokens["ben"])
    with plain.expect_navigation():
        plain.click("text=Sign in")
    plain.goto(f"{server.url}/desk/detections/{ident}")
    plain.check("input[name=removed]")
    plain.check("input[name=urgent]")
    plain.fill("#urgency-reason", "the uploader announced more")
    with plain.expect_navigation():
        plain.click("#report-submit")
    confirmation = plain.text_content("#confirmation")
    assert "EU Centre" in confirmation and "the uploader announced more" in confirmation
    assert centre.requests == []  # nothing sent before the reviewer confirms
    with plain.expect_navigation():
        plain.click("#confirm")
    assert plain.text_content("#state") == "Reported"
    assert "report to eu-centre" in plain.text_content("#deliveries")
    assert centre.wait_for(1)
    sent = centre.requests[0][2].decode()
    assert "the uploader announced more" in sent
    events = server.get("/v1/audit?limit=500", "auditor").json()["events"]
    (made,) = [e for e in events if e["action"] == "report.make"]
    assert made["actor"].endswith("(ben)") and '"recipient":"eu-centre"' in made["details"]


def test_the_queue_filters_by_state_list_and_service_and_counts_each_state(
    desk, browser, engine, store
) -> None:
    server, tokens = desk
    ServiceStore(engine).create("forum", content_url=store.url + "/content/{ref}")
    forum = ApiKeyStore(engine).create(Role.MATCHER, name="forum check", service="forum")[1]
    upload(server, tokens["upload"], "photo-1", KNOWN)
    upload(server, tokens["upload"], "photo-2", CAREFUL)
    upload(server, forum, "post-1", KNOWN)
    wrong = next(d["id"] for d in server.get("/v1/detections", "auditor").json()["detections"]
                 if d["content_ref"] == "photo-1")  # fmt: skip
    decided = server.client.post(f"/v1/detections/{wrong}/decision",
                                 json={"decision": "false_positive", "reason": "not it"},
                                 headers={"Authorization": f"Bearer {tokens['ana']}"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    page = sign_in(browser, server, tokens["ben"])

    def counts() -> dict[str, str]:
        return {a.get_attribute("data-state"): a.text_content().split()[-1]
                for a in page.locator("#counts a").all()}  # fmt: skip

    def rows() -> list[str]:
        return [r.text_content() for r in page.locator("#queue tbody tr").all()]

    assert counts()["open"] == "2" and counts()["false_positive"] == "1"
    assert counts()["all"] == "3" and page.text_content("#counts a[aria-current]").startswith(
        "Open"
    )
    assert len(rows()) == 2
    page.select_option("#f-list", "careful")
    with page.expect_navigation():
        page.click("#filters button")
    assert "list=careful" in page.url
    assert len(rows()) == 1 and "careful" in rows()[0] and counts()["open"] == "1"
    page.goto(server.url + "/desk?service=forum")
    assert len(rows()) == 1 and "forum" in rows()[0] and counts()["all"] == "1"
    page.goto(server.url + "/desk")
    with page.expect_navigation():
        page.click("#counts a[data-state=false_positive]")
    assert len(rows()) == 1 and "False positive" in rows()[0] and "photos" in rows()[0]
    page.goto(server.url + "/desk?service=nowhere")
    assert "no service named 'nowhere'" in page.text_content("#error")


def test_a_failed_fetch_shows_the_content_stores_reason_in_place_of_the_image(
    desk, browser
) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "missing-1", KNOWN)
    page, _ = opened(browser, server, tokens["ana"], "missing-1")
    page.wait_for_selector("#fetch-error:not([hidden])")
    assert page.text_content("#fetch-error") == "The service's content store answered 404."
    assert page.is_hidden("#content") and page.is_disabled("#reveal")


def test_the_queue_and_detection_pages_fit_a_phone(desk, browser) -> None:
    server, tokens = desk
    upload(server, tokens["upload"], "upload-6", KNOWN)
    upload(server, tokens["upload"], "upload-7", CAREFUL)
    page = sign_in(browser, server, tokens["admin"])
    page.set_viewport_size({"width": 390, "height": 844})

    def overflow() -> int:
        return int(page.evaluate("document.documentElement.scrollWidth - innerWidth"))

    assert page.locator("#queue tbody tr").count() == 2 and overflow() <= 0
    with page.expect_navigation():
        page.click("#queue a >> nth=0")
    assert overflow() <= 0  # open: the decision form
    decided(page, "c", "the listed image")
    assert page.locator("#act").count() == 1 and page.locator("#report").count() == 1
    assert overflow() <= 0  # confirmed: the action and report forms
    page.goto(server.url + "/desk?state=all")
    assert overflow() <= 0


def test_a_video_match_shows_its_frames_found_and_after_a_false_positive_stays_readable(
    desk, browser
) -> None:
    server, tokens = desk
    frames = "\n".join(f"{n},90,{n * 7919 + 1:064x},{n}.000" for n in range(30))  # benign
    listed = server.client.post(  # through the service: it holds for the very next request
        "/v1/lists/known/import",
        params={"format": "csv"},
        content=f'signal,value,labels\nvpdq,"{frames}",V1\n',
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )
    assert listed.status_code == 200, listed.text
    answer = server.client.post(
        "/v1/match/hashes",
        json={"hashes": [{"signal": "vpdq", "value": frames, "content_ref": "video-1"}]},
        headers={"Authorization": f"Bearer {tokens['upload']}"},
    )
    assert answer.status_code == 200 and answer.json()["matched"] == 1, answer.text
    ana = sign_in(browser, server, tokens["ana"])
    with ana.expect_navigation():
        ana.click("#queue a")
    # The item is a video: it plays in the image's place, shielded until revealed.
    ana.wait_for_selector("video#content")
    assert shielded(ana)
    decoded = ana.locator("video#content").evaluate(
        "v => v.readyState >= 1 || new Promise(done => {"
        "  v.addEventListener('loadedmetadata', () => done(true));"
        "  v.addEventListener('error', () => done(false)); })"
    )
    assert decoded  # the browser reads it (its duration and size)
    ana.keyboard.press("r")
    assert not shielded(ana)
    ana.keyboard.press("Escape")
    assert shielded(ana)
    evidence = ana.text_content("#evidence")
    assert "vpdq" in evidence and "V1" in evidence
    assert "100 % of the frames found on both sides (80 % needed)" in evidence
    decided(ana, "f", "another video")
    ana.wait_for_selector("#contested")
    assert "a video of 30 frames" in ana.text_content("#contested")
    assert "100 % of the frames found on both sides" in ana.text_content("#evidence")


def test_the_session_cookie_is_secure_unless_set_for_plain_http_development(
    engine: Engine, database_url: str
) -> None:
    token = ApiKeyStore(engine).create(Role.REVIEWER, name="ana")[1]
    for options, secure in (((), True), (("--insecure-cookies",), False)):
        with running(database_url, *options) as server:  # plain http here, as behind a proxy
            answer = server.client.post("/desk/login", data={"key": token})
            assert answer.status_code == 303, answer.text
            cookie = answer.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert ("Secure" in cookie) is secure, cookie


def test_the_evidence_shows_the_entrys_stability_and_the_querys_quality(
    desk, browser, engine
) -> None:
    """A listed image measured when it was listed, matched by an upload hashed here: the
    evidence says what was measured of both hashes (PDQ's stability beside its quality),
    readable on a desktop and on a phone."""
    from hashguard.signals.pdq import PdqSignal

    server, tokens = desk
    photo = png(8, 320, 240)
    listed = PdqSignal().hash(photo)
    ListStore(engine).apply("known", [Submission("pdq", listed.hex, frozenset({"B1"}),
                                                 stability=83)])  # fmt: skip
    query = {"hashes": [{"signal": "pdq", "value": listed.hex}]}  # no content_ref: no detection
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert eventually(lambda: server.client.post("/v1/match/hashes", json=query,
                                          headers=admin).json()["matched"])  # fmt: skip
    answer = server.client.post(
        "/v1/match/media", params={"content_ref": "upload-measured"}, content=photo,
        headers={"Authorization": f"Bearer {tokens['upload']}"},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json()["matches"], answer.text
    quality = answer.json()["hashes"]["pdq"]["quality"]
    page = sign_in(browser, server, tokens["ana"])
    with page.expect_navigation():
        page.click("#queue a >> nth=0")
    measured = page.locator("#evidence td.measured").inner_text().replace("\xa0", " ")
    assert "listed: stability 83" in measured and f"query: quality {quality}" in measured
    shots = os.environ.get("HASHGUARD_SCREENSHOTS")  # a directory to keep them in, to look at
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert int(page.evaluate("document.documentElement.scrollWidth - innerWidth")) <= 0
        if shots:
            page.screenshot(path=str(Path(shots) / f"desk-evidence-{width}.png"), full_page=True)
