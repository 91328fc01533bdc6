"""Lists as logs: what a reinstatement and a revival do to an entry, and how the feed carries
them."""

import pytest

from hashguard.lists.model import (
    Change,
    ChangeKind,
    EntryStatus,
    ListPolicy,
    Provenance,
    Source,
    apply,
    fold,
)

VALUE = "ab" * 32


def _change(
    version: int, kind: ChangeKind, reason: str = "", provenance: Provenance | None = None
) -> Change:
    return Change(1, version, kind, 7, "pdq", VALUE, provenance=provenance, reason=reason,
                  actor="owner", at="2026-01-02T03:04:05+00:00")  # fmt: skip


@pytest.mark.parametrize("removal", [ChangeKind.CONTEST, ChangeKind.DELIST])
def test_reinstating_a_contested_or_delisted_entry_makes_it_active(removal: ChangeKind) -> None:
    log = [_change(1, ChangeKind.ADD), _change(2, removal, "why"),
           _change(3, ChangeKind.REINSTATE, "reassessed")]  # fmt: skip
    assert fold(log, upto=2)[7].status is not EntryStatus.ACTIVE
    entry = fold(log)[7]
    assert (entry.status, entry.version) == (EntryStatus.ACTIVE, 3)
    assert entry.matchable(ListPolicy())


@pytest.mark.parametrize("before", [[], [ChangeKind.DELETE]])
def test_reinstating_an_active_or_deleted_entry_changes_nothing(before: list[ChangeKind]) -> None:
    log = [_change(1, ChangeKind.ADD)] + [_change(2, kind) for kind in before]
    held = fold(log)[7]
    after = apply(held, _change(len(log) + 1, ChangeKind.REINSTATE, "why not"))
    assert (after.status, after.labels, after.provenance) == (
        held.status, held.labels, held.provenance,
    )  # fmt: skip


def test_the_feed_carries_a_reinstatement_that_is_no_tombstone() -> None:
    change = _change(3, ChangeKind.REINSTATE, "reassessed")
    shown = change.as_json()
    assert shown == {"version": 3, "kind": "reinstate", "tombstone": False, "entry": 7,
                     "signal": "pdq", "value": VALUE, "at": "2026-01-02T03:04:05+00:00",
                     "actor": "owner", "reason": "reassessed"}  # fmt: skip
    assert Change.from_json(shown, list_id=1) == change


A = Provenance("Member A", sources=(Source("Member A", "US", "a-1"),))
B = Provenance("Member B", sources=(Source("Member B", "US", "b-1"),))
C = Provenance("Member C", sources=(Source("Member C", "CA", "c-1"),))


def test_a_revived_entry_is_held_by_the_submission_that_revives_it_alone() -> None:
    log = [_change(1, ChangeKind.ADD, provenance=A), _change(2, ChangeKind.ADD, provenance=C),
           _change(3, ChangeKind.WITHDRAW, provenance=C),
           _change(4, ChangeKind.DELETE, "withdrawn", A),  # A's source kept on record
           _change(5, ChangeKind.ADD, provenance=B)]  # fmt: skip
    assert fold(log, upto=4)[7].provenance.sources == A.sources  # the record of who withdrew
    revived = fold(log)[7]
    assert (revived.status, revived.provenance) == (EntryStatus.ACTIVE, B)
    # B withdraws: nobody holds it any more (A's withdrawal still holds).
    withdrawn = apply(revived, _change(6, ChangeKind.WITHDRAW, provenance=B))
    assert withdrawn.provenance.sources == ()
    # An active entry merges a new source with those it holds.
    merged = apply(revived, _change(6, ChangeKind.ADD, provenance=C))
    assert merged.provenance.sources == B.sources + C.sources


@pytest.fixture
def pdq_floor(monkeypatch: pytest.MonkeyPatch) -> int:
    """PDQ's stability floor, set to 50 whatever the default."""
    from hashguard.signals import registry

    monkeypatch.setattr(registry.get("pdq"), "min_stability", 50)
    return 50


def test_an_entry_measured_below_its_signals_stability_floor_is_not_matched(pdq_floor) -> None:
    def entry(stability: int | None):
        return apply(None, Change(1, 1, ChangeKind.ADD, 7, "pdq", VALUE, stability=stability))

    assert not entry(pdq_floor - 1).matchable(ListPolicy())
    assert entry(pdq_floor).matchable(ListPolicy())
    assert entry(None).matchable(ListPolicy())  # listed as a hash: nothing measured
    md5 = apply(None, Change(1, 1, ChangeKind.ADD, 8, "md5", "ab" * 16, stability=0))
    assert md5.matchable(ListPolicy())  # a signal without a floor


def test_without_a_floor_every_stability_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    from hashguard.signals import registry

    monkeypatch.setattr(registry.get("pdq"), "min_stability", None)
    entry = apply(None, Change(1, 1, ChangeKind.ADD, 7, "pdq", VALUE, stability=0))
    assert entry.matchable(ListPolicy())


def test_the_latest_measured_stability_holds_through_later_changes() -> None:
    log = [Change(1, 1, ChangeKind.ADD, 7, "pdq", VALUE, stability=20),
           Change(1, 2, ChangeKind.ADD, 7, "pdq", VALUE),  # the value again, as a hash
           Change(1, 3, ChangeKind.DELIST, 7, "pdq", VALUE, reason="why"),
           Change(1, 4, ChangeKind.REINSTATE, 7, "pdq", VALUE, reason="back")]  # fmt: skip
    assert fold(log)[7].stability == 20
    log.append(Change(1, 5, ChangeKind.ADD, 7, "pdq", VALUE, stability=85))
    assert fold(log)[7].stability == 85


def test_the_feed_carries_a_stability_when_one_was_measured() -> None:
    add = Change(1, 1, ChangeKind.ADD, 7, "pdq", VALUE, frozenset({"A1"}), Provenance(),
                 actor="owner", at="2026-01-02T03:04:05+00:00", stability=64)  # fmt: skip
    shown = add.as_json()
    assert shown["stability"] == 64
    assert Change.from_json(shown, list_id=1) == add
    assert "stability" not in _change(2, ChangeKind.ADD).as_json()  # listed as a hash
    for bad in (101, -1, "64", 6.4, True):
        with pytest.raises(ValueError, match="stability"):
            Change.from_json({**shown, "stability": bad})
