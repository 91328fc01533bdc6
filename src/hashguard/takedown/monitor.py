"""The bad-hoster monitor: how fast each hoster (and each country's hosters) removes what it is
notified of, from the hotline's own records (docs/takedown-monitor.md).

Definitions, the same on the page, in the exports and in the API:

- The notices counted are notices and removal orders (kinds ``notice`` and ``order``); a CDN's
  notice (kind ``cdn``) is not counted, the notice to the origin's hoster it led to is. A period
  (``since`` inclusive, ``until`` exclusive) selects notices by ``reported_at``: when the hotline
  received the report.
- Time to removal is INHOPE's notice-and-takedown time: ``verified_at - reported_at``, from the
  hotline receiving the report to the removal the hotline verified by fetching the URLs again
  (never the hoster's word). ``removed``: notices with a verified removal.
- Quantiles (median, p90, p99) of the hours to removal of the removed notices, by linear
  interpolation between the closest ranks (numpy's default ``linear`` method: the value at rank
  ``(n - 1) * q`` of the sorted hours, interpolated).
- ``within_24h``: the share of notices removed within 24 hours (``<= 24 h``) among the notices
  that were removed or whose 24 hours have passed (``reported_at + 24 h <= now``); a withdrawn
  notice that was not removed is left out of both. None when that denominator is 0.
- ``open_now``: queued or open now; ``overdue_now``: of these, past their deadline.
- ``renotices`` and ``escalations``: how many were sent (sums over the notices).
- ``reappeared``: removed notices whose content came back (a ``reappeared`` event);
  ``reappearance_rate`` = reappeared / removed.
- ``disputes``: notices the hoster disputed.

The public figures (``public``) show a count under 10 as None ("<10") and, wherever one hidden
count would follow from a sum the figures show (across a table, or along a row: notices =
removed + open_now + withdrawn), a second one as None too (``_complement``); the
median and p90 of a group with fewer than 10 removals as None, its p99 with fewer than 100; and
a share as None when a count it is made of is under 10 or hidden. Their periods are whole
calendar months (``whole_month``; the public page rounds its bounds out to them).

Counts are added up by the database in one query grouped by (hoster, country, month), which
also lists each group's seconds to removal (computed in SQL) as one text that numpy reads: no
notice becomes a Python object, the quantiles are exact. ``overview`` gives the page everything
from that one pass (and a small one over the ``reappeared`` events).
"""

import csv as csv_module
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    ColumnElement,
    Engine,
    Text,
    and_,
    case,
    cast,
    func,
    or_,
    select,
)

from hashguard.errors import Invalid, NotFound
from hashguard.store.tables import (
    TakedownCheckRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
    utc,
)
from hashguard.takedown import signing
from hashguard.takedown.model import OPEN_STATES, Clock, EventKind, NoticeKind, NoticeState, now

By = Literal["hoster", "country", "all"]
BYS: Final = ("hoster", "country", "all")
SMALL: Final = 10  # public figures: a count under this is suppressed
DAY: Final = 24.0  # hours: the covenant's removal time
UNKNOWN_COUNTRY: Final = "unknown"
# The distribution's bins (hours): 0-1 holds 0 to 1 inclusive, each next bin (low, high].
EDGES: Final = (1.0, 6.0, 12.0, 24.0, 48.0, 72.0, 168.0, 720.0)
BIN_LABELS: Final = ("0-1", "1-6", "6-12", "12-24", "24-48", "48-72", "72-168", "168-720", ">720")
QUANTILES: Final = (50.0, 90.0, 99.0)
EVIDENCE_KIND: Final = "hashguard-takedown-evidence"
DEFINITION: Final = (
    "Time to removal is INHOPE's notice-and-takedown time: from the hotline receiving the report "
    "(reported_at) to the removal the hotline verified by fetching the URLs again (verified_at); "
    "a hoster's claim alone is never counted. Notices and removal orders count; a CDN's notice "
    "does not, the notice to the origin's hoster does. Quantiles interpolate linearly between "
    "ranks. within_24h: removed within 24 hours, of the notices removed or whose 24 hours have "
    "passed (withdrawn ones not removed are left out)."
)

