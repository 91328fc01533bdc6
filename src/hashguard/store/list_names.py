"""The rows that name a list by its name rather than its id, how a rename carries them, and
what a removal leaves in key scopes.

Detections, the match log, followers' receipts, victim cases and feedback, the hotline's
assessments and triage, and API key scopes keep a list's name (a match's record outlives its
entry, so these are not foreign keys). ``carry`` rewrites them in the rename's transaction, so
that a renamed list keeps its four-eyes policy for its open detections, its reviewers' queue,
its victims' withdrawals and its followers' receipts. Rows that name an entry are carried only
when the entry is the renamed list's: what a removed list of the same name left behind stays
under that name.

Not carried: the audit log and documents already built or sent (provider reports, signed
releases), which are records of what was; settings that name lists (the hotline's and the
victims' lists), which an operator changes (docs/hma-compatibility.md says which); and
exchanges, which fill their list by its id and keep their own name, as HMA's do.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Text, cast, select, update

from hashguard.store.api_keys import tell_watchers
from hashguard.store.tables import (
    ApiKeyRow,
    DetectionRow,
    EntryRow,
    HotlineAssessmentRow,
    HotlineItemRow,
    ListAcknowledgementRow,
    MatchRow,
    VictimCaseRow,
    VictimFeedbackRow,
)


def carry(connection: Connection, list_id: int, old: str, new: str) -> dict[str, int]:
    """Rename ``old`` to ``new`` wherever a row names the list ``list_id`` by name, in the
    caller's transaction; the rows changed per table (for the rename's audit event)."""
    entries = select(EntryRow.id).where(EntryRow.list_id == list_id).scalar_subquery()
    counts: dict[str, int] = {}

    def renamed(table: str, statement: Any) -> None:
        counts[table] = counts.get(table, 0) + int(connection.execute(statement).rowcount or 0)

    renamed("detections", update(DetectionRow)
            .where(DetectionRow.list_name == old)
            .where(DetectionRow.entry_id.is_(None) | DetectionRow.entry_id.in_(entries))
            .values(list_name=new))  # fmt: skip
    renamed("match_log", update(MatchRow)
            .where(MatchRow.list == old, MatchRow.entry_id.in_(entries))
            .values(list=new))  # fmt: skip
    renamed("victim_feedback", update(VictimFeedbackRow)
            .where(VictimFeedbackRow.list_name == old, VictimFeedbackRow.entry_id.in_(entries))
            .values(list_name=new))  # fmt: skip
    for by_name in (ListAcknowledgementRow, VictimCaseRow, HotlineAssessmentRow):
        renamed(by_name.__tablename__, update(by_name).where(by_name.list_name == old)
                .values(list_name=new))  # fmt: skip

    # JSON documents: read those that mention the name, rewrite the matches on this list
    documents: list[tuple[str, Any, Any, Any]] = [
        ("detections.evidence", DetectionRow, DetectionRow.id, DetectionRow.evidence),
        ("hotline_items.triage", HotlineItemRow, HotlineItemRow.id, HotlineItemRow.triage),
    ]
    for label, table, ident_column, column in documents:
        found = connection.execute(
            select(ident_column, column).where(cast(column, Text).contains(old, autoescape=True))
        ).all()
        mentioned = {int(m["entry"]) for _, document in found for m in _matches(document)
                     if m.get("list") == old and m.get("entry") is not None}  # fmt: skip
        mine = set(connection.scalars(
            select(EntryRow.id).where(EntryRow.list_id == list_id,
                                      EntryRow.id.in_(sorted(mentioned)))
        )) if mentioned else set()  # fmt: skip
        for ident, document in found:
            carried = _carried(document, old, new, mine)
            if carried != document:
                renamed(label, update(table).where(ident_column == ident)
                        .values({column: carried}))  # fmt: skip

    for key in connection.execute(select(ApiKeyRow.id, ApiKeyRow.lists)).all():
        if old in (key.lists or ()):
            renamed("api_keys", update(ApiKeyRow).where(ApiKeyRow.id == key.id)
                    .values(lists=_swapped(key.lists, old, new)))  # fmt: skip
    if counts.get("api_keys"):
        tell_watchers(connection)
    return {table: count for table, count in counts.items() if count}


def forget(connection: Connection, name: str) -> int:
    """The list ``name`` was removed: keys limited to it keep it as ``NAME (removed)``, which no
    list can be named (so a list made or renamed later under that name is not theirs, and a
    key limited to it alone stays limited, to nothing); how many keys."""
    gone = removed(name)
    changed = 0
    for key in connection.execute(select(ApiKeyRow.id, ApiKeyRow.lists)).all():
        if name in (key.lists or ()):
            connection.execute(update(ApiKeyRow).where(ApiKeyRow.id == key.id)
                               .values(lists=_swapped(key.lists, name, gone)))  # fmt: skip
            changed += 1
    if changed:
        tell_watchers(connection)
    return changed


def removed(name: str) -> str:
    """How a key's scope names a removed list."""
    return f"{name} (removed)"


def _matches(document: Any) -> list[Mapping[str, Any]]:
    """The matches ``{"list", "entry", ...}`` of a detection's evidence (a list of them) or of
    a hotline item's triage (one)."""
    held = document if isinstance(document, list) else [document]
    return [match for match in held if isinstance(match, Mapping)]


def _carried(document: Any, old: str, new: str, mine: set[int]) -> Any:
    """The document with its matches on the renamed list under the new name (a match whose
    entry is not the list's is a removed list's of the same name, and stays)."""

    def one(match: Any) -> Any:
        if not isinstance(match, Mapping) or match.get("list") != old:
            return match
        entry = match.get("entry")
        if entry is not None and int(entry) not in mine:
            return match
        return {**match, "list": new}

    return [one(match) for match in document] if isinstance(document, list) else one(document)


def _swapped(names: Iterable[str], old: str, new: str) -> list[str]:
    return [new if name == old else name for name in names]
