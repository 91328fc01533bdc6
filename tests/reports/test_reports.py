"""Provider reports: only after confirmation; the EU Art 13 report complete and signed; the
CyberTipline XML valid against the schema in its order; submission to local receivers (never a
real service) with retries and idempotency. Benign test values throughout."""

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from lxml import etree
from sqlalchemy import Engine

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.reports import eu, ncmec
from hashguard.reports.eu import Circumstances, Provider, ReportError
from hashguard.reports.submit import ATTEMPTS, CyberTiplineAdapter, EuCentreAdapter, Reports
from hashguard.review.detections import Evidence, Review
from hashguard.review.model import Decision, ReviewError, State
from hashguard.review.services import ServiceStore
from hashguard.review.webhook import DELIVERED, FAILED, PENDING, Backlog
from hashguard.store.counts import counts
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

from support.loopback import Loopback

PDQ = "f" * 32 + "0" * 32
PROVIDER = Provider("Photos Example BV", "trust@photos.example", "NL", "Rep Example BV",
                    "Sam Trust")  # fmt: skip
REMOVED = Circumstances(removed=True, urgent=True, urgency_reason="recent upload, shared widely")


@pytest.fixture
def key(tmp_path):
    keys.generate(tmp_path / "provider.key")
    return keys.load(tmp_path / "provider.key")


@pytest.fixture
def review(engine: Engine) -> Review:
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("known", [Submission("pdq", PDQ, frozenset({"A1"}))])
    ServiceStore(engine).create("photos")
    return Review(engine, lists)


def detection(review: Review, ref: str = "upload-1", account_ref: str = "account-9",
              **given: object) -> int:  # fmt: skip
    """A detection of the listed hash; ``given``: the subject's fields as the platform gave
    them (these by default)."""
    entry = review.lists.entry("known", "pdq", PDQ)
    subject = {"ip": "192.0.2.44", "ip_at": "2026-11-01T09:30:00+00:00", "port": 51234,
               "hashes": {"pdq": PDQ, "sha256": "ab" * 32, "md5": "cd" * 16},
               "user": {"screen_name": "tester"}, **given}  # fmt: skip
    return review.open(review.services.get("photos"), ref,
                       [Evidence("known", entry.id, "pdq", 6, ("A1",), entry.value)],
                       account_ref=account_ref, subject=subject).id  # fmt: skip


@pytest.mark.parametrize("recipient", ["eu-centre", "ncmec"])
def test_no_report_before_a_reviewer_confirms(review: Review, key, recipient: str) -> None:
    reports = Reports(review.engine, review)
    ident = detection(review)
    for _ in range(2):  # pending, then in review
        with pytest.raises(ReviewError, match="only after a reviewer confirms"):
            reports.make(ident, recipient, PROVIDER, REMOVED, key, "reviewer-1")
        review.claim(ident, "reviewer-1")
    assert reports.of(ident) == []
    review.decide(ident, "reviewer-1", Decision.CONFIRM, "listed image")
    made = reports.make(ident, recipient, PROVIDER, REMOVED, key, "reviewer-1")
    assert made.state == "built"
    assert reports.make(ident, recipient, PROVIDER, REMOVED, key, "reviewer-1").id == made.id


def confirmed(review: Review) -> int:
    ident = detection(review)
    review.decide(ident, "reviewer-1", Decision.CONFIRM, "listed image")
    return ident


