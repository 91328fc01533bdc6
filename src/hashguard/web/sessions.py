"""Desk sessions: signing in with a key, the session cookie, what each role may open (reviewers
the detections, analysts the hotline, admins both, hosters their portal of notices; the
console at ``/`` admins, curators, matchers, reviewers and auditors), and the check of every
posted form (signed in with such a role, the session's CSRF token).

The session is a random id in a Secure, HttpOnly, SameSite=Strict cookie (Secure unless
``insecure_cookies`` is set, for plain-HTTP development); the key's token stays in
this process's memory only, to check the key again on each request (a revoked key ends its
sessions at once).
"""

import secrets
import time
from typing import Any, Final

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from hashguard.api.auth import actor
from hashguard.api.matching import service_of
from hashguard.api.public_limits import guarded, limits_of
from hashguard.api.service import Service
from hashguard.errors import NotFound
from hashguard.rate_limit import RateLimited
from hashguard.store.api_keys import ApiKey, Role
from hashguard.web.pages import page, wait_words

COOKIE: Final = "hg_desk"
SESSION_SECONDS: Final = 8 * 3600
REVIEW_ROLES: Final = (Role.REVIEWER, Role.ADMIN)  # the detections, as the API's routes allow
HOTLINE_ROLES: Final = (Role.ANALYST, Role.ADMIN)  # the hotline's items and cases
HOSTER_ROLES: Final = (Role.HOSTER,)  # the hoster portal: a hoster's own notices and orders
# The operator console (``/``): the roles that see at least one of its parts.
CONSOLE_ROLES: Final = (Role.ADMIN, Role.CURATOR, Role.MATCHER, Role.REVIEWER, Role.AUDITOR)
DESK_ROLES: Final = (
    Role.REVIEWER,
    Role.ANALYST,
    Role.ADMIN,
    Role.HOSTER,
    Role.CURATOR,
    Role.MATCHER,
    Role.AUDITOR,
)  # who may sign in
# In the order a key signing in is sent to the first it may open (reviewers and admins to the
# detections, analysts to the hotline, curators, matchers and auditors to the console).
_DESKS: Final = (
    ("/desk", "Detections", REVIEW_ROLES),
    ("/desk/hotline", "Hotline", HOTLINE_ROLES),
    ("/hosters", "Notices", HOSTER_ROLES),
    ("/", "Console", CONSOLE_ROLES),
)


def desks(key: ApiKey) -> list[tuple[str, str]]:
    """The desks ``key`` may open, as (path, name): the bar's links."""
    return [(path, name) for path, name, roles in _DESKS if key.role in roles]


async def session(
    request: Request, roles: tuple[Role, ...] = REVIEW_ROLES
) -> tuple[ApiKey, str] | None:
    """The signed-in key and its CSRF token if its role is one of ``roles``, or None."""
    found = await signed_in(request)
    if found is None or found[0].role not in roles:
        return None
    return found


async def signed_in(request: Request) -> tuple[ApiKey, str] | None:
    """The key signed in (any role that may use the desk) and its CSRF token, or None."""
    service = service_of(request)
    found = service.sessions.get(request.cookies.get(COOKIE, ""))
    if found is None or found[1] < time.monotonic():
        return None
    key = await service.authenticate(found[0])
    if key is None or key.role not in DESK_ROLES:
        return None
    return key, found[2]


async def caller(request: Request, roles: tuple[Role, ...]) -> tuple[ApiKey, str] | Response:
    """The signed-in key opening a page for ``roles``, and its CSRF token; else the answer to
    give: the sign-in page, or (signed in with another role) a 403 page naming the desks the
    key may open."""
    found = await signed_in(request)
    if found is None:
        return RedirectResponse("/desk/login", 303)
    key, csrf = found
    if key.role not in roles:
        return page("forbidden.html", 403, reviewer=actor(key), csrf=csrf, desks=desks(key),
                    role=key.role.value)  # fmt: skip
    return found


async def sign_in(request: Request, token: str, then: str = "") -> Response:
    """The answer that starts a session for ``token`` and opens ``then`` if it is one of the
    key's desks (else the first). Raises NotFound when it is not a live key of a role that may
    sign in, RateLimited past the limits on guessing keys (``public_limits``)."""
    service = service_of(request)

    async def live() -> ApiKey:
        key = await service.authenticate(token)
        if key is None or key.role not in DESK_ROLES:
            raise NotFound("not a live key of a role that may sign in")
        return key

    found = await guarded(request, limits_of(request).sign_in, token, live)
    session_id = secrets.token_urlsafe(32)
    now = time.monotonic()
    for stale in [s for s, (_, until, _) in service.sessions.items() if until < now]:
        del service.sessions[stale]
    service.sessions[session_id] = (token, now + SESSION_SECONDS, secrets.token_urlsafe(16))
    opens = [path for path, _ in desks(found)]
    answer = RedirectResponse(then if then in opens else opens[0], 303)
    # Secure even over plain http: browsers keep it from 127.0.0.1 and localhost, and a
    # deployment reached over http from elsewhere must say so (insecure_cookies).
    answer.set_cookie(COOKIE, session_id, max_age=SESSION_SECONDS, **cookie_flags(service))
    return answer


def cookie_flags(service: Service) -> dict[str, Any]:
    """The session cookie's flags, as it is set and as it is deleted."""
    return {"httponly": True, "samesite": "strict", "path": "/",
            "secure": not service.settings.insecure_cookies}  # fmt: skip


def refused_words(error: RateLimited) -> str:
    """Why a sign-in past a limit is refused, and how long to wait, as the sign-in page says."""
    why = ("This key was used to sign in too often this hour" if error.scope == "credential"
           else "Too many sign-ins with wrong keys from this connection")  # fmt: skip
    return f"{why}; try again {wait_words(error.retry_after)}."


def sign_out(request: Request) -> None:
    service_of(request).sessions.pop(request.cookies.get(COOKIE, ""), None)


async def form_caller(
    request: Request, csrf: str, roles: tuple[Role, ...] = REVIEW_ROLES
) -> tuple[ApiKey, str] | Response:
    """The signed-in key posting a desk form for ``roles``, and its CSRF token; else the answer
    to give (the sign-in page, a 403 page for another role, or a refusal of a stale form)."""
    found = await caller(request, roles)
    if isinstance(found, Response):
        return found
    if not secrets.compare_digest(csrf, found[1]):
        return Response("the form is stale: reload the page", 403)
    return found
