"""Signed releases in a transparency log: a valid release verifies, and every kind of tampering
is caught with a message that says what failed."""

import json
import shutil
from pathlib import Path

import pytest

from hashguard.lists import keys, merkle
from hashguard.lists.model import Category, ChangeKind, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.lists.release import ReleaseError, build, verify
from hashguard.lists.transparency import TransparencyLog, TreeHead, canonical
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from invoke import hashguard

NL = Provenance("Offlimits", "", (Source("Offlimits", "NL"),))


def pdq(n: int) -> str:
    return f"{n * 7919:064x}"


@pytest.fixture
def released(tmp_path: Path, database_url: str):
    """A list with two releases in one log: (store, owner key path, log, release 1, release 2)."""
    store = ListStore(open_engine(database_url))
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n), frozenset({"A1"}), NL) for n in range(50)])
    store.apply("known", [Submission("md5", f"{n:032x}") for n in range(5)])
    key_path = tmp_path / "owner.key"
    keys.generate(key_path)
    keys.generate(tmp_path / "log.key")
    log_key = keys.load(tmp_path / "log.key")
    log = TransparencyLog.create_or_open(tmp_path / "log", log_key)
    owner = keys.load(key_path)
    hash_list, entries = store.entries("known")
    build(hash_list, entries, owner, log, log_key, tmp_path / "r1")
    store.change("known", ChangeKind.DELIST, "pdq", pdq(3), "appeal upheld")
    hash_list, entries = store.entries("known")
    build(hash_list, entries, owner, log, log_key, tmp_path / "r2")
    yield store, key_path, log, tmp_path / "r1", tmp_path / "r2"
    store.engine.dispose()


def test_valid_releases_verify_with_what_they_prove(released) -> None:
    _, key_path, log, first, second = released
    owner = keys.read_public(key_path.with_name("owner.key.pub"))
    result = verify(second, log, owner_key=owner)
    assert (result.list_name, result.version, result.entries) == ("known", 56, 54)
    assert result.log_index == 1 and result.log_size == 2
    manifest = json.loads((second / "manifest.json").read_bytes())
    assert manifest["counts"] == {
        "signal": {"md5": 5, "pdq": 49},
        "source": {"(no source)": 5, "Offlimits": 49},
    }
    old_head = TreeHead.from_json(
        json.loads((log.directory / "heads/00000001.json").read_bytes()), "h"
    )
    assert verify(first, log, known_head=old_head).log_size == 2


def edit_line(path: Path, number: int, new: bytes | None) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    if new is None:
        del lines[number]
    else:
        lines.insert(number, new)
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda r: edit_line(r / "entries.jsonl", 3, b'["pdq","' + b"ab" * 32 + b'",[]]\n'),
            "55 entries, the manifest says 54",
        ),
        (lambda r: edit_line(r / "entries.jsonl", 3, None), "53 entries, the manifest says 54"),
        (
            lambda r: (r / "entries.jsonl").write_bytes(
                (r / "entries.jsonl").read_bytes().replace(b'"A1"', b'"A2"', 1)
            ),
            "do not give the manifest's Merkle root",
        ),
        (
            lambda r: (r / "manifest.json").write_bytes(
                (r / "manifest.json").read_bytes().replace(b'"version":56', b'"version":57')
            ),
            "signature does not match the manifest",
        ),
        (
            lambda r: (r / "manifest.json").write_bytes(
                (r / "manifest.json").read_bytes().replace(b'","', b'", "', 1)
            ),
            "not in canonical form",
        ),
        (
            lambda r: (r / "log.json").write_bytes(
                (r / "log.json").read_bytes().replace(b'"index":1', b'"index":0')
            ),
            "not in the log at index 0",
        ),
    ],
)
def test_tampered_releases_are_refused(released, tamper, message) -> None:
    *_, log, _, second = released
    tamper(second)
    with pytest.raises(ReleaseError, match=message):
        verify(second, log)


def test_a_release_resigned_by_another_key_is_caught(released, tmp_path) -> None:
    _, key_path, log, _, second = released
    other = tmp_path / "other.key"
    keys.generate(other)
    manifest = json.loads((second / "manifest.json").read_bytes())
    manifest["owner_key"] = keys.public_hex(keys.load(other))
    body = canonical(manifest)
    (second / "manifest.json").write_bytes(body)
    (second / "manifest.sig").write_text(keys.sign(keys.load(other), body))
    owner = keys.read_public(key_path.with_name("owner.key.pub"))
    with pytest.raises(ReleaseError, match="not the pinned owner key"):
        verify(second, log, owner_key=owner)
    with pytest.raises(ReleaseError, match="not in the log"):
        verify(second, log)  # the log holds the genuine manifest, not this one


