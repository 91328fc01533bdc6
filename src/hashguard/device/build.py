"""Building a device release from hash lists: keyed tags, filters, a delta on the base when
that is small, the manifest signed and logged, and the directory assembled aside, then put in
place.

The builder keeps, beside the release (``OUT.keys``, private, never published), each tag's key
by the tag's digest and the base's key sets, so the next release keys only new tags (in server
mode a key costs a VOPRF evaluation) and can be a delta.
"""

import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard import durable
from hashguard.device import delta, oprf
from hashguard.device.release import (
    DEFAULT_BITS,
    FORMAT,
    MIN_OFFLINE_BITS,
    MODES,
    OFFLINE,
    OPRF,
    DeviceReleaseError,
    first_signer,
    last_version,
)
from hashguard.device.tags import (
    DEVICE_SIGNALS,
    EXACT_KINDS,
    TagKind,
    entry_tags,
    offline_key,
    oprf_key,
)
from hashguard.device.verify import verify_manifest
from hashguard.index import fileformat
from hashguard.index.fuse import FilterError, FuseFilter
from hashguard.lists.model import Entry, HashList
from hashguard.transparency import keys
from hashguard.transparency import manifest as signed_manifest
from hashguard.transparency.log import LogError, TransparencyLog, TreeHead

# A delta is published while it is at most this share of the base filters' bytes.
DELTA_SHARE: Final = 0.25
_CHUNK: Final = 4096  # tags keyed per task


@dataclass(frozen=True)
class Built:
    manifest: dict[str, Any]
    log_index: int
    head: TreeHead
    delta: bool
    keyed: int  # tags keyed in this build (the rest came from the builder's keys)


