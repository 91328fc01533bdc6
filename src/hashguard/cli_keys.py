"""``hashguard keys ...``: signing keys for list releases."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from hashguard.lists import keys

keys_app = typer.Typer(name="keys", help="Signing keys.", no_args_is_help=True)


@keys_app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="The private key file to write.")],
) -> None:
    """Generate an Ed25519 key pair: OUT (private, owner-only) and OUT.pub (public, hex)."""
    try:
        public = keys.generate(out)
    except keys.KeyFileError as error:
        sys.stderr.write(f"hashguard: {error}\n")
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out} (keep it secret) and {out}.pub: {public}")
