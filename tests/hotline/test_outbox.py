"""The hotline's outbox against a real HTTP server on loopback: JSON with the partner's key as a
Bearer token and an idempotency key the same on every retry; failures kept with their reason
and retried after a backoff; a key file that cannot be read is a reason too (the partners
and endpoints of hotline.partners)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from hashguard.hotline import outbox
from hashguard.hotline.model import OutboxKind
from hashguard.hotline.partners import Endpoint, Partner

from support.hotline_items import new_case
from support.loopback import Loopback


def test_a_referral_is_retried_with_the_same_idempotency_key_until_delivered(
    engine: Engine, tmp_path: Path
) -> None:
    answers = [503, 202]
    partner_site = Loopback(lambda path, headers, body: (answers.pop(0), "application/json", b"{}"))
    key_file = tmp_path / "partner.key"
    key_file.write_text("hg_7_partnersecret\n")
    key_file.chmod(0o600)
    partner = Partner("hotline-de", ("DE",), partner_site.url + "/", key_file)
    case = new_case(engine, "https://site-a.test/page")
    with engine.begin() as connection:
        key = outbox.enqueue(connection, case, OutboxKind.REFERRAL, "hotline-de",
                             {"url": "https://site-a.test/page", "items": []})  # fmt: skip
    destinations = {("referral", "hotline-de"): partner}
    now = datetime.now(UTC)
    try:
        assert outbox.deliver_due(engine, lambda kind, target: destinations.get((kind, target)),
                                  now) == 0  # fmt: skip
        [waiting] = outbox.messages(engine, case)
        assert waiting.attempts == 1 and waiting.delivered_at is None
        assert waiting.last_error == "HTTP 503 Service Unavailable"
        assert outbox.deliver_due(engine, destinations.get, now) == 0  # not due yet: backoff
        later = now + timedelta(seconds=3)
        assert outbox.deliver_due(engine, lambda kind, target: destinations.get((kind, target)),
                                  later) == 1  # fmt: skip
    finally:
        partner_site.close()
    [(path, first, body), (_, second, _)] = partner_site.requests
    assert path == "/v1/hotline/referrals"
    assert first["Idempotency-Key"] == second["Idempotency-Key"] == key
    assert first["Authorization"] == "Bearer hg_7_partnersecret"
    assert json.loads(body) == {"url": "https://site-a.test/page", "items": []}
    [sent] = outbox.messages(engine, case)
    assert sent.delivered_at is not None and sent.attempts == 2 and sent.last_error == ""


def test_an_endpoint_missing_or_unreachable_is_a_recorded_reason(
    engine: Engine, tmp_path: Path
) -> None:
    case = new_case(engine, "https://site-a.test/page")
    with engine.begin() as connection:
        outbox.enqueue(connection, case, OutboxKind.POLICE, "police", {"url": "x"})
        outbox.enqueue(connection, case, OutboxKind.INTERNATIONAL, "inhope", {"url": "y"})
        outbox.enqueue(connection, case, OutboxKind.REFERRAL, "hotline-be", {"url": "z"})
    gone = Loopback(lambda path, headers, body: (200, "text/plain", b""))
    gone.close()  # nothing listens on its port now
    destinations = {
        "police": Endpoint("Police", gone.url + "/reports", tmp_path / "absent.key"),
        "inhope": Endpoint("INHOPE", gone.url + "/reports", None),
    }
    assert outbox.deliver_due(engine, lambda kind, target: destinations.get(target)) == 0
    reasons = [m.last_error for m in outbox.messages(engine, case)]
    assert reasons[0].endswith("absent.key: cannot read the key file: No such file or directory")
    assert reasons[1].startswith("connection refused by 127.0.0.1:")
    assert reasons[2] == "no referral endpoint is configured for hotline-be"
