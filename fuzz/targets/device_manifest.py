"""A device release's signed manifest, its signature and its log location, as ``hashguard
device verify`` and ``device update`` read them before anything else (the three files come
from one input, split at NUL bytes), then the manifest's shape and signature."""

from pathlib import Path

from hashguard.device.release import check_shape
from hashguard.transparency import manifest

_FILES = (manifest.MANIFEST, manifest.SIGNATURE, manifest.LOCATION)


def one(data: bytes, scratch: Path) -> None:
    parts = [*data.split(b"\0", 2), b"", b""][:3]
    for name, part in zip(_FILES, parts, strict=True):
        (scratch / name).write_bytes(part)
    signed, _ = manifest.read(scratch)
    check_shape(signed.manifest, scratch)
    manifest.check_signature(scratch, signed, str(signed.manifest["signer"]), None, "key")
