"""Errors as JSON: every refused request gets ``{"error": {"status", "code", "message"}}`` with a
4xx status and a message that says what was wrong. Nothing reaches a client as a traceback.

A domain error's status follows from its kind (``hashguard.errors``), never from its message."""

import logging
import math
import uuid
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from hashguard import errors
from hashguard.errors import HashguardError
from hashguard.rate_limit import RateLimited

log = logging.getLogger("hashguard.api")

_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large",
          415: "unsupported_media_type", 422: "invalid", 503: "unavailable"}  # fmt: skip


# The HTTP status of each kind of error (hashguard.errors.KINDS, most specific first).
STATUS: Final[dict[type[HashguardError], int]] = {
    errors.NotFound: 404, errors.Forbidden: 403, errors.Conflict: 409, errors.TooLarge: 413,
    errors.Unsupported: 415, errors.Unprocessable: 422, errors.Unverified: 422,
    errors.Unavailable: 503, errors.Invalid: 400,
}  # fmt: skip

# HMA's routes answer errors as {"message": ...}, the shape its clients read.
HMA_PREFIXES = ("/h/", "/m/", "/c/")


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.retry_after = retry_after  # seconds, sent as Retry-After (503, 429)

    @classmethod
    def of(cls, error: HashguardError) -> "ApiError":
        """The answer to a domain error: its kind's status, its message."""
        return cls(status_of(error), str(error))


def status_of(error: HashguardError) -> int:
    """The HTTP status for ``error``, by its kind."""
    kind = errors.kind_of(error)
    return STATUS[kind] if kind is not None else 400


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code or _CODES.get(status, "error"),
                      "message": message}}  # fmt: skip


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    path: str = "",
    retry_after: float | None = None,
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers.update(retry_header(retry_after))
    # A message may quote the request, and JSON lets a request hold unpaired surrogates.
    message = message.encode("utf-8", "backslashreplace").decode()
    body = (
        {"message": message} if path.startswith(HMA_PREFIXES) else error_body(status, message, code)
    )
    return JSONResponse(body, status, headers=headers)


def too_many(request: Request, error: RateLimited) -> JSONResponse:
    """429 with Retry-After: an address, case, link or key past its limit; counted."""
    counted(request, error)
    return JSONResponse(error_body(429, str(error), "rate_limited"), 429,
                        headers=retry_header(error.retry_after))  # fmt: skip


def retry_header(seconds: float) -> dict[str, str]:
    """The Retry-After header of a 429 or 503: whole seconds, at least 1."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def counted(request: Request, error: RateLimited) -> None:
    """Count a refusal for ``error`` in /metrics, by route template and scope."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    request.app.state.metrics.limited.labels(route, error.scope).inc()


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(
            error.status, error.message, error.code, request.url.path, error.retry_after
        )

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, error: RateLimited) -> JSONResponse:
        return too_many(request, error)

    @app.exception_handler(HashguardError)
    async def domain_error(request: Request, error: HashguardError) -> JSONResponse:
        return error_response(status_of(error), str(error), path=request.url.path)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        path = request.url.path
        if error.status_code == 404 and error.detail == "Not Found":
            return error_response(404, "no such route; the routes are listed at /docs", path=path)
        if error.status_code == 405:
            answer = error_response(
                405, "this route does not take that method; see /docs", path=path
            )
            # A mounted app's paths (the docs' files) match none of the router's routes
            # here: the mounted app says what it takes.
            said = (error.headers or {}).get("Allow", "")
            answer.headers["Allow"] = ", ".join(allowed_methods(request)) or said
            return answer
        answer = error_response(error.status_code, str(error.detail), path=path)
        answer.headers.update(error.headers or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        path = request.url.path
        # HMA clients expect 400 for a missing or malformed parameter.
        status = 400 if path.startswith(HMA_PREFIXES) else 422
        return error_response(status, validation_message(error.errors()), path=path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return internal_error(error, request.url.path)


# The methods a 405's Allow can name.
_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at the request's path: a path is served by one route per
    method, so the route that refused the method knows only its own."""
    routes = request.app.router.routes
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in routes)]  # fmt: skip


def internal_error(error: Exception, path: str) -> JSONResponse:
    """A bug, not bad input: logged with an id the caller can quote, never sent as a trace."""
    incident = uuid.uuid4().hex[:12]
    log.error("internal error %s: %s", incident, type(error).__name__, exc_info=error)
    return error_response(500, f"internal error (incident {incident})", "internal", path)


def validation_message(errors: Any) -> str:
    """Pydantic's errors as one line per problem: where, and what was expected."""
    parts = []
    for problem in list(errors)[:10]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        message = problem.get("msg", "invalid")
        if problem.get("type") == "json_invalid":
            message = f"not valid JSON ({problem.get('ctx', {}).get('error', 'malformed')})"
        elif where == "body" and problem.get("type") == "model_attributes_type":
            message = "expected a JSON object (and Content-Type: application/json)"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
