"""The hotline's routes through a real ``hashguard serve`` process with a hotline (NL), on SQLite
and PostgreSQL: a website on loopback serving a benign generated image, a real DNS server
answering its name, an ip2asn file and a hoster registry written here. A public report is
crawled, its item assessed through the API, the case traced and routed; a partner's referral of
the same image is triaged without anyone viewing it. Every refusal has its status and says
what was wrong; malformed bodies never get a 500."""

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashguard.hotline.partners import MAX_ITEMS
from hashguard.store.database import open_engine

from support.database import scratch_database
from support.dns import DnsServer, dns_server
from support.hotline_items import BASELINE, events, hashes_of
from support.media import jpeg
from support.server import Server, running
from support.website import Page, Website, website

IMAGE = jpeg(61)  # benign: a generated scene
ZONE = {"site-a.test": ["A 127.0.0.1"]}
IP2ASN = "# date: 2026-11-30\n127.0.0.0\t127.0.0.255\t64500\tNL\tEXAMPLE-HOSTING\n"
HOSTERS = """\
[[hoster]]
name = "Example Hosting B.V."
country = "NL"
asns = [64500]
abuse_email = "abuse@hosting.example"
"""
PER_HOUR = 5  # reports one address may send
GUESSES = 20  # wrong status tokens one address may try (guess_failures' default)
DEADLINE = 60.0  # seconds the server's pipeline may take before a test gives up on it
ANALYST_ROUTES = [
    ("GET", "/v1/hotline/reports"),
    ("GET", "/v1/hotline/cases/1"),
    ("GET", "/v1/hotline/queue"),
    ("GET", "/v1/hotline/items/1"),
    ("POST", "/v1/hotline/items/1/assessment"),
    ("GET", "/v1/hotline/vocabulary"),
    ("GET", "/v1/hotline/figures"),
    ("POST", "/v1/hotline/trace"),
]

zone = dns_server(ZONE)


class Hotline:
    """The served hotline and the website its reports name."""

    def __init__(self, server: Server, site: Website) -> None:
        self.server = server
        self.site = site

    def page_url(self, path: str) -> str:
        return f"http://site-a.test:{self.site.port}{path}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hotline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, zone: DnsServer
) -> Iterator[Hotline]:
    directory = tmp_path_factory.mktemp("hotline")
    (directory / "ip2asn.tsv").write_text(IP2ASN)
    (directory / "hosters.toml").write_text(HOSTERS)
    pages = {"/gallery": Page(b'<html><body><img src="/photo.jpg"></body></html>'),
             "/photo.jpg": Page(IMAGE, "image/jpeg")}  # fmt: skip
    options = ("--hotline-country", "NL", "--hotline-resolver", zone.address,
               "--hotline-ip-database", str(directory / "ip2asn.tsv"),
               "--hotline-hosters", str(directory / "hosters.toml"),
               "--hotline-network", "127.0.0.0/8",
               "--hotline-reports-per-hour", str(PER_HOUR))  # fmt: skip
    with (
        scratch_database(request.param, directory) as url,
        website(pages) as site,
        running(url, *options) as server,
    ):
        yield Hotline(server, site)