def test_rewritten_or_forked_logs_are_caught(released, tmp_path) -> None:
    store, key_path, log, _, second = released
    known = TreeHead.from_json(
        json.loads((log.directory / "heads/00000002.json").read_bytes()), "h"
    )
    # The log operator (who holds the log key) rewrites history: record 0 changes.
    forked = TransparencyLog(tmp_path / "forked")
    shutil.copytree(log.directory, forked.directory)
    record = json.loads(forked.record(0))
    record["manifest"]["entries"] = 49
    (forked.directory / "records/00000000").write_bytes(canonical(record))
    with pytest.raises(ReleaseError, match="records do not give its signed tree head"):
        verify(second, forked)
    log_key = keys.load(tmp_path / "log.key")
    for head_file in sorted((forked.directory / "heads").glob("*.json")):
        size = int(head_file.stem)
        head = TreeHead(size, merkle.root(forked.leaves()[:size]), "2026-01-01T00:00:00+00:00", "")
        head = TreeHead(size, head.root, head.timestamp, keys.sign(log_key, head.signed_bytes()))
        head_file.write_bytes(canonical(head.as_json()))
    with pytest.raises(ReleaseError, match="not an append-only extension of the release's"):
        verify(second, forked)  # its tree head, signed before the rewrite, no longer fits
    # A release made on the forked log looks fine to a reader who only sees that log...
    hash_list, entries = store.entries("known")
    build(hash_list, entries, keys.load(key_path), forked, log_key, tmp_path / "r3")
    assert verify(tmp_path / "r3", forked).log_size == 3
    # ...but not to one who saw the genuine log's tree head before.
    with pytest.raises(ReleaseError, match=r"not an append-only extension of the known tree head"):
        verify(tmp_path / "r3", forked, known_head=known)


def test_tree_heads_not_signed_by_the_log_are_caught(released) -> None:
    *_, log, _, second = released
    located = json.loads((second / "log.json").read_bytes())
    located["head"]["timestamp"] = "2030-01-01T00:00:00+00:00"
    (second / "log.json").write_bytes(canonical(located))
    with pytest.raises(ReleaseError, match="the release's tree head is not signed by the log key"):
        verify(second, log)


def test_cli_verify_exit_status_and_reason(released, tmp_path) -> None:
    _, key_path, log, first, _ = released
    command = ["lists", "verify", str(first), "--log", str(log.directory)]
    ok = hashguard(*command, "--owner-key", f"{key_path}.pub")
    assert ok.returncode == 0, ok.stderr
    assert "--log-key not given" in ok.stderr and "--owner-key not given" not in ok.stderr
    assert ok.stdout.startswith(f"{first}: valid release of known version 55")
    edit_line(first / "entries.jsonl", 0, None)
    bad = hashguard(*command)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith(f"hashguard: {first}: NOT VALID: ")
    assert "54 entries, the manifest says 55 (tampered)" in bad.stderr


def test_malformed_release_files_fail_with_a_message(released) -> None:
    *_, log, _, second = released
    edit_line(second / "entries.jsonl", 0, b"5\n")
    with pytest.raises(ReleaseError, match=r"entries\.jsonl:1: not an entry"):
        verify(second, log)
    (second / "manifest.json").write_bytes(b"[]")
    with pytest.raises(ReleaseError, match="malformed release"):
        verify(second, log)


def test_the_published_log_holds_no_private_key(released) -> None:
    *_, log, _, _ = released
    published = [p.read_bytes() for p in log.directory.rglob("*") if p.is_file()]
    assert published and not any(b"PRIVATE KEY" in data for data in published)
    assert (log.directory / "log.pub").read_text().strip() == log.public_key()


def test_a_rolled_back_log_is_named(released) -> None:
    *_, log, _, second = released
    (log.directory / "heads/00000002.json").unlink()
    (log.directory / "records/00000001").unlink()
    with pytest.raises(ReleaseError, match="the log shrank"):
        verify(second, log)
