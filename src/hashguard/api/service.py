"""The running service: the stores, the Matcher over every list, and the thread that keeps the
Matcher current (each list's change log, and lists created, changed or removed elsewhere).

The Matcher loads in the background when the service starts: until it has, ``/status/ready``
says so and the matching routes answer 503; the health route answers at once.

A change made through the service holds for the very next request: the service's ListStore
(``ServedLists``, which every route, review decision and upheld complaint writes through) and
its import jobs bring the Matcher up to the store before they return, so before the answer.
Changes made elsewhere (the CLI, another service) arrive within a refresh interval.
"""

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine

from hashguard.api.batching import MatchBatcher, MatchRecorder
from hashguard.api.jobs import BulkJobs
from hashguard.api.key_cache import KeyCache
from hashguard.api.public_limits import PublicLimits
from hashguard.api.settings import ServiceSettings
from hashguard.errors import NotFound, Unavailable
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.feedback import ExchangeFeedback, FeedbackSender
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Scheduler, Sync
from hashguard.hotline.service import Hotline, HotlineSettings
from hashguard.lists import snapshot
from hashguard.lists.model import Change, Entry, EntryStatus, HashList
from hashguard.lists.records import Record
from hashguard.lists.snapshot import SnapshotError, SnapshotSource
from hashguard.matching import Matcher
from hashguard.matching.matcher import ListSource
from hashguard.media.budget import DecodeBudget
from hashguard.net.fetch import UrlFetcher
from hashguard.redress.complaints import Complaints
from hashguard.reports.submit import Reports
from hashguard.retention.purge import purge
from hashguard.review import webhook
from hashguard.review.detections import Review
from hashguard.review.webhook import Backlog, WebhookSender, load_secret
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey, ApiKeyStore, KeyWatch
from hashguard.store.bank_contents import BankContents
from hashguard.store.list_import import ImportSummary
from hashguard.store.lists import ListStore
from hashguard.store.match_log import MatchLog
from hashguard.takedown.service import Takedown, TakedownSettings
from hashguard.transparency import keys
from hashguard.transparency.keys import KeyFileError
from hashguard.victims.cases import Cases, CaseSettings
from hashguard.victims.feedback import ReviewFeedback
from hashguard.victims.referrals import ReferralSender

log = logging.getLogger("hashguard.api")
Row = TypeVar("Row")

_LIST_CHECK_SECONDS: Final = 1.0  # how often lists created or changed elsewhere are looked for
_STALE_AFTER: Final = 5.0  # seconds without a successful refresh: not ready (at least)
_STUCK_FACTOR: Final = 4  # that many times as long without progress: broken (a restart may help)
_LOAD_RETRY_MAX: Final = 30.0  # seconds between tries of a first load that fails, at most
_WEBHOOK_SECONDS: Final = 1.0
# Entries the Matcher takes in before the next gc.freeze (at the end of a batch). The cyclic
# collector's full passes walk every object not frozen while holding the interpreter lock: with
# the 100,000 entries of an import not frozen, each pass held every request up for 66-190 ms
# (measured at 1M, docs/benchmarks.md); with this many, for a few ms.
_FREEZE_AFTER: Final = 10_000
# How long the Matcher's catch-up pauses after each step (matcher.PROGRESS_STEP changes), per
# second the step spent waiting rather than running: for the interpreter lock, which requests
# held, or for a core. Applying changes is Python that holds that lock, which every request
# needs too: when they hold it half of a step, the pause is twice the step, and they have it
# five sixths of the time; a catch-up in a quiet service on a local database hardly pauses
# (time waiting for a remote database's rows counts as waiting too). Measured at 1M during
# imports of 100,000 (docs/benchmarks.md): 0, 2 and 4 gave p99 82-746, 45-94 and 30-50 ms, the
# imports taking 10-18, 12-15 and 13-17 s.
_CATCH_UP_BACKOFF: Final = 4.0
# The longest pause after one step (seconds; measured pauses are tens of ms): a read that hangs
# for a database's failover, or a process the host stops for a while, does not turn into a
# pause four times as long while writers wait for the catch-up.
_PAUSE_MAX: Final = 0.25
# Why not ready (public: names no list) while lists the database rewrote load again.
RELOADING: Final = "loading lists again: the database no longer holds them as applied here"
# Why not serving, and matches refused, once such a load failed (until one succeeds).
UNLOADED: Final = ("lists the database no longer holds as applied here could not be loaded "
                   "again (see the log); trying again")  # fmt: skip
