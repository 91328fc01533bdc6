"""Signed list releases, logged in a transparency log, and their verification.

A release of list L at version N is a directory::

    manifest.json   {list, owner, category, version, entries, counts per signal and per
                    source, Merkle root over the entries, the owner's public key, time}
    manifest.sig    the owner's Ed25519 signature of manifest.json (hex)
    entries.jsonl   the matchable entries, sorted by signal and value, one JSON array
                    [signal, value, [labels]] per line, [signal, value, [labels], stability]
                    for an entry hashed from media with a measured stability (0-100): the
                    Merkle tree's leaves, in order
    log.json        where the release sits in the transparency log: its index, the signed
                    tree head after it was appended, and the inclusion proof

``verify`` checks the signature (and the key, when pinned or seen in earlier releases of the
list), that the entries give the manifest's root and counts, that the release is in the log,
and that the log only grew since (and since a tree head the verifier saw before).
"""

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard import durable
from hashguard.collector import collector_paused
from hashguard.errors import Unverified
from hashguard.lists.model import Entry, EntryStatus, HashList, degenerate, too_unstable
from hashguard.transparency import keys, manifest, merkle
from hashguard.transparency.log import LogError, TransparencyLog, TreeHead, canonical

# /2: a leaf may carry the entry's stability last. /1 (every leaf [signal, value, labels]) still
# verifies; a verifier that knows only /1 refuses a /2 release by its format, not as tampered.
FORMAT: Final = "hashguard-release/2"
FORMATS: Final = ("hashguard-release/1", FORMAT)


ENTRIES: Final = "entries.jsonl"
_FILES: Final = frozenset({ENTRIES, manifest.MANIFEST, manifest.SIGNATURE, manifest.LOCATION})


class ReleaseError(Unverified):
    """A release that does not verify, or cannot be made; the message says what failed."""


@dataclass
class Verified:
    """What a successful verification established, for the report."""

    list_name: str
    version: int
    entries: int
    owner_key: str
    log_index: int
    log_size: int
    checks: list[str] = field(default_factory=list)


def entry_leaf(entry: Entry) -> bytes:
    """The entry's Merkle leaf: canonical JSON ``[signal, value, [labels, sorted]]``, and its
    stability last when it has one (releases before stability keep their leaves)."""
    signal, value, stability = entry.signal, entry.value, entry.stability
    if _PLAIN.fullmatch(value) and _NAME.fullmatch(signal):
        # Nothing to escape (every listed value is hex): the canonical form, written directly.
        labels = _labels_json(entry.labels)
        if stability is None:
            return b'["%s","%s",%s]' % (signal.encode(), value.encode(), labels)
        return b'["%s","%s",%s,%d]' % (signal.encode(), value.encode(), labels, stability)
    if stability is None:
        return canonical([signal, value, sorted(entry.labels)])
    return canonical([signal, value, sorted(entry.labels), stability])


_PLAIN: Final = re.compile("[0-9a-z]+")
_NAME: Final = re.compile("[0-9a-z_]+")  # signal names: nothing to escape in JSON either


@lru_cache(maxsize=4096)
def _labels_json(labels: frozenset[str]) -> bytes:
    return canonical(sorted(labels))


_BATCH: Final = 4096  # entries hashed, and lines written, at a time


