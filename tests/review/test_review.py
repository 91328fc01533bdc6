"""Human review before consequences: detections, four eyes, actions, false positives, notices,
complaints, retention, and the webhook that carries actions to the service (a real HTTP server
on loopback). On SQLite and PostgreSQL; all lists and hashes are benign test values."""

import errno
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from hashguard.lists.model import Category, EntryStatus, ListPolicy
from hashguard.lists.records import Submission
from hashguard.redress import notices
from hashguard.redress.complaints import Complaints, Outcome
from hashguard.retention.purge import purge
from hashguard.review import actions, webhook
from hashguard.review.detections import Evidence, Review
from hashguard.review.model import (
    ActionKind,
    Decision,
    NotFound,
    ReviewError,
    ScanningForbidden,
    Source,
    State,
)
from hashguard.review.services import Service, ServiceError, ServiceStore
from hashguard.store import audit
from hashguard.store.counts import counts
from hashguard.store.lists import ListStore
from hashguard.store.match_log import LoggedMatch, MatchLog
from hashguard.store.tables import DetectionRow, MatchRow, WebhookRow

from support.loopback import Loopback

PDQ_A = "f" * 32 + "0" * 32
PDQ_B = "0f" * 32
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def world(engine: Engine) -> "World":
    return World(engine)


