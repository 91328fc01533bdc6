"""The public bad-hoster monitor: ``/monitor`` (the public figures per hoster and per country, a
period, the distribution of removal times and the monthly trend as server-drawn SVG charts,
each with a table beside it), ``/monitor.json`` and ``/monitor.csv`` (the same public figures).

No login, no script, no cookie; English and Dutch (``?lang=nl``, else the browser's languages).
The figures are ``takedown.monitor.Monitor.public``: counts under 10 shown as "<10", and a
second count hidden wherever one would follow from a sum shown. A period is whole calendar
months (UTC): ``since`` and ``until`` are months (YYYY-MM) or dates, ``since`` rounded down to
its month's first day, ``until`` up to the next month's, so no two periods differ by less than
a month of notices.

A period's figures are kept for a minute. At most one pass over the notices per period runs at
a time (others asking for the same period wait for it, at most WAITERS in all: each holds a
worker thread, so a burst for one period cannot take them all; 429 past it), at most RUNNING
at once in all, and one client address starts at most COMPUTED_PER_MINUTE of them a minute
(429 past it). The cache keeps KEPT periods, letting the oldest go.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from hashguard.api.errors import counted, retry_header, too_many
from hashguard.api.matching import service_of
from hashguard.api.public_limits import client_of
from hashguard.errors import Invalid
from hashguard.rate_limit import AddressLimit, RateLimited
from hashguard.takedown.model import now
from hashguard.takedown.monitor import (
    BYS,
    DEFINITION,
    SMALL,
    Bin,
    Monitor,
    Point,
    Row,
    csv,
    parse_moment,
    whole_month,
)
from hashguard.web.monitor_words import WORDS
from hashguard.web.pages import HERE, in_language, language_of

SUPPRESSION: Final = (
    f"A count under {SMALL} is null (CSV: <10), and so is a second count wherever one null "
    "count would follow from a sum the figures show (all = the hosters = the countries = the "
    "months; all's removals = the distribution's bins; the hosters in a country = that "
    "country; along a row, notices = removed + open now + withdrawn, withdrawn not shown). "
    f"The median and p90 hours of a group with fewer than {SMALL} removals are null, "
    "its p99 with fewer than 100; a share is null when a count it is made of is under "
    f"{SMALL} or null. Periods are whole calendar months (UTC)."
)
FRESH_SECONDS: Final = 60.0  # how long the public figures of a period are kept
KEPT: Final = 64  # periods kept at most
RUNNING: Final = 2  # passes over the notices at once, all periods together
COMPUTED_PER_MINUTE: Final = 20  # passes one client address may start a minute
WAITERS: Final = 8  # callers waiting for passes under way at once (429 beyond): worker threads
WAIT_SECONDS: Final = 5.0  # the Retry-After of a caller past WAITERS
MAX_BOUND: Final = 40  # characters of a period bound
# The period links: whole months back from this month's start (0: all time).
PERIODS: Final = (("period_3m", 2), ("period_12m", 11), ("period_year", -1), ("period_all", 0))
_MONTH: Final = re.compile(r"\d{4}-\d{2}")

_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Query(max_length=MAX_BOUND)]


@dataclass(frozen=True)
class Period:
    since: datetime | None
    until: datetime | None

    def as_json(self) -> dict[str, str | None]:
        return {"since": _iso(self.since), "until": _iso(self.until)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _bound(text: str, name: str, up: bool) -> datetime | None:
    """A period bound as a whole month (``whole_month``): a month (YYYY-MM), a date or a time."""
    text = text.strip()
    if len(text) > MAX_BOUND:
        raise Invalid(f"{name}: at most {MAX_BOUND} characters")
    moment = parse_moment(text + "-01" if _MONTH.fullmatch(text) else text, name)
    return None if moment is None else whole_month(moment, up, name)


def _period(since: str, until: str) -> Period:
    """The whole months ``since`` and ``until`` name (rounded out). Raises Invalid."""
    return Period(_bound(since, "since", False), _bound(until, "until", True))


def _monitor(request: Request) -> Monitor:
    return Monitor(service_of(request).engine)


Key = tuple[datetime | None, datetime | None]


@dataclass
class _Flight:
    """One pass over the notices for a period under way; who asks meanwhile waits for it."""

    done: threading.Event = field(default_factory=threading.Event)
    figures: dict[str, Any] | None = None


class _Recent:
    """The public figures of the last minute, per period: a busy public page costs one pass
    over the notices a minute and period, not one a visit (the figures say when they were
    computed). One pass per period at a time (the others asking wait for its figures), at most
    ``running`` at once, and each client address starts at most ``per_minute`` a minute."""

    def __init__(self, running: int = RUNNING, per_minute: int = COMPUTED_PER_MINUTE,
                 kept: int = KEPT, waiters: int = WAITERS) -> None:  # fmt: skip
        self.kept = kept
        self.waiters = waiters
        self.waiting = 0  # callers waiting for a pass under way, all periods together
        self.lock = threading.Lock()
        self.found: dict[Key, tuple[float, dict[str, Any]]] = {}
        self.flights: dict[Key, _Flight] = {}
        self.slots = threading.BoundedSemaphore(running)
        self.limit = AddressLimit(per_minute, 60.0)
        self.passes = 0  # passes over the notices made (what the tests count)

    def figures(self, monitor: Monitor, period: Period, client: str | None = None
                ) -> dict[str, Any]:  # fmt: skip
        """The period's figures: kept, being computed (waited for), or computed now. Raises
        RateLimited when ``client`` has started too many passes this minute."""
        key = (period.since, period.until)
        while True:
            with self.lock:
                kept = self.found.get(key)
                if kept is not None and time.monotonic() < kept[0]:
                    return kept[1]
                flight = self.flights.get(key)
                if flight is None:
                    wait, _ = self.limit.reserve(client or "unknown")
                    if wait:
                        raise RateLimited("too many periods' figures asked for from this "
                                          "address: try again later", wait)  # fmt: skip
                    flight = self.flights[key] = _Flight()
                    break
                if self.waiting >= self.waiters:  # each waiter holds a worker thread
                    raise RateLimited("these figures are being computed: try again in a "
                                      "moment", WAIT_SECONDS, "server")  # fmt: skip
                self.waiting += 1
            try:
                flight.done.wait()
            finally:
                with self.lock:
                    self.waiting -= 1
            if flight.figures is not None:
                return flight.figures
            # the pass failed: ask again (this caller may start one)
        try:
            with self.slots:
                found = monitor.overview(period.since, period.until, public=True)
                self.passes += 1
            figures = {"generated_at": now(), "all": found.all, "hosters": found.hosters,
                       "countries": found.countries, "distribution": found.distribution,
                       "trend": found.trend}  # fmt: skip
            with self.lock:
                self.found.pop(key, None)
                while len(self.found) >= self.kept:  # the oldest goes (insertion order)
                    del self.found[next(iter(self.found))]
                self.found[key] = (time.monotonic() + FRESH_SECONDS, figures)
            flight.figures = figures
            return figures
        finally:
            with self.lock:
                del self.flights[key]
            flight.done.set()


def _recent(request: Request) -> _Recent:
    state = request.app.state
    with _STATE_LOCK:
        recent = getattr(state, "monitor_recent", None)
        if recent is None:
            recent = state.monitor_recent = _Recent()
    return recent


_STATE_LOCK: Final = threading.Lock()


def _figures(request: Request, period: Period) -> dict[str, Any]:
    """Everything the page and the JSON show, from one pass over the notices (or the last
    minute's). Raises RateLimited."""
    result: dict[str, Any] = _recent(request).figures(_monitor(request), period,
                                                       client_of(request))  # fmt: skip
    return result


# --- the page --------------------------------------------------------------------------------


def _count(value: int | None, words: dict[str, str]) -> str:
    return words["suppressed"] if value is None else f"{value:,}"


def _hours(value: float | None, words: dict[str, str]) -> str:
    return words["missing"] if value is None else f"{value:,.1f}"


def _share(value: float | None, words: dict[str, str]) -> str:
    return words["missing"] if value is None else f"{value:.0%}"


def _cells(row: Row, words: dict[str, str]) -> list[str]:
    return [_count(row.notices, words), _count(row.removed, words),
            _hours(row.median_hours, words), _hours(row.p90_hours, words),
            _hours(row.p99_hours, words), _share(row.within_24h, words),
            _count(row.open_now, words), _count(row.overdue_now, words),
            _count(row.renotices, words), _count(row.escalations, words),
            _share(row.reappearance_rate, words), _count(row.disputes, words)]  # fmt: skip


COLUMNS: Final = ("notices", "removed", "median", "p90", "p99", "within", "open", "overdue",
                  "renotices", "escalations", "reappearance", "disputes")  # fmt: skip

# The charts' drawing area (SVG user units; the SVG scales to the page's width).
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 640, 280, 56, 24, 232


def _ticks(top: float) -> list[tuple[float, str]]:
    """Four gridlines from 0 to ``top``, at their heights."""
    return [(BOTTOM - (BOTTOM - TOP) * n / 4, f"{top * n / 4:,.0f}") for n in range(5)]


def _bars(bins: list[Bin], words: dict[str, str]) -> dict[str, Any]:
    highest = max([b.removals or 0 for b in bins] + [SMALL])
    slot = (WIDTH - LEFT - 8) / len(bins)
    bars = []
    for n, found in enumerate(bins):
        height = 0.0 if found.removals is None else (BOTTOM - TOP) * found.removals / highest
        x = LEFT + n * slot + slot * 0.15
        bars.append({"x": round(x, 1), "width": round(slot * 0.7, 1),
                     "y": round(BOTTOM - height, 1), "height": round(height, 1),
                     "middle": round(x + slot * 0.35, 1), "label": found.label,
                     "value": _count(found.removals, words),
                     "suppressed": found.removals is None})  # fmt: skip
    return {"bars": bars, "ticks": _ticks(highest)}


def _lines(points: list[Point], words: dict[str, str]) -> dict[str, Any]:
    values = [v for p in points for v in (p.median_hours, p.p90_hours) if v is not None]
    highest = max([*values, 24.0])
    step = (WIDTH - LEFT - 72) / max(len(points) - 1, 1)

    def series(name: str) -> dict[str, Any]:
        dots: list[dict[str, Any]] = []
        runs: list[list[str]] = []
        run: list[str] = []
        for n, point in enumerate(points):
            value = getattr(point, name)
            if value is None:  # suppressed or none: a gap in the line
                runs.append(run)
                run = []
                continue
            x = LEFT + 32 + n * step
            y = BOTTOM - (BOTTOM - TOP) * value / highest
            dots.append({"x": round(x, 1), "y": round(y, 1),
                         "title": f"{point.period}: {_hours(value, words)}"})  # fmt: skip
            run.append(f"{x:.1f},{y:.1f}")
        runs.append(run)
        return {"dots": dots, "paths": [" ".join(r) for r in runs if len(r) > 1]}

    months = [{"x": round(LEFT + 32 + n * step, 1), "label": p.period}
              for n, p in enumerate(points)]  # fmt: skip
    every = max(1, len(months) // 6)  # at most about six month labels on the axis
    return {"median": series("median_hours"), "p90": series("p90_hours"),
            "months": months[::every], "ticks": _ticks(highest)}  # fmt: skip


def _months_back(months: int) -> str:
    """The month (YYYY-MM) ``months`` before this one; -1: January of this year."""
    today = now().date()
    if months < 0:
        return f"{today.year:04d}-01"
    index = today.year * 12 + today.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _links(language: str) -> list[dict[str, Any]]:
    links = []
    for name, months in PERIODS:
        since = _months_back(months) if months else ""
        query = urlencode({"since": since, "lang": language} if since else {"lang": language})
        links.append({"name": name, "href": "/monitor?" + query, "since": since})
    return links


def _month(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.year:04d}-{moment.month:02d}"


def _render(request: Request, language: str, code: int, period: tuple[str, str] = ("", ""),
            headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:  # fmt: skip
    words = WORDS[language]
    other = "nl" if language == "en" else "en"
    kept = [(name, value) for name, value in zip(("since", "until"), period, strict=True) if value]
    rendered = _PAGES.get_template("monitor/page.html").render(
        language=language, w=words, other=other, here=request.url.path,
        switch="/monitor?" + urlencode([*kept, ("lang", other)]),
        exit_url=service_of(request).settings.victims_exit_url, columns=COLUMNS, **values,
    )  # fmt: skip
    return HTMLResponse(rendered, code, headers={**in_language(language),
                                                 **(headers or {})})  # fmt: skip


@router.get("/monitor")
async def monitor_page(request: Request, since: str = "", until: str = "",
                       lang: str = "") -> HTMLResponse:  # fmt: skip
    """The public figures for a period of whole months (``since``/``until``: months, dates or
    ISO times, rounded out to whole months)."""
    language = language_of(lang[:8], request.headers.get("accept-language", ""))
    words = WORDS[language]
    try:
        period = _period(since, until)
    except Invalid as error:
        return _render(request, language, 400, error=words["bad_period"].format(error=error),
                       links=_links(language), since=since[:MAX_BOUND],
                       until=until[:MAX_BOUND])  # fmt: skip
    asked = (_month(period.since), _month(period.until))
    try:
        found = await run_in_threadpool(_figures, request, period)
    except RateLimited as error:
        counted(request, error)
        return _render(request, language, 429, asked, retry_header(error.retry_after),
                       error=words["busy"], links=_links(language), since=asked[0],
                       until=asked[1])  # fmt: skip
    query = urlencode([(name, value) for name, value in zip(("since", "until"), asked,
                                                            strict=True) if value])  # fmt: skip
    return _render(
        request, language, 200, asked, links=_links(language), since=asked[0], until=asked[1],
        shown_since=period.since.date().isoformat() if period.since else words["beginning"],
        shown_until=period.until.date().isoformat() if period.until else words["today"],
        computed=found["generated_at"].strftime("%Y-%m-%d %H:%M"),
        overall=_cells(found["all"], words) if found["all"] else None,
        hosters=[(row.group, _cells(row, words)) for row in found["hosters"]],
        countries=[(row.group, _cells(row, words)) for row in found["countries"]],
        bins=found["distribution"], bars=_bars(found["distribution"], words),
        trend=found["trend"], lines=_lines(found["trend"], words),
        count=lambda value: _count(value, words), hours=lambda value: _hours(value, words),
        share=lambda value: _share(value, words), query=query,
        width=WIDTH, height=HEIGHT, left=LEFT, top=TOP, bottom=BOTTOM,
    )  # fmt: skip


# --- the exports -----------------------------------------------------------------------------


def _refusal(error: Invalid) -> JSONResponse:
    return JSONResponse({"error": {"status": 400, "code": "bad_request", "message": str(error)}},
                        400)  # fmt: skip


async def _exported(request: Request, period: Period) -> dict[str, Any] | Response:
    """The period's figures, or 429 for an address past its limit."""
    try:
        found: dict[str, Any] = await run_in_threadpool(_figures, request, period)
    except RateLimited as error:
        return too_many(request, error)
    return found


@router.get("/monitor.json")
async def monitor_json(request: Request, since: Text = "", until: Text = "") -> Response:
    """The public figures as JSON: the period (whole months), the definitions, all, per hoster,
    per country, the distribution and the trend."""
    try:
        period = _period(since, until)
    except Invalid as error:
        return _refusal(error)
    found = await _exported(request, period)
    if isinstance(found, Response):
        return found
    return JSONResponse({
        "generated_at": found["generated_at"].isoformat(), "period": period.as_json(),
        "definition": DEFINITION, "suppression": SUPPRESSION,
        "all": found["all"].as_json() if found["all"] else None,
        "hosters": [row.as_json() for row in found["hosters"]],
        "countries": [row.as_json() for row in found["countries"]],
        "distribution": [b.as_json() for b in found["distribution"]],
        "trend": [p.as_json() for p in found["trend"]],
    })  # fmt: skip


@router.get("/monitor.csv")
async def monitor_csv(request: Request, since: Text = "", until: Text = "",
                      by: Annotated[str, Query(max_length=16)] = "hoster") -> Response:  # fmt: skip
    """The public figures as CSV, a line per hoster (``by=country``: per country; ``all``)."""
    try:
        period = _period(since, until)
        if by not in BYS:
            raise Invalid(f"by: expected one of {', '.join(BYS)}, not {by!r}")
    except Invalid as error:
        return _refusal(error)
    found = await _exported(request, period)
    if isinstance(found, Response):
        return found
    rows = {"hoster": found["hosters"], "country": found["countries"],
            "all": [found["all"]] if found["all"] else []}[by]  # fmt: skip
    named = {"Content-Disposition": f'attachment; filename="monitor-{by}.csv"'}
    return Response(csv(rows), media_type="text/csv; charset=utf-8",
                    headers=named)  # fmt: skip
