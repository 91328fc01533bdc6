"""The operator console's parts, gathered for one key: its lists (versions, active entries by
signal, latest changes), the exchanges that fill them (last fetch, lag, failures, quarantined
records), the index (size, the versions it follows, readiness), today's matches, the review
queue's length, and the match tester's choices.

Who sees a part is read from the API's own table of routes and roles (``auth.route_roles``):
a part is shown to the roles that may call the route it summarises, so the console never shows
a key what the API would refuse it. Exchanges, until the API has a route for them, are shown
to those who curate and audit the lists they fill (``EXCHANGE_ROLES``). A key limited to lists
sees only those lists, the exchanges filling them, their matches and detections, and not the
index's sizes (they span every list, as ``/m/index/status``).

The gathering functions block (the database): run them in the thread pool.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import FastAPI

from hashguard.api.auth import route_roles
from hashguard.api.service import Readiness, Service
from hashguard.exchanges import registry as plugins
from hashguard.exchanges.store import Exchange, ExchangeNotFound, FetchStatus, QuarantinedRecord
from hashguard.lists.model import EntryStatus, HashList
from hashguard.review.model import OPEN, State
from hashguard.signals import registry
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_figures import ChangeMark, entry_counts, latest_changes
from hashguard.store.match_log import LoggedMatch
from hashguard.web.match_tester import signal_words

# Each part, and the route whose roles may see it.
PART_ROUTES: Final = {
    "lists": ("GET", "/v1/lists"),
    "index": ("GET", "/m/index/status"),
    "matches": ("GET", "/v1/matches"),
    "queue": ("GET", "/v1/detections"),
    "tester": ("POST", "/v1/match/media"),
    "exchanges": ("GET", "/v1/exchanges"),
}
EXCHANGE_ROLES: Final = frozenset({Role.CURATOR, Role.AUDITOR, Role.ADMIN})  # without the route
QUARANTINE_SHOWN: Final = 5  # an exchange's latest quarantined records shown
RECENT: Final = timedelta(hours=24)  # a list's changes counted by kind over this span
CHANGES_READ: Final = 1000  # at most this many of a list's latest changes are read for it
LATEST_MATCHES: Final = 10


def _roles_of(app: FastAPI) -> dict[str, frozenset[Role]]:
    """Per part, the roles that may see it: read once from the app's routes, then kept."""
    found: dict[str, frozenset[Role]] | None = getattr(app.state, "console_roles", None)
    if found is None:
        table = {(method, path): roles for method, path, roles in route_roles(app)}
        found = {part: table.get(route) or frozenset() for part, route in PART_ROUTES.items()}
        if PART_ROUTES["exchanges"] not in table:
            found["exchanges"] = EXCHANGE_ROLES
        app.state.console_roles = found
    return found


def parts(app: FastAPI, key: ApiKey) -> frozenset[str]:
    """The parts of the console ``key`` may see (the tester: not a key bound to a service,
    which matches through the API, logged and reviewed)."""
    return frozenset(part for part, roles in _roles_of(app).items()
                     if key.role in roles and not (part == "tester" and key.service))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ListView:
    hash_list: HashList
    active: tuple[tuple[str, int], ...]  # (signal, active entries), signals that have any
    inactive: tuple[tuple[str, int], ...]  # (status, entries) of the entries that cannot match
    last: ChangeMark | None
    recent: tuple[tuple[str, int], ...]  # (kind, changes) over the last RECENT
    recent_more: bool  # more changes in that span than were read
    indexed: int | None  # the version the index follows; None: not in the index (yet)

    @property
    def total(self) -> int:
        return sum(n for _, n in self.active)

    @property
    def behind(self) -> int | None:
        return None if self.indexed is None else max(0, self.hash_list.version - self.indexed)


@dataclass(frozen=True, slots=True)
class IndexView:
    readiness: Readiness
    sizes: tuple[tuple[str, int], ...] | None  # per signal; None: not for this key
    followed: int  # lists in the index
    versions: int  # the sum of the versions it follows
    behind: tuple[tuple[str, int], ...]  # (list, changes not yet in the index)


@dataclass(frozen=True, slots=True)
class MatchesView:
    since: datetime
    total: int
    by_list: tuple[tuple[str, int], ...]
    by_signal: tuple[tuple[str, int], ...]
    latest: tuple[LoggedMatch, ...]


@dataclass(frozen=True, slots=True)
class QueueView:
    open: int
    waiting: int  # pending: no reviewer has opened them
    oldest: datetime | None  # the oldest open detection's time
    desk: bool  # whether the key may open the desk


@dataclass(frozen=True, slots=True)
class ExchangeView:
    exchange: Exchange
    title: str  # the plug-in's
    status: FetchStatus
    complete_to: datetime | None  # the time its data is complete to (its checkpoint's)
    lag: float | None  # seconds since then; None: not known
    last_fetch: datetime | None
    next_fetch: datetime
    quarantined: tuple[QuarantinedRecord, ...]  # the latest

    @property
    def state(self) -> str:
        """One word for where it stands: off, fetching, never, failing, behind or current."""
        status = self.status
        if not self.exchange.enabled:
            return "off"
        if status.running_fetch_start_ts is not None:
            return "fetching"
        if status.last_fetch_succeeded is None:
            return "never"
        if not status.last_fetch_succeeded:
            return "failing"
        return "current" if status.up_to_date else "behind"