class World:
    """A service, two lists of benign test hashes (one with four eyes) and the review."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lists = ListStore(engine)
        self.lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
        self.lists.create("careful", "Test Hotline", Category.KNOWN_CSAM, ["NL"],
                          policy=ListPolicy(four_eyes=True))  # fmt: skip
        self.lists.apply("known", [Submission("pdq", PDQ_A, frozenset({"A1"})),
                                   Submission("md5", MD5)])  # fmt: skip
        self.lists.apply("careful", [Submission("pdq", PDQ_B)])
        self.services = ServiceStore(engine)
        self.service = self.services.create("photos", webhook_url="http://127.0.0.1:9/hook")
        self.review = Review(engine, self.lists)

    def evidence(self, name: str = "known", signal: str = "pdq", value: str = PDQ_A,
                 distance: float = 4) -> Evidence:  # fmt: skip
        entry = self.lists.entry(name, signal, value)
        return Evidence(name, entry.id, signal, distance, tuple(sorted(entry.labels)), entry.value)

    def detect(self, ref: str = "upload-1", service: Service | None = None, **kw) -> int:
        subject = {"ip": "192.0.2.10", "ip_at": "2026-11-01T10:00:00Z"}
        found = self.review.open(service or self.service, ref, [self.evidence(**kw)],
                                 account_ref="account-7", subject=subject)  # fmt: skip
        return found.id

    def calls(self, event: str) -> list[webhook.Call]:
        return [c for c in webhook.calls(self.engine) if c.event == event]


def test_a_match_opens_a_pending_detection_that_is_only_quarantined(world: World) -> None:
    ident = world.detect()
    detection = world.review.get(ident)
    assert detection.state is State.PENDING
    assert detection.quarantined and detection.technology == "pdq" and not detection.exact
    assert detection.labels == ["A1"] and detection.subject["ip"] == "192.0.2.10"
    taken = actions.actions(world.engine, ident)
    assert [a.kind for a in taken] == [ActionKind.QUARANTINE]
    [call] = world.calls("action.taken")
    assert call.payload["kind"] == "quarantine" and call.payload["content_ref"] == "upload-1"
    assert counts(world.engine, datetime.now(UTC).year)["detections"] == {"pdq": 1.0}
    # The same item again: the same detection, no second quarantine.
    assert world.detect() == ident
    assert len(world.calls("action.taken")) == 1


def test_a_false_positive_through_a_variant_tells_the_owner_which(world: World) -> None:
    """The entry matched the upload turned by 180 degrees: the owner, resolving the contest,
    must know the false positive may lie in that variant rather than in the entry."""
    entry = world.lists.entry("known", "pdq", PDQ_A)
    rotated = Evidence("known", entry.id, "pdq", 6, ("A1",), PDQ_A, variant="rotate180")
    ident = world.review.open(world.service, "upload-9", [rotated]).id
    world.review.decide(ident, "reviewer-1", Decision.FALSE_POSITIVE, "a tiled floor")
    [contest] = [c for c in world.lists.changes_since("known", 0) if c.reason]
    assert contest.reason == (
        f"false positive (detection {ident}, matched by the upload's rotate180 variant): "
        "a tiled floor"
    )


@pytest.mark.parametrize("kind", [ActionKind.REMOVE, ActionKind.DISABLE, ActionKind.SUSPEND])
def test_nothing_permanent_before_a_human_confirms(world: World, kind: ActionKind) -> None:
    ident = world.detect()
    for _ in range(2):  # pending, then in review
        with pytest.raises(ReviewError, match="confirmation first"):
            actions.take(world.engine, ident, kind, "reviewer-1", "policy")
        with pytest.raises(ReviewError, match="confirmation first"):
            notices.act(world.engine, ident, kind, "reviewer-1", "policy", "https://x/c")
        world.review.claim(ident, "reviewer-1")
    assert [a.kind for a in actions.actions(world.engine, ident)] == [ActionKind.QUARANTINE]
    assert world.calls("notice") == []
    world.review.decide(ident, "reviewer-1", Decision.CONFIRM, "matches the listed image")
    action = actions.take(world.engine, ident, kind, "reviewer-1", "policy")
    assert action.kind is kind


def test_confirm_then_act_sends_a_statement_of_reasons_in_english_and_dutch(world: World) -> None:
    ident = world.detect()
    world.review.decide(ident, "reviewer-1", Decision.CONFIRM, "same image, slight crop")
    _, notice, token = notices.act(world.engine, ident, ActionKind.REMOVE, "reviewer-1",
                                   "known material", "https://photos.example/complain",
                                   language="en", country="NL")  # fmt: skip
    assert token not in notice.text and notices.REDACTED in notice.text  # stored: no link
    for route in ("Complain to photos", "Autoriteit Persoonsgegevens", "court"):
        assert route in notice.text
    assert "does not say that you made it" in notice.text
    assert "A person at photos reviewed the match" in notice.text
    _, dutch, _ = notices.act(world.engine, ident, ActionKind.SUSPEND, "reviewer-1", "herhaald",
                              "https://photos.example/klacht", language="nl")  # fmt: skip
    assert "Verklaring van redenen" in dutch.text and "rechter" in dutch.text
    sent = world.calls("notice")
    assert [c.payload["language"] for c in sent] == ["en", "nl"]
    assert sent[0].payload["account_ref"] == "account-7"
    link = f"https://photos.example/complain/{token}"  # the user's text, through the service
    assert sent[0].payload["text"] == notice.text.replace(notices.REDACTED, link)
    assert notices.by_token(world.engine, token).id == notice.id
    with pytest.raises(ReviewError, match="statements exist in"):
        notices.act(world.engine, ident, ActionKind.DISABLE, "r", "x", "https://x", "de")


def test_a_false_positive_undoes_everything_at_once(world: World) -> None:
    ident = world.detect()
    world.review.claim(ident, "reviewer-1")
    after = world.review.decide(ident, "reviewer-1", Decision.FALSE_POSITIVE, "a sunset photo")
    assert after.state is State.FALSE_POSITIVE
    assert after.content_ref == f"purged:{ident}" and after.account_ref == ""
    assert after.subject == {} and after.evidence == [] and not after.quarantined
    assert all(a.reversed_at is not None for a in actions.actions(world.engine, ident))
    [reversal] = world.calls("action.reversed")
    assert (
        reversal.payload["kind"] == "quarantine" and reversal.payload["content_ref"] == "upload-1"
    )
    assert world.lists.entry("known", "pdq", PDQ_A).status is EntryStatus.CONTESTED
    year = datetime.now(UTC).year
    assert counts(world.engine, year)["false_positives"] == {"pdq": 1.0}
    events = [e.action for e in audit.events(world.engine, limit=1000)]
    assert "detection.false_positive" in events and "list.contest" in events
    with pytest.raises(ReviewError, match="decided already"):
        world.review.decide(ident, "reviewer-2", Decision.CONFIRM, "second thoughts")


def test_four_eyes_need_two_reviewers_who_agree(world: World) -> None:
    ident = world.detect(name="careful", value=PDQ_B)
    first = world.review.decide(ident, "reviewer-1", Decision.CONFIRM, "listed image")
    assert first.state is State.IN_REVIEW
    with pytest.raises(ReviewError, match="four eyes need another reviewer"):
        world.review.decide(ident, "reviewer-1", Decision.CONFIRM, "again")
    with pytest.raises(ReviewError, match="confirmation first"):
        actions.take(world.engine, ident, ActionKind.REMOVE, "reviewer-1", "policy")
    disagree = world.review.decide(ident, "reviewer-2", Decision.FALSE_POSITIVE, "not it")
    assert disagree.state is State.IN_REVIEW
    settled = world.review.decide(ident, "reviewer-3", Decision.CONFIRM, "it is the image")
    assert settled.state is State.CONFIRMED
    assert [v.reviewer for v in world.review.votes(ident)] == [
        "reviewer-1", "reviewer-2", "reviewer-3"]  # fmt: skip


def test_exact_matches_skip_review_only_where_the_profile_says_so(world: World) -> None:
    md5 = {"signal": "md5", "value": MD5, "distance": 0}
    default = world.review.get(world.detect("exact-1", **md5))
    assert default.exact and default.state is State.PENDING
    interim = world.services.create("legacy", legal_profile="interim-2021-1232")
    skipped = world.review.get(world.detect("exact-2", service=interim, **md5))
    assert skipped.state is State.CONFIRMED
    near = world.review.get(world.detect("near-1", service=interim))
    assert near.state is State.PENDING  # a perceptual match always needs a person


def test_profiles_refuse_encrypted_services_and_classifiers_where_known_only(
    world: World,
) -> None:
    sealed = world.services.create("chat", e2ee=True)
    with pytest.raises(ScanningForbidden, match="end-to-end encrypted"):
        world.detect("m-1", service=sealed)
    with pytest.raises(ScanningForbidden, match="service chat is end-to-end encrypted"):
        world.review.admit(sealed)  # what the service asks before it matches anything
    world.review.admit(world.service)
    with pytest.raises(ReviewError, match="known material only"):
        world.review.open(world.service, "m-2", [], source=Source.CLASSIFIER,
                          technology="classifier:demo")  # fmt: skip
    with pytest.raises(ServiceError, match="unknown legal profile"):
        world.services.create("other", legal_profile="anything-goes")


def confirmed_with_notice(world: World, ref: str = "upload-1") -> tuple[int, str]:
    ident = world.detect(ref)
    world.review.decide(ident, "reviewer-1", Decision.CONFIRM, "listed image")
    _, _, token = notices.act(world.engine, ident, ActionKind.REMOVE, "reviewer-1", "known",
                              "https://photos.example/complain")  # fmt: skip
    return ident, token


def test_a_complaint_upheld_by_another_reviewer_reverses_the_decision(world: World) -> None:
    ident, token = confirmed_with_notice(world)
    complaints = Complaints(world.engine, world.review)
    with pytest.raises(NotFound):
        complaints.lodge("not-a-token", "wrong")
    complaint = complaints.lodge(token, "This is my holiday photo.")
    assert complaint.state is Outcome.RECEIVED and complaints.of_token(token) == complaint
    with pytest.raises(ReviewError, match="filed already"):
        complaints.lodge(token, "again")
    with pytest.raises(ReviewError, match="another reviewer decides"):
        complaints.decide(complaint.id, "reviewer-1", upheld=True, reason="I was wrong")
    decided = complaints.decide(complaint.id, "reviewer-2", upheld=True, reason="not a match")
    assert decided.state is Outcome.UPHELD and decided.reviewer == "reviewer-2"
    assert world.review.get(ident).state is State.FALSE_POSITIVE
    reversed_kinds = {c.payload["kind"] for c in world.calls("action.reversed")}
    assert reversed_kinds == {"quarantine", "remove"}
    year = datetime.now(UTC).year
    figures = counts(world.engine, year)
    assert figures["complaints"] == {"received": 1.0, "upheld": 1.0}
    assert decided.decided_at is not None
    took = (decided.decided_at - complaint.lodged_at).total_seconds()
    assert figures["complaint_seconds"] == {"upheld": pytest.approx(took, abs=0.001)}
    assert figures["false_positives"] == {"pdq": 1.0}


def test_complaints_close_after_the_profiles_period_and_can_be_rejected(world: World) -> None:
    ident, token = confirmed_with_notice(world)
    complaints = Complaints(world.engine, world.review)
    late = datetime.now(UTC) + timedelta(days=184)
    with pytest.raises(ReviewError, match="complaint period ended"):
        complaints.lodge(token, "too late", now=late)
    complaint = complaints.lodge(token, "please look again")
    rejected = complaints.decide(complaint.id, "reviewer-2", upheld=False, reason="it matches")
    assert rejected.state is Outcome.REJECTED
    assert world.review.get(ident).state is State.CONFIRMED
    assert [a.reversed_at for a in actions.actions(world.engine, ident)
            if a.kind is ActionKind.REMOVE] == [None]  # fmt: skip


def test_the_purge_deletes_what_is_due_and_logs_it(world: World) -> None:
    due_id = world.detect("old-1")
    held_id = world.detect("old-2")
    fresh_id = world.detect("new-1")
    complained_id, token = confirmed_with_notice(world, "old-3")
    Complaints(world.engine, world.review).lodge(token, "open complaint")
    world.review.hold(held_id, datetime.now(UTC) + timedelta(days=400), "police request 17", "a")
    MatchLog(world.engine).record([LoggedMatch("key1", "known", 1, "pdq", 3.0, "upload-1")])
    table = DetectionRow.__table__
    with world.engine.begin() as connection:
        connection.execute(update(DetectionRow).where(table.c.id != fresh_id)
                           .values(retain_until=datetime.now(UTC)))  # fmt: skip
    first = purge(world.engine, now=datetime.now(UTC) + timedelta(days=1))
    assert first.detections == [due_id] and first.matches == 0 and first.held == 2
    second = purge(world.engine, now=datetime.now(UTC) + timedelta(days=366))
    assert second.detections == [fresh_id] and second.matches == 1 and second.held == 2
    with pytest.raises(NotFound):
        world.review.get(due_id)
    assert world.review.get(held_id).hold_reason == "police request 17"
    assert world.review.get(complained_id).state is State.CONFIRMED
    with world.engine.connect() as connection:
        assert connection.execute(select(MatchRow.__table__)).all() == []
    logged = [e for e in audit.events(world.engine, limit=1000) if e.action == "retention.purge"]
    assert [json.loads(e.details)["detections"] for e in logged] == [[due_id], [fresh_id]]
    assert audit.verify(world.engine) > 0


# --- the webhook: a real receiver on loopback ------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    """A service's webhook endpoint: fails the first two calls, then accepts."""
    failures = [2]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        failures[0] -= 1
        return (500 if failures[0] >= 0 else 204), "text/plain", b""

    made = Loopback(answer)
    yield made
    made.close()


