"""ThreatExchange / python-threatexchange (pytx) signal files, as HMA and the ``threatexchange``
CLI use them.

Two shapes are read, told apart by the first line:

* the signal CSV that ``threatexchange dataset -P --csv`` writes: a header
  ``signal_type,signal_str,collab,category,tags``, then one row per signal and collaboration
  (tags separated by spaces);
* the ``local_file`` exchange: one ``<signal_type> <signal>`` per line, no header.

pytx signal types map to hashguard signals: ``pdq`` to pdq, ``vpdq`` to vpdq (its JSON form),
``video_md5`` to md5 and ``video_sha256`` to sha256 (both digests of the file's bytes). Rows
hashguard cannot hold (other signal types such as ``raw_text``, ``url`` or ``photodna``), and
rows whose category says they are not positives (``NEGATIVE_CLASS``, ``DISPUTED``), are counted
in ``skipped`` by reason and reported by the caller, never silently dropped. Only PDQ and vPDQ
are written: pytx has no signal type for the digest of an image file.
"""

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO

from hashguard.lists.formats import ListFormatError, csv_rows
from hashguard.lists.formats.plain import lines as plain_lines
from hashguard.lists.model import Entry, Provenance, Source
from hashguard.lists.records import InvalidRecord, Submission, bounded, canonical_line

HEADER: Final = ("signal_type", "signal_str", "collab", "category", "tags")
SIGNALS: Final = {"pdq": "pdq", "vpdq": "vpdq", "video_md5": "md5", "video_sha256": "sha256"}
WRITTEN: Final = ("pdq", "vpdq")  # pytx has no type for the digest of an image file
_POSITIVE: Final = {"POSITIVE_CLASS", "INVESTIGATION_SEED"}
_KNOWN_CATEGORIES: Final = _POSITIVE | {"NEGATIVE_CLASS", "DISPUTED"}


def read(path: Path, skipped: Counter[str] | None = None) -> Iterator[Submission]:
    """The positive signals of a pytx file, as submissions (streamed); what is left out is
    counted in ``skipped``. Raises ListFormatError naming the line."""
    path = Path(path)
    skipped = skipped if skipped is not None else Counter()
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            first = file.readline()
    except UnicodeDecodeError:
        raise ListFormatError(path, 1, "not UTF-8 text") from None
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None
    if tuple(first.strip().split(",")) == HEADER:
        yield from _read_csv(path, skipped)
    else:
        yield from _read_lines(path, skipped)


def _read_csv(path: Path, skipped: Counter[str]) -> Iterator[Submission]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            rows = csv_rows(file)
            next(rows)
            try:
                for row in rows:
                    line = rows.line_num
                    if len(row) != len(HEADER):
                        raise ListFormatError(
                            path, line, f"{len(row)} fields; expected {', '.join(HEADER)}"
                        )
                    signal_type, value, collab, category, tags = (field.strip() for field in row)
                    if category not in _KNOWN_CATEGORIES:
                        raise ListFormatError(
                            path, line, f"category {category[:40]!r}; expected one of "
                            f"{', '.join(sorted(_KNOWN_CATEGORIES))}",
                        )  # fmt: skip
                    if category not in _POSITIVE:
                        skipped[f"{category} rows"] += 1
                        continue
                    record = _submission(path, line, signal_type, value, skipped)
                    if record is None:
                        continue
                    source = (Source(collab),) if collab else ()
                    try:
                        yield bounded(Submission(
                            record.signal,
                            record.value,
                            frozenset(tags.split()),
                            Provenance(collab, "", source),
                        ))  # fmt: skip
                    except InvalidRecord as error:
                        raise ListFormatError(path, line, str(error)) from None
            except csv.Error as error:
                raise ListFormatError(path, rows.line_num, f"malformed CSV: {error}") from None
    except UnicodeDecodeError as error:
        raise ListFormatError(path, None, f"not UTF-8 text ({error.reason})") from None


def _read_lines(path: Path, skipped: Counter[str]) -> Iterator[Submission]:
    for number, text in plain_lines(path):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ListFormatError(path, number, "not UTF-8 text") from None
        signal_type, _, value = decoded.partition(" ")
        if not value.strip():
            raise ListFormatError(
                path, number, f"expected '<signal type> <signal>', got {decoded[:60]!r}"
            )
        record = _submission(path, number, signal_type, value, skipped)
        if record is not None:
            yield record


def _submission(
    path: Path, line: int, signal_type: str, value: str, skipped: Counter[str]
) -> Submission | None:
    signal = SIGNALS.get(signal_type.strip())
    if signal is None:
        skipped[f"{signal_type.strip()[:40] or '(empty)'} signals (not supported)"] += 1
        return None
    try:
        return Submission(signal, canonical_line(signal, value.strip()))
    except InvalidRecord as error:
        raise ListFormatError(path, line, f"{signal_type}: {error}") from None


def write(entries: Iterable[Entry], out: TextIO, collab: str) -> tuple[int, int]:
    """The signal CSV of ``entries`` as positives of collaboration ``collab``: PDQ and vPDQ
    entries only.

    Returns (entries written, entries left out because pytx has no type for them)."""
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow(HEADER)
    written = left_out = 0
    for entry in entries:
        if entry.signal not in WRITTEN:
            left_out += 1
            continue
        labels = " ".join(sorted(entry.labels))
        rows.writerow([entry.signal, entry.value, collab, "POSITIVE_CLASS", labels])
        written += 1
    return written, left_out