def reporter(server: Server, address: str) -> httpx.Client:
    """A client whose requests come from ``address`` (127/8 is all loopback): the limit of
    reports is per client address, so each test reports from its own."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=60)


def report(client: httpx.Client, *urls: str, **fields: Any) -> httpx.Response:
    body = {"urls": list(urls), "seen_where": "a link in a chat group", **fields}
    return client.post("/v1/hotline/reports", json=body)


def eventually(check: Callable[[], Any], what: str) -> Any:
    """``check()`` once it is true (the server's crawlers and router work in the background)."""
    deadline = time.monotonic() + DEADLINE
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {DEADLINE:.0f} s for {what}")
        time.sleep(0.05)
    return found


def referral(referral_id: str, *items: tuple[str, dict[str, str]]) -> dict[str, Any]:
    """A referral as a partner hotline in DE sends it (docs/formats.md)."""
    return {
        "version": 1, "referral": referral_id,
        "from": {"hotline": "Hotline DE", "country": "DE", "reference": "DE-17"},
        "url": "https://mirror.example/page",
        "items": [{"url": url, "hashes": hashes, "labels": BASELINE,
                   "legality": {"DE": "illegal"}, "assessment": "assessment:4"}
                  for url, hashes in items],
        "trace": {"url": "https://mirror.example/page", "country": "NL", "cdn": False},
        "reason": "hosted in NL, where a partner works",
    }  # fmt: skip


# --- the flow --------------------------------------------------------------------------------


def test_a_report_is_crawled_assessed_routed_and_a_referral_of_its_image_triaged(
    hotline: Hotline,
) -> None:
    server = hotline.server
    with reporter(server, "127.0.0.21") as client:
        answer = report(client, hotline.page_url("/gallery"), language="nl")
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    receipt = answer.json()
    assert receipt["reference"].startswith("HR-") and len(receipt["token"]) == 29
    assert receipt["urls"] == [hotline.page_url("/gallery")] and "joined" not in receipt

    def crawled() -> list[dict[str, Any]]:
        queue = server.get("/v1/hotline/queue", "analyst").json()["items"]
        return [i for i in queue if i["case_url"] == hotline.page_url("/gallery")]

    [item] = eventually(crawled, "the crawler to queue the page's image")
    assert item["url"] == hotline.page_url("/photo.jpg") and item["state"] == "queued"
    assert item["hashes"]["sha256"] == hashes_of(IMAGE)["sha256"]
    # Its crops' hashes (hotline_derived_hashes, on by default) apart from its own hashes.
    assert set(item["hashes"]) == {"pdq", "md5", "sha1", "sha256"} and "crop-10" in item["derived"]
    status = server.get("/v1/hotline/reports/status", headers={"X-Report-Token": receipt["token"]})
    assert status.status_code == 200 and status.json() == {"status": "received"}
    assert status.headers["cache-control"] == "no-store"

    shown = server.get(f"/v1/hotline/items/{item['id']}", "analyst").json()
    assert shown["assessments"] == [] and shown["case_url"] == hotline.page_url("/gallery")
    assessed = server.post(f"/v1/hotline/items/{item['id']}/assessment", "analyst",
                           json={"labels": BASELINE})  # fmt: skip
    assert assessed.status_code == 200, assessed.text
    made = assessed.json()
    assert (made["state"], made["list"], made["analysts"]) == (
        "final", "hotline-illegal", ["test analyst"])  # fmt: skip
    assert made["legality"]["NL"] == "illegal" and made["labels"] == BASELINE
    again = server.post(f"/v1/hotline/items/{item['id']}/assessment", "analyst",
                        json={"labels": BASELINE})  # fmt: skip
    assert again.status_code == 409 and "not waiting for an analyst" in again.text

    # Traced to the hoster of 127.0.0.1 and routed home: a notice, the police.
    token = {"X-Report-Token": receipt["token"]}

    def routed() -> bool:
        answer = server.get("/v1/hotline/reports/status", headers=token).json()
        return bool(answer["status"] == "action taken")

    eventually(routed, "the case to be routed")
    case = server.get(f"/v1/hotline/cases/{item['case']}", "analyst").json()
    assert case["state"] == "routed" and case["route"]["kind"] == "domestic"
    assert case["trace"]["country"] == "NL" and case["trace"]["hoster"] == "Example Hosting B.V."
    assert [n["hoster"] for n in case["notices"]] == ["Example Hosting B.V."]
    assert [r["reference"] for r in case["reports"]] == [receipt["reference"]]
    assert {f["url"] for f in case["fetches"]} >= {hotline.page_url("/photo.jpg")}
    assert "image/jpeg" in json.dumps(case) and "base64" not in json.dumps(case)

    # A partner refers the same image (re-encoded) at another URL: decided here at once.
    sent = referral("ab" * 16, ("https://mirror.example/copy.jpg", hashes_of(IMAGE)))
    received = server.post("/v1/hotline/referrals", "partner", json=sent)
    assert received.status_code == 201, received.text
    first = received.json()
    assert (first["items"], first["queued"], first["triaged"]) == (1, 0, 1)
    repeated = server.post("/v1/hotline/referrals", "partner", json=sent)
    assert repeated.status_code == 200 and repeated.json() == first  # the same report
    queue = server.get("/v1/hotline/queue", "analyst").json()["items"]
    assert not [i for i in queue if i["url"] == "https://mirror.example/copy.jpg"]
    listed = server.get("/v1/hotline/reports", "analyst", params={"limit": 1}).json()["reports"]
    assert listed[0]["reference"] == first["reference"]
    assert listed[0]["source"] == "partner:test partner" and listed[0]["has_contact"] is False
    engine = open_engine(server.database_url)
    try:
        assert not events(engine, "hotline.item.viewed")  # nobody viewed an item
    finally:
        engine.dispose()

    figures = server.get("/v1/hotline/figures", "auditor").json()
    assert figures["auto"] >= 1 and figures["assessed"] >= 1
    assert 0 < figures["auto_share"] < 1


def test_a_referral_of_unknown_images_waits_for_the_analysts(hotline: Hotline) -> None:
    server = hotline.server
    sent = referral("cd" * 16, ("https://mirror.example/new.jpg", hashes_of(jpeg(62))))
    answer = server.post("/v1/hotline/referrals", "partner", json=sent)
    assert answer.status_code == 201, answer.text
    assert {k: answer.json()[k] for k in ("items", "queued", "triaged")} == {
        "items": 1, "queued": 1, "triaged": 0}  # fmt: skip
    queue = server.get("/v1/hotline/queue", "analyst").json()["items"]
    assert [i["state"] for i in queue if i["url"] == "https://mirror.example/new.jpg"] == ["queued"]


def test_a_trace_names_hoster_as_and_country_with_the_databases_date_and_is_audited(
    hotline: Hotline,
) -> None:
    server = hotline.server
    answer = server.post("/v1/hotline/trace", "analyst", json={"url": "HTTP://Site-A.test/x"})
    assert answer.status_code == 200, answer.text
    trace = answer.json()
    assert trace["url"] == "http://site-a.test/x" and trace["dns"]["addresses"] == ["127.0.0.1"]
    [address] = trace["addresses"]
    assert (address["asn"], address["as_name"], address["country"]) == (
        64500, "EXAMPLE-HOSTING", "NL")  # fmt: skip
    assert trace["hoster"]["abuse_email"] == "abuse@hosting.example"
    assert trace["databases"] == ["ip2asn 2026-11-30"] and trace["cdn"] is False
    gone = server.post("/v1/hotline/trace", "analyst", json={"url": "https://gone.site-a.test/"})
    assert gone.status_code == 200 and gone.json()["unresolved"]  # said, not an error
    engine = open_engine(server.database_url)
    try:
        traced = events(engine, "hotline.traced")
    finally:
        engine.dispose()
    assert [e.subject for e in traced[-2:]] == ["http://site-a.test/x", "https://gone.site-a.test/"]
    assert "test analyst" in traced[-1].actor


def test_the_vocabulary_lists_groups_values_and_what_is_required(hotline: Hotline) -> None:
    answer = hotline.server.get("/v1/hotline/vocabulary", "analyst")
    assert answer.status_code == 200
    groups = {g["name"]: g for g in answer.json()["groups"]}
    assert groups["iccam"]["values"] == ["baseline", "nationally-illegal", "not-illegal"]
    assert groups["iccam"]["required"] is True and groups["iwf"]["required"] is False
    assert "NL" in answer.json()["countries"]


# --- limits and refusals ---------------------------------------------------------------------


def test_reports_are_limited_per_client_address(hotline: Hotline) -> None:
    server = hotline.server
    with reporter(server, "127.0.0.31") as client:
        for n in range(PER_HOUR):
            assert report(client, f"https://gone.site-a.test/{n}").status_code == 201
        refused = report(client, "https://gone.site-a.test/over")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        # A refused report does not count: bad input from another address uses none of it.
        with reporter(server, "127.0.0.32") as other:
            assert report(other, "ftp://site-a.test/x").status_code == 400
            assert report(other, "https://gone.site-a.test/other").status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"urls": ["ftp://site-a.test/a"]}, 400, "ftp://site-a.test/a"),
        ({"urls": ["http://10.1.2.3/a"]}, 400, "10.1.2.3"),
        ({"urls": ["https://site-a.test/a"], "seen_where": " "}, 400, "seen_where"),
        ({"urls": ["https://site-a.test/a"], "contact": "x" * 300}, 400, "contact"),
        ({"urls": []}, 400, "urls"),
        ({"urls": [f"https://site-a.test/{n}" for n in range(21)]}, 413, "at most 20"),
        ({"urls": "https://site-a.test/a"}, 422, "urls"),
        ({"urls": [1, 2]}, 422, "urls.0"),
        ({"urls": [{"a": [[{}]]}]}, 422, "urls.0"),
        ({"urls": ["https://site-a.test/a"], "language": "fr"}, 422, "language"),
        ({"urls": ["https://site-a.test/a"], "seen_where": {"x": 1}}, 422, "seen_where"),
    ],
)  # fmt: skip
def test_a_bad_report_is_refused_naming_the_url_or_field(
    hotline: Hotline, body: dict[str, Any], status: int, said: str
) -> None:
    with reporter(hotline.server, "127.0.0.41") as client:
        answer = client.post("/v1/hotline/reports",
                             json={"seen_where": "a forum", **body})  # fmt: skip
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]


