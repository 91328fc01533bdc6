"""NCMEC's answer to a CyberTipline report or file upload (``reportResponse``), as the report's
submission reads it (``ncmec.parse_response``: XML from outside, parsed without entities or
network)."""

from pathlib import Path

from hashguard.reports.ncmec import parse_response


def one(data: bytes, scratch: Path) -> None:
    parse_response(data)
