"""The public bad-hoster monitor: ``/monitor`` (the public figures per hoster and per country, a
period, the distribution of removal times and the monthly trend as server-drawn SVG charts,
each with a table beside it), ``/monitor.json`` and ``/monitor.csv`` (the same public figures).

No login, no script, no cookie; English and Dutch (``?lang=nl``, else the browser's languages).
The figures are ``takedown.monitor.Monitor.public``: counts under 10 shown as "<10".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from hashguard.api.matching import service_of
from hashguard.errors import Invalid
from hashguard.takedown.model import now
from hashguard.takedown.monitor import (
    DEFINITION,
    SMALL,
    Bin,
    Monitor,
    Point,
    Row,
    csv,
    parse_moment,
)
from hashguard.web.monitor_words import WORDS
from hashguard.web.pages import HERE, language_of

HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Language",
}
SUPPRESSION: Final = (
    f"A count under {SMALL} is null (CSV: <10); the hours of a group with fewer than {SMALL} "
    f"removals are null; a share is null when a count it is made of is under {SMALL}."
)
PERIODS: Final = (("period_30", 30), ("period_90", 90), ("period_year", 365), ("period_all", 0))

_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Query(max_length=40)]


@dataclass(frozen=True)
class Period:
    since: datetime | None
    until: datetime | None

    def as_json(self) -> dict[str, str | None]:
        return {"since": _iso(self.since), "until": _iso(self.until)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _period(since: str, until: str) -> Period:
    return Period(parse_moment(since, "since"), parse_moment(until, "until"))


def _monitor(request: Request) -> Monitor:
    return Monitor(service_of(request).engine)


def _figures(monitor: Monitor, period: Period) -> dict[str, Any]:
    """Everything the page and the JSON show, computed once."""
    since, until = period.since, period.until
    (everything,) = monitor.public("all", since, until) or [None]
    return {
        "all": everything,
        "hosters": monitor.public("hoster", since, until),
        "countries": monitor.public("country", since, until),
        "distribution": monitor.distribution(since, until, public=True),
        "trend": monitor.trend("month", since, until, public=True),
    }


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
    step = (WIDTH - LEFT - 24) / max(len(points) - 1, 1)

    def series(name: str) -> dict[str, Any]:
        dots, runs, run = [], [], []
        for n, point in enumerate(points):
            value = getattr(point, name)
            if value is None:  # suppressed or none: a gap in the line
                runs.append(run)
                run = []
                continue
            x = LEFT + 12 + n * step
            y = BOTTOM - (BOTTOM - TOP) * value / highest
            dots.append({"x": round(x, 1), "y": round(y, 1),
                         "title": f"{point.period}: {_hours(value, words)}"})  # fmt: skip
            run.append(f"{x:.1f},{y:.1f}")
        runs.append(run)
        return {"dots": dots, "paths": [" ".join(r) for r in runs if len(r) > 1]}

    months = [{"x": round(LEFT + 12 + n * step, 1), "label": p.period}
              for n, p in enumerate(points)]  # fmt: skip
    every = max(1, len(months) // 6)  # at most about six month labels on the axis
    return {"median": series("median_hours"), "p90": series("p90_hours"),
            "months": months[::every], "ticks": _ticks(highest)}  # fmt: skip


def _links(language: str) -> list[dict[str, Any]]:
    today = now().date()
    links = []
    for name, days in PERIODS:
        since = (today - timedelta(days=days)).isoformat() if days else ""
        query = f"?since={since}&lang={language}" if since else f"?lang={language}"
        links.append({"name": name, "href": "/monitor" + query, "since": since})
    return links


def _render(request: Request, language: str, code: int, **values: Any) -> HTMLResponse:
    words = WORDS[language]
    rendered = _PAGES.get_template("monitor/page.html").render(
        language=language, w=words, other="nl" if language == "en" else "en",
        here=request.url.path, exit_url=service_of(request).settings.victims_exit_url,
        columns=COLUMNS, **values,
    )  # fmt: skip
    return HTMLResponse(rendered, code, headers={**HEADERS, "Content-Language": language})


@router.get("/monitor")
async def monitor_page(request: Request, since: Text = "", until: Text = "",
                       lang: Annotated[str, Query(max_length=8)] = "") -> HTMLResponse:  # fmt: skip
    """The public figures for a period (``since``/``until``: dates or ISO times)."""
    language = language_of(lang, request.headers.get("accept-language", ""))
    words = WORDS[language]
    try:
        period = _period(since, until)
    except Invalid as error:
        return _render(request, language, 400, error=words["bad_period"].format(error=error),
                       links=_links(language), since=since[:40], until=until[:40])  # fmt: skip
    found = await run_in_threadpool(_figures, _monitor(request), period)
    query = "&".join(f"{name}={value}" for name, value in (("since", since), ("until", until))
                     if value)  # fmt: skip
    return _render(
        request, language, 200, links=_links(language), since=since, until=until,
        shown_since=period.since.date().isoformat() if period.since else words["beginning"],
        shown_until=period.until.date().isoformat() if period.until else words["today"],
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
                        400, headers=HEADERS)  # fmt: skip


@router.get("/monitor.json")
async def monitor_json(request: Request, since: Text = "", until: Text = "") -> Response:
    """The public figures as JSON: the period, the definitions, all, per hoster, per country,
    the distribution and the trend."""
    try:
        period = _period(since, until)
    except Invalid as error:
        return _refusal(error)
    found = await run_in_threadpool(_figures, _monitor(request), period)
    return JSONResponse({
        "generated_at": now().isoformat(), "period": period.as_json(),
        "definition": DEFINITION, "suppression": SUPPRESSION,
        "all": found["all"].as_json() if found["all"] else None,
        "hosters": [row.as_json() for row in found["hosters"]],
        "countries": [row.as_json() for row in found["countries"]],
        "distribution": [b.as_json() for b in found["distribution"]],
        "trend": [p.as_json() for p in found["trend"]],
    }, headers=HEADERS)  # fmt: skip


@router.get("/monitor.csv")
async def monitor_csv(request: Request, since: Text = "", until: Text = "",
                      by: Annotated[str, Query(max_length=16)] = "hoster") -> Response:  # fmt: skip
    """The public figures as CSV, a line per hoster (``by=country``: per country; ``all``)."""
    try:
        period = _period(since, until)
        rows = await run_in_threadpool(_monitor(request).public, by, period.since, period.until)
    except Invalid as error:
        return _refusal(error)
    named = {"Content-Disposition": f'attachment; filename="monitor-{by}.csv"'}
    return Response(csv(rows), media_type="text/csv; charset=utf-8",
                    headers={**HEADERS, **named})  # fmt: skip
