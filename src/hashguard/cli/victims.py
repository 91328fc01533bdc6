"""``hashguard victims ...``: for a support organisation helping a person in person. ``submit``
hashes the person's files here (hashguard's own hashing) and sends only the hashes to a
hashguard service, which opens a case; ``status`` and ``withdraw`` follow it with its number and
PIN. No file leaves this machine."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashguard.cli.common import echo_error, fail
from hashguard.net.answers import json_of, text_of

if TYPE_CHECKING:
    import httpx

victims_app = typer.Typer(name="victims", no_args_is_help=True)  # help: cli/__init__.py

ServerOption = Annotated[
    str,
    typer.Option("--server", envvar="HASHGUARD_SERVER", help="The hashguard service's address."),
]
PinOption = Annotated[
    str,
    typer.Option("--pin", envvar="HASHGUARD_CASE_PIN", prompt="PIN", hide_input=True,
                 help="The case's PIN (asked for when not given)."),
]  # fmt: skip
_SIGNALS = ("pdq", "vpdq", "md5", "sha256")  # what the victim page's hasher sends too
_MIN_QUALITY = 50


def _hashes(path: Path) -> list[dict[str, Any]]:
    """The file's hashes as a case takes them, PDQ's with its quality and stability; a PDQ
    hash of too low a quality or stability is left out, with a note. Fails for a file that is
    no image or video, or cannot be read."""
    from hashguard.signals import registry
    from hashguard.signals.batch import FileFailure, FileSkipped, StreamHashes, checked_values

    signals = [registry.get(name) for name in _SIGNALS]
    hashed = checked_values(str(path), signals, quiet_decoders=True)
    if isinstance(hashed, FileFailure):
        fail(f"{path}: {hashed.reason}")
    if isinstance(hashed, FileSkipped):
        fail(f"{path}: not an image or a video")
    assert isinstance(hashed, StreamHashes)
    perceptual = {signal.name for signal, _ in hashed.values} & {"pdq", "vpdq"}
    if not perceptual and hashed.undecodable is None:
        fail(f"{path}: not an image or a video")
    if hashed.undecodable is not None:
        echo_error(f"note: {path}: only its exact digests are sent ({hashed.undecodable})")
    found = []
    for signal, value in hashed.values:
        shown: dict[str, Any] = {"signal": signal.name, "value": signal.format(value)}
        quality = signal.quality(value)
        if quality is not None:
            if quality < _MIN_QUALITY:
                echo_error(f"note: {path}: the picture has too little detail to be recognised "
                           f"safely (quality {quality}, 50 needed); its exact digests are sent, "
                           "its PDQ hash is not")  # fmt: skip
                continue
            shown["quality"] = quality
            stability = signal.stability(value)
            if stability is not None:
                if signal.too_unstable(stability):
                    echo_error(f"note: {path}: the picture's hash moves under a 1 % resize "
                               f"(stability {stability}, {signal.min_stability} needed), so it "
                               "would not be recognised; its exact digests are sent, its PDQ "
                               "hash is not")  # fmt: skip
                    continue
                shown["stability"] = stability
        found.append(shown)
    return found


def _call(method: str, server: str, path: str, **options: Any) -> Any:
    """The service's JSON answer; fails with its error message, or why it cannot be reached."""
    import httpx

    try:
        answer = httpx.request(method, server.rstrip("/") + path, timeout=60, **options)
    except httpx.HTTPError as error:
        fail(f"{server}: cannot be reached ({error})")
    if answer.status_code >= 400:
        fail(f"{server}: {answer.status_code} {_message(answer)}")
    try:
        return json_of(answer)
    except ValueError:
        fail(f"{server}: answered with something other than JSON: is it a hashguard service?")


def _message(answer: "httpx.Response") -> str:
    try:
        message = str(json_of(answer)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        message = text_of(answer)[:200]
    retry = answer.headers.get("retry-after")
    return f"{message} (retry after {retry} s)" if retry else message


@victims_app.command()
def submit(
    files: Annotated[list[Path], typer.Argument(help="The person's pictures and videos.")],
    server: ServerOption,
    under_18: Annotated[
        bool, typer.Option("--under-18", help="The person was under 18 in them.")
    ] = False,
    language: Annotated[str, typer.Option("--language", help="en or nl.")] = "en",
) -> None:
    """Hash FILES here and open a case with the hashes alone; prints the case number and PIN."""
    if language not in ("en", "nl"):
        raise typer.BadParameter("expected en or nl", param_hint="--language")
    hashes = [h for path in files for h in _hashes(path)]
    opened = _call("POST", server, "/v1/victims/cases",
                   json={"hashes": hashes, "under_18": under_18, "language": language})  # fmt: skip
    typer.echo(f"case: {opened['case']}")
    typer.echo(f"PIN: {opened['pin']}")
    typer.echo(f"{len(hashes)} hash(es) of {len(files)} file(s) sent; no file left this machine. "
               "Keep the case number and PIN: neither can be recovered.")  # fmt: skip


@victims_app.command()
def status(
    case: Annotated[str, typer.Argument(help="The case number.")],
    server: ServerOption,
    pin: PinOption,
) -> None:
    """The case's hashes (received, active, withdrawn) and partners' outcomes."""
    _show(_call("GET", server, f"/v1/victims/cases/{case}", headers={"X-Case-Pin": pin}))


@victims_app.command()
def withdraw(
    case: Annotated[str, typer.Argument(help="The case number.")],
    server: ServerOption,
    pin: PinOption,
    hashes: Annotated[
        list[str] | None,
        typer.Option("--hash", help="Only this hash, as SIGNAL:VALUE (repeat); default all."),
    ] = None,
) -> None:
    """Withdraw the case's hashes (all, or those given) everywhere the list reaches."""
    body = None
    if hashes:
        chosen = []
        for given in hashes:
            signal, _, value = given.partition(":")
            if not value:
                raise typer.BadParameter(f"{given!r}: expected SIGNAL:VALUE", param_hint="--hash")
            chosen.append({"signal": signal, "value": value})
        body = {"hashes": chosen}
    answer = _call("POST", server, f"/v1/victims/cases/{case}/withdrawal",
                   headers={"X-Case-Pin": pin}, json=body)  # fmt: skip
    _show(answer)


def _show(status: dict[str, Any]) -> None:
    typer.echo(f"case {status['case']}, opened {status['opened_at']}")
    for held in status["hashes"]:
        value = held["value"] if len(held["value"]) <= 64 else held["value"][:61] + "..."
        line = f"{held['state']:<9}  {held['signal']:<6}  {value}"
        withdrawal = held.get("withdrawal")
        if withdrawal is not None:
            line += f"  ({withdrawal['summary']})"
        typer.echo(line)
    for partner in status["partners"]:
        typer.echo(f"partner {partner['partner']}: {partner['matches']} match(es), "
                   f"{partner['pending_review']} pending review, {partner['blocked']} blocked, "
                   f"{partner['not_blocked']} not blocked")  # fmt: skip
