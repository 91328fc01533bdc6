"""Detections and what people decide about them, as plain values."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from hashguard import errors
from hashguard.errors import Conflict, Forbidden


class State(StrEnum):
    """pending -> in review -> confirmed | false positive; confirmed -> reported -> closed.
    A complaint upheld turns a confirmed (or reported, or closed) detection into a false
    positive: everything done is undone."""

    PENDING = "pending"
    IN_REVIEW = "in_review"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"
    REPORTED = "reported"
    CLOSED = "closed"


OPEN: Final = frozenset({State.PENDING, State.IN_REVIEW})
CONFIRMED_STATES: Final = frozenset({State.CONFIRMED, State.REPORTED, State.CLOSED})


class Source(StrEnum):
    MATCH = "match"  # an upload check matched a list entry
    FLAG = "flag"  # a user flagged the item
    CLASSIFIER = "classifier"  # a classifier of unknown material flagged it


class Decision(StrEnum):
    CONFIRM = "confirm"
    FALSE_POSITIVE = "false_positive"


class ActionKind(StrEnum):
    QUARANTINE = "quarantine"  # reversible hold: the only action before a human confirms
    REMOVE = "remove"
    DISABLE = "disable"
    SUSPEND = "suspend"  # the uploader's account


PERMANENT: Final = frozenset({ActionKind.REMOVE, ActionKind.DISABLE, ActionKind.SUSPEND})


class ReviewError(Conflict):
    """A review step that cannot be taken; the message says why (and what would allow it)."""


class ScanningForbidden(ReviewError, Forbidden):
    """A service's uploads may not be checked at all (end-to-end encrypted, and its legal
    profile forbids scanning it)."""


class NotFound(ReviewError, errors.NotFound):
    """No such detection, action or notice (or it was purged)."""


@dataclass(frozen=True)
class Detection:
    id: int
    service: str
    content_ref: str
    account_ref: str
    source: Source
    technology: str  # the signal (pdq, md5...), "classifier:NAME" or "flag"
    list_name: str  # "" for flags and classifiers
    entry_id: int | None
    distance: float | None
    exact: bool
    evidence: list[dict[str, Any]]  # every match: list, entry, signal, distance, labels
    subject: dict[str, Any]  # the uploader as the service described them (for reports)
    state: State
    detected_at: datetime
    decided_at: datetime | None
    decision_reason: str
    quarantined: bool
    purpose: str
    retain_until: datetime
    held_until: datetime | None
    hold_reason: str

    @property
    def labels(self) -> list[str]:
        return sorted({label for match in self.evidence for label in match.get("labels", [])})


@dataclass(frozen=True)
class Vote:
    reviewer: str
    decision: Decision
    reason: str
    at: datetime


@dataclass(frozen=True)
class Action:
    id: int
    detection_id: int
    kind: ActionKind
    reason: str
    actor: str
    taken_at: datetime
    reversed_at: datetime | None
    reversal_reason: str
