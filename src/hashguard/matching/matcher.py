"""Matcher: chosen hash lists in the indexes, list policies applied, the change log followed.

The Matcher loads the entries of its lists that can match (active, and sourced as the list's
two-source rule requires) into one index per signal, of the kind the signal declares (a
HammingIndex for PDQ, an ExactIndex per digest, a FrameIndex for vPDQ's videos), keyed by entry
id. It then follows each
list's change log: ``refresh`` applies the changes since the version it has, adding what
became matchable and removing what stopped being matchable (contested, delisted, deleted,
withdrawn), without a rebuild. ``follow`` does so in the background every fraction of a second.

A query matches an entry when within the entry's list threshold (the list's per-signal policy,
else the signal's default). A video (vPDQ) matches a listed video when the share of frames each
finds in the other, counting frames within the list's threshold for the frame signal (PDQ) as
the same, leaves no more than the list's vPDQ threshold unmatched on either side. A query that
matches a *negative* list (known false positives) as it is gets no matches for that signal at
all; one that matches it through a variant loses the matches found through that variant (or
its enlargement) only.

Query variants (a PDQ hash of the image turned, flipped, trimmed or, when small, enlarged:
``signals.pdq_variants``)
match a list only when its policy allows every family the variant's name uses; the distance is
the least over the variants allowed, and the Match names the variant. Each value is matched at
its signal's ``threshold_for`` the list's threshold (stricter for flat and text images), and not
at all when its quality or stability is below the minimum.
"""

import threading
from collections.abc import (
    Callable,
    Collection,
    Container,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from hashguard.collector import collector_paused
from hashguard.errors import NotFound, Unavailable
from hashguard.index import ExactIndex, FrameIndex, HammingIndex
from hashguard.lists.model import (
    Change,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    Source,
    apply,
)
from hashguard.matching.query import Query
from hashguard.signals import IndexKind, registry
from hashguard.signals.base import SignalType
from hashguard.signals.pdq_variants import ORIGINAL, families_of, unscaled

Index = HammingIndex | ExactIndex | FrameIndex

# Changes read and applied at a time per list: what one refresh holds in memory before the index
# takes it, and how far a large import moves the index (and its told version) at each step. The
# service freezes the new entries out of the cyclic collector's walks after each (``taken``):
# until then, a full collection walks them, holding the interpreter lock (50,000: 30-60 ms).
REFRESH_BATCH: Final = 10_000
# How often a refresh tells its ``step`` (changes applied): 25-50 ms of work at 1M entries.
PROGRESS_STEP: Final = 1_000


class ListSource(Protocol):
    """Where lists come from: ``hashguard.store.lists.ListStore``, or another subscriber feed."""

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]: ...

    def changes_since(
        self, name: str, version: int, limit: int | None = None
    ) -> Iterator[Change]: ...


@dataclass(frozen=True, slots=True)
class Match:
    list: str
    entry: int
    labels: frozenset[str]
    signal: str
    distance: float
    value: str  # the listed value (the entry's hash), for display and review
    # Videos (vPDQ): the percentage of the query's frames found in the listed video, and of
    # the listed video's frames found in the query; ``distance`` is 100 minus the lesser.
    shares: tuple[float, float] | None = None
    # The query variant that matched ("original", "rotate90", "trim-lenient", ...).
    variant: str = ORIGINAL
    stability: int | None = None  # the entry's, when it was hashed from media


@dataclass
class _Followed:
    hash_list: HashList
    version: int


