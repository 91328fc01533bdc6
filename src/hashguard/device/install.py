"""A device's installed release, and updates that fetch only what changed.

The device keeps, in its state directory::

    state.json          the trust anchors (the log's public key, given when the device was set
                        up; the stream it follows: signer, category, mode and near-duplicate
                        mode, pinned at the first install), the installed version and
                        directory, and the newest log tree head seen
    release-N-*/        the installed release (manifest, signature, log proof, filter files)

An update copies the new manifest, verifies it (the same signer, in the log the device trusts,
the log consistent with the head seen before, a newer version), then fetches only the files it
does not hold intact already (files are named by digest: a delta release shares its base's
filters), checks every file, and commits by replacing ``state.json``: a crash at any point
leaves the previous release installed, and the next update removes whatever release directory
the crash left beside it. Updates of one state directory are serialised by a lock.
"""

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hashguard import durable
from hashguard.device.release import DeviceReleaseError, stream
from hashguard.device.verify import DeviceRelease, load, verify_manifest
from hashguard.transparency import manifest as signed_manifest
from hashguard.transparency.log import LogError, TransparencyLog, TreeHead, canonical

_STATE: Final = "state.json"


@dataclass(frozen=True)
class Installed:
    release: DeviceRelease
    fetched_bytes: int  # what the update downloaded
    total_bytes: int  # what a full download would have been


def install(
    source: Path,
    log: TransparencyLog,
    state_dir: Path,
    *,
    log_key: str | None = None,
    signer_key: str | None = None,
) -> Installed:
    """Verify the release in ``source`` and install it in ``state_dir``, fetching only files
    not held intact already. A new device needs ``log_key`` (the log's public key, its trust
    anchor); later updates use the one it keeps. Raises DeviceReleaseError, and changes
    nothing, when the release does not verify."""
    source, state_dir = Path(source), Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        state = _read_state(state_dir)
        anchor = state["log_key"] if state else log_key
        if anchor is None:
            raise DeviceReleaseError(
                "a new device needs the log's public key (--log-key): every release is checked "
                "against it"
            )
        if state and log_key is not None and log_key != state["log_key"]:
            raise DeviceReleaseError(
                f"{state_dir}: this device trusts log key {state['log_key'][:16]}..., not "
                f"{log_key[:16]}..."
            )
        _remove_uninstalled(state_dir, state)
        staging = state_dir / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            return _install(source, log, state_dir, staging, state, anchor, signer_key)
        except DeviceReleaseError as error:  # name the release, not where it was checked
            raise DeviceReleaseError(str(error).replace(str(staging), str(source))) from None
        except OSError as error:
            raise DeviceReleaseError(
                f"{source}: cannot install: {error.strerror or error}"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _install(
    source: Path,
    log: TransparencyLog,
    state_dir: Path,
    staging: Path,
    state: dict[str, Any] | None,
    anchor: str,
    signer_key: str | None,
) -> Installed:
    for name in signed_manifest.FILES:  # the bytes verified are the bytes kept
        _copy(source / name, staging / name)
    manifest, head, checks = verify_manifest(
        staging, log, signer_key=signer_key or (state["signer"] if state else None),
        log_key=anchor, known_head=_head(state, state_dir),
        min_version=state["version"] if state else None,
    )  # fmt: skip
    current = state_dir / state["release"] if state else None
    if state and list(stream(manifest)) != state["stream"]:
        raise DeviceReleaseError(
            f"{source}: of another stream than this device follows (signer, category, mode, "
            f"near duplicates: {state['stream']})"
        )
    if state and manifest["version"] == state["version"]:
        installed = current / "manifest.json" if current is not None else None
        if (
            installed is not None
            and installed.is_file()
            and (staging / "manifest.json").read_bytes() != installed.read_bytes()
        ):
            raise DeviceReleaseError(
                f"{source}: another release with the installed version {state['version']}"
            )  # the same one again: installed again below, missing or damaged files fetched
    fetched = total = 0
    for described in manifest["files"].values():
        name, size = described["name"], described["bytes"]
        total += size
        held = current / name if current is not None else None
        if held is not None and held.is_file() and _digest(held) == described["sha256"]:
            try:
                os.link(held, staging / name)
            except OSError:  # a file system without hard links
                shutil.copyfile(held, staging / name)
        else:
            _copy(source / name, staging / name)
            fetched += size
    load(staging, manifest, checks, head)  # every file against its digest
    final = state_dir / f"release-{manifest['version']}-{os.urandom(4).hex()}"
    durable.move_into_place(staging, final)
    _write_state(state_dir, {
        "version": manifest["version"], "release": final.name, "signer": manifest["signer"],
        "stream": list(stream(manifest)), "log_key": anchor, "head": head.as_json(),
    })  # fmt: skip
    if current is not None and current != final:
        shutil.rmtree(current, ignore_errors=True)
    return Installed(load(final, manifest, checks, head), fetched, total)


def _remove_uninstalled(state_dir: Path, state: dict[str, Any] | None) -> None:
    """Remove the release directories ``state`` does not name: an update killed after putting
    its release in place but before committing ``state.json`` (or before removing the release
    it replaced) leaves one, and no later update would otherwise."""
    installed = state["release"] if state else None
    for path in state_dir.glob("release-*"):
        if path.name != installed and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def open_installed(state_dir: Path, log: TransparencyLog) -> DeviceRelease:
    """The installed release, verified again against the log it trusts (consistent with the
    head seen before; still the newest release). Raises DeviceReleaseError when there is none
    or it no longer verifies."""
    state_dir = Path(state_dir)
    state = _read_state(state_dir)
    if state is None:
        raise DeviceReleaseError(f"{state_dir}: no release installed (hashguard device update)")
    known = _head(state, state_dir)
    release = state_dir / state["release"]
    manifest, head, checks = verify_manifest(
        release, log, signer_key=state["signer"], log_key=state["log_key"], known_head=known,
        min_version=state["version"],
    )  # fmt: skip
    if known is not None and head.size > known.size:
        _remember(state_dir, state, head)
    return load(release, manifest, checks, head)


def _remember(state_dir: Path, seen: dict[str, Any], head: TreeHead) -> None:
    """Keep the newer head for the next consistency check, unless an update changed the state
    meanwhile (then its head is as new). A state that cannot be written costs only that."""
    try:
        with _locked(state_dir):
            now = _read_state(state_dir)
            if now is not None and (now["release"], now["version"]) == (
                seen["release"], seen["version"]
            ) and now["head"].get("size", 0) < head.size:  # fmt: skip
                _write_state(state_dir, {**now, "head": head.as_json()})
    except OSError:
        pass


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / _STATE
    try:
        state = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        raise DeviceReleaseError(f"{path}: unreadable device state") from None
    fields = {
        "version": int, "release": str, "signer": str, "stream": list, "log_key": str,
        "head": dict,
    }  # fmt: skip
    if not isinstance(state, dict) or not all(
        isinstance(state.get(name), kind) for name, kind in fields.items()
    ):
        raise DeviceReleaseError(f"{path}: unreadable device state")
    return state


def _head(state: dict[str, Any] | None, state_dir: Path) -> TreeHead | None:
    if state is None:
        return None
    try:
        return TreeHead.from_json(state["head"], str(state_dir / _STATE))
    except LogError as error:
        raise DeviceReleaseError(str(error)) from None


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    durable.write(state_dir / _STATE, canonical(state))


def _copy(source: Path, target: Path) -> None:
    try:
        shutil.copyfile(source, target)
    except OSError as error:
        raise DeviceReleaseError(f"{source}: cannot fetch: {error.strerror or error}") from None


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