def test_a_report_is_json_never_a_file_and_never_a_500(hotline: Hotline) -> None:
    with reporter(hotline.server, "127.0.0.42") as client:
        upload = client.post("/v1/hotline/reports", files={"file": ("a.jpg", IMAGE)})
        assert upload.status_code == 415 and "never takes a file" in upload.text
        form = client.post("/v1/hotline/reports", data={"urls": "https://site-a.test/a"})
        assert form.status_code == 415
        broken = client.post("/v1/hotline/reports", content=b'{"urls": [',
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert broken.status_code == 422 and "not valid JSON" in broken.text
        array = client.post("/v1/hotline/reports", json=[["https://site-a.test/a"]])
        assert array.status_code == 422
        huge = client.post("/v1/hotline/reports", content=b'{"urls": [' + b'"a",' * 1_000_000,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert huge.status_code == 413


def test_a_status_needs_a_known_token_in_its_header(hotline: Hotline) -> None:
    server = hotline.server
    unknown = server.get("/v1/hotline/reports/status", headers={"X-Report-Token": "x" * 43})
    assert unknown.status_code == 404 and "no report has this status token" in unknown.text
    missing = server.get("/v1/hotline/reports/status")
    assert missing.status_code == 422 and "X-Report-Token" in missing.text
    too_long = server.get("/v1/hotline/reports/status", headers={"X-Report-Token": "x" * 500})
    assert too_long.status_code == 422


def test_guessing_status_tokens_is_bounded_per_address_and_counted(hotline: Hotline) -> None:
    server = hotline.server
    with reporter(server, "127.0.0.41") as guesser, reporter(server, "127.0.0.42") as other:
        token = report(guesser, "https://gone.site-a.test/guessed").json()["token"]
        for n in range(GUESSES):
            wrong = guesser.get("/v1/hotline/reports/status",
                                headers={"X-Report-Token": f"wrong-{n}"})  # fmt: skip
            assert wrong.status_code == 404
        right = {"X-Report-Token": token}
        refused = guesser.get("/v1/hotline/reports/status", headers=right)  # the right one too
        assert other.get("/v1/hotline/reports/status", headers=right).status_code == 200
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    metrics = server.get("/metrics", "auditor").text
    assert ('hashguard_rate_limited_total{route="/v1/hotline/reports/status",scope="address"}'
            in metrics)  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ANALYST_ROUTES)
def test_analyst_routes_need_an_analyst_key(hotline: Hotline, method: str, path: str) -> None:
    server = hotline.server
    anonymous = server.request(method, path)
    assert anonymous.status_code == 401
    for role in ("matcher", "partner", "reviewer", "curator"):
        answer = server.request(method, path, role, json={})
        assert answer.status_code == 403 and role in answer.text, (role, answer.text)
    auditor = server.request(method, path, "auditor", json={})
    assert auditor.status_code == (200 if path.endswith("/figures") else 403)
    assert server.request(method, path, "analyst", json={}).status_code < 500


def test_referrals_need_a_partner_key(hotline: Hotline) -> None:
    server = hotline.server
    sent = referral("ef" * 16, ("https://mirror.example/x.jpg", hashes_of(jpeg(63))))
    assert server.post("/v1/hotline/referrals", json=sent).status_code == 401
    for role in ("analyst", "matcher", "auditor"):
        answer = server.post("/v1/hotline/referrals", role, json=sent)
        assert answer.status_code == 403, (role, answer.text)


def _many_items() -> dict[str, Any]:
    hashes = hashes_of(jpeg(64))
    return referral("12" * 16, *[(f"https://mirror.example/{n}.jpg", hashes)
                                 for n in range(MAX_ITEMS + 1)])  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({}, 400, "the field 'version' is missing"),
        ({**referral("34" * 16), "items": []}, 400, "items: expected a list"),
        ({**referral("56" * 16, ("https://mirror.example/a.jpg", {"md5": "zz"}))}, 400,
         "items[0].hashes.md5"),
        ({**referral("78" * 16, ("https://mirror.example/a.jpg", {"md5": "0" * 32})),
          "content": "aGVsbG8="}, 400, "unknown field 'content'"),
        ({**referral("9a" * 16, ("http://10.0.0.1/a.jpg", {"md5": "0" * 32})),
          "url": "http://10.0.0.1/page"}, 400, "10.0.0.1"),
        (_many_items(), 400, f"at most {MAX_ITEMS}"),
        ([1, 2, 3], 422, "body"),
        ("referral", 422, "body"),
    ],
)  # fmt: skip
def test_a_bad_referral_is_refused_naming_the_field(
    hotline: Hotline, body: Any, status: int, said: str
) -> None:
    answer = hotline.server.post("/v1/hotline/referrals", "partner", json=body)
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"labels": {**BASELINE, "iccam": "bogus"}}, 400, "iccam: unknown value 'bogus'"),
        ({"labels": {"iccam": "baseline"}}, 400, "required label group(s) not given"),
        ({"labels": {**BASELINE, "colour": "red"}}, 400, "unknown label group 'colour'"),
        ({"labels": {**BASELINE, "age": "adult"}}, 400, "inconsistent labels"),
        ({"labels": "baseline"}, 422, "labels"),
        ({"labels": {"iccam": {"nested": [1]}}}, 422, "labels.iccam"),
        ({"labels": {f"g{n}": "x" for n in range(100)}}, 422, "labels"),
        ({}, 422, "labels"),
    ],
)  # fmt: skip
def test_a_bad_assessment_is_refused_saying_why(
    hotline: Hotline, body: dict[str, Any], status: int, said: str
) -> None:
    # One referral, however often sent: its item waits for an analyst.
    sent = referral("bc" * 16, ("https://mirror.example/labels.jpg", hashes_of(jpeg(65))))
    assert hotline.server.post("/v1/hotline/referrals", "partner", json=sent).status_code < 300
    queue = hotline.server.get("/v1/hotline/queue", "analyst").json()["items"]
    [item] = [i for i in queue if i["url"] == "https://mirror.example/labels.jpg"]
    answer = hotline.server.post(f"/v1/hotline/items/{item['id']}/assessment", "analyst",
                                 json=body)  # fmt: skip
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]


