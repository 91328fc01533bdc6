"""Hashing many files over processes: order, failures that stay per file, crashed decoders;
files that are not media, hashed by their bytes."""

import hashlib
import io
import os
import random
from pathlib import Path

import pytest

from hashguard.media import Limits, UnsupportedMedia
from hashguard.media.formats import NOT_MEDIA
from hashguard.signals import batch, registry
from hashguard.signals.batch import (
    FileFailure,
    HashedFile,
    HashSettings,
    expand,
    hash_paths,
    hash_stream,
    hash_values,
)

from support.media import jpeg

real_hash_file = batch.hash_file


def crashing_hash_file(path: str, settings: HashSettings) -> batch.FileResult:
    if path.endswith("crash.jpg"):
        os._exit(3)  # what a decoder fault does to its process
    return real_hash_file(path, settings)


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
