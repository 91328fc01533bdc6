"""Reviewer sessions: signing in with a reviewer (or admin) key, the session cookie, and the
check of every posted form (signed in, the session's CSRF token).

The session is a random id in an HttpOnly, SameSite=Strict cookie; the key's token stays in
this process's memory only, to check the key again on each request (a revoked key ends its
sessions at once).
"""

import secrets
import time
from typing import Final

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from hashguard.api.matching import service_of
from hashguard.store.api_keys import ApiKey, Role
from hashguard.web.pages import HEADERS

COOKIE: Final = "hg_desk"
SESSION_SECONDS: Final = 8 * 3600
DESK_ROLES: Final = (Role.REVIEWER, Role.ADMIN)  # as the API's reviewer routes allow


async def session(request: Request) -> tuple[ApiKey, str] | None:
    """The signed-in reviewer's key and CSRF token, or None."""
    service = service_of(request)
    found = service.sessions.get(request.cookies.get(COOKIE, ""))
    if found is None or found[1] < time.monotonic():
        return None
    key = await service.authenticate(found[0])
    if key is None or key.role not in DESK_ROLES:
        return None
    return key, found[2]


async def sign_in(request: Request, token: str) -> Response | None:
    """The answer that starts a session for ``token``, or None when it is not a live key of a
    role that may use the desk."""
    service = service_of(request)
    found = await service.authenticate(token)
    if found is None or found.role not in DESK_ROLES:
        return None
    session_id = secrets.token_urlsafe(32)
    now = time.monotonic()
    for stale in [s for s, (_, until, _) in service.sessions.items() if until < now]:
        del service.sessions[stale]
    service.sessions[session_id] = (token, now + SESSION_SECONDS, secrets.token_urlsafe(16))
    answer = RedirectResponse("/desk", 303)
    # Secure wherever users reach the desk over https: behind a TLS proxy the request itself
    # arrives over http, so the public URL says it.
    secure = request.url.scheme == "https" or service.settings.public_url.startswith("https://")
    answer.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/",
                      secure=secure, max_age=SESSION_SECONDS)  # fmt: skip
    return answer


def sign_out(request: Request) -> None:
    service_of(request).sessions.pop(request.cookies.get(COOKIE, ""), None)


async def form_caller(request: Request, csrf: str) -> tuple[ApiKey, str] | Response:
    """The signed-in key posting a desk form, and its CSRF token; else the answer to give (the
    sign-in page, or a refusal of a stale form)."""
    found = await session(request)
    if found is None:
        return RedirectResponse("/desk/login", 303)
    if not secrets.compare_digest(csrf, found[1]):
        return Response("the form is stale: reload the page", 403, headers=HEADERS)
    return found
