"""Lists as logs: what a reinstatement does to an entry, and how the feed carries it."""

import pytest

from hashguard.lists.model import Change, ChangeKind, EntryStatus, ListPolicy, apply, fold

VALUE = "ab" * 32


def _change(version: int, kind: ChangeKind, reason: str = "") -> Change:
    return Change(1, version, kind, 7, "pdq", VALUE, reason=reason, actor="owner",
                  at="2026-01-02T03:04:05+00:00")  # fmt: skip


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
