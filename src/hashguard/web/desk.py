"""The review desk (``/desk``) and the users' complaint page (``/complaints/{token}``).

Reviewers sign in with their reviewer key; the session is a random id in an HttpOnly,
SameSite=Strict cookie, and every form carries the session's CSRF token. Content is fetched from
the service's content URL when the reviewer opens an item, passed through (images only, never
stored, never cached) and shown blurred and grey until revealed; each viewing is audited.
"""

import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor
from hashguard.api.fetch import FetchRefused, UrlFetcher
from hashguard.api.matching import service_of
from hashguard.api.routes_review import deliveries
from hashguard.api.service import Service
from hashguard.lists.model import REINSTATABLE, ChangeKind
from hashguard.lists.records import InvalidRecord
from hashguard.matching import Matcher
from hashguard.media.errors import MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.redress import notices
from hashguard.review.model import OPEN, Decision, NotFound, ReviewError, State
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_errors import ListError

router = APIRouter(include_in_schema=False)
_HERE: Final = Path(__file__).parent
_PAGES: Final = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"])
)
_STATIC: Final = {"desk.css": "text/css", "desk.js": "text/javascript"}
_COOKIE: Final = "hg_desk"
_SESSION_SECONDS: Final = 8 * 3600
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_PAGES.get_template(name).render(**values), status, headers=_HEADERS)