def exchange_views(service: Service, key: ApiKey, now: datetime) -> list[ExchangeView]:
    """The exchanges filling lists ``key`` may use, with where their fetching stands."""
    views = []
    for exchange in service.exchanges.all():
        if not key.may_use(exchange.list):
            continue
        try:
            status = service.exchanges.status(exchange.name)
            held = service.exchanges.quarantined(exchange.name, QUARANTINE_SHOWN)
        except ExchangeNotFound:  # removed meanwhile
            continue
        try:
            title = plugins.get(exchange.api).title
        except plugins.UnknownExchangeApi:  # no longer installed: its name says enough
            title = exchange.api
        complete = _moment(status.checkpoint_ts)
        views.append(ExchangeView(
            exchange, title, status, complete,
            None if complete is None else max(0.0, (now - complete).total_seconds()),
            _moment(status.last_fetch_complete_ts), status.next_fetch_at, tuple(held),
        ))  # fmt: skip
    return views


def span_words(seconds: float | None) -> str:
    """A span as people read it: "45 s", "12 min", "3.2 h", "2.1 days"; "-" when unknown."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _moment(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def visible_lists(service: Service, key: ApiKey) -> list[HashList]:
    return [h for h in service.lists.lists() if key.may_use(h.name)]


def list_views(service: Service, held: list[HashList], now: datetime) -> list[ListView]:
    """Each of ``held`` with its entries by signal and status and its latest changes."""
    counted = entry_counts(service.engine, [h.id for h in held])
    matcher = service.matcher
    versions = matcher.versions() if matcher is not None else {}
    order = {s.name: n for n, s in enumerate(registry.listable())}
    views = []
    for hash_list in held:
        by_signal = counted.get(hash_list.id, {})
        active = sorted(((signal, statuses.get(EntryStatus.ACTIVE.value, 0))
                         for signal, statuses in by_signal.items()
                         if statuses.get(EntryStatus.ACTIVE.value)),
                        key=lambda pair: order.get(pair[0], len(order)))  # fmt: skip
        inactive: dict[str, int] = {}
        for statuses in by_signal.values():
            for status, n in statuses.items():
                if status != EntryStatus.ACTIVE.value:
                    inactive[status] = inactive.get(status, 0) + n
        changes = latest_changes(service.engine, hash_list.id, CHANGES_READ)
        recent = [c for c in changes if now - c.at <= RECENT]
        kinds: dict[str, int] = {}
        for change in recent:
            kinds[change.kind] = kinds.get(change.kind, 0) + 1
        views.append(ListView(
            hash_list, tuple(active), tuple(sorted(inactive.items())),
            changes[0] if changes else None, tuple(sorted(kinds.items(), key=lambda p: -p[1])),
            len(recent) == CHANGES_READ and len(changes) == CHANGES_READ,
            versions.get(hash_list.name),
        ))  # fmt: skip
    return views


def index_view(service: Service, key: ApiKey, held: list[HashList]) -> IndexView:
    """The index as ``key`` may see it: its readiness, and (unless the key is limited to lists)
    its size per signal and the versions it follows."""
    readiness = service.readiness()
    matcher = service.matcher
    if matcher is None:
        return IndexView(readiness, None, 0, 0, ())
    versions = matcher.versions()
    stored = {h.name: h.version for h in held}
    behind = tuple((name, stored[name] - version) for name, version in sorted(versions.items())
                   if name in stored and stored[name] > version)  # fmt: skip
    if key.lists:
        return IndexView(readiness, None, 0, 0, behind)
    sizes = tuple((signal, n) for signal, n in matcher.sizes().items() if n)
    return IndexView(readiness, sizes, len(versions), sum(versions.values()), behind)


def matches_view(service: Service, key: ApiKey, now: datetime) -> MatchesView:
    """The matches stored since midnight (UTC) in the key's lists, and the latest ones."""
    since = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    scope = list(key.lists) or None
    counted = service.match_log.counts_since(since, scope)
    by_list: dict[str, int] = {}
    by_signal: dict[str, int] = {}
    for (name, signal), n in counted.items():
        by_list[name] = by_list.get(name, 0) + n
        by_signal[signal] = by_signal.get(signal, 0) + n
    latest = [m for m in service.match_log.latest(LATEST_MATCHES, scope)
              if m.at is not None and m.at >= since]  # fmt: skip
    return MatchesView(
        since, sum(by_list.values()),
        tuple(sorted(by_list.items(), key=lambda p: (-p[1], p[0]))),
        tuple(sorted(by_signal.items(), key=lambda p: (-p[1], p[0]))), tuple(latest),
    )  # fmt: skip


def queue_view(service: Service, key: ApiKey, desk: bool) -> QueueView:
    """How many detections wait for review in the key's lists, and since when."""
    scope = list(key.lists) or None
    counts = service.review.counts(scope)
    waiting = service.review.find(OPEN, scope, limit=1)
    return QueueView(sum(counts[s] for s in OPEN), counts[State.PENDING],
                     waiting[0].detected_at if waiting else None, desk)  # fmt: skip


def signal_choices() -> list[tuple[str, str]]:
    """The signals a hash may be pasted for, as (name, words)."""
    return [(s.name, signal_words(s.name)) for s in registry.listable()]
