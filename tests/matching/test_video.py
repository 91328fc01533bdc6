"""Videos on lists (vPDQ), end to end through a real store (SQLite and PostgreSQL): a listed
video's re-encodings match with the share of frames each side finds in the other, clips and
other videos do not unless the list allows it, the list's PDQ threshold decides which frames
count as the same, and contesting an entry stops its matching at the next refresh. Benign
generated videos only."""

import functools
import pickle
from collections.abc import Iterator

import pytest

from hashguard.lists.model import Category, ChangeKind, ListPolicy
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import Query
from hashguard.signals.vpdq import VpdqHash, VpdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.media import make_video

VPDQ = VpdqSignal()


@functools.cache
def hashed(seed: int, seconds: float = 8.0, **options: object) -> VpdqHash:
    return VPDQ.hash(make_video(seed, seconds=seconds, **options))  # type: ignore[arg-type]


def query(value: VpdqHash) -> Query:
    return Query.of([("vpdq", value)])


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    store = ListStore(engine)
    store.create("videos", "Offlimits", Category.TEST)
    store.apply("videos", [Submission("vpdq", VPDQ.format(hashed(1)), frozenset({"A1"}))])
    yield store
    engine.dispose()


def test_a_reencoded_video_matches_and_others_do_not(store: ListStore) -> None:
    listed = hashed(1)
    assert len(VPDQ.canonical_of(listed)) > 128  # longer than a value key: stored by its digest
    matcher = Matcher(store, ["videos"])
    assert matcher.sizes()["vpdq"] == 1

    reencoded = hashed(1, codec="libx264", bitrate=250_000)
    assert reencoded != listed
    (match,) = matcher.match(query(reencoded))
    pairwise = VPDQ.compare(reencoded, listed)
    assert (match.list, match.signal, match.labels) == ("videos", "vpdq", {"A1"})
    assert match.shares == pytest.approx((pairwise.query_percent, pairwise.target_percent))
    assert match.distance == pytest.approx(pairwise.distance) and match.distance <= 20
    assert match.value == VPDQ.canonical_of(listed)
    assert pickle.loads(pickle.dumps(matcher)).match(query(reencoded)) == [match]  # a worker's

    assert matcher.match(query(hashed(2))) == []
    # The first half of the video: all its frames are in the listed one, but only half of the
    # listed one's are in it, so by default it does not match.
    clip = VpdqHash(listed.frames[: len(listed.frames) // 2])
    assert matcher.match(query(clip)) == []


def test_the_list_decides_the_shares_and_the_frame_distance(store: ListStore) -> None:
    listed = hashed(1)
    clip = VpdqHash(listed.frames[: len(listed.frames) // 2])
    store.update("videos", policy=ListPolicy({"vpdq": 60}), actor="owner")
    matcher = Matcher(store, ["videos"])
    (match,) = matcher.match(query(clip))
    assert match.shares is not None and match.shares[0] == 100.0
    assert 40 <= match.shares[1] < 80

    # Frames within the list's PDQ threshold count as the same: at 0 only identical frames do,
    # and a re-encoding's frames are not identical.
    reencoded = hashed(1, codec="libx264", bitrate=250_000)
    store.update("videos", policy=ListPolicy({"pdq": 0}), actor="owner")
    matcher.update_list(store.get("videos"))
    assert matcher.match(query(listed)) != []
    assert matcher.match(query(reencoded)) == []


def test_a_contested_video_stops_matching_at_the_next_refresh(store: ListStore) -> None:
    matcher = Matcher(store, ["videos"])
    listed = hashed(1)
    assert matcher.match(query(listed)) != []
    store.change("videos", ChangeKind.CONTEST, "vpdq", VPDQ.canonical_of(listed), actor="reviewer")
    assert matcher.refresh() == 1
    assert matcher.match(query(listed)) == []
    # The value in either of its forms names the entry.
    store.change("videos", ChangeKind.REINSTATE, "vpdq", VPDQ.format(listed), "mistake", "owner")
    matcher.refresh()
    assert matcher.match(query(listed)) != []


def test_a_negative_list_cancels_a_video_whatever_its_frame_threshold(store: ListStore) -> None:
    listed = hashed(1)
    store.create("known-false", "Offlimits", Category.FALSE_POSITIVES,
                 policy=ListPolicy({"pdq": 10}, negative=True))  # fmt: skip
    store.apply("known-false", [Submission("vpdq", VPDQ.canonical_of(listed))])
    matcher = Matcher(store, ["videos", "known-false"])
    assert matcher.match(query(listed)) == []  # the video is a known false positive
    store.update("known-false", policy=ListPolicy({"pdq": 10}, negative=False), actor="owner")
    matcher.update_list(store.get("known-false"))
    assert {m.list for m in matcher.match(query(listed))} == {"videos", "known-false"}
