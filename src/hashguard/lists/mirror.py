"""A list kept an exact mirror of a list elsewhere, by replaying that list's change feed.

The mirror's version is where it stands in the origin's log: each change is replayed as it was
made (adds, relabels, contests, delistings, reinstatements, deletions, withdrawals, with their
labels, sources and reasons), so the mirror's version after a page equals the origin's last
change in it. A mirror that has changes of its own, or that misses some, is refused with a
message that says so.
Where the feed comes from (an HTTP client, hashguard.exchanges) is the caller's business.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from hashguard.errors import Conflict
from hashguard.lists.model import Category, Change, HashList, ListPolicy
from hashguard.lists.records import Record


class MirrorError(Conflict):
    """The origin cannot be followed, or the mirror is not one; the message says why."""


@dataclass(frozen=True, slots=True)
class ListAbout:
    """A list as its origin describes it: what a mirror is created like."""

    owner: str
    category: Category
    jurisdictions: tuple[str, ...]
    legal_basis: str
    policy: ListPolicy


class ChangeFeed(Protocol):
    """A list's change log at its origin. Its methods raise MirrorError when it cannot be read."""

    name: str  # the list's name at the origin
    origin: str  # where the feed comes from, for messages and the mirror's log

    def about(self) -> ListAbout:
        """The origin list's description, checked."""
        ...

    def page(self, since: int) -> tuple[int, list[Change]]:
        """The origin's version and its changes after ``since`` (at most a page)."""
        ...


class Applied(Protocol):
    @property
    def version(self) -> int: ...


class MirrorTarget(Protocol):
    """The local list store, as far as mirroring uses it (hashguard.store.lists.ListStore)."""

    def get(self, name: str) -> HashList: ...

    def apply(self, name: str, records: Iterable[Record], actor: str = "") -> Applied: ...


def catch_up(target: MirrorTarget, local: str, feed: ChangeFeed) -> tuple[int, int]:
    """Replay the origin's changes after the mirror's version; (changes applied, version).
    Raises MirrorError when the local list is not a mirror of the origin's, or the feed skips."""
    applied = 0
    while True:
        since = target.get(local).version
        origin_version, changes = feed.page(since)
        if origin_version < since:
            raise MirrorError(
                f"{local} is at version {since}, beyond {feed.name}'s {origin_version}: it is not "
                "a mirror of that list (or has changes of its own)"
            )
        if not changes:
            return applied, since
        if changes[0].version != since + 1:
            raise MirrorError(f"the feed skipped from version {since} to {changes[0].version}")
        summary = target.apply(local, changes, f"follow {feed.origin}/{feed.name}")
        if summary.version != changes[-1].version:
            raise MirrorError(
                f"{local} reached version {summary.version}, the origin {changes[-1].version}: it "
                "has changes of its own, so it cannot mirror the origin"
            )
        applied += len(changes)
