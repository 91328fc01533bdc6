"""A scan's listing: a directory and an S3 prefix list their files in key order (the keys'
code-point order, which is an object store's UTF-8 byte order), as they are consumed: a
directory one directory's entries at a time, a prefix a page of 1,000 at a time (a real S3
API on loopback, moto), never the whole listing in memory."""

import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hashguard.scan.source import SourceNotFound, StoredFile, open_source

from support.object_store import S3_ENV, fill_bucket, moto_server, s3_client

# Names whose order as paths differs from the order of a walk sorting plain names: "a-b" and
# "a.txt" come before "a/b" ("-" and "." before "/"), upper case before lower, "é" after "z".
TRICKY = ["a/b", "a-b", "a.txt", "a0/x", "ab/c", "b/a-b", "b/a.c", "b/a/-", "b/a/b", "Z",
          "z/e", "z/ß", "z/é/1", "é", "deep/" + "/".join("d" * 40) + "/end"]  # fmt: skip


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    return s3


def test_a_directory_lists_its_files_in_key_order(tmp_path: Path) -> None:
    for number, key in enumerate(TRICKY):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"x" * number)
    os.mkfifo(tmp_path / "pipe")  # reading it would block: passed over
    (tmp_path / "to-b").symlink_to(tmp_path / "b")  # a link to a directory: passed over
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")  # listed: its row says why
    listed = list(open_source(str(tmp_path)).files())
    assert [f.key for f in listed] == sorted([*TRICKY, "broken"])
    sizes = {f.key: f.size for f in listed}
    assert [sizes[key] for key in TRICKY] == list(range(len(TRICKY)))
    assert sizes["broken"] == 0


def test_a_directory_is_listed_a_directory_at_a_time(tmp_path: Path) -> None:
    """Counting the files of 40 directories of 100 files takes a small part of the memory a
    list of them takes."""
    for folder in range(40):
        (tmp_path / f"{folder:03d}").mkdir()
        for number in range(100):
            (tmp_path / f"{folder:03d}" / f"{number:03d}.jpg").touch()
    source = open_source(str(tmp_path))
    assert sum(1 for _ in source.files()) == 4000  # once untraced: what is made once, made

    def peak(consume: Callable[[Iterator[StoredFile]], object]) -> int:
        tracemalloc.start()
        try:
            consume(source.files())
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    counted = peak(lambda files: sum(1 for _ in files))
    held = peak(list)
    assert counted < held / 5


def test_an_s3_prefix_is_listed_a_page_at_a_time_in_key_order(aws: str) -> None:
    keys = [f"{n:04d}.jpg" for n in range(1001)] + TRICKY  # over a page of 1,000
    fill_bucket(aws, "paged", {
        **{f"in/{key}": key.encode() for key in keys},
        "in/": b"", "in/sub/": b"", "in": b"the prefix's own name", "in-other/a.jpg": b"x",
    })  # fmt: skip
    listed = open_source("s3://paged/in", aws).files()
    first = next(listed)
    # Put after the first page was read: listed only if the next page is asked for later.
    s3_client(aws).put_object(Bucket="paged", Key="in/\U0001f600-last", Body=b"new")
    rest = list(listed)
    assert [f.key for f in [first, *rest]] == sorted([*keys, "\U0001f600-last"])
    assert all(f.etag for f in rest)
    assert {f.key: f.size for f in [first, *rest] if f.key in keys} == {
        key: len(key.encode()) for key in keys
    }


def test_an_empty_or_missing_source_is_refused(aws: str, tmp_path: Path) -> None:
    fill_bucket(aws, "markers", {"in/": b"", "in/sub/": b""})
    for location in ("s3://markers/in", "s3://markers/none", str(tmp_path)):
        with pytest.raises(SourceNotFound, match="no files to scan"):
            open_source(location, aws).files()
    with pytest.raises(SourceNotFound, match="no such bucket"):
        open_source("s3://no-bucket/in", aws).files()
