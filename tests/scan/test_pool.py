"""The scan's local engine: a worker process that dies (a decoder fault) does not end the scan;
only the file that crashes its decoder, again when alone, becomes an error row, with the
hashes of the signals that do not crash; every other file gets its row as in this process. A
file that runs short of memory once is hashed again alone, and gets its row as usual; one
that always does is the only error row, in a worker or in this process (``workers=0``)."""

import os
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hashguard.matching import Matcher
from hashguard.media.limits import DEFAULT_LIMITS
from hashguard.scan.pool import scan_locally
from hashguard.scan.source import open_source
from hashguard.scan.work import ScanSettings
from hashguard.signals import batch
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.media import jpeg
from support.scan_corpus import LIST, make_corpus

CRASH = b"kills-the-decoder"
SHORT = b"short-of-memory"
real_hash_variants = batch.hash_variants


def crashing_hash_variants(
    source: Any, families: frozenset[str], limits: Any = DEFAULT_LIMITS
) -> Any:
    if isinstance(source, bytes) and source.endswith(CRASH):
        os._exit(3)  # what a decoder fault does to its process
    return real_hash_variants(source, families, limits)


def short_of_memory_once(
    once: Path, source: Any, families: frozenset[str], limits: Any = DEFAULT_LIMITS
) -> Any:
    if isinstance(source, bytes) and source.endswith(SHORT) and not once.exists():
        once.touch()
        raise MemoryError  # its neighbours' decoding held the memory, this time
    return real_hash_variants(source, families, limits)


def _scan(root: Path, matcher: Matcher, workers: int) -> tuple[list[int], pa.Table]:
    settings = ScanSettings(matcher.variant_families(), matcher.versions())
    files = list(open_source(str(root)).files())
    parts = [(n, files[start : start + 8]) for n, start in enumerate(range(0, len(files), 8))]
    found = list(scan_locally(parts, open_source(str(root)).reader, matcher, settings, workers))
    return [n for n, _ in found], pa.concat_tables(rows for _, rows in found)


def test_a_file_that_kills_its_worker_is_the_only_error_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path, 40, planted=4)
    # A JPEG that decodes (the bytes after its end are ignored) but kills PDQ's decoder.
    (corpus.root / "02" / "file-crash.jpg").write_bytes(jpeg(7, 96, 64) + CRASH)
    engine = open_engine(corpus.database_url)
    matcher = Matcher(ListStore(engine), [LIST])
    engine.dispose()
    _, reference = _scan(corpus.root, matcher, 0)
    monkeypatch.setattr(batch, "hash_variants", crashing_hash_variants)
    order, rows = _scan(corpus.root, matcher, 2)
    assert order == list(range(6))  # every part, once, none lost with the worker
    expected = {row["key"]: row for row in reference.to_pylist()}
    found = {row["key"]: row for row in rows.to_pylist()}
    crashed = found.pop("02/file-crash.jpg")
    assert found == {k: v for k, v in expected.items() if k != "02/file-crash.jpg"}
    assert sum(1 for row in found.values() if row["matches"]) == len(corpus.planted)
    assert crashed["error_kind"] == "crashed"
    assert crashed["error"] == "the decoder process crashed on this file (pdq)"
    assert crashed["pdq"] is None and crashed["matches"] == []
    alone = expected["02/file-crash.jpg"]
    assert alone["pdq"] and alone["error"] is None  # in this process, before the fault
    digests = ("sha256", "md5", "sha1")
    assert [crashed[d] for d in digests] == [alone[d] for d in digests]


def test_a_file_short_of_memory_once_gets_its_row_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path, 12, planted=0)
    (corpus.root / "01" / "file-short.jpg").write_bytes(jpeg(8, 96, 64) + SHORT)
    engine = open_engine(corpus.database_url)
    matcher = Matcher(ListStore(engine), [LIST])
    engine.dispose()
    once = tmp_path / "short-once"
    monkeypatch.setattr(batch, "hash_variants", partial(short_of_memory_once, once))
    order, rows = _scan(corpus.root, matcher, 2)
    assert once.exists() and order == [0, 1]
    row = {row["key"]: row for row in rows.to_pylist()}["01/file-short.jpg"]
    assert row["error"] is None and row["pdq"] and row["sha256"]
    once.unlink()  # in this process (--workers 0): hashed again there
    order, rows = _scan(corpus.root, matcher, 0)
    assert once.exists() and order == [0, 1]
    assert {row["key"]: row for row in rows.to_pylist()}["01/file-short.jpg"] == row


def always_short_of_memory(
    source: Any, families: frozenset[str], limits: Any = DEFAULT_LIMITS
) -> Any:
    if isinstance(source, bytes) and source.endswith(SHORT):
        raise MemoryError  # too large to decode, in any process
    return real_hash_variants(source, families, limits)


def test_a_file_always_short_of_memory_is_the_only_error_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process (--workers 0) as in a worker: the scan goes on, the file's row says
    which signal ran out of memory, with the hashes of the others."""
    corpus = make_corpus(tmp_path, 12, planted=0)
    (corpus.root / "01" / "file-short.jpg").write_bytes(jpeg(8, 96, 64) + SHORT)
    engine = open_engine(corpus.database_url)
    matcher = Matcher(ListStore(engine), [LIST])
    engine.dispose()
    _, reference = _scan(corpus.root, matcher, 0)
    monkeypatch.setattr(batch, "hash_variants", always_short_of_memory)
    expected = {row["key"]: row for row in reference.to_pylist()}
    for workers in (0, 2):
        order, rows = _scan(corpus.root, matcher, workers)
        assert order == [0, 1]
        found = {row["key"]: row for row in rows.to_pylist()}
        short = found.pop("01/file-short.jpg")
        assert found == {k: v for k, v in expected.items() if k != "01/file-short.jpg"}
        assert short["error_kind"] == "out of memory"
        assert short["error"] == "out of memory while hashing this file (pdq)"
        assert short["pdq"] is None
        digests = ("sha256", "md5", "sha1")
        assert [short[d] for d in digests] == [expected["01/file-short.jpg"][d] for d in digests]
