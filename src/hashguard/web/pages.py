"""Rendering the pages: the templates, and the words a reviewer reads for states, distances and
times (never the stored values). Every page's security headers come from ``web.headers``."""

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hashguard.api.errors import counted, retry_header
from hashguard.errors import MAX_ID
from hashguard.rate_limit import RateLimited
from hashguard.review.model import ActionKind, State
from hashguard.signals import registry
from hashguard.signals.base import IndexKind, InvalidSignalValue
from hashguard.signals.registry import UnknownSignal

HERE: Final = Path(__file__).parent
LANGUAGES: Final = ("en", "nl")  # the public pages' languages (victims, report)

STATE_WORDS: Final = {
    State.PENDING: "Waiting",
    State.IN_REVIEW: "In review",
    State.CONFIRMED: "Confirmed",
    State.FALSE_POSITIVE: "False positive",
    State.REPORTED: "Reported",
    State.CLOSED: "Closed",
}
ACTION_WORDS: Final = {
    ActionKind.QUARANTINE: "Quarantine",
    ActionKind.REMOVE: "Remove",
    ActionKind.DISABLE: "Disable",
    ActionKind.SUSPEND: "Suspend",
}
ACTION_CONSEQUENCES: Final = {
    ActionKind.QUARANTINE: "The service is asked to hold the item back until a reviewer decides.",
    ActionKind.REMOVE: "The service is asked to remove the item. The uploader is sent a "
                       "statement of reasons with a link to complain.",
    ActionKind.DISABLE: "The service is asked to disable access to the item. The uploader is "
                        "sent a statement of reasons with a link to complain.",
    ActionKind.SUSPEND: "The service is asked to suspend the uploader's account. The uploader "
                        "is sent a statement of reasons with a link to complain.",
}  # fmt: skip
RECIPIENT_WORDS: Final = {"eu-centre": "EU Centre", "ncmec": "NCMEC CyberTipline"}


def numbered(ident: int) -> bool:
    """Whether ``ident`` from a desk path can be a record's number (the API's bounds); the
    desk answers its 404 page for any other."""
    return 1 <= ident <= MAX_ID


def state_words(state: State | str) -> str:
    """A detection's state as a reviewer reads it: "In review", "False positive"."""
    return STATE_WORDS.get(State(state), str(state))


def distance_words(signal: str, distance: float | None, threshold: float | str | None) -> str:
    """How close a match is, in the signal's terms: "12 of 256 bits (threshold 31)",
    "identical" for a digest, for a video the share of frames found on both sides."""
    if distance is None:
        return "-"
    try:
        kind = registry.get(signal)
    except UnknownSignal:
        kind = None
    if kind is not None and kind.exact:
        return "identical" if distance == 0 else f"{distance:g} (not identical)"
    limit = f" (threshold {threshold:g})" if isinstance(threshold, int | float) else ""
    if kind is not None and kind.index is IndexKind.HAMMING:
        return f"{distance:g} of 256 bits{limit}"
    if kind is not None and kind.index is IndexKind.FRAMES:
        allowed = f" ({100 - threshold:g} % needed)" if isinstance(threshold, int | float) else ""
        return f"{100 - distance:.0f} % of the frames found on both sides{allowed}"
    return f"{distance:g}{limit}"


def measure_words(match: Mapping[str, Any]) -> list[str]:
    """What was measured of a match's two hashes, a line each: "listed: stability 87",
    "query: quality 100, stability 92"; none when nothing was (hashes given as text)."""
    lines = []  # a measure and its number kept on one line (no-break spaces)
    if match.get("stability") is not None:
        lines.append(f"listed: stability\u00a0{match['stability']}")
    query = [f"{name}\u00a0{match[key]}" for name, key in
             (("quality", "query_quality"), ("stability", "query_stability"))
             if match.get(key) is not None]  # fmt: skip
    if query:
        lines.append("query: " + ", ".join(query))
    return lines


def value_words(signal: str, value: str) -> str:
    """A listed value as a page shows it: the hash, or for a video (kilobytes of vPDQ) how many
    frames it has."""
    try:
        kind = registry.get(signal)
    except UnknownSignal:
        return value
    if kind.index is not IndexKind.FRAMES:
        return value
    try:
        frames = len(kind.parse(value).frames)
    except InvalidSignalValue:
        return value[:64] + "..."
    return f"a video of {frames} frame{'s' if frames != 1 else ''}"


def when(moment: datetime | str | None) -> str:
    """A time as "2 Dec 2026, 14:05 UTC"."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, roughly: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


def hours(value: float | None) -> str:
    """A span of hours as people read it: "-", "0.5 h", "30.0 h", "4.2 days" (from 72 h)."""
    if value is None:
        return "-"
    if value < 72:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
_PAGES.filters.update(state_words=state_words, when=when, ago=ago, hours=hours)
_PAGES.globals.update(
    distance_words=distance_words,
    measure_words=measure_words,
    value_words=value_words,
    ACTION_WORDS=ACTION_WORDS,
    RECIPIENT_WORDS=RECIPIENT_WORDS,
    ACTION_CONSEQUENCES=ACTION_CONSEQUENCES,
)


def wait_words(seconds: float) -> str:
    """How long to wait, as people say it: "in a minute", "in about 15 minutes"."""
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "in a minute"
    return f"in about {minutes} minutes"


def limited(request: Request, refusal: RateLimited, name: str = "limited.html",
            **values: Any) -> HTMLResponse:  # fmt: skip
    """The calm page of a request past a rate limit (``name``, the limited page by default):
    429 with Retry-After, counted in /metrics."""
    counted(request, refusal)
    shown = page(name, 429, wait=wait_words(refusal.retry_after), **values)
    shown.headers.update(retry_header(refusal.retry_after))
    return shown


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Template ``name`` rendered with ``values``."""
    return HTMLResponse(_PAGES.get_template(name).render(**values), status)


def in_language(language: str) -> dict[str, str]:
    """The headers of a public page in ``language``, chosen by the browser's languages."""
    return {"Content-Language": language, "Vary": "Accept-Language"}


def language_of(asked: str, accept_language: str) -> str:
    """A public page's language: ``asked`` (``?lang=``) if we have it, else the first of the
    browser's languages we have (by their ``q``), else English."""
    if asked in LANGUAGES:
        return asked
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, parameters = part.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, position, tag.strip().lower().split("-")[0]))
    for weight, _, language in sorted(ranked):
        if weight < 0 and language in LANGUAGES:
            return language
    return "en"
