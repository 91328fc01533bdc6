"""A page of NCMEC's entries API as the NCMEC exchange reads it (held in memory): a page that
is no entries document is refused; an entry that cannot be read is set aside, and only for a
reason the reader gives (an entry the reader fails on with an error of its own is a crash)."""

from collections import Counter
from pathlib import Path

from hashguard.lists.formats.ncmec import parse_page


def one(data: bytes, scratch: Path) -> None:
    page = parse_page(data, Counter(), members=None if len(data) % 2 else {"1", "2"})
    for bad in page.bad:
        if bad.reason.startswith("unreadable ("):  # what parse_page says of an unexpected error
            raise AssertionError(f"{bad.where}: {bad.reason}")
