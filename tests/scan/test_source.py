"""A scan's listing: a directory and an S3 prefix list their files in key order (the keys'
code-point order, which is an object store's UTF-8 byte order), as they are consumed: a
directory one directory's entries at a time, a prefix a page of 1,000 at a time (a real S3
API on loopback, moto), never the whole listing in memory; after a key (a listing resumed),
without a directory skipped (the scan's output); a name that is not UTF-8 under a key that
maps back to it."""

import hashlib
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.scan import source as source_module
from hashguard.scan.source import SourceNotFound, StoredFile, StoreReader, open_source
from hashguard.scan.work import ScanSettings, scan_part
from hashguard.signals.pdq import PdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.media import jpeg
from support.object_store import S3_ENV, fill_bucket, moto_server, s3_client
from support.scan_corpus import LIST

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


def test_a_name_that_is_not_utf8_is_a_key_that_maps_back_to_its_file(tmp_path: Path) -> None:
    """A Latin-1 name (``caf\\xe9``) is listed under an escaped key, read back through it and
    scanned like any file; a name that reads like that escape is another key."""
    database, tmp_path = tmp_path / "lists.db", tmp_path / "media"
    tmp_path.mkdir()
    root = os.fsencode(tmp_path)
    with open(os.path.join(root, b"caf\xe9.jpg"), "wb") as latin:
        latin.write(jpeg(1, 160, 120))
    (tmp_path / "caf\\xe9.jpg").write_bytes(jpeg(2, 160, 120))  # a backslash in a UTF-8 name
    (tmp_path / "plain.jpg").write_bytes(jpeg(1, 160, 120))
    source = open_source(str(tmp_path))
    files = list(source.files())
    assert [f.key for f in files] == ["caf\\\\xe9.jpg", "caf\\xe9.jpg", "plain.jpg"]
    with source.reader.open("caf\\xe9.jpg") as opened:
        assert opened.read() == jpeg(1, 160, 120)
    matcher = Matcher(_listing_pdq_of(database, jpeg(1, 160, 120)), [LIST])
    rows = scan_part(files, source.reader, matcher, ScanSettings(versions=matcher.versions()))
    found = {row.pop("key"): row for row in rows.to_pylist()}
    assert list(found) == [f.key for f in files]
    assert found["caf\\xe9.jpg"] == found["plain.jpg"] and found["plain.jpg"]["matches"]
    assert found["caf\\\\xe9.jpg"]["sha256"] == hashlib.sha256(jpeg(2, 160, 120)).hexdigest()
    assert not found["caf\\\\xe9.jpg"]["matches"]
    # Listed after a key, or skipping a directory, with such names too.
    assert [f.key for f in source.files(after="caf\\\\xe9.jpg")] == ["caf\\xe9.jpg", "plain.jpg"]
    os.mkdir(os.path.join(root, b"out\xff"))
    (tmp_path / "out\udcff" / "rows.parquet").touch()
    assert list(source.files(skipping=tmp_path / "out\udcff")) == files


def _listing_pdq_of(database: Path, image: bytes) -> ListStore:
    store = ListStore(open_engine(f"sqlite:///{database}"))
    store.create(LIST, "Test Org", Category.TEST, policy=ListPolicy({"pdq": 31}))
    store.apply(LIST, [Submission("pdq", PdqSignal().hash(image).hex)])
    return store


def test_a_directory_is_listed_after_a_key_without_what_is_skipped(tmp_path: Path) -> None:
    for key in TRICKY:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).touch()
    source = open_source(str(tmp_path))
    ordered = sorted(TRICKY)
    for last in ("a0/x", "b/a", "z/é/1"):  # a key listed, one between keys, the last
        after = [key for key in ordered if key > last]
        assert [f.key for f in source.files(after=last)] == after
    assert [f.key for f in source.files(skipping=tmp_path / "b")] == [
        key for key in ordered if not key.startswith("b/")
    ]
    via_link = tmp_path / "link"  # the same directory by another path
    via_link.symlink_to(tmp_path / "z")
    assert not any(f.key.startswith("z/") for f in source.files(skipping=via_link))


def test_an_s3_prefix_is_listed_after_a_key(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing resumes where the store starts it (StartAfter): the keys before are not
    listed again."""
    keys = [f"{n:04d}.jpg" for n in range(1200)]
    fill_bucket(aws, "resumed", {f"in/{key}": b"x" for key in keys})
    source = open_source("s3://resumed/in", aws)
    assert isinstance(source.reader, StoreReader)
    store = source_module._store("s3", source.reader.options)
    returned: list[int] = []
    call = store.call_s3

    def counted(method: str, **asked: Any) -> Any:
        page = call(method, **asked)
        returned.append(len(page.get("Contents", ())))
        return page

    monkeypatch.setattr(store, "call_s3", counted)
    assert [f.key for f in source.files(after="1099.jpg")] == keys[1100:]
    assert returned == [100]
    assert list(source.files(after="1199.jpg")) == []
