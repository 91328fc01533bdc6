"""A device's installed release, and updates that fetch only what changed.

The device keeps, in its state directory::

    state.json          the installed version, its signer, and the newest log tree head seen
    release/            the installed release (manifest, signature, log proof, filter files)

An update first verifies the new manifest (signature by the same signer, log inclusion, the log
consistent with the head seen before, no older version), then fetches only the files it does
not hold already (files are named by digest: a delta release shares its base's filters), checks
every file against the manifest, and switches over in one rename.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hashguard.device.release import DeviceRelease, DeviceReleaseError, load, verify_manifest
from hashguard.lists.transparency import LogError, TransparencyLog, TreeHead, canonical

_STATE: Final = "state.json"
_RELEASE: Final = "release"
_META: Final = ("manifest.json", "manifest.sig", "log.json")


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
    signer_key: str | None = None,
    log_key: str | None = None,
) -> Installed:
    """Verify the release in ``source`` and install it in ``state_dir``, fetching only files
    not held already. Raises DeviceReleaseError (nothing changes) when it does not verify."""
    source, state_dir = Path(source), Path(state_dir)
    state = _read_state(state_dir)
    pinned = signer_key or (state["signer"] if state else None)
    known = TreeHead.from_json(state["head"], str(state_dir / _STATE)) if state else None
    manifest, head, checks = verify_manifest(
        source, log, signer_key=pinned, log_key=log_key, known_head=known,
        min_version=int(state["version"]) if state else None,
    )  # fmt: skip
    current = state_dir / _RELEASE
    staging = state_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    fetched = total = 0
    try:
        for name in _META:
            shutil.copyfile(source / name, staging / name)
        for described in manifest["files"].values():
            name = Path(described["name"]).name
            total += int(described["bytes"])
            if (current / name).is_file():
                os.link(current / name, staging / name)
            else:
                shutil.copyfile(source / name, staging / name)
                fetched += int(described["bytes"])
        release = load(staging, manifest, checks, head)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DeviceReleaseError(f"{source}: cannot fetch: {error.strerror or error}") from None
    except (DeviceReleaseError, KeyError, TypeError):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = state_dir / ".previous"
    shutil.rmtree(previous, ignore_errors=True)
    if current.exists():
        os.replace(current, previous)
    os.replace(staging, current)
    shutil.rmtree(previous, ignore_errors=True)
    _write_state(state_dir, {
        "version": release.version, "signer": manifest["signer"], "head": head.as_json(),
    })  # fmt: skip
    installed = load(current, manifest, checks, head)
    return Installed(installed, fetched, total)


def open_installed(
    state_dir: Path, log: TransparencyLog, *, log_key: str | None = None
) -> DeviceRelease:
    """The installed release, verified again against the log (consistent with the head seen at
    installation). Raises DeviceReleaseError when there is none or it no longer verifies."""
    state_dir = Path(state_dir)
    state = _read_state(state_dir)
    if state is None:
        raise DeviceReleaseError(f"{state_dir}: no release installed (hashguard device update)")
    known = TreeHead.from_json(state["head"], str(state_dir / _STATE))
    manifest, head, checks = verify_manifest(
        state_dir / _RELEASE, log, signer_key=state["signer"], log_key=log_key,
        known_head=known, min_version=int(state["version"]),
    )  # fmt: skip
    if head.size > known.size:
        _write_state(state_dir, {**state, "head": head.as_json()})
    return load(state_dir / _RELEASE, manifest, checks, head)


def _read_state(state_dir: Path) -> dict | None:  # type: ignore[type-arg]
    path = state_dir / _STATE
    try:
        state = json.loads(path.read_bytes())
        int(state["version"]), str(state["signer"]), dict(state["head"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, LogError):
        raise DeviceReleaseError(f"{path}: unreadable device state") from None
    return state  # type: ignore[no-any-return]


def _write_state(state_dir: Path, state: dict) -> None:  # type: ignore[type-arg]
    temporary = state_dir / f".{_STATE}.tmp"
    temporary.write_bytes(canonical(state))
    os.replace(temporary, state_dir / _STATE)
