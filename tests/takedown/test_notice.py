"""A notice as hosters receive it: a valid XARF v4 content/csam report (checked with XARF's own
package) with the DSA Art 16 fields, every item's hashes and labels and no content, signed; the
e-mail says the same facts in English and then in Dutch, with the signed document attached; an
API's answer is read without ever failing on junk."""

import json
from datetime import UTC, datetime
from email import message_from_string, policy
from email.message import EmailMessage
from typing import Any

import pytest
import xarf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from hashguard.takedown import notice, signing
from hashguard.takedown.model import DeliveryPurpose
from hashguard.transparency import keys

from support.notice_rows import LABELS, item, stored_notice

SENDER = notice.Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
AT = datetime(2025, 3, 1, 12, 5, tzinfo=UTC)


def test_a_stored_notice_becomes_a_signed_valid_xarf_csam_report(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()
    second = item("https://files.example/a/2.jpg", seed=2,
                  labels={**LABELS, "iccam": "nationally-illegal", "industry": "B2",
                          "age": "pubescent"})  # fmt: skip
    second["hashes"]["vpdq"] = "0,0.000,ff00" + "0" * 60
    row = stored_notice(engine, items=[item("https://files.example/a/1.jpg"), second],
                        urls=["https://files.example/a/1.jpg", "https://files.example/a/2.jpg",
                              "https://files.example/a/"])  # fmt: skip
    document = notice.compose(row._mapping, SENDER, key, AT)

    assert signing.verify(document) == keys.public_hex(key)
    parsed = xarf.parse(json.loads(signing.dumps(document)))
    assert parsed.errors == [] and parsed.report is not None
    assert (document["category"], document["type"]) == ("content", "csam")
    assert document["report_id"] == row.report_id
    assert document["timestamp"] == "2025-03-01T10:00:00Z"  # when the hotline got the report
    assert document["url"] == "https://files.example/a/1.jpg"
    assert document["urls"] == row.urls == document["dsa_art16"]["exact_locations"]
    assert document["classification"] == "A1"  # the most severe of its items
    assert document["detection_method"] == "manual_review"
    assert document["source_identifier"] == document["domain"] == "files.example"
    assert document["hosting_provider"] == "Files BV" and document["country_code"] == "NL"
    assert document["reporter"] == {"org": "Meldpunt", "contact": "notices@hotline.example",
                                    "domain": "hotline.example"}  # fmt: skip
    first, other = document["hashguard_items"]
    assert first["hashes"] == {s: row.items[0]["hashes"][s] for s in ("pdq", "md5", "sha1",
                                                                      "sha256")}  # fmt: skip
    assert document["hash_values"] == {s: first["hashes"][s] for s in ("md5", "sha1", "sha256")}
    assert other["hashes"]["vpdq"] == second["hashes"]["vpdq"]
    assert (first["classification"], other["classification"]) == ("A1", "B2")
    assert other["labels"]["iccam"] == "nationally-illegal"
    art16 = document["dsa_art16"]
    assert "A1" in art16["reasons"] and "B2" in art16["reasons"]
    assert art16["notifier_identity"].startswith("omitted") and "2011/93/EU" in art16[
        "notifier_identity"]  # fmt: skip
    assert art16["good_faith_statement"].startswith("Meldpunt states in good faith")
    takedown = document["hashguard_notice"]
    assert takedown["deadline"] == "2025-03-02T12:00:00Z"
    assert takedown["composed_at"] == "2025-03-01T12:05:00Z"
    assert takedown["no_content_attached"] is True and "evidence" not in document
    assert takedown["reply"]["portal"] == "https://hotline.example/hosters"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"industry": "A1", "iccam": "baseline"}, "A1"),
        ({"industry": "B1", "iccam": "nationally-illegal"}, "B1"),
        ({"iccam": "baseline"}, "baseline"),
        ({"industry": "none", "iccam": "nationally-illegal"}, None),
        ({}, None),
    ],
)
def test_labels_map_to_xarf_classifications(labels: dict[str, str], expected: str | None) -> None:
    assert notice.classification(labels) == expected


