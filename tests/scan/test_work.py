"""A part's files hashed into rows (``scan_part``): a volume gone from under the directory, or a
part of many files all refused to us, is the source's fault (no row is made up, the part is
not written), files deleted since they were listed are not; an object is read as it was
listed, not as it is since; a file whose crash does not happen again gets its hashes."""

import errno
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashguard.matching import Matcher
from hashguard.scan.source import (
    DirectoryReader,
    OpenedFile,
    SourceUnavailable,
    StoredFile,
    open_source,
)
from hashguard.scan.work import Hashed, ScanSettings, hashed_around_crash, scan_part
from hashguard.signals.batch import WorkerCrashed
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.media import jpeg
from support.object_store import S3_ENV, fill_bucket, moto_server, s3_client
from support.scan_corpus import LIST, make_corpus

GONE = "cannot read: No such file or directory"


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matcher]:
    corpus = make_corpus(tmp_path_factory.mktemp("work"), 2, planted=0)
    engine = open_engine(corpus.database_url)
    yield Matcher(ListStore(engine), [LIST])
    engine.dispose()


def test_a_directory_gone_from_under_the_scan_is_the_sources_fault(
    tmp_path: Path, matcher: Matcher
) -> None:
    root = tmp_path / "volume"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg(1))
    reader, listed = DirectoryReader(str(root)), [StoredFile("a.jpg", 10)]
    [row] = scan_part(listed, reader, matcher, ScanSettings()).to_pylist()
    assert row["error"] is None and row["pdq"]
    shutil.rmtree(root)  # unmounted, say: every path under it is gone
    with pytest.raises(SourceUnavailable, match=r"a\.jpg: cannot read \(No such file"):
        scan_part(listed, reader, matcher, ScanSettings())
    root.mkdir()  # back, without the file: that is the file's own problem
    [row] = scan_part(listed, reader, matcher, ScanSettings()).to_pylist()
    assert (row["error_kind"], row["error"]) == ("unreadable", GONE)


def test_a_part_of_files_gone_since_they_were_listed_gets_its_rows(
    tmp_path: Path, matcher: Matcher
) -> None:
    """A folder deleted while the scan runs: the source's answer about each file, a row each,
    however many (not an outage that would stop the scan on every run)."""
    (tmp_path / "kept.jpg").write_bytes(jpeg(2))
    gone = [StoredFile(f"gone/{n:02d}.jpg", 10) for n in range(12)]
    rows = scan_part(gone, DirectoryReader(str(tmp_path)), matcher, ScanSettings())
    assert rows["error_kind"].to_pylist() == ["unreadable"] * 12
    assert rows["error"].to_pylist() == [GONE] * 12


class RefusingReader:
    """A source that refuses every file to us, as access revoked does (tests run as root, whom
    file modes do not stop)."""

    def open(self, key: str, size: int | None = None, etag: str | None = None) -> OpenedFile:
        raise PermissionError(errno.EACCES, "Permission denied")


def test_a_part_of_files_all_refused_is_not_written_unless_accepted(matcher: Matcher) -> None:
    refused = [StoredFile(f"private/{n:02d}.jpg", 10) for n in range(12)]
    with pytest.raises(SourceUnavailable) as raised:
        scan_part(refused, RefusingReader(), matcher, ScanSettings())
    assert str(raised.value).startswith(
        "private/00.jpg and the 11 files listed after it: none can be read (cannot read: "
        "Permission denied)"
    )
    assert "--accept-unreadable to write their rows as unreadable" in str(raised.value)
    assert "--restart" not in str(raised.value)
    accepted = scan_part(refused, RefusingReader(), matcher, ScanSettings(accept_unreadable=True))
    assert accepted["error_kind"].to_pylist() == ["unreadable"] * 12
    # Only a few files: each file's own problem, a row each.
    assert scan_part(refused[:3], RefusingReader(), matcher, ScanSettings()).num_rows == 3


def test_an_object_changed_since_it_was_listed_is_not_hashed_as_it_is_now(
    matcher: Matcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "werkzeug")  # the S3 server's log of each request
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    with moto_server() as endpoint:
        fill_bucket(endpoint, "changing", {"a.bin": b"as listed", "b.bin": b"left alone"})
        source = open_source("s3://changing", endpoint)
        listed = list(source.files())
        s3_client(endpoint).put_object(Bucket="changing", Key="a.bin", Body=b"written since")
        changed, alone = scan_part(listed, source.reader, matcher, ScanSettings()).to_pylist()
    assert (changed["error_kind"], changed["error"]) == (
        "unreadable", "cannot read: changed since it was listed (another ETag)"
    )  # fmt: skip
    assert changed["sha256"] is None and changed["md5"] is None
    served = [record.getMessage() for record in caplog.records]
    assert sum("GET /changing/" in line for line in served) == 2  # one each, as listed:
    assert not any("HEAD /changing/" in line for line in served)  # no HEAD asks size, ETag
    assert (alone["error_kind"], alone["size"]) == ("not media", len(b"left alone"))


def test_a_file_whose_crash_does_not_happen_again_gets_its_hashes() -> None:
    """Alone, a file that took its worker down (the OOM killer, a neighbour's fault) hashes
    fine: it is no error; a signal that still crashes alone is named."""
    settings = ScanSettings()
    hashed = Hashed("ab" * 32, (("md5", b"\x01" * 16),))
    assert hashed_around_crash(settings, lambda signals: hashed) == hashed

    def pdq_crashes(signals: tuple[str, ...]) -> Hashed:
        if "pdq" in signals:
            raise WorkerCrashed("the worker process died")
        return hashed

    found = hashed_around_crash(settings, pdq_crashes)
    assert found.kind == "crashed"
    assert found.error == "the decoder process crashed on this file (pdq)"
    assert found.values == hashed.values
