"""A scan's output directory, made to be resumed.

``scan.json`` says what the scan is (source, lists by name and id, part size, minimum
quality) and the list versions its last run matched against; it is written last when a scan
starts, after ``listing.parquet`` (the files in key order, cut into parts of ``part_size``), so
a directory with a ``scan.json`` always has the listing it was made with. A resume matches
against the lists' versions of its own time: each row records the versions it was matched
against. Each part's rows go to ``parts/part-NNNNN.parquet``, written aside and renamed into
place: a part file present is a part finished, and nothing else records it, so a killed driver
resumes with the parts missing and no row is ever written twice. ``summary.json`` comes at the
end."""

import json
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from hashguard import durable
from hashguard.errors import Conflict, Invalid
from hashguard.scan.source import StoredFile
from hashguard.scan.work import row_schema

PLAN: Final = "scan.json"
LISTING: Final = "listing.parquet"
PARTS: Final = "parts"
SUMMARY: Final = "summary.json"
_PART: Final = re.compile(r"part-(\d+)\.parquet")
_LISTED: Final = pa.schema([("key", pa.string()), ("size", pa.int64()), ("etag", pa.string())])


class OutputError(Invalid):
    """The output directory cannot hold a scan (a file, or another program's directory)."""


class ResumeRefused(Conflict):
    """The output directory holds a scan of something else (source, lists, part size)."""


@dataclass(frozen=True, slots=True)
class ScannedList:
    """A list a scan matches against: its id (a list removed and made again under its name is
    another list) and the version matched against."""

    id: int
    version: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What a scan is: resuming it means the same source, lists (names and ids), part size and
    minimum quality; the lists' versions may have moved on since."""

    source: str
    lists: dict[str, ScannedList]  # by name
    part_size: int
    min_quality: int | None = None

    def versions(self) -> dict[str, int]:
        return {name: scanned.version for name, scanned in self.lists.items()}


@dataclass(frozen=True, slots=True)
class Begun:
    """A scan started or resumed: its files (as first listed) cut into parts, whether the
    source lists differently now, and the lists whose versions moved since the last run (name
    -> (then, now))."""

    parts: list[list[StoredFile]]
    changed: bool
    resumed: bool
    moved: dict[str, tuple[int, int]] = field(default_factory=dict)


class Results:
    """The output directory ``directory`` of one scan."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.parts_directory = self.directory / PARTS

    def begin(self, plan: Plan, files: Sequence[StoredFile], restart: bool = False) -> Begun:
        """Start the scan ``plan`` of ``files`` (the source's listing now), or resume the one
        the directory holds. Raises ResumeRefused when it holds another scan (unless
        ``restart``: its results are removed first), OutputError when it is not a directory
        that can hold one."""
        if self.directory.exists() and not self.directory.is_dir():
            raise OutputError(f"{self.directory}: not a directory")
        if restart:
            self._remove()
        found = self._plan()
        if found is None:
            self._create(plan, files)
            return Begun(_cut(list(files), plan.part_size), changed=False, resumed=False)
        _check_same(self.directory, found, plan)
        moved = {name: (found.lists[name].version, now.version)
                 for name, now in sorted(plan.lists.items())
                 if now.version != found.lists[name].version}  # fmt: skip
        if moved:  # the versions this run matches against, for the next one to compare
            self._write_plan(plan)
        listed = self.listing()
        changed = listed != list(files)
        return Begun(_cut(listed, plan.part_size), changed, resumed=True, moved=moved)

    def listing(self) -> list[StoredFile]:
        table = pq.read_table(self.directory / LISTING, schema=_LISTED)
        return [StoredFile(**row) for row in table.to_pylist()]

    def done(self) -> set[int]:
        """The numbers of the parts finished."""
        if not self.parts_directory.is_dir():
            return set()
        found = (_PART.fullmatch(p.name) for p in self.parts_directory.iterdir())
        return {int(m.group(1)) for m in found if m is not None}

    def part_path(self, number: int) -> Path:
        return self.parts_directory / f"part-{number:05d}.parquet"

    def write_part(self, number: int, rows: pa.Table) -> None:
        """Publish part ``number``'s rows, whole (aside, fsynced, renamed)."""
        with durable.writing(self.part_path(number)) as file:
            pq.write_table(rows, file)

    def rows(self) -> pa.Table:
        """Every row written, in part order (in listing order)."""
        numbers = sorted(self.done())
        tables = [pq.read_table(self.part_path(n)) for n in numbers]
        return pa.concat_tables(tables) if tables else row_schema().empty_table()

    def versions_used(self) -> dict[str, dict[str, int]]:
        """The list versions the finished parts were matched against (JSON text, as rows
        record them), each with its number of parts and of files."""
        used: dict[str, dict[str, int]] = {}
        for number in sorted(self.done()):
            lists = pq.read_table(self.part_path(number), columns=["lists"])["lists"]
            for versions, files in Counter(lists.to_pylist()).items():
                counted = used.setdefault(versions, {"parts": 0, "files": 0})
                counted["parts"] += 1
                counted["files"] += files
        return dict(sorted(used.items()))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        durable.write(self.directory / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())

    def _plan(self) -> Plan | None:
        try:
            text = (self.directory / PLAN).read_text()
        except FileNotFoundError:
            return None
        try:
            found = json.loads(text)
            lists = {name: ScannedList(**scanned) for name, scanned in found.pop("lists").items()}
            return Plan(lists=lists, **found)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise OutputError(
                f"{self.directory / PLAN}: not a scan's plan (use --restart to start again)"
            ) from None

    def _write_plan(self, plan: Plan) -> None:
        durable.write(self.directory / PLAN, (json.dumps(asdict(plan), indent=2) + "\n").encode())

    def _create(self, plan: Plan, files: Sequence[StoredFile]) -> None:
        ours = {PLAN, LISTING, PARTS, SUMMARY}
        if self.directory.is_dir() and any(
            not p.name.startswith(".") and p.name not in ours for p in self.directory.iterdir()
        ):
            raise OutputError(f"{self.directory}: not empty, and holds no scan")
        self._remove()  # a scan that never got as far as its plan
        self.parts_directory.mkdir(parents=True, exist_ok=True)
        listed = pa.Table.from_pylist([asdict(f) for f in files], schema=_LISTED)
        with durable.writing(self.directory / LISTING) as file:
            pq.write_table(listed, file)
        self._write_plan(plan)

    def _remove(self) -> None:
        (self.directory / PLAN).unlink(missing_ok=True)  # first: the rest is no scan without it
        for name in (LISTING, SUMMARY):
            (self.directory / name).unlink(missing_ok=True)
        shutil.rmtree(self.parts_directory, ignore_errors=True)


def _cut(files: list[StoredFile], size: int) -> list[list[StoredFile]]:
    return [files[start : start + size] for start in range(0, len(files), size)]


def _check_same(directory: Path, found: Plan, plan: Plan) -> None:
    def refuse(what: str) -> None:
        raise ResumeRefused(f"{directory} holds a scan of {what}: use --restart to start it again")

    if found.source != plan.source:
        refuse(f"{found.source}, not {plan.source}")
    if sorted(found.lists) != sorted(plan.lists):
        refuse(f"the lists {', '.join(sorted(found.lists))}")
    replaced = sorted(n for n, scanned in found.lists.items() if plan.lists[n].id != scanned.id)
    if replaced:
        refuse(f"lists since removed and made again: {', '.join(replaced)}")
    if found.part_size != plan.part_size:
        refuse(f"parts of {found.part_size} files (--part-size)")
    if found.min_quality != plan.min_quality:
        refuse(f"--min-quality {found.min_quality}")
