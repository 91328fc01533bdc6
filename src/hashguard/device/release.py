"""Device filter releases: built from hash lists, signed, logged, and verified before any use.

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
of the next one. A key passes when it is in the delta's added keys, or in the base filter and
not among the removed.

The builder keeps, beside the release (``OUT.keys``, private, never published), each tag's key
by the tag's digest and the base's key sets, so the next release keys only new tags (in server
mode a key costs a VOPRF evaluation) and can be a delta.
"""

import hashlib
import hmac
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.device import oprf
from hashguard.device.tags import EXACT_KINDS, entry_tags, offline_key, oprf_key
from hashguard.index import fileformat
from hashguard.index.fuse import FilterError, FuseFilter
from hashguard.lists.model import Entry, HashList
from hashguard.transparency import keys
from hashguard.transparency.log import (
    LogError,
    TransparencyLog,
    TreeHead,
    canonical,
    verify_record,
)

FORMAT: Final = "hashguard-device-release/1"
OFFLINE: Final = "offline"
OPRF: Final = "oprf"
MODES: Final = (OFFLINE, OPRF)
# Offline, anyone holding the filter can test keys without limit: a crafted false hit must cost
# at least 2^48 tries. Server-assisted, every try is a rate-limited request.
MIN_OFFLINE_BITS: Final = 48
DEFAULT_BITS: Final = {OFFLINE: 48, OPRF: 31}
# A delta is published while it is at most this share of the base filters' bytes.
DELTA_SHARE: Final = 0.25
_ROLES: Final = ("exact", "near", "delta")
_CHUNK: Final = 4096  # tags keyed per task


class DeviceReleaseError(ValueError):
    """A release that cannot be built, or does not verify; the message says what failed."""


