"""The scan's unit of work: ``scan_part`` turns a part's files (read in chunks, never the
whole of a large file in memory) into rows, one per file: its hashes, computed as
``hashguard hash`` computes them, and its matches, found by a Matcher as the service finds
them. A pure function, so any engine can run it: a process pool, this process, a Ray task."""

import hashlib
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import pyarrow as pa

from hashguard import __version__
from hashguard.matching import Match, Matcher, Query
from hashguard.media.formats import NOT_MEDIA, MediaKind
from hashguard.scan.source import OpenedFile, Reader, SourceUnavailable, StoredFile
from hashguard.signals import registry
from hashguard.signals.batch import (
    CRASHED,
    OUT_OF_MEMORY,
    UNREADABLE,
    FileFailure,
    FileSkipped,
    HashedFile,
    HashSettings,
    OutOfMemory,
    StreamHashes,
    WorkerCrashed,
    checked_stream,
    failure_kind,
)

NOT_MEDIA_KIND: Final = "not media"
_CHUNK: Final = 1024 * 1024  # bytes read at a time
# A part of this many files or more none of which we may read is taken for the source's fault
# (access to a bucket or a directory revoked), unless the user accepts their rows.
_OUTAGE_FILES: Final = 10

MATCH: Final = pa.struct(
    [
        ("list", pa.string()),
        ("entry", pa.int64()),
        ("signal", pa.string()),
        ("distance", pa.float64()),
        ("variant", pa.string()),
        ("hash", pa.string()),  # the file's hash that matched (the variant's, for a variant)
    ]
)


def row_schema() -> pa.Schema:
    """The columns of a scan's rows: the file, SHA-256 of its bytes, one column per signal
    hashed by default (the registry's, plug-ins included), PDQ's quality and stability, the
    matches, the error (null, or why the media could not be hashed) and its kind, the list
    versions matched against (JSON text) and hashguard's version."""
    signals = [(name, pa.string()) for name in registry.names() if name != "sha256"]
    return pa.schema(
        [
            ("key", pa.string()),
            ("size", pa.int64()),
            ("etag", pa.string()),
            ("sha256", pa.string()),
            *signals,
            ("pdq_quality", pa.int32()),
            ("pdq_stability", pa.int32()),
            ("matches", pa.list_(MATCH)),
            ("error", pa.string()),
            ("error_kind", pa.string()),
            ("lists", pa.string()),
            ("hashguard", pa.string()),
        ]
    )


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """What every part is scanned with: the hashing (every signal hashed by default, or
    ``signals``; the query variants the lists allow), the list versions the Matcher holds,
    and whether a part none of whose files we may read gets its rows anyway
    (``accept_unreadable``; else it is taken for the source's fault)."""

    variants: frozenset[str] = frozenset()
    versions: Mapping[str, int] = field(default_factory=dict)
    signals: tuple[str, ...] = ()
    accept_unreadable: bool = False
    hashing: HashSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hashing = HashSettings(self.signals, quiet_decoders=True, variants=self.variants)
        object.__setattr__(self, "hashing", hashing)

    @property
    def lists(self) -> str:
        """The list versions as each row records them: JSON text, ``{"list": version}``."""
        return json.dumps(dict(sorted(self.versions.items())))


@dataclass(frozen=True, slots=True)
class Hashed:
    """A file's hashes for its row: SHA-256 of its bytes (None when they could not be read),
    each signal's value, why the file could not be hashed fully, and whether that was access
    to it refused (which access revoked to the whole source looks like too)."""

    sha256: str | None
    values: tuple[tuple[str, Any], ...] = ()
    error: str | None = None
    kind: str | None = None
    refused: bool = False


def scan_part(
    part: Sequence[StoredFile], reader: Reader, matcher: Matcher, settings: ScanSettings
) -> pa.Table:
    """The rows of ``part``'s files, in its order (``row_schema``). A file that cannot be read
    or decoded is a row with its error (and the digests of its bytes when they were read);
    this raises nothing for bad files. Raises SourceUnavailable when the source itself cannot
    be read (no row is made up for a file the source failed on), OutOfMemory when a file's
    hashing ran out of memory (run alone, it may fit)."""
    return part_rows(
        part, [hash_stored(file, reader, settings) for file in part], matcher, settings
    )


def part_rows(
    part: Sequence[StoredFile], hashed: Sequence[Hashed], matcher: Matcher, settings: ScanSettings
) -> pa.Table:
    """The rows of ``part``'s files, hashed (``hash_stored``): their matches found. Raises
    SourceUnavailable for a part of many files access to every one of which was refused (the
    source's fault, more likely than theirs), unless ``settings.accept_unreadable``."""
    if not settings.accept_unreadable:
        _check_refused(part, hashed)
    found = matcher.match_all([Query.of(h.values) for h in hashed])
    columns: dict[str, list[Any]] = {name: [] for name in row_schema().names}
    lists, version = settings.lists, __version__
    for file, result, matches in zip(part, hashed, found, strict=True):
        row: dict[str, Any] = {
            "key": file.key, "size": file.size, "etag": file.etag, "sha256": result.sha256,
            "error": result.error, "error_kind": result.kind, "lists": lists, "hashguard": version,
        }  # fmt: skip
        for record in HashedFile(file.key, result.values).records():
            if record.signal == "sha256":
                continue  # the digest of the bytes read, already in its column
            row[record.signal] = record.value
            if record.signal == "pdq":
                row["pdq_quality"], row["pdq_stability"] = record.quality, record.stability
        row["matches"] = [_match_row(m, result.values) for m in matches]
        for name, values in columns.items():
            values.append(row.get(name))
    return pa.table(columns, schema=row_schema())