class Matcher:
    """Matches hashes against the lists ``names`` of ``source``; thread-safe."""

    def __init__(
        self,
        source: ListSource,
        names: Sequence[str],
        min_quality: int | None = None,
        min_stability: int | None = None,
    ) -> None:
        """``min_quality``, ``min_stability``: values of a known quality or stability below
        it are not matched (default: each signal's own minimum); ``min_stability`` holds for
        the lists' entries as for queries."""
        self.source = source
        self.min_quality = min_quality
        self.min_stability = min_stability
        self._lock = threading.Lock()
        self._indexes: dict[str, Index] = {}  # per signal, made when its first entry comes
        self._entries: dict[int, Entry] = {}
        self._lists: dict[int, _Followed] = {}
        self._videos: dict[int, int] = {}  # per list id, its videos in a FrameIndex
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.last_error: Exception | None = None  # the follower's last failed refresh, if any
        for name in dict.fromkeys(names):
            self._load(name)

    @property
    def lists(self) -> list[HashList]:
        return [followed.hash_list for followed in self._lists.values()]

    def signals(self) -> tuple[str, ...]:
        """The signals of the entries that can match now, in the registry's order."""
        return tuple(name for name, size in self.sizes().items() if size)

    def sizes(self) -> dict[str, int]:
        """The number of matchable entries per listable signal."""
        indexes = self._indexes
        return {
            s.name: len(indexes[s.name]) if s.name in indexes else 0 for s in registry.listable()
        }

    def variant_families(self) -> frozenset[str]:
        """The query variant families some followed list lets match: what media should be
        hashed for (none when every list matches plain hashes only)."""
        return frozenset().union(*(f.hash_list.policy.variants for f in self._followed()))

    def versions(self) -> dict[str, int]:
        """The version of each list the indexes reflect."""
        return {f.hash_list.name: f.version for f in self._lists.values()}

    def applied(self) -> dict[int, int]:
        """The version of each list (by id) the indexes reflect; read without waiting for a
        refresh under way (a replica reports its lag while it applies a large import): a list's
        version moves only once its index holds the changes up to it."""
        return {ident: followed.version for ident, followed in tuple(self._lists.items())}

    # --- following the change log -----------------------------------------------------------

    def refresh(
        self,
        step: Callable[[], None] | None = None,
        taken: Callable[[int], None] | None = None,
    ) -> int:
        """Apply every change appended since the last refresh, REFRESH_BATCH at a time per list
        (each batch read, then taken by the index at once, and its version told: a large
        import moves the index on batch by batch); the number applied. If given, ``step`` is
        called after every PROGRESS_STEP changes of a batch read and every PROGRESS_STEP
        entries reindexed (the service paces a long catch-up with it; it must not raise), and
        ``taken`` with each batch's count once the index holds it; both with the lock held.
        Raises the source's NotFound for a list no longer found under its name (renamed or
        removed), after refreshing the others."""
        applied = 0
        missing: NotFound | None = None
        with self._lock:
            for followed in self._lists.values():
                try:
                    while True:
                        count, more = self._apply_batch(followed, step)
                        applied += count
                        if taken is not None and count:
                            taken(count)
                        if not more:
                            break
                except NotFound as error:  # renamed or removed: the other lists refresh still
                    missing = missing or error
        if missing is not None:  # the owner renames (update_list) or drops it; until then
            raise missing  # it keeps matching as it was
        return applied

    def _apply_batch(
        self, followed: _Followed, step: Callable[[], None] | None = None
    ) -> tuple[int, bool]:
        """Apply the next REFRESH_BATCH changes of one list, calling ``step`` after every
        PROGRESS_STEP; the number applied, and whether more may follow. The caller holds the
        lock."""
        policy = followed.hash_list.policy
        before: dict[int, bool] = {}  # whether each changed entry could match before
        version = followed.version  # told (applied()) once the index holds it
        applied = read = 0
        failed = True
        try:
            for change in self.source.changes_since(
                followed.hash_list.name, followed.version, REFRESH_BATCH
            ):
                read += 1
                if change.list_id != followed.hash_list.id:
                    return applied, False  # removed, and a new list took its name: drop, add
                entry = self._entries.get(change.entry_id)
                if change.entry_id not in before:
                    before[change.entry_id] = entry is not None and entry.matchable(
                        policy, self.min_stability
                    )
                self._entries[change.entry_id] = apply(entry, change)
                version = change.version
                applied += 1
                if step is not None and applied % PROGRESS_STEP == 0:
                    step()
            failed = False
        finally:  # a read that fails halfway: the index still takes what was applied, at once
            self._reindex(policy, before, None if failed else step)
            followed.version = version
        return applied, read >= REFRESH_BATCH

    def follow(self, interval: float = 0.2) -> None:
        """Refresh every ``interval`` seconds in a background thread until ``close``."""
        if self._follower is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                    self.last_error = None
                except Exception as error:  # a locked or lost database: keep trying
                    self.last_error = error

        self._follower = threading.Thread(target=loop, name="hashguard-matcher", daemon=True)
        self._follower.start()

    def close(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join()
            self._follower = None

    # --- copies for other processes ---------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What a copy in another process (a worker pool, a Ray task) needs to match as this
        one does: the lists, their entries and indexes, the minimums. Not the source, the lock
        or the follower thread: a copy matches the lists as they were when it was made, so it
        carries only the entries that can match (``_copied``), each with what a match needs
        (provenance only where a list's policy asks for two sources). The entries travel as
        numpy columns (``EntryColumns``), as the indexes do: pickled with protocol 5 (Ray),
        every array is a buffer of its own, which Ray maps from its object store into each
        worker process of a node without a copy, so a node holds the list once, however many
        workers it runs.
        A copy only matches: it cannot load, follow, update or drop lists."""
        with self._lock:
            state = {k: v for k, v in vars(self).items() if k not in _LIVE}
            state = {k: v.copy() if isinstance(v, dict) else v for k, v in state.items()}
            two_sources = {i for i, f in self._lists.items() if f.hash_list.policy.two_sources}
            copied = (entry for entry in self._entries.values() if self._copied(entry))
            state["_entries"] = EntryColumns(copied, two_sources)
            return state

    def _copied(self, entry: Entry) -> bool:
        """Whether a copy keeps ``entry``: not when it cannot match (a copy does not follow
        the lists, so it never will): not active, or one source in a list that needs two.
        Entries too unstable or degenerate are not in the indexes, so never a candidate of a
        query; the copy keeps them rather than check each (what made copying a list of 1M
        entries take seconds)."""
        followed = self._lists.get(entry.list_id)
        if followed is None or entry.status is not EntryStatus.ACTIVE:
            return False
        return not followed.hash_list.policy.two_sources or entry.matchable(
            followed.hash_list.policy, self.min_stability
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self.source = _Copied()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._follower = None
        self.last_error = None

    # --- matching ---------------------------------------------------------------------------

    def match(self, query: Query, lists: Collection[str] | None = None) -> list[Match]:
        """The matches of one item's hashes, closest first.

        A value with variants (a PDQ hash with its rotations, flips and trimmed crops) matches
        a list when any of those its policy allows does. Values of a known quality or
        stability below the minimum are not matched. With
        ``lists``, only matches in those lists are returned (negative lists apply whichever are
        chosen).
        """
        return self.match_all([query], lists)[0]

    def match_all(
        self, queries: Sequence[Query], lists: Collection[str] | None = None
    ) -> list[list[Match]]:
        """``match`` for many items at once (one index query per signal)."""
        found: list[list[Match]] = [[] for _ in queries]
        chosen = frozenset(lists) if lists is not None else None
        for name, index in list(self._indexes.items()):
            if len(index):
                self._match_signal(name, index, queries, found, chosen)
        for matches in found:
            matches.sort(key=lambda m: (m.distance, m.list, m.entry))
        return found

    def _match_signal(
        self,
        name: str,
        index: Index,
        queries: Sequence[Query],
        found: list[list[Match]],
        chosen: frozenset[str] | None,
    ) -> None:
        allowed = self.variant_families()
        rows: list[int] = []
        named: list[list[tuple[str, Any]]] = []  # per row, the variants worth looking up
        for row, query in enumerate(queries):
            hashed = query.get(name)
            if hashed is None or hashed.signal.degenerate(hashed.value):
                continue  # an image whose own hash says nothing: nor do its variants
            usable = [
                (variant, value)
                for variant, value in hashed.named()
                if families_of(variant) <= allowed and self._matchable(hashed.signal, value)
            ]
            if usable:
                rows.append(row)
                named.append(usable)
        if not rows:
            return
        kind = registry.get(name)
        if isinstance(index, FrameIndex):
            keys = [[kind.key(value) for _, value in usable] for usable in named]
            self._match_frames(name, index, rows, keys, found, chosen)
            return
        # One index query for every variant of every item; each list keeps what it allows.
        flat = [(row, variant, value) for row, usable in zip(rows, named, strict=True)
                for variant, value in usable]  # fmt: skip
        if isinstance(index, HammingIndex):
            radii = [self.threshold(f.hash_list, name) for f in self._followed()]
            if not radii:
                return  # the last list was dropped while this query ran: nothing to match
            array = np.frombuffer(b"".join(kind.key(value) for _, _, value in flat), np.uint8)
            hit, ids, distances = index.query(array.reshape(len(flat), -1), int(max(radii)))
        else:
            hit, ids, distances = index.query([kind.key(value) for _, _, value in flat])
        hits = [flat[h] for h in hit.tolist()]
        self._collect(
            name,
            [row for row, _, _ in hits],
            ids,
            distances,
            found,
            chosen,
            variants=[(variant, value) for _, variant, value in hits],
        )

    def _matchable(self, signal: SignalType[Any], value: Any) -> bool:
        """Whether ``value`` has enough detail and stability to be matched at all."""
        if signal.too_low(signal.quality(value), self.min_quality):
            return False
        if signal.degenerate(value):
            return False
        return not signal.too_unstable(signal.stability(value), self.min_stability)

    def _match_frames(
        self,
        name: str,
        index: FrameIndex,
        rows: list[int],
        keys: list[list[bytes]],
        found_in: list[list[Match]],
        chosen: frozenset[str] | None,
    ) -> None:
        """Videos: one index query per frame radius the lists use (usually one), each list's
        entries taken from the query at its own radius; then collected at once, so that a
        negative list at one radius cancels positive matches found at another."""
        videos = [np.frombuffer(k[0], np.uint8).reshape(-1, 32) for k in keys]
        radius_of = {
            f.hash_list.id: self.frame_radius(f.hash_list, name)
            for f in self._followed()
            if self._videos.get(f.hash_list.id)  # lists without videos ask nothing
        }
        item_rows: list[int] = []
        ids: list[np.ndarray] = []
        shares: list[np.ndarray] = []
        for radius in sorted(set(radius_of.values())):
            hit, found, query_percent, listed_percent = index.query(videos, radius)
            keep = np.array(
                [radius_of.get(getattr(self._entries.get(i), "list_id", -1)) == radius
                 for i in found.tolist()], bool,
            )  # fmt: skip
            item_rows.extend(rows[r] for r in hit[keep].tolist())
            ids.append(found[keep])
            shares.append(np.stack([query_percent[keep], listed_percent[keep]], axis=1))
        if item_rows:
            both = np.concatenate(shares)
            distances = 100.0 - both.min(axis=1)
            self._collect(name, item_rows, np.concatenate(ids), distances, found_in, chosen, both)

    def frame_radius(self, hash_list: HashList, signal: str) -> int:
        """The distance at which two frames of a FRAMES signal count as the same on
        ``hash_list``: its threshold for the frame signal (vPDQ: its PDQ threshold)."""
        frame_signal = registry.get(signal).frame_signal
        assert frame_signal is not None
        return int(self.threshold(hash_list, frame_signal))

    def _followed(self) -> list[_Followed]:
        return list(self._lists.values())

    def _collect(
        self,
        signal: str,
        item_rows: Sequence[int],
        ids: np.ndarray,
        distances: np.ndarray,
        found: list[list[Match]],
        chosen: frozenset[str] | None,
        shares: np.ndarray | None = None,
        variants: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        """Per item row, its matches: each entry once, through the closest variant (name,
        value; aligned with ``item_rows``) its list allows, within the threshold for it."""
        kind = registry.get(signal)
        # Per (row, entry), in variant order: (distance, variant, number); a Match is made
        # for the winner only.
        candidates: dict[tuple[int, int], list[tuple[float, str, int]]] = {}
        entries: dict[int, tuple[Entry, str]] = {}
        negative: dict[int, set[str]] = {}  # per item row, the variants a negative list matched
        for number, (row, entry_id, distance) in enumerate(
            zip(item_rows, ids.tolist(), distances.tolist(), strict=True)
        ):
            entry = self._entries.get(entry_id)
            followed = self._lists.get(entry.list_id) if entry is not None else None
            if entry is None or followed is None:
                continue
            hash_list = followed.hash_list
            if not entry.matchable(hash_list.policy, self.min_stability):
                continue  # delisted, deleted or contested while this query ran
            limit = self.threshold(hash_list, signal)
            variant = ORIGINAL
            if variants is not None:
                variant, value = variants[number]
                if not families_of(variant) <= hash_list.policy.variants:
                    continue
                limit = kind.threshold_for(value, limit)
            if distance > limit:
                continue
            if hash_list.policy.enabled_ratio <= 0:
                continue  # switched off
            if hash_list.policy.negative:
                negative.setdefault(row, set()).add(variant)
                continue
            if chosen is not None and hash_list.name not in chosen:
                continue
            candidates.setdefault((row, entry.id), []).append((distance, variant, number))
            entries[entry.id] = (entry, hash_list.name)
        for (row, entry_id), found_through in candidates.items():
            # A known false positive as it is cancels every match of the item; one through a
            # variant (turned, trimmed, enlarged) cancels the matches found through that
            # variant, or through its enlargement (the same picture), only. Of what is left,
            # the closest variant (the earliest of equals: the original first) is the match.
            benign = negative.get(row, set())
            if ORIGINAL in benign:
                continue
            kept = [c for c in found_through if c[1] not in benign and unscaled(c[1]) not in benign]
            if not kept:
                continue
            distance, variant, number = min(kept, key=lambda c: c[0])  # ties: the earliest
            entry, list_name = entries[entry_id]
            pair = None if shares is None else (float(shares[number, 0]), float(shares[number, 1]))
            found[row].append(Match(
                list_name, entry.id, entry.labels, signal, distance, entry.value, pair, variant,
                entry.stability,
            ))  # fmt: skip

    @staticmethod
    def threshold(hash_list: HashList, signal: str) -> float:
        """The distance at or under which ``signal`` matches on ``hash_list``: the list's own,
        else the signal's default."""
        configured = hash_list.policy.thresholds.get(signal)
        return configured if configured is not None else registry.get(signal).default_threshold

    # --- loading ----------------------------------------------------------------------------

    def add_list(self, name: str) -> None:
        """Load one more list (and follow it). Raises what the source raises for an unknown
        list."""
        with self._lock:
            if name not in self.versions():
                self._load(name)

    def update_list(self, hash_list: HashList) -> None:
        """Take a followed list's new name, policy and description (the list is known by its
        id): entries that match under one policy and not the other are added or removed; the
        rest keep matching throughout (a rename reloads nothing)."""
        with self._lock:
            followed = self._lists.get(hash_list.id)
            if followed is None:
                raise KeyError(f"list {hash_list.name} is not followed")
            old, new = followed.hash_list.policy, hash_list.policy
            if old != new:
                mine = [e for e in self._entries.values() if e.list_id == hash_list.id]
                self._reindex(new, {e.id: e.matchable(old, self.min_stability) for e in mine})
            followed.hash_list = hash_list

    def drop_list(self, name: str) -> None:
        """Stop matching a list (it was removed)."""
        with self._lock:
            followed = next((f for f in self._lists.values() if f.hash_list.name == name), None)
            if followed is None:
                return
            list_id = followed.hash_list.id
            del self._lists[list_id]
            held = [e for e in self._entries.values() if e.list_id == list_id]
            by_signal: dict[str, list[int]] = {}
            for entry in held:
                if entry.matchable(followed.hash_list.policy, self.min_stability):
                    by_signal.setdefault(entry.signal, []).append(entry.id)
            for signal, ids in by_signal.items():
                self._remove(signal, ids)
            for entry in held:
                del self._entries[entry.id]

    def replace_list(self, name: str) -> None:
        """Load a followed list again, whole, from the source (its history there was rewritten:
        a database restored from a backup), and swap it in for the version held, known by its
        id; a list not followed is added. Matching answers from the version held until the one
        read is whole: the entries are read and keyed aside (that list held twice meanwhile),
        then, under the lock, the index takes the entries new or changed, the list its new
        version and policy, and only then loses the entries gone, so that a value in both
        versions is found throughout. (An entry id the source now gives another value is
        removed and added again: for that id alone a query may find neither, for an instant.)
        Raises what the source raises, the version held left as it was."""
        hash_list, read = self.source.entries(name)
        entries: dict[int, Entry] = {}
        keyed = _keyed(self._gather(hash_list.policy, read, entries))
        with self._lock:
            followed = self._lists.get(hash_list.id)
            if followed is None:
                self._lists[hash_list.id] = _Followed(hash_list, hash_list.version)
                self._entries.update(entries)
                self._add_keyed(keyed)
                return
            mine = [e for e in self._entries.values() if e.list_id == hash_list.id]
            old = _keyed(self._gather(followed.hash_list.policy, mine, {}))
            gone = [entry.id for entry in mine if entry.id not in entries]
            changed = [i for i, key in keyed.items() if i in old and old[i] != key]
            fresh = [entry_id for entry_id in keyed if entry_id not in old]
            unmatchable = [i for i in old if i in entries and i not in keyed]
            with collector_paused():
                for entry_id in fresh:
                    self._entries[entry_id] = entries[entry_id]
                self._add_keyed({i: keyed[i] for i in fresh})
                self._remove_keyed({i: old[i] for i in changed + unmatchable})
                self._entries.update(entries)
                self._add_keyed({i: keyed[i] for i in changed})
                self._lists[hash_list.id] = _Followed(hash_list, hash_list.version)
                self._remove_keyed({i: old[i] for i in gone if i in old})
                for entry_id in gone:
                    del self._entries[entry_id]

    def _load(self, name: str) -> None:
        hash_list, entries = self.source.entries(name)
        self._lists[hash_list.id] = _Followed(hash_list, hash_list.version)
        for signal, (ids, keys) in self._gather(hash_list.policy, entries, self._entries).items():
            self._add(signal, ids, keys)

    def _gather(
        self, policy: ListPolicy, entries: Iterable[Entry], into: dict[int, Entry]
    ) -> dict[str, tuple[list[int], list[bytes]]]:
        """Put each of ``entries`` in ``into`` (by id); the ids and index keys, by signal, of
        those that can match under ``policy`` (of a signal an index here can hold)."""
        by_signal: dict[str, tuple[list[int], list[bytes]]] = {}
        key_of: dict[str, Callable[[str], bytes] | None] = {}
        with collector_paused():  # millions of entries
            for entry in entries:
                into[entry.id] = entry
                if entry.matchable(policy, self.min_stability):
                    if entry.signal not in key_of:
                        key_of[entry.signal] = _key_of(entry.signal)
                    key = key_of[entry.signal]
                    if key is None:
                        continue
                    ids, keys = by_signal.setdefault(entry.signal, ([], []))
                    ids.append(entry.id)
                    keys.append(key(entry.value))
        return by_signal

    def _add_keyed(self, keyed: Mapping[int, tuple[str, bytes]]) -> None:
        """Add to the indexes the entries (held) of ``keyed`` (``_keyed``), a signal at a
        time."""
        for signal, (ids, keys) in _by_signal(keyed).items():
            self._add(signal, ids, keys)

    def _remove_keyed(self, keyed: Mapping[int, tuple[str, bytes]]) -> None:
        """Remove from the indexes the entries (still held) of ``keyed``, a signal at a time."""
        for signal, (ids, _) in _by_signal(keyed).items():
            self._remove(signal, ids)

    def _reindex(
        self,
        policy: ListPolicy,
        before: Mapping[int, bool],
        step: Callable[[], None] | None = None,
    ) -> None:
        """Add the entries of ``before`` (id: whether it could match) that can match now and
        remove those that no longer can, a signal at a time (an import of 100,000 entries is
        one index update, not 100,000); ``step`` is called after every PROGRESS_STEP entries
        looked at."""
        added: dict[str, tuple[list[int], list[bytes]]] = {}
        removed: dict[str, list[int]] = {}
        key_of: dict[str, Callable[[str], bytes] | None] = {}
        for looked, (entry_id, was) in enumerate(before.items(), 1):
            if step is not None and looked % PROGRESS_STEP == 0:
                step()
            after = self._entries[entry_id]
            now = after.matchable(policy, self.min_stability)
            if after.signal not in key_of:
                key_of[after.signal] = _key_of(after.signal)
            key = key_of[after.signal]
            if key is None:
                continue
            if now and not was:
                ids, values = added.setdefault(after.signal, ([], []))
                ids.append(after.id)
                values.append(key(after.value))
            elif was and not now:
                removed.setdefault(after.signal, []).append(after.id)
        for signal, gone in removed.items():
            self._remove(signal, gone)
        for signal, (ids, values) in added.items():
            self._add(signal, ids, values)

    def _add(self, signal: str, ids: list[int], keys: list[bytes]) -> None:
        kind = registry.get(signal).index
        index = self._indexes.get(signal)
        if kind is IndexKind.FRAMES:
            if index is None:
                index = self._indexes[signal] = FrameIndex()
            assert isinstance(index, FrameIndex)
            index.add(ids, [np.frombuffer(key, np.uint8).reshape(-1, 32) for key in keys])
            for entry_id in ids:
                list_id = self._entries[entry_id].list_id
                self._videos[list_id] = self._videos.get(list_id, 0) + 1
            return
        array = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), -1)
        if index is None:
            index = HammingIndex() if kind is IndexKind.HAMMING else ExactIndex(array.shape[1])
            self._indexes[signal] = index
        assert not isinstance(index, FrameIndex)
        index.add(ids, array)

    def _remove(self, signal: str, ids: list[int]) -> None:
        index = self._indexes.get(signal)
        if index is not None:
            index.remove(ids)
        if isinstance(index, FrameIndex):
            for entry_id in ids:
                list_id = self._entries[entry_id].list_id
                self._videos[list_id] = self._videos.get(list_id, 0) - 1


