"""The service's settings as command options: ``with_settings`` gives a command ``--config
FILE`` and one flag per setting (made from its declaration in api/settings.py), and hands it
the settings read from the file, the environment and those flags (api/configuration.py). A
configuration that cannot be used ends the command with status 2, one line saying why.

Only the declarations load with the command line (they are light); the reading loads when the
command runs.
"""

import functools
import inspect
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any

import typer

from hashguard.api.settings import FLAG, SETTINGS, Setting, default_of
from hashguard.cli.common import ExitCode, fail

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="HASHGUARD_CONFIG",
        help="A TOML settings file (docs/configuration.md); the environment (HASHGUARD_*) and "
        "flags override it.",
    ),
]


def shown(spec: Setting, value: Any) -> str:
    """A setting's value as the help and ``config check`` show it."""
    if value is None or value == "" or value == ():
        return spec.unset
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _option(spec: Setting) -> Any:
    default = shown(spec, default_of(spec.name))
    help_text = f"{spec.help} (env {spec.env}; default {default})"
    if spec.kind is FLAG:
        name = spec.option.removeprefix("--")
        return Annotated[bool | None, typer.Option(f"--{name}/--no-{name}", help=help_text,
                                                   show_default=False)]  # fmt: skip
    typed = list[str] | None if spec.repeat else str | None
    return Annotated[typed, typer.Option(spec.option, metavar=spec.kind.metavar, help=help_text,
                                         show_default=False)]  # fmt: skip


def with_settings(
    command: Callable[..., None], flagged: Collection[str] | None = None
) -> Callable[..., None]:
    """``command`` (whose parameter ``configuration`` receives the settings read) with its own
    options, then ``--config`` and one flag per setting (of those named ``flagged``: the rest
    still come from the file and the environment)."""
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "configuration"]
    names = [name for name in SETTINGS if flagged is None or name in flagged]
    keyword = inspect.Parameter.KEYWORD_ONLY
    added = [inspect.Parameter("config", keyword, default=None, annotation=ConfigOption)]
    added += [inspect.Parameter(name, keyword, default=None, annotation=_option(SETTINGS[name][1]))
              for name in names]  # fmt: skip
    parameters = [p.replace(kind=keyword) for p in own] + added

    @functools.wraps(command)
    def with_configuration(**given: Any) -> None:
        from hashguard.api.configuration import ConfigError, load

        file = given.pop("config")
        flags = {name: given.pop(name) for name in names}
        try:
            configuration = load(file, flags)
        except ConfigError as error:
            fail(str(error), ExitCode.ERROR)
        command(configuration=configuration, **given)

    del with_configuration.__wrapped__  # typer reads the signature below, not the command's
    with_configuration.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_configuration.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_configuration
