"""``hashguard device ...``: build device filter releases from lists, and check files as a
device would (block + warning + helpline; nothing reported)."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hashguard.cli.common import (
    DatabaseOption,
    ExitCode,
    KnownHeadOption,
    LogKeyPin,
    LogOption,
    echo_error,
    fail,
)
from hashguard.cli.lists import list_store, writable_log
from hashguard.lists.model import EntryStatus

device_app = typer.Typer(name="device", no_args_is_help=True)  # help: cli/__init__.py


class CheckFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


@device_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="The OPRF key file to write (and OUT.pub).")],
) -> None:
    """Make a server key for server-assisted (oprf) releases."""
    from hashguard.device import oprf

    try:
        key = oprf.ServerKey.generate()
        key.save(out)
    except (oprf.OprfError, OSError) as error:
        fail(str(error))
    typer.echo(f"OPRF key written to {out}; public key {key.public.hex()}")


@device_app.command("build-filter")
def build_filter(
    names: Annotated[list[str], typer.Option("--list", help="A list to include (repeat).")],
    mode: Annotated[str, typer.Option("--mode", help="offline or oprf (server-assisted).")],
    key: Annotated[Path, typer.Option("--key", help="The release signer's private key.")],
    log: LogOption,
    out: Annotated[Path, typer.Option("--out", help="The release directory to write.")],
    oprf_key: Annotated[
        Path | None, typer.Option("--oprf-key", help="oprf mode: the server key (device keygen).")
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="The last release: reuse its keys; a delta if small."),
    ] = None,
    near_duplicates: Annotated[
        bool, typer.Option("--near-duplicates", help="Also PDQ segment tags (6 per hash).")
    ] = False,
    bits: Annotated[
        int | None,
        typer.Option("--fingerprint-bits", help="Default 48 offline (the minimum), 31 oprf."),
    ] = None,
    log_key: Annotated[
        Path | None,
        typer.Option("--log-key", help="The log's private key; default LOG.key beside the log."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", min=1, help="oprf: threads keying (default: cores).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Build a signed filter release from lists and append it to the transparency log."""
    from hashguard.device import oprf
    from hashguard.device.build import build
    from hashguard.device.release import MODES, DeviceReleaseError
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import LogError

    if mode not in MODES:
        fail(f"--mode {mode!r}: expected offline or oprf")
    try:
        signing_key = lists_keys.load(key)
        transparency, log_signing_key = writable_log(log, log_key)
        server_key = oprf.ServerKey.load(oprf_key) if oprf_key is not None else None
    except (lists_keys.KeyFileError, LogError, oprf.OprfError, OSError) as error:
        fail(str(error))
    with list_store(database_url) as store:
        lists = [store.entries(name, [EntryStatus.ACTIVE]) for name in names]
        try:
            built = build(
                lists, mode, signing_key, transparency, log_signing_key, out,
                server_key=server_key, previous=previous, near_duplicates=near_duplicates,
                width=bits, jobs=jobs,
            )  # fmt: skip
        except (DeviceReleaseError, OSError) as error:
            fail(str(error))
    manifest = built.manifest
    kind = f"delta on version {manifest['base_version']}" if built.delta else "full"
    typer.echo(
        f"device release version {manifest['version']} ({manifest['mode']}, {kind}): "
        f"{sum(manifest['keys'].values())} keys, {manifest['fingerprint_bits']}-bit "
        f"fingerprints, {built.keyed} keyed now; log record {built.log_index}, "
        f"log size {built.head.size}"
    )
    if manifest["mode"] == "offline":
        echo_error(
            "note: an offline filter can be queried offline, without limit, by anyone who holds it"
        )


