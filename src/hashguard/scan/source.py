"""Where the scanned files are: a local directory, or an object-store prefix (``s3://bucket/
prefix``, through fsspec). A source lists its files in key order, with size and (object store)
ETag, and gives a reader that workers use to read a file's bytes into memory, never to disk."""

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hashguard.errors import Invalid, NotFound, Unsupported
from hashguard.signals.batch import expand


class SourceError(Invalid):
    """The source cannot be listed: a directory or bucket missing, unreadable or malformed."""


class SourceNotFound(SourceError, NotFound):
    """No directory or prefix of that name."""


class StoreSupportMissing(SourceError, Unsupported):
    """An object-store URL, and its fsspec implementation (s3fs) is not installed."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file of the source: its key (the path under the directory or prefix, ``/``-separated),
    its size in bytes, and the store's ETag (None for a local file)."""

    key: str
    size: int
    etag: str | None = None


class Reader(Protocol):
    """Reads one file's bytes by key; picklable, so that a worker process gets its own."""

    def read(self, key: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class DirectoryReader:
    root: str

    def read(self, key: str) -> bytes:
        path = os.path.join(self.root, *key.split("/"))
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a pipe would wait
            raise IsADirectoryError(f"not a regular file: {key}")
        with open(path, "rb") as file:
            return file.read()


@dataclass(frozen=True)
class StoreReader:
    """An object-store prefix read through fsspec; each process makes its own file system
    (an fsspec client's connections and event loop do not survive a fork)."""

    protocol: str
    root: str  # bucket/prefix, without the protocol
    options: dict[str, Any] = field(default_factory=dict)

    def read(self, key: str) -> bytes:
        return bytes(_store(self.protocol, self.options).cat_file(f"{self.root}/{key}"))


_STORES: dict[tuple[int, str, str], Any] = {}  # per process: one file system per protocol


def _store(protocol: str, options: dict[str, Any]) -> Any:
    import fsspec

    place = (os.getpid(), protocol, repr(sorted(options.items())))
    if place not in _STORES:
        _STORES[place] = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    return _STORES[place]


@dataclass(frozen=True, slots=True)
class Source:
    """A place to scan: its location (a directory's absolute path, or the URL as given), and
    how its files are read."""

    location: str
    reader: DirectoryReader | StoreReader

    def files(self) -> list[StoredFile]:
        """Every file, sorted by key. Raises SourceNotFound, SourceError."""
        if isinstance(self.reader, DirectoryReader):
            return _directory_files(self.reader.root)
        return _store_files(self.reader)


def open_source(location: str, endpoint_url: str | None = None) -> Source:
    """The source at ``location``: a directory, or ``PROTOCOL://bucket/prefix`` (``s3://``:
    credentials from the standard AWS variables; ``endpoint_url`` for an S3-compatible
    store). Raises SourceError for a malformed URL, StoreSupportMissing when its fsspec
    implementation is not installed."""
    if "://" not in location:
        root = os.path.abspath(location)
        return Source(root, DirectoryReader(root))
    protocol, _, rest = location.partition("://")
    root = rest.strip("/")
    if not root:
        raise SourceError(f"{location}: expected {protocol}://BUCKET[/PREFIX]")
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a"):
        protocol = "s3"
        try:
            import s3fs  # noqa: F401 - only to say what is missing
        except ImportError:
            raise StoreSupportMissing(
                f"{location}: reading s3:// needs s3fs: pip install 'hashguard[s3]'"
            ) from None
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
    else:
        import fsspec

        if protocol not in fsspec.available_protocols():
            raise SourceError(f"{location}: unknown storage protocol {protocol}://")
    return Source(location, StoreReader(protocol, root, options))


def _directory_files(root: str) -> list[StoredFile]:
    if not os.path.isdir(root):
        what = "not a directory" if os.path.exists(root) else "no such directory"
        raise SourceNotFound(f"{root}: {what}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceError(f"{root}: cannot read the directory (permission denied)")
    found = []
    for path in expand([root]):
        key = Path(os.path.relpath(path, root)).as_posix()
        try:
            size = os.stat(path).st_size
        except OSError:  # a broken link, an unreadable directory: its row says why
            size = 0
        found.append(StoredFile(key, size))
    found.sort(key=lambda f: f.key)
    return found


def _store_files(reader: StoreReader) -> list[StoredFile]:
    where = f"{reader.protocol}://{reader.root}"
    try:
        store = _store(reader.protocol, reader.options)
        listed = store.find(reader.root, detail=True)
    except FileNotFoundError:
        raise SourceNotFound(f"{where}: no such bucket or prefix") from None
    except PermissionError as error:
        raise SourceError(f"{where}: access denied ({error})") from None
    except (OSError, ValueError) as error:
        raise SourceError(f"{where}: cannot list ({' '.join(str(error).split())})") from None
    found = []
    for path, info in listed.items():
        if info.get("type") == "directory":
            continue
        key = path[len(reader.root) :].lstrip("/")
        if not key:  # the prefix names one object: scan what is under a prefix
            continue
        etag = info.get("ETag") or info.get("etag")
        found.append(StoredFile(key, int(info.get("size") or 0), str(etag).strip('"') or None))
    found.sort(key=lambda f: f.key)
    return found