def test_unknown_cases_and_items_are_404_and_bad_numbers_422(hotline: Hotline) -> None:
    server = hotline.server
    for path in ("/v1/hotline/cases/999999", "/v1/hotline/items/999999"):
        answer = server.get(path, "analyst")
        assert answer.status_code == 404 and "no hotline" in answer.text
    missing = server.post("/v1/hotline/items/999999/assessment", "analyst",
                          json={"labels": BASELINE})  # fmt: skip
    assert missing.status_code == 404
    for path in ("/v1/hotline/cases/0", "/v1/hotline/items/abc", f"/v1/hotline/cases/{2**70}"):
        assert server.get(path, "analyst").status_code == 422
    assert server.get("/v1/hotline/reports", "analyst", params={"limit": 0}).status_code == 422
    bad = server.post("/v1/hotline/trace", "analyst", json={"url": "not a url"})
    assert bad.status_code == 400 and "not a url" in bad.text
    assert server.post("/v1/hotline/trace", "analyst", json={"url": 5}).status_code == 422


def test_without_a_hotline_every_route_says_so(tmp_path: Path) -> None:
    with running(f"sqlite:///{tmp_path / 'plain.db'}") as server:
        for method, path in [("POST", "/v1/hotline/reports"),
                             ("GET", "/v1/hotline/reports/status"),
                             ("POST", "/v1/hotline/referrals")]:  # fmt: skip
            role = "partner" if path.endswith("referrals") else None
            answer = server.request(method, path, role, json={"urls": ["https://a.test/"]})
            assert answer.status_code == 404 and "runs no hotline" in answer.text
        for method, path in ANALYST_ROUTES:
            answer = server.request(method, path, "analyst", json={})
            assert answer.status_code == 404 and "runs no hotline" in answer.text