def test_the_eu_report_holds_every_art_13_element_and_is_signed(review: Review, key) -> None:
    document = eu.build(review.get(confirmed(review)), PROVIDER, REMOVED, "legal basis X", key)
    assert document["provider"]["legal_representative"] == "Rep Example BV"  # (a)
    assert datetime.fromisoformat(document["created_at"]).tzinfo is not None  # (b)
    assert document["content"]["reference"] == "upload-1"  # (c)
    assert {h["signal"] for h in document["content"]["hashes"]} == {"pdq", "sha256", "md5"}
    assert document["incident"]["confirmed_by_human"] is True  # (d)
    assert document["type"] == "known"  # (e)
    assert document["location"] == {
        "ip": "192.0.2.44",
        "ip_at": "2026-11-01T09:30:00+00:00",
        "port": 51234,
        "country": "",
    }  # fmt: skip  (f)
    assert document["user"] == {"account_ref": "account-9", "screen_name": "tester"}  # (g)
    assert document["third_country_report"]["reported"] is False  # (h)
    assert document["removed"] is True and document["urgent"] is True  # (i), (j)
    assert document["legal_basis"] == "legal basis X"  # (k)
    assert eu.validate(document) == []
    assert keys.verify(document["signature"]["public_key"], eu.signed_bytes(document),
                       document["signature"]["value"])  # fmt: skip
    edited = {**document, "removed": False}
    assert eu.validate(edited) == ["signature (Art 13(1)(b)) does not verify"]


def test_an_eu_report_missing_an_element_is_refused_naming_it(review: Review, key) -> None:
    found = review.get(confirmed(review))
    without_ip = type(found)(**{**found.__dict__, "subject": {"hashes": {"md5": "cd" * 16}}})
    with pytest.raises(ReportError, match=r"location\.ip \(Art 13\(1\)\(f\)\)"):
        eu.build(without_ip, PROVIDER, REMOVED, "basis", key)
    with pytest.raises(ReportError, match=r"provider\.contact_email"):
        eu.build(found, Provider("P", "no-email", "NL"), REMOVED, "basis", key)


def test_the_cybertipline_xml_is_valid_and_in_the_schemas_order(review: Review) -> None:
    found = review.get(confirmed(review))
    xml = ncmec.report_xml(found, PROVIDER, REMOVED)
    root = etree.fromstring(xml)
    assert ncmec.schema().validate(root)
    assert [child.tag for child in root] == [
        "incidentSummary", "reporter", "personOrUserReported", "additionalInfo"]  # fmt: skip
    assert root.findtext("incidentSummary/incidentType") == ncmec.INCIDENT_KNOWN
    assert root.findtext("incidentSummary/escalateToHighPriority") == REMOVED.urgency_reason
    assert root.findtext("reporter/reportingPerson/email") == "trust@photos.example"
    event = root.find("personOrUserReported/ipCaptureEvent")
    assert [c.tag for c in event] == ["ipAddress", "eventName", "dateTime", "port"]
    assert event.findtext("dateTime") == "2026-11-01T09:30:00Z"
    details = etree.fromstring(ncmec.file_details_xml(found, 42, "file-1", False, "beach.jpg"))
    assert details.findtext("fileViewedByEsp") == "false"  # confirmed on the evidence alone
    viewed = etree.fromstring(ncmec.file_details_xml(found, 42, "file-1", True))
    assert viewed.findtext("fileViewedByEsp") == "true"
    assert details.findtext("industryClassification") == "A1"
    hashes = {h.get("hashType"): h.text for h in details.findall("originalFileHash")}
    assert hashes == {"MD5": "cd" * 16, "SHA256": "ab" * 32}
    assert details.findtext("details/nameValuePair/value") == PDQ
    reordered = etree.fromstring(xml)
    reordered.insert(0, reordered.find("reporter"))
    assert not ncmec.schema().validate(reordered)


@pytest.mark.parametrize(
    ("ip_at", "port"),
    [("yesterday", "80; rm"), ("0001-01-01T00:00:00+01:00", "0"),
     ("9999-12-31T23:59:59-23:00", "65536"), ("2026-11-01T09:30:00", "-1")],  # no zone: no moment
)  # fmt: skip
def test_what_a_platform_gave_that_xml_or_a_time_cannot_carry_still_makes_a_valid_report(
    review: Review, ip_at: str, port: str
) -> None:
    """The subject comes with the platform's match: an IP time that is no time (or none in
    UTC), a port that is no port, a reference with control characters. The report is made
    and valid: those are left out of the IP event and said in the additional information, and
    the characters XML cannot carry are replaced."""
    ident = detection(review, account_ref="acc\x01ount", ip_at=ip_at, port=port)
    review.decide(ident, "reviewer-1", Decision.CONFIRM, "listed image")
    root = etree.fromstring(ncmec.report_xml(review.get(ident), PROVIDER, REMOVED))
    assert ncmec.schema().validate(root)
    event = root.find("personOrUserReported/ipCaptureEvent")
    assert [c.tag for c in event] == ["ipAddress", "eventName"]
    assert root.findtext("personOrUserReported/espIdentifier") == "acc\ufffdount"
    info = root.findtext("additionalInfo")
    assert f"time of the IP address as the platform gave it: {ip_at!r}" in info
    assert f"port as the platform gave it: {port!r}" in info
    details = etree.fromstring(ncmec.file_details_xml(review.get(ident), 42, "file-1", False))
    assert [c.tag for c in details.find("ipCaptureEvent")] == ["ipAddress", "eventName"]


