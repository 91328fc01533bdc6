"""A page of another hashguard's change feed (``hashguard lists follow``): the answer's body read
as JSON, then the version and each change (bounded as an import's records are)."""

from pathlib import Path

from hashguard.exchanges.hashguard_feed import _json, feed_page


def one(data: bytes, scratch: Path) -> None:
    document = _json("https://origin.example", "/v1/lists/followed/changes", 200, data)
    feed_page("followed", document)
