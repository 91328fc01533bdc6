"""Signed release manifests and their place in the log: what list and device releases share.

A release directory holds, beside its own files::

    manifest.json   the manifest, canonical JSON
    manifest.sig    the signer's Ed25519 signature of manifest.json (hex)
    log.json        where the release sits in the transparency log: its index, the signed
                    tree head after it was appended, and the inclusion proof

and the log's record of it is the canonical JSON ``{"manifest": ..., "signature": ...}``.
What a manifest says, and who may sign it, is the caller's (``lists.release``,
``device.verify``); reading, signing, logging and the log checks are here.
"""

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard import durable
from hashguard.errors import Unverified
from hashguard.transparency import keys
from hashguard.transparency.log import (
    LogError,
    TransparencyLog,
    TreeHead,
    canonical,
    verify_record,
)

MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
LOCATION: Final = "log.json"
FILES: Final = (MANIFEST, SIGNATURE, LOCATION)


class ManifestError(Unverified):
    """A manifest that cannot be read or does not verify; the message names the release."""


@dataclass(frozen=True)
class Signed:
    """A manifest, the bytes its signature covers, and the signature (hex)."""

    manifest: dict[str, Any]
    body: bytes
    signature: str

    def record(self) -> bytes:
        """The log's record of this release."""
        return canonical({"manifest": self.manifest, "signature": self.signature})

    def signed_by(self, signer: str) -> bool:
        return keys.verify(signer, self.body, self.signature)


@dataclass(frozen=True)
class Location:
    """Where a release sits in the log: its record's index, the tree head signed after it was
    appended, and the inclusion proof under that head."""

    index: int
    head: TreeHead
    inclusion: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "head": self.head.as_json(),
            "inclusion": [p.hex() for p in self.inclusion],
        }


def sign(manifest: dict[str, Any], key: Ed25519PrivateKey) -> Signed:
    body = canonical(manifest)
    return Signed(manifest, body, keys.sign(key, body))


def append(
    log: TransparencyLog, signed: Signed | Callable[[], Signed], log_key: Ed25519PrivateKey
) -> tuple[Signed, Location]:
    """Append the release (or what ``signed`` makes, called while the log is locked: it may
    read the log) to ``log``; the release and its location. Raises LogError."""
    made: list[Signed] = []

    def record() -> bytes:
        made.append(signed() if callable(signed) else signed)
        return made[0].record()

    index, head = log.append(record, log_key)
    return made[0], Location(index, head, log.inclusion(index, head.size))


def save(work: Path, signed: Signed) -> None:
    """Keep ``signed`` in the release assembled in ``work`` before it is logged: what a run
    killed after logging it leaves there is then found (``logged_aside``) and put in place."""
    (work / MANIFEST).write_bytes(signed.body)
    (work / SIGNATURE).write_text(signed.signature + "\n")


def logged_aside(
    work: Path, log: TransparencyLog, log_key: Ed25519PrivateKey
) -> tuple[Signed, Location] | None:
    """The release assembled in ``work`` by a run killed after logging it but before putting it
    in place: its signed manifest (``save``) and where the log holds it, under a head signed now
    with ``log_key`` if the run was killed before signing one. None when ``work`` holds no
    manifest the log holds. Raises LogError."""
    try:
        signed = Signed(
            json.loads(body := (work / MANIFEST).read_bytes()),
            body,
            (work / SIGNATURE).read_text().strip(),
        )
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(signed.manifest, dict):
        return None
    record = signed.record()
    for index in reversed(range(log.size())):
        if log.record(index) == record:
            head = log.seal(log_key)
            return signed, Location(index, head, log.inclusion(index, head.size))
    return None


