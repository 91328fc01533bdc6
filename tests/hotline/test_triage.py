"""Triage without re-exposure, on SQLite and PostgreSQL: an image assessed before, reported again
(the same file, or a re-encoded copy: a PDQ near match), is decided with that assessment's
labels and nobody viewing it; a known list's entry decides an item too; anything else is queued
for an analyst. Every image is generated here."""

import pytest
from sqlalchemy import Engine

from hashguard.hotline.assessment import Assessments
from hashguard.hotline.model import ItemState
from hashguard.hotline.triage import NOT_ILLEGAL_NEAR, CurrentMatcher, Triage, labels_of
from hashguard.hotline.vocabulary import default
from hashguard.lists.model import Category, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.store.lists import ListStore

from support.hotline_items import (
    BASELINE,
    NOT_ILLEGAL,
    events,
    hashes_of,
    item,
    new_case,
    queued_item,
)
from support.media import jpeg

HOTLINE_LISTS = ("hotline-illegal", "hotline-not-illegal")


@pytest.fixture
def lists(engine: Engine) -> ListStore:
    return ListStore(engine)


def triage_of(lists: ListStore, known: tuple[str, ...] = ()) -> Triage:
    return Triage(lists, CurrentMatcher(lists, (*HOTLINE_LISTS, *known)), known_lists=known,
                  legality=default().legality)  # fmt: skip


def test_an_image_assessed_before_is_triaged_without_anyone_viewing_it(
    engine: Engine, lists: ListStore
) -> None:
    triage = triage_of(lists)
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    first_case = new_case(engine, "https://site-a.test/page")
    original = jpeg(7)
    first = queued_item(engine, first_case, "https://site-a.test/a.jpg", hashes_of(original))
    assessment = desk.assess(first, BASELINE, "ana")

    exact = triage.decide(hashes_of(original))
    near_hashes = hashes_of(jpeg(7, quality=35))  # re-encoded: other digests, a near PDQ
    assert near_hashes["sha256"] != hashes_of(original)["sha256"]
    near = triage.decide(near_hashes)
    for verdict in (exact, near):
        assert verdict.state is ItemState.AUTO
        assert verdict.assessment_id == assessment.id
        assert verdict.labels == BASELINE
        assert set(verdict.legality.values()) == {"illegal"} and "NL" in verdict.legality
        assert verdict.triage["list"] == "hotline-illegal"
        assert verdict.triage["assessment"] == assessment.id
    assert exact.triage["distance"] == 0
    assert near.triage["signal"] == "pdq" and 0 < near.triage["distance"] <= 31

    second_case = new_case(engine, "https://site-b.test/other")
    again = queued_item(engine, second_case, "https://site-b.test/b.jpg", near_hashes)
    assert triage.queued() == [again]
    stored = item(engine, again)
    assert stored.state == "auto" and stored.assessment_id == assessment.id
    assert stored.labels == BASELINE and stored.decided_at is not None
    [event] = [e for e in events(engine, "hotline.triaged") if e.subject == f"item:{again}"]
    assert '"viewed":false' in event.details and '"assessment":' in event.details
    assert not events(engine, "hotline.item.viewed")  # nobody was shown it


def test_an_image_assessed_not_illegal_is_triaged_as_not_illegal(
    engine: Engine, lists: ListStore
) -> None:
    triage = triage_of(lists)
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    case = new_case(engine, "https://site-a.test/page")
    picture = hashes_of(jpeg(8))
    desk.assess(queued_item(engine, case, "https://site-a.test/a.jpg", picture), NOT_ILLEGAL, "ana")
    verdict = triage.decide(picture)
    assert verdict.state is ItemState.AUTO and verdict.triage["list"] == "hotline-not-illegal"
    assert set(verdict.legality.values()) == {"not-illegal"}


def flipped(pdq: str, bits: int) -> str:
    """``pdq`` with its first ``bits`` bits flipped (a copy that far off)."""
    value = int(pdq, 16) ^ (((1 << bits) - 1) << (256 - bits))
    return f"{value:064x}"