def test_a_notice_of_national_law_only_or_an_order_still_validates(engine: Engine) -> None:
    drawn = {"iccam": "nationally-illegal", "industry": "none", "age": "unknown",
             "depiction": "drawn"}  # fmt: skip
    row = stored_notice(engine, items=[item("https://files.example/a/1.jpg", labels=drawn)])
    document = notice.compose(row._mapping, SENDER, Ed25519PrivateKey.generate(), AT)
    assert document["classification"] == "baseline"  # XARF needs one: documented default
    assert document["hashguard_items"][0]["classification"] is None
    order = stored_notice(engine, kind="order", items=[], legal_basis="Regulation (EU) 2024/1307",
                          reference="ORD-7", issued_by="ATKM",
                          urls=["http://198.51.100.7/x.jpg"])  # fmt: skip
    document = notice.compose(order._mapping, SENDER, Ed25519PrivateKey.generate(), AT)
    notice.validate(document)
    assert document["source_identifier"] == "198.51.100.7" and "domain" not in document
    assert "Regulation (EU) 2024/1307" in document["dsa_art16"]["reasons"]
    assert document["hashguard_notice"]["issued_by"] == "authority: ATKM"


def test_the_reply_links_follow_the_public_url_and_name_no_key(engine: Engine) -> None:
    sender = notice.Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL",
                           "http://hotline.example:8443/hashguard/")  # fmt: skip
    order = stored_notice(engine, kind="order", items=[], legal_basis="CSA Regulation Art 14",
                          reference="ORD-8", issued_by="key:17 (ATKM desk, J. Jansen)")  # fmt: skip
    document = notice.compose(order._mapping, sender, Ed25519PrivateKey.generate(), AT)
    takedown = document["hashguard_notice"]
    assert takedown["reply"] == {
        "portal": "http://hotline.example:8443/hashguard/hosters",
        "api": f"http://hotline.example:8443/hashguard/v1/takedown/notices/{order.id}",
    }
    assert takedown["issued_by"] == "authority: ATKM desk, J. Jansen"
    unnamed = stored_notice(engine, kind="order", items=[], legal_basis="Art 14",
                            reference="ORD-9", issued_by="key:18")  # fmt: skip
    assert notice.compose(unnamed._mapping, sender, Ed25519PrivateKey.generate(),
                          AT)["hashguard_notice"]["issued_by"] == "authority"  # fmt: skip
    routed = stored_notice(engine, issued_by="hotline")
    assert notice.compose(routed._mapping, sender, Ed25519PrivateKey.generate(),
                          AT)["hashguard_notice"]["issued_by"] == "Meldpunt"  # fmt: skip
    english, dutch = halves(notice.email(document, DeliveryPurpose.NOTICE,
                                         to="abuse@files.example", sender=sender))  # fmt: skip
    for text in (english, dutch):
        assert "http://hotline.example:8443/hashguard/hosters" in text
        assert "key:17" not in text and "authority: ATKM desk" in text


def test_what_the_schema_refuses_is_named(engine: Engine) -> None:
    row = stored_notice(engine)
    document = notice.compose(row._mapping, SENDER, Ed25519PrivateKey.generate(), AT)
    without = {k: v for k, v in document.items() if k != "classification"}
    with pytest.raises(notice.NoticeInvalid, match="'classification' is a required property"):
        notice.validate(without)
    with pytest.raises(notice.NoticeInvalid, match=r"report_id: 'case-1' is not a 'uuid'"):
        notice.validate({**document, "report_id": "case-1"})
    with pytest.raises(notice.NoticeInvalid, match=r"classification: 'C' is not one of"):
        notice.validate({**document, "classification": "C"})
    broken = notice.Sender("Meldpunt", "not an address", "hotline.example", "NL")
    with pytest.raises(notice.NoticeInvalid, match=r"reporter\.contact"):
        notice.compose(row._mapping, broken, Ed25519PrivateKey.generate(), AT)
    with pytest.raises(notice.NoticeInvalid, match="deadline_at"):
        notice.compose({**row._mapping, "deadline_at": None}, SENDER,
                       Ed25519PrivateKey.generate(), AT)  # fmt: skip


def halves(message: EmailMessage) -> tuple[str, str]:
    body = message.get_body(("plain",))
    assert body is not None
    english, dutch = body.get_content().split("(Nederlands)")
    return english, dutch


