"""Hashing many files over processes: order, failures that stay per file, crashed decoders (the
items a crash left unfinished run again in parallel, and only the one that crashes runs
alone), workers forked while a thread held stderr; files that are not media, hashed by their
bytes, every digest from one read."""

import hashlib
import io
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hashguard.media import Limits, UnsupportedMedia
from hashguard.media.formats import NOT_MEDIA, SNIFF_BYTES
from hashguard.signals import batch, registry
from hashguard.signals.batch import (
    FileFailure,
    HashedFile,
    HashSettings,
    expand,
    hash_paths,
    hash_stream,
    hash_values,
    isolated_map,
)

from support.media import jpeg
from support.waiting import eventually

real_hash_file = batch.hash_file


def crashing_hash_file(path: str, settings: HashSettings) -> batch.FileResult:
    if path.endswith("crash.jpg"):
        os._exit(3)  # what a decoder fault does to its process
    return real_hash_file(path, settings)


def _count_start(starts: str) -> None:
    batch.init_worker()
    with open(starts, "a") as file:
        file.write("+")  # a character per worker process started


def _crash_or_wait_for_another_pool(job: tuple[int, str]) -> int:
    """Item 0 kills its worker; in the first pool (2 workers) the others wait, so that the
    crash finds them all unfinished."""
    number, starts = job
    if number == 0:
        os._exit(3)
    eventually(lambda: os.path.getsize(starts) > 2, timeout=60)
    return number * 10


def _tree(root: Path, names: list[str]) -> list[str]:
    for seed, name in enumerate(names):
        (root / name).write_bytes(jpeg(seed, 96, 64))
    return [str(root / name) for name in names]


def test_results_come_in_input_order_with_any_number_of_jobs(tmp_path: Path) -> None:
    files = _tree(tmp_path, [f"{i:02d}.jpg" for i in range(12)])
    settings = HashSettings(("pdq", "md5"))
    here = list(hash_paths(files, settings, jobs=0))
    one = list(hash_paths(files, settings, jobs=1))
    two = list(hash_paths(files, settings, jobs=2))
    assert here == one == two
    assert [r.path for r in one if not isinstance(r, FileFailure)] == files
    assert list(expand([str(tmp_path)])) == files
    os.mkfifo(tmp_path / "pipe")  # reading it would block: a directory walk passes it over
    assert list(expand([str(tmp_path)])) == files


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_that_crashes_its_worker_fails_alone(tmp_path: Path, monkeypatch, jobs: int) -> None:
    names = [f"{i:02d}.jpg" for i in range(10)]
    names[4] = "04-crash.jpg"
    files = _tree(tmp_path, names)
    monkeypatch.setattr(batch, "hash_file", crashing_hash_file)
    results = list(hash_paths(files, HashSettings(("md5",)), jobs=jobs))
    assert len(results) == len(files)
    failures = [r for r in results if isinstance(r, FileFailure)]
    assert failures == [FileFailure(files[4], "the decoder process crashed on this file")]
    hashed = [r.path for r in results if not isinstance(r, FileFailure)]
    assert hashed == files[:4] + files[5:]


def _other_files(root: Path) -> dict[str, bytes]:
    """A text file and random bytes: files that are neither an image nor a video."""
    files = {"notes.txt": b"Meeting notes: nothing to see.\n" * 50,
             "random.bin": random.Random(16).randbytes(70_000)}  # fmt: skip
    for name, content in files.items():
        (root / name).write_bytes(content)
    return files


def test_any_file_gets_its_digests_and_only_those(tmp_path: Path) -> None:
    for name, content in _other_files(tmp_path).items():
        hashed = hash_values(str(tmp_path / name), [registry.get(n) for n in registry.names()])
        assert hashed.undecodable is None
        assert [(s.name, v) for s, v in hashed.values] == [
            ("md5", hashlib.md5(content).digest()),
            ("sha1", hashlib.sha1(content).digest()),
            ("sha256", hashlib.sha256(content).digest()),
        ]
        [result] = hash_paths([str(tmp_path / name)], HashSettings(("sha256", "pdq")), jobs=0)
        expected = HashedFile(str(tmp_path / name), (("sha256", hashlib.sha256(content).digest()),))
        assert result == expected


def test_a_file_that_is_not_media_is_refused_when_only_media_signals_are_asked(
    tmp_path: Path,
) -> None:
    _other_files(tmp_path)
    for asked in (("pdq",), ("vpdq",), ("pdq", "canonical_sha256")):
        [result] = hash_paths([str(tmp_path / "notes.txt")], HashSettings(asked), jobs=0)
        assert result == FileFailure(str(tmp_path / "notes.txt"), NOT_MEDIA)
    with pytest.raises(UnsupportedMedia, match=NOT_MEDIA):
        hash_values(str(tmp_path / "random.bin"), [registry.get("pdq")])


class _Reads(io.BytesIO):
    """An in-memory file that remembers the largest read asked of it."""

    largest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.largest = max(self.largest, len(self.getbuffer()) if size in (None, -1) else size)
        return super().read(size)


def test_other_files_are_streamed_through_their_digests_whatever_their_size() -> None:
    content = random.Random(2).randbytes(3 * 1024 * 1024)
    stream = _Reads(content)
    tiny = Limits(max_image_bytes=1000, max_video_bytes=1000)  # no media limit applies
    [(signal, value)] = hash_stream(stream, len(content), [registry.get("sha256")], tiny).values
    assert (signal.name, value) == ("sha256", hashlib.sha256(content).digest())
    assert stream.largest <= 1024 * 1024  # read in chunks, never whole


