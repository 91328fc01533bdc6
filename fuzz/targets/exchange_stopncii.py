"""A FetchHashes page as the StopNCII exchange reads it: the envelope, then each hash record
(a record that cannot be read is quarantined with its excerpt)."""

from collections import Counter
from pathlib import Path

from hashguard.exchanges.stopncii import _envelope, _excerpt
from hashguard.lists.formats.stopncii import record_of
from hashguard.lists.records import InvalidRecord


def one(data: bytes, scratch: Path) -> None:
    envelope = _envelope(data)
    skipped: Counter[str] = Counter()
    for index, item in enumerate(envelope.records, start=1):
        try:
            record_of(item, f"page 1, record {index}", skipped)
        except InvalidRecord:
            _excerpt(item)
