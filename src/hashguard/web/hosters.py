"""The hoster portal (``/hosters``): a hosting provider, signed in with its hoster key
(``sessions``, as the desks), sees its open notices and removal orders with their deadlines
(overdue ones first and marked), a notice's page (its URLs, the hashes and labels of what was
found there, the deadline and the history; never content) and answers it: acknowledge, removed
(checked by the hotline before it counts), dispute with a reason, the origin server (a CDN),
and for an order confirm or inability with reasons. "Your figures": its time from report to
verified removal, as the monitor computes it.

A hoster sees only its own notices: another's number is answered as one that does not exist.
The forms are URL-encoded only (``form_bodies``) and carry the session's CSRF token.
"""

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor
from hashguard.api.errors import status_of
from hashguard.api.matching import service_of
from hashguard.errors import HashguardError, NotFound
from hashguard.rate_limit import RateLimited
from hashguard.store.api_keys import ApiKey
from hashguard.takedown.model import NoticeState
from hashguard.takedown.notices import Notices, NoticeView
from hashguard.takedown.service import Takedown
from hashguard.web import sessions
from hashguard.web.form_bodies import FormRoute
from hashguard.web.pages import limited, numbered, page

router = APIRouter(include_in_schema=False, route_class=FormRoute)
SHOWN: Final = 500  # open notices on the portal's first page
CLOSED_SHOWN: Final = 20
CLOSED: Final = (NoticeState.REMOVED.value, NoticeState.FORWARDED.value,
                 NoticeState.WITHDRAWN.value)  # fmt: skip
STATE_WORDS: Final = {"queued": "Being sent", "open": "Open", "removed": "Removal verified",
                      "forwarded": "Sent on to the origin", "withdrawn": "Withdrawn"}  # fmt: skip
KIND_WORDS: Final = {"notice": "Notice", "cdn": "CDN: origin asked", "order": "Removal order"}
EVENT_WORDS: Final = {
    "composed": "Notice signed", "sent": "Sent", "delivery-failed": "Sending failed",
    "acknowledged": "You acknowledged it", "claimed": "You said it was removed",
    "disputed": "You disputed it", "origin": "Origin named", "checked": "The hotline checked",
    "verified": "Removal verified by the hotline", "renotice": "Sent again (still there)",
    "escalated": "Escalated", "reminder": "Reminder", "confirmed": "You confirmed the order",
    "inability": "You said you cannot execute it", "reappeared": "The content came back",
    "withdrawn": "Withdrawn by the hotline", "resent": "Sent again by the hotline",
}  # fmt: skip
DONE_WORDS: Final = {
    "acknowledge": "Acknowledged. Thank you.",
    "removed": "Noted. The hotline now checks every URL; the notice closes when the check shows "
               "the content gone.",
    "dispute": "Your dispute is recorded. An analyst will look at it; the notice stays open "
               "meanwhile.",
    "origin": "Thank you: the notice goes on to the origin's hoster.",
    "confirm": "The order is confirmed. The hotline checks every URL.",
    "inability": "Your reasons are recorded for the authority.",
}  # fmt: skip
ACTIONS: Final = tuple(DONE_WORDS)


def _shown(key: ApiKey, csrf: str, **values: Any) -> dict[str, Any]:
    """What every portal page gives the frame: the hoster signed in, its one page."""
    return {"reviewer": key.hoster or actor(key), "csrf": csrf, "desks": sessions.desks(key),
            "product": "notices", "states": STATE_WORDS, "kinds": KIND_WORDS,
            "events": EVENT_WORDS, **values}  # fmt: skip


async def _opened(request: Request) -> tuple[Takedown, ApiKey, str] | Response:
    found = await sessions.caller(request, sessions.HOSTER_ROLES)
    if isinstance(found, Response):
        return found if not isinstance(found, RedirectResponse) else \
            RedirectResponse("/hosters/login", 303)  # fmt: skip
    key, csrf = found
    takedown = service_of(request).takedown
    if takedown is None:
        return page("gone.html", 404, **_shown(key, csrf, error="Notice and takedown is off "
                    "on this service.", back="/hosters"))  # fmt: skip
    return takedown, key, csrf


@router.get("/hosters/login")
async def login_page() -> HTMLResponse:
    return page("hosters/login.html")


@router.post("/hosters/login")
async def login(request: Request, key: Annotated[str, Form(max_length=200)]) -> Response:
    try:
        return await sessions.sign_in(request, key.strip())
    except NotFound:
        return page("hosters/login.html", 403, error="That is not a live hoster key.")
    except RateLimited as error:
        return limited(request, error, "hosters/login.html",
                       error=sessions.refused_words(error))  # fmt: skip


