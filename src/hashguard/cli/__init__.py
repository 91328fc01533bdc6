"""The ``hashguard`` command line (floor 4): the typer app, one module per command group, and
``main`` (the console script)."""

import io
import os
import sys
from typing import Annotated

import typer

from hashguard import __version__
from hashguard.cli.audit import audit_app
from hashguard.cli.common import ExitCode, echo_error
from hashguard.cli.demo import demo
from hashguard.cli.device import device_app
from hashguard.cli.follow import follow
from hashguard.cli.hashing import compare, hash_command
from hashguard.cli.keys import keys_app
from hashguard.cli.lists import lists_app
from hashguard.cli.matching import match
from hashguard.cli.safeguards import purge, services_app, stats_app
from hashguard.cli.serve import serve
from hashguard.errors import HashguardError

app = typer.Typer(
    name="hashguard",
    help="Match media against verifiable lists of known child-abuse material, privately.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lists_app.command()(follow)
app.add_typer(lists_app)
app.add_typer(keys_app)
app.add_typer(audit_app)
app.add_typer(services_app)
app.add_typer(stats_app)
app.add_typer(device_app)
app.command()(purge)
app.command()(serve)
app.command("hash")(hash_command)
app.command()(compare)
app.command()(match)
app.command()(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hashguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """hashguard: hash media and match it against known-material lists."""


def main() -> None:
    # Started with stdout or stderr closed: write to nowhere rather than fail on every file.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # File names that are not valid UTF-8 are written back as the bytes they are, as ls does.
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=errors)
    try:
        app()
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(ExitCode.FAILED)
    except HashguardError as error:  # one a command did not catch: still one line, no trace
        echo_error(str(error))
        sys.exit(ExitCode.FAILED)