def test_webhook_calls_are_signed_retried_with_backoff_and_idempotent(
    world: World, receiver: Loopback
) -> None:
    service = world.services.create("video", webhook_url=receiver.url + "/hook")
    world.detect("clip-1", service=service)
    secret = bytes(range(32))
    sender = webhook.WebhookSender(world.engine, secret)
    now = datetime.now(UTC)
    assert sender.send_due(now) == 0  # HTTP 500
    [call] = world.calls("action.taken")
    assert call.attempts == 1 and call.delivered_at is None
    assert call.last_error == "HTTP 500 Internal Server Error"
    assert sender.send_due(now) == 0  # not due yet: it waits
    assert len(receiver.requests) == 1
    assert sender.send_due(now + timedelta(seconds=3)) == 0  # second failure
    assert sender.send_due(now + timedelta(seconds=4)) == 0  # waits longer now (4 s)
    assert sender.send_due(now + timedelta(seconds=8)) == 1
    assert [c.delivered_at is not None for c in world.calls("action.taken")] == [True]
    keys = {headers["Idempotency-Key"] for _, headers, _ in receiver.requests}
    assert len(receiver.requests) == 3 and keys == {call.idempotency_key}
    service_secret = webhook.service_secret(secret, "video")
    for _, headers, body in receiver.requests:
        assert webhook.signature_valid(service_secret, headers["X-Hashguard-Signature"], body)
        assert not webhook.signature_valid("another secret", headers["X-Hashguard-Signature"],
                                           body)  # fmt: skip
        assert json.loads(body)["event"] == "action.taken"
    assert sender.send_due(now + timedelta(hours=2)) == 0  # delivered calls are not sent again
    with world.engine.connect() as connection:
        assert connection.execute(select(WebhookRow.__table__.c.attempts)).scalars().all() == [3]


