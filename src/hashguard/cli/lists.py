"""``hashguard lists ...``: create, import, export, inspect, change and remove hash lists in the
database.

The database is ``--database-url``, else HASHGUARD_DATABASE_URL, else the SQLite file
``hashguard.db`` in the working directory.
"""

import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashguard.cli.common import (
    DatabaseOption,
    ExitCode,
    KnownHeadOption,
    LogKeyPin,
    LogOption,
    echo_error,
    fail,
    who,
)
from hashguard.lists.model import (
    VICTIM_CATEGORIES,
    Category,
    ChangeKind,
    Entry,
    EntryStatus,
    ListPolicy,
    too_unstable,
)

if TYPE_CHECKING:  # each command imports what it uses, so the command line starts fast
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hashguard.store.lists import ListStore
    from hashguard.transparency.log import TransparencyLog

lists_app = typer.Typer(name="lists", no_args_is_help=True)  # help: cli/__init__.py


class ImportFormat(StrEnum):
    text = "text"
    csv = "csv"
    pytx = "pytx"
    ncmec = "ncmec"
    stopncii = "stopncii"


class ChangeFormat(StrEnum):
    jsonl = "jsonl"
    text = "text"


ActorOption = Annotated[
    str,
    typer.Option(
        "--actor", help="Who makes the change (audit log); default: the login user@host (cli)."
    ),
]


def writable_log(log: Path, log_key: Path | None) -> tuple["TransparencyLog", "Ed25519PrivateKey"]:
    """The log in ``log`` and its signing key: ``log_key``, or LOG.key beside the log (made on
    first use, never inside the published directory). Raises KeyFileError, LogError, OSError."""
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import TransparencyLog

    path = log_key or log.with_name(log.name + ".key")
    if log_key is None and not path.exists():
        lists_keys.generate(path)
        echo_error(
            f"note: made the log's signing key {path} (keep it secret, outside {log}/): it signs "
            f"every tree head of the log; verifiers pin {log}/log.pub"
        )
    signing_key = lists_keys.load(path)
    if log_key is None:
        lists_keys.restore_public(path, signing_key)
    return TransparencyLog.create_or_open(log, signing_key), signing_key


@contextmanager
def list_store(url: str | None) -> Iterator["ListStore"]:
    """The list store on ``url``; its errors become one line on stderr and exit status 1."""
    from hashguard.lists.records import InvalidRecord
    from hashguard.store.database import DatabaseError, open_engine
    from hashguard.store.list_errors import ListError
    from hashguard.store.lists import ListStore

    try:
        engine = open_engine(url)
    except DatabaseError as error:
        fail(str(error))
    try:
        yield ListStore(engine)
    except (ListError, InvalidRecord) as error:
        fail(str(error))
    finally:
        engine.dispose()


def _thresholds(values: list[str]) -> dict[str, float]:
    from hashguard.signals import registry

    thresholds = {}
    for item in values:
        signal, _, number = item.partition("=")
        signal = signal.strip().lower()
        if signal not in registry.listable_names():
            known = ", ".join(registry.listable_names())
            raise typer.BadParameter(f"{item!r}: the signal must be one of {known}")
        try:
            thresholds[signal] = float(number)
        except ValueError:
            raise typer.BadParameter(f"{item!r}: expected SIGNAL=NUMBER, e.g. pdq=31") from None
    return thresholds


def _variants(text: str) -> frozenset[str]:
    """``--variants``: families separated by commas, or ``none``."""
    from hashguard.lists.model import VARIANT_FAMILIES

    chosen = {part.strip().lower() for part in text.split(",") if part.strip()}
    if chosen == {"none"}:
        return frozenset()
    unknown = sorted(chosen - set(VARIANT_FAMILIES))
    if unknown or not chosen:
        known = ", ".join(VARIANT_FAMILIES)
        raise typer.BadParameter(f"{text!r}: expected {known} (comma-separated) or none")
    return frozenset(chosen)


VariantsOption = Annotated[
    str | None,
    typer.Option(
        "--variants",
        help="The query variants that may match the list: dihedral (rotations and flips), "
        "trim (the image inside flat borders), scale (an image of 640 px or less enlarged "
        "to 1024), comma-separated, or none (the query as it is) "
        "\\[default: dihedral,trim,scale].",
        show_default=False,
    ),
]


