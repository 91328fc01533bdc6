"""Checking an exchange's settings or credentials against its plug-in's ``Schema``: what a
plug-in's ``check_config`` and ``check_credentials`` can be made of."""

from collections.abc import Mapping
from typing import Any

from hashguard.exchanges.api import ExchangeConfigError, Field, Schema


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
        return value
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
