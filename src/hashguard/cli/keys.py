"""``hashguard keys ...``: signing keys for list releases, and API keys for the service."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hashguard.cli.common import DatabaseOption, fail, who
from hashguard.store.api_keys import Role  # --role's choices: the store loads with this group

if TYPE_CHECKING:
    from hashguard.store.api_keys import ApiKey, ApiKeyStore

keys_app = typer.Typer(name="keys", no_args_is_help=True)  # help: cli/__init__.py


@keys_app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="The private key file to write.")],
) -> None:
    """Generate an Ed25519 key pair: OUT (private, owner-only) and OUT.pub (public, hex)."""
    from hashguard.transparency import keys

    try:
        public = keys.generate(out)
    except keys.KeyFileError as error:
        fail(str(error))
    typer.echo(f"wrote {out} (keep it secret) and {out}.pub: {public}")


@keys_app.command()
def create(
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")],
    lists: Annotated[
        list[str] | None,
        typer.Option("--list", help="Limit the key to this list (repeat); default all lists."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "",
    actor: Annotated[str, typer.Option("--actor", help="Who creates it (audit log).")] = "",
    service: Annotated[
        str | None,
        typer.Option("--service", help="A matcher key's service: its matches go to review."),
    ] = None,
    hoster: Annotated[
        str | None,
        typer.Option(
            "--hoster",
            help="A hoster key's hoster, as the registry of hosters names it: the notices it sees.",
        ),
    ] = None,
    hosters: Annotated[
        Path | None,
        typer.Option(
            "--hosters",
            envvar="HASHGUARD_HOTLINE_HOSTERS",
            help="The hotline's registry of hosters (hotline_hosters): a hoster key's hoster "
            "must be one of it.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an API key for the service. The key is printed once and stored only hashed."""
    from hashguard.store.api_keys import ApiKeyError

    if hoster and hosters is not None:
        _check_hoster(hosters, hoster)
    store = _store(database_url)
    try:
        key, token = store.create(role, lists or [], name, who(actor), service, hoster)
    except ApiKeyError as error:
        fail(str(error))
    lists_shown = ", ".join(key.lists) or "all lists"
    scope = f"hoster {key.hoster}, {lists_shown}" if key.hoster else lists_shown
    sys.stderr.write(f"created key {key.id} ({key.role}, {scope}); it is shown once:\n")
    typer.echo(token)


@keys_app.command("list")
def list_keys(database_url: DatabaseOption = None) -> None:
    """The API keys, one per line after a header: id, role, lists (* for all; a hoster key:
    hoster:NAME;LISTS), name, when created, and status (active, or revoked and when); never the
    secrets."""
    typer.echo("id\trole\tlists\tname\tcreated\tstatus")
    for key in _store(database_url).all():
        status = (
            f"revoked {key.revoked_at.isoformat(timespec='seconds')}"
            if key.revoked_at
            else "active"
        )
        typer.echo(
            f"{key.id}\t{key.role}\t{scope(key)}\t{key.name or '-'}\t"
            f"{key.created_at.isoformat(timespec='seconds')}\t{status}"
        )


def scope(key: "ApiKey") -> str:
    """The lists a key may use (* for all); a hoster key's hoster before them."""
    lists = ",".join(key.lists) or "*"
    return f"hoster:{key.hoster};{lists}" if key.hoster else lists


def _check_hoster(path: Path, name: str) -> None:
    """Fail (exit status 1) when the registry in ``path`` does not name the hoster ``name``."""
    from hashguard.errors import Invalid
    from hashguard.hotline.hosters import HosterError, load
    from hashguard.takedown.service import check_hoster

    try:
        check_hoster(load(path), name)
    except (HosterError, Invalid) as error:
        fail(str(error))


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list).")],
    actor: Annotated[str, typer.Option("--actor", help="Who revokes it (audit log).")] = "",
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0.0,
            max=3600.0,
            help="PostgreSQL: seconds to wait for running servers to confirm they took the "
            "revocation; one that does not holds it within its key cache (2 s by default).",
        ),
    ] = 5.0,
    database_url: DatabaseOption = None,
) -> None:
    """Revoke an API key; it stops working at once, in running servers too: on PostgreSQL this
    returns once each has confirmed it."""
    from hashguard.store.api_keys import ApiKeyError

    try:
        _key, unconfirmed = _store(database_url).revoke(key_id, who(actor), wait)
    except ApiKeyError as error:
        fail(str(error))
    bound = "key cache time (key_cache_seconds, 2 s by default)"
    if unconfirmed is None:
        typer.echo("warning: could not find out whether running servers took the revocation; "
                   f"each stops accepting the key within its {bound}", err=True)  # fmt: skip
    elif unconfirmed:
        typer.echo(
            f"warning: {len(unconfirmed)} running server(s) did not confirm within {wait:g} s "
            f"({', '.join(map(str, unconfirmed))}); each stops accepting the key within its "
            + bound,
            err=True,
        )
    typer.echo(f"revoked key {key_id}")


def _store(url: str | None) -> "ApiKeyStore":
    from hashguard.store.api_keys import ApiKeyStore
    from hashguard.store.database import DatabaseError, open_engine

    try:
        return ApiKeyStore(open_engine(url))
    except DatabaseError as error:
        fail(str(error))
