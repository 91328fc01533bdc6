"""The security headers of every answer, from this one place (``SecurityHeaders``, around the
whole app): every HTML page gets ``PAGE`` (a Content-Security-Policy that runs no inline script
or style and loads nothing from another origin, framed by no one, no referrer, not sniffed, not
stored), every other answer ``OTHER`` (JSON answers and errors, content passed through to
reviewers, files). A header a route sets itself wins: /docs names its own policy, static files
their own caching.
"""

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# blob: for the thumbnails and videos of a person's own files (victims' pages) and the videos a
# reviewer plays; the hasher's worker is a file of this origin.
POLICY: Final = (
    "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE: Final = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
OTHER: Final = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """Adds ``PAGE`` to every HTML answer of ``app`` and ``OTHER`` to the rest, each header
    only where the route did not set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                for name, value in (PAGE if html else OTHER).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, sending)
