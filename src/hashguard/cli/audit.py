"""``hashguard audit ...``: check the audit log's hash chain."""

from typing import Annotated

import typer

from hashguard.cli.common import DatabaseOption, ExitCode, fail

audit_app = typer.Typer(name="audit", no_args_is_help=True)  # help: cli/__init__.py


def _known(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    number, _, digest = value.partition(":")
    if not number.isdigit() or len(digest) != 64:
        raise typer.BadParameter(f"{value!r}: expected SEQ:HASH, as `hashguard audit head` prints")
    return int(number), digest.lower()


@audit_app.command()
def verify(
    known_head: Annotated[
        str | None,
        typer.Option("--known-head", help="SEQ:HASH recorded earlier (audit head): no rewrite."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Recompute the hash chain. Exit status 0 when intact, 1 naming the first bad event."""
    from hashguard.store import audit
    from hashguard.store.database import DatabaseError, open_engine

    known = _known(known_head)
    try:
        engine = open_engine(database_url)
        count = audit.verify(engine, known)
    except (DatabaseError, audit.AuditError) as error:
        fail(f"audit log NOT VALID: {error}", ExitCode.INVALID)
    typer.echo(f"audit log valid: {count} events, chained and complete")


@audit_app.command()
def head(database_url: DatabaseOption = None) -> None:
    """Print the newest event as SEQ:HASH, to keep elsewhere for `verify --known-head`."""
    from hashguard.store import audit
    from hashguard.store.database import DatabaseError, open_engine

    try:
        seq, digest = audit.head(open_engine(database_url))
    except DatabaseError as error:
        fail(str(error))
    typer.echo(f"{seq}:{digest}")