def test_the_email_says_the_same_facts_in_english_then_dutch_and_attaches_the_notice(
    engine: Engine,
) -> None:
    key = Ed25519PrivateKey.generate()
    row = stored_notice(engine)
    document = notice.compose(row._mapping, SENDER, key, AT)
    sent = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                        sender=SENDER)  # fmt: skip
    message = message_from_string(sent.as_string(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "abuse@files.example"
    assert message["From"] == "Meldpunt <notices@hotline.example>"
    assert message["Subject"] == ("Notice: child sexual abuse material on your network "
                                  "[case-1], deadline 2025-03-02 12:00 UTC")  # fmt: skip
    english, dutch = halves(message)
    assert "Please remove it" in english and "Verwijder het" in dutch
    for half in (english, dutch):
        for fact in [*row.urls, *row.items[0]["hashes"].values(), row.report_id,
                     "2025-03-02 12:00 UTC", "https://hotline.example/hosters",
                     f"https://hotline.example/v1/takedown/notices/{row.id}", "A1"]:  # fmt: skip
            assert fact in half
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "notice.json"
    assert attachment.get_content_type() == "application/json"
    attached = json.loads(attachment.get_content())
    assert attached == document and signing.verify(attached) == keys.public_hex(key)


def test_renotices_escalations_and_cdn_notices_say_what_they_are(engine: Engine) -> None:
    document = notice.compose(stored_notice(engine)._mapping, SENDER,
                              Ed25519PrivateKey.generate(), AT)  # fmt: skip
    evidence = {"checked_at": "2025-03-02 12:01 UTC", "status": 200, "outcome": "present"}
    renotice = notice.email(document, DeliveryPurpose.RENOTICE, to="abuse@files.example",
                            sender=SENDER, renotice=2, evidence=evidence)  # fmt: skip
    assert renotice["Subject"].startswith("Re-notice 2: ")
    english, dutch = halves(renotice)
    assert "re-notice number 2" in english and "herhaalde melding nummer 2" in dutch
    assert "outcome: present" in english and "outcome: present" in dutch
    escalation = notice.email(document, DeliveryPurpose.ESCALATION, to="noc@upstream.example",
                              sender=SENDER, step="upstream")  # fmt: skip
    assert escalation["Subject"].startswith("Escalation (upstream): ")
    cdn = notice.compose(stored_notice(engine, kind="cdn", cdn=True)._mapping, SENDER,
                         Ed25519PrivateKey.generate(), AT)  # fmt: skip
    english, dutch = halves(notice.email(cdn, DeliveryPurpose.NOTICE, to="abuse@cdn.example",
                                         sender=SENDER))  # fmt: skip
    assert "IP address of the origin server" in english and "IP-adres" in dutch


def test_the_api_body_carries_the_signed_notice(engine: Engine) -> None:
    document = notice.compose(stored_notice(engine)._mapping, SENDER,
                              Ed25519PrivateKey.generate(), AT)  # fmt: skip
    body = notice.api_body(document, DeliveryPurpose.ESCALATION, step="registrar",
                           evidence={"status": 200})  # fmt: skip
    body = json.loads(json.dumps(body))
    assert body["purpose"] == "escalation" and body["step"] == "registrar"
    assert body["report_id"] == document["report_id"] and body["evidence"] == {"status": 200}
    assert signing.verify(body["notice"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"ticket": "T-1", "origin": "203.0.113.7"}', notice.Reply("T-1", "203.0.113.7", None)),
        ('{"id": 42}', notice.Reply("42", None, None)),
        ('{"origin": "2001:DB8::1"}', notice.Reply(None, "2001:db8::1", None)),
        ("", notice.Reply()),
        ("<html>502 Bad Gateway</html>", notice.Reply(error="the answer is not JSON")),
        ("[1, 2]", notice.Reply(error="expected a JSON object, got list")),
        ('{"origin": "origin.example"}',
         notice.Reply(error="origin: expected an IP address, got 'origin.example'")),
        ('{"origin": 7, "ticket": ["x"]}',
         notice.Reply(error="ticket: expected a string; origin: expected an IP address, got '7'")),
        ('{"error": "unknown notice"}', notice.Reply(error="the API says: unknown notice")),
    ],
)  # fmt: skip
def test_api_replies_are_read_and_junk_is_an_error_not_a_crash(
    text: str, expected: notice.Reply
) -> None:
    reply = notice.parse_reply(text)
    assert (reply.ticket, reply.origin) == (expected.ticket, expected.origin)
    if expected.error is None:
        assert reply.error is None
    else:
        assert reply.error is not None and reply.error.startswith(expected.error)


@given(st.one_of(st.text(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.sampled_from(["ticket", "id", "origin",
                                                                     "error", "x"]), inner),
).map(json.dumps)))  # fmt: skip
def test_any_reply_text_gives_a_reply(text: str) -> None:
    reply: Any = notice.parse_reply(text)
    assert isinstance(reply, notice.Reply)
    assert reply.origin is None or ":" in reply.origin or "." in reply.origin
