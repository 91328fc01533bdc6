"""Video matching speed: hashguard's FrameIndex against ThreatExchange's VPDQIndex, same run.

    make bench-video      # or: .venv/bin/python bench/video.py [--listed 10000] [--queries 300]

Issue 16's target: query videos/s against 10k listed videos hashed at 1 frame per second. One
core for both sides (the process is pinned to one CPU; one BLAS, numba and faiss thread).

Listed videos (generated, as no real video hash list can ship): lengths from 10 s to 5 min
(log-normal, median 45 s, mean about 60 s), so about 600k frames. Each is a run of scenes
(a cut every 4 s on average): a scene is a new picture with real PDQ statistics
(``hashsets``: mixtures of the PDQ spectra of benign images), its frames that picture plus a
little motion (a few bits apart), and one scene in three is still (identical frames, which
vPDQ counts once). One scene in ten is of low quality (fades, dark shots: quality < 50, which
vPDQ ignores). Both sides keep the distinct frames of quality >= 50, as vPDQ does.

Query videos, in equal shares:
  (a) re-encodings of listed videos: every distinct frame 5-20 bits off, quality +-3;
  (b) clips: 50-100 % of a listed video, from a random start, 0-10 bits off;
  (c) unrelated videos from the same generator.

Compared, at PDQ distance 31 with both match percentages set to 80 (a match needs 80 % of the
query's frames to have a frame within 31 bits in the listed video, and 80 % of the listed
video's frames to have one in the query):
  (ref) ThreatExchange ``VPDQIndex`` (threatexchange 1.2.17 with Meta's vpdq 0.2.5): a faiss
        ``IndexBinaryFlat`` of the distinct frames, one range search per query video; built
        from and queried with its signal strings (JSON lists of frame features), as HMA does;
  (hg)  hashguard ``FrameIndex``: parsed from the vPDQ text form at build, queried with the
        hashes the video hasher returns, one video per call (as the reference) and all in one
        call; and, when lists can hold vPDQ, ``Matcher.match_all`` a video per call on a list
        imported into a SQLite ListStore (build: the import + the Matcher's load).
Recall and precision are against a brute-force truth on a sample of queries: every sampled
query compared with every listed video by ``VpdqSignal``'s pairwise rule.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import gc
import json
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import faiss
import numpy as np
from threatexchange.extensions.vpdq.vpdq_index import VPDQIndex
from threatexchange.extensions.vpdq.vpdq_util import (
    VPDQ_INDEX_MATCH_THRESHOLD_PERCENT,
    VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
)

from hashguard.index import FrameIndex
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import Query
from hashguard.signals import registry
from hashguard.signals.pdq import MIN_QUALITY
from hashguard.signals.vpdq import (
    DEFAULT_MATCH_PERCENT,
    VpdqHash,
    VpdqSignal,
    _good_frames,
    _matched_percentages,
)
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hashsets import _distinct, pack, pool
from matching import anonymous_resident, growth, pin, table, timed

RADIUS = 31
PERCENT = DEFAULT_MATCH_PERCENT  # both sides' query and listed-video percentages
POOL_SCENES = 80  # benign generated scenes whose PDQ spectra make the pictures (no photos: fast)
SCENE_SECONDS = 4.0
STILL_SHARE = 0.3
LOW_QUALITY_SHARE = 0.1
CHUNK = 500  # videos generated at once
KINDS = ("re-encoding", "clip", "unrelated")
SIGNAL = VpdqSignal()


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (k, 32) uint8, one per second, PDQ hex-string order
    quality: np.ndarray  # (k,) int64


def generate(count: int, rng: np.random.Generator, base: np.ndarray) -> list[Video]:
    """``count`` videos of 10 s to 5 min at 1 frame/s, made of scenes (see the module doc)."""
    spread = base.std(axis=0)
    lengths = np.clip(np.rint(rng.lognormal(np.log(45.0), 0.75, count)), 10, 300).astype(int)
    videos: list[Video] = []
    for start in range(0, count, CHUNK):
        sizes = lengths[start : start + CHUNK]
        total = int(sizes.sum())
        cuts = rng.random(total) < 1.0 / SCENE_SECONDS
        cuts[np.cumsum(sizes) - sizes] = True  # every video starts a scene
        scene = np.cumsum(cuts) - 1
        scenes = int(scene[-1]) + 1
        pictures = _distinct(rng, base, scenes)
        motion = rng.uniform(0.03, 0.12, scenes).astype(np.float32)
        motion[rng.random(scenes) < STILL_SHARE] = 0.0
        quality = rng.integers(55, 101, scenes)
        low = rng.random(scenes) < LOW_QUALITY_SHARE
        quality[low] = rng.integers(0, 50, int(low.sum()))
        noise = rng.normal(0.0, 1.0, (total, 256)).astype(np.float32)
        frames = pack(pictures[scene] + motion[scene, None] * noise * spread)
        ends = np.cumsum(sizes)
        for end, size in zip(ends.tolist(), sizes.tolist(), strict=True):
            videos.append(Video(frames[end - size : end], quality[scene[end - size : end]]))
    return videos


def reencoded(video: Video, low: int, high: int, rng: np.random.Generator) -> Video:
    """``video`` with each distinct frame ``low``-``high`` bits off (identical frames stay
    identical, as an encoder treats a still scene) and its quality moved by up to 3."""
    distinct, inverse = np.unique(video.frames, axis=0, return_inverse=True)
    bits = rng.integers(low, high + 1, len(distinct))
    flips = np.argsort(rng.random((len(distinct), 256)), axis=1) < bits[:, None]
    changed = distinct ^ np.packbits(flips, axis=1)
    quality = np.clip(video.quality + rng.integers(-3, 4, len(video.quality)), 0, 100)
    return Video(changed[inverse.reshape(-1)], quality)


def queries(
    listed: list[Video], count: int, rng: np.random.Generator, base: np.ndarray
) -> tuple[list[Video], list[str]]:
    """``count`` query videos in equal shares of ``KINDS``, shuffled, and each one's kind."""
    share = count // 3
    sources = rng.choice(len(listed), 2 * share, replace=False)
    made = [reencoded(listed[i], 5, 20, rng) for i in sources[:share]]
    for i in sources[share:]:
        video = listed[i]
        length = max(3, int(len(video.frames) * rng.uniform(0.5, 1.0)))
        first = int(rng.integers(0, len(video.frames) - length + 1))
        clip = Video(video.frames[first : first + length], video.quality[first : first + length])
        made.append(reencoded(clip, 0, 10, rng))
    made += generate(count - 2 * share, rng, base)
    kinds = [KINDS[0]] * share + [KINDS[1]] * share + [KINDS[2]] * (count - 2 * share)
    order = rng.permutation(count)
    return [made[i] for i in order], [kinds[i] for i in order]


