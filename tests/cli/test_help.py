"""Every command's help reads as a person expects: a flag shows no value to type after it."""

import pytest

from support.invoke import hashguard

COMMANDS = [
    ["hash"], ["compare"], ["match"], ["demo"], ["serve"],
    ["lists", "create"], ["lists", "import"], ["lists", "export"], ["lists", "release"],
    ["lists", "verify"], ["lists", "follow"], ["keys", "create"], ["services", "create"],
    ["device", "build-filter"], ["device", "check"], ["victims", "submit"], ["victims", "withdraw"],
    ["hotline", "assess"], ["hotline", "trace"], ["hotline", "run-once"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_flags_take_no_value_in_the_help(command: list[str]) -> None:
    shown = hashguard(*command, "--help", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "--" in shown.stdout and "<bool>" not in shown.stdout