PURGE_SECONDS: Final = 3600.0  # the retention purge runs hourly while the service runs


class Deliveries:
    """Webhook calls and reports: the attempts this process made, by kind (``webhook``,
    ``report``) and outcome (``success``, ``failure``), and what waits to be delivered (read
    from the database by the webhook thread at each pass), for ``/metrics``."""

    KINDS: Final = ("webhook", "report")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts = {(kind, outcome): 0 for kind in self.KINDS
                         for outcome in ("success", "failure")}  # fmt: skip
        self.backlog = {kind: Backlog(0, 0.0, 0) for kind in self.KINDS}

    def attempted(self, kind: str) -> Callable[[bool], None]:
        """What a sender of ``kind`` tells of each attempt: whether it was delivered."""

        def count(delivered: bool) -> None:
            with self._lock:
                self.attempts[kind, "success" if delivered else "failure"] += 1

        return count


@dataclass(frozen=True, slots=True)
class ListLag:
    name: str
    applied: int  # the list's version the index reflects
    version: int  # the database's, as the follower last read it

    @property
    def changes(self) -> int:
        return max(0, self.version - self.applied)


@dataclass(frozen=True, slots=True)
class Lag:
    """How far the index is behind the database: per list, and for how long (on this
    replica's own clock: since it first saw a change it has not applied yet; 0 when caught
    up)."""

    lists: tuple[ListLag, ...]
    seconds: float

    @property
    def changes(self) -> int:
        return sum(held.changes for held in self.lists)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str  # why not, or "ready"; names no list and quotes no database error (public)
    age: float | None  # seconds since the index last caught up with the change logs
    lag: Lag | None = None  # None while loading