def hashguard_text(video: Video) -> str:
    """The vPDQ text form hashguard lists hold: ``frame,quality,hash,timestamp`` lines."""
    return "\n".join(
        f"{n},{q},{row.tobytes().hex()},{n:.3f}"
        for n, (row, q) in enumerate(zip(video.frames, video.quality.tolist(), strict=True))
    )


def threatexchange_text(video: Video) -> str:
    """ThreatExchange's vPDQ signal string: a JSON list of ``hash,quality,timestamp``."""
    return json.dumps(
        [
            f"{row.tobytes().hex()},{q},{float(n)}"
            for n, (row, q) in enumerate(zip(video.frames, video.quality.tolist(), strict=True))
        ]
    )


def good_frames(value: VpdqHash) -> np.ndarray:
    """The frames vPDQ compares (distinct, quality >= 50), as FrameIndex takes them."""
    return _good_frames(value, MIN_QUALITY).view(np.uint8).reshape(-1, 32)


def build_hashguard(texts: Sequence[str]) -> FrameIndex:
    index = FrameIndex()
    index.add(np.arange(len(texts)), [good_frames(SIGNAL.parse(text)) for text in texts])
    return index


def build_threatexchange(entries: Sequence[tuple[str, int]]) -> VPDQIndex[int]:
    """The reference, from (signal string, id) of the videos with frames to compare (it refuses
    others)."""
    return VPDQIndex.build(
        entries,
        query_match_threshold_pct=PERCENT,
        index_match_threshold_pct=PERCENT,
    )


def query_hashguard(index: FrameIndex, values: Sequence[VpdqHash]) -> set[tuple[int, int]]:
    """Matches of query videos one call each: (query row, listed id)."""
    found: set[tuple[int, int]] = set()
    for row, value in enumerate(values):
        _, ids, query_percent, stored_percent = index.query([good_frames(value)], RADIUS)
        hits = ids[(query_percent >= PERCENT) & (stored_percent >= PERCENT)]
        found.update((row, int(i)) for i in hits)
    return found


def query_hashguard_batch(index: FrameIndex, values: Sequence[VpdqHash]) -> set[tuple[int, int]]:
    """Matches of all query videos in one call."""
    rows, ids, query_percent, stored_percent = index.query(
        [good_frames(value) for value in values], RADIUS
    )
    hit = (query_percent >= PERCENT) & (stored_percent >= PERCENT)
    return set(zip(rows[hit].tolist(), ids[hit].tolist(), strict=True))