# --- submission to local receivers -----------------------------------------------------------


@pytest.fixture
def eu_centre() -> Iterator[Loopback]:
    """Fails once (503), then accepts; a key seen before answers 409."""
    seen: dict[str, str] = {}
    failures = [1]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if failures[0] > 0:
            failures[0] -= 1
            return 503, "text/plain", b"busy"
        document = json.loads(body)
        if eu.validate(document):
            return 422, "text/plain", b"invalid"
        key = headers["Idempotency-Key"]
        if key in seen:
            return 409, "application/json", json.dumps({"id": seen[key]}).encode()
        seen[key] = f"EUC-{len(seen) + 1}"
        return 201, "application/json", json.dumps({"id": seen[key]}).encode()

    made = Loopback(answer)
    yield made
    made.close()


def test_the_eu_report_is_submitted_with_retries_and_one_idempotency_key(
    review: Review, key, eu_centre: Loopback
) -> None:
    waits: list[float] = []
    reports = Reports(review.engine, review, sleep=waits.append)
    ident = confirmed(review)
    made = reports.make(ident, "eu-centre", PROVIDER, REMOVED, key, "reviewer-1")
    sent = reports.submit(made.id, EuCentreAdapter(eu_centre.url + "/reports"), "reviewer-1")
    assert sent.state == "submitted" and sent.external_id == "EUC-1" and sent.attempts == 2
    assert waits == [0.5]
    assert {h["Idempotency-Key"] for _, h, _ in eu_centre.requests} == {made.idempotency_key}
    assert review.get(ident).state is State.REPORTED
    assert reports.submit(made.id, EuCentreAdapter(eu_centre.url + "/reports"), "r").id == made.id
    assert len(eu_centre.requests) == 2  # submitted already: nothing sent again
    assert counts(review.engine, datetime.now(UTC).year)["reports"] == {"eu-centre": 1.0}


@pytest.fixture
def cybertipline() -> Iterator[Loopback]:
    """NCMEC's API as documented: Basic auth, XML in, reportResponse out; /finish fails once."""
    finish_failures = [1]
    expected = "Basic " + base64.b64encode(b"esp-user:esp-pass").decode()

    def response(code: int, report_id: int | None = None) -> bytes:
        ident = f"<reportId>{report_id}</reportId>" if report_id else ""
        return (f"<reportResponse><responseCode>{code}</responseCode>"
                f"<responseDescription/>{ident}</reportResponse>").encode()  # fmt: skip

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if headers.get("Authorization") != expected:
            return 401, "text/xml", b""
        if path.endswith("/submit"):
            valid = ncmec.schema().validate(etree.fromstring(body))
            return 200, "text/xml", response(0, 4711) if valid else response(4100)
        if path.endswith("/finish"):
            if finish_failures[0] > 0:
                finish_failures[0] -= 1
                return 500, "text/plain", b"down"
            return (
                200,
                "text/xml",
                b"<reportDoneResponse><responseCode>0</responseCode>"
                b"<reportId>4711</reportId><files/></reportDoneResponse>",
            )
        return 404, "text/plain", b""

    made = Loopback(answer)
    yield made
    made.close()


