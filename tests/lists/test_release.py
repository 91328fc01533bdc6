"""Signed releases in a transparency log: a valid release verifies, and every kind of tampering
is caught with a message that says what failed."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import typer

from hashguard.cli import app
from hashguard.lists.model import Category, ChangeKind, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.lists.release import ReleaseError, build, verify
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys, merkle
from hashguard.transparency.log import LogError, TransparencyLog, TreeHead, canonical

from support.invoke import hashguard

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


def test_the_next_release_holds_a_reinstated_entry_again(released, tmp_path) -> None:
    store, key_path, log, _first, second = released
    store.change("known", ChangeKind.REINSTATE, "pdq", pdq(3), "appeal overturned", "owner")
    log_key = keys.load(tmp_path / "log.key")
    hash_list, entries = store.entries("known")
    build(hash_list, entries, keys.load(key_path), log, log_key, tmp_path / "r3")
    result = verify(tmp_path / "r3", log)
    assert (result.version, result.entries) == (57, 55)

    def released_values(release: Path) -> set[str]:
        lines = (release / "entries.jsonl").read_text().splitlines()
        return {json.loads(line)[1] for line in lines}  # [signal, value, labels]

    assert pdq(3) not in released_values(second)
    assert released_values(tmp_path / "r3") == released_values(second) | {pdq(3)}


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


def test_cli_verify_blames_the_input_that_is_wrong(released, tmp_path) -> None:
    """A missing head file or the wrong key file is the verifier's input, not a bad release."""
    _, key_path, log, first, _ = released
    command = ["lists", "verify", str(first), "--log", str(log.directory)]
    missing = hashguard(*command, "--known-head", str(tmp_path / "missing.json"))
    assert missing.returncode == 1 and "NOT VALID" not in missing.stderr
    assert missing.stderr.startswith(f"hashguard: {tmp_path / 'missing.json'}: cannot read: No ")
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000)  # deeper than the JSON parser goes
    nested = hashguard(*command, "--known-head", str(deep))
    assert nested.returncode == 1 and "NOT VALID" not in nested.stderr
    assert nested.stderr.startswith(f"hashguard: {deep}: not a tree head (not JSON: ")
    wrong = hashguard(*command, "--log-key", f"{key_path}.pub")  # the owner's key, not the log's
    assert wrong.returncode == 1
    assert "is not the key this log is signed with" in wrong.stderr
    assert "tampered" not in wrong.stderr


def test_malformed_release_files_fail_with_a_message(released) -> None:
    *_, log, _, second = released
    edit_line(second / "entries.jsonl", 0, b"5\n")
    with pytest.raises(ReleaseError, match=r"entries\.jsonl:1: not an entry"):
        verify(second, log)
    (second / "manifest.json").write_bytes(b"[]")
    with pytest.raises(ReleaseError, match="malformed release"):
        verify(second, log)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("manifest.json", b"[" * 100_000),  # deeper than the JSON parser goes
        ("log.json", b"[" * 100_000),
        ("log.json", b'{"index": 1e400, "head": {}, "inclusion": []}'),
        ("manifest.json", None),  # the manifest's version made 1e400 (before its signature)
    ],
)
def test_a_downloaded_release_of_any_bytes_is_refused_with_a_message(
    released, name: str, body: bytes | None
) -> None:
    *_, log, _, second = released
    path = second / name
    path.write_bytes(body if body is not None else
                     re.sub(rb'"version":\d+', b'"version":1e400', path.read_bytes()))  # fmt: skip
    with pytest.raises(ReleaseError, match="malformed release"):
        verify(second, log)


def test_a_log_head_of_any_bytes_is_refused_with_a_message(released) -> None:
    *_, log, _, _second = released
    newest = sorted((log.directory / "heads").glob("*.json"))[-1]
    for body, said in [(b"[" * 100_000, "unreadable tree head"),
                       (b'{"size": 1e400, "root": "", "timestamp": "", "signature": ""}',
                        "not a signed tree head")]:  # fmt: skip
        newest.write_bytes(body)
        with pytest.raises(LogError, match=said):
            log.head()


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


# --- a crash at any step of a release ----------------------------------------------------------

_COMMAND = typer.main.get_command(app)  # made once: typer takes longer to make it than a release

