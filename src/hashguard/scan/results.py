"""A scan's output directory, made to be resumed.

A directory holds a scan when it carries the marker ``.hashguard-scan``, created first, in a
directory found empty: nothing is ever removed or overwritten in a directory without it, and
within one only the scan's own files are. A driver holds an exclusive lock on the marker while
it runs, so two drivers never write one directory.

``scan.json`` (the plan) says what the scan is (source, its endpoint, lists by name and id,
part size, minimum quality and stability, where matches are reported) and the list versions
and policies its last run matched with. It is written once the source has given its first
file, before the listing: ``listing/`` holds the files in listing order, committed as they are
listed, a chunk at a time (``chunk-NNNNN.parquet``: about 100,000 files, in row groups of about
1,000, whole parts each; written aside and renamed), then ``progress.json`` (how many parts and
files are committed, the last key, whether the listing is complete). A listing stopped midway
(the source failed, the driver was killed) resumes after the last key committed; reading a
part reads its chunk's footer and one row group, whatever the number of parts. Each part's
rows go to ``parts/part-NNNNN.parquet``, written aside and renamed into place, with the part's
counts in its Parquet metadata: a part file present is a part finished, so a killed driver
resumes with the parts missing and no row is ever written twice, and the summary is summed
from the parts' footers without reading their rows. ``parts/part-NNNNN.reported`` marks a
part whose matches the service took. ``summary.json`` comes at the end."""

import fcntl
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from itertools import islice, zip_longest
from pathlib import Path
from typing import IO, Any, Final, Protocol, overload

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hashguard import durable
from hashguard.errors import Conflict, Invalid
from hashguard.lists.model import ListPolicy
from hashguard.scan.source import StoredFile
from hashguard.scan.work import NOT_MEDIA_KIND, row_schema

MARKER: Final = ".hashguard-scan"
PLAN: Final = "scan.json"
LISTING: Final = "listing"
PROGRESS: Final = "progress.json"
PARTS: Final = "parts"
SUMMARY: Final = "summary.json"
_OLDER_LISTING: Final = "listing.parquet"  # before the listing was committed in chunks
_PART: Final = re.compile(r"part-(\d+)\.parquet")
_REPORTED: Final = re.compile(r"part-(\d+)\.reported")
_LISTING_FILE: Final = re.compile(r"chunk-\d+\.parquet|progress\.json")
# What a write killed midway leaves (durable's temporary names): removed when a run begins.
_MARKER_ASIDE: Final = re.compile(r"\.\.hashguard-scan\..*\.tmp")
_LEFT_ASIDE: Final = re.compile(
    r"\.(\.hashguard-scan|scan\.json|listing\.parquet|summary\.json|progress\.json"
    r"|part-\d+\.\w+|chunk-\d+\.parquet)\..*\.tmp"
)
# A listing chunk holds about this many files (whole row groups; a part at least), and a row
# group this many (whole parts; a part at least): a part's read parses a footer of 100 row
# groups at most and reads one, and a listing stopped loses a chunk at most.
_CHUNK_FILES: Final = 100_000
_GROUP_FILES: Final = 1_000
_LISTED: Final = pa.schema([("key", pa.string()), ("size", pa.int64()), ("etag", pa.string())])
_COUNTS: Final = b"hashguard.counts"
_RESTART: Final = "run again with --restart to start the scan again"


def scanned_schema() -> pa.Schema:
    """The columns of a part file: a scan's rows (``row_schema``), and the digests of the
    lists' policies they were matched with (JSON text, ``{"list": "digest"}``)."""
    return row_schema().append(pa.field("policies", pa.string()))


class OutputError(Invalid):
    """The output directory cannot hold a scan (a file, another program's directory, a damaged
    scan)."""


class ResumeRefused(Conflict):
    """The output directory holds a scan of something else (source, lists, part size), or one
    being run now."""


