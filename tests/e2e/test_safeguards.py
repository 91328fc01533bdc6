"""The whole path through a real ``hashguard serve``, on SQLite and PostgreSQL, from a benign
generated image: upload check -> match -> detection -> review -> confirm or false positive ->
notice -> complaint -> reversal -> report -> purge -> annual report; with the service's webhook
and the EU Centre as real servers on loopback. And the guarantee: no report, suspension or
permanent removal before a reviewer confirms. Benign images and test hashes only."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.reports import eu
from hashguard.review.services import ServiceStore
from hashguard.review.webhook import load_secret, service_secret, signature_valid
from hashguard.signals.pdq import PdqSignal
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.store.tables import DetectionRow, NoticeRow
from hashguard.transparency import keys as key_files

from support.loopback import Loopback
from support.media import jpeg
from support.server import Server, running

IMAGE = jpeg(21)  # a benign generated scene, listed below by its PDQ hash
KNOWN = PdqSignal().hash(IMAGE).hex
NEAR = format(int(KNOWN, 16) ^ 1, "064x")  # 1 bit from KNOWN
OTHER = "0f" * 32
SUBJECT = {"account_ref": "account-1", "ip": "192.0.2.7", "ip_at": "2026-11-01T10:00:00Z"}


@pytest.fixture
def outside() -> Iterator[tuple[Loopback, Loopback]]:
    """The service's webhook endpoint and the EU Centre's report intake."""

    def hook(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return 204, "text/plain", b""

    def centre(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        problems = eu.validate(json.loads(body))
        if problems:
            return 422, "text/plain", "; ".join(problems).encode()
        return 201, "application/json", b'{"id": "EUC-77"}'

    webhook, intake = Loopback(hook), Loopback(centre)
    yield webhook, intake
    webhook.close()
    intake.close()


@pytest.fixture
def world(engine: Engine, database_url: str, outside, tmp_path) -> Iterator[tuple]:
    webhook, intake = outside
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.create("other", "Test Hotline", Category.KNOWN_CSAM, ["NL"],
                 policy=ListPolicy(four_eyes=True))  # fmt: skip
    lists.apply("known", [Submission("pdq", KNOWN, frozenset({"A1"}))])
    lists.apply("other", [Submission("pdq", OTHER)])
    ServiceStore(engine).create("photos", webhook_url=webhook.url + "/hook")
    keys = ApiKeyStore(engine)
    tokens = {
        "upload": keys.create(Role.MATCHER, name="upload check", service="photos")[1],
        "ana": keys.create(Role.REVIEWER, name="ana")[1],
        "ben": keys.create(Role.REVIEWER, name="ben")[1],
    }
    key_files.generate(tmp_path / "provider.key")
    options = ["--provider-name", "Photos Example BV", "--provider-email", "trust@example.org",
               "--provider-country", "NL", "--report-key", str(tmp_path / "provider.key"),
               "--eu-centre-url", intake.url + "/reports"]  # fmt: skip
    with running(database_url, *options) as server:
        yield server, tokens, webhook, intake, engine


def call(server: Server, token: str, method: str, path: str, **options):  # type: ignore[no-untyped-def]
    return server.client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                 **options)  # fmt: skip


def upload(server: Server, token: str, ref: str, value: str) -> None:
    answer = call(server, token, "POST", "/v1/match/hashes",
                  json={"hashes": [{"signal": "pdq", "value": value, "content_ref": ref,
                                    **SUBJECT}]})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["matched"] == 1, answer.text


def detections(server: Server, token: str) -> dict[str, dict]:
    return {d["content_ref"]: d for d in call(server, token, "GET", "/v1/detections").json()
            ["detections"]}  # fmt: skip


def webhook_events(webhook: Loopback, secret: str) -> list[dict]:
    events = []
    for _, headers, body in webhook.requests:
        assert signature_valid(secret, headers["X-Hashguard-Signature"], body)
        events.append(json.loads(body))
    return events


def test_the_whole_path_from_upload_check_to_annual_report(world) -> None:
    server, tokens, webhook, intake, engine = world
    secret = service_secret(load_secret(server.secret_file), "photos")
    # Upload checks: an uploaded image and a hash match, a third does not (and leaves nothing).
    image = call(server, tokens["upload"], "POST", "/v1/match/media",
                 params={"content_ref": "up-A", **SUBJECT}, content=IMAGE)  # fmt: skip
    assert image.status_code == 200 and len(image.json()["matches"]) == 1, image.text
    upload(server, tokens["upload"], "up-B", NEAR)
    unlisted = {"signal": "pdq", "value": "a5" * 32, "content_ref": "up-C"}
    miss = call(server, tokens["upload"], "POST", "/v1/match/hashes",
                json={"hashes": [unlisted]})  # fmt: skip
    assert miss.json()["matched"] == 0
    queue = detections(server, tokens["ana"])
    assert set(queue) == {"up-A", "up-B"} and queue["up-A"]["state"] == "pending"
    assert queue["up-A"]["quarantine_requested"] and queue["up-A"]["account_ref"] == "account-1"
    a, b = queue["up-A"]["id"], queue["up-B"]["id"]
    assert webhook.wait_for(2)  # both quarantined, through the signed webhook
    assert {e["kind"] for e in webhook_events(webhook, secret)} == {"quarantine"}
    # Review: A confirmed; the service removes it; the user gets a statement of reasons.
    decided = call(server, tokens["ana"], "POST", f"/v1/detections/{a}/decision",
                   json={"decision": "confirm", "reason": "the listed image"})  # fmt: skip
    assert decided.json()["state"] == "confirmed"
    acted = call(server, tokens["ana"], "POST", f"/v1/detections/{a}/actions",
                 json={"kind": "remove", "reason": "known material", "country": "NL"})  # fmt: skip
    assert acted.status_code == 201, acted.text
    notice = acted.json()["notice_text"]
    assert "Autoriteit Persoonsgegevens" in notice and "court" in notice
    assert "/complaints/" not in notice  # the link is the user's alone
    assert webhook.wait_for(4)  # the removal and the notice
    sent = webhook_events(webhook, secret)
    assert [e["event"] for e in sent[2:]] == ["action.taken", "notice"]
    assert sent[3]["account_ref"] == "account-1"
    token = re.search(r"/complaints/(\S+)", sent[3]["text"]).group(1)
    # The report goes to the EU Centre, signed and complete.
    reported = call(server, tokens["ana"], "POST", f"/v1/detections/{a}/reports",
                    json={"recipient": "eu-centre", "removed": True})  # fmt: skip
    assert reported.status_code == 201, reported.text
    assert reported.json()["state"] == "submitted" and reported.json()["external_id"] == "EUC-77"
    document = json.loads(intake.requests[0][2])
    assert document["location"]["ip"] == "192.0.2.7" and document["removed"] is True
    content_hashes = {h["signal"]: h["value"] for h in document["content"]["hashes"]
                      if h["of"] == "content"}  # fmt: skip
    assert content_hashes["pdq"] == KNOWN  # the upload's own hash, computed in memory
    detail = call(server, tokens["ana"], "GET", f"/v1/detections/{a}").json()
    assert detail["state"] == "reported"
    # The user complains; Ana decided, so Ben decides; upheld: everything is reversed.
    lodged = server.client.post("/v1/complaints", json={"token": token,
                                                        "statement": "my own photo"})  # fmt: skip
    assert lodged.status_code == 201, lodged.text
    complaint = lodged.json()["id"]
    refused = call(server, tokens["ana"], "POST", f"/v1/complaints/{complaint}/decision",
                   json={"upheld": True, "reason": "I was wrong"})  # fmt: skip
    assert refused.status_code == 409 and "another reviewer" in refused.json()["error"]["message"]
    upheld = call(server, tokens["ben"], "POST", f"/v1/complaints/{complaint}/decision",
                  json={"upheld": True, "reason": "a different picture"})  # fmt: skip
    assert upheld.json()["state"] == "upheld"
    after = call(server, tokens["ben"], "GET", f"/v1/detections/{a}").json()
    assert after["state"] == "false_positive" and after["content_ref"] == f"purged:{a}"
    assert webhook.wait_for(6)
    reversed_kinds = {e["kind"] for e in webhook_events(webhook, secret)
                      if e["event"] == "action.reversed"}  # fmt: skip
    assert reversed_kinds == {"quarantine", "remove"}
    entry = server.get(f"/v1/lists/known/entries/pdq/{KNOWN}", "auditor").json()
    assert entry["status"] == "contested"  # negative feedback to the list's owner
    # B is a false positive too, decided at the desk's API: undone at once.
    fp = call(server, tokens["ben"], "POST", f"/v1/detections/{b}/decision",
              json={"decision": "false_positive", "reason": "a different picture"})  # fmt: skip
    assert fp.json()["state"] == "false_positive" and fp.json()["account_ref"] == ""
    # The purge deletes what is due (made due here) and says so in the audit log.
    with engine.begin() as connection:
        past = datetime.now(UTC) - timedelta(seconds=1)
        connection.execute(update(DetectionRow).where(DetectionRow.__table__.c.id == a)
                           .values(retain_until=past))  # fmt: skip
    kept = server.post("/v1/purge", "admin").json()
    assert kept["detections"] == [] and kept["held"] == 1  # its complaint period still runs
    with engine.begin() as connection:
        connection.execute(update(NoticeRow).where(NoticeRow.__table__.c.detection_id == a)
                           .values(complaint_until=past))  # fmt: skip
    purged = server.post("/v1/purge", "admin").json()
    assert purged["detections"] == [a]
    assert call(server, tokens["ben"], "GET", f"/v1/detections/{a}").status_code == 404
    audit = server.get("/v1/audit?limit=1000", "auditor").json()["events"]
    assert any(e["action"] == "retention.purge" for e in audit)
    assert server.get("/v1/audit/verify", "auditor").json()["ok"] is True
    # The year's figures: counted, small cells suppressed, nobody named.
    year = datetime.now(UTC).year
    figures = server.get(f"/v1/stats/annual?year={year}", "auditor").json()
    eu_figures = figures["regulation_2021_1232"]
    assert eu_figures["data_processed"]["detections_by_technology"] == {"pdq": "<10"}
    assert eu_figures["errors_by_technology"]["pdq"]["false_positives"] == "<10"
    assert eu_figures["shared_with"] == ["eu-centre"]
    text = json.dumps(figures)
    assert "account-1" not in text and "192.0.2.7" not in text and "up-A" not in text


@pytest.mark.parametrize("kind", ["remove", "disable", "suspend"])
def test_no_report_suspension_or_removal_before_confirmation(world, kind: str) -> None:
    server, tokens, webhook, intake, _ = world
    upload(server, tokens["upload"], "up-X", OTHER)  # a four-eyes list
    ident = detections(server, tokens["ana"])["up-X"]["id"]

    def refused_everything() -> None:
        acted = call(server, tokens["ana"], "POST", f"/v1/detections/{ident}/actions",
                     json={"kind": kind, "reason": "policy"})  # fmt: skip
        assert acted.status_code == 409 and "confirmation first" in acted.text
        for recipient in ("eu-centre", "ncmec"):
            report = call(server, tokens["ana"], "POST", f"/v1/detections/{ident}/reports",
                          json={"recipient": recipient, "removed": False})  # fmt: skip
            assert report.status_code == 409 and "after a reviewer confirms" in report.text

    refused_everything()  # pending
    first = call(server, tokens["ana"], "POST", f"/v1/detections/{ident}/decision",
                 json={"decision": "confirm", "reason": "looks like it"})  # fmt: skip
    assert first.json()["state"] == "in_review"  # four eyes: one reviewer is not enough
    refused_everything()  # in review, with one confirming vote
    assert webhook.wait_for(1)
    events = [json.loads(body) for _, _, body in webhook.requests]
    assert [(e["event"], e["kind"]) for e in events] == [("action.taken", "quarantine")]
    assert intake.requests == []  # nothing was reported
    second = call(server, tokens["ben"], "POST", f"/v1/detections/{ident}/decision",
                  json={"decision": "confirm", "reason": "agreed"})  # fmt: skip
    assert second.json()["state"] == "confirmed"
    acted = call(server, tokens["ben"], "POST", f"/v1/detections/{ident}/actions",
                 json={"kind": kind, "reason": "policy"})  # fmt: skip
    assert acted.status_code == 201


def test_an_encrypted_service_is_refused_before_anything_is_matched(world) -> None:
    server, _tokens, _webhook, _intake, engine = world
    ServiceStore(engine).create("chat", e2ee=True)  # under the default, known-only profile
    sealed = ApiKeyStore(engine).create(Role.MATCHER, name="chat check", service="chat")[1]
    body = {"hashes": [{"signal": "pdq", "value": KNOWN, "content_ref": "chat-1"}]}
    for answer in (
        call(server, sealed, "POST", "/v1/match/hashes", json=body),  # the hot path
        call(server, sealed, "POST", "/v1/match/media", files={"file": IMAGE}),
    ):
        assert answer.status_code == 403, answer.text
        assert "service chat is end-to-end encrypted" in answer.json()["error"]["message"]
    assert "chat-1" not in detections(server, _tokens["ana"])