_STEPS = ("open", "replace", "rename", "link", "fsync", "mkdir", "unlink", "rmdir", "chmod")


def _crashing_at(step: int, inside: Path) -> None:
    """Make this process die (as by SIGKILL: no cleanup, no buffers flushed) at its ``step``-th
    file-system call: every fsync, every file object opened on a descriptor, and every open,
    rename, link, mkdir, unlink and chmod of a path in ``inside``."""
    import builtins
    import io

    calls = 0

    def counted(function, checks_path: bool):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            paths = [*args[:1], *(a for a in args[1:2] if isinstance(a, str | Path))]
            if not checks_path or any(  # a descriptor: a file made in ``inside``, opened
                isinstance(p, int) or str(p).startswith(str(inside)) for p in paths
            ):
                calls += 1
                if calls == step:
                    os._exit(137)
            return function(*args, **kwargs)

        return call

    for name in _STEPS:
        setattr(os, name, counted(getattr(os, name), checks_path=name != "fsync"))
    builtins.open = io.open = counted(io.open, checks_path=True)


def _hashguard(arguments: list[str]) -> int:
    """``hashguard ARGUMENTS`` in this process: its exit status (its output on stdout and
    stderr, as from the command)."""
    try:
        status = _COMMAND.main(arguments, prog_name="hashguard", standalone_mode=False)
    except SystemExit as exit:
        status = exit.code
    return int(status or 0)


def _release_in_child(step: int, run: Path, arguments: list[str]) -> int:
    """The exit status of ``hashguard ARGUMENTS`` run in a forked child that dies at ``step``."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        try:
            _crashing_at(step, run)
            os._exit(_hashguard(arguments))
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_crash_at_any_step_of_a_release_leaves_it_whole_or_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed at any step of the first release of a new log, ``lists release`` leaves the release
    directory absent or complete and valid, the log key absent or whole, and the next release
    succeeds, verifies and is the log's only record."""
    # What a killed process wrote stays in the page cache: flushing it to disk, slow here, is
    # for power failures. Each fsync still counts as a step.
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)
    url = f"sqlite:///{tmp_path / 'hashguard.db'}"
    store = ListStore(open_engine(url))
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n), frozenset({"A1"}), NL) for n in range(20)])
    store.engine.dispose()
    keys.generate(tmp_path / "owner.key")
    step = 0
    while True:
        step += 1
        run = tmp_path / f"run{step}"
        run.mkdir()
        release = ["lists", "release", "known", "--key", str(tmp_path / "owner.key"), "--log",
                   str(run / "tlog"), "--out", str(run / "out"), "--database-url", url]  # fmt: skip
        verify = ["lists", "verify", str(run / "out"), "--log", str(run / "tlog")]
        status = _release_in_child(step, run, release)
        if status == 0:
            break  # the release finished before its step-th call
        assert status == 137, f"step {step}: exit status {status}"
        published = (run / "out").exists()
        if published:
            assert _hashguard(verify) == 0, f"step {step}: a torn release"
        if (run / "tlog.key").exists():
            keys.load(run / "tlog.key")
        assert _hashguard(release) == 0, f"step {step}: the next release failed"
        assert _hashguard(verify) == 0, f"step {step}: the next release does not verify"
        # A release the killed run logged but did not put in place is put in place, not logged
        # again; nothing the killed run wrote aside is left.
        logged = TransparencyLog(run / "tlog").size()
        assert logged == (2 if published else 1), f"step {step}: {logged} records"
        assert not list(run.rglob("*.tmp")), f"step {step}: {list(run.rglob('*.tmp'))}"
        shutil.rmtree(run)
    assert step > 10  # the steps were counted: a release takes more than a few
    assert _hashguard(verify) == 0


