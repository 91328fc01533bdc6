"""The review desk (``/desk``) and the users' complaint page (``/complaints/{token}``).

Reviewers sign in with their reviewer key (``sessions``). Content is fetched from the service's
content URL when the reviewer opens an item, passed through (images, and videos a browser
plays; never stored, never cached) and shown blurred and grey until revealed; each viewing is
audited. When the content
cannot be fetched, the answer says why, and the page shows that in place of the image.
What reviewers post (decisions, actions, reports, reinstatements) is in ``forms``.
"""

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard import errors
from hashguard.api.auth import actor
from hashguard.api.matching import service_of
from hashguard.api.public_limits import guarded, limits_of
from hashguard.api.service import Service
from hashguard.media.errors import MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.net.fetch import FetchRefused, UrlFetcher
from hashguard.rate_limit import RateLimited
from hashguard.redress import notices
from hashguard.review.model import OPEN, NotFound, ReviewError
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey
from hashguard.web import forms, sessions
from hashguard.web.form_bodies import FormRoute
from hashguard.web.pages import HERE, limited, numbered, page
from hashguard.web.views import QueueFilter, detection_page, queue_page

router = APIRouter(include_in_schema=False, route_class=FormRoute)
router.include_router(forms.router)
_STATIC: Final = {"desk.css": "text/css", "desk.js": "text/javascript", "console.css": "text/css"}


