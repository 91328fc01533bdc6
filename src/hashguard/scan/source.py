"""Where the scanned files are: a local directory, or an S3 prefix (``s3://bucket/prefix``,
through fsspec's s3fs). A source lists its files in key order, with size and ETag (S3), and
gives a reader that workers use to open a file: a stream read in chunks (a small object in one
request), held in memory, never written to disk. A local file's key is its path under the
directory, valid UTF-8 even when a name is not (``key_of``), and the reader maps it back.

What goes wrong reading a file is told apart from what goes wrong with the source: a file
missing, not a regular file or refused to us is that file's problem (``OSError``, the file's
row); the store unreachable, the credentials missing or expired, throttling, a stale mount or
a disk's I/O error is the source's (``SourceUnavailable``: the part is not written, and a
later run resumes it)."""

import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

from hashguard.errors import Invalid, NotFound, Unavailable, Unsupported
from hashguard.signals.batch import expand

# Objects up to this size are read in one request; larger ones are streamed in blocks of it.
_BLOCK: Final = 8 * 1024 * 1024
_PROTOCOLS: Final = ("s3", "s3a")  # besides local paths, the only ones tested
# What a local path's key escapes: a backslash, and a byte that is not UTF-8 (a surrogate).
_ESCAPED: Final = re.compile(r"[\\\udc80-\udcff]")
_ESCAPE: Final = re.compile(r"\\(\\|x[0-9a-f]{2})")


class SourceError(Invalid):
    """The source cannot be listed: a directory or bucket missing, unreadable or malformed."""


class SourceNotFound(SourceError, NotFound):
    """No directory or prefix of that name, or nothing in it."""


class StoreSupportMissing(SourceError, Unsupported):
    """An object-store URL, and its fsspec implementation (s3fs) is not installed."""


class SourceUnavailable(Unavailable):
    """The source cannot be read now (an endpoint down, credentials missing or expired,
    throttling, an I/O error): not one file's fault, so no file's row says it."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of the source: its key (the path under the directory or prefix, ``/``-separated),
    its size in bytes, and the store's ETag (None for a local file)."""

    key: str
    size: int
    etag: str | None = None


def key_of(path: str) -> str:
    """A local path as a key: valid UTF-8 whatever the bytes of its names, and mapping back to
    them (``path_of``). A byte that is not UTF-8 is written ``\\xNN`` (``caf\\xe9.jpg``), and so
    that no other name reads the same, a backslash is written twice; any other path is its own
    key."""
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    return _ESCAPED.sub(_escape, text)


def path_of(key: str) -> str:
    """The local path whose key (``key_of``) ``key`` is."""
    text = _ESCAPE.sub(_unescape, key)
    return os.fsdecode(text.encode("utf-8", "surrogateescape"))


def _escape(found: "re.Match[str]") -> str:
    char = found[0]
    return "\\\\" if char == "\\" else f"\\x{ord(char) - 0xDC00:02x}"


def _unescape(found: "re.Match[str]") -> str:
    escaped = found[1]
    return "\\" if escaped == "\\" else chr(0xDC00 + int(escaped[1:], 16))


class OpenedFile(io.RawIOBase):
    """A file opened for hashing: its bytes, read in chunks, and its size. Hashing makes a
    row of any error a read raises, so the file keeps the first one the source is to blame
    for: ``check`` raises it as SourceUnavailable afterwards."""

    def __init__(self, inner: BinaryIO, size: int, where: str) -> None:
        super().__init__()
        self.inner, self.size, self.where = inner, size, where
        self.failure: SourceUnavailable | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.inner.read(len(buffer))
        except Exception as error:
            if self.failure is None and not own_fault(error):
                self.failure = unavailable(self.where, error)
            _raise_if_changed(error)
            raise
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
        super().close()

    def check(self) -> None:
        """Raises SourceUnavailable when a read failed through no fault of the file's."""
        if self.failure is not None:
            raise self.failure


class Reader(Protocol):
    """Opens one file by key; picklable, so that a worker process gets its own."""

    def open(self, key: str, size: int | None = None, etag: str | None = None) -> OpenedFile:
        """The file, to read; ``size`` and ``etag`` as listed (a store's object is then read
        without asking for them, and only while its ETag is that one). Raises OSError for the
        file's own problem, SourceUnavailable for the source's."""
        ...