@lists_app.command()
def create(
    name: Annotated[str, typer.Argument(help="The list's name (letters, digits, . _ -).")],
    owner: Annotated[str, typer.Option("--owner", help="The organisation that curates it.")],
    category: Annotated[Category, typer.Option("--category", help="What it holds.")],
    negative: Annotated[
        bool, typer.Option("--negative", help="Known false positives: suppress matches.")
    ] = False,
    two_sources: Annotated[
        bool,
        typer.Option(
            "--two-sources", help="Match an entry only once two jurisdictions submitted it."
        ),
    ] = False,
    four_eyes: Annotated[
        bool,
        typer.Option("--four-eyes", help="Detections on it need two reviewers who agree."),
    ] = False,
    jurisdiction: Annotated[
        list[str] | None, typer.Option("--jurisdiction", help="Where it applies (repeat).")
    ] = None,
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Its legal basis.")] = "",
    actor: ActorOption = "",
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="SIGNAL=DISTANCE, e.g. pdq=24 (default: the signal's)."),
    ] = None,
    variants: VariantsOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an empty list."""
    policy = ListPolicy(_thresholds(threshold or []), negative, two_sources, four_eyes=four_eyes)
    if variants is not None:
        policy = dataclasses.replace(policy, variants=_variants(variants))
    with list_store(database_url) as store:
        created = store.create(
            name, owner, category, jurisdiction or [], legal_basis, policy, who(actor)
        )
    typer.echo(f"created list {created.name} (owner {created.owner}, {created.category})")


@lists_app.command()
def update(
    name: Annotated[str, typer.Argument(help="The list to change.")],
    variants: VariantsOption = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="SIGNAL=DISTANCE, e.g. pdq=24 (replaces that signal's)."),
    ] = None,
    actor: ActorOption = "",
    database_url: DatabaseOption = None,
) -> None:
    """Change a list's matching policy (what is given; the rest stays), audited."""
    if variants is None and not threshold:
        raise typer.BadParameter("nothing to change: give --variants or --threshold")
    with list_store(database_url) as store:
        policy = store.get(name).policy
        if variants is not None:
            policy = dataclasses.replace(policy, variants=_variants(variants))
        if threshold:
            merged = {**policy.thresholds, **_thresholds(threshold)}
            policy = dataclasses.replace(policy, thresholds=merged)
        updated = store.update(name, policy, actor=who(actor))
    typer.echo(f"updated list {updated.name}: {_policy_line(updated.policy)}")


@lists_app.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="The list to import into.")],
    file: Annotated[Path, typer.Argument(help="The file to import.")],
    format: Annotated[ImportFormat, typer.Option("--format", "-f", help="The file's format.")],
    signal: Annotated[
        str | None, typer.Option("--signal", "-s", help="The values' signal (text format).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="The organisation the file comes from (text format)."),
    ] = None,
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="The source's.")] = "",
    actor: ActorOption = "",
    database_url: DatabaseOption = None,
) -> None:
    """Import a file in one transaction: any malformed record means nothing is applied."""
    from hashguard.lists.formats import reader
    from hashguard.signals import registry

    skipped: Counter[str] = Counter()
    listable = registry.listable_names()
    if format is ImportFormat.text and (signal is None or signal.lower() not in listable):
        raise typer.BadParameter(f"text lists need --signal, one of {', '.join(listable)}")
    records = reader.read(file, format.value, signal, source, jurisdiction, skipped)
    odd: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    with list_store(database_url) as store:
        summary = store.apply(name, _watched(records, seen, odd), who(actor))
    typer.echo(
        f"{name}: {summary.added} added, {summary.updated} updated, {summary.removed} removed, "
        f"{summary.unchanged} unchanged; version {summary.version}"
    )
    if summary.unknown_tombstones:
        typer.echo(f"{summary.unknown_tombstones} removal(s) of values {name} never held: ignored")
    for reason, count in sorted(skipped.items()):
        typer.echo(f"not imported: {count} {reason}")
    for kind, count in sorted(odd.items()):
        if count * 4 > seen[kind]:  # genuine ones never are; another kind's, half of them
            echo_error(
                f"note: {count} of {seen[kind]} {kind} values do not look like {kind} hashes "
                "computed from media; if they are another signal's (a SHA-256 digest has as "
                "many hex digits as a PDQ hash), delete them and import the file with that "
                "--signal"
            )