@dataclass(frozen=True)
class Layer:
    """One filter with the delta on top of it."""

    base: FuseFilter
    added: np.ndarray  # sorted uint64
    removed: np.ndarray  # sorted uint64

    def __contains__(self, key: int) -> bool:
        if _holds(self.added, key):
            return True
        return key in self.base and not _holds(self.removed, key)


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
    keys are computed on ``jobs`` threads (default: every core).

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
    work = out.with_name(f".{out.name}.building")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        files: dict[str, dict[str, Any]] = {}
        delta = False
        if state is not None and set(state.base_keys) == set(key_sets):
            arrays = {}
            for role, keys_now in key_sets.items():
                base = state.base_keys[role]
                arrays[f"{role}_added"] = np.setdiff1d(keys_now, base, assume_unique=True)
                arrays[f"{role}_removed"] = np.setdiff1d(base, keys_now, assume_unique=True)
            written = _write(work, "delta", "idx", lambda path: _write_delta(path, arrays))
            base_bytes = sum(int(f["bytes"]) for f in state.base_files.values())
            delta = written["bytes"] <= DELTA_SHARE * base_bytes
            if delta:
                assert previous is not None
                files["delta"] = written
                for role in key_sets:
                    files[role] = state.base_files[role]
                    _copy_checked(previous / files[role]["name"], work, files[role])
                base_version, base_keys = state.base_version, state.base_keys
                base_files = state.base_files
            else:
                (work / written["name"]).unlink()
        if not delta:
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
        body, signature = b"", ""

        def record() -> bytes:
            """The signed record, made under the log's lock: its version follows every other. The
            builder's keys are saved first, so a logged release always has them."""
            nonlocal body, signature
            _check_signer(log, manifest["signer"])
            manifest["version"] = max(_last_version(log), floor) + 1
            manifest["base_version"] = base_version or manifest["version"]
            body = canonical(manifest)
            signature = keys.sign(signing_key, body)
            _State(
                mode, category, width, near_duplicates, tag_key if mode == OFFLINE else b"",
                server_key.public if server_key else b"", manifest["version"],
                manifest["base_version"], base_files, base_keys, keyer.cache,
            ).save(_state_path(out))  # fmt: skip
            return _log_record(manifest, signature)

        try:  # the commit point: logged
            index, head = log.append(record, log_key)
        except LogError as error:
            raise DeviceReleaseError(str(error)) from None
        try:
            _publish(work, out, body, signature, log, index, head)
        except OSError as error:
            kept = work.with_name(f".{out.name}.logged-{index}")
            os.replace(work, kept)
            raise DeviceReleaseError(
                f"logged as record {index}, but writing the release failed "
                f"({error.strerror or error}): its files are in {kept}; move them to {out}"
            ) from None
        return Built(manifest, index, head, delta, keyer.keyed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _publish(
    work: Path, out: Path, body: bytes, signature: str, log: TransparencyLog, index: int,
    head: TreeHead,
) -> None:  # fmt: skip
    (work / "manifest.json").write_bytes(body)
    (work / "manifest.sig").write_text(signature + "\n")
    proof = [p.hex() for p in log.inclusion(index, head.size)]
    (work / "log.json").write_bytes(
        canonical({"index": index, "head": head.as_json(), "inclusion": proof})
    )
    for path in work.iterdir():
        os.chmod(path, 0o644)  # published
    if out.exists():
        out.rmdir()  # empty (checked before)
    os.replace(work, out)


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
    body = _read(release / "manifest.json")
    signature = _read(release / "manifest.sig").decode(errors="replace").strip()
    try:
        manifest = json.loads(body)
        located = json.loads(_read(release / "log.json"))
        index = int(located["index"])
        head = TreeHead.from_json(located["head"], f"{release}/log.json")
        inclusion = [bytes.fromhex(p) for p in located["inclusion"]]
    except (KeyError, TypeError, ValueError, LogError) as error:
        raise DeviceReleaseError(f"{release}: malformed release ({error})") from None
    _check_shape(manifest, release)
    signer, version = manifest["signer"], manifest["version"]
    if canonical(manifest) != body:
        raise DeviceReleaseError(f"{release}/manifest.json: not in canonical form (edited?)")
    if not keys.verify(signer, body, signature):
        raise DeviceReleaseError(f"{release}: the signature does not match the manifest (tampered)")
    if signer_key is not None and signer_key != signer:
        raise DeviceReleaseError(
            f"{release}: signed by key {signer[:16]}..., not the pinned key {signer_key[:16]}..."
        )
    checks = [f"signature: valid, signer {signer[:16]}..."]
    try:
        newest, logged = verify_record(
            log, _log_record(manifest, signature), index, head, inclusion, log_key, known_head,
            str(release),
        )  # fmt: skip
        _check_history(log, manifest, index)
    except LogError as error:
        raise DeviceReleaseError(f"{release}: NOT LOGGED: {error}") from None
    checks += logged
    checks.append(f"log: the newest {manifest['category']} {manifest['mode']} release ({version})")
    if min_version is not None and version < min_version:
        raise DeviceReleaseError(
            f"{release}: version {version} is older than the installed {min_version} (rollback)"
        )
    return manifest, newest, checks


def _check_shape(manifest: Any, release: Path) -> None:
    """Refuse a manifest whose fields are not of the expected kinds, naming the first."""

    def need(condition: bool, field: str, expected: str) -> None:
        if not condition:
            raise DeviceReleaseError(f"{release}/manifest.json: {field}: expected {expected}")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    need(isinstance(manifest, dict), "the manifest", "a JSON object")
    need(manifest.get("format") == FORMAT, "format", FORMAT)
    for name in ("version", "base_version", "fingerprint_bits"):
        need(whole(manifest.get(name)) and manifest[name] >= 1, name, "a positive integer")
    need(manifest["base_version"] <= manifest["version"], "base_version", "at most the version")
    need(manifest.get("mode") in MODES, "mode", "offline or oprf")
    for name in ("category", "signer"):
        need(isinstance(manifest.get(name), str) and manifest[name] != "", name, "a string")
    files = manifest.get("files")
    need(isinstance(files, dict) and "exact" in files, "files", "an object with an exact filter")
    for role, described in files.items():
        need(role in _ROLES, f"files.{role}", "exact, near or delta")
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
            if role not in _ROLES:
                raise DeviceReleaseError(f"{release}: unknown file role {role!r}")
            path = release / Path(described["name"]).name
            data = _read(path)
            if hashlib.sha256(data).hexdigest() != described["sha256"]:
                raise DeviceReleaseError(
                    f"{path}: its SHA-256 is not the manifest's (tampered or corrupt filter)"
                )
        checks = [*checks, f"files: {len(files)} match their digests"]
        roles = set(files) - {"delta"}
        delta = _read_delta(release / files["delta"]["name"], roles) if "delta" in files else {}
        layers = {}
        for role in ("exact", "near"):
            if role not in files:
                continue
            base = FuseFilter.load(release / files[role]["name"])
            if base.width != width:
                raise DeviceReleaseError(f"{release}: {role} filter width is not the manifest's")
            empty = np.zeros(0, dtype=np.uint64)
            layers[role] = Layer(
                base, delta.get(f"{role}_added", empty), delta.get(f"{role}_removed", empty)
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
        if entry.signal == "pdq" and not near_duplicates:
            continue
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


def _write_delta(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fileformat.write(path, "device-delta", {}, arrays)


def _read_delta(path: Path, roles: set[str]) -> dict[str, np.ndarray]:
    """The delta's key sets; each must be strictly increasing (lookups are binary searches),
    one added and one removed per filter of the release, and never both."""
    try:
        _, arrays = fileformat.read(path, "device-delta", memory_map=False)
    except fileformat.IndexFileError as error:
        raise DeviceReleaseError(str(error)) from None
    expected = {f"{role}_{change}" for role in roles for change in ("added", "removed")}
    if set(arrays) != expected:
        raise DeviceReleaseError(f"{path}: holds {sorted(arrays)}, expected {sorted(expected)}")
    for name, array in arrays.items():
        if array.dtype != np.dtype("<u8") or array.ndim != 1 or np.any(array[1:] <= array[:-1]):
            raise DeviceReleaseError(f"{path}: {name} is not a sorted set of keys")
    for role in roles:
        if np.intersect1d(arrays[f"{role}_added"], arrays[f"{role}_removed"]).size:
            raise DeviceReleaseError(f"{path}: keys both added and removed in {role}")
    return {name: np.asarray(array, dtype=np.uint64) for name, array in arrays.items()}


def _holds(sorted_keys: np.ndarray, key: int) -> bool:
    if not len(sorted_keys):
        return False
    at = int(np.searchsorted(sorted_keys, np.uint64(key)))
    return at < len(sorted_keys) and int(sorted_keys[at]) == key


def _log_record(manifest: dict[str, Any], signature: str) -> bytes:
    return canonical({"manifest": manifest, "signature": signature})


def _device_records(log: TransparencyLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """The device releases in the log, by index: records that are one, validly signed by the
    signer they name (anything else in the log is no release, whoever wrote it)."""
    for index in range(log.size()):
        try:
            logged = json.loads(log.record(index))
            manifest, signature = logged["manifest"], logged["signature"]
            if (
                isinstance(manifest, dict)
                and manifest.get("format") == FORMAT
                and isinstance(manifest.get("version"), int)
                and keys.verify(str(manifest.get("signer")), canonical(manifest), str(signature))
            ):
                yield index, manifest
        except (LogError, ValueError, KeyError, TypeError, AttributeError):
            continue


def _last_version(log: TransparencyLog) -> int:
    """The newest device release version in the log (0 for none): versions only grow."""
    return max((manifest["version"] for _, manifest in _device_records(log)), default=0)


def stream(manifest: dict[str, Any]) -> tuple[str, str, str, bool]:
    """What a device follows: releases of one signer, category and mode, with or without near
    duplicates. A newer release of its stream replaces an older one."""
    return (
        str(manifest.get("signer")), str(manifest.get("category")), str(manifest.get("mode")),
        bool(manifest.get("near_duplicates")),
    )  # fmt: skip


def _first_signer(log: TransparencyLog) -> tuple[int, str] | None:
    """The record and signer of the log's first device release: the log's device signer. Any
    device record by another key is no release of this log's (and cannot block its signer)."""
    return next(((index, m["signer"]) for index, m in _device_records(log)), None)


def _check_signer(log: TransparencyLog, signer: str) -> None:
    """Refuse to log a device release under another signer than the log's."""
    first = _first_signer(log)
    if first is not None and first[1] != signer:
        raise DeviceReleaseError(
            f"the log's device releases are signed by {first[1][:16]}... (record {first[0]}), "
            "not by this key: a new signer needs a new log"
        )


def _check_history(log: TransparencyLog, manifest: dict[str, Any], index: int) -> None:
    """The release is signed by the log's device signer (the signer of its first device
    release: it cannot change unseen), and no release of its stream is newer: an old release
    cannot be replayed, nor a device kept on it."""
    first = _first_signer(log)
    if first is not None and first[1] != manifest["signer"]:
        raise LogError(
            f"signed by {str(manifest['signer'])[:16]}..., but the log's device releases are "
            f"signed by {first[1][:16]}... (record {first[0]}): the signer changed"
        )
    for other, logged in _device_records(log):
        newer = logged["version"] > manifest["version"]
        if other != index and stream(logged) == stream(manifest) and newer:
            raise LogError(
                f"version {manifest['version']} is not the newest release of its stream "
                f"({manifest['category']}, {manifest['mode']}): the log holds version "
                f"{logged['version']} (record {other}); update first"
            )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DeviceReleaseError(f"{path}: cannot read: {error.strerror or error}") from None


def _state_path(release: Path) -> Path:
    return release.with_name(release.name + ".keys")