def test_a_device_is_refused_rather_than_read_without_end() -> None:
    [result] = hash_paths(["/dev/zero"], HashSettings(("md5",)), jobs=0)
    assert result == FileFailure(
        "/dev/zero", "not a regular file (a device or a pipe): nothing to hash"
    )


def test_a_pipe_named_on_the_command_line_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer that never comes
    [result] = hash_paths([str(fifo)], HashSettings(("md5",)), jobs=0)
    assert result == FileFailure(
        str(fifo), "not a regular file (a device or a pipe): nothing to hash"
    )


def test_digests_of_an_image_need_no_decoding_and_no_image_limit() -> None:
    """Asked for digests only, a file that starts like a PNG is read as bytes: over the image
    size limit, or not decodable at all, it still has its digests."""
    content = b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(64 * 1024)  # not a real PNG
    tiny = Limits(max_image_bytes=1000)
    stream = _Reads(content)
    [(signal, value)] = hash_stream(stream, len(content), [registry.get("md5")], tiny).values
    assert (signal.name, value) == ("md5", hashlib.md5(content).digest())


def test_media_that_cannot_be_decoded_still_gets_the_hashes_of_its_bytes(tmp_path: Path) -> None:
    """A truncated JPEG, a corrupt one, and one over the image size limit: no PDQ, but the
    digests of the file's bytes, with the reason; asked for PDQ alone, it fails as before."""
    good = jpeg(4)
    files = {"truncated.jpg": good[: len(good) // 2], "corrupt.jpg": good[:4] + bytes(3000),
             "large.jpg": good}  # fmt: skip
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    settings = HashSettings(limits=Limits(max_image_bytes=len(good) - 1))
    paths = [str(tmp_path / name) for name in files]
    for path, result, content in zip(
        paths, hash_paths(paths, settings), files.values(), strict=True
    ):
        assert isinstance(result, HashedFile), result
        assert result.values == tuple((name, hashlib.new(name, content).digest())
                                      for name in ("md5", "sha1", "sha256")), path  # fmt: skip
        assert result.failed  # the reason: truncated, corrupt, over the limit
    [alone] = hash_paths(paths[:1], HashSettings(("pdq",)), jobs=0)
    assert isinstance(alone, FileFailure) and "truncated" in alone.reason


def test_a_crash_reruns_the_items_it_left_unfinished_together_not_each_alone(
    tmp_path: Path,
) -> None:
    starts = tmp_path / "starts"
    starts.touch()
    jobs = [(number, str(starts)) for number in range(20)]
    alone: list[int] = []

    def run_alone(job: tuple[int, str]) -> int:
        alone.append(job[0])
        return -1

    found = list(isolated_map(_crash_or_wait_for_another_pool, jobs, 2, run_alone, 4,
                              _count_start, (str(starts),)))  # fmt: skip
    assert found[0] == -1 and all(n in (-1, 10 * m) for m, n in enumerate(found))
    # The 8 items in flight when the worker died ran again together; in halves once it died
    # again: at most the one that crashes, and one that ran beside it, ran alone.
    assert 0 in alone and len(alone) <= 2, alone


class _Counted(io.BytesIO):
    """An in-memory file that counts the bytes read from it."""

    taken = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def test_every_digest_of_a_file_comes_from_one_read_of_its_bytes() -> None:
    content = random.Random(5).randbytes(3 * 1024 * 1024)
    stream = _Counted(content)
    names = ("md5", "sha1", "sha256")
    hashed = hash_stream(stream, len(content), [registry.get(name) for name in names])
    assert [(s.name, v) for s, v in hashed.values] == [
        (name, hashlib.new(name, content).digest()) for name in names
    ]
    assert stream.taken <= SNIFF_BYTES + len(content)  # not once per digest


# At the fork, another thread of the parent is blocked in a write to stderr (a progress bar's,
# to a terminal that stopped reading): it holds the buffer's lock the worker inherits.
_HELD_STDERR = """
import fcntl, os, sys, termios, threading
from array import array
from functools import partial
from hashguard.signals.batch import HashSettings, hash_file, isolated_map
from support.waiting import eventually

read_end, write_end = os.pipe()
sys.stderr = open(write_end, "w")

def full() -> bool:
    buffered = array("i", [0])
    fcntl.ioctl(read_end, termios.FIONREAD, buffered)
    return buffered[0] >= fcntl.fcntl(read_end, 1032)  # F_GETPIPE_SZ

def hold() -> None:  # after multiprocessing's own flush of stderr, right before the fork
    if not full():
        write = lambda: print("x" * 1_000_000, file=sys.stderr, flush=True)
        threading.Thread(target=write, daemon=True).start()
        assert eventually(full, timeout=30)

os.register_at_fork(before=hold)
settings = HashSettings(("md5",), quiet_decoders=True)  # flushes stderr around each file
[hashed] = isolated_map(partial(hash_file, settings=settings), [sys.argv[1]], 1, print)
print(hashed.values[0][1].hex(), flush=True)
os._exit(0)  # this process's own stderr stays blocked
"""


def test_workers_forked_while_a_thread_holds_stderr_still_hash(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"bytes")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ran = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_HELD_STDERR), str(tmp_path / "a.bin")],
        capture_output=True, text=True, timeout=60, env=environment,
    )  # fmt: skip
    assert ran.stdout == hashlib.md5(b"bytes").hexdigest() + "\n", ran.stderr
