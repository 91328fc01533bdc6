"""``hashguard services ...``, ``hashguard stats annual``, ``hashguard purge``: the services whose
uploads are checked, the annual transparency report, and the retention purge."""

import json
from pathlib import Path
from typing import Annotated

import typer

from hashguard.cli.common import DatabaseOption, fail
from hashguard.legal.profiles import DEFAULT, PROFILES

# Their help: cli/__init__.py
services_app = typer.Typer(name="services", no_args_is_help=True)
stats_app = typer.Typer(name="stats", no_args_is_help=True)

SecretOption = Annotated[
    Path,
    typer.Option("--secret-file", envvar="HASHGUARD_SECRET_FILE",
                 help="The server's secret (made owner-only on first use)."),
]  # fmt: skip


@services_app.command("create")
def create_service(
    name: str,
    profile: Annotated[
        str, typer.Option("--legal-profile", help=f"One of: {', '.join(sorted(PROFILES))}.")
    ] = DEFAULT,
    e2ee: Annotated[
        bool, typer.Option("--e2ee", help="End-to-end encrypted: never scanned.")
    ] = False,
    webhook: Annotated[str, typer.Option("--webhook", help="Where actions are sent.")] = "",
    content_url: Annotated[
        str, typer.Option("--content-url", help="Where reviewers see an item: a URL with {ref}.")
    ] = "",
    secret_file: SecretOption = Path("hashguard-secret.key"),
    database_url: DatabaseOption = None,
) -> None:
    """Register a service; prints its webhook signing secret."""
    from hashguard.review.services import ServiceError, ServiceStore
    from hashguard.review.webhook import SecretFileError, load_secret, service_secret
    from hashguard.store.database import DatabaseError, open_engine

    try:
        store = ServiceStore(open_engine(database_url))
        service = store.create(name, profile, e2ee, webhook, content_url, actor="cli")
        secret = service_secret(load_secret(secret_file), service.name)
    except (DatabaseError, ServiceError, SecretFileError) as error:
        fail(str(error))
    typer.echo(f"service {service.name}: legal profile {service.legal_profile}")
    typer.echo(f"webhook signing secret: {secret}")


@services_app.command("list")
def list_services(database_url: DatabaseOption = None) -> None:
    """The services, one per line: name, legal profile, e2ee, webhook."""
    from hashguard.review.services import ServiceStore
    from hashguard.store.database import DatabaseError, open_engine

    try:
        services = ServiceStore(open_engine(database_url)).all()
    except DatabaseError as error:
        fail(str(error))
    for s in services:
        typer.echo(f"{s.name}\t{s.legal_profile}\t{'e2ee' if s.e2ee else '-'}\t{s.webhook_url}")


@services_app.command("secret")
def show_secret(
    name: str, secret_file: SecretOption = Path("hashguard-secret.key"),
    database_url: DatabaseOption = None,
) -> None:  # fmt: skip
    """Print a service's webhook signing secret (for its operator)."""
    from hashguard.review.services import ServiceError, ServiceStore
    from hashguard.review.webhook import SecretFileError, load_secret, service_secret
    from hashguard.store.database import DatabaseError, open_engine

    try:
        service = ServiceStore(open_engine(database_url)).get(name)
        typer.echo(service_secret(load_secret(secret_file), service.name))
    except (DatabaseError, ServiceError, SecretFileError) as error:
        fail(str(error))


@stats_app.command("annual")
def annual_report(
    year: Annotated[int, typer.Option("--year", help="The calendar year.")],
    provider: Annotated[str, typer.Option("--provider", help="Who publishes it.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the JSON and HTML.")] = Path(),
    shared_with: Annotated[
        list[str] | None, typer.Option("--shared-with", help="An organisation (repeat).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write annual-YEAR.json and annual-YEAR.html (2021/1232 Art 3(1)(g)(vii), CSAR Art 83)."""
    from hashguard.stats import annual
    from hashguard.store.database import DatabaseError, open_engine

    try:
        document = annual.report(open_engine(database_url), year, provider, shared_with or [])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"annual-{year}.json").write_text(json.dumps(document, indent=2) + "\n")
        (out / f"annual-{year}.html").write_text(annual.render_html(document))
    except (DatabaseError, OSError) as error:
        fail(str(error))
    typer.echo(f"wrote {out / f'annual-{year}.json'} and {out / f'annual-{year}.html'}")


def purge(database_url: DatabaseOption = None) -> None:
    """Delete what is past its retention (not under a legal hold or an open complaint); the
    audit log records what was deleted."""
    from hashguard.retention.purge import purge as run_purge
    from hashguard.store.database import DatabaseError, open_engine

    try:
        done = run_purge(open_engine(database_url), actor="hashguard purge")
    except DatabaseError as error:
        fail(str(error))
    kept = f"{done.held} kept by holds or complaints"
    typer.echo(f"purged {len(done.detections)} detections, {done.matches} matches, "
               f"{done.webhook_calls} webhook calls; {kept}")  # fmt: skip
