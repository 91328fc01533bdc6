"""The operator console (``/``) in a real headless Chromium against a real ``hashguard serve``:
signing in (back to the console), what each role sees (the parts the API's roles allow), a key
limited to lists seeing only those, and the match tester: a planted entry found and explained,
another image and hash not found, nothing recorded in the match log, and bad uploads answered
with a clear message (never a 500). Benign generated images only. Screenshots of every page
state at 1280 and 390 px go to /work/shots when it exists."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from hashguard.exchanges import sample
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.lists.model import Category, ChangeKind, ListPolicy
from hashguard.lists.records import Submission
from hashguard.review.detections import Review
from hashguard.review.model import ScanningForbidden
from hashguard.review.services import ServiceStore
from hashguard.signals import registry
from hashguard.signals.batch import hash_stream
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import ExchangeQuarantineRow, ExchangeRow
from hashguard.web import match_tester

from support.browser import chromium, launched
from support.media import png
from support.server import Server, running
from support.waiting import eventually

chromium()  # else the module is skipped, saying what installs it

SHOTS = Path("/work/shots")
PLANTED = png(7, 320, 240)  # its PDQ and MD5 are on the list "known"
OTHER = png(8, 320, 240)  # on no list
PARTNER = "0f" * 32  # the one entry of the list "partner"
DELISTED = "f0" * 32
SECTIONS = ("lists", "exchanges", "index", "matches", "queue", "tester")
UNREADABLE = ("page 1, record 3", "pdq: expected 64 hex digits, got 63",
              '{"signal": "pdq", "value": "0f0f"}')  # fmt: skip

# What the sample exchange serves, by signal (the console shows its list's counts).
SAMPLE_PDQ = len(sample.SCENES) + sum(s == "pdq" for s, _ in sample.HMA_EXAMPLES)
SAMPLE_MD5 = len(sample.SCENES) + sum(s == "md5" for s, _ in sample.HMA_EXAMPLES)


def hashes_of(data: bytes) -> dict[str, str]:
    signals = [registry.get("pdq"), registry.get("md5")]
    hashed = hash_stream(io.BytesIO(data), len(data), signals)
    return {signal.name: signal.format(value) for signal, value in hashed.values}


class Console:
    def __init__(self, server: Server, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens
        self.url = server.url


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    directory = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{directory / 'hashguard.db'}"
    engine = open_engine(url)
    lists = ListStore(engine)
    planted = hashes_of(PLANTED)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.create("partner", "Partner Hotline", Category.KNOWN_CSAM, ["BE"],
                 policy=ListPolicy(thresholds={"pdq": 20}))  # fmt: skip
    lists.apply("known", [Submission("pdq", planted["pdq"], frozenset({"A1"})),
                          Submission("md5", planted["md5"], frozenset({"A1"})),
                          Submission("pdq", DELISTED)])  # fmt: skip
    lists.change("known", ChangeKind.DELIST, "pdq", DELISTED, reason="a test entry",
                 actor="key:curator (tests)")  # fmt: skip
    lists.apply("partner", [Submission("pdq", PARTNER)])
    ServiceStore(engine).create("photos")
    ServiceStore(engine).create("chat", e2ee=True)  # its profile (known-only) forbids scanning
    # Two exchanges the service fetches when it starts: HMA's sample (4 PDQ, 4 MD5 into the
    # list "sample"), and a peer that cannot be reached, with a record it once set aside.
    exchanges = Exchanges(engine, lists, Sealer(bytes(32)))
    exchanges.add("sample", "sample")
    peer = exchanges.add("peer", "hashguard", {"base_url": "http://127.0.0.1:9", "list": "x"})
    with engine.begin() as connection:  # its data complete to two hours ago
        connection.execute(
            update(ExchangeRow)
            .where(ExchangeRow.id == peer.id)
            .values(checkpoint={"version": 7}, checkpoint_at=datetime.now(UTC) - timedelta(hours=2))
        )
        connection.execute(insert(ExchangeQuarantineRow).values(
            exchange_id=peer.id, at=datetime.now(UTC), position=UNREADABLE[0],
            reason=UNREADABLE[1], excerpt=UNREADABLE[2]))  # fmt: skip
    keys = ApiKeyStore(engine)
    tokens = {role.value: keys.create(role, name=f"{role.value} key")[1]
              for role in (Role.ADMIN, Role.CURATOR, Role.MATCHER, Role.REVIEWER, Role.AUDITOR,
                           Role.ANALYST)}  # fmt: skip
    tokens["upload"] = keys.create(Role.MATCHER, name="upload check", service="photos")[1]
    tokens["chat"] = keys.create(Role.MATCHER, name="chat check", service="chat")[1]
    tokens["scoped curator"] = keys.create(Role.CURATOR, ("partner",), name="partner cur")[1]
    tokens["scoped matcher"] = keys.create(Role.MATCHER, ("partner",), name="partner match")[1]
    tokens["scoped reviewer"] = keys.create(Role.REVIEWER, ("partner",), name="partner rev")[1]
    with running(url, "--max-upload-mb", "1", roles=False) as server:

        def fetched() -> bool:
            table = ExchangeRow.__table__
            with engine.connect() as connection:
                done = connection.execute(select(table.c.fetch_completed_at)).scalars().all()
            return all(done)

        assert eventually(fetched), "the service never fetched its exchanges"
        # One upload matched today: in the match log and, from a service's key, a detection.
        answer = server.client.post(
            "/v1/match/media?content_ref=upload-1", files={"file": ("a.png", PLANTED)},
            headers={"Authorization": f"Bearer {tokens['upload']}"},
        )  # fmt: skip
        assert answer.status_code == 200 and len(answer.json()["matches"]) == 2, answer.text
        engine.dispose()
        yield Console(server, tokens)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def sign_in(browser: Any, console: Console, who: str, width: int = 1280) -> Any:
    """A page signed in with ``who``'s key from the console's address: back at the console."""
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto(console.url + "/")
    assert page.url == console.url + "/desk/login?then=/"
    page.fill("input[name=key]", console.tokens[who])
    with page.expect_navigation():
        page.click("text=Sign in")
    return page


def sections(page: Any) -> set[str]:
    return {name for name in SECTIONS if page.locator(f"section#{name}").count()}


def shoot(page: Any, name: str) -> None:
    """The page at desktop and phone width, as console-NAME-1280.png and -390.png."""
    if not SHOTS.is_dir():
        return
    size = page.viewport_size
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"console-{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


def fits(page: Any) -> bool:
    """Whether nothing runs off the side of the page."""
    width = page.evaluate("document.documentElement.clientWidth")
    return bool(page.evaluate("document.documentElement.scrollWidth") <= width)


def matches_logged(console: Console) -> int:
    answer = console.server.client.get("/v1/matches?limit=1000", headers={
        "Authorization": f"Bearer {console.tokens['auditor']}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return len(answer.json()["matches"])


def test_signing_in_at_the_console_comes_back_to_it(browser: Any, console: Console) -> None:
    page = sign_in(browser, console, "curator")
    assert page.url == console.url + "/"
    assert page.locator("h1").inner_text() == "Console"
    # A reviewer signing in from the console comes back to it; from the desk's sign-in, the desk.
    assert sign_in(browser, console, "reviewer").url == console.url + "/"
    page = browser.new_page()
    page.goto(console.url + "/desk/login")
    shoot(page, "sign-in")
    page.fill("input[name=key]", console.tokens["reviewer"])
    with page.expect_navigation():
        page.click("text=Sign in")
    assert page.url == console.url + "/desk"
    page.close()
    # A wrong key: the sign-in page again, saying so.
    page = browser.new_page()
    page.goto(console.url + "/")
    page.fill("input[name=key]", "hg_nothing_here")
    with page.expect_navigation():
        page.click("text=Sign in")
    assert "not a live key" in page.locator("#error").inner_text()
    page.close()


@pytest.mark.parametrize(
    ("who", "parts"),
    [
        ("admin", {"lists", "exchanges", "index", "matches", "queue", "tester"}),
        ("curator", {"lists", "exchanges"}),
        ("matcher", {"index", "tester"}),
        ("reviewer", {"lists", "matches", "queue"}),
        ("auditor", {"lists", "exchanges", "matches", "queue"}),
    ],
)
def test_each_role_sees_the_parts_its_role_may_see(
    browser: Any, console: Console, who: str, parts: set[str]
) -> None:
    page = sign_in(browser, console, who)
    assert sections(page) == parts
    if "lists" in parts:
        known = page.locator("#list-known").inner_text()
        assert "Test Hotline" in known and "PDQ 1" in known and "MD5 1" in known
        assert "1 delisted" in known  # not matched, and said so
        assert "delist" in page.locator("#list-known td[data-label='Last change']").inner_text()
        assert page.locator("#list-known td[data-label=Version]").inner_text() == "4"
        assert "up to date" in page.locator("#list-known td[data-label=Matching]").inner_text()
        assert page.locator("#list-partner").count() == 1
        # fetched from the exchange
        assert f"PDQ {SAMPLE_PDQ}" in page.locator("#list-sample").inner_text()
        assert page.locator("#glance-lists .number").inner_text() == "4"
    if "exchanges" in parts:
        sample = page.locator("#exchange-sample")
        assert sample.get_attribute("data-state") == "current"
        assert f"{SAMPLE_PDQ + SAMPLE_MD5} records in all" in sample.inner_text()
        peer = page.locator("#exchange-peer")
        assert peer.get_attribute("data-state") == "failing"
        assert "has no credentials" in peer.locator("td[data-label='Last fetch']").inner_text()
        assert peer.locator("td[data-label=Failures]").inner_text().startswith("1")
        assert peer.locator("td[data-label=Lag]").inner_text().startswith("2.0 h")
        page.click("#exchange-peer td[data-label=Quarantined] a")
        held = page.locator("#quarantine-peer")
        assert all(text in held.inner_text() for text in UNREADABLE)
    if "index" in parts:
        # known 1 (its delisted entry left out), partner 1, and the sample's
        assert f"PDQ {2 + SAMPLE_PDQ}" in page.locator("#index-sizes").inner_text()
        assert f"MD5 {1 + SAMPLE_MD5}" in page.locator("#index-sizes").inner_text()
        assert page.locator("#index-ready").inner_text().startswith("Ready")
    if "matches" in parts:
        assert page.locator("#glance-matches .number").inner_text() == "2"
        assert "known 2" in " ".join(page.locator("#matches-by-list").inner_text().split())
        assert "upload-1" in page.locator("#latest-matches").inner_text()
    if "queue" in parts:
        assert page.locator("#glance-queue .number").inner_text() == "1"
        assert "1 open detection" in page.locator("#queue-open").inner_text()
        linked = page.locator("#to-desk").count() == 1
        assert linked == (who in ("admin", "reviewer"))  # only those who may open the desk
    assert page.locator("#readiness .number").inner_text() == "Ready"
    assert fits(page)
    shoot(page, who)
    phone = sign_in(browser, console, who, width=390)
    assert fits(phone), "the console runs off the side of a phone"
    for part in parts:  # each part there to read, not hidden away
        assert phone.locator(f"section#{part}").is_visible()
    if "lists" in parts:
        assert phone.locator("#list-known").is_visible()
        assert phone.locator("#list-known td[data-label=Version]").is_visible()


def test_a_role_without_a_console_part_is_sent_to_its_desk(browser: Any, console: Console) -> None:
    page = sign_in(browser, console, "analyst")
    assert page.url == console.url + "/desk/hotline"  # its desk, as before
    page.goto(console.url + "/")
    assert page.locator("#forbidden").count() == 1
    assert page.locator("#forbidden a").get_attribute("href") == "/desk/hotline"
    shoot(page, "analyst-forbidden")


def test_a_key_limited_to_lists_sees_only_those(browser: Any, console: Console) -> None:
    page = sign_in(browser, console, "scoped curator")
    assert page.locator("#who").inner_text() == "A curator key, limited to partner."
    assert page.locator("#list-partner").count() == 1
    assert page.locator("#list-known").count() == 0
    assert page.locator("#list-table tbody tr").count() == 1
    assert page.locator("#no-exchanges").inner_text() == "No exchange fills your lists."
    shoot(page, "scoped-curator")
    page = sign_in(browser, console, "scoped reviewer")
    assert page.locator("#list-known").count() == 0
    assert page.locator("#no-matches").count() == 1  # the match today was on "known"
    assert "Nothing waits for review" in page.locator("#queue-open").inner_text()
    page = sign_in(browser, console, "scoped matcher")
    assert page.locator("#index-sizes").count() == 0  # the index spans every list
    tested = file_tested(page, PLANTED)  # on "known", which this key may not use
    assert tested.locator("#result h2").inner_text() == "No match"
    assert "1 list (partner)" in tested.locator("#tested-what").inner_text()
    shoot(tested, "scoped-matcher-tested")


def origin(page: Any) -> str:
    return "/".join(page.url.split("/")[:3])


def file_tested(page: Any, data: bytes, name: str = "image.png") -> Any:
    page.goto(origin(page) + "/console/tester")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "image/png", "buffer": data}])
    with page.expect_navigation():
        page.click("text=Test the file")
    return page


def hash_tested(page: Any, signal: str, value: str) -> Any:
    page.goto(origin(page) + "/console/tester")
    page.select_option("#signal", signal)
    page.fill("#hash", value)
    with page.expect_navigation():
        page.click("text=Test the hash")
    return page


def test_the_match_tester_finds_the_planted_entry_and_explains_it(
    browser: Any, console: Console
) -> None:
    logged = matches_logged(console)
    for width in (1280, 390):
        page = sign_in(browser, console, "matcher", width)
        assert "not recorded in the match log" in page.locator("#not-recorded").inner_text()
        if width == 1280:
            shoot(page, "matcher")
        page = file_tested(page, PLANTED)
        assert page.locator("#result h2").inner_text() == "2 matching entries"
        findings = page.locator("#findings").inner_text()
        assert "PDQ distance 0 <= 31" in findings and "MD5 identical" in findings
        assert "known" in findings and "A1" in findings
        assert "an image (png)" in page.locator("#tested-what").inner_text()
        assert "Not recorded in the match log" in page.locator("#tested-what").inner_text()
        assert fits(page)
        if width == 1280:
            shoot(page, "tester-found")
        page = file_tested(page, OTHER)
        assert page.locator("#result h2").inner_text() == "No match"
        assert page.locator("#no-match").count() == 1
        assert "PDQ" in page.locator("#hashes").inner_text()
        if width == 1280:
            shoot(page, "tester-none")
    # A pasted hash, a few bits from the planted one: found within the list's threshold.
    planted = hashes_of(PLANTED)["pdq"]
    near = format(int(planted, 16) ^ 0b111, "064x")
    page = hash_tested(page, "pdq", near)
    assert "PDQ distance 3 <= 31" in page.locator("#findings").inner_text()
    page = hash_tested(page, "pdq", "5" * 64)
    assert page.locator("#result h2").inner_text() == "No match"
    # The partner list's own threshold (20) is the one given.
    page = hash_tested(page, "pdq", format(int(PARTNER, 16) ^ 0b1111, "064x"))
    assert "PDQ distance 4 <= 20" in page.locator("#findings").inner_text()
    assert matches_logged(console) == logged  # no test is a match in the log


def test_bad_uploads_and_hashes_get_a_clear_message_not_a_500(
    browser: Any, console: Console
) -> None:
    page = sign_in(browser, console, "admin")
    # Not an image: its digest is compared (no match); a broken PNG: said so.
    page = file_tested(page, b"just some text\n", name="notes.txt")
    assert page.locator("#result h2").inner_text() == "No match"
    assert "not an image or a video" in page.locator("#tested-what").inner_text()
    page = file_tested(page, PLANTED[:200], name="broken.png")
    text = page.locator("main").inner_text()
    assert "could not be decoded" in text or "cannot be read" in text, text
    shoot(page, "tester-broken")
    page = hash_tested(page, "pdq", "not a hash")
    assert "That is not a PDQ hash" in page.locator("#error").inner_text()
    assert page.locator("#hash").input_value() == "not a hash"  # kept to correct it
    shoot(page, "tester-bad-hash")
    # Over the service's upload limit (1 MB here): a page saying so.
    responses: list[int] = []
    page.on("response", lambda r: responses.append(r.status))
    page = file_tested(page, b"\x89PNG\r\n\x1a\n" + bytes(1_200_000), name="big.png")
    assert page.locator("#too-large h1").inner_text() == "That file is too large"
    assert "at most 1 MB" in page.locator("#too-large").inner_text()
    assert 413 in responses and 500 not in responses
    shoot(page, "tester-too-large")
    # Far over it: refused before the body is read, with the same page.
    page = file_tested(page, b"\x89PNG\r\n\x1a\n" + bytes(4_000_000), name="huge.png")
    assert page.locator("#too-large h1").inner_text() == "That file is too large"
    assert 500 not in responses


def test_the_tester_is_refused_to_roles_that_may_not_match_and_stale_forms(
    console: Console, browser: Any
) -> None:
    page = sign_in(browser, console, "curator")
    page.goto(console.url + "/console/tester")
    assert "may not match" in page.locator("#error").inner_text()
    assert page.locator("#test-file").count() == 0
    shoot(page, "tester-refused")
    # A form without the session's token (another site's, or an old one): refused.
    page = sign_in(browser, console, "matcher")
    page.goto(console.url + "/console/tester")
    page.evaluate("document.querySelector('#test-hash input[name=csrf]').value = 'stale'")
    page.fill("#hash", "5" * 64)
    with page.expect_navigation():
        page.click("text=Test the hash")
    assert "The form is stale" in page.locator("#error").inner_text()


@pytest.mark.parametrize("who", ["upload", "chat"])
def test_the_tester_is_refused_to_a_services_key_which_matches_through_the_api(
    console: Console, browser: Any, who: str
) -> None:
    """A service's key is a machine's: it matches through the API, logged and reviewed (and
    refused there for an end-to-end-encrypted service); the tester, which logs nothing, never
    answers it."""
    planted = hashes_of(PLANTED)["md5"]
    api = console.server.client.post(
        "/v1/match/hashes", json={"hashes": [{"signal": "md5", "value": planted}]},
        headers={"Authorization": f"Bearer {console.tokens[who]}"})  # fmt: skip
    assert api.status_code == (403 if who == "chat" else 200), api.text
    logged = matches_logged(console)
    page = sign_in(browser, console, who)
    assert "tester" not in sections(page)
    page.goto(console.url + "/console/tester")
    service = "chat" if who == "chat" else "photos"
    assert f"belongs to the service {service}" in page.locator("#error").inner_text()
    assert page.locator("#test-hash").count() == 0
    # the form posted all the same, with the session's token: refused, nothing matched
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    posted = page.request.post(console.url + "/console/tester", multipart={
        "csrf": csrf, "what": "hash", "signal": "md5", "hash": planted})  # fmt: skip
    assert posted.status == 403, posted.text()
    assert f"belongs to the service {service}" in posted.text()
    assert "matching entr" not in posted.text()
    assert matches_logged(console) == logged


def test_a_test_runs_the_match_routes_admission(engine: Engine) -> None:
    """Were a service's key let through, the test would still be refused what the API refuses:
    an end-to-end-encrypted service its profile may not scan."""
    ServiceStore(engine).create("chat", e2ee=True)
    key, _ = ApiKeyStore(engine).create(Role.MATCHER, name="chat check", service="chat")
    served = SimpleNamespace(review=Review(engine), engine=engine)
    query = match_tester.pasted_query("md5", "0" * 32)
    with pytest.raises(ScanningForbidden, match="chat is end-to-end encrypted"):
        match_tester.run_test(served, None, key, query, [], "a pasted MD5 hash")  # type: ignore[arg-type]
    ServiceStore(engine).create("photos")
    photos, _ = ApiKeyStore(engine).create(Role.MATCHER, name="photos", service="photos")
    with pytest.raises(match_tester.ServiceKey, match="service photos"):
        match_tester.run_test(served, None, photos, query, [], "a pasted MD5 hash")  # type: ignore[arg-type]


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in found if v["impact"] in ("serious", "critical")]  # fmt: skip


def test_axe_finds_no_serious_violation_on_the_consoles_pages(
    browser: Any, console: Console
) -> None:
    page = browser.new_page()
    page.goto(console.url + "/")
    assert serious(page) == []  # the sign-in page
    page.close()
    for width in (1280, 390):
        page = sign_in(browser, console, "admin", width)
        assert serious(page) == [], width
        page = file_tested(page, PLANTED)
        assert serious(page) == [], width
        page = hash_tested(page, "pdq", "not a hash")
        assert serious(page) == [], width
