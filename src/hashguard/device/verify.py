"""Verifying a device release before any use, and opening its filters.

``verify_manifest`` checks the manifest (shape, signature, the log, the release's history in
the log: it is the newest of its stream, by the log's device signer); ``open_release`` then
checks each file against its digest and loads the filters, with the delta on top.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashguard.device import delta, oprf
from hashguard.device.delta import Layer
from hashguard.device.release import (
    MIN_OFFLINE_BITS,
    OFFLINE,
    OPRF,
    ROLES,
    DeviceReleaseError,
    check_shape,
    first_signer,
    logged_releases,
    stream,
)
from hashguard.index.fuse import FilterError, FuseFilter
from hashguard.transparency import manifest as signed_manifest
from hashguard.transparency.log import LogError, TransparencyLog, TreeHead


@dataclass(frozen=True)
class DeviceRelease:
    """A verified release, ready to check against."""

    directory: Path
    manifest: dict[str, Any]
    exact: Layer
    near: Layer | None
    checks: list[str] = field(default_factory=list)
    head: TreeHead | None = None  # the log's newest head when verified

    @property
    def mode(self) -> str:
        return str(self.manifest["mode"])

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @property
    def category(self) -> str:
        return str(self.manifest["category"])

    @property
    def tag_key(self) -> bytes:
        return bytes.fromhex(self.manifest["tag_key"])

    @property
    def public_key(self) -> bytes:
        return bytes.fromhex(self.manifest["oprf"]["public_key"])


def verify_manifest(
    release: Path,
    log: TransparencyLog,
    *,
    signer_key: str | None = None,
    log_key: str | None = None,
    known_head: TreeHead | None = None,
    min_version: int | None = None,
) -> tuple[dict[str, Any], TreeHead, list[str]]:
    """Check the release's manifest: canonical, signed (by ``signer_key`` when pinned, and by
    the signer of every earlier device release in the log), in the log, the log consistent with
    ``known_head``, and not older than ``min_version``. The files are not read.

    Returns the manifest, the log's newest head and the checks passed. Raises
    DeviceReleaseError with the first check that fails.
    """
    release = Path(release)
    try:
        signed, location = signed_manifest.read(release)
        manifest = signed.manifest
        check_shape(manifest, release)
        signer, version = manifest["signer"], manifest["version"]
        signed_manifest.check_signature(release, signed, signer, signer_key, "key")
    except signed_manifest.ManifestError as error:
        raise DeviceReleaseError(str(error)) from None
    checks = [f"signature: valid, signer {signer[:16]}..."]
    try:
        newest, logged = signed_manifest.check_logged(
            release, signed, location, log, log_key, known_head
        )
        _check_history(log, manifest, location.index)
    except LogError as error:
        raise DeviceReleaseError(f"{release}: NOT LOGGED: {error}") from None
    checks += logged
    checks.append(f"log: the newest {manifest['category']} {manifest['mode']} release ({version})")
    if min_version is not None and version < min_version:
        raise DeviceReleaseError(
            f"{release}: version {version} is older than the installed {min_version} (rollback)"
        )
    return manifest, newest, checks


def _check_history(log: TransparencyLog, manifest: dict[str, Any], index: int) -> None:
    """The release is signed by the log's device signer (the signer of its first device
    release: it cannot change unseen), and no release of its stream is newer: an old release
    cannot be replayed, nor a device kept on it."""
    first = first_signer(log)
    if first is not None and first[1] != manifest["signer"]:
        raise LogError(
            f"signed by {str(manifest['signer'])[:16]}..., but the log's device releases are "
            f"signed by {first[1][:16]}... (record {first[0]}): the signer changed"
        )
    for other, logged in logged_releases(log):
        newer = logged["version"] > manifest["version"]
        if other != index and stream(logged) == stream(manifest) and newer:
            raise LogError(
                f"version {manifest['version']} is not the newest release of its stream "
                f"({manifest['category']}, {manifest['mode']}): the log holds version "
                f"{logged['version']} (record {other}); update first"
            )


def open_release(
    release: Path,
    log: TransparencyLog,
    *,
    signer_key: str | None = None,
    log_key: str | None = None,
    known_head: TreeHead | None = None,
    min_version: int | None = None,
) -> DeviceRelease:
    """Verify the release in ``release`` (manifest, log, then each file against its digest) and
    load its filters. Raises DeviceReleaseError with the first check that fails."""
    manifest, newest, checks = verify_manifest(
        release, log, signer_key=signer_key, log_key=log_key, known_head=known_head,
        min_version=min_version,
    )  # fmt: skip
    return load(Path(release), manifest, checks, newest)


def load(
    release: Path, manifest: dict[str, Any], checks: list[str], head: TreeHead | None
) -> DeviceRelease:
    """The filters of a release whose manifest was verified; each file is checked against the
    manifest's digest first."""
    try:
        files = manifest["files"]
        width = int(manifest["fingerprint_bits"])
        for role, described in files.items():
            if role not in ROLES:
                raise DeviceReleaseError(f"{release}: unknown file role {role!r}")
            path = release / Path(described["name"]).name
            data = _read(path)
            if hashlib.sha256(data).hexdigest() != described["sha256"]:
                raise DeviceReleaseError(
                    f"{path}: its SHA-256 is not the manifest's (tampered or corrupt filter)"
                )
        checks = [*checks, f"files: {len(files)} match their digests"]
        roles = set(files) - {"delta"}
        changed = delta.read(release / files["delta"]["name"], roles) if "delta" in files else {}
        layers = {}
        for role in ("exact", "near"):
            if role not in files:
                continue
            base = FuseFilter.load(release / files[role]["name"])
            if base.width != width:
                raise DeviceReleaseError(f"{release}: {role} filter width is not the manifest's")
            empty = np.zeros(0, dtype=np.uint64)
            layers[role] = Layer(
                base, changed.get(f"{role}_added", empty), changed.get(f"{role}_removed", empty)
            )
        if "exact" not in layers:
            raise DeviceReleaseError(f"{release}: no exact filter")
        if manifest["mode"] == OFFLINE:
            if width < MIN_OFFLINE_BITS or len(bytes.fromhex(manifest["tag_key"])) != 32:
                raise DeviceReleaseError(
                    f"{release}: offline release below {MIN_OFFLINE_BITS} bits"
                )
        elif manifest["mode"] == OPRF:
            if manifest["oprf"]["suite"] != oprf.SUITE:
                raise DeviceReleaseError(f"{release}: OPRF suite {manifest['oprf']['suite']!r}")
            oprf.deserialize_element(bytes.fromhex(manifest["oprf"]["public_key"]))
        else:
            raise DeviceReleaseError(f"{release}: mode {manifest['mode']!r}")
    except FilterError as error:
        raise DeviceReleaseError(str(error)) from None
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, DeviceReleaseError):
            raise
        raise DeviceReleaseError(f"{release}: malformed release ({error})") from None
    return DeviceRelease(release, manifest, layers["exact"], layers.get("near"), checks, head)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DeviceReleaseError(f"{path}: cannot read: {error.strerror or error}") from None
