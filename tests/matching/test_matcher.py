"""The Matcher over stored lists: thresholds, negative lists, two sources, dihedral, following
the change log (on SQLite and PostgreSQL)."""

import hashlib
import pickle
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hashguard.errors import NotFound
from hashguard.lists.model import Category, ChangeKind, ListPolicy, Provenance, Source
from hashguard.lists.records import Submission, Tombstone
from hashguard.matching import Matcher
from hashguard.matching import matcher as matcher_module
from hashguard.matching.query import Query
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqHash, PdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore


def _query(signal: str, value: object) -> Query:
    return Query.of([(signal, value)])


def flipped(hash_hex: str, bits: int) -> PdqHash:
    """The hash with its first ``bits`` bits flipped."""
    array = np.unpackbits(np.frombuffer(bytes.fromhex(hash_hex), np.uint8))
    array[:bits] ^= 1
    return PdqHash(np.packbits(array).tobytes(), 100)


BASE = "".join(f"{(n * 37) % 256:02x}" for n in range(32))
OTHER = "".join(f"{(n * 91 + 7) % 256:02x}" for n in range(32))


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    store = ListStore(engine)
    store.create("known", "Offlimits", Category.KNOWN_CSAM, policy=ListPolicy({"pdq": 20}))
    store.apply("known", [Submission("pdq", BASE, frozenset({"A1"}))])
    yield store
    engine.dispose()


