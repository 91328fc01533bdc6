"""Assessment, on SQLite and PostgreSQL: labels from the vocabulary, legality derived; four eyes
(agreement, disagreement back to the queue for two other analysts, one analyst twice refused);
the list entries' provenance; the queue triaged again at once; a case assessed once its last
item is decided. Every image is generated here."""

from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.errors import Invalid
from hashguard.hotline.assessment import Assessment, AssessmentRefused, Assessments
from hashguard.hotline.model import AssessmentState, CaseState
from hashguard.hotline.triage import CurrentMatcher, Triage
from hashguard.hotline.vocabulary import default
from hashguard.lists.model import Category
from hashguard.store.lists import ListStore

from support.hotline_items import (
    BASELINE,
    NATIONAL,
    NOT_ILLEGAL,
    case_state,
    events,
    hashes_of,
    item,
    new_case,
    queued_item,
)
from support.media import jpeg


def desk_of(engine: Engine, four_eyes: bool, told: list[int] | None = None) -> Assessments:
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    assessed = [].append if told is None else told.append
    return Assessments(engine, lists, triage, default(), home="NL", four_eyes=four_eyes,
                       organisation="meldpunt", assessed=assessed)  # fmt: skip


def test_a_final_assessment_lists_the_hashes_with_their_provenance(engine: Engine) -> None:
    desk = desk_of(engine, four_eyes=False)
    case = new_case(engine, "https://site-a.test/page", CaseState.TRIAGED)
    picture = hashes_of(jpeg(21))
    ident = queued_item(engine, case, "https://site-a.test/a.jpg", picture)
    done = desk.assess(ident, NATIONAL, "ana")
    assert done.state is AssessmentState.FINAL and done.list_name == "hotline-illegal"
    assert done.legality["NL"] == "illegal" and done.legality["GB"] == "not-illegal"
    hash_list = desk.lists.get("hotline-illegal")
    assert hash_list.category is Category.KNOWN_CSAM and hash_list.owner == "meldpunt"
    for signal in ("pdq", "md5", "sha1", "sha256"):
        entry = desk.lists.entry("hotline-illegal", signal, picture[signal])
        assert entry.labels == {f"{group}:{value}" for group, value in NATIONAL.items()}
        assert entry.provenance.submitted_by == "meldpunt"
        assert entry.provenance.assessed_by == "ana"
        [source] = entry.provenance.sources
        assert (source.organisation, source.jurisdiction, source.reference) == (
            "meldpunt", "NL", f"assessment:{done.id}")  # fmt: skip
    stored = item(engine, ident)
    assert stored.state == "assessed" and stored.assessment_id == done.id
    assert stored.labels == NATIONAL
    [event] = [e for e in events(engine, "hotline.assessed") if '"final"' in e.details]
    assert event.actor == "ana" and event.subject == f"item:{ident}"


def test_not_illegal_at_home_goes_to_the_not_illegal_list(engine: Engine) -> None:
    desk = desk_of(engine, four_eyes=False)
    case = new_case(engine, "https://site-a.test/page")
    done = desk.assess(queued_item(engine, case, "https://a.test/a.jpg", hashes_of(jpeg(22))),
                       NOT_ILLEGAL, "ana")  # fmt: skip
    assert done.list_name == "hotline-not-illegal"
    assert desk.lists.get("hotline-not-illegal").category is Category.FALSE_POSITIVES


def test_four_eyes_two_analysts_agreeing_make_it_final(engine: Engine) -> None:
    desk = desk_of(engine, four_eyes=True)
    case = new_case(engine, "https://site-a.test/page")
    ident = queued_item(engine, case, "https://site-a.test/a.jpg", hashes_of(jpeg(23)))
    first = desk.assess(ident, BASELINE, "ana")
    assert first.state is AssessmentState.PENDING and item(engine, ident).state == "pending"
    assert "hotline-illegal" not in {h.name for h in desk.lists.lists()}  # nothing listed yet
    with pytest.raises(AssessmentRefused, match="ana has assessed it already; four eyes"):
        desk.assess(ident, BASELINE, "ana")
    final = desk.assess(ident, BASELINE, "ben")
    assert final.state is AssessmentState.FINAL and final.id == first.id
    assert final.analysts == ("ana", "ben")
    entry = desk.lists.entry("hotline-illegal", "pdq", hashes_of(jpeg(23))["pdq"])
    assert entry.provenance.assessed_by == "ana, ben"
    with pytest.raises(AssessmentRefused, match="is assessed: it is not waiting"):
        desk.assess(ident, BASELINE, "cem")