def _check_refused(part: Sequence[StoredFile], hashed: Sequence[Hashed]) -> None:
    """Files missing or changed since they were listed are the source's answer about each, so
    no sign of an outage; access refused to every file of a part is (access revoked)."""
    if len(part) < _OUTAGE_FILES or not all(h.refused for h in hashed):
        return
    raise SourceUnavailable(
        f"{part[0].key} and the {len(part) - 1} files listed after it: none can be read "
        f"({hashed[0].error}), which looks like the source's fault (access to it revoked), not "
        "theirs; nothing of their part was written: run the scan again to resume once it is "
        "fixed, or with --accept-unreadable to write their rows as unreadable"
    )


def hash_stored(
    file: StoredFile, reader: Reader, settings: ScanSettings, signals: tuple[str, ...] = ()
) -> Hashed:
    """``file``'s hashes (of every signal, or of the ``signals`` named), read by ``reader``
    (as it was listed: its size, its ETag); its error when it could not be read or hashed
    fully. Raises SourceUnavailable when the source failed, never for a bad file;
    OutOfMemory when hashing it ran out of memory."""
    try:
        opened = reader.open(file.key, file.size, file.etag)
    except OSError as error:  # the file's own problem; the source's propagates
        refused = isinstance(error, PermissionError)  # EACCES, EPERM, S3's AccessDenied
        return Hashed(None, error=f"cannot read: {error.strerror or error}", kind=UNREADABLE,
                      refused=refused)  # fmt: skip
    hashing = (replace(settings, signals=signals) if signals else settings).hashing
    with opened, io.BufferedReader(opened, _CHUNK) as stream:
        result = checked_stream(file.key, stream, opened.size, hashing.resolved, hashing.limits,
                                hashing.variants, hashing.quiet_decoders)  # fmt: skip
        opened.check()  # a read that failed through the source's fault: no row, raise
        if isinstance(result, FileFailure) and result.kind == OUT_OF_MEMORY:
            raise OutOfMemory(f"{file.key}: out of memory while hashing it")
        digest = None if isinstance(result, FileFailure | FileSkipped) else _digest(result)
        if digest is None:
            digest = _digest_of(stream, opened)
    if isinstance(result, FileFailure):
        return Hashed(digest, error=result.reason, kind=result.kind)
    if isinstance(result, FileSkipped):  # not with every signal asked for; still a row
        return Hashed(digest, error=f"no signal applies to {result.kind} files", kind="skipped")
    values = tuple((signal.name, value) for signal, value in result.values)
    if result.undecodable is not None:
        undecodable = result.undecodable
        return Hashed(digest, values, str(undecodable), failure_kind(undecodable))
    if all(signal.applies_to(MediaKind.OTHER) for signal, _ in result.values):
        return Hashed(digest, values, NOT_MEDIA, NOT_MEDIA_KIND)
    return Hashed(digest, values)


def hashed_around_crash(
    settings: ScanSettings, alone: Callable[[tuple[str, ...]], Hashed]
) -> Hashed:
    """A file whose hashing kills its process, or runs out of memory: ``alone(signals)``
    hashes it with the signals named (every one: none named), in a process of its own that
    dies (it raises WorkerCrashed) or in this one (OutOfMemory). Each signal that decodes is
    tried alone to name the ones that fail, and the file gets the hashes of the others (its
    digests) and the error ``crashed`` (``out of memory`` when each failure was that); or its
    hashes as usual, when none fails now (the failure was another's, or memory was short
    then)."""
    resolved = settings.hashing.resolved
    failed: dict[str, WorkerCrashed] = {}
    for name in (s.name for s in resolved if not s.applies_to(MediaKind.OTHER)):
        try:
            alone((name,))
        except WorkerCrashed as error:
            failed[name] = error
    kept = tuple(s.name for s in resolved if s.name not in failed)
    failures = list(failed.values())
    try:
        hashed = alone(kept)
    except WorkerCrashed as error:
        hashed = Hashed(None)
        failures.append(error)
    else:
        if not failed:
            return hashed
    named = f" ({', '.join(failed)})" if failed else ""
    if all(isinstance(failure, OutOfMemory) for failure in failures):
        return replace(hashed, error=f"out of memory while hashing this file{named}",
                       kind=OUT_OF_MEMORY)  # fmt: skip
    return replace(hashed, error=f"the decoder process crashed on this file{named}", kind=CRASHED)


def _digest(result: StreamHashes) -> str | None:
    """The SHA-256 the hashing computed already (a signal of every file's bytes)."""
    found = [signal.format(value) for signal, value in result.values if signal.name == "sha256"]
    return found[0] if found else None


def _digest_of(stream: "io.BufferedReader[OpenedFile]", opened: OpenedFile) -> str | None:
    """SHA-256 of the file's bytes, read again in chunks; None when they cannot be read."""
    try:
        stream.seek(0)
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError:
        digest = None
    opened.check()
    return digest


def _match_row(match: Match, values: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    hashed = Query.of(v for v in values if v[0] == match.signal).get(match.signal)
    assert hashed is not None  # it matched
    value = dict(hashed.named())[match.variant]
    return {
        "list": match.list,
        "entry": match.entry,
        "signal": match.signal,
        "distance": float(match.distance),
        "variant": match.variant,
        "hash": hashed.signal.canonical_of(value),
    }