N = TakedownNoticeRow
COUNTED: Final = (NoticeKind.NOTICE.value, NoticeKind.ORDER.value)


class UnknownHoster(NotFound):
    """A hoster of which the hotline has no notice."""


@dataclass(frozen=True, slots=True)
class Row:
    """One group's figures (a hoster, a country, or "all"). Counts are None only in the
    public figures, where they are under 10; quantiles and shares are None when there is
    nothing to compute them from, or (public) when they are suppressed."""

    group: str
    notices: int | None
    removed: int | None
    median_hours: float | None
    p90_hours: float | None
    p99_hours: float | None
    within_24h: float | None
    open_now: int | None
    overdue_now: int | None
    renotices: int | None
    escalations: int | None
    reappeared: int | None
    reappearance_rate: float | None
    disputes: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Bin:
    """Removals whose hours to removal fall in (low, high] (the first bin includes 0)."""

    label: str
    low: float
    high: float | None  # None: no upper bound
    removals: int | None  # None in the public figures when under 10

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Point:
    """One month of the trend (notices reported in that month, UTC)."""

    period: str  # YYYY-MM
    notices: int | None
    removed: int | None
    median_hours: float | None
    p90_hours: float | None
    within_24h: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Counts:
    """A group's counts as the database adds them up, and the removals' hours."""

    group: str
    notices: int
    removed: int
    within: int  # removed within 24 h
    due: int  # removed, or 24 h passed (not withdrawn): within_24h's denominator
    open_now: int
    overdue_now: int
    renotices: int
    escalations: int
    reappeared: int
    disputes: int
    hours: np.ndarray

    @classmethod
    def of(cls, group: str, numbers: Sequence[int], hours: np.ndarray) -> "_Counts":
        """From the grouped query's numbers, in its order, and the group's hours."""
        n, removed, due, opened, overdue, renotices, escalations, back, disputes = numbers
        within = int(np.count_nonzero(hours <= DAY))  # from the hours: no date sums per row
        return cls(group, n, removed, within, due, opened, overdue, renotices, escalations,
                   back, disputes, hours)  # fmt: skip


_KEY_OF: Final = {"hoster": 0, "country": 1, "month": 2}
_EMPTY: Final = np.array([], dtype=float)


def _check(by: str) -> None:
    if by not in BYS:
        raise Invalid(f"by: expected one of {', '.join(BYS)}, not {by!r}")


def _seconds_of(text: str | None) -> np.ndarray:
    """The seconds the database listed ("12.5,3600.0,..."), as an array (empty for none)."""
    if not text:
        return np.array([], dtype=float)
    return np.array(text.split(","), dtype=float)


