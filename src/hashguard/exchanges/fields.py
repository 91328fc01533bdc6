"""Checking an exchange's settings or credentials against its plug-in's ``Schema``: what a
plug-in's ``check_config`` and ``check_credentials`` can be made of; and the bounds every
plug-in's numbers keep (``check_number``: finite, a signed 64-bit integer's range at most;
``check_start``: a start time no later than a day from now, so a first fetch is never put off
for ever).
"""

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hashguard.exchanges.api import ExchangeConfigError, Field, Schema

MAX_NUMBER: Final = 2**63 - 1  # the largest number a setting may be (a signed 64-bit integer)
START_SLACK: Final = timedelta(days=1)  # how far after now a start time may lie (clock skew)
TIME_SHOWN: Final = "%Y-%m-%dT%H:%M:%SZ"


def check_number(name: str, value: int | float, shown: str = "") -> int | float:
    """``value`` if it is finite and within a signed 64-bit integer's range either way; raises
    ExchangeConfigError naming ``name`` (and ``shown``, or the value, cut short)."""
    said = shown or repr(value)[:40]
    if isinstance(value, float) and not math.isfinite(value):
        raise ExchangeConfigError(f"{name}: {said} is not a finite number")
    if abs(value) > MAX_NUMBER:
        raise ExchangeConfigError(
            f"{name}: {said} is out of range (a number from -{MAX_NUMBER} to {MAX_NUMBER})"
        )
    return value


def check_start(name: str, seconds: int, shown: str = "", now: datetime | None = None) -> int:
    """``seconds`` (a Unix time to start from) if it is no later than a day from ``now``;
    raises ExchangeConfigError naming ``name``, the time given (``shown``, else ``seconds``)
    and the latest time it may be."""
    latest = (now or datetime.now(UTC)) + START_SLACK
    if seconds > latest.timestamp():
        given = (shown or str(seconds))[:40]
        raise ExchangeConfigError(
            f"{name}: {given} is later than {latest.strftime(TIME_SHOWN)} (a day from now): a "
            "fetch starts from a time that has passed, or nothing is ever fetched"
        )
    return seconds


def check_fields(schema: Schema, given: Mapping[str, Any], what: str = "setting") -> dict[str, Any]:
    """``given`` with defaults filled in, each value of its field's type. Raises
    ExchangeConfigError naming the first field unknown, missing or of the wrong type or
    choice (a secret field's value is never shown)."""
    known = {field.name: field for field in schema.fields}
    for name in given:
        if name not in known:
            choices = ", ".join(known) or "none"
            raise ExchangeConfigError(
                f"{name}: not a {what} of this exchange (it takes: {choices})"
            )
    checked: dict[str, Any] = {}
    for field in schema.fields:
        value = given.get(field.name)
        if value is None or value == "":
            if field.required:
                raise ExchangeConfigError(f"{field.name}: required ({field.help or field.type})")
            if field.default is not None:
                checked[field.name] = field.default
            continue
        checked[field.name] = _typed(field, value, what)
    return checked


def _typed(field: Field, value: Any, what: str) -> Any:
    shown = "a value" if field.secret else repr(value)[:80]
    if field.type == "string":
        if not isinstance(value, str):
            raise ExchangeConfigError(f"{field.name}: {shown} is not text")
        if field.choices and value not in field.choices:
            raise ExchangeConfigError(
                f"{field.name}: {shown} is not one of {', '.join(field.choices)}"
            )
        return value
    if field.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExchangeConfigError(f"{field.name}: {shown} is not a number")
        return check_number(field.name, value, shown)
    if field.type == "boolean":
        if not isinstance(value, bool):
            raise ExchangeConfigError(f"{field.name}: {shown} is not true or false")
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ExchangeConfigError(f"{field.name}: {shown} is not a list of text {what}s")
    if field.choices and (bad := [v for v in value if v not in field.choices]):
        raise ExchangeConfigError(
            f"{field.name}: {bad[0]!r} is not one of {', '.join(field.choices)}"
        )
    return list(value)