@router.get("/desk/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        return Response("no such file", 404)
    return Response((_HERE / "static" / name).read_bytes(), media_type=_STATIC[name])


async def _session(request: Request) -> tuple[ApiKey, str] | None:
    """The signed-in reviewer's key and CSRF token, or None. The key is checked again on
    every request: a revoked key ends its sessions."""
    service = service_of(request)
    found = service.sessions.get(request.cookies.get(_COOKIE, ""))
    if found is None or found[1] < time.monotonic():
        return None
    key = await service.authenticate(found[0])
    if key is None or key.role not in (Role.REVIEWER, Role.ADMIN):
        return None
    return key, found[2]


async def _signed_in(request: Request) -> tuple[ApiKey, str]:
    found = await _session(request)
    if found is None:
        raise _SignIn()
    return found


class _SignIn(Exception):
    """No session: the desk sends the browser to the sign-in page."""


@router.get("/desk/login")
async def login_page() -> HTMLResponse:
    return page("login.html")


@router.post("/desk/login")
async def login(request: Request, key: Annotated[str, Form(max_length=200)]) -> Response:
    service = service_of(request)
    found = await service.authenticate(key.strip())
    if found is None or found.role not in (Role.REVIEWER, Role.ADMIN):
        return page("login.html", 403, error="That is not a live reviewer key.")
    session = secrets.token_urlsafe(32)
    now = time.monotonic()
    for stale in [s for s, (_, until, _) in service.sessions.items() if until < now]:
        del service.sessions[stale]
    # The key's token stays in this process's memory only, to check the key on each request.
    service.sessions[session] = (key.strip(), now + _SESSION_SECONDS, secrets.token_urlsafe(16))
    answer = RedirectResponse("/desk", 303)
    answer.set_cookie(_COOKIE, session, httponly=True, samesite="strict", path="/",
                      secure=request.url.scheme == "https", max_age=_SESSION_SECONDS)  # fmt: skip
    return answer


@router.post("/desk/logout")
async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    found = await _session(request)
    if found is not None and secrets.compare_digest(csrf, found[1]):
        service_of(request).sessions.pop(request.cookies.get(_COOKIE, ""), None)
    answer = RedirectResponse("/desk/login", 303)
    answer.delete_cookie(_COOKIE, path="/")
    return answer


@router.get("/desk")
async def queue(request: Request) -> Response:
    try:
        key, csrf = await _signed_in(request)
    except _SignIn:
        return RedirectResponse("/desk/login", 303)
    review = service_of(request).review
    found = await run_in_threadpool(review.queue, list(key.lists) if key.lists else None, 200)
    return page("queue.html", detections=found, reviewer=actor(key), csrf=csrf)


@router.get("/desk/detections/{ident}")
async def detection(request: Request, ident: int) -> Response:
    try:
        key, csrf = await _signed_in(request)
    except _SignIn:
        return RedirectResponse("/desk/login", 303)
    service = service_of(request)
    try:
        found = await run_in_threadpool(service.review.visible, ident, key.lists)
        if found.state in OPEN:
            await run_in_threadpool(service.review.claim, ident, actor(key))
            found = await run_in_threadpool(service.review.visible, ident, key.lists)
    except NotFound as error:
        return page("queue.html", 404, error=str(error), detections=[], reviewer=actor(key),
                    csrf=csrf)  # fmt: skip
    votes = await run_in_threadpool(service.review.votes, ident)
    sent = await run_in_threadpool(deliveries, service, ident)
    checked = await run_in_threadpool(service.review.services.get, found.service)
    queue = await run_in_threadpool(service.review.queue, list(key.lists) or None, 50)
    following = [d.id for d in queue if d.id != ident]
    tally = {d.value: len({v.reviewer for v in votes if v.decision is d}) for d in Decision}
    contested = []
    if found.state is State.FALSE_POSITIVE:
        contested = await run_in_threadpool(_contested, service, key, ident)
    return page(
        "detection.html", d=found, reviewer=actor(key), csrf=csrf,
        content_url=f"/desk/detections/{ident}/content" if checked.content_url else "",
        evidence=[{**m, "threshold": _threshold(service, m)} for m in found.evidence],
        votes=votes, four_eyes=service.review.four_eyes(found),
        tally=tally, open=found.state in OPEN, contested=contested, deliveries=sent,
        next_id=following[0] if following else None,
    )  # fmt: skip


def _contested(service: Service, key: ApiKey, ident: int) -> list[dict[str, Any]]:
    """The list entries a false positive contested (the detection's own evidence is purged; its
    audit event names them), each as it is now, and whether ``key`` may reinstate it: an admin
    key that may use the list, the one desk key that may curate lists."""
    events = audit.events(service.engine, subjects=[f"detection:{ident}"],
                          action="detection.false_positive", limit=1)  # fmt: skip
    named = json.loads(events[0].details).get("contest", []) if events else []
    found = []
    for reference in named:
        name, _, entry_id = str(reference).rpartition(":")
        try:
            entry = service.lists.entry_by_id(name, int(entry_id))
        except (ListError, ValueError):  # the list or entry removed since
            continue
        curates = key.role is Role.ADMIN and key.may_use(name)
        found.append({"list": name, "entry": entry.id, "signal": entry.signal,
                      "value": entry.value, "status": entry.status.value,
                      "reinstate": curates and entry.status in REINSTATABLE})  # fmt: skip
    return found


def _threshold(service: Service, match: dict[str, Any]) -> float | str:
    try:
        return Matcher.threshold(service.lists.get(match["list"]), match["signal"])
    except ListError:  # a list removed since: its threshold is unknown
        return "-"


@router.get("/desk/detections/{ident}/content")
async def content(request: Request, ident: int) -> Response:
    """The item, fetched from its service now, passed through if it is an image; audited."""
    found_session = await _session(request)
    if found_session is None:
        return Response("sign in first", 401, headers=_HEADERS)
    key, _ = found_session
    service = service_of(request)
    try:
        found = await run_in_threadpool(service.review.visible, ident, key.lists)
        checked = await run_in_threadpool(service.review.services.get, found.service)
    except NotFound:
        return Response("no such detection", 404, headers=_HEADERS)
    location = checked.content_location(found.content_ref)
    if not location:
        return Response("the service gives no content URL", 404, headers=_HEADERS)
    host = urlsplit(checked.content_url).hostname or ""  # the service's host, fixed at creation
    fetcher = UrlFetcher([host], service.settings.fetch_networks, service.settings.fetch_timeout,
                         service.settings.max_upload_bytes)  # fmt: skip
    try:
        fetched = await run_in_threadpool(fetcher.fetch, location)
        kind = sniff(fetched.body[:SNIFF_BYTES])
    except (FetchRefused, MediaError) as error:
        return Response(f"the item could not be shown: {error}", 502, headers=_HEADERS)
    if kind.kind is not MediaKind.IMAGE:
        return Response("only images are shown here", 415, headers=_HEADERS)
    await run_in_threadpool(_audit_view, service, key, ident)
    return Response(fetched.body, media_type=f"image/{kind.name}", headers=_HEADERS)


def _audit_view(service: Service, key: ApiKey, ident: int) -> None:
    with service.engine.begin() as connection:
        audit.append(connection, actor(key), "detection.view", f"detection:{ident}")


async def _form_caller(request: Request, csrf: str) -> tuple[ApiKey, str] | Response:
    """The signed-in key posting a desk form, and its CSRF token; else the answer to give (the
    sign-in page, or a refusal of a stale form)."""
    try:
        key, expected = await _signed_in(request)
    except _SignIn:
        return RedirectResponse("/desk/login", 303)
    if not secrets.compare_digest(csrf, expected):
        return Response("the form is stale: reload the page", 403, headers=_HEADERS)
    return key, expected


@router.post("/desk/detections/{ident}/decide")
async def decide(
    request: Request,
    ident: int,
    decision: Annotated[Decision, Form()],
    reason: Annotated[str, Form(max_length=2000)],
    csrf: Annotated[str, Form()],
) -> Response:
    caller = await _form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    try:
        await run_in_threadpool(service.review.visible, ident, key.lists)
        await run_in_threadpool(service.review.decide, ident, actor(key), decision, reason)
    except (NotFound, ReviewError) as error:
        return page("queue.html", 409, error=str(error), detections=[], reviewer=actor(key),
                    csrf=expected)  # fmt: skip
    return RedirectResponse(f"/desk/detections/{ident}", 303)


@router.post("/desk/detections/{ident}/reinstate")
async def reinstate(
    request: Request,
    ident: int,
    list_name: Annotated[str, Form(alias="list", max_length=100)],
    entry: Annotated[int, Form()],
    reason: Annotated[str, Form(max_length=2000)],
    csrf: Annotated[str, Form()],
) -> Response:
    """The list's curator reinstates an entry this false positive contested (audited; the
    service's Matcher matches it again before the answer)."""
    caller = await _form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    try:
        await run_in_threadpool(service.review.visible, ident, key.lists)
    except NotFound as error:
        return page("queue.html", 404, error=str(error), detections=[], reviewer=actor(key),
                    csrf=expected)  # fmt: skip
    contested = await run_in_threadpool(_contested, service, key, ident)
    chosen = next((c for c in contested if (c["list"], c["entry"]) == (list_name, entry)), None)
    if chosen is None or not chosen["reinstate"]:
        return page("queue.html", 403, detections=[], reviewer=actor(key), csrf=expected,
                    error=f"entry {entry} of list {list_name} is not one this key may reinstate "
                          f"from detection {ident}")  # fmt: skip

    def change() -> None:
        service.lists.change(list_name, ChangeKind.REINSTATE, chosen["signal"], chosen["value"],
                             reason, actor(key))  # fmt: skip

    try:
        await run_in_threadpool(change)
    except (ListError, InvalidRecord) as error:
        return page("queue.html", 409, error=str(error), detections=[], reviewer=actor(key),
                    csrf=expected)  # fmt: skip
    return RedirectResponse(f"/desk/detections/{ident}", 303)


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
        await run_in_threadpool(service.complaints.lodge, token, statement)
    except NotFound:
        return _invalid_link()
    except ReviewError as error:
        return await _complaint(request, token, str(error), 409)
    return RedirectResponse(f"/complaints/{token}", 303)


async def _complaint(request: Request, token: str, error: str = "", status: int = 200) -> Response:
    """The user's page: their statement of reasons, with their personal link as it was sent
    to them, under the name of the provider who decided (else the service's)."""
    service = service_of(request)
    try:
        notice = await run_in_threadpool(notices.by_token, service.engine, token)
        filed = await run_in_threadpool(service.complaints.of_token, token)
        decided = await run_in_threadpool(service.review.get, notice.detection_id)
    except NotFound:
        return _invalid_link()
    link = f"{service.settings.public_url.rstrip('/')}/complaints/{token}"
    still_open = time.time() <= notice.complaint_until.timestamp()
    before, redacted, after = notice.text.partition(notices.REDACTED)
    return page("complaint.html", status, before=before, link=link if redacted else "", after=after,
                complaint=filed, open=still_open, error=error, language=notice.language,
                brand=service.settings.provider_name or decided.service)  # fmt: skip


def _invalid_link() -> Response:
    return HTMLResponse("<!doctype html><p>This link is not valid (any more).</p>", 404,
                        headers=_HEADERS)  # fmt: skip