def policy_digest(policy: ListPolicy) -> str:
    """A short digest of what of a list's policy a scan's rows were matched with: all of it
    but ``four_eyes`` (how its detections are reviewed, not what matches)."""
    matching = {name: value for name, value in policy.as_json().items() if name != "four_eyes"}
    return hashlib.sha256(json.dumps(matching, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ScannedList:
    """A list a scan matches against: its id (a list removed and made again under its name is
    another list), the version matched against and the digest of its policy then."""

    id: int
    version: int
    policy: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a scan is: resuming it means the same source (and endpoint), lists (names and
    ids), part size, minimum quality and stability; the lists' versions and policies may have
    moved on since. ``report_to``: the service matches are reported to, once given."""

    source: str
    lists: dict[str, ScannedList]  # by name
    part_size: int
    min_quality: int | None = None
    min_stability: int | None = None
    variants: tuple[str, ...] = ()
    endpoint: str | None = None
    report_to: str | None = None

    def versions(self) -> dict[str, int]:
        return {name: scanned.version for name, scanned in self.lists.items()}

    def policies(self) -> str:
        """The lists' policy digests as each part's rows record them: JSON text."""
        return json.dumps({name: self.lists[name].policy for name in sorted(self.lists)})


@dataclass(frozen=True, slots=True)
class Begun:
    """A scan started or resumed: the number of files in each part (as first listed), whether
    the source lists differently now (None: not checked), what moved in the lists since the
    last run (name -> what), and where matches are reported (the plan's target)."""

    sizes: list[int]
    resumed: bool
    changed: bool | None = False
    moved: dict[str, str] = field(default_factory=dict)
    report_to: str | None = None


class Listing(Protocol):
    """A source's files in key order (``Source.files``): those after the key ``after``, none
    of the directory ``skipping``."""

    def __call__(
        self, after: str | None = None, skipping: Path | None = None
    ) -> Iterable[StoredFile]: ...


@dataclass(frozen=True, slots=True)
class Listed:
    """How far the listing got (``progress.json``): parts committed (every one of
    ``part_size`` files but the last), the files in them, the last one's key, and whether the
    source has no more; and how they are laid out: ``group`` parts a row group, ``chunk``
    parts (whole row groups) a chunk file."""

    part_size: int
    group: int
    chunk: int
    parts: int = 0
    files: int = 0
    last: str | None = None
    complete: bool = False

    @classmethod
    def start(cls, part_size: int) -> "Listed":
        group = -(-_GROUP_FILES // part_size)
        return cls(part_size, group, group * max(1, _CHUNK_FILES // (group * part_size)))

    def sizes(self) -> list[int]:
        """The number of files of each part committed."""
        if not self.parts:
            return []
        full = self.parts - 1
        return [self.part_size] * full + [self.files - self.part_size * full]


@dataclass(frozen=True, slots=True)
class PartFiles(Sequence[StoredFile]):
    """Part ``number``'s files, read from the listing (``listing``: its directory, laid out
    as ``listed`` says) when asked for: a driver holds the parts, not their files. The last
    row group read is kept, per process, so iterating a part again or indexing it reads
    nothing."""

    listing: Path
    number: int
    length: int
    listed: Listed

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> StoredFile: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[StoredFile]: ...
    def __getitem__(self, index: int | slice) -> StoredFile | Sequence[StoredFile]:
        if isinstance(index, slice):
            return self._files()[index]
        rows, start = self._group()
        return rows[start + range(self.length)[index]]

    def __iter__(self) -> Iterator[StoredFile]:
        return iter(self._files())

    def _files(self) -> tuple[StoredFile, ...]:
        rows, start = self._group()
        return rows[start : start + self.length]

    def _group(self) -> tuple[tuple[StoredFile, ...], int]:
        """The files of the part's row group, and where the part's begin in it."""
        chunk, group = self.listed.chunk, self.listed.group
        path = self.listing / _chunk_name(self.number // chunk)
        try:
            found = os.stat(path)
        except OSError as error:
            raise _damaged(path, error) from None
        rows = _row_group(path, self.number % chunk // group, (found.st_ino, found.st_mtime_ns))
        return rows, self.number % group * self.listed.part_size


@lru_cache(maxsize=1)
def _row_group(path: Path, group: int, identity: tuple[int, int]) -> tuple[StoredFile, ...]:
    """Row group ``group`` of the listing chunk ``path`` (``identity``: the file's, so that a
    chunk written again is read again)."""
    try:
        table = pq.ParquetFile(path).read_row_group(group)
    except (OSError, pa.ArrowException) as error:
        raise _damaged(path, error) from None
    return tuple(StoredFile(**row) for row in table.to_pylist())


def _chunk_name(number: int) -> str:
    return f"chunk-{number:05d}.parquet"


class Results:
    """The output directory ``directory`` of one scan."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.parts_directory = self.directory / PARTS
        self.listing_directory = self.directory / LISTING
        self.plan: Plan | None = None  # once begun
        self._lock: IO[bytes] | None = None
        self._listed: Listed | None = None  # once read

    def begin(
        self, plan: Plan, listing: Listing, restart: bool = False, check_source: bool = False
    ) -> Begun:
        """Start the scan ``plan`` of the files ``listing`` gives (called to list the source
        when the scan starts, after the last key committed when its listing was stopped, and
        on a resume otherwise only with ``check_source``), or resume the one the directory
        holds. Raises ResumeRefused when it holds another scan (unless ``restart``: its results
        are removed first) or one running now, OutputError when it is not a directory that can
        hold one; and what ``listing`` raises (what it listed before is kept)."""
        self._claim()
        try:
            return self._begin(plan, listing, restart, check_source)
        except BaseException:
            assert self._lock is not None
            self._lock.close()  # no scan goes on here: the directory is free for the next
            raise

    def _begin(self, plan: Plan, listing: Listing, restart: bool, check_source: bool) -> Begun:
        found = None if restart else self._plan()
        if found is None:  # new, restarted, or one that never got as far as its plan
            try:
                self._remove()
            except OSError as error:
                raise self._unwritable(self.directory, error) from None
            files = listing(skipping=self.directory)  # what the source raises at once: no plan
            try:
                self.parts_directory.mkdir(exist_ok=True)
                self.listing_directory.mkdir(exist_ok=True)
                self._write_plan(plan)
            except OSError as error:
                raise self._unwritable(self.directory, error) from None
            self.plan = plan
            listed = self._list(files, Listed.start(plan.part_size))
            return Begun(listed.sizes(), resumed=False, report_to=plan.report_to)
        _check_same(self.directory, found, plan)
        if (self.directory / _OLDER_LISTING).exists():
            raise OutputError(f"{self.directory}: a scan made by an older hashguard; {_RESTART}")
        try:
            self.parts_directory.mkdir(exist_ok=True)
            self.listing_directory.mkdir(exist_ok=True)
        except OSError as error:
            raise self._unwritable(self.directory, error) from None
        listed = self._progress() or Listed.start(found.part_size)
        changed = None
        if not listed.complete:  # the source is listed, from where it stopped: not checked
            listed = self._list(listing(listed.last, self.directory), listed)
        elif check_source:
            changed = _differ(listing(skipping=self.directory), self.listing())
        now = replace(plan, report_to=plan.report_to or found.report_to)
        if now != found:  # what this run matches with, for the next one to compare
            self._write_plan(now)
        self.plan = now
        return Begun(listed.sizes(), True, changed, _moved(found, plan), now.report_to)

    def sizes(self) -> list[int]:
        """The number of files of each part."""
        listed = self._progress()
        if listed is None or not listed.complete:
            path = self.listing_directory / PROGRESS
            raise _damaged(path, FileNotFoundError(2, "the listing is not complete"))
        return listed.sizes()

    def part_files(self, number: int, length: int) -> PartFiles:
        if self._listed is None:
            self.sizes()  # reads it
        assert self._listed is not None
        return PartFiles(self.listing_directory, number, length, self._listed)

    def listing(self) -> Iterator[StoredFile]:
        """The files as listed when the scan began, in order, a chunk at a time."""
        sizes = self.sizes()
        assert self._listed is not None
        for number in range(0, len(sizes), self._listed.chunk):
            path = self.listing_directory / _chunk_name(number // self._listed.chunk)
            try:
                for batch in pq.ParquetFile(path).iter_batches():
                    yield from (StoredFile(**row) for row in batch.to_pylist())
            except (OSError, pa.ArrowException) as error:
                raise _damaged(path, error) from None

    def done(self) -> set[int]:
        """The numbers of the parts finished."""
        return self._numbered(_PART)

    def reported(self) -> set[int]:
        """The numbers of the parts whose matches the service took."""
        return self._numbered(_REPORTED)

    def part_path(self, number: int) -> Path:
        return self.parts_directory / f"part-{number:05d}.parquet"

    def write_part(self, number: int, rows: pa.Table) -> None:
        """Publish part ``number``'s rows (``row_schema``), whole (aside, fsynced, renamed),
        with the policies they were matched with and their counts. Raises OutputError."""
        assert self.plan is not None, "begin first"
        policies = pa.array([self.plan.policies()] * rows.num_rows, pa.string())
        rows = rows.append_column(scanned_schema().field("policies"), policies)
        counted = json.dumps(_counts(rows)).encode()
        rows = rows.replace_schema_metadata({**(rows.schema.metadata or {}), _COUNTS: counted})
        try:
            with durable.writing(self.part_path(number)) as file:
                pq.write_table(rows, file)
        except OSError as error:
            raise self._unwritable(self.part_path(number), error) from None

    def part_rows(self, number: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Part ``number``'s rows (``columns`` of them). Raises OutputError."""
        path = self.part_path(number)
        try:
            return pq.read_table(path, columns=columns, schema=scanned_schema())
        except (OSError, pa.ArrowException) as error:
            raise _damaged(path, error) from None

    def mark_reported(self, number: int) -> None:
        path = self.parts_directory / f"part-{number:05d}.reported"
        try:
            durable.write(path, b"")
        except OSError as error:
            raise self._unwritable(path, error) from None

    def rows(self) -> pa.Table:
        """Every row written, in part order (in listing order): all in memory, for small
        scans and tests."""
        tables = [self.part_rows(n) for n in sorted(self.done())]
        return pa.concat_tables(tables) if tables else scanned_schema().empty_table()

    def counts(self) -> dict[str, Any]:
        """The finished parts' counts summed, from their footers: files, bytes, files
        matched, files matched per list, files per error kind (``not media`` among them), and
        the list versions used (JSON text, as rows record them) with their parts and files.
        Raises OutputError."""
        total: dict[str, Any] = {"files": 0, "bytes": 0, "matched": 0}
        by_list: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        used: dict[str, dict[str, int]] = {}
        for number in sorted(self.done()):
            path = self.part_path(number)
            try:
                counted = json.loads(pq.read_metadata(path).metadata[_COUNTS])
            except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as error:
                raise _damaged(path, error) from None
            for name in total:
                total[name] += counted[name]
            by_list.update(counted["by_list"])
            kinds.update(counted["kinds"])
            for versions, files in counted["lists"].items():
                seen = used.setdefault(versions, {"parts": 0, "files": 0})
                seen["parts"] += 1
                seen["files"] += files
        return {
            **total,
            "by_list": dict(sorted(by_list.items())),
            "kinds": dict(sorted(kinds.items())),
            "versions_used": dict(sorted(used.items())),
        }

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        text = json.dumps(summary, indent=2) + "\n"
        try:
            durable.write(self.directory / SUMMARY, text.encode())
        except OSError as error:
            raise self._unwritable(self.directory / SUMMARY, error) from None

    def _claim(self) -> None:
        """Make the directory the scan's (only when it is empty), and lock it."""
        directory, marker = self.directory, self.directory / MARKER
        if directory.exists() and not directory.is_dir():
            raise OutputError(f"{directory}: not a directory")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not marker.is_file():
                # Empty, but for a marker a killed run began to write (removed below).
                if any(not _MARKER_ASIDE.fullmatch(p.name) for p in directory.iterdir()):
                    raise OutputError(f"{directory}: not empty, and holds no scan")
                durable.write(marker, b"a hashguard scan's output directory (docs/scan.md)\n")
            self._lock = open(marker, "rb")  # noqa: SIM115 - held while the scan runs
        except OSError as error:
            raise OutputError(f"{directory}: cannot use ({error.strerror or error})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResumeRefused(f"{directory}: another scan is running in it") from None
        for folder in (directory, self.listing_directory, self.parts_directory):
            if folder.is_dir():
                for path in folder.iterdir():
                    if _LEFT_ASIDE.fullmatch(path.name):
                        path.unlink(missing_ok=True)

    def _numbered(self, pattern: re.Pattern[str]) -> set[int]:
        if not self.parts_directory.is_dir():
            return set()
        found = (pattern.fullmatch(p.name) for p in self.parts_directory.iterdir())
        return {int(m.group(1)) for m in found if m is not None}

    def _plan(self) -> Plan | None:
        try:
            text = (self.directory / PLAN).read_text()
        except FileNotFoundError:
            return None
        try:
            found = json.loads(text)
            lists = {name: ScannedList(**scanned) for name, scanned in found.pop("lists").items()}
            return Plan(lists=lists, variants=tuple(found.pop("variants", ())), **found)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise OutputError(f"{self.directory / PLAN}: not a scan's plan; {_RESTART}") from None

    def _write_plan(self, plan: Plan) -> None:
        durable.write(self.directory / PLAN, (json.dumps(asdict(plan), indent=2) + "\n").encode())

    def _progress(self) -> Listed | None:
        """The listing's progress record; None before its first chunk."""
        path = self.listing_directory / PROGRESS
        try:
            self._listed = Listed(**json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as error:
            raise _damaged(path, error) from None
        return self._listed

    def _list(self, files: Iterable[StoredFile], listed: Listed) -> Listed:
        """The listing carried on from ``listed`` with ``files``: a chunk of parts at a time,
        written aside and renamed (a row group per part), then the progress record. Raises
        what ``files`` raises (the chunk under way is dropped), OutputError."""
        remaining = iter(files)
        try:
            while chunk := list(islice(remaining, listed.chunk * listed.part_size)):
                columns = {"key": [f.key for f in chunk], "size": [f.size for f in chunk],
                           "etag": [f.etag for f in chunk]}  # fmt: skip
                table = pa.table(columns, schema=_LISTED)
                path = self.listing_directory / _chunk_name(listed.parts // listed.chunk)
                with durable.writing(path) as file:
                    rows = listed.group * listed.part_size
                    pq.write_table(table, file, rows, write_statistics=False)
                parts = -(-len(chunk) // listed.part_size)
                listed = replace(listed, parts=listed.parts + parts,
                                 files=listed.files + len(chunk), last=chunk[-1].key)  # fmt: skip
                self._write_progress(listed)
            listed = replace(listed, complete=True)
            self._write_progress(listed)
        except OSError as error:
            raise self._unwritable(self.listing_directory, error) from None
        self._listed = listed
        return listed

    def _write_progress(self, listed: Listed) -> None:
        text = json.dumps(asdict(listed)) + "\n"
        durable.write(self.listing_directory / PROGRESS, text.encode())

    def _remove(self) -> None:
        """The scan's own files, and nothing else."""
        (self.directory / PLAN).unlink(missing_ok=True)  # first: the rest is no scan without it
        for name in (_OLDER_LISTING, SUMMARY):
            (self.directory / name).unlink(missing_ok=True)
        for folder, own in ((self.listing_directory, _LISTING_FILE), (self.parts_directory, _PART),
                            (self.parts_directory, _REPORTED)):  # fmt: skip
            if folder.is_dir():
                for path in folder.iterdir():
                    if own.fullmatch(path.name):
                        path.unlink()

    def _unwritable(self, path: Path, error: OSError) -> OutputError:
        return OutputError(f"{path}: cannot write ({error.strerror or error})")


def _damaged(path: Path, error: BaseException) -> OutputError:
    said = error.strerror if isinstance(error, OSError) and error.strerror else error
    return OutputError(f"{path}: damaged or missing ({' '.join(str(said).split())}); {_RESTART}")


def _counts(rows: pa.Table) -> dict[str, Any]:
    matches = rows["matches"].to_pylist()
    by_list = Counter(name for found in matches for name in {m["list"] for m in found})
    kinds = Counter(kind for kind in rows["error_kind"].to_pylist() if kind is not None)
    return {
        "files": rows.num_rows,
        "bytes": pc.sum(rows["size"]).as_py() or 0,
        "matched": sum(1 for found in matches if found),
        "by_list": dict(by_list),
        "kinds": dict(kinds),
        "lists": dict(Counter(rows["lists"].to_pylist())),
    }


def error_counts(kinds: Mapping[str, int]) -> dict[str, int]:
    """Files per error kind, less those that are not media (a file of another kind is no
    error)."""
    return {kind: n for kind, n in kinds.items() if kind != NOT_MEDIA_KIND}


def _differ(now: Iterable[StoredFile], then: Iterable[StoredFile]) -> bool:
    return any(a != b for a, b in zip_longest(now, then))


def _moved(found: Plan, plan: Plan) -> dict[str, str]:
    moved = {}
    for name, now in sorted(plan.lists.items()):
        then = found.lists[name]
        what = f"{then.version} -> {now.version}" if now.version != then.version else ""
        if now.policy != then.policy:
            what = f"{what or now.version}, its policy changed"
        if what:
            moved[name] = what
    return moved


def _check_same(directory: Path, found: Plan, plan: Plan) -> None:
    def refuse(what: str) -> None:
        raise ResumeRefused(f"{directory} holds a scan of {what}: use --restart to start it again")

    if found.source.rstrip("/") != plan.source.rstrip("/"):
        refuse(f"{found.source}, not {plan.source}")
    if found.endpoint != plan.endpoint:
        refuse(f"{found.source} at the endpoint {found.endpoint or 'of AWS'} (--endpoint-url)")
    if sorted(found.lists) != sorted(plan.lists):
        refuse(f"the lists {', '.join(sorted(found.lists))}")
    replaced = sorted(n for n, scanned in found.lists.items() if plan.lists[n].id != scanned.id)
    if replaced:
        refuse(f"lists since removed and made again: {', '.join(replaced)}")
    if found.part_size != plan.part_size:
        refuse(f"parts of {found.part_size} files (--part-size)")
    if found.min_quality != plan.min_quality:
        refuse(f"--min-quality {found.min_quality}")
    if found.min_stability != plan.min_stability:
        refuse(f"--min-stability {found.min_stability}")
    if found.report_to and plan.report_to and found.report_to != plan.report_to:
        refuse(f"matches reported to {found.report_to} (--report-to)")
