"""The escalation ladder an operator sets (``takedown_escalation``): a TOML file of ``[[step]]``
tables, each taken ``after_hours`` past a notice's deadline while its content is still served,
sent to its ``destination``: an e-mail address, an https URL, or ``upstream`` (the abuse desk
of the hoster's upstream network). docs/takedown.md, "Escalation"."""

import re
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Invalid
from hashguard.hotline import tomlfile
from hashguard.takedown.model import EscalationStep

FIELDS: Final = ("name", "after_hours", "destination")
UPSTREAM: Final = "upstream"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"https?://[^\s/]+\S*")


class LadderError(Invalid):
    """A ladder file that cannot be used; the message names the file and line."""


def load(path: Path) -> tuple[EscalationStep, ...]:
    """The steps of the ladder file ``path``, in the order they are taken (by ``after``).
    Raises LadderError naming the file and line of anything malformed."""
    file = tomlfile.read(path, LadderError)
    for key in file.document:
        if key != "step":
            raise LadderError(f"{file.where(key=key)}: unknown key {key!r} (the file holds "
                              "[[step]] tables)")  # fmt: skip
    tables = file.document.get("step", [])
    if not isinstance(tables, list):
        raise LadderError(f"{path}: 'step' must be [[step]] tables")
    steps: list[EscalationStep] = []
    for index, table in enumerate(tables):
        step = _step(table, partial(file.where, "step", index))
        if any(s.name == step.name for s in steps):
            raise LadderError(f"{file.where('step', index, 'name')}: step {step.name!r} is "
                              "named twice")  # fmt: skip
        steps.append(step)
    return tuple(sorted(steps, key=lambda s: s.after))


def _step(table: Any, at: Callable[..., str]) -> EscalationStep:
    if not isinstance(table, dict):
        raise LadderError(f"{at()}: a step must be a table")
    for key in table:
        if key not in FIELDS:
            raise LadderError(f"{at(key=key)}: unknown key {key!r} (the keys: "
                              f"{', '.join(FIELDS)})")  # fmt: skip
    name = table.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise LadderError(f"{at(key='name')}: a step needs a name (lower-case letters, digits, "
                          f"'-' or '_'; at most 64), got {name!r}")  # fmt: skip
    hours = table.get("after_hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 24 * 366:
        raise LadderError(f"{at(key='after_hours')}: expected the hours after the deadline "
                          f"(0 to 8784), got {hours!r}")  # fmt: skip
    destination = table.get("destination")
    if not isinstance(destination, str) or not (
        destination == UPSTREAM or _EMAIL.fullmatch(destination) or _URL.fullmatch(destination)
    ):
        raise LadderError(f"{at(key='destination')}: expected an e-mail address, an http(s) URL "
                          f"or {UPSTREAM!r}, got {destination!r}")  # fmt: skip
    return EscalationStep(name, timedelta(hours=hours), destination)
