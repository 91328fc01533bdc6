"""An entry measured as unstable (below its signal's ``min_stability``) is noise: the Matcher,
releases and everything else that asks ``Entry.matchable`` leave it out, and take it in once it
is measured stable; entries listed as hashes (no stability) match as before. On SQLite and
PostgreSQL."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.lists.model import Category, ChangeKind
from hashguard.lists.records import Submission
from hashguard.lists.release import ENTRIES, ReleaseError, build, verify
from hashguard.matching import Matcher
from hashguard.matching.query import Query
from hashguard.signals import registry
from hashguard.signals.pdq import PdqHash
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys
from hashguard.transparency.log import TransparencyLog

FLOOR = 50
UNSTABLE, STABLE, HASH_ONLY = ("1f" * 32, "2e" * 32, "3d" * 32)


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ListStore]:
    """A list of an unstable, a stable and an unmeasured PDQ value, PDQ's floor at 50."""
    monkeypatch.setattr(registry.get("pdq"), "min_stability", FLOOR)
    engine = open_engine(database_url)
    store = ListStore(engine)
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", UNSTABLE, stability=FLOOR - 1),
                          Submission("pdq", STABLE, stability=FLOOR),
                          Submission("pdq", HASH_ONLY)])  # fmt: skip
    yield store
    engine.dispose()


def _keys_and_log(tmp_path: Path) -> tuple[Ed25519PrivateKey, TransparencyLog, Ed25519PrivateKey]:
    """An owner key, and a transparency log with its key, in ``tmp_path``."""
    keys.generate(tmp_path / "owner.key")
    keys.generate(tmp_path / "log.key")
    log_key = keys.load(tmp_path / "log.key")
    return (
        keys.load(tmp_path / "owner.key"),
        TransparencyLog.create_or_open(tmp_path / "log", log_key),
        log_key,
    )


def _matched(matcher: Matcher, value: str) -> bool:
    return bool(matcher.match(Query.of([("pdq", PdqHash(bytes.fromhex(value), 100))])))


def test_the_matcher_leaves_unstable_entries_out_until_measured_stable(store: ListStore) -> None:
    matcher = Matcher(store, ["known"])
    assert [_matched(matcher, v) for v in (UNSTABLE, STABLE, HASH_ONLY)] == [False, True, True]
    store.apply("known", [Submission("pdq", UNSTABLE, stability=FLOOR + 10)])  # measured again
    store.apply("known", [Submission("pdq", STABLE, stability=3)])
    assert matcher.refresh() == 2
    assert [_matched(matcher, v) for v in (UNSTABLE, STABLE, HASH_ONLY)] == [True, False, True]
    assert [_matched(Matcher(store, ["known"]), v) for v in (UNSTABLE, STABLE)] == [True, False]


def test_the_matchers_own_floor_holds_for_entries_as_for_queries(store: ListStore) -> None:
    off = Matcher(store, ["known"], min_stability=0)  # ``serve --min-stability 0``
    assert [_matched(off, v) for v in (UNSTABLE, STABLE, HASH_ONLY)] == [True, True, True]
    strict = Matcher(store, ["known"], min_stability=FLOOR + 1)
    assert [_matched(strict, v) for v in (UNSTABLE, STABLE, HASH_ONLY)] == [False, False, True]
    store.apply("known", [Submission("pdq", UNSTABLE, stability=FLOOR + 10)])
    assert strict.refresh() == 1 and _matched(strict, UNSTABLE)


def test_a_release_leaves_unstable_entries_out_and_signs_the_stability(
    store: ListStore, tmp_path: Path
) -> None:
    owner_key, log, log_key = _keys_and_log(tmp_path)
    hash_list, entries = store.entries("known")
    build(hash_list, entries, owner_key, log, log_key, tmp_path / "r")
    lines = [json.loads(line) for line in (tmp_path / "r" / ENTRIES).read_text().splitlines()]
    assert lines == [["pdq", STABLE, [], FLOOR], ["pdq", HASH_ONLY, []]]
    assert verify(tmp_path / "r", log).entries == 2