@dataclass(frozen=True, slots=True)
class DirectoryReader:
    root: str

    def open(self, key: str, size: int | None = None, etag: str | None = None) -> OpenedFile:
        path = os.path.join(self.root, *path_of(key).split("/"))
        try:
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):  # listed as a directory that could not be read
                os.listdir(path)
                raise IsADirectoryError(errno.EISDIR, "a directory")
            if not stat.S_ISREG(mode):  # opening a pipe would wait
                raise IsADirectoryError(errno.EINVAL, f"not a regular file: {key}")
            file = open(path, "rb", buffering=0)  # noqa: SIM115 - OpenedFile closes it
        except OSError as error:
            if own_fault(error) and os.path.isdir(self.root):  # not a volume gone from under it
                raise
            raise unavailable(path, error) from None
        return OpenedFile(file, os.fstat(file.fileno()).st_size, path)


@dataclass(frozen=True)
class StoreReader:
    """An S3 prefix read through fsspec; each process makes its own file system (an fsspec
    client's connections and event loop do not survive a fork)."""

    protocol: str
    root: str  # bucket/prefix, without the protocol
    options: dict[str, Any] = field(default_factory=dict)

    def open(self, key: str, size: int | None = None, etag: str | None = None) -> OpenedFile:
        path = f"{self.root}/{key}"
        where = f"{self.protocol}://{path}"
        try:  # with the size known, no HEAD: a GET's error says whose fault it is, a HEAD's not
            file = _store(self.protocol, self.options).open(path, "rb", _BLOCK, size=size)
            if size is not None and etag is not None:  # what s3fs would HEAD for, as listed
                file.details = {"name": path, "size": size, "type": "file", "ETag": f'"{etag}"'}
                file.read_kw = {**file.read_kw, "IfMatch": f'"{etag}"'}
            size = int(file.size)
            if size <= _BLOCK:  # one request, not one per pass of the hashes
                with file:
                    return OpenedFile(io.BytesIO(file.read()), size, where)
        except Exception as error:
            if isinstance(error, OSError) and own_fault(error):
                _raise_if_changed(error)
                raise
            raise unavailable(where, error) from None
        return OpenedFile(file, size, where)


_STORES: dict[tuple[int, str, str], Any] = {}  # per process: one file system per protocol


def _store(protocol: str, options: dict[str, Any]) -> Any:
    import fsspec

    place = (os.getpid(), protocol, repr(sorted(options.items())))
    if place not in _STORES:
        _STORES[place] = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    return _STORES[place]


# A file's own problems; any other error reading it is the source's.
_OWN_ERRNOS: Final = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ELOOP,
     errno.ENAMETOOLONG, errno.EINVAL}
)  # fmt: skip
_OWN_CODES: Final = frozenset(
    {"NoSuchKey", "NotFound", "404", "AccessDenied", "403", "InvalidObjectState",
     "PreconditionFailed"}  # the last: its ETag is no longer the one listed
)  # fmt: skip