@router.get("/hosters")
async def portal(request: Request) -> Response:
    """The open notices and orders, most urgent first, and the hoster's figures."""
    opened = await _opened(request)
    if isinstance(opened, Response):
        return opened
    takedown, key, csrf = opened

    def gathered() -> HTMLResponse:
        waiting, closed = listed(takedown.notices, key.hoster)
        figures = takedown.monitor.figures("all", hoster=key.hoster)
        return page("hosters/portal.html", **_shown(
            key, csrf, waiting=waiting, closed=closed, figures=figures[0] if figures else None,
            overdue=sum(n.overdue for n in waiting)))  # fmt: skip

    return await run_in_threadpool(gathered)


def listed(
    notices: Notices, hoster: str | None, shown: int = SHOWN, closed_shown: int = CLOSED_SHOWN
) -> tuple[list[NoticeView], list[NoticeView]]:
    """The hoster's waiting notices (overdue ones first, then open, then queued; at most
    ``shown``), most urgent first, and its newest closed ones (at most ``closed_shown``). Each
    read by its state, so no open notice hides behind newer closed ones."""
    overdue = notices.list(hoster=hoster, overdue=True, limit=shown)
    waiting = overdue + notices.list(hoster=hoster, state=NoticeState.OPEN.value, overdue=False,
                                     limit=shown)  # fmt: skip
    waiting += notices.list(hoster=hoster, state=NoticeState.QUEUED.value, overdue=False,
                            limit=shown)  # fmt: skip
    closed = [notice for state in CLOSED
              for notice in notices.list(hoster=hoster, state=state,
                                         limit=closed_shown)]  # fmt: skip
    closed.sort(key=lambda notice: notice.id, reverse=True)
    return sorted(waiting[:shown], key=_urgency), closed[:closed_shown]


def _urgency(notice: NoticeView) -> tuple[int, str]:
    """Overdue first, then by deadline (none yet: last)."""
    deadline = notice.deadline_at.isoformat() if notice.deadline_at else "~"
    return (0 if notice.overdue else 1, deadline)


@router.get("/hosters/notices/{ident}")
async def notice_page(request: Request, ident: int, done: str = "") -> Response:
    opened = await _opened(request)
    if isinstance(opened, Response):
        return opened
    takedown, key, csrf = opened
    said = DONE_WORDS.get(done, "")
    return await run_in_threadpool(_notice_page, takedown, key, csrf, ident, "", 200, said)


def _notice_page(takedown: Takedown, key: ApiKey, csrf: str, ident: int, error: str = "",
                 status: int = 200, done: str = "") -> HTMLResponse:  # fmt: skip
    if not numbered(ident):
        return page("gone.html", 404, **_shown(key, csrf, error=f"no notice {ident}",
                                               back="/hosters"))  # fmt: skip
    try:
        detail = takedown.notices.get(ident, key.hoster)
    except HashguardError as gone:
        return page("gone.html", status_of(gone), **_shown(key, csrf, error=str(gone),
                                                           back="/hosters"))  # fmt: skip
    return page(
        "hosters/notice.html",
        status,
        **_shown(key, csrf, notice=detail.notice, history=detail.events, error=error, done=done),
    )


@router.post("/hosters/notices/{ident}/{action}")
async def act(
    request: Request,
    ident: int,
    action: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    address: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """One of the hoster's answers to its notice; on success back to the notice's page saying
    what happens next, else the page again with the refusal at the top."""
    found = await sessions.form_caller(request, csrf, sessions.HOSTER_ROLES)
    if isinstance(found, Response):
        return found
    key, token = found
    takedown = service_of(request).takedown
    if takedown is None or action not in ACTIONS or not numbered(ident):
        return page("gone.html", 404, **_shown(key, token, error="no such notice or answer",
                                               back="/hosters"))  # fmt: skip
    notices, who, hoster = takedown.notices, actor(key), key.hoster
    calls = {
        "acknowledge": lambda: notices.acknowledge(ident, hoster, who),
        "removed": lambda: notices.claim_removed(ident, hoster, who, reason),
        "dispute": lambda: notices.dispute(ident, hoster, who, reason),
        "origin": lambda: notices.origin(ident, hoster, who, address),
        "confirm": lambda: notices.confirm_order(ident, hoster, who),
        "inability": lambda: notices.inability(ident, hoster, who, reason),
    }  # fmt: skip
    try:
        await run_in_threadpool(calls[action])
    except HashguardError as refused:
        return await run_in_threadpool(_notice_page, takedown, key, token, ident, str(refused),
                                       status_of(refused))  # fmt: skip
    return RedirectResponse(f"/hosters/notices/{ident}?done={action}", 303)