def build(
    hash_list: HashList,
    entries: Iterable[Entry],
    owner_key: Ed25519PrivateKey,
    log: TransparencyLog,
    log_key: Ed25519PrivateKey,
    out: Path,
) -> tuple[dict[str, Any], int, TreeHead]:
    """Write the release of ``entries`` (sorted by signal and value; those not matchable under
    the list's policy are left out) to ``out``, and append it to ``log``.

    Returns the manifest, its log index and the log's new tree head (signed with ``log_key``).
    The release is assembled aside and put in place whole (replacing an earlier one at
    ``out``): a crash leaves the release complete or absent, and a release logged by a run
    killed before it was put in place is put in place (and returned) by the next build of that
    list into ``out``, not logged again. Raises ReleaseError.
    """
    out = Path(out).absolute()
    if out.exists():
        if not out.is_dir():
            raise ReleaseError(f"{out}: exists and is not a directory")
        others = sorted(path.name for path in out.iterdir() if path.name not in _FILES)
        if others:  # a release replaces its directory whole: never someone's other files
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise ReleaseError(
                f"{out}: holds other files ({shown}); a release replaces its directory whole, "
                "so give a new or empty directory, or an earlier release's"
            )
    try:
        pending = manifest.logged_aside(durable.assembly(out), log, log_key)
        if pending is not None and pending[0].manifest.get("list") == hash_list.name:
            signed, location = pending  # logged by a run killed before it put it in place
            manifest.publish(durable.assembly(out), out, signed, location)
            return signed.manifest, location.index, location.head
        with durable.assembling(out) as work:
            root, by_signal, by_source = _write_entries(hash_list, entries, work / ENTRIES)
            release = {
                "format": FORMAT,
                "list": hash_list.name,
                "owner": hash_list.owner,
                "category": hash_list.category.value,
                "jurisdictions": list(hash_list.jurisdictions),
                "version": hash_list.version,
                "entries": root.size,
                "counts": {"signal": by_signal, "source": by_source},
                "root": root.root().hex(),
                "owner_key": keys.public_hex(owner_key),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            signed = manifest.sign(release, owner_key)
            manifest.save(work, signed)
            signed, location = manifest.append(log, signed, log_key)
            manifest.publish(work, out, signed, location)
    except (LogError, manifest.ManifestError) as error:
        raise ReleaseError(str(error)) from None
    except OSError as error:
        raise ReleaseError(f"{out}: cannot write the release: {error.strerror or error}") from None
    return release, location.index, location.head


def _write_entries(
    hash_list: HashList, entries: Iterable[Entry], path: Path
) -> tuple[merkle.RootBuilder, dict[str, int], dict[str, int]]:
    """Write the matchable ``entries`` (sorted by signal and value) to ``path`` as the Merkle
    tree's leaves; the tree, and the counts per signal and per source."""
    builder = merkle.RootBuilder()
    by_signal: dict[str, int] = {}
    by_source: dict[str, int] = {}
    last: tuple[str, str] | None = None
    batch: list[Entry] = []
    two_sources = hash_list.policy.two_sources
    with collector_paused(), open(path, "wb") as lines:

        def flush() -> None:
            nonlocal last
            keys = [(entry.signal, entry.value) for entry in batch]
            if last is not None:
                keys.insert(0, last)
            for earlier, later in pairwise(keys):
                if later <= earlier:
                    raise ReleaseError(f"entries out of order at {later[0]} {later[1]}")
            last = keys[-1]
            leaves = [entry_leaf(entry) for entry in batch]
            lines.write(b"\n".join(leaves) + b"\n")
            builder.add_many(merkle.leaf_hashes(leaves))
            for signal, count in Counter(entry.signal for entry in batch).items():
                by_signal[signal] = by_signal.get(signal, 0) + count
            # Entries share a few provenances: count those, then their sources.
            provenances = {id(entry.provenance): entry.provenance for entry in batch}
            for ident, count in Counter(id(entry.provenance) for entry in batch).items():
                sources = provenances[ident].sources
                for organisation in {s.organisation for s in sources} or {""}:
                    name = organisation or "(no source)"
                    by_source[name] = by_source.get(name, 0) + count
            batch.clear()

        for entry in entries:
            if (
                entry.status is EntryStatus.ACTIVE
                and (entry.stability is None or not too_unstable(entry.signal, entry.stability))
                and not degenerate(entry.signal, entry.value)
                and (not two_sources or entry.provenance.independently_sourced())
            ):  # Entry.matchable, inline: millions of entries
                batch.append(entry)
                if len(batch) == _BATCH:
                    flush()
        if batch:
            flush()
    return builder, by_signal, by_source


def verify(
    release: Path,
    log: TransparencyLog,
    owner_key: str | None = None,
    log_key: str | None = None,
    known_head: TreeHead | None = None,
) -> Verified:
    """Check the release in directory ``release`` against ``log``. Raises ReleaseError with
    the first check that fails."""
    release = Path(release)
    try:
        signed, location = manifest.read(release)
        release_format = signed.manifest.get("format")
        if release_format not in FORMATS:
            raise ReleaseError(
                f"{release}: manifest format {release_format!r}, this version of hashguard reads "
                + " and ".join(FORMATS)
            )
        signer = str(signed.manifest["owner_key"])
        name, version = str(signed.manifest["list"]), int(signed.manifest["version"])
        manifest.check_signature(release, signed, signer, owner_key, "owner key")
        checks = [f"signature: valid, owner key {signer[:16]}..."]
        _check_entries(release, signed.manifest, stability=release_format != FORMATS[0])
        entries = int(signed.manifest["entries"])
        checks.append(f"entries: {entries} entries give the manifest's Merkle root")
        head, logged = manifest.check_logged(release, signed, location, log, log_key, known_head)
        checks += logged
        _check_key_continuity(log, name, signer, location.index)
    except (manifest.ManifestError, LogError) as error:
        raise ReleaseError(str(error)) from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        if isinstance(error, ReleaseError):
            raise
        raise ReleaseError(f"{release}: malformed release ({error!r})") from None
    return Verified(name, version, entries, signer, location.index, head.size, checks)


def _check_entries(release: Path, manifest: dict[str, Any], stability: bool) -> None:
    """Check the entries against the manifest; ``stability``: whether a leaf may carry one."""
    builder = merkle.RootBuilder()
    by_signal: dict[str, int] = {}
    path = release / ENTRIES
    batch: list[bytes] = []
    try:
        with collector_paused(), open(path, "rb") as lines:
            for number, line in enumerate(lines, start=1):
                leaf = line.rstrip(b"\n")
                try:
                    signal, _, labels, *rest = json.loads(leaf)
                    if (
                        not isinstance(signal, str)
                        or not isinstance(labels, list)
                        or not _stability_ok(rest, stability)
                    ):
                        raise ValueError(signal)
                except (ValueError, TypeError, RecursionError):
                    raise ReleaseError(f"{path}:{number}: not an entry (tampered)") from None
                batch.append(leaf)
                if len(batch) == _BATCH:
                    builder.add_many(merkle.leaf_hashes(batch))
                    batch = []
                by_signal[signal] = by_signal.get(signal, 0) + 1
            builder.add_many(merkle.leaf_hashes(batch))
    except OSError as error:
        raise ReleaseError(f"{path}: cannot read: {error.strerror or error}") from None
    if builder.size != manifest["entries"]:
        raise ReleaseError(
            f"{path}: {builder.size} entries, the manifest says {manifest['entries']} (tampered)"
        )
    if builder.root().hex() != manifest["root"] or by_signal != manifest["counts"]["signal"]:
        raise ReleaseError(f"{path}: the entries do not give the manifest's Merkle root (tampered)")


def _stability_ok(rest: list[Any], allowed: bool) -> bool:
    """Whether what follows an entry's labels is nothing, or (when ``allowed``) one stability
    (0-100)."""
    if not rest:
        return True
    if not allowed:
        return False
    [stability] = rest  # more: a ValueError, the line is no entry
    return type(stability) is int and 0 <= stability <= 100


def _check_key_continuity(log: TransparencyLog, name: str, signer: str, index: int) -> None:
    for earlier, signed in manifest.logged(log, *FORMATS):
        if earlier >= index:
            break
        owner_key = signed.manifest.get("owner_key")
        if signed.manifest.get("list") == name and owner_key != signer:
            raise ReleaseError(
                f"release {index} of {name} is signed by another key than its release "
                f"{earlier} ({str(owner_key)[:16]}...): the owner key changed"
            )
