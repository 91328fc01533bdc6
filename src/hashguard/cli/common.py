"""What every command group shares: the options that mean the same everywhere, the exit statuses,
and the one way an error reaches the user (``hashguard: MESSAGE`` on stderr, one line).

Command modules import at their top only what their options need (typer, enums of plain
values); each command imports the rest when it runs, so ``hashguard --help`` and a command
that reads the database never load the hashing code, the ORM or the web stack they do not use.
"""

import getpass
import os
import socket
import sys
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperOption


def _flags_take_no_value() -> None:
    """typer (0.29) shows every option's type in the help, a flag's too (``--dihedral <bool>``),
    as if it took a value; a flag takes none, so it shows no type."""
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


class ExitCode(IntEnum):
    """hashguard's exit statuses by meaning; each command's help says which it uses."""

    OK = 0
    FAILED = 1  # the command could not do what was asked (bad input, a file, the store)
    NO_MATCH = 1  # match: nothing matched
    INVALID = 1  # lists verify, audit verify: the material does not verify
    BLOCKED = 1  # device check: a file is blocked
    ERROR = 2  # match, device: a check could not be done; serve: the service cannot start


class Engine(StrEnum):
    """Where work runs: ``local`` (this machine: a process pool, or uvicorn) or ``ray``."""

    local = "local"
    ray = "ray"


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
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="With --engine ray: a running Ray cluster's address (default: a new local one).",
    ),
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


class SignalHelp(TyperCommand):
    """A command whose parameters' help names the registered signals, filled in when the help
    is shown (the registry loads the hashing code, which other commands never need):
    ``{signals}`` every signal, ``{on_request}`` those computed only when named, and
    ``{hex_lengths}`` which signals a bare hex hash of each length can be."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        texts = _signal_texts()
        for param in self.params:
            text = getattr(param, "help", None)
            if text:
                param.help = text.format_map(texts)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


def _signal_texts() -> dict[str, str]:
    from hashguard.signals import registry

    every, by_default = registry.names(optional=True), registry.names()
    digits = sorted({s.hex_digits for s in registry.listable() if s.hex_digits})
    lengths = (
        f"{n} digits: {', '.join(s.name for s in registry.by_hex_digits(n))}" for n in digits
    )
    return {
        "signals": ",".join(every),
        "on_request": ",".join(n for n in every if n not in by_default),
        "hex_lengths": "; ".join(lengths),
    }
