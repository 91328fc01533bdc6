"""XARF reports another abuse desk sends (one report, a JSON list, or JSON lines), as
``hashguard takedown import-xarf`` and the takedown route read them."""

from pathlib import Path

from hashguard.takedown.xarf import read_reports


def one(data: bytes, scratch: Path) -> None:
    read_reports(data.decode("utf-8", "replace"), "fuzz")