def test_a_release_logged_by_a_killed_run_is_put_in_place_by_the_next_not_logged_again(
    released, tmp_path: Path
) -> None:
    """What a run killed after logging its release leaves (the release assembled aside, its
    signed manifest saved there): the next release of that list into the same directory puts
    that one in place; a release of another list there does not take it for its own."""
    store, key_path, log, r1, _ = released
    out = tmp_path / "out"
    aside = out.with_name(".out.building")
    shutil.copytree(r1, aside)
    (aside / "log.json").unlink()  # written only once the record's place is known
    size = log.size()
    log_key = keys.load(tmp_path / "log.key")
    hash_list, entries = store.entries("known")
    entries = list(entries)  # not read when the release is found aside: no cursor left open
    manifest, index, head = build(hash_list, entries, keys.load(key_path), log, log_key, out)
    assert (index, log.size(), head.size) == (0, size, size)  # release 1 again, not logged
    assert (out / "manifest.json").read_bytes() == (r1 / "manifest.json").read_bytes()
    assert verify(out, log).version == manifest["version"]
    assert not aside.exists()

    store.create("other", "Offlimits", Category.KNOWN_CSAM)
    store.apply("other", [Submission("md5", f"{n:032x}") for n in range(3)])
    shutil.copytree(r1, aside)
    other, entries = store.entries("other")
    manifest, index, _ = build(other, entries, keys.load(key_path), log, log_key, out)
    assert (manifest["list"], index, log.size()) == ("other", size, size + 1)
    assert verify(out, log).list_name == "other"


def test_a_torn_key_from_an_old_crash_is_named(tmp_path: Path) -> None:
    keys.generate(tmp_path / "whole.key")
    pem = (tmp_path / "whole.key").read_bytes()
    (tmp_path / "tlog.key").write_bytes(pem[: len(pem) // 2])
    with pytest.raises(keys.KeyFileError, match=r"tlog\.key: not a whole PEM private key .*cut"):
        keys.load(tmp_path / "tlog.key")
    (tmp_path / "tlog.key").write_bytes(b"")
    with pytest.raises(keys.KeyFileError, match=r"tlog\.key: not a whole PEM private key \(0"):
        keys.load(tmp_path / "tlog.key")
    with pytest.raises(keys.KeyFileError, match=r"tlog\.key: already exists"):
        keys.generate(tmp_path / "tlog.key")
    assert (tmp_path / "tlog.key").read_bytes() == b""  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tlog.key", "whole.key", "whole.key.pub"]


def test_a_release_never_replaces_a_directory_of_other_files(released, tmp_path) -> None:
    """A release replaces its directory whole: only a new, empty or earlier release's."""
    store, key_path, log, first, _ = released
    hash_list, entries = store.entries("known")
    owner, log_key = keys.load(key_path), keys.load(tmp_path / "log.key")
    site = tmp_path / "site"
    (site / "v1").mkdir(parents=True)
    (site / "index.html").write_text("<p>our lists</p>")
    with pytest.raises(ReleaseError, match=r"site: holds other files \(index.html, v1\)"):
        build(hash_list, entries, owner, log, log_key, site)
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "v1"]  # untouched
    assert log.size() == 2  # and nothing logged
    build(hash_list, entries, owner, log, log_key, first)  # an earlier release's: replaced
    assert verify(first, log).version == store.get("known").version


def test_a_release_holds_videos_in_their_listed_form(tmp_path: Path, database_url: str) -> None:
    from hashguard.signals.vpdq import VpdqSignal

    vpdq = VpdqSignal()
    # Videos of 1 to 40 frames: longer ones are keyed by a digest, in no order of their values.
    videos = ["\n".join(f"{n},90,{pdq(n + k)},{n}.000" for n in range(k)) for k in range(1, 41)]
    store = ListStore(open_engine(database_url))
    store.create("videos", "Offlimits", Category.KNOWN_CSAM)
    store.apply("videos", [Submission("vpdq", v) for v in videos] + [Submission("pdq", pdq(1))])
    keys.generate(tmp_path / "owner.key")
    keys.generate(tmp_path / "log.key")
    log_key = keys.load(tmp_path / "log.key")
    log = TransparencyLog.create_or_open(tmp_path / "log", log_key)
    hash_list, entries = store.entries("videos")
    build(hash_list, entries, keys.load(tmp_path / "owner.key"), log, log_key, tmp_path / "r")
    store.engine.dispose()
    assert verify(tmp_path / "r", log).entries == 41
    held = [tuple(json.loads(line)[:2]) for line in (tmp_path / "r/entries.jsonl").open()]
    listed = sorted(("vpdq", vpdq.canonical(v)) for v in videos)
    assert held == [("pdq", pdq(1)), *listed]  # by signal and value, as a release is
