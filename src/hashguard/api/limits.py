"""Request body limits, before anything is parsed: a declared length over the route's limit is
refused at once (413), and a body that grows past it while streaming is cut off (413). The
refusal is a JSON error, or for a page's form the page ``page_for`` gives."""

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashguard.api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised while the body is read, so that FastAPI's body parsing passes it on as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str, str], int],
        page_for: Callable[[str], ASGIApp | None] = lambda path: None,
    ) -> None:
        self.app = app
        self.limit_for = limit_for  # (method, path) -> bytes
        self.page_for = page_for  # path -> the page that refuses a body too large, or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def receiving() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 413:  # the body's rest unread: see _closing
                    message = _closing(message)
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        page = self.page_for(scope["path"])
        if page is None:
            page = error_response(413, _message(limit), path=scope["path"])

        async def sending(message: Message) -> None:
            await send(_closing(message) if message["type"] == "http.response.start" else message)

        await page(scope, receive, sending)


def _closing(start: Message) -> Message:
    """A refusal answered before the body was read says it closes the connection: what is left
    of the body would be read as the next request, and some servers (granian) close it without
    saying so, which a client reusing the connection takes for a failed next request."""
    headers = [(name, value) for name, value in start.get("headers", ())
               if name.lower() != b"connection"]  # fmt: skip
    return {**start, "headers": [*headers, (b"connection", b"close")]}


def _message(limit: int) -> str:
    return f"the request body is larger than this route takes ({limit} bytes)"