def _watched(records: Iterable[Any], seen: Counter[str], odd: Counter[str]) -> Iterator[Any]:
    """``records`` as they are, counting per signal the submissions whose values do not look
    like that signal's (``SignalType.plausible``)."""
    from hashguard.lists.records import Submission
    from hashguard.signals import registry

    for record in records:
        if isinstance(record, Submission):
            seen[record.signal] += 1
            try:
                if not registry.get(record.signal).plausible(record.value):
                    odd[record.signal] += 1
            except ValueError:  # not a signal, or not a value: the import says so itself
                pass
        yield record


@lists_app.command()
def export(
    name: Annotated[str, typer.Argument(help="The list to export.")],
    format: Annotated[ImportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ImportFormat.csv
    ),
    signal: Annotated[
        str | None, typer.Option("--signal", "-s", help="Only this signal (required for text).")
    ] = None,
    include_removed: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Also contested, delisted and deleted entries (csv: with their status; ncmec "
            "and stopncii: as deletions).",
        ),
    ] = False,
    unstable: Annotated[
        bool,
        typer.Option(
            "--unstable",
            help="Only the active entries not matched for their measured stability (their "
            "hash moves under a 1 % resize). Without it, csv writes them with their stability "
            "and the other formats leave them out.",
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default stdout).")] = None,
    collab: Annotated[
        str | None, typer.Option("--collab", help="pytx: the collaboration name (the list's).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Export a list's entries (active ones unless --all; only the unstable ones with
    --unstable), ordered by signal and value."""
    from hashguard.lists.formats import labelled_csv, ncmec, plain, pytx, stopncii

    if format is ImportFormat.text and not signal:
        raise typer.BadParameter("text export needs --signal (one value per line, one signal)")
    removals = (ImportFormat.csv, ImportFormat.ncmec, ImportFormat.stopncii)
    statuses = None if include_removed and format in removals else [EntryStatus.ACTIVE]
    with list_store(database_url) as store:
        hash_list, entries = store.entries(name, statuses)
        # Formats without a stability would make unstable entries matchable where imported:
        # they leave them out (csv carries the stability, so it keeps them).
        carried = format is ImportFormat.csv or unstable
        dropped = 0

        def wanted_of(entries: Iterable[Entry]) -> Iterator[Entry]:
            nonlocal dropped
            for entry in entries:
                if signal is not None and entry.signal != signal.lower():
                    continue
                shaky = _unstable(entry)
                if unstable and not shaky:
                    continue
                if shaky and not carried:
                    dropped += 1
                    continue
                yield entry

        wanted = wanted_of(entries)
        stream = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout  # noqa: SIM115
        left_out = 0
        try:
            if format is ImportFormat.text:
                count = plain.write(wanted, stream)
            elif format is ImportFormat.pytx:
                count, left_out = pytx.write(wanted, stream, collab or name)
            elif format is ImportFormat.ncmec:
                count, left_out = ncmec.write(wanted, stream, str(hash_list.id), hash_list.owner)
            elif format is ImportFormat.stopncii:
                victims = hash_list.category in VICTIM_CATEGORIES
                count, left_out = stopncii.write(wanted, stream, withdrawn=victims)
            else:
                count = labelled_csv.write(wanted, stream)
        finally:
            if out:
                stream.close()
    if out:
        typer.echo(f"wrote {count} entries to {out}")
    if left_out:
        echo_error(f"note: {left_out} entries left out: {_FORMAT_SIGNALS[format]}")
    if dropped:
        echo_error(
            f"note: {dropped} unstable entries left out: {format.value} cannot carry their "
            "stability (not matched here, they would match where imported); csv does"
        )


# What each format with a fixed set of types can carry, for the note on what export left out.
_FORMAT_SIGNALS = {
    ImportFormat.pytx: "the pytx export carries PDQ and vPDQ only",
    ImportFormat.ncmec: "NCMEC fingerprints are md5, sha1 and pdq",
    ImportFormat.stopncii: "StopNCII types are ImagePDQ and VideoMD5",
}


@lists_app.command()
def show(
    name: Annotated[str | None, typer.Argument(help="A list; all lists when left out.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """A list's owner, policy, version and entry counts (or every list, one line each)."""
    with list_store(database_url) as store:
        if name is None:
            for hash_list in store.lists():
                typer.echo(
                    f"{hash_list.name}\t{hash_list.owner}\t{hash_list.category}\t"
                    f"version {hash_list.version}"
                )
            return
        hash_list, entries = store.entries(name)
        counts: dict[tuple[str, str], int] = {}
        unstable = 0
        for entry in entries:
            key = (entry.signal, entry.status.value)
            counts[key] = counts.get(key, 0) + 1
            unstable += _unstable(entry)
    policy = hash_list.policy
    typer.echo(f"list          {hash_list.name}")
    typer.echo(f"owner         {hash_list.owner}")
    typer.echo(f"category      {hash_list.category}")
    typer.echo(f"jurisdictions {', '.join(hash_list.jurisdictions) or '-'}")
    typer.echo(f"legal basis   {hash_list.legal_basis or '-'}")
    typer.echo(f"policy        {_policy_line(policy)}")
    typer.echo(f"version       {hash_list.version}")
    for (signal, status), count in sorted(counts.items()):
        typer.echo(f"entries       {signal:<7} {status:<10} {count}")
    _unstable_lines(name, unstable)


def _policy_line(policy: ListPolicy) -> str:
    rules = [f"{s} <= {t:g}" for s, t in sorted(policy.thresholds.items())] or ["signal defaults"]
    if policy.negative:
        rules.append("negative list (suppresses matches)")
    if policy.two_sources:
        rules.append("entries need two jurisdictions")
    rules.append(f"query variants {', '.join(sorted(policy.variants)) or 'none'}")
    return "; ".join(rules)


def _unstable_lines(name: str, unstable: int) -> None:
    if unstable:
        typer.echo(
            f"unstable      {unstable} entries (not matched: their hash moves under a 1 % resize)"
        )
        typer.echo(f"              hashguard lists export {name} --unstable lists them")


def _unstable(entry: Entry) -> bool:
    """Whether the active ``entry`` is left out of matching for its measured stability."""
    return (
        entry.status is EntryStatus.ACTIVE
        and entry.stability is not None
        and too_unstable(entry.signal, entry.stability)
    )


@lists_app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The list to remove.")],
    actor: ActorOption = "",
    database_url: DatabaseOption = None,
) -> None:
    """Remove a list with its entries and change log (signed releases stay where they were
    published). A list an exchange fills is refused: remove the exchange first."""
    with list_store(database_url) as store:
        removed = store.remove(name, who(actor))
    typer.echo(f"removed list {removed.name} (version {removed.version})")


@lists_app.command()
def changes(
    name: Annotated[str, typer.Argument(help="The list.")],
    since: Annotated[int, typer.Option("--since", min=0, help="Changes after this version.")] = 0,
    format: Annotated[ChangeFormat, typer.Option("--format", "-f")] = ChangeFormat.jsonl,
    database_url: DatabaseOption = None,
) -> None:
    """The change log after version N: adds and tombstones, for subscribers."""
    with list_store(database_url) as store:
        version = store.get(name).version
        if since > version:  # nothing after it, but not because nothing changed
            fail(f"list {name} is at version {version}: --since {since} is beyond it")
        for change in store.changes_since(name, since):
            if format is ChangeFormat.text:
                typer.echo(
                    f"{change.version}\t{change.kind}\t{change.signal}\t{change.value}\t"
                    f"{change.reason}"
                )
                continue
            typer.echo(json.dumps(change.as_json()))


def _single_change(kind: ChangeKind, verb: str, doc: str = "") -> None:
    def command(
        name: Annotated[str, typer.Argument(help="The list.")],
        signal: Annotated[str, typer.Argument(help="The entry's signal (pdq, md5, ...).")],
        value: Annotated[str, typer.Argument(help="The entry's value.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (kept in the log).")],
        actor: ActorOption = "",
        database_url: DatabaseOption = None,
    ) -> None:
        with list_store(database_url) as store:
            change = store.change(name, kind, signal.lower(), value, reason, who(actor))
        typer.echo(f"{name}: {signal} {change.value} {verb} (version {change.version})")

    command.__doc__ = doc or f"Mark one entry {verb}; it stops matching at once."
    lists_app.command(kind.value)(command)


_single_change(ChangeKind.CONTEST, "contested")
_single_change(ChangeKind.DELIST, "delisted")
_single_change(ChangeKind.DELETE, "deleted")
_single_change(
    ChangeKind.REINSTATE,
    "reinstated",
    "Make one contested or delisted entry active again; it matches again at once.",
)


@lists_app.command()
def release(
    name: Annotated[str, typer.Argument(help="The list to release.")],
    key: Annotated[Path, typer.Option("--key", help="The owner's private key (keys generate).")],
    log: LogOption,
    out: Annotated[Path, typer.Option("--out", help="The release directory to write.")],
    log_key: Annotated[
        Path | None,
        typer.Option(
            "--log-key",
            help="The log's private key; default LOG.key beside the log (made on first use), "
            "never inside the published log directory.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Sign the list's matchable entries as a release and append it to the transparency log."""
    from hashguard.lists import release as release_lists
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import LogError

    try:
        owner_key = lists_keys.load(key)
        transparency, signing_key = writable_log(log, log_key)
    except (lists_keys.KeyFileError, LogError, OSError) as error:
        fail(str(error))
    with list_store(database_url) as store:
        hash_list, entries = store.entries(name, [EntryStatus.ACTIVE])
        try:
            manifest, index, head = release_lists.build(
                hash_list, entries, owner_key, transparency, signing_key, out
            )
        except release_lists.ReleaseError as error:
            fail(str(error))
    typer.echo(
        f"released {name} version {manifest['version']}: {manifest['entries']} entries, "
        f"root {manifest['root'][:16]}...; log record {index}, log size {head.size}"
    )


@lists_app.command()
def snapshot(
    key: Annotated[Path, typer.Option("--key", help="The private key to sign it with.")],
    out: Annotated[Path, typer.Option("--out", help="The snapshot file to write.")],
    names: Annotated[
        list[str] | None, typer.Argument(help="The lists to hold (default: every list).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write a signed snapshot of lists (every entry at each list's version) that replicas
    load at start (hashguard serve --snapshot FILE --snapshot-key KEY.pub) before catching up
    from the change logs: much faster than reading the entries from the database."""
    from hashguard.lists import snapshot as list_snapshot
    from hashguard.transparency import keys as lists_keys

    try:
        signing_key = lists_keys.load(key)
    except lists_keys.KeyFileError as error:
        fail(str(error))
    with list_store(database_url) as store:
        chosen = names or [hash_list.name for hash_list in store.lists()]
        try:
            count = list_snapshot.write(out, store, chosen, signing_key)
        except list_snapshot.SnapshotError as error:
            fail(str(error))
        except OSError as error:
            fail(f"{out}: cannot write: {error.strerror}")
    typer.echo(f"wrote {out}: {len(chosen)} list(s), {count} entries, signed")


@lists_app.command()
def verify(
    release_dir: Annotated[Path, typer.Argument(help="A release directory (lists release).")],
    log: LogOption,
    owner_key: Annotated[
        Path | None, typer.Option("--owner-key", help="Pin the owner's public key (.pub file).")
    ] = None,
    log_key: LogKeyPin = None,
    known_head: KnownHeadOption = None,
) -> None:
    """Verify a release: signature, entries against the Merkle root, log inclusion and
    consistency. Exit status 0 when valid, 1 with the reason otherwise."""
    from hashguard.lists import release as release_lists
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import LogError, TransparencyLog, TreeHead

    try:  # what the verifier gives: a fault here is in the input, not the release
        pinned_owner = lists_keys.read_public(owner_key) if owner_key else None
        pinned_log = lists_keys.read_public(log_key) if log_key else None
        head = None
        if known_head is not None:
            head = TreeHead.read(known_head)
    except (lists_keys.KeyFileError, LogError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename}: cannot read: {error.strerror or error}")
    try:
        verified = release_lists.verify(
            release_dir, TransparencyLog(log), pinned_owner, pinned_log, head
        )
    except (release_lists.ReleaseError, LogError, OSError) as error:
        fail(f"{release_dir}: NOT VALID: {error}", ExitCode.INVALID)
    typer.echo(f"{release_dir}: valid release of {verified.list_name} version {verified.version}")
    for check in verified.checks:
        typer.echo(f"  {check}")
    for pin, given in (("--owner-key", owner_key), ("--log-key", log_key)):
        if given is None:
            echo_error(
                f"warning: {pin} not given: the key came with the material checked, "
                "so this proves consistency, not origin"
            )
