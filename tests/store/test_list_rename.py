"""Renaming a list carries everything that names it, on SQLite and PostgreSQL: its open
detections keep their four-eyes policy and stay in its reviewers' queue, its victims' cases
withdraw and read their receipts and partners' outcomes, the match log, the hotline's
assessments and triage and API key scopes follow; a removed list's rows of the same name stay.
All lists and hashes are benign test values."""

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from hashguard.lists.model import Category, EntryStatus, ListPolicy
from hashguard.lists.records import Submission
from hashguard.review.detections import Evidence, Review
from hashguard.review.model import Decision, State
from hashguard.review.services import ServiceStore
from hashguard.store import audit
from hashguard.store.acknowledgements import Acknowledgements
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.store.match_log import LoggedMatch, MatchLog
from hashguard.store.tables import (
    HotlineAssessmentRow,
    HotlineCaseRow,
    HotlineItemRow,
    MatchRow,
)
from hashguard.victims.cases import Cases, CaseSettings
from hashguard.victims.feedback import ReviewFeedback
from hashguard.victims.model import HashState, Outcome

PDQ = "f0" * 32
PDQ_2 = "0f" * 32


def _detect(review: Review, lists: ListStore, name: str, value: str, ref: str) -> int:
    services = ServiceStore(review.engine)
    found = [s for s in services.all() if s.name == "photos"]
    service = found[0] if found else services.create("photos")
    entry = lists.entry(name, "pdq", value)
    evidence = [Evidence(name, entry.id, "pdq", 4, (), entry.value)]
    return review.open(service, ref, evidence, account_ref="a", subject={}).id


def test_a_renamed_four_eyes_list_keeps_four_eyes_and_its_reviewers_queue(engine: Engine) -> None:
    lists = ListStore(engine)
    lists.create("CAREFUL", "Hotline", Category.KNOWN_CSAM, ["NL"],
                 policy=ListPolicy(four_eyes=True))  # fmt: skip
    lists.apply("CAREFUL", [Submission("pdq", PDQ)])
    review = Review(engine, lists)
    ident = _detect(review, lists, "CAREFUL", PDQ, "upload-1")
    _, token = ApiKeyStore(engine).create(Role.REVIEWER, ["CAREFUL"], name="its reviewer")

    lists.rename("CAREFUL", "CAREFUL_RENAMED", "curator")

    detection = review.get(ident)
    assert detection.list_name == "CAREFUL_RENAMED"
    assert [m["list"] for m in detection.evidence] == ["CAREFUL_RENAMED"]
    assert review.four_eyes(detection)
    first = review.decide(ident, "reviewer-1", Decision.CONFIRM, "one reviewer alone")
    assert first.state is State.IN_REVIEW
    assert [d.id for d in review.queue(["CAREFUL_RENAMED"])] == [ident]
    key = ApiKeyStore(engine).authenticate(token)
    assert key is not None and key.lists == ("CAREFUL_RENAMED",)
    event = audit.events(engine, action="list.rename")[-1]
    carried = json.loads(event.details)["carried"]
    assert carried == {"detections": 1, "detections.evidence": 1, "api_keys": 1}