def test_the_cybertipline_flow_resumes_after_a_failure_without_filing_twice(
    review: Review, key, cybertipline: Loopback
) -> None:
    waits: list[float] = []
    reports = Reports(review.engine, review, sleep=waits.append)
    ident = confirmed(review)
    made = reports.make(ident, "ncmec", PROVIDER, REMOVED, key, "reviewer-1")
    adapter = CyberTiplineAdapter(cybertipline.url + "/ispws", "esp-user", "esp-pass")
    sent = reports.submit(made.id, adapter, "reviewer-1")
    assert sent.state == "submitted" and sent.external_id == "4711"
    assert [path for path, _, _ in cybertipline.requests] == [
        "/ispws/submit", "/ispws/finish", "/ispws/finish"]  # fmt: skip
    assert review.get(ident).state is State.REPORTED


def test_a_refused_report_stays_unsubmitted_with_the_reason(
    review: Review, key, cybertipline: Loopback
) -> None:
    reports = Reports(review.engine, review, sleep=lambda _: None)
    made = reports.make(confirmed(review), "ncmec", PROVIDER, REMOVED, key, "reviewer-1")
    with pytest.raises(ReportError, match="HTTP 401"):
        reports.submit(made.id, CyberTiplineAdapter(cybertipline.url, "esp-user", "wrong"), "r")
    after = reports.get(made.id)
    assert after.state == "built" and "HTTP 401" in after.last_error


def test_an_undelivered_report_says_why_in_the_log_the_counter_and_its_state(
    review: Review, key, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: list[bool] = []
    reports = Reports(review.engine, review, sleep=lambda _: None, attempted=outcomes.append)
    made = reports.make(confirmed(review), "eu-centre", PROVIDER, REMOVED, key, "reviewer-1")
    assert made.delivery == PENDING and reports.backlog().pending == 1
    with caplog.at_level(logging.WARNING, logger="hashguard.reports"):
        after = reports.submit(made.id, EuCentreAdapter("http://nothing.invalid/reports"), "r")
    assert after.state == "built" and after.delivery == FAILED and after.attempts == ATTEMPTS
    assert after.last_error.startswith("cannot resolve nothing.invalid")
    assert outcomes == [False] * ATTEMPTS
    lines = [r.getMessage() for r in caplog.records]
    assert sum("to eu-centre failed: cannot resolve nothing.invalid" in line
               for line in lines) == ATTEMPTS  # fmt: skip
    assert any(f"not delivered after {ATTEMPTS} attempts" in line for line in lines)
    waiting = reports.backlog()
    assert waiting.pending == 0 and waiting.failed == 1
    # Sent again when the EU Centre is back: delivered.
    centre = Loopback(lambda path, headers, body: (201, "application/json", b'{"id": "E-1"}'))
    try:
        sent = reports.submit(made.id, EuCentreAdapter(centre.url + "/reports"), "r")
    finally:
        centre.close()
    assert sent.delivery == DELIVERED and outcomes[-1] is True
    assert reports.backlog() == Backlog(0, 0.0, 0)


@pytest.mark.parametrize(
    ("status", "kind", "body"),
    [
        (201, "application/json", b"[" * 100_000),  # deeper than the JSON parser goes
        (400, "application/json; charset=base64", b'{"error": "no such provider"}'),
    ],
)
def test_an_eu_centre_answer_of_any_shape_is_taken_or_refused_by_its_status(
    review: Review, key, status: int, kind: str, body: bytes
) -> None:
    """The EU Centre's answer decides by its status: taken (2xx) whatever its body holds, or
    refused with the body's start in the message (in a charset that makes no text: UTF-8)."""
    reports = Reports(review.engine, review, sleep=lambda _: None)
    made = reports.make(confirmed(review), "eu-centre", PROVIDER, REMOVED, key, "reviewer-1")
    centre = Loopback(lambda path, headers, sent: (status, kind, body))
    try:
        if status == 201:
            assert (
                reports.submit(made.id, EuCentreAdapter(centre.url + "/reports"), "r").delivery
                == DELIVERED
            )
        else:
            with pytest.raises(ReportError, match=r"refused the report: HTTP 400.*no such"):
                reports.submit(made.id, EuCentreAdapter(centre.url + "/reports"), "r")
    finally:
        centre.close()
