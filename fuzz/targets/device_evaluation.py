"""The blinded elements a device sends for evaluation (``POST /v1/device/evaluate``), as the
server's VOPRF step reads them once their base64 is decoded: each 32-byte element decoded as a
ristretto255 point (anything else, or the identity, refused), then evaluated with one proof.
The input is cut into elements of 32 bytes (the last may be short), at most 4."""

from pathlib import Path

from hashguard.device import oprf

_KEY = oprf.ServerKey.derive(b"\x01" * 32, b"hashguard fuzz")


def one(data: bytes, scratch: Path) -> None:
    elements = [data[start : start + 32] for start in range(0, min(len(data), 128), 32)]
    oprf.blind_evaluate(_KEY, elements)