def test_a_detection_on_a_list_that_cannot_be_found_needs_four_eyes(engine: Engine) -> None:
    lists = ListStore(engine)
    lists.create("GONE", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("GONE", [Submission("pdq", PDQ)])
    review = Review(engine, lists)
    ident = _detect(review, lists, "GONE", PDQ, "upload-1")
    assert not review.four_eyes(review.get(ident))
    lists.remove("GONE", "curator")
    assert review.four_eyes(review.get(ident))  # fails closed
    assert review.decide(ident, "r-1", Decision.CONFIRM, "alone").state is State.IN_REVIEW


def test_a_renamed_victim_list_keeps_its_cases_receipts_and_outcomes(engine: Engine) -> None:
    lists = ListStore(engine)
    settings = CaseSettings(adult_list="victims-ncii", pin_failures=3, address_failures=6,
                            lockout=timedelta(minutes=5))  # fmt: skip
    cases = Cases(engine, lists, settings)
    opened = cases.open([{"signal": "pdq", "value": PDQ, "quality": 90}], False, "en")
    version = lists.get("victims-ncii").version
    Acknowledgements(engine).record("victims-ncii", "partner-1", version)
    review = Review(engine, lists, observers=[ReviewFeedback()])
    _detect(review, lists, "victims-ncii", PDQ, "upload-1")
    entry = lists.entry("victims-ncii", "pdq", PDQ)
    MatchLog(engine).record([LoggedMatch("key-1", "victims-ncii", entry.id, "pdq", 2.0)])

    lists.rename("victims-ncii", "victims-adults", "operator")

    status = cases.status(opened.case, opened.pin)
    assert status.partners == {"photos": {o: int(o is Outcome.PENDING_REVIEW) for o in Outcome}}
    withdrawn = cases.withdraw(opened.case, opened.pin)
    assert [h.state for h in withdrawn.hashes] == [HashState.WITHDRAWN]
    assert lists.entry("victims-adults", "pdq", PDQ).status is EntryStatus.DELETED
    assert Acknowledgements(engine).receipts("victims-adults")[0].version == version
    with engine.connect() as connection:
        assert connection.scalars(select(MatchRow.list)).all() == ["victims-adults"]


def test_the_hotline_s_assessments_and_triage_follow_the_new_name(engine: Engine) -> None:
    lists = ListStore(engine)
    lists.create("hotline-illegal", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("hotline-illegal", [Submission("pdq", PDQ)])
    entry = lists.entry("hotline-illegal", "pdq", PDQ)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        case = connection.execute(insert(HotlineCaseRow).values(
            url="http://example.org/a", url_key="0" * 64, host="example.org", state="assessed",
            created_at=now, updated_at=now, attempts=0, lease_until=None, last_error="",
        )).inserted_primary_key[0]  # fmt: skip
        triage = {"list": "hotline-illegal", "entry": entry.id, "signal": "pdq"}
        item = connection.execute(insert(HotlineItemRow).values(
            case_id=case, fetch_id=None, url="http://example.org/a.jpg", kind="image",
            hashes={"pdq": PDQ}, quality=90, state="triaged", assessment_id=None, labels={},
            legality={}, triage=triage, created_at=now, decided_at=None,
        )).inserted_primary_key[0]  # fmt: skip
        connection.execute(insert(HotlineAssessmentRow).values(
            item_id=item, labels={}, legality={}, state="final", first_by="a", first_at=now,
            second_by=None, second_at=None, list_name="hotline-illegal",
        ))  # fmt: skip

    lists.rename("hotline-illegal", "illegal", "operator")

    with engine.connect() as connection:
        assert connection.scalar(select(HotlineItemRow.triage)) == {**triage, "list": "illegal"}
        assert connection.scalar(select(HotlineAssessmentRow.list_name)) == "illegal"


def test_a_removed_list_s_rows_of_the_same_name_stay_under_it(engine: Engine) -> None:
    lists = ListStore(engine)
    review = Review(engine, lists)
    lists.create("SHARED", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("SHARED", [Submission("pdq", PDQ)])
    old = _detect(review, lists, "SHARED", PDQ, "upload-1")
    lists.remove("SHARED", "curator")
    lists.create("SHARED", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("SHARED", [Submission("pdq", PDQ_2)])
    new = _detect(review, lists, "SHARED", PDQ_2, "upload-2")

    lists.rename("SHARED", "SHARED_NOW", "curator")

    assert review.get(old).list_name == "SHARED"
    assert [m["list"] for m in review.get(old).evidence] == ["SHARED"]
    assert review.get(new).list_name == "SHARED_NOW"


def test_a_removed_list_s_keys_never_reach_a_list_later_given_its_name(engine: Engine) -> None:
    lists, keys = ListStore(engine), ApiKeyStore(engine)
    lists.create("GONE", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.create("KEPT", "Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.create("OTHER", "Hotline", Category.KNOWN_CSAM, ["NL"])
    _, alone = keys.create(Role.CURATOR, ["GONE"], name="only the removed list")
    _, both = keys.create(Role.CURATOR, ["GONE", "KEPT"], name="the removed list and another")

    lists.remove("GONE", "curator")
    lists.create("GONE", "Someone else", Category.KNOWN_CSAM, ["DE"])
    lists.rename("GONE", "GONE_NOW", "curator")
    lists.rename("OTHER", "GONE", "curator")

    only, two = keys.authenticate(alone), keys.authenticate(both)
    assert only is not None and two is not None
    assert only.lists == ("GONE (removed)",)  # still limited: to nothing
    assert not any(only.may_use(name) for name in ("GONE", "GONE_NOW", "OTHER", "KEPT"))
    assert two.lists == ("GONE (removed)", "KEPT")
    assert two.may_use("KEPT") and not two.may_use("GONE")
    removal = audit.events(engine, action="list.remove")[-1]
    assert json.loads(removal.details)["keys"] == 2