class EntryColumns(Mapping[int, Entry]):
    """A Matcher copy's entries (every one active) by id, held as numpy columns: ids, lists,
    versions, stabilities, and the values' UTF-8 text in one array; signals, label sets and
    (slim) provenances as numbers into tables of the distinct ones. An Entry is made only when
    asked for (an entry a query matched): 44 bytes per entry plus its value's text, in arrays
    that pickle out of band (protocol 5), where a dict of Entry objects takes 400 to 560.
    Provenance is kept only for the entries of ``two_sources`` (list ids), whose rule reads
    it, and of it only the sources' organisations and jurisdictions."""

    def __init__(self, entries: Iterable[Entry], two_sources: Container[int] = ()) -> None:
        held = sorted(entries, key=lambda entry: entry.id)
        signals: dict[str, int] = {}
        labels: dict[frozenset[str], int] = {}
        provenances: dict[Provenance, int] = {_NO_PROVENANCE: 0}

        def provenance(entry: Entry) -> int:
            if entry.list_id not in two_sources:
                return 0
            sources = (Source(s.organisation, s.jurisdiction) for s in entry.provenance.sources)
            slim = Provenance(sources=tuple(dict.fromkeys(sources)))
            return provenances.setdefault(slim, len(provenances))

        texts = [entry.value.encode() for entry in held]
        self.ids = np.array([entry.id for entry in held], np.int64)
        self.lists = np.array([entry.list_id for entry in held], np.int64)
        self.versions = np.array([entry.version for entry in held], np.int64)
        self.stabilities = np.array(
            [-1 if entry.stability is None else entry.stability for entry in held], np.int16
        )
        self.signals = np.array(
            [signals.setdefault(e.signal, len(signals)) for e in held], np.uint16
        )
        self.labels = np.array([labels.setdefault(e.labels, len(labels)) for e in held], np.int32)
        self.provenances = np.array([provenance(entry) for entry in held], np.int32)
        self.ends = np.cumsum([len(text) for text in texts], dtype=np.int64)
        self.text = np.frombuffer(b"".join(texts), np.uint8)
        self.signal_names = tuple(signals)
        self.label_sets = tuple(labels)
        self.provenance_table = tuple(provenances)

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids.tolist())

    def __getitem__(self, ident: int) -> Entry:
        row = int(np.searchsorted(self.ids, ident))
        if row == len(self.ids) or self.ids[row] != ident:
            raise KeyError(ident)
        start = int(self.ends[row - 1]) if row else 0
        stability = int(self.stabilities[row])
        return Entry(
            int(self.ids[row]),
            int(self.lists[row]),
            self.signal_names[self.signals[row]],
            self.text[start : int(self.ends[row])].tobytes().decode(),
            self.label_sets[self.labels[row]],
            self.provenance_table[self.provenances[row]],
            EntryStatus.ACTIVE,
            int(self.versions[row]),
            None if stability < 0 else stability,
        )