@router.get("/desk/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        return Response("no such file", 404)
    return Response((HERE / "static" / name).read_bytes(), media_type=_STATIC[name])


@router.get("/desk/login")
async def login_page(then: Annotated[str, Query(max_length=100)] = "") -> HTMLResponse:
    """The sign-in page; ``then``: the desk to open once signed in (``/`` for the console)."""
    return page("login.html", then=then)


@router.post("/desk/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=200)],
    then: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    try:
        return await sessions.sign_in(request, key.strip(), then)
    except errors.NotFound:
        return page("login.html", 403, then=then,
                    error="That is not a live key of a role that may sign in here.")  # fmt: skip
    except RateLimited as error:
        return limited(request, error, "login.html", then=then,
                       error=sessions.refused_words(error))  # fmt: skip


@router.post("/desk/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    caller = await sessions.form_caller(request, csrf, sessions.DESK_ROLES)
    if not isinstance(caller, Response):
        sessions.sign_out(request)
    answer = RedirectResponse("/desk/login", 303)
    answer.delete_cookie(sessions.COOKIE, **sessions.cookie_flags(service_of(request)))
    return answer


@router.get("/desk")
async def queue(
    request: Request,
    state: Annotated[str, Query(max_length=32)] = "open",
    list_name: Annotated[str, Query(alias="list", max_length=100)] = "",
    service: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The queue, filtered by state (open by default), list and service; counts per state."""
    found = await sessions.caller(request, sessions.REVIEW_ROLES)
    if isinstance(found, Response):
        return found
    key, csrf = found
    chosen = QueueFilter(state or "open", list_name, service)
    return await run_in_threadpool(queue_page, service_of(request), key, csrf, chosen)


@router.get("/desk/detections/{ident}")
async def detection(request: Request, ident: int) -> Response:
    found = await sessions.caller(request, sessions.REVIEW_ROLES)
    if isinstance(found, Response):
        return found
    key, csrf = found
    return await run_in_threadpool(_opened, service_of(request), key, csrf, ident)


def _opened(service: Service, key: ApiKey, csrf: str, ident: int) -> HTMLResponse:
    """The detection's page; opening an open detection claims it (pending -> in review)."""
    if not numbered(ident):
        return not_found(key, csrf, NotFound(f"no detection {ident}"))
    try:
        if service.review.visible(ident, key.lists).state in OPEN:
            service.review.claim(ident, actor(key))
        return detection_page(service, key, csrf, ident)
    except NotFound as error:
        return not_found(key, csrf, error)


def not_found(key: ApiKey, csrf: str, error: ReviewError) -> HTMLResponse:
    return page("gone.html", 404, error=str(error), reviewer=actor(key), csrf=csrf)


@router.get("/desk/detections/{ident}/content")
async def content(request: Request, ident: int) -> Response:
    """The item, fetched from its service now, passed through if it is an image or a video a
    browser can play; audited. Otherwise a plain-text answer saying why, which the page shows in
    the item's place."""
    found_session = await sessions.session(request)
    if found_session is None:
        return refusal("Sign in again to see the item.", 401)
    key, _ = found_session
    service = service_of(request)
    if not numbered(ident):
        return refusal("There is no such detection (it may have been purged).", 404)
    try:
        found = await run_in_threadpool(service.review.visible, ident, key.lists)
        checked = await run_in_threadpool(service.review.services.get, found.service)
    except NotFound:
        return refusal("There is no such detection (it may have been purged).", 404)
    location = checked.content_location(found.content_ref)
    if not location:
        return refusal(f"The service {checked.name} gives no content URL.", 404)
    host = urlsplit(checked.content_url).hostname or ""  # the service's host, fixed at creation
    fetcher = UrlFetcher([host], service.settings.fetch_networks, service.settings.fetch_timeout,
                         service.settings.max_upload_bytes)  # fmt: skip
    return await pass_through(fetcher, location, "The service's content store",
                              partial(_audit_view, service, key, ident))  # fmt: skip


async def pass_through(
    fetcher: UrlFetcher,
    location: str,
    source: str,
    viewed: Callable[[], None],
    withheld: Callable[[bytes], Awaitable[str]] | None = None,
    gone: str = "",
) -> Response:
    """``location`` fetched now through ``fetcher`` and passed through (never stored, never
    cached) if it is an image or a video a browser plays, once ``viewed()`` has recorded the
    viewing. Otherwise a plain-text answer saying why, which the desk's script shows in the
    item's place: ``source`` names where it comes from ("The URL"), ``gone`` follows an error
    status, and ``await withheld(body)`` says why fetched content may not be shown ("": it may)."""
    try:
        fetched = await run_in_threadpool(fetcher.fetch, location)
        kind = sniff(fetched.body[:SNIFF_BYTES])
    except FetchRefused as error:
        if error.status is not None:
            return refusal(f"{source} answered {error.status}{gone}.", 502)
        return refusal(f"{source} could not be reached: {error}.", 502)
    except MediaError as error:
        return refusal(f"{source} sent no readable image: {error}.", 502)
    if kind.kind is MediaKind.IMAGE:
        media_type = f"image/{kind.name}"
    elif kind.kind is MediaKind.VIDEO and kind.name in _PLAYABLE:
        media_type = _PLAYABLE[kind.name]
    elif kind.kind is MediaKind.VIDEO:
        return refusal(f"The item is a video in a format browsers cannot play ({kind.name}).", 415)
    else:
        return refusal(f"The item is {kind.kind.value}: only images and videos are shown.", 415)
    why = "" if withheld is None else await withheld(fetched.body)
    if why:
        return refusal(why, 409)
    await run_in_threadpool(viewed)
    return Response(fetched.body, media_type=media_type)


# Videos a browser plays, by the container sniffed (Matroska as WebM, its common subset).
_PLAYABLE: Final = {"mp4": "video/mp4", "matroska": "video/webm", "ogg": "video/ogg"}


def refusal(reason: str, status: int) -> Response:
    """The plain-text answer of a content route that shows no content: ``reason``."""
    return Response(reason, status, media_type="text/plain")


def _audit_view(service: Service, key: ApiKey, ident: int) -> None:
    with service.engine.begin() as connection:
        audit.append(connection, actor(key), "detection.view", f"detection:{ident}")


# --- the user's complaint page ----------------------------------------------------------------


@router.get("/complaints/{token}")
async def complaint_page(request: Request, token: str) -> Response:
    return await _complaint(request, token)


@router.post("/complaints/{token}")
async def complain(
    request: Request, token: str, statement: Annotated[str, Form(max_length=10_000)]
) -> Response:
    service = service_of(request)
    try:
        notice = await _link(request, service, token)
    except NotFound:
        return _invalid_link()
    except RateLimited as error:
        return _busy(request, service, error)
    try:
        await run_in_threadpool(service.complaints.lodge, token, statement)
    except ReviewError as error:  # the page again, the link's use counted once
        return await _complaint(request, token, str(error), 409, notice)
    return RedirectResponse(f"/complaints/{token}", 303)


# The complaint page past a limit (it names no decision: the link is not checked).
_BUSY: Final = ("Many attempts to open complaint links were made from this connection, or "
                "with this link, just now, so it is paused for a while.")  # fmt: skip


def _busy(request: Request, service: Service, error: RateLimited) -> Response:
    """The complaint page past a limit, under the provider's name (never hashguard's)."""
    return limited(request, error, message=_BUSY,
                   brand=service.settings.provider_name or "Complaints")  # fmt: skip


async def _link(request: Request, service: Service, token: str) -> notices.Notice:
    """The notice of the complaint link ``token``, within the limits on guessing links.
    Raises NotFound for a link no decision has, RateLimited past a limit."""
    return await guarded(
        request,
        limits_of(request).complaints,
        token,
        partial(run_in_threadpool, notices.by_token, service.engine, token),
    )


async def _complaint(
    request: Request,
    token: str,
    error: str = "",
    status: int = 200,
    notice: notices.Notice | None = None,
) -> Response:
    """The user's page: their statement of reasons, with their personal link as it was sent
    to them, under the name of the provider who decided (else the service's). ``notice``: the
    link's, when this request has already checked it (counted once against the limits)."""
    service = service_of(request)
    try:
        if notice is None:
            notice = await _link(request, service, token)
        filed = await run_in_threadpool(service.complaints.of_token, token)
        decided = await run_in_threadpool(service.review.get, notice.detection_id)
    except NotFound:
        return _invalid_link()
    except RateLimited as limit:
        return _busy(request, service, limit)
    link = f"{service.settings.public_url.rstrip('/')}/complaints/{token}"
    still_open = time.time() <= notice.complaint_until.timestamp()
    before, redacted, after = notice.text.partition(notices.REDACTED)
    return page("complaint.html", status, before=before, link=link if redacted else "", after=after,
                complaint=filed, open=still_open, error=error, language=notice.language,
                brand=service.settings.provider_name or decided.service)  # fmt: skip


def _invalid_link() -> Response:
    return HTMLResponse("<!doctype html><p>This link is not valid (any more).</p>", 404)