def build(
    lists: Sequence[tuple[HashList, Iterable[Entry]]],
    mode: str,
    signing_key: Ed25519PrivateKey,
    log: TransparencyLog,
    log_key: Ed25519PrivateKey,
    out: Path,
    *,
    server_key: oprf.ServerKey | None = None,
    previous: Path | None = None,
    near_duplicates: bool = False,
    width: int | None = None,
    jobs: int | None = None,
) -> Built:
    """Build the release of ``lists`` (their matchable entries) into ``out`` and append it to
    ``log``. With ``previous`` (the last release's directory) tags keyed before are not keyed
    again, and the release is a delta on the previous base when that is small enough. VOPRF
    keys are computed on ``jobs`` threads (default: every core). A release logged by a run
    killed before it was put in place is put in place (and returned) by the next build of the
    same lists, mode and signer into ``out``, not logged again.

    Raises DeviceReleaseError for lists that cannot go together, a width too small for the mode,
    a missing server key, or a previous release made differently.
    """
    out = Path(out)
    if mode not in MODES:
        raise DeviceReleaseError(f"mode {mode!r}: expected offline or oprf")
    width = width or DEFAULT_BITS[mode]
    if mode == OFFLINE and width < MIN_OFFLINE_BITS:
        raise DeviceReleaseError(
            f"{width}-bit fingerprints: an offline filter needs at least {MIN_OFFLINE_BITS} "
            "(anyone holding it can search for a false hit offline)"
        )
    if (mode == OPRF) != (server_key is not None):
        raise DeviceReleaseError("a server key is needed in oprf mode, and only there")
    if not lists:
        raise DeviceReleaseError("no lists given")
    category = _one_category([hash_list for hash_list, _ in lists])
    try:
        pending = signed_manifest.logged_aside(durable.assembly(out), log, log_key)
    except LogError as error:
        raise DeviceReleaseError(str(error)) from None
    if pending is not None and _same_build(pending[0].manifest, lists, mode, signing_key):
        release, location = pending  # logged by a run killed before it put it in place
        try:
            signed_manifest.publish(durable.assembly(out), out, release, location)
        except signed_manifest.ManifestError as error:
            raise DeviceReleaseError(str(error)) from None
        logged = release.manifest
        return Built(logged, location.index, location.head, "delta" in logged["files"], 0)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeviceReleaseError(f"{out}: exists and is not empty; not overwriting a release")
    _check_signer(log, keys.public_hex(signing_key))
    state = None
    if previous is not None:
        previous = Path(previous)
        verify_manifest(previous, log)  # the base must be this log's newest release
        state = _State.load(previous)
        state.check_compatible(mode, category, width, near_duplicates, server_key)
    tag_key = state.tag_key if state is not None and state.tag_key else os.urandom(32)

    tags: dict[str, list[bytes]] = {"exact": [], "near": []}
    counts: dict[str, dict[str, int]] = {"list": {}, "source": {}, "tag": {}}
    list_versions = {}
    for hash_list, entries in lists:
        if hash_list.policy.negative:
            raise DeviceReleaseError(
                f"list {hash_list.name} is a negative list (known false positives): it cannot "
                "block anything"
            )
        list_versions[hash_list.name] = hash_list.version
        used = _collect(hash_list, entries, category, near_duplicates, tags, counts)
        counts["list"][hash_list.name] = used
    keyer = _Keyer(mode, tag_key, server_key, state, max(1, jobs or os.cpu_count() or 1))
    key_sets = {role: keyer.keys(role, values) for role, values in tags.items()}
    if not near_duplicates:
        key_sets.pop("near")

    floor = state.version if state is not None else 0  # the version is fixed when logged
    # Written aside, logged, then renamed: a failure leaves no half-made release under ``out``.
    with durable.assembling(out) as work:
        files: dict[str, dict[str, Any]] = {}
        is_delta = False
        if state is not None and set(state.base_keys) == set(key_sets):
            arrays = delta.changes(state.base_keys, key_sets)
            written = _write(work, "delta", "idx", lambda path: delta.write(path, arrays))
            base_bytes = sum(int(f["bytes"]) for f in state.base_files.values())
            is_delta = written["bytes"] <= DELTA_SHARE * base_bytes
            if is_delta:
                assert previous is not None
                files["delta"] = written
                for role in key_sets:
                    files[role] = state.base_files[role]
                    _copy_checked(previous / files[role]["name"], work, files[role])
                base_version, base_keys = state.base_version, state.base_keys
                base_files = state.base_files
            else:
                (work / written["name"]).unlink()
        if not is_delta:
            for role, keys_now in key_sets.items():
                try:
                    built = FuseFilter.build(keys_now, width)
                except FilterError as error:
                    raise DeviceReleaseError(str(error)) from None
                files[role] = _write(work, role, "fuse", built.save)
            base_version, base_keys = 0, key_sets  # itself: its version, once known
            base_files = {role: files[role] for role in key_sets}

        manifest: dict[str, Any] = {
            "format": FORMAT,
            "mode": mode,
            "category": category,
            "lists": list_versions,
            "owners": sorted({hash_list.owner for hash_list, _ in lists}),
            "counts": counts,
            "keys": {role: len(key_set) for role, key_set in key_sets.items()},
            "fingerprint_bits": width,
            "near_duplicates": near_duplicates,
            "files": files,
            "signer": keys.public_hex(signing_key),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if mode == OFFLINE:
            manifest["tag_key"] = tag_key.hex()
        else:
            assert server_key is not None
            manifest["oprf"] = {"suite": oprf.SUITE, "public_key": server_key.public.hex()}

        def signed() -> signed_manifest.Signed:
            """The signed manifest, made under the log's lock: its version follows every other.
            The builder's keys are saved first, so a logged release always has them."""
            _check_signer(log, manifest["signer"])
            manifest["version"] = max(last_version(log), floor) + 1
            manifest["base_version"] = base_version or manifest["version"]
            _State(
                mode, category, width, near_duplicates, tag_key if mode == OFFLINE else b"",
                server_key.public if server_key else b"", manifest["version"],
                manifest["base_version"], base_files, base_keys, keyer.cache,
            ).save(_state_path(out))  # fmt: skip
            made = signed_manifest.sign(manifest, signing_key)
            signed_manifest.save(work, made)  # before it is logged: found again after a crash
            return made

        try:  # the commit point: logged
            release, location = signed_manifest.append(log, signed, log_key)
        except LogError as error:
            raise DeviceReleaseError(str(error)) from None
        try:
            signed_manifest.publish(work, out, release, location)
        except signed_manifest.ManifestError as error:
            raise DeviceReleaseError(str(error)) from None
        return Built(manifest, location.index, location.head, is_delta, keyer.keyed)


def _same_build(
    manifest: dict[str, Any],
    lists: Sequence[tuple[HashList, Iterable[Entry]]],
    mode: str,
    signing_key: Ed25519PrivateKey,
) -> bool:
    """Whether ``manifest`` is of a build of these lists, in this mode, by this signer."""
    names = {hash_list.name for hash_list, _ in lists}
    return (
        manifest.get("mode") == mode
        and set(manifest.get("lists", {})) == names
        and manifest.get("signer") == keys.public_hex(signing_key)
    )


def _one_category(lists: list[HashList]) -> str:
    categories = {hash_list.category.value for hash_list in lists}
    if len(categories) != 1:
        raise DeviceReleaseError(
            f"the lists hold different categories ({', '.join(sorted(categories))}): a device "
            "release is of one category only"
        )
    return categories.pop()


def _collect(
    hash_list: HashList,
    entries: Iterable[Entry],
    category: str,
    near_duplicates: bool,
    tags: dict[str, list[bytes]],
    counts: dict[str, dict[str, int]],
) -> int:
    """Add the tags of ``hash_list``'s matchable entries; the number of entries used."""
    used = 0
    for entry in entries:
        if not entry.matchable(hash_list.policy):
            continue
        kind = DEVICE_SIGNALS.get(entry.signal)
        if kind is None or (kind is TagKind.SEGMENT and not near_duplicates):
            continue  # not computed on a device, or near duplicates not asked for
        found = list(entry_tags(category, entry.signal, bytes.fromhex(entry.value)))
        if not found:
            continue
        used += 1
        for kind, data in found:
            tags["exact" if kind in EXACT_KINDS else "near"].append(data)
            counts["tag"][kind.value] = counts["tag"].get(kind.value, 0) + 1
        for organisation in {s.organisation for s in entry.provenance.sources} or {""}:
            name = organisation or "(no source)"
            counts["source"][name] = counts["source"].get(name, 0) + 1
    return used


class _Keyer:
    """Filter keys for tags, reusing the builder's earlier keys by tag digest."""

    def __init__(
        self,
        mode: str,
        tag_key: bytes,
        server_key: oprf.ServerKey | None,
        state: "_State | None",
        jobs: int,
    ) -> None:
        self.mode, self.tag_key, self.server_key, self.jobs = mode, tag_key, server_key, jobs
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.earlier = state.cache if state is not None else {}
        self.keyed = 0

    def keys(self, role: str, values: list[bytes]) -> np.ndarray:
        # Tags are known by a keyed digest: the builder's file must not let anyone who reads it
        # test tags without the key (in server mode, without the server).
        id_key = self.server_key.secret if self.server_key is not None else self.tag_key
        digests = np.array(
            [int.from_bytes(hmac.digest(id_key, v, "sha256")[:8], "little") for v in values],
            dtype=np.uint64,
        )
        digests, first = np.unique(digests, return_index=True)
        result = np.zeros(len(digests), dtype=np.uint64)
        known = np.zeros(len(digests), dtype=bool)
        if role in self.earlier:
            old_ids, old_keys = self.earlier[role]
            at = np.searchsorted(old_ids, digests).clip(0, max(len(old_ids) - 1, 0))
            if len(old_ids):
                known = old_ids[at] == digests
                result[known] = old_keys[at[known]]
        missing = np.flatnonzero(~known)
        if self.mode == OFFLINE:
            for i in missing:
                result[i] = offline_key(self.tag_key, values[first[i]])
        else:
            server_key = self.server_key
            assert server_key is not None

            def evaluate(chunk: np.ndarray) -> list[int]:
                return [oprf_key(oprf.evaluate(server_key, values[first[i]])) for i in chunk]

            # libsodium runs without the interpreter lock: threads use every core.
            chunks = [missing[at : at + _CHUNK] for at in range(0, len(missing), _CHUNK)]
            with ThreadPoolExecutor(self.jobs) as pool:
                for chunk, found in zip(chunks, pool.map(evaluate, chunks), strict=True):
                    result[chunk] = np.array(found, dtype=np.uint64)
        self.keyed += len(missing)
        self.cache[role] = (digests, result)
        return np.unique(result)


@dataclass
class _State:
    """What the builder keeps between releases (OUT.keys; private)."""

    mode: str
    category: str
    width: int
    near_duplicates: bool
    tag_key: bytes
    public_key: bytes
    version: int
    base_version: int
    base_files: dict[str, dict[str, Any]]
    base_keys: dict[str, np.ndarray]
    cache: dict[str, tuple[np.ndarray, np.ndarray]]

    def save(self, path: Path) -> None:
        meta = {
            "mode": self.mode,
            "category": self.category,
            "width": self.width,
            "near_duplicates": self.near_duplicates,
            "tag_key": self.tag_key.hex(),
            "public_key": self.public_key.hex(),
            "version": self.version,
            "base_version": self.base_version,
            "base_files": self.base_files,
        }
        arrays = {f"base_{role}": keys for role, keys in self.base_keys.items()}
        for role, (ids, values) in self.cache.items():
            arrays[f"ids_{role}"], arrays[f"keys_{role}"] = ids, values
        fileformat.write(path, "device-builder", meta, arrays)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, previous: Path) -> "_State":
        path = _state_path(Path(previous))
        try:
            meta, arrays = fileformat.read(path, "device-builder", memory_map=False)
            roles = [role for role in ("exact", "near") if f"base_{role}" in arrays]
            return cls(
                str(meta["mode"]), str(meta["category"]), int(meta["width"]),
                bool(meta["near_duplicates"]), bytes.fromhex(meta["tag_key"]),
                bytes.fromhex(meta["public_key"]), int(meta["version"]),
                int(meta["base_version"]), dict(meta["base_files"]),
                {role: arrays[f"base_{role}"] for role in roles},
                {role: (arrays[f"ids_{role}"], arrays[f"keys_{role}"]) for role in roles},
            )  # fmt: skip
        except fileformat.IndexFileError as error:
            raise DeviceReleaseError(
                f"{error} (the builder's keys of the previous release, kept beside it)"
            ) from None
        except (KeyError, TypeError, ValueError):
            raise DeviceReleaseError(f"{path}: not the builder's keys of a release") from None

    def check_compatible(
        self, mode: str, category: str, width: int, near: bool, server_key: oprf.ServerKey | None
    ) -> None:
        public = server_key.public if server_key is not None else b""
        for what, before, now in (
            ("mode", self.mode, mode),
            ("category", self.category, category),
            ("fingerprint bits", self.width, width),
            ("near-duplicate mode", self.near_duplicates, near),
            ("server key", self.public_key.hex(), public.hex()),
        ):
            if before != now:
                raise DeviceReleaseError(
                    f"the previous release has {what} {before!r}, this one {now!r}: build a new "
                    "release without --previous"
                )


