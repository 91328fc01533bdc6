"""What a device filter release is: its manifest's format and shape, its modes, the stream a
device follows, and the device releases a log holds.

A release is a directory::

    manifest.json         {format, version, mode, category, lists and their versions, counts
                          per list, source and tag kind, fingerprint bits, the offline tag key
                          or the VOPRF public key, the files with their SHA-256, base version,
                          signer, time}
    manifest.sig          the signer's Ed25519 signature of manifest.json (hex)
    log.json              where the release sits in the transparency log (index, tree head,
                          inclusion proof)
    exact-<digest>.fuse   the filter of file and pixel tags
    near-<digest>.fuse    the filter of PDQ segment tags (near-duplicate mode only)
    delta-<digest>.idx    keys added and removed since the base release (delta releases only)

Files are named by their digest, so a device that holds a base release fetches only the delta
of the next one (``device.delta``). ``device.build`` makes releases, ``device.verify`` checks
and opens them, ``device.install`` keeps one on a device.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Unverified
from hashguard.transparency import manifest as signed_manifest
from hashguard.transparency.log import TransparencyLog

FORMAT: Final = "hashguard-device-release/1"
OFFLINE: Final = "offline"
OPRF: Final = "oprf"
MODES: Final = (OFFLINE, OPRF)
# Offline, anyone holding the filter can test keys without limit: a crafted false hit must cost
# at least 2^48 tries. Server-assisted, every try is a rate-limited request.
MIN_OFFLINE_BITS: Final = 48
DEFAULT_BITS: Final = {OFFLINE: 48, OPRF: 31}
ROLES: Final = ("exact", "near", "delta")


class DeviceReleaseError(Unverified):
    """A release that cannot be built, or does not verify; the message says what failed."""


def check_shape(manifest: dict[str, Any], release: Path) -> None:
    """Refuse a manifest whose fields are not of the expected kinds, naming the first."""

    def need(condition: bool, field: str, expected: str) -> None:
        if not condition:
            raise DeviceReleaseError(f"{release}/manifest.json: {field}: expected {expected}")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    need(manifest.get("format") == FORMAT, "format", FORMAT)
    for name in ("version", "base_version", "fingerprint_bits"):
        need(whole(manifest.get(name)) and manifest[name] >= 1, name, "a positive integer")
    need(manifest["base_version"] <= manifest["version"], "base_version", "at most the version")
    need(manifest.get("mode") in MODES, "mode", "offline or oprf")
    for name in ("category", "signer"):
        need(isinstance(manifest.get(name), str) and manifest[name] != "", name, "a string")
    files: Any = manifest.get("files")
    need(isinstance(files, dict) and "exact" in files, "files", "an object with an exact filter")
    for role, described in files.items():
        need(role in ROLES, f"files.{role}", "exact, near or delta")
        need(
            isinstance(described, dict)
            and isinstance(described.get("name"), str)
            and Path(described["name"]).name == described["name"]
            and isinstance(described.get("sha256"), str)
            and len(described["sha256"]) == 64
            and whole(described.get("bytes"))
            and described["bytes"] >= 0,
            f"files.{role}", "{name, sha256, bytes}",
        )  # fmt: skip
    if manifest["mode"] == OFFLINE:
        need(isinstance(manifest.get("tag_key"), str), "tag_key", "hex digits")
    else:
        key = manifest.get("oprf")
        need(isinstance(key, dict) and isinstance(key.get("public_key"), str), "oprf",
             "{suite, public_key}")  # fmt: skip


def stream(manifest: dict[str, Any]) -> tuple[str, str, str, bool]:
    """What a device follows: releases of one signer, category and mode, with or without near
    duplicates. A newer release of its stream replaces an older one."""
    return (
        str(manifest.get("signer")), str(manifest.get("category")), str(manifest.get("mode")),
        bool(manifest.get("near_duplicates")),
    )  # fmt: skip


def logged_releases(log: TransparencyLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """The device releases in the log, by index: records that are one, validly signed by the
    signer they name (anything else in the log is no release, whoever wrote it)."""
    for index, signed in signed_manifest.logged(log, FORMAT):
        if isinstance(signed.manifest.get("version"), int) and signed.signed_by(
            str(signed.manifest.get("signer"))
        ):
            yield index, signed.manifest


def last_version(log: TransparencyLog) -> int:
    """The newest device release version in the log (0 for none): versions only grow."""
    return max((manifest["version"] for _, manifest in logged_releases(log)), default=0)


def first_signer(log: TransparencyLog) -> tuple[int, str] | None:
    """The record and signer of the log's first device release: the log's device signer. Any
    device record by another key is no release of this log's (and cannot block its signer)."""
    return next(((index, m["signer"]) for index, m in logged_releases(log)), None)
