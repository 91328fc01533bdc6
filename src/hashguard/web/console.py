"""The operator console (``/``): after signing in with a key (the desk's sign-in and sessions),
what each role needs at a glance: the lists (versions, active entries by signal, latest
changes), the exchanges that fill them (last fetch, lag, failures, quarantined records), the
index (size, versions, readiness), today's matches and the review queue (with
links into the desk), and the match tester (``/console/tester``: an uploaded image, hashed in
memory and never stored, or a pasted hash, matched and explained; recorded in no match log, so
refused to a key bound to a service, which matches through the API). Which parts a key sees:
``console_parts``.

The tester's form is multipart (it carries a file), parsed in memory (``api.uploads``) from a
body the service's upload limit bounds; a body over it gets a page saying so (``too_large``).
"""

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, visible
from hashguard.api.errors import ApiError, retry_header
from hashguard.api.limits import BodyTooLarge
from hashguard.api.matching import service_of
from hashguard.api.service import Service
from hashguard.api.uploads import read_upload
from hashguard.media.budget import DecodeBusy
from hashguard.review.model import ScanningForbidden
from hashguard.store.api_keys import ApiKey
from hashguard.web import console_parts, match_tester, sessions
from hashguard.web.match_tester import ServiceKey, Untestable
from hashguard.web.pages import page

router = APIRouter(include_in_schema=False)
TESTER = "/console/tester"


def _frame(key: ApiKey, csrf: str, **values: Any) -> dict[str, Any]:
    """What every console page gives the frame: who is signed in, the desks it may open."""
    return {"reviewer": actor(key), "csrf": csrf, "desks": sessions.desks(key),
            "product": "console", "role": key.role.value, "scope": key.lists,
            "signal_words": match_tester.signal_words,
            "span_words": console_parts.span_words, **values}  # fmt: skip


async def _opened(request: Request) -> tuple[ApiKey, str] | Response:
    """The signed-in key and its CSRF token; else the sign-in page (back here after) or the
    page saying which desks the key may open."""
    found = await sessions.caller(request, sessions.CONSOLE_ROLES)
    if isinstance(found, RedirectResponse):
        return RedirectResponse(f"/desk/login?then={request.url.path}", 303)
    return found


@router.get("/")
async def home(request: Request) -> Response:
    """The console: each part the key may see."""
    found = await _opened(request)
    if isinstance(found, Response):
        return found
    key, csrf = found
    shown = console_parts.parts(request.app, key)
    return await run_in_threadpool(_home, service_of(request), key, csrf, shown)


def _home(service: Service, key: ApiKey, csrf: str, shown: frozenset[str]) -> HTMLResponse:
    now = datetime.now(UTC)
    held = console_parts.visible_lists(service, key)
    values: dict[str, Any] = {"shown": shown, "readiness": service.readiness()}
    if "lists" in shown:
        values["lists"] = console_parts.list_views(service, held, now)
    if "exchanges" in shown:
        values["exchanges"] = console_parts.exchange_views(service, key, now)
    if "index" in shown:
        values["index"] = console_parts.index_view(service, key, held)
    if "matches" in shown:
        values["matches"] = console_parts.matches_view(service, key, now)
    if "queue" in shown:
        desk = key.role in sessions.REVIEW_ROLES
        values["queue"] = console_parts.queue_view(service, key, desk)
    if "tester" in shown:
        values["signals"] = console_parts.signal_choices()
        values["limit_mb"] = service.settings.max_upload_bytes // (1024 * 1024)
    return page("console/home.html", **_frame(key, csrf, now=now, **values))


@router.get(TESTER)
async def tester(request: Request) -> Response:
    found = await _opened(request)
    if isinstance(found, Response):
        return found
    key, csrf = found
    return _tester_page(request, key, csrf)


def _tester_page(
    request: Request,
    key: ApiKey,
    csrf: str,
    status: int = 200,
    error: str = "",
    tested: match_tester.Tested | None = None,
    **chosen: str,
) -> HTMLResponse:
    if "tester" not in console_parts.parts(request.app, key):
        try:
            match_tester.check_tester_key(key)
        except match_tester.ServiceKey as refused:
            return page("console/tester.html", 403,
                        **_frame(key, csrf, allowed=False, error=str(refused)))  # fmt: skip
        return page("console/tester.html", 403, **_frame(key, csrf, allowed=False,
                    error=f"A {key.role.value} key may not match: the tester is for the roles "
                          "that may (matcher, admin)."))  # fmt: skip
    return page("console/tester.html", status, **_frame(
        key, csrf, allowed=True, error=error, tested=tested,
        signals=console_parts.signal_choices(), chosen=chosen,
        limit_mb=service_of(request).settings.max_upload_bytes // (1024 * 1024),
    ))  # fmt: skip


@router.post(TESTER)
async def test(request: Request) -> Response:
    """Test an uploaded file or a pasted hash against the key's lists; nothing is kept."""
    found = await _opened(request)
    if isinstance(found, Response):
        return found
    key, csrf = found
    if "tester" not in console_parts.parts(request.app, key):
        return _tester_page(request, key, csrf)
    try:
        upload = await read_upload(request)
    except BodyTooLarge:  # a body of no declared length, grown past the limit
        return too_large(service_of(request).settings.max_upload_bytes)
    except ApiError as error:
        return _tester_page(request, key, csrf, 400, f"The form could not be read: {error.message}")
    fields = upload.fields
    if not secrets.compare_digest(fields.get("csrf", ""), csrf):
        return _tester_page(request, key, csrf, 403, "The form is stale: reload the page.")
    service = service_of(request)
    matcher, withheld = service.matcher, service.withheld()
    if withheld is not None or matcher is None:
        reason = withheld or "the index is loading"
        return _tester_page(request, key, csrf, 503, f"Not now: {reason}.")
    lists = visible(key, matcher.versions())
    signal, pasted = fields.get("signal", ""), fields.get("hash", "")
    data = upload.files.get("file", b"")
    if len(data) > service.settings.max_upload_bytes:  # the body's limit leaves room for a hash
        return too_large(service.settings.max_upload_bytes)
    try:
        if fields.get("what") == "hash":
            query = match_tester.pasted_query(signal, pasted)
            given, unreadable = f"a pasted {match_tester.signal_words(signal)} hash", ""
        else:
            query, unreadable = await match_tester.upload_query(service, matcher, data)
            given = match_tester.described(data)
        tested = await run_in_threadpool(
            match_tester.run_test, service, matcher, key, query, lists, given, unreadable
        )
    except Untestable as error:
        return _tester_page(request, key, csrf, 400, str(error), signal=signal, hash=pasted)
    except DecodeBusy as busy:  # Retry-After, as the API's media routes say it
        busy_page = _tester_page(request, key, csrf, 503, f"Not now: {busy}.", signal=signal,
                                 hash=pasted)  # fmt: skip
        busy_page.headers.update(retry_header(busy.retry_after))
        return busy_page
    except (ServiceKey, ScanningForbidden) as refused:
        return _tester_page(request, key, csrf, 403, str(refused), signal=signal, hash=pasted)
    return _tester_page(request, key, csrf, tested=tested, signal=signal, hash=pasted)


def too_large(limit: int) -> Response:
    """The answer to a tester's form over the body limit: a page saying so."""
    megabytes = max(1, limit // (1024 * 1024))
    return page("console/too_large.html", 413, limit_mb=megabytes)
