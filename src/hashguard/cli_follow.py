"""``hashguard lists follow``: keep a local list a mirror of a list on another hashguard service,
by its change feed (``GET /v1/lists/{name}/changes?since=N``).

The mirror's version is where it stands in the origin's log: each change is replayed as it was
made (adds, relabels, contests, delistings, deletions, withdrawals, with their labels, sources
and reasons), so the mirror's version after a page equals the origin's last change in it. A
mirror that has changes of its own, or that misses some, is refused with a message that says so.
"""

import sys
import time
from typing import Annotated, Any, NoReturn

import httpx
import typer

from hashguard.cli_lists import DatabaseOption
from hashguard.lists.model import Category, Change, ListPolicy
from hashguard.store.database import DatabaseError, open_engine
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore

_PAGE = 1000


class FeedError(Exception):
    """The origin cannot be followed; the message says why."""


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"hashguard: {message}\n")
    raise typer.Exit(1)


class Feed:
    """A list's change feed on a hashguard service."""

    def __init__(self, base: str, name: str, key: str, timeout: float = 60.0) -> None:
        self.name = name
        self.client = httpx.Client(
            base_url=base.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )

    def _get(self, path: str, **params: Any) -> Any:
        try:
            answer = self.client.get(path, params=params)
        except httpx.HTTPError as error:
            raise FeedError(f"{self.client.base_url}: {error}") from None
        if answer.status_code != 200:
            try:
                message = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = answer.text[:200]
            raise FeedError(f"{self.client.base_url}{path}: {answer.status_code} {message}")
        try:
            return answer.json()
        except ValueError:
            raise FeedError(f"{self.client.base_url}{path}: the answer is not JSON") from None

    def about(self) -> dict[str, Any]:
        document: dict[str, Any] = self._get(f"/v1/lists/{self.name}")
        return document

    def page(self, since: int) -> tuple[int, list[Change]]:
        """The origin's version and its changes after ``since`` (at most a page)."""
        document = self._get(f"/v1/lists/{self.name}/changes", since=since, limit=_PAGE)
        try:
            changes = [Change.from_json(item) for item in document["changes"]]
            return int(document["version"]), changes
        except (KeyError, TypeError, ValueError) as error:
            raise FeedError(f"{self.name}: a malformed change in the feed ({error})") from None


def _create_like(store: ListStore, name: str, feed: Feed, origin: str) -> None:
    """The local list, made with the origin list's owner, category, jurisdictions, legal basis
    and policy."""
    about = feed.about()
    try:
        store.create(
            name, about["owner"], Category(about["category"]), about["jurisdictions"],
            about["legal_basis"], ListPolicy.from_json(about["policy"]),
            actor=f"follow {origin}/{feed.name}",
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise FeedError(f"{feed.name}: the origin described the list oddly ({error})") from None


def catch_up(store: ListStore, local: str, feed: Feed) -> tuple[int, int]:
    """Replay the origin's changes after the mirror's version; (changes applied, version)."""
    applied = 0
    while True:
        since = store.get(local).version
        origin_version, changes = feed.page(since)
        if origin_version < since:
            raise FeedError(
                f"{local} is at version {since}, beyond {feed.name}'s {origin_version}: it is not "
                "a mirror of that list (or has changes of its own)"
            )
        if not changes:
            return applied, since
        if changes[0].version != since + 1:
            raise FeedError(f"the feed skipped from version {since} to {changes[0].version}")
        summary = store.apply(local, changes, f"follow {feed.client.base_url}/{feed.name}")
        if summary.version != changes[-1].version:
            raise FeedError(
                f"{local} reached version {summary.version}, the origin {changes[-1].version}: it "
                "has changes of its own, so it cannot mirror the origin"
            )
        applied += len(changes)


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
    feed = Feed(origin, remote or name, key)
    try:
        engine = open_engine(database_url)
    except DatabaseError as error:
        _fail(str(error))
    store = ListStore(engine)
    try:
        if name not in {h.name for h in store.lists()}:
            _create_like(store, name, feed, origin)
        while True:
            try:
                applied, version = catch_up(store, name, feed)
            except FeedError as error:
                if every is None:
                    raise
                # Following: an origin that restarts or a network that drops is tried again.
                sys.stderr.write(f"hashguard: {error}; trying again in {every:g} s\n")
            else:
                typer.echo(f"{name}: {applied} change(s) applied, version {version}")
                if every is None:
                    return
            time.sleep(every)
    except (FeedError, ListError) as error:
        _fail(str(error))
    finally:
        engine.dispose()
