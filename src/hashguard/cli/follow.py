"""``hashguard lists follow``: keep a local list a mirror of a list on another hashguard service,
by its change feed (hashguard.lists.mirror over hashguard.exchanges.hashguard_feed)."""

import time
from typing import TYPE_CHECKING, Annotated

import typer

from hashguard.cli.common import DatabaseOption, echo_error, fail

if TYPE_CHECKING:
    from hashguard.exchanges.hashguard_feed import Feed
    from hashguard.lists.mirror import ChangeFeed
    from hashguard.store.lists import ListStore


def _create_like(store: "ListStore", name: str, feed: "ChangeFeed", origin: str) -> None:
    """The local list, made with the origin list's owner, category, jurisdictions, legal basis
    and policy."""
    about = feed.about()
    store.create(
        name, about.owner, about.category, about.jurisdictions, about.legal_basis, about.policy,
        actor=f"follow {origin}/{feed.name}",
    )  # fmt: skip


def _acknowledge(feed: "Feed", version: int) -> int:
    """Send the origin a receipt for ``version`` (victims' cases count them); ``version``. A
    refusal (an origin without receipts, a network that dropped) is said on stderr once; the
    next version's receipt covers this one."""
    from hashguard.lists.mirror import MirrorError

    try:
        feed.acknowledge(version)
    except MirrorError as error:
        echo_error(f"note: the receipt for version {version} was not taken: {error}")
    return version


def follow(
    name: Annotated[
        str, typer.Argument(help="The local list (created from the origin if absent).")
    ],
    origin: Annotated[
        str, typer.Option("--from", help="The origin service, e.g. https://hg.example")
    ],
    key: Annotated[
        str,
        typer.Option("--key", envvar="HASHGUARD_ORIGIN_KEY", help="An API key of the origin."),
    ],
    remote: Annotated[
        str | None, typer.Option("--remote", help="The list's name at the origin (default NAME).")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option("--every", min=0.1, help="Keep following: look again every N seconds."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Mirror a list of another hashguard service by its change feed, incrementally."""
    from hashguard.exchanges.hashguard_feed import Feed
    from hashguard.lists.mirror import MirrorError, catch_up
    from hashguard.store.database import DatabaseError, open_engine
    from hashguard.store.list_errors import ListError
    from hashguard.store.lists import ListStore

    feed = Feed(origin, remote or name, key)
    try:
        engine = open_engine(database_url)
    except DatabaseError as error:
        fail(str(error))
    store = ListStore(engine)
    try:
        if name not in {h.name for h in store.lists()}:
            _create_like(store, name, feed, origin)
        acknowledged: int | None = None  # the version the origin was last told of
        while True:
            try:
                applied, version = catch_up(store, name, feed)
            except MirrorError as error:
                if every is None:
                    raise
                # Following: an origin that restarts or a network that drops is tried again.
                echo_error(f"{error}; trying again in {every:g} s")
            else:
                typer.echo(f"{name}: {applied} change(s) applied, version {version}")
                if version != acknowledged:
                    acknowledged = _acknowledge(feed, version)
                if every is None:
                    return
            time.sleep(every)
    except (MirrorError, ListError) as error:
        fail(str(error))
    finally:
        engine.dispose()
