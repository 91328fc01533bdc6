"""A hoster's or CDN's API answer to a notice (JSON: ticket, origin, error), which
``parse_reply`` reads without ever raising: any exception at all is a crash here."""

from pathlib import Path

from hashguard.takedown.notice import parse_reply


def one(data: bytes, scratch: Path) -> None:
    parse_reply(data.decode("utf-8", "replace"))