def test_only_a_close_copy_of_an_image_assessed_not_illegal_is_decided(
    engine: Engine, lists: ListStore
) -> None:
    """Within NOT_ILLEGAL_NEAR bits (re-encodings, resizes) a copy takes the not-illegal
    assessment; farther, though within the matching threshold, it waits for an analyst (it may
    be the picture with something added)."""
    triage = triage_of(lists)
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    case = new_case(engine, "https://site-a.test/page")
    picture = hashes_of(jpeg(8))
    desk.assess(queued_item(engine, case, "https://site-a.test/a.jpg", picture), NOT_ILLEGAL, "ana")
    near = hashes_of(jpeg(8, quality=35))  # re-encoded: other digests, a near PDQ
    assert near["pdq"] != picture["pdq"] and near["sha256"] != picture["sha256"]
    assert triage.decide(near).triage["list"] == "hotline-not-illegal"
    close = {"pdq": flipped(picture["pdq"], NOT_ILLEGAL_NEAR)}
    assert triage.decide(close).triage["list"] == "hotline-not-illegal"
    farther = {"pdq": flipped(picture["pdq"], NOT_ILLEGAL_NEAR + 1)}
    assert triage.decide(farther).state is ItemState.QUEUED


def test_a_copy_farther_off_of_an_image_assessed_illegal_is_still_decided(
    engine: Engine, lists: ListStore
) -> None:
    triage = triage_of(lists)
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    case = new_case(engine, "https://site-a.test/page")
    picture = hashes_of(jpeg(8))
    desk.assess(queued_item(engine, case, "https://site-a.test/a.jpg", picture), BASELINE, "ana")
    farther = {"pdq": flipped(picture["pdq"], 28)}
    assert triage.decide(farther).triage["list"] == "hotline-illegal"


def test_a_known_list_decides_an_item_with_its_labels(engine: Engine, lists: ListStore) -> None:
    picture = hashes_of(jpeg(9))
    lists.create("known", "an-ngo", Category.KNOWN_CSAM)
    provenance = Provenance("an-ngo", "", (Source("an-ngo", "NL", "k-1"),))
    lists.apply("known", [Submission("pdq", picture["pdq"],
                                     frozenset(f"{g}:{v}" for g, v in BASELINE.items()),
                                     provenance)])  # fmt: skip
    verdict = triage_of(lists, known=("known",)).decide(picture)
    assert verdict.state is ItemState.AUTO and verdict.assessment_id is None
    assert verdict.labels == BASELINE
    assert verdict.legality["GB"] == "illegal"
    assert verdict.triage["list"] == "known" and "assessment" not in verdict.triage


def test_a_known_list_in_its_own_words_counts_as_illegal_at_home(
    engine: Engine, lists: ListStore
) -> None:
    """NCMEC-style labels ("csam", "A1") are not the vocabulary's: the item is illegal at the
    hotline's home (a list of known material), the list's words kept with what matched only."""
    picture, benign = hashes_of(jpeg(11)), hashes_of(jpeg(12))
    lists.create("ncmec", "NCMEC", Category.KNOWN_CSAM)
    provenance = Provenance("NCMEC", "", (Source("NCMEC", "US", "n-1"),))
    lists.apply("ncmec", [
        Submission("pdq", picture["pdq"], frozenset({"csam", "A1"}), provenance),
        Submission("pdq", benign["pdq"], frozenset({f"{g}:{v}" for g, v in NOT_ILLEGAL.items()}),
                   provenance),
    ])  # fmt: skip
    triage = Triage(lists, CurrentMatcher(lists, (*HOTLINE_LISTS, "ncmec")), known_lists=("ncmec",),
                    legality=default().legality, home="nl")  # fmt: skip
    verdict = triage.decide(picture)
    assert verdict.state is ItemState.AUTO and verdict.legality == {"NL": "illegal"}
    assert verdict.labels == {}  # only the vocabulary's labels travel in referrals and reports
    assert verdict.triage["list"] == "ncmec" and verdict.triage["labels"] == ["A1", "csam"]
    # Labels by which the vocabulary finds it illegal nowhere: an analyst decides, not the list.
    assert triage.decide(benign).state is ItemState.QUEUED
    # Without a home to count it in, a known list never decides an item illegal nowhere either.
    homeless = Triage(lists, CurrentMatcher(lists, (*HOTLINE_LISTS, "ncmec")),
                      known_lists=("ncmec",), legality=default().legality)  # fmt: skip
    assert homeless.decide(picture).state is ItemState.QUEUED


def test_unknown_items_are_queued_and_unhashable_ones_failed(
    engine: Engine, lists: ListStore
) -> None:
    triage = triage_of(lists)
    assert triage.decide(hashes_of(jpeg(10))).state is ItemState.QUEUED
    assert triage.decide({}).state is ItemState.FAILED
    assert triage.decide({"pdq": "not a hash"}).state is ItemState.FAILED


def test_a_known_lists_plain_labels_are_kept_together() -> None:
    assert labels_of({"iccam:baseline", "series-x", "flagged"}) == {
        "iccam": "baseline", "label": "flagged, series-x"}  # fmt: skip