def publish(work: Path, out: Path, signed: Signed, location: Location) -> None:
    """Add the manifest, its signature and its log location to the release assembled in
    ``work``, and put it in place as ``out``, readable by all, whole (``durable``). Raises
    ManifestError when that fails: the release is logged already, so its files are kept, in a
    directory the message names, to be moved to ``out``."""
    try:
        _write(work, signed, location)
        for path in work.iterdir():
            os.chmod(path, 0o644)  # published
        durable.move_into_place(work, out)
    except OSError as error:
        if not work.exists():  # in place already: what failed was flushing it
            raise ManifestError(
                f"logged as record {location.index} and written to {out}, but flushing it to "
                f"disk failed ({error.strerror or error})"
            ) from None
        kept = work.with_name(f".{out.name}.logged-{location.index}")
        os.replace(work, kept)
        raise ManifestError(
            f"logged as record {location.index}, but writing the release failed "
            f"({error.strerror or error}): its files are in {kept}; move them to {out}"
        ) from None


def _write(directory: Path, signed: Signed, location: Location) -> None:
    (directory / MANIFEST).write_bytes(signed.body)
    (directory / SIGNATURE).write_text(signed.signature + "\n")
    (directory / LOCATION).write_bytes(canonical(location.as_json()))


def read(directory: Path) -> tuple[Signed, Location]:
    """The signed manifest in ``directory`` (a JSON object; not yet checked) and its log
    location. Raises ManifestError naming the file that cannot be read or is malformed."""
    directory = Path(directory)
    body = _read(directory / MANIFEST)
    signature = _read(directory / SIGNATURE).decode(errors="replace").strip()
    located = _read(directory / LOCATION)
    try:
        manifest = json.loads(body)
        if not isinstance(manifest, dict):
            raise ValueError(f"{MANIFEST}: expected a JSON object")
        where = json.loads(located)
        location = Location(
            int(where["index"]),
            TreeHead.from_json(where["head"], f"{directory}/{LOCATION}"),
            [bytes.fromhex(p) for p in where["inclusion"]],
        )
    # RecursionError: JSON nested deeper than the parser goes; OverflowError: 1e400 for a number
    except (KeyError, TypeError, ValueError, LogError, RecursionError, OverflowError) as error:
        raise ManifestError(f"{directory}: malformed release ({error})") from None
    return Signed(manifest, body, signature), location


def check_signature(
    directory: Path, signed: Signed, signer: str, pinned: str | None, pinned_name: str
) -> None:
    """Check that ``signed`` is canonical and signed by ``signer`` (the key it names), and that
    ``signer`` is ``pinned`` when given (called ``pinned_name`` in the message). Raises
    ManifestError."""
    if canonical(signed.manifest) != signed.body:
        raise ManifestError(f"{directory}/{MANIFEST}: not in canonical form (edited?)")
    if not signed.signed_by(signer):
        raise ManifestError(f"{directory}: the signature does not match the manifest (tampered)")
    if pinned is not None and pinned != signer:
        raise ManifestError(
            f"{directory}: signed by key {signer[:16]}..., not the pinned {pinned_name} "
            f"{pinned[:16]}..."
        )


def check_logged(
    directory: Path,
    signed: Signed,
    location: Location,
    log: TransparencyLog,
    log_key: str | None,
    known_head: TreeHead | None,
) -> tuple[TreeHead, list[str]]:
    """Check that the release is in ``log`` where ``location`` says, and that the log only grew
    since (and since ``known_head``): ``verify_record``. The log's newest head and the checks
    passed; raises LogError with the first that fails."""
    return verify_record(
        log, signed.record(), location.index, location.head, location.inclusion, log_key,
        known_head, str(directory),
    )  # fmt: skip


def logged(log: TransparencyLog, *release_formats: str) -> Iterator[tuple[int, Signed]]:
    """The records of ``log`` that are releases in one of ``release_formats``, by index (their
    signatures are not checked: anyone holding the log key could have written them)."""
    for index in range(log.size()):
        try:
            record = json.loads(log.record(index))
            manifest, signature = record["manifest"], record["signature"]
        except (LogError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(manifest, dict) and manifest.get("format") in release_formats:
            yield index, Signed(manifest, canonical(manifest), str(signature))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ManifestError(f"{path}: cannot read: {error.strerror or error}") from None