# What stays with the Matcher a copy is made of (``__getstate__``).
_LIVE = frozenset({"source", "_lock", "_stop", "_follower", "last_error"})
_NO_PROVENANCE = Provenance()


class _Copied:
    """The source of a Matcher copied into another process: it has none to follow."""

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        raise Unavailable(f"a copy of a Matcher cannot load {name}: it has no source of lists")

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Change]:
        raise Unavailable(f"a copy of a Matcher cannot follow {name}: it has no source of lists")


def _keyed(
    by_signal: Mapping[str, tuple[list[int], list[bytes]]],
) -> dict[int, tuple[str, bytes]]:
    """The signal and index key of each entry id of ``by_signal`` (``Matcher._gather``)."""
    return {entry_id: (signal, key) for signal, (ids, keys) in by_signal.items()
            for entry_id, key in zip(ids, keys, strict=True)}  # fmt: skip


def _by_signal(
    keyed: Mapping[int, tuple[str, bytes]],
) -> dict[str, tuple[list[int], list[bytes]]]:
    """Entry ids and index keys (``_keyed``) grouped by signal."""
    grouped: dict[str, tuple[list[int], list[bytes]]] = {}
    for entry_id, (signal, key) in keyed.items():
        ids, keys = grouped.setdefault(signal, ([], []))
        ids.append(entry_id)
        keys.append(key)
    return grouped


def _key_of(signal: str) -> Callable[[str], bytes] | None:
    """How a listed value of ``signal`` (in its canonical form) becomes its index key; None for
    a signal no index here can hold (a plug-in not registered in this process): its entries
    are kept but cannot match here, and the rest of the list matches as ever."""
    try:
        kind = registry.get(signal)
    except registry.UnknownSignal:
        return None
    return kind.key_of if kind.listable else None
