"""The ``hashguard`` command as a user runs it: real files, exit codes, stdout and stderr; in
this process (tests/support/invoke.py), and in real processes where only they show it (a
terminal, closed or non-UTF-8 standard streams)."""

import csv
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hashguard.signals.pdq import PdqSignal

from support.invoke import hashguard
from support.media import jpeg, make_video, png


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "a.jpg").write_bytes(jpeg(1))
    (root / "sub").mkdir()
    (root / "sub" / "b.png").write_bytes(png(2))
    (root / "sub" / "c.mp4").write_bytes(make_video(3, seconds=2))
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
    assert pdq["stability"] == PdqSignal().hash(jpeg(1)).stability >= 50
    vpdq = next(line for line in lines if line["signal"] == "vpdq")
    assert vpdq["frames"] == 2 and len(vpdq["value"].splitlines()) == 2


def test_hash_formats_signals_and_dihedral(tree: Path) -> None:
    image = str(tree / "a.jpg")
    result = hashguard("hash", image, "--signal", "pdq,sha256", "--format", "csv", "--dihedral")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["signal"] for r in rows][:2] == ["pdq", "pdq:rotate90"]
    assert len(rows) == 9 and rows[-1]["signal"] == "sha256" and rows[-1]["quality"] == ""
    stability = str(PdqSignal().hash(jpeg(1)).stability)
    assert {r["stability"] for r in rows[:8]} == {stability} and rows[-1]["stability"] == ""
    text = hashguard("hash", image, "-s", "md5,pdq", "-f", "text")
    lines = {line.split("\t")[0]: line.split("\t") for line in text.stdout.splitlines()}
    signal, value, quality, stable, path = lines["md5"]
    assert (signal, quality, stable, path) == ("md5", "-", "-", image) and len(value) == 32
    assert lines["pdq"][3] == stability
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


def test_any_file_gets_its_digests(tmp_path: Path) -> None:
    files = {"notes.txt": b"Meeting notes: nothing to see.\n" * 40,
             "random.bin": random.Random(16).randbytes(70_000)}  # fmt: skip
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    result = hashguard("hash", str(tmp_path), "-f", "csv")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = csv.DictReader(io.StringIO(result.stdout))
    assert {(Path(r["path"]).name, r["signal"]): r["value"] for r in rows} == {
        (name, algorithm): hashlib.new(algorithm, content).hexdigest()
        for name, content in files.items()
        for algorithm in ("md5", "sha1", "sha256")
    }
    notes = str(tmp_path / "notes.txt")
    one = hashguard("hash", notes, "-s", "sha1", "-f", "text")
    assert one.stdout == f"sha1\t{hashlib.sha1(files['notes.txt']).hexdigest()}\t-\t-\t{notes}\n"
    # PDQ needs an image: asked for alone, the file is refused with the reason, as before.
    pdq = hashguard("hash", notes, "-s", "pdq")
    assert pdq.returncode == 1 and pdq.stdout == ""
    assert pdq.stderr == f"hashguard: {notes}: not a supported image or video format\n"
    device = hashguard("hash", "/dev/zero", "-s", "md5")  # would be read without end
    assert device.returncode == 1
    assert (
        device.stderr
        == "hashguard: /dev/zero: not a regular file (a device or a pipe): nothing to hash\n"
    )


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
    assert other.returncode == 1, other.stderr  # nothing matched: a script can tell
    results = [json.loads(line) for line in other.stdout.splitlines()]
    assert results[0]["signal"] == "pdq" and not results[0]["match"]
    assert results[0]["distance"] > 31 and results[0]["threshold"] == 31
    (tmp_path / "v.mp4").write_bytes(make_video(7, seconds=1))
    mixed = hashguard("compare", str(tmp_path / "a.png"), str(tmp_path / "v.mp4"))
    assert mixed.returncode == 2 and "nothing to compare" in mixed.stderr


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
        assert result.returncode == 2
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
        [sys.executable, "-m", "hashguard", "hash", str(tmp_path), "-s", "pdq", "-f", "text"],
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
    assert sum(line.startswith("pdq") for line in lines) == 5


def test_compare_takes_any_files_by_their_digests(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("minutes of the meeting\n")
    (tmp_path / "b.txt").write_text("minutes of the meeting\n")
    (tmp_path / "c.txt").write_text("other minutes\n")
    same = hashguard("compare", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert same.returncode == 0, same.stderr
    assert [line.split()[:2] for line in same.stdout.splitlines()] == [
        ["md5", "MATCH"], ["sha1", "MATCH"], ["sha256", "MATCH"]
    ]  # fmt: skip
    other = hashguard("compare", str(tmp_path / "a.txt"), str(tmp_path / "c.txt"))
    assert other.returncode == 1 and "the files differ" in other.stdout
