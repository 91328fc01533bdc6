"""Reading the settings (api/settings.py) from a TOML file, the environment (``HASHGUARD_*``)
and flags: a flag wins over the environment, which wins over the file, which wins over the
default; each value knows where it came from (``Origin``). ``hashguard serve`` and ``hashguard
config check`` both read them here; docs/configuration.md describes the file."""

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from hashguard.api.settings import (
    NCMEC_PASSWORD,
    SECTIONS,
    SETTINGS,
    ServiceSettings,
    Setting,
    default_of,
    masked_url,
)
from hashguard.errors import Invalid


class ConfigError(Invalid):
    """The settings cannot be used: the message names the setting, where its value came from
    and what was expected."""


class Source(StrEnum):
    DEFAULT = "default"
    FILE = "file"
    ENV = "env"
    FLAG = "flag"


@dataclass(frozen=True)
class Origin:
    """Where a value came from: ``where`` is the file and line, the variable or the flag."""

    source: Source
    where: str = ""

    def __str__(self) -> str:
        return f"{self.source} ({self.where})" if self.where else str(self.source)


@dataclass(frozen=True)
class Configuration:
    """The settings, and per setting (by name) its value as set (in MiB where the settings
    hold bytes) and its origin."""

    settings: ServiceSettings
    values: Mapping[str, Any]
    origins: Mapping[str, Origin]
    file: Path | None = None


def load(
    file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Configuration:
    """The settings from ``file`` (TOML; none: defaults), ``environ`` (default: this process's
    environment; an empty variable counts as unset) and ``flags`` (by setting name: the text
    given, a list of texts for a repeated flag, a bool for a switch; None when not given).

    Raises ConfigError for a file that cannot be read or is not TOML, an unknown key, or a
    value of the wrong kind or out of range, naming the setting and where it came from.
    """
    environ = os.environ if environ is None else environ
    value: Any
    values = {name: default_of(name) for name in SETTINGS}
    origins = {name: Origin(Source.DEFAULT) for name in SETTINGS}
    origins["public_url"] = Origin(Source.DEFAULT, "from host and port")
    if file is not None:
        for name, (value, where) in read_file(file).items():
            values[name], origins[name] = value, Origin(Source.FILE, where)
    for name, (_, spec) in SETTINGS.items():
        text = environ.get(spec.env, "")
        if text:
            values[name] = _checked(spec, _parsed(spec, text, spec.env), spec.env)
            origins[name] = Origin(Source.ENV, spec.env)
    for name, given in (flags or {}).items():
        spec = SETTINGS[name][1]
        if given is None or (spec.repeat and not given):
            continue
        if isinstance(given, bool):
            value = given
        elif spec.repeat:
            value = tuple(v for text in given for v in _parsed(spec, text, spec.option))
        else:
            value = _parsed(spec, given, spec.option)
        values[name] = _checked(spec, value, spec.option)
        origins[name] = Origin(Source.FLAG, spec.option)
    arguments = {}
    for name, (attribute, spec) in SETTINGS.items():
        value = values[name]
        arguments[attribute] = value * spec.scale if spec.scale != 1 else value
    settings = ServiceSettings(**arguments)
    values["public_url"] = settings.public_url  # made from the host and port when not set
    values["provider_country"] = settings.provider_country
    return Configuration(settings, values, origins, file)


def secret_set(environ: Mapping[str, str] | None = None) -> bool:
    """Whether NCMEC's password is in the environment (its value is never read here)."""
    return bool((os.environ if environ is None else environ).get(NCMEC_PASSWORD))


def read_file(path: Path) -> dict[str, tuple[Any, str]]:
    """The settings a TOML file sets: by name, the value and where (``FILE, line N``). A key is
    a setting's name, at the top of the file or in the setting's section (``[server]``...).

    Raises ConfigError naming the file (and line) on anything else.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a TOML file (not UTF-8 text)") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message ends "(at line N, column M)"
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    found: dict[str, tuple[Any, str]] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                where = _where(path, text, key, None, table=True)
                raise ConfigError(f"{where}: unknown section [{key}]{_close(key, SECTIONS)} "
                                  f"(the sections: {', '.join(SECTIONS)})")  # fmt: skip
            for inner, inner_value in value.items():
                _take(found, path, text, inner, inner_value, key)
        else:
            _take(found, path, text, key, value, None)
    return found


def _take(
    found: dict[str, tuple[Any, str]],
    path: Path,
    text: str,
    key: str,
    value: Any,
    section: str | None,
) -> None:
    where = _where(path, text, key, section)
    if key not in SETTINGS:
        if key == "ncmec_password":
            raise ConfigError(f"{where}: the NCMEC password is not kept in files: set it in "
                              f"the environment variable {NCMEC_PASSWORD}")  # fmt: skip
        raise ConfigError(f"{where}: unknown setting {key!r}{_close(key, SETTINGS)} (the "
                          "settings: docs/configuration.md, hashguard serve --help)")  # fmt: skip
    spec = SETTINGS[key][1]
    if section is not None and section != spec.section:
        raise ConfigError(f"{where}: {key} belongs in [{spec.section}] (or at the top of the "
                          f"file), not in [{section}]")  # fmt: skip
    if key in found:
        raise ConfigError(f"{where}: {key} is set twice (also at {found[key][1]})")
    try:
        parsed = spec.kind.from_toml(value)
    except ValueError:
        raise ConfigError(f"{key}: expected {spec.kind.expected}, got {value!r} (from "
                          f"{where})") from None  # fmt: skip
    found[key] = (_checked(spec, parsed, where), where)


def _parsed(spec: Setting, text: str, where: str) -> Any:
    try:
        return spec.kind.from_text(text)
    except ValueError:
        shown = masked_url(text) if spec.kind.metavar == "URL" else text
        raise ConfigError(f"{spec.name}: expected {spec.kind.expected}, got {shown!r} "
                          f"(from {where})") from None  # fmt: skip


def _checked(spec: Setting, value: Any, where: str) -> Any:
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{spec.name}: must be at least {spec.minimum:g}, got {value} "
                          f"(from {where})")  # fmt: skip
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{spec.name}: must be at most {spec.maximum:g}, got {value} "
                          f"(from {where})")  # fmt: skip
    return value


def _close(key: str, known: Any) -> str:
    near = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(near)}?" if near else ""


_TABLE = re.compile(r"\s*\[\s*([A-Za-z0-9_-]+)\s*\]")


def _where(path: Path, text: str, key: str, section: str | None, table: bool = False) -> str:
    """``FILE, line N`` of ``key`` (in ``section``; or of the table ``[key]``), or ``FILE``
    (tomllib gives no lines of keys: they are found in the text)."""
    current: str | None = None
    assignment = re.compile(rf"\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        opened = _TABLE.match(line)
        if opened:
            current = opened.group(1)
            if table and current == key:
                return f"{path}, line {number}"
        elif not table and current == section and assignment.match(line):
            return f"{path}, line {number}"
    return str(path)