def test_of_two_second_analysts_at_once_only_the_one_who_made_it_final_is_listed(
    engine: Engine,
) -> None:
    desk = desk_of(engine, four_eyes=True)
    case = new_case(engine, "https://site-a.test/page")
    picture = hashes_of(jpeg(25))
    ident = queued_item(engine, case, "https://site-a.test/a.jpg", picture)
    desk.assess(ident, BASELINE, "ana")
    other: list[Assessment] = []
    raced: list[bool] = []

    class Racing(ListStore):
        """cy gives the same labels while ben's assessment is on its way to the list."""

        def create(self, *args: Any, **kwargs: Any) -> Any:
            if not raced:
                raced.append(True)
                other.append(desk.assess(ident, BASELINE, "cy"))
            return super().create(*args, **kwargs)

    desk.lists = Racing(engine)
    with pytest.raises(AssessmentRefused, match="decided by another analyst meanwhile"):
        desk.assess(ident, BASELINE, "ben")
    assert other[0].state is AssessmentState.FINAL and other[0].analysts == ("ana", "cy")
    entry = desk.lists.entry("hotline-illegal", "pdq", picture["pdq"])
    assert entry.provenance.assessed_by == "ana, cy"
    finals = [e for e in events(engine, "hotline.assessed") if '"final"' in e.details]
    assert [e.actor for e in finals] == ["cy"]


def test_four_eyes_disagreement_sends_the_item_back_for_two_other_analysts(
    engine: Engine,
) -> None:
    desk = desk_of(engine, four_eyes=True)
    case = new_case(engine, "https://site-a.test/page")
    ident = queued_item(engine, case, "https://site-a.test/a.jpg", hashes_of(jpeg(24)))
    desk.assess(ident, BASELINE, "ana")
    disagreed = desk.assess(ident, NOT_ILLEGAL, "ben")
    assert disagreed.state is AssessmentState.DISAGREED
    stored = item(engine, ident)
    assert stored.state == "queued" and stored.assessment_id is None and stored.labels == {}
    for analyst in ("ana", "ben"):
        with pytest.raises(AssessmentRefused, match="disagreed; two other analysts"):
            desk.assess(ident, BASELINE, analyst)
    desk.assess(ident, NOT_ILLEGAL, "cem")
    final = desk.assess(ident, NOT_ILLEGAL, "dee")
    assert final.state is AssessmentState.FINAL and final.analysts == ("cem", "dee")
    assert final.list_name == "hotline-not-illegal"


def test_labels_outside_the_vocabulary_are_refused(engine: Engine) -> None:
    desk = desk_of(engine, four_eyes=False)
    case = new_case(engine, "https://site-a.test/page")
    ident = queued_item(engine, case, "https://site-a.test/a.jpg", hashes_of(jpeg(25)))
    with pytest.raises(Invalid, match="iccam: unknown value 'maybe'"):
        desk.assess(ident, {**BASELINE, "iccam": "maybe"}, "ana")
    assert item(engine, ident).state == "queued"


def test_the_same_image_queued_elsewhere_is_decided_and_its_case_assessed(
    engine: Engine,
) -> None:
    told: list[int] = []
    desk = desk_of(engine, four_eyes=False, told=told)
    first_case = new_case(engine, "https://site-a.test/page", CaseState.TRIAGED)
    other_case = new_case(engine, "https://site-b.test/page", CaseState.TRIAGED)
    picture = hashes_of(jpeg(26))
    first = queued_item(engine, first_case, "https://site-a.test/a.jpg", picture)
    second = queued_item(engine, first_case, "https://site-a.test/b.jpg", hashes_of(jpeg(27)))
    elsewhere = queued_item(engine, other_case, "https://site-b.test/c.jpg",
                            hashes_of(jpeg(26, quality=40)))  # fmt: skip
    done = desk.assess(first, BASELINE, "ana")
    assert done.triaged == (elsewhere,)
    assert item(engine, elsewhere).state == "auto"
    assert case_state(engine, other_case) == "assessed" and told == [other_case]
    assert case_state(engine, first_case) == "triaged"  # one item still waits
    desk.assess(second, NOT_ILLEGAL, "ana")
    assert case_state(engine, first_case) == "assessed" and told == [other_case, first_case]
    with pytest.raises(AssessmentRefused, match="is auto: it is not waiting"):
        desk.assess(elsewhere, BASELINE, "ben")
