"""The HTML forms' bodies: URL-encoded only (``application/x-www-form-urlencoded``, what a form
without a file input sends). Any other body is answered 415 before it is read: Starlette's
multipart parser would write a file part over 1 MB to a temporary file, and nothing a reporter
or analyst sends is ever written to disk.

``FormRoute`` is the route class of every router with forms (the report page, the desk's
sign-in and forms, the complaint page): FastAPI reads a form's body before any dependency
runs, so the check is made where the route is handled, before that.
"""

from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute

URL_ENCODED: Final = "application/x-www-form-urlencoded"
NOT_URL_ENCODED: Final = (
    "A form is sent URL-encoded (Content-Type: application/x-www-form-urlencoded); "
    "no file is ever taken."
)


def url_encoded(request: Request) -> bool:
    """Whether ``request``'s body is URL-encoded, or absent."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind:
        return kind == URL_ENCODED
    return (request.headers.get("content-length", "0").strip() == "0"
            and "transfer-encoding" not in request.headers)  # fmt: skip


class FormRoute(APIRoute):
    """A route whose POSTed body is a URL-encoded form, else 415 before it is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handled = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method == "POST" and not url_encoded(request):
                return PlainTextResponse(NOT_URL_ENCODED, 415)
            return await handled(request)

        return checked