def own_fault(error: BaseException) -> bool:
    """Whether a failed read is the file's own problem (missing, not a regular file, access
    refused to it, changed since it was listed), rather than the source's."""
    code = _code(error)
    if code is not None:  # an object store's answer: per object, or about us (ExpiredToken)
        return str(code) in _OWN_CODES
    if isinstance(error, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return True
    return isinstance(error, OSError) and (
        isinstance(error, PermissionError) or error.errno in _OWN_ERRNOS
    )


def _code(error: BaseException | None) -> str | None:
    """An object store's error code, if the error is its answer (or was raised for it)."""
    while error is not None:
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code is not None:
            return str(code)
        error = error.__cause__
    return None


def _raise_if_changed(error: BaseException) -> None:
    """Says so when ``error`` is that of an object changed since it was listed (If-Match)."""
    if _code(error) == "PreconditionFailed":
        raise OSError(errno.ESTALE, "changed since it was listed (another ETag)") from None


def unavailable(where: str, error: BaseException) -> SourceUnavailable:
    """``error``, the source's, as one line naming ``where``."""
    said = error.strerror if isinstance(error, OSError) and error.strerror else _said(error)
    return SourceUnavailable(
        f"{where}: cannot read ({said}); nothing of its part was written: run the scan again "
        "to resume"
    )


@dataclass(frozen=True, slots=True)
class Source:
    """A place to scan: its location (a directory's absolute path, or ``s3://bucket/prefix``),
    and how its files are read."""

    location: str
    reader: DirectoryReader | StoreReader

    def files(self, after: str | None = None, skipping: Path | None = None) -> Iterator[StoredFile]:
        """Every file, in key order (``expand``'s: the code-point order of the keys, which is
        the UTF-8 byte order an object store lists them in), listed as it is consumed: no more
        than a directory's entries (or a page of 1,000 objects) are held at a time. ``after``:
        only the files after that key (a listing resumed: an object store starts its listing
        there, a directory's walk passes the keys up to it by, with no stat). ``skipping``: a local
        directory none of whose files is listed (the scan's output, when under the source).
        Raises SourceNotFound (also for a source with no file), SourceError,
        SourceUnavailable: for the first file when called, for the others when they are
        reached."""
        if isinstance(self.reader, DirectoryReader):
            listed = _directory_files(self.reader.root, after, skipping)
        else:
            listed = _store_files(self.reader, after)
        first = next(listed, None)
        if first is None:
            if after is not None:
                return iter(())
            raise SourceNotFound(f"{self.location}: no files to scan (empty, or no such prefix)")
        return chain([first], listed)

    def locate(self, key: str) -> str:
        """Where the file of ``key`` is, in full: ``s3://bucket/prefix/key``, or the
        absolute path of a local file."""
        return f"{self.location}/{key}"


def open_source(location: str, endpoint_url: str | None = None) -> Source:
    """The source at ``location``: a directory, or ``s3://bucket/prefix`` (``s3a://`` too;
    credentials from the standard AWS variables; ``endpoint_url`` for an S3-compatible
    store). Raises SourceError for a malformed URL or another protocol, StoreSupportMissing
    when s3fs is not installed."""
    if "://" not in location:
        root = os.path.abspath(location)
        return Source(key_of(root), DirectoryReader(root))
    protocol, _, rest = location.partition("://")
    if protocol.lower() not in _PROTOCOLS:
        raise SourceError(
            f"{location}: unsupported storage protocol {protocol}:// (a directory, or s3://)"
        )
    root = rest.strip("/")
    if not root:
        raise SourceError(f"{location}: expected {protocol}://BUCKET[/PREFIX]")
    try:
        import s3fs  # noqa: F401 - only to say what is missing
    except ImportError:
        raise StoreSupportMissing(
            f"{location}: reading s3:// needs s3fs: pip install 'hashguard[s3]'"
        ) from None
    options: dict[str, Any] = {}
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    return Source(f"s3://{root}", StoreReader("s3", root, options))


def _directory_files(root: str, after: str | None, skipping: Path | None) -> Iterator[StoredFile]:
    if not os.path.isdir(root):
        what = "not a directory" if os.path.exists(root) else "no such directory"
        raise SourceNotFound(f"{root}: {what}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceError(f"{root}: cannot read the directory (permission denied)")
    under = os.path.join(root, "")  # what every path walked starts with
    last = None if after is None else path_of(after)  # compared as the walk orders them
    skipped = None if skipping is None else _under(root, skipping)
    for path in expand([root]):
        name = path[len(under) :].replace(os.sep, "/")
        if (last is not None and name <= last) or (
            skipped is not None and name.startswith(skipped)
        ):
            continue
        try:
            size = os.stat(path).st_size
        except OSError:  # a broken link, an unreadable directory: its row says why
            size = 0
        yield StoredFile(key_of(name), size)


def _under(root: str, directory: Path) -> str | None:
    """What the paths of ``directory``'s files start with under ``root`` (``""``: the root
    itself), or None when it is not under it."""
    inside = os.path.relpath(os.path.realpath(directory), os.path.realpath(root))
    if inside == os.pardir or inside.startswith(os.pardir + os.sep):
        return None
    return "" if inside == os.curdir else inside.replace(os.sep, "/") + "/"


def _store_files(reader: StoreReader, after: str | None) -> Iterator[StoredFile]:
    """The objects under the prefix (after the key ``after``), a page (ListObjectsV2: up to
    1,000 keys, in UTF-8 byte order) at a time."""
    where = f"{reader.protocol}://{reader.root}"
    try:
        store = _store(reader.protocol, reader.options)
        bucket, prefix, _ = store.split_path(reader.root)
    except Exception as error:  # the store's own errors, botocore's too
        raise _unlisted(where, error) from None
    under = f"{prefix}/" if prefix else ""
    asked = {"Bucket": bucket, "Prefix": under}
    if after is not None:
        asked["StartAfter"] = under + after
    while True:
        try:
            page = store.call_s3("list_objects_v2", **asked)
        except Exception as error:
            raise _unlisted(where, error) from None
        for found in page.get("Contents", ()):
            key = found["Key"]
            if key.endswith("/"):
                continue  # a directory marker (the prefix's own among them)
            etag = found.get("ETag")
            size = int(found.get("Size") or 0)
            yield StoredFile(key[len(under) :], size, str(etag).strip('"') if etag else None)
        if not page.get("IsTruncated"):
            return
        asked["ContinuationToken"] = page["NextContinuationToken"]


def _unlisted(where: str, error: BaseException) -> SourceError | SourceUnavailable:
    if isinstance(error, FileNotFoundError):
        return SourceNotFound(f"{where}: no such bucket or prefix")
    if isinstance(error, OSError) and own_fault(error):
        return SourceError(f"{where}: cannot list ({_said(error)})")
    return SourceUnavailable(f"{where}: cannot list ({_said(error)})")


def _said(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