@device_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Files to check.")],
    log: LogOption,
    release: Annotated[
        Path | None, typer.Option("--release", help="A device release directory.")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="Instead of --release: a device's state (device update)."),
    ] = None,
    format: Annotated[CheckFormat, typer.Option("--format", "-f")] = CheckFormat.text,
    language: Annotated[str, typer.Option("--language", help="en or nl.")] = "en",
    country: Annotated[str, typer.Option("--country", help="Helplines of this country.")] = "NL",
    helplines: Annotated[
        Path | None, typer.Option("--helplines", help="A JSON file of helplines per country.")
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="oprf releases: the OPRF server's URL.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="HASHGUARD_DEVICE_TOKEN", help="oprf: the client token."),
    ] = None,
    signer_key: Annotated[
        Path | None, typer.Option("--signer-key", help="Pin the release signer (.pub file).")
    ] = None,
    log_key: LogKeyPin = None,
    known_head: KnownHeadOption = None,
) -> None:
    """Check files as a device would: blocked or not, with the warning and helplines. Nothing
    is reported anywhere. Exit status 0 when nothing is blocked, 1 when a file is, 2 when the
    release does not verify or a check cannot be done."""
    from hashguard.device import oprf
    from hashguard.device.checker import DeviceChecker, DeviceCheckError
    from hashguard.device.install import open_installed
    from hashguard.device.messages import LANGUAGES, ReferralError, load_referrals
    from hashguard.device.oprf_client import HttpEvaluator
    from hashguard.device.release import DeviceReleaseError
    from hashguard.device.verify import open_release
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import LogError, TransparencyLog, TreeHead

    if language not in LANGUAGES:
        fail(f"--language {language!r}: expected one of {', '.join(LANGUAGES)}", ExitCode.ERROR)
    if (release is None) == (state is None):
        fail("give either --release DIR or --state DIR", ExitCode.ERROR)
    if state is not None and (signer_key or log_key or known_head):
        fail("--state keeps its own log key, signer and log head: no pins with it", ExitCode.ERROR)
    source = release or state
    head = None
    if known_head is not None:
        try:
            head = TreeHead.read(known_head)
        except LogError as error:
            fail(str(error), ExitCode.ERROR)
        except OSError as error:
            fail(f"{known_head}: cannot read: {error.strerror or error}", ExitCode.ERROR)
    try:
        if state is not None:
            verified = open_installed(state, TransparencyLog(log))
        else:
            assert release is not None
            verified = open_release(
                release, TransparencyLog(log),
                signer_key=lists_keys.read_public(signer_key) if signer_key else None,
                log_key=lists_keys.read_public(log_key) if log_key else None, known_head=head,
            )  # fmt: skip
            if log_key is None:
                echo_error(
                    "warning: --log-key not given: the log's key came with the release, so this "
                    "proves consistency, not origin (a device keeps the key: device update, then "
                    "check --state)"
                )
        evaluator = None
        if verified.mode == "oprf":
            if not server or not token:
                fail("a server-assisted release needs --server and --token", ExitCode.ERROR)
            evaluator = HttpEvaluator(server, token)
        referrals = load_referrals(helplines) if helplines else None
        checker = DeviceChecker(
            verified, language=language, country=country, referrals=referrals,
            evaluator=evaluator,
        )  # fmt: skip
    except (DeviceReleaseError, LogError, lists_keys.KeyFileError, ReferralError) as error:
        fail(f"{source}: REFUSED: {error}", ExitCode.ERROR)
    except oprf.OprfError as error:
        fail(str(error), ExitCode.ERROR)
    blocked = failed = False
    shown = False
    for path in files:
        try:
            media = path.read_bytes()
            verdict = checker.check(media)
        except (OSError, DeviceCheckError) as error:
            failed = True
            detail = error.strerror if isinstance(error, OSError) else str(error)
            echo_error(f"{path}: not checked: {detail}")
            continue
        blocked |= verdict.blocked
        if format is CheckFormat.jsonl:
            line = {"path": str(path), "blocked": verdict.blocked, "reason": verdict.reason}
            typer.echo(json.dumps(line))
            continue
        typer.echo(f"{path}: {'BLOCKED' if verdict.blocked else 'ok'} ({verdict.reason})")
        if verdict.note:
            typer.echo(f"  note: {verdict.note}")
        if verdict.blocked and verdict.message and not shown:
            typer.echo("\n" + verdict.message + "\n")
            shown = True
    if failed:
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.BLOCKED if blocked else ExitCode.OK)


@device_app.command("update")
def update(
    release: Annotated[Path, typer.Option("--release", help="The new release directory.")],
    log: LogOption,
    state: Annotated[Path, typer.Option("--state", help="The device's state directory.")],
    log_key: Annotated[
        Path | None,
        typer.Option("--log-key", help="The log's public key (.pub): required on a new device."),
    ] = None,
    signer_key: Annotated[
        Path | None, typer.Option("--signer-key", help="Pin the release signer (.pub file).")
    ] = None,
) -> None:
    """Install a release as a device does: verified first, fetching only the files it lacks."""
    from hashguard.device.install import install
    from hashguard.device.release import DeviceReleaseError
    from hashguard.transparency import keys as lists_keys
    from hashguard.transparency.log import LogError, TransparencyLog

    try:
        pinned = lists_keys.read_public(signer_key) if signer_key else None
        anchor = lists_keys.read_public(log_key) if log_key else None
        installed = install(release, TransparencyLog(log), state, log_key=anchor, signer_key=pinned)
    except (DeviceReleaseError, LogError, lists_keys.KeyFileError, OSError) as error:
        fail(f"{release}: REFUSED: {error}", ExitCode.ERROR)
    typer.echo(
        f"installed device release version {installed.release.version}: fetched "
        f"{installed.fetched_bytes:,} of {installed.total_bytes:,} bytes"
    )
