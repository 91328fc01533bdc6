"""What every command group shares: the options that mean the same everywhere, the exit statuses,
and the one way an error reaches the user (``hashguard: MESSAGE`` on stderr, one line)."""

import getpass
import os
import socket
import sys
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer


class ExitCode(IntEnum):
    """hashguard's exit statuses by meaning; each command's help says which it uses."""

    OK = 0
    FAILED = 1  # the command could not do what was asked (bad input, a file, the store)
    NO_MATCH = 1  # match: nothing matched
    INVALID = 1  # lists verify, audit verify: the material does not verify
    BLOCKED = 1  # device check: a file is blocked
    ERROR = 2  # match, device: a check could not be done; serve: the service cannot start


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    text = "text"


DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="HASHGUARD_DATABASE_URL",
        help="SQLAlchemy URL (sqlite:///file.db, postgresql://...); default sqlite:///hashguard.db.",
    ),
]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Worker processes (decoders run there).")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
LogOption = Annotated[Path, typer.Option("--log", help="The transparency log directory.")]
LogKeyPin = Annotated[
    Path | None, typer.Option("--log-key", help="Pin the log's public key (.pub file).")
]
KnownHeadOption = Annotated[
    Path | None,
    typer.Option("--known-head", help="A tree head seen before (heads/*.json): no fork since."),
]


def who(actor: str) -> str:
    """The actor the audit log records for a command: ``--actor`` when given, else the login
    user and host it runs as (so that no change is recorded as made by no one)."""
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (cli)"


def error_line(message: str) -> str:
    """``hashguard: MESSAGE`` with its whitespace runs (newlines too) made single spaces."""
    return f"hashguard: {' '.join(message.split())}"


def echo_error(message: str) -> None:
    """One line on stderr, never wrapped, so scripts can read it: errors, warnings and notes."""
    sys.stderr.write(error_line(message) + "\n")
    sys.stderr.flush()


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> NoReturn:
    """Say ``message`` on stderr and end the command with ``code``; raises typer.Exit."""
    echo_error(message)
    raise typer.Exit(code) from None
