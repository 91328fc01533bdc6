"""``hashguard config check``: every setting the service would start with, where each came from,
and what is wrong with them (api/diagnosis.py)."""

from typing import TYPE_CHECKING

import typer

from hashguard.cli.common import ExitCode
from hashguard.cli.settings import shown, with_settings

if TYPE_CHECKING:
    from hashguard.api.configuration import Configuration

config_app = typer.Typer(name="config", no_args_is_help=True)  # help: cli/__init__.py


@config_app.command()
@with_settings
def check(configuration: "Configuration") -> None:
    """Show every setting `hashguard serve` would use with the same --config, environment and
    flags: its value and where it came from (default, file, env, flag); then the problems found,
    each with what to do (the database is connected to; key files are read; with the hotline
    on, its files are loaded, each found fine listed with what it holds, and its resolver
    asked). Secrets are never shown. Exit status: 0 when nothing is wrong (warnings and notes
    alone), 1 when something is, 2 when the settings cannot be read at all (a bad file, key or
    value)."""
    from hashguard.api.configuration import Origin, Source, secret_set
    from hashguard.api.diagnosis import Severity, diagnose, shown_url
    from hashguard.api.settings import NCMEC_PASSWORD, SETTINGS

    rows = []
    for name, (_, spec) in SETTINGS.items():
        value = shown(spec, configuration.values[name])
        if spec.kind.metavar == "URL" and configuration.values[name]:
            value = shown_url(value)
        rows.append((name, value, str(configuration.origins[name])))
    password = secret_set()
    rows.append(
        (
            "ncmec_password",
            "(set, not shown)" if password else "-",
            str(Origin(Source.ENV, NCMEC_PASSWORD) if password else Origin(Source.DEFAULT)),
        )
    )
    file = configuration.file or "none (--config FILE or HASHGUARD_CONFIG)"
    typer.echo(f"settings file: {file}\n")
    width = max(len(row[0]) for row in rows) + 2
    value_width = min(max(len(row[1]) for row in rows), 40)  # a longer value pushes its row
    typer.echo(f"{'setting':<{width}}{'value':<{value_width}}  from")
    for name, value, origin in rows:
        typer.echo(f"{name:<{width}}{value:<{value_width}}  {origin}")
    found = diagnose(configuration)
    checked = [p for p in found if p.severity is Severity.OK]
    problems = [p for p in found if p.severity is not Severity.OK]
    if checked:
        typer.echo("\nchecked:")
        for fine in checked:
            typer.echo(f"{'ok:':<9}{fine.setting}: {fine.message}")
    typer.echo()
    if not problems:
        typer.echo("no problems found")
        return
    typer.echo("problems:")
    for problem in problems:
        typer.echo(f"{problem.severity + ':':<9}{problem.setting}: {problem.message}")
    errors = sum(p.severity is Severity.ERROR for p in problems)
    if errors:
        typer.echo(
            f"\n{errors} error{'s' if errors > 1 else ''}: fix {'them' if errors > 1 else 'it'} "
            "before starting the service"
        )
        raise typer.Exit(ExitCode.FAILED)