def test_the_server_secret_is_made_once_owner_only_by_servers_starting_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret.key"
    code = ("import sys; from hashguard.review.webhook import load_secret; "
            "print(load_secret(sys.argv[1]).hex())")  # fmt: skip
    starting = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
    answers = [process.communicate(timeout=60) for process in starting]
    assert all(error == "" for _, error in answers), answers
    assert {out.strip() for out, _ in answers} == {path.read_text().strip()}
    assert webhook.load_secret(path).hex() == path.read_text().strip()  # kept, not remade
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # nothing left aside
    path.write_text("not hex\n")
    with pytest.raises(webhook.SecretFileError, match=r"secret\.key: not a hashguard secret"):
        webhook.load_secret(path)
    with pytest.raises(webhook.SecretFileError, match=r"missing/secret\.key: cannot write"):
        webhook.load_secret(tmp_path / "missing" / "secret.key")


def test_the_server_secret_is_made_where_files_cannot_be_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "secret.key"
    made = webhook.load_secret(path)
    assert len(made) == 32 and webhook.load_secret(path) == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


def test_of_two_reviewers_reversing_one_action_at_once_the_second_is_told_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = world.detect()
    [quarantine] = actions.actions(world.engine, ident)
    real = actions.locked

    def meanwhile(connection: Any, detection_id: int) -> Any:
        """The other reviewer's reversal goes in between this one's read and its lock."""
        monkeypatch.setattr(actions, "locked", real)
        actions.reverse(world.engine, quarantine.id, "reviewer-2", "a different picture")
        return real(connection, detection_id)

    monkeypatch.setattr(actions, "locked", meanwhile)
    with pytest.raises(ReviewError, match=f"action {quarantine.id} was reversed already"):
        actions.reverse(world.engine, quarantine.id, "reviewer-1", "not it")
    [undone] = actions.actions(world.engine, ident)
    assert undone.reversal_reason == "a different picture"


