"""The escalation ladder an operator sets: the rungs taken while content stays after a notice's
deadline, each once, ``after_hours`` past the deadline, sent ``to`` an e-mail address, an https
URL (an API taking JSON) or ``upstream`` (the abuse desk of the hoster's upstream network, as
the registry of hosters names it). A TOML file of ``[[step]]`` tables (docs/formats.md,
"Takedown escalation ladder"; examples/takedown-escalation.toml); errors name the file and line.
"""

import difflib
import ipaddress
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from hashguard.errors import Invalid
from hashguard.hotline import tomlfile
from hashguard.net.fetch import Network
from hashguard.takedown.model import EscalationStep

FIELDS: Final = ("name", "after_hours", "to")
UPSTREAM: Final = "upstream"
MAX_NAME: Final = 64  # a delivery's ``step`` column
MAX_HOURS: Final = 24 * 366
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]*")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class LadderError(Invalid):
    """A ladder file that cannot be used; the message names the file and line."""


def load(path: Path, networks: Sequence[Network] = ()) -> tuple[EscalationStep, ...]:
    """The steps in the TOML file ``path``, in the order they are taken. An https URL is
    required of an API destination; plain http only to loopback or ``networks`` (tests, the
    operator's own networks).

    Raises LadderError naming the file and line of anything malformed or unknown.
    """
    file = tomlfile.read(path, LadderError)
    for key in file.document:
        if key != "step":
            raise LadderError(f"{file.where(key=key)}: unknown key {key!r} (the file holds "
                              "[[step]] tables)")  # fmt: skip
    tables = file.document.get("step", [])
    if not isinstance(tables, list):
        raise LadderError(f"{file.where(key='step')}: 'step' must be [[step]] tables")
    steps: list[EscalationStep] = []
    seen: dict[str, str] = {}
    for index, table in enumerate(tables):
        at = partial(file.where, "step", index)
        step = _step(table, at, networks)
        if step.name in seen:
            raise LadderError(f"{at('name')}: step {step.name!r} is named twice (also at "
                              f"{seen[step.name]})")  # fmt: skip
        if steps and step.after < steps[-1].after:
            raise LadderError(f"{at('after_hours')}: steps are listed in the order they are "
                              f"taken: {step.name!r} ({_hours(step.after)} h) comes before "
                              f"{steps[-1].name!r} ({_hours(steps[-1].after)} h)")  # fmt: skip
        seen[step.name] = at()
        steps.append(step)
    return tuple(steps)


def _step(table: Any, at: Callable[..., str], networks: Sequence[Network]) -> EscalationStep:
    if not isinstance(table, dict):
        raise LadderError(f"{at()}: a step must be a table")
    for key in table:
        if key not in FIELDS:
            near = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise LadderError(f"{at(key)}: unknown key {key!r}{hint} (the keys: "
                              f"{', '.join(FIELDS)})")  # fmt: skip
    for key in FIELDS:
        if key not in table:
            raise LadderError(f"{at()}: a step needs {key!r} (the keys: {', '.join(FIELDS)})")
    name = table["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise LadderError(f"{at('name')}: expected a name of lower-case letters, digits and "
                          f"'-' (at most {MAX_NAME}) like \"registrar\", got {name!r}")  # fmt: skip
    hours = table["after_hours"]
    if (not isinstance(hours, int | float) or isinstance(hours, bool) or not hours >= 0
            or hours > MAX_HOURS):  # fmt: skip
        raise LadderError(f"{at('after_hours')}: expected hours after the deadline (0 to "
                          f"{MAX_HOURS}), got {hours!r}")  # fmt: skip
    return EscalationStep(name, timedelta(hours=hours), _destination(table["to"], at, networks))


def _destination(to: Any, at: Callable[..., str], networks: Sequence[Network]) -> str:
    """``to`` as a destination: "upstream", an e-mail address, or an http(s) URL."""
    expected = ('expected an e-mail address, an https URL or "upstream" (the hoster\'s upstream '
                "network in the registry of hosters)")  # fmt: skip
    if not isinstance(to, str) or not to.strip():
        raise LadderError(f"{at('to')}: {expected}, got {to!r}")
    to = to.strip()
    if to == UPSTREAM or (_EMAIL.fullmatch(to) and "://" not in to):
        return to
    try:
        parts = urlsplit(to)
        host = parts.hostname
    except ValueError:
        raise LadderError(f"{at('to')}: {expected}, got {to!r}") from None
    if parts.scheme not in ("http", "https") or not host or parts.username or " " in to:
        raise LadderError(f"{at('to')}: {expected}, got {to!r}")
    if parts.scheme == "http" and not _near(host, networks):
        raise LadderError(f"{at('to')}: {to!r} is plain http: use https (http only to "
                          "loopback or the hotline's own networks)")  # fmt: skip
    return to


def _near(host: str, networks: Sequence[Network]) -> bool:
    """Whether ``host`` is loopback, ``localhost`` or in ``networks``."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or any(address in network for network in networks)


def _hours(after: timedelta) -> str:
    return f"{after.total_seconds() / 3600:g}"