def query_threatexchange(index: VPDQIndex[int], texts: Sequence[str]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for row, text in enumerate(texts):
        found.update((row, match.metadata) for match in index.query(text))
    return found


def matcher_on_sqlite(
    texts: Sequence[str], scratch: Path
) -> tuple[float, float, Matcher, dict[str, int]]:
    """A list of the listed videos in a SQLite ListStore and a Matcher on it: the seconds the
    import and the Matcher's load took, the Matcher, and each listed value's number."""
    store = ListStore(open_engine(f"sqlite:///{scratch / 'lists.db'}"))
    store.create("videos", "Hotline NL", Category.TEST)
    start = time.perf_counter()
    store.apply("videos", (Submission("vpdq", text) for text in texts))
    imported = time.perf_counter() - start
    start = time.perf_counter()
    matcher = Matcher(store, ["videos"])
    loaded = time.perf_counter() - start
    numbers = {SIGNAL.canonical(text): number for number, text in enumerate(texts)}
    return imported, loaded, matcher, numbers


def query_matcher(
    matcher: Matcher, numbers: dict[str, int], values: Sequence[VpdqHash]
) -> set[tuple[int, int]]:
    """Matches through ``Matcher.match_all``, a video per call (as a service asks)."""
    found: set[tuple[int, int]] = set()
    for row, value in enumerate(values):
        for match in matcher.match_all([Query.of([("vpdq", value)])])[0]:
            found.add((row, numbers[match.value]))
    return found


def truth(
    listed: Sequence[VpdqHash], values: Sequence[VpdqHash], rows: Sequence[int]
) -> set[tuple[int, int]]:
    """Brute force: query ``rows`` against every listed video by the pairwise vPDQ rule."""
    targets = [_good_frames(value, MIN_QUALITY) for value in listed]
    found: set[tuple[int, int]] = set()
    for row in rows:
        query = _good_frames(values[row], MIN_QUALITY)
        if not len(query):
            continue
        for number, target in enumerate(targets):
            if len(target):
                shares = _matched_percentages(query, target, RADIUS)
                if min(shares) >= PERCENT:
                    found.add((row, number))
    return found


def _grow(kind: str, path: str, send: Connection) -> None:
    with open(path, "rb") as saved:
        listed = pickle.load(saved)
    gc.collect()
    before = anonymous_resident()
    built = BUILDERS[kind](listed)
    gc.collect()
    send.send(anonymous_resident() - before)
    del built


BUILDERS: dict[str, Callable[[Sequence], object]] = {
    "hashguard": build_hashguard,
    "threatexchange": build_threatexchange,
}


def score(found: set[tuple[int, int]], expected: set[tuple[int, int]], rows: set[int]) -> str:
    """Recall and precision of ``found`` on the sampled ``rows``."""
    mine = {pair for pair in found if pair[0] in rows}
    expected = {pair for pair in expected if pair[0] in rows}
    right = len(mine & expected)
    recall = right / len(expected) if expected else 1.0
    precision = right / len(mine) if mine else 1.0
    return f"{100 * recall:.1f} % / {100 * precision:.1f} %"


def found_of(found: set[tuple[int, int]], right: set[tuple[int, int]], rows: set[int]) -> str:
    """How many of the ``right`` matches of ``rows`` were found, and how many wrong ones."""
    mine = {pair for pair in found if pair[0] in rows}
    return f"{len(mine & right)} found, {len(mine - right)} wrong"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listed", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sample", type=int, default=60, help="queries checked by brute force")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    pin(1)
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(options.seed)

    start = time.perf_counter()
    base = pool(POOL_SCENES, None)
    listed = generate(options.listed, rng, base)
    query_videos, kinds = queries(listed, options.queries, rng, base)
    hg_texts = [hashguard_text(video) for video in listed]
    te_texts = [threatexchange_text(video) for video in listed]
    query_values = [SIGNAL.parse(hashguard_text(video)) for video in query_videos]
    query_te = [threatexchange_text(video) for video in query_videos]
    listed_values = [SIGNAL.parse(text) for text in hg_texts]
    good = [len(_good_frames(value, MIN_QUALITY)) for value in listed_values]
    frames = sum(len(video.frames) for video in listed)
    query_frames = sum(len(good_frames(value)) for value in query_values)
    print(
        f"generated in {time.perf_counter() - start:.0f} s: {len(listed):,} listed videos, "
        f"{frames:,} frames ({frames / len(listed):.0f} s mean), {sum(good):,} distinct of "
        f"quality >= {MIN_QUALITY} (indexed); {len(query_videos)} query videos, "
        f"{query_frames:,} such frames; {good.count(0)} listed videos have none",
        flush=True,
    )

    te_entries = [(text, n) for n, text in enumerate(te_texts) if good[n]]
    te_build, te_index = timed(lambda: build_threatexchange(te_entries))
    assert isinstance(te_index, VPDQIndex)
    query_threatexchange(te_index, query_te[:2])
    te_time, te_found = timed(lambda: query_threatexchange(te_index, query_te))
    assert isinstance(te_found, set)
    print(f"ThreatExchange: built in {te_build:.1f} s, {len(query_te) / te_time:.1f} videos/s")

    hg_build, hg_index = timed(lambda: build_hashguard(hg_texts))
    assert isinstance(hg_index, FrameIndex)
    hg_index.query([good_frames(query_values[0])], RADIUS)  # compile or load the kernels
    hg_time, hg_found = timed(lambda: query_hashguard(hg_index, query_values), repeat=2)
    batch_time, batch_found = timed(lambda: query_hashguard_batch(hg_index, query_values), 2)
    assert isinstance(hg_found, set) and isinstance(batch_found, set)
    print(f"hashguard: built in {hg_build:.1f} s, {len(query_values) / hg_time:.1f} videos/s")

    listable = registry.get("vpdq").listable
    with tempfile.TemporaryDirectory() as scratch:
        if listable:
            imported, loaded, matcher, numbers = matcher_on_sqlite(hg_texts, Path(scratch))
            query_matcher(matcher, numbers, query_values[:2])
            matcher_time, matcher_found = timed(
                lambda: query_matcher(matcher, numbers, query_values), repeat=2
            )
            assert isinstance(matcher_found, set)
            matcher.close()
            print(
                f"Matcher on SQLite: import {imported:.1f} s, load {loaded:.1f} s, "
                f"{len(query_values) / matcher_time:.1f} videos/s",
                flush=True,
            )
        memory = {}
        for kind, given in (("threatexchange", te_entries), ("hashguard", hg_texts)):
            path = Path(scratch) / f"{kind}.pickle"
            path.write_bytes(pickle.dumps(given))
            memory[kind] = growth(kind, path, _grow)

    sample = sorted(rng.choice(len(query_values), min(options.sample, len(query_values)), False))
    start = time.perf_counter()
    expected = truth(listed_values, query_values, sample)
    print(f"brute-force truth for {len(sample)} queries: {time.perf_counter() - start:.0f} s")
    rows = set(sample)

    count = len(query_values)
    indexed = sum(good)

    def row(name: str, build: str, grown: int | None, seconds: float, found: set) -> list[str]:
        return [
            name,
            build,
            "" if grown is None else f"{grown / indexed:.0f}",
            f"{count / seconds:,.1f}",
            f"{query_frames / seconds:,.0f}",
            f"{te_time / seconds:.1f}x",
            score(found, expected, rows),
        ]

    table(
        [
            "index (one core)",
            "build s",
            "bytes/frame",
            "videos/s",
            "frames/s",
            "vs ref",
            "recall / precision",
        ],
        [
            row(
                "ThreatExchange VPDQIndex (faiss flat)",
                f"{te_build:.1f}",
                memory["threatexchange"],
                te_time,
                te_found,
            ),
            row(
                "hashguard FrameIndex, a video per call",
                f"{hg_build:.1f}",
                memory["hashguard"],
                hg_time,
                hg_found,
            ),
            row("hashguard FrameIndex, one call for all", "", None, batch_time, batch_found),
        ]
        + (
            [
                row(
                    "hashguard Matcher.match_all (SQLite list), a video per call",
                    f"{imported:.1f} + {loaded:.1f}",
                    None,
                    matcher_time,
                    matcher_found,
                )
            ]
            if listable
            else []
        ),
    )

    by_kind = []
    for kind in KINDS:
        mine = {r for r in rows if kinds[r] == kind}
        right = {pair for pair in expected if pair[0] in mine}
        by_kind.append(
            [kind, str(len(mine)), str(len(right))]
            + [found_of(found, right, mine) for found in (te_found, hg_found)]
        )
    table(["sampled queries", "count", "matches (truth)", "reference", "hashguard"], by_kind)
    same = hg_found == te_found == batch_found and (not listable or matcher_found == hg_found)
    print(
        f"\nOn all {count} queries hashguard and the reference return "
        f"{'the same' if same else 'DIFFERENT'} matches ({len(hg_found)} and {len(te_found)}). "
        f"The reference's defaults: query {VPDQ_QUERY_MATCH_THRESHOLD_PERCENT:g} %, listed "
        f"video {VPDQ_INDEX_MATCH_THRESHOLD_PERCENT:g} % (both set to {PERCENT:g} here). "
        f"Bytes/frame: resident memory the built index adds, per indexed frame ({indexed:,})."
    )


if __name__ == "__main__":
    main()