@dataclass(frozen=True)
class _Collected:
    """One pass's counts per (hoster, country, month) and the hours to removal of each cell's
    removed notices."""

    cells: list[tuple[str, str, str, tuple[int, ...], np.ndarray]]

    @property
    def hours(self) -> np.ndarray:
        return np.concatenate([cell[4] for cell in self.cells]) if self.cells else _EMPTY

    def rollup(self, by: str) -> list[_Counts]:
        """The counts and hours per group of ``by`` (hoster, country, month or all)."""
        sums: dict[str, list[int]] = {}
        spans: dict[str, list[np.ndarray]] = {}
        for *names, numbers, hours in self.cells:
            name = "all" if by == "all" else names[_KEY_OF[by]]
            total = sums.setdefault(name, [0] * len(numbers))
            for position, number in enumerate(numbers):
                total[position] += number
            if len(hours):
                spans.setdefault(name, []).append(hours)
        return [_Counts.of(name, sums[name],
                           np.concatenate(spans[name]) if name in spans else _EMPTY)
                for name in sorted(sums)]  # fmt: skip

    def bins(self) -> list[int]:
        """The removals per bin of hours (BIN_LABELS)."""
        slots = np.bincount(np.searchsorted(EDGES, self.hours, side="left"),
                            minlength=len(BIN_LABELS))  # fmt: skip
        return [int(n) for n in slots]

    def distribution(self, public: bool) -> list[Bin]:
        if public:
            return self.public().distribution
        return _bins(self.bins())

    def trend(self, public: bool) -> list[Point]:
        if public:
            return self.public().trend
        return [_point(_row(counts)) for counts in self.rollup("month")]

    def overview(self) -> "Overview":
        everything = [_row(counts) for counts in self.rollup("all")]
        return Overview(everything[0] if everything else None,
                        [_row(counts) for counts in self.rollup("hoster")],
                        [_row(counts) for counts in self.rollup("country")],
                        self.distribution(False), self.trend(False))  # fmt: skip

    def public(self) -> "Overview":
        """Everything as the public sees it: primary suppression (a count under SMALL) and
        complementary suppression (``_complement``) over every sum the figures show."""
        groups = {"all": self.rollup("all"), "hoster": self.rollup("hoster"),
                  "country": self.rollup("country"), "month": self.rollup("month")}  # fmt: skip
        values: dict[Cell, int] = {}
        for kind, rows in groups.items():
            for counts in rows:
                for column in COUNTS if kind != "month" else TREND_COUNTS:
                    values[(kind, counts.group, column)] = getattr(counts, column)
        bins = self.bins()
        if groups["all"]:
            for label, n in zip(BIN_LABELS, bins, strict=True):
                values[("bin", label, "removed")] = n
        hidden = _complement(values, _relations(groups, self.cells))
        shaped = {kind: [_public_row(counts, hidden, kind) for counts in rows]
                  for kind, rows in groups.items()}  # fmt: skip
        shown = [None if ("bin", label, "removed") in hidden or not groups["all"] else n
                 for label, n in zip(BIN_LABELS, bins, strict=True)]  # fmt: skip
        return Overview(shaped["all"][0] if shaped["all"] else None, shaped["hoster"],
                        shaped["country"], _bins(shown),
                        [_point(row) for row in shaped["month"]])  # fmt: skip


# A cell of the public figures: (table, group, column); tables: all, hoster, country, month, bin.
Cell = tuple[str, str, str]
COUNTS: Final = ("notices", "removed", "open_now", "overdue_now", "renotices", "escalations",
                 "reappeared", "disputes")  # fmt: skip
TREND_COUNTS: Final = ("notices", "removed")  # the counts the trend shows
ROW_SUM: Final = ("notices", "removed", "open_now")  # notices = removed + open_now + withdrawn


def _relations(groups: dict[str, list[_Counts]],
               cells: list[tuple[str, str, str, tuple[int, ...], np.ndarray]]
               ) -> list[list[Cell]]:  # fmt: skip
    """Every sum the public figures show, per column, as the cells it ties together: all is
    the sum of the hosters, of the countries, of the months (notices, removed) and all's
    removals the sum of the distribution's bins; each row's notices the sum of its removed, its
    open now and its withdrawn (not shown, usually 0: so taken as known); and the hosters and
    countries linked by notices (a hoster with notices in a country; a connected set of them)
    sum to the same."""
    relations: list[list[Cell]] = []
    if not groups["all"]:
        return relations
    for column in COUNTS:
        whole: Cell = ("all", "all", column)
        for kind in ("hoster", "country"):
            relations.append([whole, *((kind, c.group, column) for c in groups[kind])])
    for column in TREND_COUNTS:
        relations.append([("all", "all", column),
                          *(("month", c.group, column) for c in groups["month"])])  # fmt: skip
    relations.append([("all", "all", "removed"), *(("bin", label, "removed")
                                                   for label in BIN_LABELS)])  # fmt: skip
    # a row: notices = removed + open_now + the rest (withdrawn, not shown, usually 0: taken
    # as known, so one hidden cell of the three would follow from the other two)
    for kind in ("all", "hoster", "country"):
        for c in groups[kind]:
            relations.append([(kind, c.group, column) for column in ROW_SUM])
    # hosters and countries linked by their notices: each connected set's two sums are equal
    parent: dict[Cell, Cell] = {}

    def root(node: Cell) -> Cell:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for hoster, country, *_ in cells:
        parent[root(("hoster", hoster, ""))] = root(("country", country, ""))
    linked: dict[Cell, list[Cell]] = {}
    for node in list(parent):
        linked.setdefault(root(node), []).append(node)
    for members in linked.values():
        for column in COUNTS:
            relations.append([(kind, name, column) for kind, name, _ in sorted(members)])
    return relations


