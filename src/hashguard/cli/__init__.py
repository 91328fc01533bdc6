"""The ``hashguard`` command line (floor 4): the typer app, one module per command group, and
``main`` (the console script).

It starts fast (bench/cli.py): a command group's module is imported only when the group is used
(``hashguard lists ...``), and every command imports what it needs when it runs (see
cli/common.py), so ``--version`` and ``--help`` load no hashing code, ORM or web stack
(tests/architecture/test_cli_startup.py).
"""

import io
import os
import sys
from collections.abc import Callable
from functools import cache
from importlib import import_module
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from hashguard import __version__
from hashguard.cli.common import ExitCode, SignalHelp, echo_error
from hashguard.cli.demo import demo
from hashguard.cli.hashing import compare, hash_command
from hashguard.cli.matching import match
from hashguard.cli.safeguards import purge
from hashguard.cli.scan import scan
from hashguard.cli.serve import serve
from hashguard.errors import HashguardError


def _group(module: str, name: str) -> Callable[[], typer.Typer]:
    """What loads the typer app ``name`` of the module ``hashguard.cli.MODULE``."""
    return lambda: getattr(import_module(f"hashguard.cli.{module}"), name)


@cache  # once per process: the follow command is registered on the lists app
def _lists() -> typer.Typer:
    from hashguard.cli.follow import follow
    from hashguard.cli.lists import lists_app

    lists_app.command()(follow)
    return lists_app


# The command groups, in the order `hashguard --help` lists them: what it says of each, and the
# group's typer app, imported only when the group is used.
GROUPS: dict[str, tuple[str, Callable[[], typer.Typer]]] = {
    "lists": ("Hash lists: create, import, export, inspect, change, remove.", _lists),
    "keys": ("Signing keys and API keys.", _group("keys", "keys_app")),
    "audit": ("The audit log.", _group("audit", "audit_app")),
    "services": ("Services whose uploads are checked.", _group("safeguards", "services_app")),
    "stats": ("Transparency figures.", _group("safeguards", "stats_app")),
    "config": (
        "The service's settings: what is set, from where, and what is wrong.",
        _group("config", "config_app"),
    ),
    "device": (
        "On-device checks: filter releases, and checking files locally.",
        _group("device", "device_app"),
    ),
    "victims": (
        "Victims' cases: hash a person's files here, send only hashes; status, withdrawal.",
        _group("victims", "victims_app"),
    ),
    "hotline": (
        "The hotline: reports, cases, the queue, assessing, hosting traces, partners, a run.",
        _group("hotline", "hotline_app"),
    ),
    "exchanges": (
        "Exchanges: fetch lists from NCMEC, StopNCII, ThreatExchange and peers on a schedule.",
        _group("exchanges", "exchanges_app"),
    ),
    "takedown": (
        "Notice and takedown: notices, orders, hosters, the monitor, XARF export and import.",
        _group("takedown", "takedown_app"),
    ),
}


class _Unloaded(TyperGroup):
    """A command group listed by name and help; its module is imported when it is used."""

    def __init__(self, name: str, help_text: str, load: Callable[[], typer.Typer]) -> None:
        super().__init__(name=name, help=help_text)
        self._load = load

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        group = typer.main.get_group(self._load())
        group.help = self.help
        return group.make_context(info_name, args, parent, **extra)


class _Commands(TyperGroup):
    """hashguard's commands, then its command groups (each as an ``_Unloaded``)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, (help_text, load) in GROUPS.items():
            self.add_command(_Unloaded(name, help_text, load))


app = typer.Typer(
    name="hashguard",
    help="Match media against verifiable lists of known child-abuse material, privately.",
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(purge)
app.command()(serve)
app.command("hash", cls=SignalHelp)(hash_command)
app.command()(compare)
app.command(cls=SignalHelp)(match)
app.command()(scan)
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
