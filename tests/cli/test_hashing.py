"""The ``hashguard`` command as a user runs it: real files, exit codes, stdout and stderr; in
this process (tests/support/invoke.py), and in real processes where only they show it (a
terminal, closed or non-UTF-8 standard streams)."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hashguard.signals.pdq import PdqSignal

from support.invoke import Ran, hashguard
from support.media import jpeg, make_video, png, png_declaring


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "a.jpg").write_bytes(jpeg(1))
    (root / "sub").mkdir()
    (root / "sub" / "b.png").write_bytes(png(2))
    (root / "sub" / "c.mp4").write_bytes(make_video(3, seconds=2))
    return root


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    data = jpeg(4)
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "corrupt.jpg").write_bytes(data[:4] + os.urandom(3000))
    (root / "notes.txt").write_text("not an image\n" * 20)
    (root / "huge.png").write_bytes(png_declaring(100_000, 100_000))
    (root / "good.jpg").write_bytes(data)
    return root


def test_hash_jsonl_walks_directories(tree: Path) -> None:
    result = hashguard("hash", str(tree))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_file: dict[str, set[str]] = {}
    for line in lines:
        by_file.setdefault(Path(line["path"]).name, set()).add(line["signal"])
    assert by_file == {
        "a.jpg": {"pdq", "md5", "sha1", "sha256"},
        "b.png": {"pdq", "md5", "sha1", "sha256"},
        "c.mp4": {"vpdq", "md5", "sha1", "sha256"},
    }
    pdq = next(line for line in lines if line["signal"] == "pdq" and line["path"].endswith("a.jpg"))
    assert pdq["value"] == PdqSignal().hash(jpeg(1)).hex
    assert 50 <= pdq["quality"] <= 100
    vpdq = next(line for line in lines if line["signal"] == "vpdq")
    assert vpdq["frames"] == 2 and len(vpdq["value"].splitlines()) == 2


def test_hash_formats_signals_and_dihedral(tree: Path) -> None:
    image = str(tree / "a.jpg")
    result = hashguard("hash", image, "--signal", "pdq,sha256", "--format", "csv", "--dihedral")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["signal"] for r in rows][:2] == ["pdq", "pdq:rotate90"]
    assert len(rows) == 9 and rows[-1]["signal"] == "sha256" and rows[-1]["quality"] == ""
    text = hashguard("hash", image, "-s", "md5", "-f", "text")
    signal, value, quality, path = text.stdout.strip().split("\t")
    assert (signal, quality, path) == ("md5", "-", image) and len(value) == 32
    unknown = hashguard("hash", image, "-s", "pdq,photodna")
    assert unknown.returncode == 2 and "unknown signal 'photodna'" in unknown.stderr


def test_parallel_hashing_gives_the_same_output_in_order(tree: Path) -> None:
    one = hashguard("hash", str(tree), "-s", "pdq,vpdq,md5")
    two = hashguard("hash", str(tree), "-s", "pdq,vpdq,md5", "--jobs", "2")
    assert two.returncode == 0 and two.stdout == one.stdout


def test_bad_files_get_one_line_each_and_the_rest_is_hashed(bad: Path) -> None:
    result = hashguard("hash", str(bad), "-s", "pdq")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = {Path(line.split(": ")[1]).name: line for line in result.stderr.splitlines()}
    assert set(errors) == {"empty.jpg", "truncated.jpg", "corrupt.jpg", "notes.txt", "huge.png"}
    assert "file is empty" in errors["empty.jpg"]
    assert "truncated" in errors["truncated.jpg"]
    assert "not a supported image or video format" in errors["notes.txt"]
    assert "pixel count 10,000,000,000 exceeds the limit of 64,000,000" in errors["huge.png"]
    hashed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(h["path"]).name for h in hashed] == ["good.jpg"]
    missing = hashguard("hash", str(bad / "absent.jpg"))
    assert missing.returncode == 1 and "absent.jpg: cannot read: No such file" in missing.stderr


def test_compare_prints_distance_and_verdict(tmp_path: Path) -> None:
    from hashguard.media.synthetic import encode, scene

    image = scene(5, 640, 480)
    (tmp_path / "a.png").write_bytes(encode(image, "PNG"))
    (tmp_path / "b.jpg").write_bytes(encode(image, "JPEG", quality=50))
    (tmp_path / "c.jpg").write_bytes(jpeg(6))
    same = hashguard("compare", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"))
    assert same.returncode == 0, same.stderr
    first = same.stdout.splitlines()[0].split()
    assert first[:2] == ["pdq", "MATCH"]
    assert "sha256" in same.stdout and "the files differ" in same.stdout
    other = hashguard("compare", str(tmp_path / "a.png"), str(tmp_path / "c.jpg"), "-f", "jsonl")
    results = [json.loads(line) for line in other.stdout.splitlines()]
    assert results[0]["signal"] == "pdq" and not results[0]["match"]
    assert results[0]["distance"] > 31 and results[0]["threshold"] == 31
    (tmp_path / "v.mp4").write_bytes(make_video(7, seconds=1))
    mixed = hashguard("compare", str(tmp_path / "a.png"), str(tmp_path / "v.mp4"))
    assert mixed.returncode == 1 and "nothing to compare" in mixed.stderr


def test_demo_shows_matches_and_misses() -> None:
    result = hashguard("demo")
    assert result.returncode == 0, result.stderr
    assert "match" in result.stdout and "no match" in result.stdout
    assert "rotate" in result.stdout  # the rotated copy is found through a dihedral variant


def test_version() -> None:
    from hashguard import __version__

    assert hashguard("--version").stdout.strip() == f"hashguard {__version__}"


def _read_terminal(controller: int) -> bytes:
    """Everything a process wrote to a pseudo-terminal, until it closed it."""
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed: the process has exited
            return shown
        if not chunk:
            return shown
        shown += chunk


def test_progress_bar_only_on_a_terminal(tree: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "hashguard", "hash", str(tree), "-s", "md5"],
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "100"},
    ) as process:
        os.close(terminal)
        shown = _read_terminal(controller)
        stdout = process.stdout.read() if process.stdout else b""
    os.close(controller)
    assert process.returncode == 0
    assert b"hashing" in shown and b"3/3" in shown
    assert len(stdout.splitlines()) == 3  # the bar never mixes into the output
    plain = hashguard("hash", str(tree), "-s", "md5")
    assert plain.stderr == ""


def test_compare_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg(8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(jpeg(9)[:3000])
    for other, message in (
        (broken, f"hashguard: {broken}: cannot decode JPEG data: image file is truncated"),
        (tmp_path / "absent.jpg", f"hashguard: {tmp_path / 'absent.jpg'}: cannot read: No such"),
        (tmp_path, f"hashguard: {tmp_path}: cannot read: Is a directory"),
    ):
        result = hashguard("compare", str(good), str(other))
        assert result.returncode == 1
        assert result.stderr.startswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_files_no_signal_applies_to_are_skipped_not_failed(tree: Path) -> None:
    result = hashguard("hash", str(tree), "-s", "pdq")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 2  # the two images
    assert result.stderr.strip() == (
        "hashguard: note: skipped 1 video file(s): no requested signal (pdq) applies"
    )


def test_quiet_about_what_decoders_recover_from(tmp_path: Path) -> None:
    from hashguard.media.synthetic import encode, scene

    data = bytearray(encode(scene(10, 200, 150), "TIFF", compression="tiff_lzw"))
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)  # damage the second half
    (tmp_path / "damaged.tif").write_bytes(bytes(data))
    (tmp_path / "ok.jpg").write_bytes(jpeg(11))
    result = hashguard("hash", str(tmp_path), "-s", "pdq")
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] in (
        [],  # decoded despite the damage
        [str(tmp_path / "damaged.tif")],
    )
    assert "Warning" not in result.stderr and "TIFF" not in result.stderr.split(": ", 2)[-1][:4]


def test_numbers_out_of_range_are_usage_errors(tree: Path) -> None:
    image = str(tree / "a.jpg")
    for value in ("nan", "inf", "-1", "300"):
        result = hashguard("compare", image, image, "--threshold", value)
        assert result.returncode == 2 and "expected a number from 0 to 256" in result.stderr
    result = hashguard("hash", image, "--video-rate", "nan")
    assert result.returncode == 2 and "expected a number from 0 to 1000" in result.stderr


def test_odd_names_links_and_a_closed_stderr(tmp_path: Path) -> None:
    odd = os.fsdecode(b"caf\xe9-\xff.jpg")  # not UTF-8: what old archives hold
    (tmp_path / odd).write_bytes(jpeg(12))
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run(
        [sys.executable, "-m", "hashguard", "hash", str(tmp_path), "-s", "md5", "-f", "text"],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 1
    assert os.fsencode(tmp_path / odd) in result.stdout  # the name's own bytes, as ls prints
    assert result.stderr.decode().strip() == (
        f"hashguard: {tmp_path / 'broken.jpg'}: cannot read: No such file or directory"
    )
    closed = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -m hashguard hash -s md5 "{tmp_path / odd}" 2>&-'],
        capture_output=True,
        timeout=300,
    )
    assert closed.returncode == 0 and len(closed.stdout.splitlines()) == 1


def test_errors_stay_on_their_own_line_above_the_bar(tmp_path: Path) -> None:
    import pty

    for index in range(6):
        (tmp_path / f"{index}.jpg").write_bytes(jpeg(index, 64, 48))
    (tmp_path / "3.jpg").write_bytes(b"not an image at all, just text" * 4)
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "hashguard", "hash", str(tmp_path), "-s", "md5", "-f", "text"],
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "60", "TERM": "xterm"},
    ) as process:
        os.close(terminal)
        shown = _read_terminal(controller)
    os.close(controller)
    assert process.returncode == 1
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode())  # terminal control codes
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    error = f"hashguard: {tmp_path / '3.jpg'}: not a supported image or video format"
    assert error in lines  # a line of its own, never glued to the bar or wrapped
    assert sum(line.startswith("md5") for line in lines) == 5


# --- match ---------------------------------------------------------------------------------------


@dataclass
class Listed:
    url: str  # the database
    root: Path  # the media
    entries: dict[str, int]  # file name -> the id of its listed PDQ entry
    hashes: dict[str, str]  # file name -> its PDQ hash

    def match(self, *args: str) -> Ran:
        return hashguard("match", "--database-url", self.url, *args)


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Listed:
    """Lists in a database: "known" with two images' PDQ hashes (labelled), "strict" with one
    of them at PDQ threshold 8, "digests" with another image's SHA-256; and a folder with
    those images, a rotated copy of the first, an unlisted image and a flat one."""
    import hashlib

    from PIL import Image

    from hashguard.lists.model import Category, ListPolicy
    from hashguard.lists.records import Submission
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    root = tmp_path_factory.mktemp("match")
    signal = PdqSignal()
    (root / "listed.jpg").write_bytes(jpeg(31))
    (root / "also-listed.png").write_bytes(png(32))
    rotated = Image.open(io.BytesIO(jpeg(31))).rotate(90, expand=True)
    buffer = io.BytesIO()
    rotated.save(buffer, "PNG")
    (root / "rotated.png").write_bytes(buffer.getvalue())
    (root / "other.jpg").write_bytes(jpeg(33))
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (40, 40, 40)).save(buffer, "PNG")
    (root / "flat.png").write_bytes(buffer.getvalue())
    names = ("listed.jpg", "also-listed.png")
    hashes = {n: signal.hash((root / n).read_bytes()).hex for n in names}
    url = f"sqlite:///{root.parent / (root.name + '.db')}"
    engine = open_engine(url)
    store = ListStore(engine)
    store.create("known", "Test Org", Category.TEST)
    store.apply("known", [Submission("pdq", hashes[n], frozenset({"B1", "test"})) for n in names])
    store.create("strict", "Test Org", Category.TEST, policy=ListPolicy({"pdq": 8}))
    store.apply("strict", [Submission("pdq", hashes["listed.jpg"])])
    store.create("digests", "Test Org", Category.TEST)
    other = hashlib.sha256((root / "other.jpg").read_bytes()).hexdigest()
    store.apply("digests", [Submission("sha256", other)])
    entries = {e.value: e.id for e in store.entries("known")[1]}
    engine.dispose()
    return Listed(url, root, {n: entries[hashes[n]] for n in names}, hashes)


def test_match_reports_lists_entries_and_exit_status(listed: Listed) -> None:
    root = listed.root
    result = listed.match("--list", "known", str(root))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    first, second = listed.entries["listed.jpg"], listed.entries["also-listed.png"]
    assert lines[str(root / "listed.jpg")] == (
        f"match, list known entry {first}, pdq distance 0 [B1, test]"
    )
    assert lines[str(root / "also-listed.png")].startswith(f"match, list known entry {second},")
    assert lines[str(root / "rotated.png")] == "no match"
    assert lines[str(root / "other.jpg")] == "no match"
    assert lines[str(root / "flat.png")] == "PDQ quality 0 too low to match"
    assert "1 image(s) of PDQ quality below 50 not matched" in result.stderr
    nothing = listed.match("--list", "known", str(root / "other.jpg"))
    assert nothing.returncode == 1 and nothing.stdout.endswith("no match\n")


def test_match_jsonl_is_one_object_per_match_and_nothing_else(listed: Listed) -> None:
    root = listed.root
    result = listed.match(
        "-l", "known", "-l", "strict", "-l", "digests", "--dihedral", "-f", "jsonl",
        str(root / "rotated.png"), str(root / "other.jpg"), str(root / "flat.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = [json.loads(text) for text in result.stdout.splitlines()]
    # The rotated copy is within the default 31 bits of "known", not within 8 of "strict";
    # the other image is hashed with SHA-256 too, since "digests" holds SHA-256.
    assert sorted((f["query"], f["list"], f["signal"]) for f in found) == [
        (str(root / "other.jpg"), "digests", "sha256"),
        (str(root / "rotated.png"), "known", "pdq"),
    ]
    for line in found:
        assert set(line) == {"query", "list", "entry", "signal", "distance", "labels"}
    rotated = next(f for f in found if f["signal"] == "pdq")
    assert rotated["entry"] == listed.entries["listed.jpg"] and 8 < rotated["distance"] <= 31
    assert rotated["labels"] == ["B1", "test"]
    assert next(f for f in found if f["signal"] == "sha256")["distance"] == 0


def test_match_takes_hashes_as_queries_with_each_lists_threshold(listed: Listed) -> None:
    listed_hash = listed.hashes["listed.jpg"]
    bits = bytearray(bytes.fromhex(listed_hash))
    for i in range(12):  # 12 bits off: within "known"'s 31, beyond "strict"'s 8
        bits[i] ^= 1
    near = bits.hex()
    far = "".join("f" if c != "f" else "0" for c in listed_hash)
    result = listed.match("-l", "known", "-l", "strict", "-f", "csv", near, far, "pdq:" + near)
    assert result.returncode == 0, result.stderr
    entry = str(listed.entries["listed.jpg"])
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["query", "list", "entry", "signal", "distance", "labels"],
        [near, "known", entry, "pdq", "12", "B1;test"],
        ["pdq:" + near, "known", entry, "pdq", "12", "B1;test"],
    ]
    exact = listed.match("-l", "strict", "-f", "jsonl", listed_hash)
    assert [json.loads(line)["list"] for line in exact.stdout.splitlines()] == ["strict"]


def test_match_errors_name_the_list_or_the_query(listed: Listed) -> None:
    missing = listed.match("--list", "nolist", str(listed.root / "listed.jpg"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "hashguard: no list named 'nolist'\n"
    short = listed.match("--list", "known", "abcd")
    assert short.returncode == 2
    expected = "32 (md5), 40 (sha1) or 64 (pdq, sha256, canonical_sha256) hex digits; got 4"
    assert f"abcd: a hash has {expected}" in short.stderr


def test_match_reports_unreadable_files_and_skips_videos(tmp_path, listed, bad) -> None:
    (tmp_path / "clip.mp4").write_bytes(make_video(5, seconds=1))
    result = listed.match("-l", "known", str(bad / "corrupt.jpg"), str(tmp_path / "clip.mp4"))
    assert result.returncode == 2
    assert f"{bad / 'corrupt.jpg'}: " in result.stderr
    assert "skipped 1 video file(s): the lists hold only pdq entries" in result.stderr
    # A list of digests matches videos too: the file is hashed, not skipped.
    both = listed.match("-l", "known", "-l", "digests", str(tmp_path / "clip.mp4"))
    assert both.returncode == 1 and both.stdout.endswith("clip.mp4: no match\n")