def _complement(values: dict[Cell, int], relations: list[list[Cell]]) -> set[Cell]:
    """The cells the public figures hide: every count under SMALL (primary), and then, until
    none is left, wherever a sum the figures show has exactly one hidden cell (which the sum's
    other cells would give away by subtraction) a second one: the smallest shown count that
    is not 0 (else the smallest). So no hidden cell is the only unknown of a shown sum."""
    hidden = {cell for cell, value in values.items() if value < SMALL}
    changed = True
    while changed:
        changed = False
        for cells in relations:
            if sum(cell in hidden for cell in cells) != 1:
                continue
            shown = [cell for cell in cells if cell not in hidden]
            if not shown:
                continue
            hidden.add(min(shown, key=lambda cell: (values[cell] == 0, values[cell], cell)))
            changed = True
    return hidden


def _bins(counts: Sequence[int | None]) -> list[Bin]:
    lows = (0.0, *EDGES)
    highs: tuple[float | None, ...] = (*EDGES, None)
    return [Bin(*bin) for bin in zip(BIN_LABELS, lows, highs, counts, strict=True)]


def _point(row: Row) -> Point:
    return Point(row.group, row.notices, row.removed, row.median_hours, row.p90_hours,
                 row.within_24h)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Overview:
    """The monitor's page: all, per hoster, per country, the distribution, the trend."""

    all: Row | None
    hosters: list[Row]
    countries: list[Row]
    distribution: list[Bin]
    trend: list[Point]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quantiles(hours: np.ndarray) -> tuple[float | None, float | None, float | None]:
    if len(hours) == 0:
        return None, None, None
    median, p90, p99 = (float(value) for value in np.percentile(hours, QUANTILES))
    return median, p90, p99


def _row(counts: _Counts) -> Row:
    median, p90, p99 = _quantiles(counts.hours)
    return Row(group=counts.group, notices=counts.notices, removed=counts.removed,
               median_hours=median, p90_hours=p90, p99_hours=p99,
               within_24h=_share(counts.within, counts.due), open_now=counts.open_now,
               overdue_now=counts.overdue_now, renotices=counts.renotices,
               escalations=counts.escalations, reappeared=counts.reappeared,
               reappearance_rate=_share(counts.reappeared, counts.removed),
               disputes=counts.disputes)  # fmt: skip


def _small(count: int) -> int | None:
    return None if count < SMALL else count


P90_FROM: Final = 10  # removals a group needs before the public figures show its median and p90
P99_FROM: Final = 100  # and its p99: with fewer, the p99 is one notice's time


def _public_row(counts: _Counts, hidden: set[Cell], kind: str) -> Row:
    """``counts`` as the public sees them: the ``hidden`` cells None; the median and p90 from
    P90_FROM removals, the p99 from P99_FROM; a share None when a count it is made of is
    under SMALL or hidden."""
    row = _row(counts)
    columns = COUNTS if kind != "month" else TREND_COUNTS
    shown = {column: (None if (kind, counts.group, column) in hidden
                      else getattr(counts, column)) for column in columns}  # fmt: skip
    within = None if min(counts.within, counts.due) < SMALL else row.within_24h
    rate = (None if shown.get("reappeared") is None or shown["removed"] is None
            else row.reappearance_rate)  # fmt: skip
    changed: dict[str, Any] = {column: shown.get(column) for column in COUNTS}
    return replace(row, **changed, within_24h=within, reappearance_rate=rate,
                   median_hours=None if counts.removed < P90_FROM else row.median_hours,
                   p90_hours=None if counts.removed < P90_FROM else row.p90_hours,
                   p99_hours=None if counts.removed < P99_FROM else row.p99_hours)  # fmt: skip


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).isoformat()