class Service:
    def __init__(self, engine: Engine, settings: ServiceSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.lists: ListStore = ServedLists(engine, self.catch_up)
        self.contents = BankContents(engine, self.lists)  # HMA's bank content items
        self.keys = ApiKeyStore(engine)
        self.match_log = MatchLog(engine)
        self.secret = load_secret(settings.secret_file)
        # Exchanges fill their lists through the served store (the Matcher follows at once);
        # detections on their lists are told back to those that take feedback.
        self.exchanges = Exchanges(
            engine, self.lists, Sealer(self.secret), networks=settings.exchange_networks
        )
        self.exchange_sync = Sync(self.exchanges, settings.exchange_networks)
        self.exchange_feedback = FeedbackSender(self.exchange_sync)
        self.exchange_scheduler = Scheduler(
            self.exchange_sync, deliver=self.exchange_feedback.deliver_due
        )
        self.review = Review(engine, self.lists, observers=[ReviewFeedback(), ExchangeFeedback()])
        self.victims = Cases(engine, self.lists, case_settings(settings))
        self.receipts = self.victims.receipts  # followers' acknowledgements of list versions
        self.complaints = Complaints(engine, self.review)
        self.deliveries = Deliveries()
        self.reports = Reports(engine, self.review, attempted=self.deliveries.attempted("report"))
        # Review desk sessions: id -> (the key's token, expiry, CSRF token); memory only.
        self.sessions: dict[str, tuple[str, float, str]] = {}
        self.limits = PublicLimits.of(settings)
        self.jobs = BulkJobs(imported=self.catch_up)
        # What a worker process opens to reach the same database.
        self.url = engine.url.render_as_string(hide_password=False)
        self.fetcher = UrlFetcher(
            settings.fetch_hosts,
            settings.fetch_networks,
            settings.fetch_timeout,
            settings.max_upload_bytes,
        )
        self.decodes = decode_budget(settings)
        self.matcher: Matcher | None = None
        self.hotline = None if not settings.hotline_country else Hotline(
            engine, self.lists, hotline_settings(settings), self._current_matcher,
            decodes=self.decodes,
        )  # fmt: skip
        # Notice and takedown runs with the hotline: its hosters, crawler and tracer.
        self.takedown = None if self.hotline is None else Takedown(
            engine, self.hotline, takedown_settings(settings)
        )  # fmt: skip
        # What signs the monitor's evidence bundles: the notices' key.
        self.takedown_key = None if self.takedown is None else self.takedown.key
        self.started = time.monotonic()
        self._refreshed: float | None = None  # monotonic time of the last successful refresh
        self._unfrozen = 0  # entries the Matcher took in since the last _freeze
        # Monotonic time the follower last read a row of the lists (a long refresh or a large
        # list's load moves on: that is progress, not a stuck follower).
        self._progressed: float | None = None
        self._error: str | None = None  # why the last load or refresh failed (the log has it)
        # What the follower last read of the database (each list's name and version, by id),
        # since when (monotonic) each list has been seen ahead of the index, and the lists being
        # loaded again because the database no longer holds them as applied here (restored from
        # a backup): readiness reads these, never the database.
        self._heads: dict[int, tuple[str, int]] = {}
        self._behind_since: dict[int, float] = {}
        self._reloading: tuple[str, ...] = ()
        # The lists (ids) to load again (a load again failed: they stay due), and why matches
        # are refused meanwhile (UNLOADED), or None.
        self._rewritten: set[int] = set()
        self._unloaded: str | None = None
        # Per list id: a version the index has applied and the database's history mark at it
        # then (``ListStore.history_mark``); a mark that changes means the history was rewritten.
        self._marks: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._webhooks: threading.Thread | None = None
        self._sync = threading.Lock()
        self._key_cache = KeyCache(self.keys.authenticate, settings.key_cache_seconds)
        self._key_watch: KeyWatch | None = None  # from start() to stop()
        self.batcher: MatchBatcher | None = None
        self.recorder: MatchRecorder | None = None

    # --- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Record the configuration if it changed, then load and follow lists in the
        background."""
        self._record_configuration()
        self._key_watch = self._key_cache.watch = KeyWatch(self.engine)
        # The matching thread hands its results back to the event loop: with the interpreter's
        # default 5 ms switch interval each hand-over can wait that long for the lock.
        sys.setswitchinterval(0.0005)
        self.batcher = MatchBatcher()
        self.recorder = MatchRecorder(self.match_log)
        self._thread = threading.Thread(target=self._run, name="hashguard-lists", daemon=True)
        self._thread.start()
        self._webhooks = threading.Thread(target=self._send_webhooks, name="hashguard-webhooks",
                                          daemon=True)  # fmt: skip
        self._webhooks.start()
        self.exchange_scheduler.start()
        if self.takedown is not None:
            self.takedown.start()

    def stop(self) -> None:
        self._stop.set()
        self.exchange_scheduler.stop()
        if self.takedown is not None:
            self.takedown.stop()
        if self.hotline is not None:
            self.hotline.stop()
        for thread in (self._thread, self._webhooks):
            if thread is not None:
                thread.join()
        for worker in (self.batcher, self.recorder):
            if worker is not None:
                worker.close()
        if self._key_watch is not None:
            self._key_watch.close()
        log.info("stopped: the matches answered are stored")

    def _send_webhooks(self) -> None:
        """Every second: enable again the HMA content items whose disable time has passed,
        send due webhook calls (actions, notices) and hotline referrals, failures waiting their
        turn, and take stock of what waits (webhook calls and reports); run the retention
        purge every PURGE_SECONDS. Each task fails on its own."""
        sender = WebhookSender(self.engine, self.secret,
                               attempted=self.deliveries.attempted("webhook"))  # fmt: skip
        referrals = ReferralSender(self.engine, self.settings.victims_hotline_url)
        purged = time.monotonic() - PURGE_SECONDS  # once at start, then hourly

        def backlog() -> None:
            self.deliveries.backlog = {"webhook": webhook.backlog(self.engine),
                                       "report": self.reports.backlog()}  # fmt: skip

        def retention() -> None:
            nonlocal purged
            if time.monotonic() - purged >= PURGE_SECONDS:
                purged = time.monotonic()
                done = purge(self.engine, actor="hashguard serve")
                if done.total:
                    log.info("retention purge: %d items deleted", done.total)

        # Each on its own: one failing (or slow) task never keeps the others from their turn.
        tasks: list[tuple[str, Callable[[], object]]] = [
            ("HMA content items' restore", self.contents.restore_due),  # before the senders
            ("webhook calls", sender.send_due),
            ("hotline referrals", referrals.send_due),
            ("taking stock of the backlog", backlog),
            ("the retention purge", retention),
        ]
        while not self._stop.wait(_WEBHOOK_SECONDS):
            for task, run in tasks:
                try:
                    run()
                except Exception as error:  # the database is busy or gone: try again later
                    log.warning("%s failed: %s", task, error)

    def _run(self) -> None:
        matcher = self._load()
        if matcher is None:
            return
        checked = time.monotonic()
        while not self._stop.wait(self.settings.refresh_interval):
            try:
                with self._sync:
                    heads = self._observe(matcher, self.lists.versions())
                    checking = time.monotonic() - checked >= _LIST_CHECK_SECONDS
                    self._reload(matcher, heads, self._diverged(matcher, heads, marks=checking))
                    if checking:
                        self._follow(matcher)
                        checked = time.monotonic()
                    else:  # the change logs only: one query per list
                        try:
                            self._refresh(matcher)
                        except NotFound:  # a list renamed or removed elsewhere: follow now
                            self._follow(matcher)
                            checked = time.monotonic()
                    self._observe(matcher, heads)
                    self._reload(matcher, heads, self._remember(matcher))
                if self._error is not None:
                    log.info("following the lists again")
                self._error = None
            except Exception as error:  # a locked or lost database: keep trying, not ready
                if self._error is None:  # once per outage, not at every refresh
                    log.warning("following the lists failed: %s", error)
                self._error = f"following the lists failed: {error}"

    def _load(self) -> Matcher | None:
        """Load every list (from the snapshot where it fits), take in what changed meanwhile
        and set ``matcher``; tried again with a growing pause while the database cannot be read
        (a replica started during a failover serves once it can), from the database alone once
        the snapshot failed to load. None once stopped."""
        from_snapshot, pause = True, 1.0
        while not self._stop.is_set():
            try:
                source = self._first_source() if from_snapshot else self.lists
                matcher = Matcher(
                    source, [], self.settings.min_quality, self.settings.min_stability
                )
                for hash_list in self.lists.lists():
                    matcher.add_list(hash_list.name)
                # The snapshot, if any, is let go; each row read from now on is progress.
                matcher.source = _Watched(self.lists, self._moved)
                with self._sync:  # a change made through the service meanwhile waits for this
                    self._follow(matcher)  # the lists and changes made during the load
                    self._observe(matcher, self.lists.versions())
                    self._remember(matcher)
                    self._freeze(1)  # before it answers: its catch-ups collect fully
                    self.matcher = matcher
                break
            except Exception as error:  # a database that cannot be read: report, try again
                if isinstance(error, SnapshotError):  # a signed but malformed entry
                    from_snapshot = False
                log.error("loading the lists failed (trying again in %g s): %s", pause, error)
                self._error = f"loading the lists failed: {error}"
                if self._stop.wait(pause):
                    return None
                pause = min(2 * pause, _LOAD_RETRY_MAX)
        else:
            return None
        self._error = None
        if self.hotline is not None:  # its triage matches with this Matcher
            self.hotline.start()
        sizes = ", ".join(f"{n} {s}" for s, n in matcher.sizes().items() if n)
        log.info("lists loaded: %d list(s) (%s)", len(matcher.lists), sizes or "no entries")
        return matcher

    def _observe(
        self, matcher: Matcher, heads: dict[int, tuple[str, int]]
    ) -> dict[int, tuple[str, int]]:
        """Take in the database's list versions ``heads`` (read under ``_sync``): start the
        lag clock of each list ahead of the index, stop that of each caught up. Returns
        ``heads``."""
        now = time.monotonic()
        applied = matcher.applied()
        for ident, (_, version) in heads.items():
            if version > applied.get(ident, 0):
                self._behind_since.setdefault(ident, now)
            else:
                self._behind_since.pop(ident, None)
        for ident in [ident for ident in self._behind_since if ident not in heads]:
            del self._behind_since[ident]
        self._heads = heads
        return heads

    def _diverged(
        self, matcher: Matcher, heads: dict[int, tuple[str, int]], marks: bool
    ) -> set[int]:
        """The lists (ids) whose history in the database is no longer the one the index
        applied (restored from a backup): those the database holds at a version older than the
        index's, and, with ``marks``, those whose history mark at the version remembered
        changed (two small queries per list). Read before this pass applies anything."""
        applied = matcher.applied()
        diverged = set()
        for ident, (_, version) in heads.items():
            if ident not in applied:
                continue  # new: _follow's
            if version < applied[ident] or (marks and not self._holds(ident)):
                diverged.add(ident)
        return diverged

    def _remember(self, matcher: Matcher) -> set[int]:
        """Take the database's history mark of each list at the version the index applied,
        where that version moved since the mark remembered (read at once after applying it:
        what ``_diverged`` compares against), once the remembered one still holds; the lists
        (ids) where it does not (restored, then written past the index: the changes just
        applied are another history's)."""
        applied = matcher.applied()
        for ident in [ident for ident in self._marks if ident not in applied]:
            del self._marks[ident]
        diverged = set()
        for ident, version in applied.items():
            if self._marks.get(ident, (None, ""))[0] == version:
                continue
            if not self._holds(ident):
                diverged.add(ident)
                continue
            mark = self.lists.history_mark(ident, version)
            if mark is None:  # removed meanwhile: _follow drops it
                self._marks.pop(ident, None)
            else:
                self._marks[ident] = (version, mark)
        return diverged

    def _holds(self, ident: int) -> bool:
        """Whether the database's history mark of list ``ident`` at the version remembered is
        still the one remembered (True when none is, and when the list is gone: removed while
        this pass ran, which ``_follow`` drops; not another history to load again)."""
        remembered = self._marks.get(ident)
        if remembered is None or self.lists.history_mark(ident, remembered[0]) == remembered[1]:
            return True
        return ident not in {hash_list.id for hash_list in self.lists.lists()}

    def _reload(
        self, matcher: Matcher, heads: dict[int, tuple[str, int]], diverged: set[int]
    ) -> None:
        """Load the ``diverged`` lists again from the database, and those a load again failed
        for before: the index then holds what the database holds, and follows its history from
        there. Each list is read whole aside and swapped in at once (``Matcher.replace_list``):
        matches answer from the version held until then (not ready, nor serving, meanwhile). A
        failure leaves the lists due (tried again at the next pass) and the replica broken,
        its matches refused (``withheld``), until they are loaded; it raises."""
        held = {hash_list.id for hash_list in matcher.lists}
        due = {ident for ident in self._rewritten | diverged if ident in held and ident in heads}
        self._rewritten = due
        if not due:
            self._unloaded = None
            return
        names = tuple(heads[ident][0] for ident in sorted(due))
        if diverged & due:
            log.error("the database no longer holds list(s) %s as this replica applied them "
                      "(restored from a backup?): loading them again",
                      ", ".join(names))  # fmt: skip
        self._reloading = names
        try:
            for ident in sorted(due):
                matcher.replace_list(heads[ident][0])
                self._marks.pop(ident, None)  # taken again at the version just loaded
                self._rewritten.discard(ident)
            self._freeze(1)
        except Exception:
            self._unloaded = UNLOADED
            raise
        finally:
            self._reloading = ()
        self._unloaded = None
        log.info("list(s) %s loaded again", ", ".join(names))

    def _moved(self) -> None:
        self._progressed = time.monotonic()

    def _first_source(self) -> ListSource:
        """Where the first load reads the lists: the snapshot (``--snapshot``) for the lists
        it fits, then the change logs from its versions; else the database. Logs why a
        snapshot or a list of it is not used."""
        path, key = self.settings.snapshot, self.settings.snapshot_key
        if path is None:
            return self.lists
        try:
            if key is None:
                raise SnapshotError(f"{path}: no --snapshot-key to check its signature with")
            source = SnapshotSource(snapshot.read(path, keys.read_public(key)), self.lists)
        except (SnapshotError, KeyFileError) as error:
            log.warning("the snapshot is not used, the lists load from the database: %s", error)
            return self.lists
        for name, reason in source.unused.items():
            log.warning("list %s loads from the database, not the snapshot: %s", name, reason)
        log.info("snapshot %s: %d list(s) load from it (%s), then catch up from the database",
                 path, len(source.used), ", ".join(source.used) or "none")  # fmt: skip
        return source

    def _current_matcher(self) -> Matcher:
        """The Matcher the hotline's triage uses (the hotline starts once it is loaded)."""
        reason = self.withheld()
        if reason is not None or self.matcher is None:
            raise Unavailable(reason or "the lists are loading")
        return self.matcher

    def catch_up(self) -> None:
        """Bring the Matcher up to the store now: lists created, changed or removed, and the
        changes appended to every list's log. Called after each change made through the
        service, so that it holds for the very next request; a change made while the Matcher
        loads is taken in by the load. Raises what reading the store raises."""
        with self._sync:
            if self.matcher is not None:
                self._follow(self.matcher)

    def _follow(self, matcher: Matcher) -> None:
        """Bring ``matcher``'s set of lists in line with the store, lists known by their id
        (load new lists, drop removed ones, and made anew; rename in place, with nothing
        reloaded, and update those whose name or policy changed), then apply each list's new
        changes. The caller holds ``_sync``."""
        stored = {hash_list.id: hash_list for hash_list in self.lists.lists()}
        held = {hash_list.id: hash_list for hash_list in matcher.lists}
        for ident, hash_list in held.items():
            if ident not in stored:  # removed (and perhaps another took its name)
                matcher.drop_list(hash_list.name)
        for ident, hash_list in held.items():
            now = stored.get(ident)
            if now is not None and _described(now) != _described(hash_list):
                matcher.update_list(now)  # renamed or changed: it keeps matching meanwhile
        new = [hash_list.name for ident, hash_list in stored.items() if ident not in held]
        for name in new:
            matcher.add_list(name)
        if new:
            self._freeze(1)
        self._refresh(matcher)

    def _refresh(self, matcher: Matcher) -> None:
        """Apply the changes appended to the lists' logs; once ``matcher`` answers requests,
        paced (``_Paced``), and the new entries frozen after each batch (``_taken``)."""
        if self.matcher is matcher:  # answering requests
            matcher.refresh(_Paced(self._stop), self._taken)
        else:  # loading: frozen once loaded
            matcher.refresh()
        self._refreshed = time.monotonic()

    def _taken(self, count: int) -> None:
        """A batch of ``count`` changes is in the Matcher: the entries taken in are frozen once
        _FREEZE_AFTER have come."""
        self._unfrozen += count
        if self._unfrozen >= _FREEZE_AFTER:
            self._freeze()

    def _freeze(self, collected: int = 2) -> None:
        """Keep the cyclic collector from walking the Matcher's entries (millions, as long-lived
        as the process) on each full collection: pauses of a tenth of a second and more. The
        garbage of generations up to ``collected`` is collected first, so that it is not frozen
        with them: after a catch-up, all of it (a walk of what came since the last freeze, a
        few ms); after lists were loaded whole, the young generations only (a full walk would
        take seconds)."""
        gc.collect(collected)
        gc.freeze()
        self._unfrozen = 0

    # --- state ------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        """Whether the lists are not loaded yet: the first load under way, or tried again after
        a failure (until it succeeds or the service stops)."""
        return self.matcher is None

    def writer_busy(self) -> bool:
        """Whether a bulk job of this service holds SQLite's one write lock."""
        return self.jobs.running and self.engine.dialect.name == "sqlite"

    def readiness(self) -> Readiness:
        """Whether to send this replica requests: loaded, following the change logs, and no
        longer than ``max_lag`` behind the database. Reads what the follower thread last saw,
        never the database, so probes and scrapes cost nothing and never wait on it."""
        if self.matcher is None:
            if self._error is not None:
                return Readiness(False, "loading the lists failed; trying again (see the log)",
                                 None)  # fmt: skip
            return Readiness(False, "the index is loading", None)
        age = self._age()
        lag = self.lag(self.matcher)
        if self._reloading:
            return Readiness(False, RELOADING, age, lag)
        if self._unloaded is not None:
            return Readiness(False, self._unloaded, age, lag)
        if self._error is not None:
            return Readiness(False, "following the lists failed (see the log)", age, lag)
        if age is not None and age > self._stale_after():
            return Readiness(False, f"no refresh of the index for {age:.1f} s", age, lag)
        if lag.seconds > self.settings.max_lag:
            return Readiness(
                False,
                f"the index is {lag.changes} change(s) behind the database, for "
                f"{lag.seconds:.1f} s (max_lag: {self.settings.max_lag:g} s)",
                age, lag,
            )  # fmt: skip
        return Readiness(True, "ready", age, lag)

    def serving(self) -> str | None:
        """Why this replica should not answer even when no replica is ready (a load
        balancer's fallback), or None: it may answer, from an index perhaps behind. Not while
        its lists load or are loaded again (the database restored: it answers from the
        versions held meanwhile), nor while it is ``broken``. From memory, as ``readiness``."""
        if self.matcher is None:
            return "the index is loading"
        if self._reloading:
            return RELOADING
        return self.broken()

    def withheld(self) -> str | None:
        """Why the matching routes answer 503, or None: the lists are loading, or a list the
        database rewrote could not be loaded again (the version held is another history's:
        matches from it, or without it, would pass for answers)."""
        if self.matcher is None:
            return self.readiness().reason
        return self._unloaded

    def broken(self) -> str | None:
        """Why restarting this replica would help, or None: its follower has made no progress
        (no successful refresh, no row read) for ``_STUCK_FACTOR`` times the stale bound, or a
        list the database rewrote (restored) could not be loaded again (it holds a history the
        database no longer does: a replica started anew loads every list, serving none until
        it has; this one refuses matches, ``withheld``, and tries again meanwhile). A refresh
        that applies a large import, or the load of a large list, moves on row by row and is
        no reason; nor is lag (its usual causes, a large import or a slow database, are shared
        by every replica, and a restart only reloads everything from the same database), a
        first load being tried again (a restart only tries again), or a database restored
        while its lists are loaded again (the versions held answer until then)."""
        if self.matcher is None:
            return None
        if self._unloaded is not None:
            return self._unloaded
        idle = self._idle()
        if idle is not None and idle > _STUCK_FACTOR * self._stale_after():
            return f"no progress following the lists for {idle:.1f} s"
        return None

    def lag(self, matcher: Matcher) -> Lag:
        """How far ``matcher`` is behind the database as the follower last read it: each
        list's version applied against the database's, and for how long (on this replica's
        clock) the index has been behind."""
        applied = matcher.applied()
        heads, since = self._heads, dict(self._behind_since)
        lists = tuple(ListLag(name, applied.get(ident, 0), version)
                      for ident, (name, version) in heads.items())  # fmt: skip
        behind = [since[ident] for ident, (_, version) in heads.items()
                  if ident in since and version > applied.get(ident, 0)]  # fmt: skip
        return Lag(lists, time.monotonic() - min(behind) if behind else 0.0)

    def _stale_after(self) -> float:
        """Seconds without a successful refresh after which the index counts as stale."""
        return max(_STALE_AFTER, 10 * self.settings.refresh_interval, self.settings.max_lag)

    def _age(self) -> float | None:
        return None if self._refreshed is None else time.monotonic() - self._refreshed

    def _idle(self) -> float | None:
        """Seconds since the follower last refreshed or read a row of the lists."""
        moments = [m for m in (self._refreshed, self._progressed) if m is not None]
        return time.monotonic() - max(moments) if moments else None

    # --- keys -------------------------------------------------------------------------------

    async def authenticate(self, token: str) -> ApiKey | None:
        """The live key of ``token`` (``KeyCache``): cached for ``key_cache_seconds`` (looked
        up again in the background past half of it), and looked up again after any change a
        ``KeyWatch`` sees (a key revoked or rescoped by another process: the CLI), so a
        revocation holds for the very next request."""
        return await self._key_cache.get(token)

    @property
    def key_watch(self) -> KeyWatch | None:
        """What tells this service of keys changed by another process, while it runs."""
        return self._key_watch

    def forget_key(self, ident: str) -> None:
        """A key revoked here stops working at once."""
        self._key_cache.forget(ident)

    def _record_configuration(self) -> None:
        """An audit event when the service starts with settings unlike the last recorded."""
        recorded = self.settings.recorded()
        last = audit.last_details(self.engine, "service.configuration")
        if last != recorded:
            with self.engine.begin() as connection:
                audit.append(connection, "hashguard serve", "service.configuration", "service",
                             recorded)  # fmt: skip


class _Paced:
    """The steps of one catch-up of the Matcher: after each, a pause of _CATCH_UP_BACKOFF times
    what the step spent waiting rather than running (for the interpreter lock or a core, which
    requests held), at most _PAUSE_MAX, cut short when the service stops."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._started = (time.monotonic(), time.thread_time())

    def __call__(self) -> None:
        wall, ran = time.monotonic(), time.thread_time()
        waited = (wall - self._started[0]) - (ran - self._started[1])
        if waited > 0:
            self._stop.wait(min(_CATCH_UP_BACKOFF * waited, _PAUSE_MAX))
        self._started = (time.monotonic(), time.thread_time())


class _Watched:
    """The follower's source of lists: the store's, each row read through it telling the
    service it moves on (``moved``)."""

    def __init__(self, store: ListStore, moved: Callable[[], None]) -> None:
        self._store = store
        self._moved = moved

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        hash_list, entries = self._store.entries(name, statuses)
        return hash_list, self._watched(entries)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Change]:
        return self._watched(self._store.changes_since(name, version, limit))

    def _watched(self, rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            self._moved()
            yield row


class ServedLists(ListStore):
    """The service's ListStore: each change written through it holds in the service's Matcher
    before the call returns (``catch_up``), whichever route or workflow wrote it: curation,
    HMA's banks, a reviewer's false positive, an upheld complaint."""

    def __init__(self, engine: Engine, catch_up: Callable[[], None]) -> None:
        super().__init__(engine)
        self._caught_up = catch_up

    def _catch_up(self) -> None:
        """After a committed write: a failure to take it in now (the database gone) must not
        make the write look failed, or stop a workflow halfway; the background follower takes
        it in, and the service says it is not ready meanwhile."""
        try:
            self._caught_up()
        except Exception as error:
            log.warning("a change was written but not yet applied to the matcher: %s", error)

    def create(self, *args: Any, **kwargs: Any) -> HashList:
        created = super().create(*args, **kwargs)
        if kwargs.get("connection") is None:  # else the caller's commit is still to come
            self._catch_up()
        return created

    def update(self, *args: Any, **kwargs: Any) -> HashList:
        updated = super().update(*args, **kwargs)
        self._catch_up()
        return updated

    def rename(self, *args: Any, **kwargs: Any) -> HashList:
        renamed = super().rename(*args, **kwargs)
        self._catch_up()
        return renamed

    def remove(self, *args: Any, **kwargs: Any) -> HashList:
        removed = super().remove(*args, **kwargs)
        self._catch_up()
        return removed

    def apply(
        self,
        name: str,
        records: Iterable[Record],
        actor: str = "",
        connection: Connection | None = None,
        entry_ids: Sequence[int] = (),
    ) -> ImportSummary:
        summary = super().apply(name, records, actor, connection, entry_ids)
        if connection is None:  # else the caller's commit is still to come: ``committed``
            self._catch_up()
        return summary

    def committed(self) -> None:
        self._catch_up()

    def change(self, *args: Any, **kwargs: Any) -> Change:
        change = super().change(*args, **kwargs)
        self._catch_up()
        return change


def decode_budget(settings: ServiceSettings) -> DecodeBudget:
    """The decode budget of ``settings``: the server's (every route that decodes media and the
    hotline's crawler share it), or a command's own (``hashguard hotline run-once``)."""
    return DecodeBudget(settings.max_decodes, settings.max_decode_bytes, settings.decode_wait,
                        settings.decode_waiters)  # fmt: skip


def hotline_settings(settings: ServiceSettings) -> HotlineSettings:
    """The hotline's settings as hashguard.hotline takes them."""
    return HotlineSettings(
        settings.hotline_country, settings.hotline_name, settings.hotline_four_eyes,
        settings.hotline_illegal_list, settings.hotline_not_illegal_list,
        settings.hotline_known_lists, settings.hotline_reports_per_hour,
        settings.hotline_contact_days, settings.hotline_resolver, settings.hotline_ip_databases,
        settings.hotline_hosters, settings.hotline_partners, settings.hotline_vocabulary,
        settings.hotline_routing, settings.hotline_crawlers, settings.hotline_crawl_timeout,
        settings.hotline_networks, settings.media_limits, settings.max_upload_bytes,
        settings.hotline_derived_hashes,
    )  # fmt: skip


def takedown_settings(settings: ServiceSettings) -> TakedownSettings:
    """Notice and takedown's settings as hashguard.takedown takes them."""
    return TakedownSettings(
        settings.takedown_key, settings.hotline_name, settings.hotline_country,
        settings.takedown_profile, settings.takedown_notice_hours, settings.takedown_order_hours,
        settings.takedown_renotice_hours, settings.takedown_recheck_days,
        settings.takedown_escalation, settings.takedown_smtp, settings.takedown_from,
        settings.takedown_domain, settings.public_url, settings.hotline_networks,
        settings.hotline_crawl_timeout,
    )  # fmt: skip


def case_settings(settings: ServiceSettings) -> CaseSettings:
    """The victims' settings as hashguard.victims takes them."""
    return CaseSettings(
        settings.victims_adult_list, settings.victims_minor_list, settings.victims_owner,
        settings.victims_max_hashes, settings.victims_pin_failures,
        timedelta(minutes=settings.victims_lockout_minutes), settings.victims_address_failures,
        settings.victims_cases_per_hour,
    )  # fmt: skip


def _described(hash_list: HashList) -> tuple[object, ...]:
    """A list as the Matcher holds it, but for its version."""
    return (hash_list.name, hash_list.policy.as_json(), hash_list.owner, hash_list.category,
            hash_list.jurisdictions, hash_list.legal_basis)  # fmt: skip