def test_a_tampered_stability_does_not_verify(store: ListStore, tmp_path: Path) -> None:
    owner_key, log, log_key = _keys_and_log(tmp_path)
    store.change("known", ChangeKind.DELIST, "pdq", HASH_ONLY, "only the stable one")
    hash_list, entries = store.entries("known")
    build(hash_list, entries, owner_key, log, log_key, tmp_path / "r")
    path = tmp_path / "r" / ENTRIES
    for tampered in (f'["pdq","{STABLE}",[],{FLOOR + 1}]', f'["pdq","{STABLE}",[],"50"]',
                     f'["pdq","{STABLE}",[],50,1]'):  # fmt: skip
        path.write_text(tampered + "\n")
        with pytest.raises(ReleaseError, match="tampered"):
            verify(tmp_path / "r", log)


def test_releases_of_format_1_still_verify_and_hold_no_stability(
    store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release made before stabilities (format /1) verifies with this version; a /1 release
    whose leaves carry one is not what /1 defines."""
    from hashguard.lists import release

    owner_key, log, log_key = _keys_and_log(tmp_path)
    hash_list, streamed = store.entries("known")
    entries = list(streamed)
    with monkeypatch.context() as patch:
        patch.setattr(release, "FORMAT", "hashguard-release/1")
        build(hash_list, [e for e in entries if e.stability is None], owner_key, log, log_key,
              tmp_path / "old")  # fmt: skip
        build(hash_list, entries, owner_key, log, log_key, tmp_path / "wrong")
    assert json.loads((tmp_path / "old" / "manifest.json").read_text())["format"].endswith("/1")
    assert verify(tmp_path / "old", log).entries == 1
    with pytest.raises(ReleaseError, match="not an entry"):
        verify(tmp_path / "wrong", log)
    build(hash_list, entries, owner_key, log, log_key, tmp_path / "new")  # after /1 ones
    assert json.loads((tmp_path / "new" / "manifest.json").read_text())["format"].endswith("/2")
    assert verify(tmp_path / "new", log).entries == 2
    (tmp_path / "alien").mkdir()
    for name in ("manifest.json", "manifest.sig", "log.json", ENTRIES):
        text = (tmp_path / "new" / name).read_text()
        (tmp_path / "alien" / name).write_text(text.replace("hashguard-release/2", "x/9"))
    with pytest.raises(ReleaseError, match="format 'x/9', this version of hashguard reads"):
        verify(tmp_path / "alien", log)


def test_a_parity_hash_is_degenerate_and_matches_nothing(store: ListStore, tmp_path: Path) -> None:
    """A regular pattern can hash to PDQ's parity value whatever it shows: such a value is
    held but neither matched (as an entry or as a query) nor released; generated scenes and
    documents are never near it."""
    import numpy as np
    from PIL import Image

    from hashguard.media import synthetic
    from hashguard.signals.pdq import PARITY_HASHES

    pdq = registry.get("pdq")
    parity, near = PARITY_HASHES[0], f"{int(PARITY_HASHES[1], 16) ^ (2**31 - 1):064x}"
    assert pdq.degenerate(parity) and pdq.degenerate(near)  # 31 bits off the other one
    boards = [synthetic.encode(synthetic.pattern(seed), "BMP") for seed in range(40)]
    assert any(pdq.degenerate(pdq.hash(board)) for board in boards)
    # Checkerboards whose cells are cut at the top edge fold onto another parity value.
    ys, xs = np.ogrid[0:1000, 0:1000]
    for cell in (48, 32):
        on = ((xs // cell) + ((ys + cell // 2) // cell)) % 2 == 1
        board = Image.fromarray(np.where(on, 255, 0).astype(np.uint8)).convert("RGB")
        value = pdq.hash(synthetic.encode(board, "PNG"))
        assert value.quality == 100 and value.stability == 100 and pdq.degenerate(value)
    for seed in range(10):
        assert not pdq.degenerate(pdq.hash(synthetic.encode(synthetic.scene(seed), "PNG")))
        assert not pdq.degenerate(pdq.hash(synthetic.encode(synthetic.document(seed), "PNG")))
    store.apply("known", [Submission("pdq", parity)])
    matcher = Matcher(store, ["known"])
    assert not _matched(matcher, parity) and _matched(matcher, STABLE)
    owner_key, log, log_key = _keys_and_log(tmp_path)
    hash_list, entries = store.entries("known")
    build(hash_list, entries, owner_key, log, log_key, tmp_path / "r")
    released = (tmp_path / "r" / ENTRIES).read_text()
    assert parity not in released and STABLE in released