def test_matches_within_the_list_threshold_with_labels(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    (match,) = matcher.match(_query("pdq", flipped(BASE, 20)))
    assert (match.list, match.signal, match.distance, match.labels) == ("known", "pdq", 20, {"A1"})
    assert match.value == BASE
    assert matcher.match(_query("pdq", flipped(BASE, 21))) == []  # the list says 20, not 31
    assert matcher.match(_query("pdq", PdqHash(bytes.fromhex(OTHER), 100))) == []


def test_low_quality_hashes_are_not_matched(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    assert matcher.match(_query("pdq", PdqHash(bytes.fromhex(BASE), 30))) == []
    assert len(matcher.match(_query("pdq", PdqHash(bytes.fromhex(BASE), None)))) == 1


def test_negative_list_suppresses_a_known_false_positive(store: ListStore) -> None:
    negative = ListPolicy({"pdq": 4}, negative=True)
    store.create("benign", "Hashguard QA", Category.FALSE_POSITIVES, policy=negative)
    collider = flipped(BASE, 12)  # a benign image 12 bits from a listed one
    store.apply("benign", [Submission("pdq", collider.hex)])
    matcher = Matcher(store, ["known", "benign"])
    assert Matcher(store, ["known"]).match(_query("pdq", collider)) != []  # would match alone
    assert matcher.match(_query("pdq", collider)) == []  # the known false positive: suppressed
    assert matcher.match(_query("pdq", flipped(BASE, 10))) == []  # 2 bits from it: suppressed
    assert [m.list for m in matcher.match(_query("pdq", flipped(BASE, 6)))] == ["known"]  # 6 > 4


def test_digests_match_exactly(store: ListStore) -> None:
    data = b"benign test file"
    store.apply(
        "known", [Submission("sha256", hashlib.sha256(data).hexdigest(), frozenset({"B1"}))]
    )
    matcher = Matcher(store, ["known"])
    (match,) = matcher.match(_query("sha256", hashlib.sha256(data).digest()))
    assert match.signal == "sha256" and match.distance == 0 and match.labels == {"B1"}
    assert matcher.match(_query("sha256", hashlib.sha256(b"other").digest())) == []


def test_dihedral_values_match_a_rotated_copy(store: ListStore) -> None:
    signal = PdqSignal()
    image = scene(4, 320, 240)
    store.apply("known", [Submission("pdq", signal.hash(encode(image, "PNG")).hex)])
    matcher = Matcher(store, ["known"])
    rotated = encode(image.rotate(90, expand=True), "PNG")
    assert matcher.match(_query("pdq", signal.hash(rotated))) == []
    matches = matcher.match(_query("pdq", signal.hash_dihedral(rotated)))
    assert len(matches) == 1 and matches[0].distance <= 20


def test_two_source_rule_applies_when_the_second_source_arrives(store: ListStore) -> None:
    policy = ListPolicy(two_sources=True)
    store.create("strict", "INHOPE", Category.KNOWN_CSAM, policy=policy)
    nl = Provenance("Offlimits", "", (Source("Offlimits", "NL"),))
    us = Provenance("NCMEC", "", (Source("NCMEC", "US"),))
    store.apply("strict", [Submission("pdq", OTHER, provenance=nl)])
    matcher = Matcher(store, ["strict"])
    query = _query("pdq", PdqHash(bytes.fromhex(OTHER), 100))
    assert matcher.match(query) == []
    store.apply("strict", [Submission("pdq", OTHER, provenance=us)])
    assert matcher.refresh() == 1
    assert [m.list for m in matcher.match(query)] == ["strict"]


def test_refresh_follows_adds_contests_and_delistings(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    values = [flipped(OTHER, n * 100).hex for n in (0, 1)]
    store.apply("known", [Submission("pdq", v) for v in values])
    queries = [_query("pdq", PdqHash(bytes.fromhex(v), 100)) for v in values]
    assert all(matcher.match(q) == [] for q in queries)  # not refreshed yet
    assert matcher.refresh() == 2
    assert all(len(matcher.match(q)) == 1 for q in queries)
    store.change("known", ChangeKind.CONTEST, "pdq", values[0], "false-positive report")
    store.change("known", ChangeKind.DELIST, "pdq", values[1], "appeal upheld")
    assert matcher.refresh() == 2
    assert all(matcher.match(q) == [] for q in queries)
    # Owner decisions stick: submitting the value again does not bring it back.
    store.apply("known", [Submission("pdq", v, provenance=Provenance("Other")) for v in values])
    matcher.refresh()
    assert all(matcher.match(q) == [] for q in queries)
    assert matcher.versions() == {"known": store.get("known").version}


def test_a_refresh_applies_changes_in_batches_to_the_same_index(
    store: ListStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matcher_module, "REFRESH_BATCH", 4)  # an entry's changes split apart
    monkeypatch.setattr(matcher_module, "PROGRESS_STEP", 2)
    matcher = Matcher(store, ["known"])
    start = matcher.versions()["known"]
    values = [flipped(OTHER, n * 60).hex for n in range(3)]
    store.apply("known", [Submission("pdq", v) for v in values])
    store.change("known", ChangeKind.CONTEST, "pdq", values[0], "false-positive report")
    store.change("known", ChangeKind.DELIST, "pdq", values[1], "appeal upheld")
    store.change("known", ChangeKind.REINSTATE, "pdq", values[0], "reassessed")
    told: list[object] = []  # steps; each batch's count and the version the index then held

    def step() -> None:
        told.append("step")

    def taken(count: int) -> None:
        told.append((count, matcher.versions()["known"]))

    assert matcher.refresh(step, taken) == 6  # batches of four and two, then an empty read
    # A step per two changes read, then per two entries reindexed (three, then two).
    assert told == ["step", "step", "step", (4, start + 4), "step", "step", (2, start + 6)]
    found = [len(matcher.match(_query("pdq", PdqHash(bytes.fromhex(v), 100)))) for v in values]
    assert found == [1, 0, 1]
    assert matcher.sizes() == Matcher(store, ["known"]).sizes()
    assert matcher.versions() == {"known": store.get("known").version}


def test_a_reinstated_entry_matches_again_after_a_contest_or_a_delisting(
    store: ListStore,
) -> None:
    values = [BASE, flipped(OTHER, 100).hex]
    store.apply("known", [Submission("pdq", values[1], frozenset({"B2"}))])
    store.apply("known", [Submission("md5", hashlib.md5(b"item").hexdigest())])
    matcher = Matcher(store, ["known"])
    queries = [_query("pdq", flipped(v, 5)) for v in values]
    digest = _query("md5", hashlib.md5(b"item").digest())
    store.change("known", ChangeKind.CONTEST, "pdq", values[0], "false positive")
    store.change("known", ChangeKind.DELIST, "pdq", values[1], "appeal upheld")
    store.change("known", ChangeKind.CONTEST, "md5", hashlib.md5(b"item").hexdigest(), "wrong")
    assert matcher.refresh() == 3
    assert all(matcher.match(q) == [] for q in [*queries, digest])
    for value in values:
        store.change("known", ChangeKind.REINSTATE, "pdq", value, "reassessed: it is a match")
    store.change("known", ChangeKind.REINSTATE, "md5", hashlib.md5(b"item").hexdigest(), "ok")
    assert matcher.refresh() == 3
    found = [[(m.value, m.distance, m.labels) for m in matcher.match(q)] for q in queries]
    assert found == [[(BASE, 5, {"A1"})], [(values[1], 5, {"B2"})]]
    assert [m.signal for m in matcher.match(digest)] == ["md5"]
    assert matcher.sizes()["pdq"] == 2 and matcher.sizes()["md5"] == 1
    # A Matcher loaded afresh holds the same.
    assert [len(Matcher(store, ["known"]).match(q)) for q in [*queries, digest]] == [1, 1, 1]


def test_withdrawal_stops_matching_and_resubmission_restores(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    query = _query("pdq", PdqHash(bytes.fromhex(BASE), 100))
    store.apply("known", [Tombstone("pdq", BASE, reason="victim withdrew")])
    matcher.refresh()
    assert matcher.match(query) == []
    store.apply("known", [Submission("pdq", BASE)])
    matcher.refresh()
    assert len(matcher.match(query)) == 1


def test_a_following_matcher_sees_a_delisting_without_refresh_calls(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    matcher.follow(interval=0.05)
    try:
        query = _query("pdq", PdqHash(bytes.fromhex(BASE), 100))
        assert len(matcher.match(query)) == 1
        store.change("known", ChangeKind.DELIST, "pdq", BASE, "appeal upheld")
        version = store.get("known").version
        deadline = time.monotonic() + 10
        while matcher.versions()["known"] < version and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the follower thread, not timing it
        assert matcher.match(query) == []
    finally:
        matcher.close()


def test_the_follower_survives_a_failing_refresh(store: ListStore) -> None:
    class Flaky:
        """The store, whose change feed fails once (a locked or lost database)."""

        def __init__(self) -> None:
            self.failures = 1

        def entries(self, *args, **kwargs):
            return store.entries(*args, **kwargs)

        def changes_since(self, *args, **kwargs):
            if self.failures:
                self.failures -= 1
                raise RuntimeError("database is locked")
            return store.changes_since(*args, **kwargs)

    source = Flaky()
    matcher = Matcher(source, ["known"])
    matcher.follow(interval=0.01)
    try:
        store.change("known", ChangeKind.DELIST, "pdq", BASE, "appeal upheld")
        version = store.get("known").version
        deadline = time.monotonic() + 10
        # The follower clears its error just after the refresh that caught up: wait for both.
        while (
            matcher.versions()["known"] < version or matcher.last_error is not None
        ) and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the follower thread, not timing it
        assert source.failures == 0 and matcher.last_error is None
        assert matcher.match(_query("pdq", PdqHash(bytes.fromhex(BASE), 100))) == []
    finally:
        matcher.close()


def test_a_policy_change_takes_effect_without_the_list_ever_going_blind(store: ListStore) -> None:
    two = Provenance(sources=(Source("Hotline NL", "NL"), Source("Hotline DE", "DE")))
    store.apply("known", [Submission("pdq", OTHER, provenance=two)])
    matcher = Matcher(store, ["known"])
    other = _query("pdq", PdqHash(bytes.fromhex(OTHER), 100))
    assert len(matcher.match(_query("pdq", flipped(BASE, 0)))) == len(matcher.match(other)) == 1
    strict = store.update("known", policy=ListPolicy({"pdq": 20}, two_sources=True))
    matcher.update_list(strict)
    assert matcher.match(_query("pdq", flipped(BASE, 0))) == []  # one source only
    assert len(matcher.match(other)) == 1  # matched all along
    matcher.update_list(store.update("known", policy=ListPolicy({"pdq": 20})))
    assert len(matcher.match(_query("pdq", flipped(BASE, 0)))) == 1


def test_a_list_removed_and_made_anew_is_never_mistaken_for_the_old(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    old_ids = {entry.id for entry in store.entries("known")[1]}
    store.remove("known")
    store.create("known", "Offlimits", Category.KNOWN_CSAM, policy=ListPolicy({"pdq": 20}))
    third = flipped(OTHER, 100)
    store.apply("known", [Submission("pdq", OTHER), Submission("pdq", third.hex)])
    new = store.get("known")  # version 2, beyond the old list's 1
    assert {entry.id for entry in store.entries("known")[1]}.isdisjoint(old_ids)
    matcher.refresh()  # the old list's feed now belongs to another list: nothing applied
    assert matcher.match(_query("pdq", PdqHash(bytes.fromhex(OTHER), 100))) == []
    assert matcher.match(_query("pdq", third)) == []
    matcher.drop_list("known")
    matcher.add_list("known")
    assert [m.entry for m in matcher.match(_query("pdq", PdqHash(bytes.fromhex(OTHER), 100)))] != []
    assert matcher.match(_query("pdq", flipped(BASE, 0))) == []
    assert matcher.lists[0].id == new.id


def test_a_refresh_cut_short_leaves_the_index_in_step(store: ListStore) -> None:
    class Flaky:
        """The store, but the change feed breaks after one change, once."""

        broken = True

        def entries(self, *args: object, **options: object) -> object:
            return store.entries(*args, **options)  # type: ignore[arg-type]

        def changes_since(self, name: str, version: int, limit: int | None = None) -> object:
            for number, change in enumerate(store.changes_since(name, version, limit)):
                if self.broken and number == 1:
                    self.broken = False
                    raise OSError("the database went away")
                yield change

    matcher = Matcher(Flaky(), ["known"])  # type: ignore[arg-type]
    third = flipped(OTHER, 100)
    store.apply("known", [Submission("pdq", OTHER), Submission("pdq", third.hex)])
    with pytest.raises(OSError):
        matcher.refresh()
    assert len(matcher.match(_query("pdq", PdqHash(bytes.fromhex(OTHER), 100)))) == 1  # applied
    assert matcher.versions()["known"] == 2
    matcher.refresh()
    assert len(matcher.match(_query("pdq", third))) == 1


def test_a_renamed_list_refreshes_the_others_then_says_it_is_gone(store: ListStore) -> None:
    store.create("other", "Offlimits", Category.KNOWN_CSAM, policy=ListPolicy({"pdq": 20}))
    matcher = Matcher(store, ["known", "other"])
    store.rename("known", "renamed")
    store.apply("other", [Submission("pdq", OTHER)])
    with pytest.raises(NotFound, match="known"):
        matcher.refresh()
    assert len(matcher.match(_query("pdq", PdqHash(bytes.fromhex(OTHER), 100)))) == 1
    (kept,) = matcher.match(_query("pdq", flipped(BASE, 0)))  # matching as it was meanwhile
    matcher.update_list(store.get("renamed"))  # the owner renames it in place
    assert matcher.versions() == {"renamed": 1, "other": 1}
    assert matcher.refresh() == 0
    (renamed,) = matcher.match(_query("pdq", flipped(BASE, 0)), lists=["renamed"])
    assert (renamed.list, renamed.entry) == ("renamed", kept.entry)


def test_a_query_meeting_a_list_dropped_under_it_finds_nothing(store: ListStore) -> None:
    class Dropping(Matcher):
        """Drops its lists between seeing a non-empty index and reading the lists' radii,
        as a removal on another thread can."""

        def _followed(self):  # type: ignore[no-untyped-def]
            for hash_list in self.lists:
                self.drop_list(hash_list.name)
            return super()._followed()

    matcher = Dropping(store, ["known"])
    assert matcher.match(_query("pdq", flipped(BASE, 0))) == []


def test_a_copy_for_another_process_matches_alike_and_carries_only_matchable_entries(
    store: ListStore,
) -> None:
    """What ``hashguard scan`` ships to its workers (a pickled copy): the same matches,
    negative lists and the two-source rule included, without deleted or one-source entries."""
    negative = ListPolicy({"pdq": 4}, negative=True)
    store.create("benign", "QA", Category.FALSE_POSITIVES, policy=negative)
    store.apply("benign", [Submission("pdq", flipped(BASE, 12).hex)])
    store.create("strict", "INHOPE", Category.KNOWN_CSAM, policy=ListPolicy(two_sources=True))
    nl = Provenance("Offlimits", "", (Source("Offlimits", "NL"),))
    us = Provenance("NCMEC", "", (Source("NCMEC", "US"),))
    third = flipped(OTHER, 40).hex
    store.apply("strict", [Submission("pdq", OTHER, provenance=nl),
                           Submission("pdq", OTHER, provenance=us),
                           Submission("pdq", third, provenance=nl)])  # fmt: skip
    store.apply("known", [Submission("pdq", flipped(BASE, 60).hex)])
    store.apply("known", [Tombstone("pdq", flipped(BASE, 60).hex, reason="withdrawn")])
    matcher = Matcher(store, ["known", "benign", "strict"])
    copy = pickle.loads(pickle.dumps(matcher))
    queries = [_query("pdq", flipped(BASE, bits)) for bits in (0, 6, 12, 60)]
    queries += [_query("pdq", PdqHash(bytes.fromhex(value), 100)) for value in (OTHER, third)]
    assert copy.match_all(queries) == matcher.match_all(queries)
    assert [len(found) for found in copy.match_all(queries)] == [1, 1, 0, 0, 1, 0]
    kept = copy._entries.values()
    assert len(kept) == 3  # BASE, the benign one, OTHER; neither the deleted nor `third`
    assert all(e.provenance.sources for e in kept if e.list_id == store.get("strict").id)
    assert not any(e.provenance.sources for e in kept if e.list_id != store.get("strict").id)


def test_a_copy_carries_its_entries_and_indexes_out_of_band(store: ListStore) -> None:
    """Pickled as Ray pickles (protocol 5, arrays as buffers of their own, which Ray maps into
    each worker process of a node without a copy): what is pickled in band does not grow with
    the list, and the copy made from the buffers matches as the Matcher does."""
    rng = np.random.default_rng(5)

    def pickled(name: str, count: int) -> tuple[bytes, list[pickle.PickleBuffer], Matcher]:
        store.create(name, "QA", Category.TEST)
        values = [bytes(row).hex() for row in rng.integers(0, 256, (count, 32), np.uint8)]
        store.apply(name, [Submission("pdq", value, frozenset({"A1"})) for value in values])
        store.apply(name, [Submission("md5", hashlib.md5(b"%d" % n).hexdigest())
                           for n in range(count)])  # fmt: skip
        matcher = Matcher(store, ["known", name])
        buffers: list[pickle.PickleBuffer] = []
        return pickle.dumps(matcher, 5, buffer_callback=buffers.append), buffers, matcher

    small, _, _ = pickled("small", 100)
    large, buffers, matcher = pickled("large", 3000)
    assert len(large) - len(small) < 2000  # the same few objects: lists, tables of labels
    assert sum(buffer.raw().nbytes for buffer in buffers) > 6000 * (8 + 32)
    copy = pickle.loads(large, buffers=buffers)
    queries = [_query("pdq", flipped(BASE, 3)), _query("md5", hashlib.md5(b"7").digest())]
    assert copy.match_all(queries) == matcher.match_all(queries)
    assert [len(found) for found in copy.match_all(queries)] == [1, 1]
