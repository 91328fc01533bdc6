"""The ``hashguard`` command run in this process, through typer's ``CliRunner``: what a user
sees (standard output, standard error, the exit status) without the seconds a new Python
process takes to import everything. What only a real process shows (``main``'s set-up of the
standard streams, a terminal, signals, crashes, the temporary directory) is tested with real
processes."""

from collections.abc import Mapping
from dataclasses import dataclass

from typer.testing import CliRunner

from hashguard.cli import app


@dataclass(frozen=True)
class Ran:
    """What the command did: named as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def hashguard(
    *arguments: str, env: Mapping[str, str] | None = None, input: str | None = None
) -> Ran:
    """``hashguard ARGUMENTS`` with ``env`` added to the environment and ``input`` on standard
    input. An exception that escaped the command fails the test: a user would have seen a
    traceback."""
    result = CliRunner().invoke(app, list(arguments), env=env, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"hashguard {' '.join(arguments)}: uncaught") from result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)