def test_a_reversal_never_overtakes_the_action_it_reverses(world: World) -> None:
    failing = [True]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return (503 if failing[0] else 204), "text/plain", b""

    hook = Loopback(answer)
    try:
        service = world.services.create("clips", webhook_url=hook.url + "/hook")
        ident = world.detect("clip-9", service=service)
        sender = webhook.WebhookSender(world.engine, bytes(32))
        now = datetime.now(UTC)
        assert sender.send_due(now) == 0  # the quarantine call fails and waits
        world.review.decide(ident, "reviewer-1", Decision.FALSE_POSITIVE, "not it")
        assert sender.send_due(now + timedelta(hours=1)) == 0  # the reversal waits its turn
        assert [json.loads(b)["event"] for _, _, b in hook.requests] == ["action.taken"] * 2
        failing[0] = False
        assert sender.send_due(now + timedelta(hours=2)) == 1  # the action first...
        assert sender.send_due(now + timedelta(hours=2)) == 1  # ...then its reversal
        events = [json.loads(b)["event"] for _, _, b in hook.requests]
        assert events[-2:] == ["action.taken", "action.reversed"]
    finally:
        hook.close()


def test_after_a_false_positive_no_report_or_complaint_remains(world: World, tmp_path) -> None:
    from hashguard.reports.eu import Circumstances, Provider
    from hashguard.reports.submit import Reports
    from hashguard.transparency import keys as key_files

    ident, token = confirmed_with_notice(world)
    key_files.generate(tmp_path / "k.key")
    reports = Reports(world.engine, world.review)
    signing = key_files.load(tmp_path / "k.key")
    made = reports.make(ident, "eu-centre", Provider("P", "p@example.org", "NL"),
                        Circumstances(removed=True), signing, "r")  # fmt: skip
    assert json.loads(made.document)["incident"]["confirmed_by_human"] is True
    world.review.overturn(ident, "reviewer-2", "a different picture")
    assert reports.of(ident) == []  # never sent, now void
    with pytest.raises(ReviewError, match="reversed already"):
        Complaints(world.engine, world.review).lodge(token, "too late to matter")
    with pytest.raises(ReviewError, match="false positive already"):
        world.review.overturn(ident, "reviewer-2", "again")
    with world.engine.connect() as connection:
        refs = connection.execute(select(MatchRow.__table__.c.content_ref)).scalars().all()
    assert "upload-1" not in refs