class Monitor:
    """The monitor's figures over ``engine``'s notices, "now" from ``clock``."""

    def __init__(self, engine: Engine, clock: Clock = now) -> None:
        self.engine = engine
        self.clock = clock
        self._sqlite = engine.dialect.name == "sqlite"

    # --- SQL pieces ---------------------------------------------------------------------------

    def _seconds(self) -> ColumnElement[Any]:
        """Seconds from report to verified removal (to the millisecond in SQLite), computed by
        the database."""
        if self._sqlite:
            days = func.julianday(N.verified_at) - func.julianday(N.reported_at)
            return func.round(days * 86400.0, 3)
        return func.extract("epoch", N.verified_at - N.reported_at)

    def _listed(self, seconds: ColumnElement[Any]) -> ColumnElement[str]:
        """The group's ``seconds`` (those not NULL) as one text: "12.5,3600.0,...". The text
        of a REAL in SQLite has 15 significant digits: exact for seconds to the millisecond."""
        if self._sqlite:
            return func.group_concat(seconds)
        return func.string_agg(cast(seconds, Text), ",")

    def _month(self) -> ColumnElement[str]:
        if self._sqlite:  # stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: its first 7 characters
            return func.substr(N.reported_at, 1, 7)
        return func.to_char(func.timezone("UTC", N.reported_at), "YYYY-MM")

    def _where(self, since: datetime | None, until: datetime | None, hoster: str | None,
               country: str | None) -> list[ColumnElement[bool]]:  # fmt: skip
        where: list[ColumnElement[bool]] = [N.kind.in_(COUNTED)]
        if since is not None:
            where.append(N.reported_at >= _utc(since))
        if until is not None:
            where.append(N.reported_at < _utc(until))
        if hoster is not None:
            where.append(N.hoster == hoster)
        if country is not None:
            where.append(func.coalesce(N.country, UNKNOWN_COUNTRY) == country)
        return where

    def _collect(self, since: datetime | None, until: datetime | None, hoster: str | None,
                 country: str | None = None) -> "_Collected":  # fmt: skip
        """One pass over the notices (the covering index ``ix_takedown_notices_monitor``): their
        counts grouped by (hoster, country, month) in the database, with each group's seconds
        to removal listed as one text, so no row of the notices becomes a Python object; and
        the reappeared ones per group (from the few ``reappeared`` events, joined)."""
        moment = self.clock()
        keys = (N.hoster, func.coalesce(N.country, UNKNOWN_COUNTRY), self._month())
        where = self._where(since, until, hoster, country)
        removed = N.verified_at.is_not(None)
        due = or_(removed, and_(N.reported_at <= moment - timedelta(hours=DAY),
                                N.state != NoticeState.WITHDRAWN.value))  # fmt: skip
        is_open = N.state.in_([state.value for state in OPEN_STATES])
        overdue = and_(is_open, N.deadline_at.is_not(None), N.deadline_at < moment)

        def number(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        totals = select(
            *keys, func.count(), number(removed), number(due), number(is_open),
            number(overdue), func.coalesce(func.sum(N.renotices), 0),
            func.coalesce(func.sum(N.escalations), 0), number(N.disputed_at.is_not(None)),
            self._listed(case((removed, self._seconds()))),
        ).where(*where).group_by(*keys)  # fmt: skip
        events = TakedownEventRow.__table__
        came_back = (
            select(events.c.notice_id)
            .where(events.c.kind == EventKind.REAPPEARED.value)
            .distinct()
            .subquery()
        )
        reappeared = (select(*keys, func.count())
                      .select_from(N.__table__.join(came_back, came_back.c.notice_id == N.id))
                      .where(*where, removed).group_by(*keys))  # fmt: skip
        with self.engine.connect() as connection:
            back = {(h, c, m): int(n) for h, c, m, n in connection.execute(reappeared)}
            cells = []
            for h, c, m, *numbers, listed in connection.execute(totals):
                counts = [int(n) for n in numbers]
                counts.insert(7, back.get((h, c, m), 0))  # in _Counts.of's order
                cells.append((h, c, m, tuple(counts), _seconds_of(listed) / 3600.0))
        return _Collected(cells)

    # --- the figures --------------------------------------------------------------------------

    def figures(self, by: str = "hoster", since: datetime | None = None,
                until: datetime | None = None, hoster: str | None = None) -> list[Row]:  # fmt: skip
        """Each group's figures (by hoster, by country, or one row "all"), ordered by group;
        raises Invalid for another ``by``."""
        _check(by)
        return [_row(counts) for counts in self._collect(since, until, hoster).rollup(by)]

    def public(self, by: str = "hoster", since: datetime | None = None,
               until: datetime | None = None, hoster: str | None = None) -> list[Row]:  # fmt: skip
        """The figures as the public sees them (``_Collected.public``): counts under 10 None
        and a second count hidden wherever one hidden count would follow from a sum the figures
        show; the median and p90 of a group with fewer than 10 removals None, its p99 with fewer
        than 100; a share None when a count it is made of is hidden."""
        _check(by)
        found = self._collect(since, until, hoster).public()
        if by == "all":
            return [found.all] if found.all is not None else []
        return found.hosters if by == "hoster" else found.countries

    def distribution(self, since: datetime | None = None, until: datetime | None = None,
                     hoster: str | None = None, country: str | None = None,
                     public: bool = False) -> list[Bin]:  # fmt: skip
        """How many removals took how long: a histogram of the hours to removal in the bins
        0-1, 1-6, 6-12, 12-24, 24-48, 48-72, 72-168, 168-720, >720 h (public: suppressed as in
        ``public``, a bin under 10 None and a second one when one alone is)."""
        return self._collect(since, until, hoster, country).distribution(public)

    def trend(self, period: str = "month", since: datetime | None = None,
              until: datetime | None = None, hoster: str | None = None,
              country: str | None = None, public: bool = False) -> list[Point]:  # fmt: skip
        """Per calendar month (UTC) of ``reported_at``, oldest first: notices, removed, the
        median and p90 hours to removal and the share within 24 h (public: suppressed as in
        ``public``). Raises Invalid for a period other than "month"."""
        if period != "month":
            raise Invalid(f"period: only 'month' is supported, not {period!r}")
        return self._collect(since, until, hoster, country).trend(public)

    def overview(self, since: datetime | None = None, until: datetime | None = None,
                 public: bool = False) -> "Overview":  # fmt: skip
        """Everything the monitor's page shows, from one pass: all, per hoster, per country,
        the distribution and the trend (public: suppressed as in ``public``)."""
        collected = self._collect(since, until, None)
        return collected.public() if public else collected.overview()

    # --- evidence -----------------------------------------------------------------------------

    def evidence(self, hoster: str, key: Ed25519PrivateKey) -> dict[str, Any]:
        """Every notice of ``hoster`` (CDN notices too) with its times, its signed document,
        its checks (outcome, status, hashes, time), deliveries and events, and the hoster's
        figures; signed with ``key`` (``signing.verify`` checks it). Raises UnknownHoster when
        the hotline has no notice of it."""
        with self.engine.connect() as connection:
            notices = connection.execute(select(N).where(N.hoster == hoster).order_by(N.id)).all()
            if not notices:
                raise UnknownHoster(f"no notices to hoster {hoster!r}")
            ids = [notice.id for notice in notices]
            checks = _by_notice(connection.execute(
                select(TakedownCheckRow).where(TakedownCheckRow.notice_id.in_(ids))
                .order_by(TakedownCheckRow.id)))  # fmt: skip
            events = _by_notice(connection.execute(
                select(TakedownEventRow).where(TakedownEventRow.notice_id.in_(ids))
                .order_by(TakedownEventRow.id)))  # fmt: skip
            deliveries = _by_notice(connection.execute(
                select(TakedownDeliveryRow).where(TakedownDeliveryRow.notice_id.in_(ids))
                .order_by(TakedownDeliveryRow.id)))  # fmt: skip
        figures = self.figures("all", hoster=hoster)
        document = {
            "kind": EVIDENCE_KIND,
            "version": 1,
            "hoster": hoster,
            "generated_at": self.clock().isoformat(),
            "definition": DEFINITION,
            "figures": figures[0].as_json() if figures else None,
            "notices": [
                _notice(
                    notice,
                    checks.get(notice.id, []),
                    events.get(notice.id, []),
                    deliveries.get(notice.id, []),
                )
                for notice in notices
            ],
        }
        return signing.sign(document, key)


def _by_notice(rows: Iterable[Any]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(row.notice_id, []).append(row)
    return found


def _notice(notice: Any, checks: list[Any], events: list[Any], deliveries: list[Any]
            ) -> dict[str, Any]:  # fmt: skip
    hours = None
    if notice.verified_at is not None:
        hours = (utc(notice.verified_at) - utc(notice.reported_at)).total_seconds() / 3600
    return {
        "id": notice.id, "kind": notice.kind, "case_id": notice.case_id,
        "parent_id": notice.parent_id, "previous_id": notice.previous_id,
        "report_id": notice.report_id, "country": notice.country, "urls": notice.urls,
        "state": notice.state, "legal_basis": notice.legal_basis, "reference": notice.reference,
        "reported_at": _at(notice.reported_at), "created_at": _at(notice.created_at),
        "sent_at": _at(notice.sent_at), "deadline_at": _at(notice.deadline_at),
        "acknowledged_at": _at(notice.acknowledged_at), "claimed_at": _at(notice.claimed_at),
        "disputed_at": _at(notice.disputed_at), "dispute_reason": notice.dispute_reason,
        "verified_at": _at(notice.verified_at), "withdrawn_at": _at(notice.withdrawn_at),
        "outcome": notice.outcome, "outcome_reason": notice.outcome_reason,
        "outcome_at": _at(notice.outcome_at), "renotices": notice.renotices,
        "escalations": notice.escalations, "hours_to_removal": hours,
        "document": json.loads(notice.document) if notice.document else None,
        "checks": [{"id": check.id, "url": check.url, "at": _at(check.at),
                    "purpose": check.purpose, "outcome": check.outcome, "status": check.status,
                    "detail": check.detail, "hashes": check.hashes} for check in checks],
        "deliveries": [{"id": sent.id, "purpose": sent.purpose, "step": sent.step,
                        "channel": sent.channel, "target": sent.target,
                        "payload_sha256": hashlib.sha256(sent.payload.encode()).hexdigest(),
                        "created_at": _at(sent.created_at), "attempts": sent.attempts,
                        "delivered_at": _at(sent.delivered_at), "last_error": sent.last_error}
                       for sent in deliveries],
        "events": [{"id": event.id, "at": _at(event.at), "kind": event.kind,
                    "actor": event.actor, "detail": event.detail} for event in events],
    }  # fmt: skip


COLUMNS: Final = tuple(field.name for field in fields(Row))


def csv(rows: Iterable[Row]) -> str:
    """The rows as CSV (a header line, then one line a row; ``group`` first): a count the
    public figures suppress as "<10", a missing quantile or share empty."""
    out = io.StringIO()
    writer = csv_module.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    counts = {name for name in COLUMNS if name in _COUNT_COLUMNS}
    for row in rows:
        values = asdict(row)
        writer.writerow([
            ("<10" if name in counts else "") if values[name] is None else values[name]
            for name in COLUMNS
        ])  # fmt: skip
    return out.getvalue()


_COUNT_COLUMNS: Final = frozenset({"notices", "removed", "open_now", "overdue_now", "renotices",
                                   "escalations", "reappeared", "disputes"})  # fmt: skip


def parse_moment(text: str, name: str) -> datetime | None:
    """A period bound from a query string: a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time
    (UTC when it names no zone); "" is None. Raises Invalid naming ``name``."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name}: expected a date (YYYY-MM-DD) or an ISO 8601 time, not {text!r}"
                      ) from None  # fmt: skip
    try:
        return _utc(moment)
    except OverflowError:  # a zone offset that takes the time past year 1 or 9999
        raise Invalid(f"{name}: {text!r} is out of range in UTC (years 1 to 9999)") from None


def whole_month(moment: datetime, up: bool, name: str) -> datetime:
    """The start of ``moment``'s calendar month (UTC), or with ``up`` the start of the next one
    unless ``moment`` is a month's start: the public figures' periods are whole months. Raises
    Invalid naming ``name`` past the calendar's end."""
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    if not up or moment == start:
        return start
    if (moment.year, moment.month) == (9999, 12):
        raise Invalid(f"{name}: {moment.date().isoformat()} is past the last whole month")
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