def _write(out: Path, role: str, suffix: str, writer: Any) -> dict[str, Any]:
    temporary = out / f".{role}.tmp"
    writer(temporary)
    data = temporary.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    name = f"{role}-{digest[:16]}.{suffix}"
    os.replace(temporary, out / name)
    return {"name": name, "sha256": digest, "bytes": len(data)}


def _copy_checked(source: Path, work: Path, described: dict[str, Any]) -> None:
    """Copy a base filter from the previous release, refusing one that is not what its
    manifest says (a damaged copy would be published, and refused by every device)."""
    try:
        data = source.read_bytes()
    except OSError as error:
        raise DeviceReleaseError(f"{source}: cannot read: {error.strerror or error}") from None
    if hashlib.sha256(data).hexdigest() != described["sha256"]:
        raise DeviceReleaseError(f"{source}: not the base filter its manifest names (damaged)")
    (work / described["name"]).write_bytes(data)


def _check_signer(log: TransparencyLog, signer: str) -> None:
    """Refuse to log a device release under another signer than the log's."""
    first = first_signer(log)
    if first is not None and first[1] != signer:
        raise DeviceReleaseError(
            f"the log's device releases are signed by {first[1][:16]}... (record {first[0]}), "
            "not by this key: a new signer needs a new log"
        )


def _state_path(release: Path) -> Path:
    return release.with_name(release.name + ".keys")
