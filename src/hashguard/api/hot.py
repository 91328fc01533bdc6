"""The hot routes, answered straight from ASGI in front of FastAPI: ``POST /v1/match/hashes``
(every upload check) and HMA's ``GET /m/lookup`` and ``GET /m/raw_lookup`` of a hash.

Measured (docs/benchmarks.md): the framework's layers (routing, dependency injection, parameter
and model validation, response encoding) cost more than the match itself. A well-formed request
with a live key of a role the route allows is answered here by the same code the FastAPI route
runs (``matching.answer_hash_queries``, ``hma.matching.raw_lookup_answer`` and
``lookup_answer``); anything else (no key, another role, a body or a parameter this module does
not take as it is, a size over the limit, a lookup by URL) passes on to FastAPI unchanged, body
included, which answers it or refuses it with its usual error. The answers are the same either
way; the tests check both paths. It sits in front of the FastAPI app, not inside its middleware
stack (``app.served``): the framework's own layers cost a tenth of the interpreter's time at
1,000 requests/s.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashguard.api.errors import ApiError, error_response, internal_error, status_of
from hashguard.api.fields import HASH_CHARS, TEXT_CHARS, WORD_CHARS
from hashguard.api.hma.matching import lookup_answer, raw_lookup_answer
from hashguard.api.matching import (
    CONTENT_REF_LENGTH,
    HashMatchRequest,
    answer_hash_queries,
)
from hashguard.api.metrics import Metrics
from hashguard.api.service import Service
from hashguard.errors import HashguardError
from hashguard.store.api_keys import ApiKey, Role

MATCH_HASHES: Final = "/v1/match/hashes"
LOOKUP: Final = "/m/lookup"
RAW_LOOKUP: Final = "/m/raw_lookup"
_JSON: Final = (b"content-type", b"application/json")
# The values of a boolean parameter taken here; FastAPI takes more spellings (yes, on, ...).
_FLAGS: Final = {"true": True, "false": False, "1": True, "0": False}
# The longest value of each text parameter of HMA's lookups, as their routes declare them
# (api.fields): a longer one passes on to FastAPI, which refuses it naming the parameter.
_BOUNDS: Final = {
    "signal_type": WORD_CHARS, "signal": HASH_CHARS, "content_type": WORD_CHARS,
    "seed": WORD_CHARS, "types": TEXT_CHARS, "banks": TEXT_CHARS,
    "content_ref": CONTENT_REF_LENGTH,
}  # fmt: skip


@dataclass(slots=True)
class _Call:
    """A request on its way: its scope and headers, the caller's key, and a ``receive`` that
    gives the body to whoever reads it next (FastAPI, when the request passes on)."""

    scope: Scope
    headers: dict[bytes, bytes]
    key: ApiKey
    receive: Receive


# A route's answer (a JSON object), or None to pass the request on to FastAPI.
_Handler = Callable[["HotRoutes", _Call], Awaitable[dict[str, Any] | None]]


class HotRoutes:
    """The hot routes in front of ``app`` (which answers every other request)."""

    def __init__(self, app: ASGIApp, service: Service, metrics: Metrics) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        handler, roles = route
        headers = dict(scope["headers"])
        key = await self._caller(headers.get(b"authorization", b""), roles)
        if key is None:  # FastAPI says 401 or 403, as for any route
            await self.app(scope, receive, send)
            return
        call = _Call(scope, headers, key, receive)
        path = scope["path"]
        scope["route_template"] = path  # the metrics' label (FastAPI's route, if it answers)
        try:
            answer = await handler(self, call)
        except ApiError as error:
            refusal = error_response(
                error.status, error.message, error.code, path, error.retry_after
            )
            await refusal(scope, call.receive, send)
            return
        except HashguardError as error:  # as FastAPI's handler answers it
            await error_response(status_of(error), str(error), path=path)(scope, call.receive, send)
            return
        except Exception as error:  # outside FastAPI: its last-resort handler is not above us
            await internal_error(error, path)(scope, call.receive, send)
            return
        if answer is None:
            await self.app(scope, call.receive, send)
            return
        payload = json.dumps(answer, separators=(",", ":")).encode()
        length = (b"content-length", str(len(payload)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": [_JSON, length]})
        await send({"type": "http.response.body", "body": payload})

    async def _caller(self, header: bytes, roles: frozenset[Role]) -> ApiKey | None:
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        key = await self.service.authenticate(token.strip())
        return key if key is not None and key.role in roles else None

    async def _match_hashes(self, call: _Call) -> dict[str, Any] | None:
        headers = call.headers
        length = headers.get(b"content-length", b"")
        if (
            headers.get(b"content-type", b"").split(b";")[0].strip().lower() != b"application/json"
            or not length.isdigit()
            or int(length) > self.service.settings.max_json_bytes
        ):
            return None
        body, call.receive = await _read(call.receive)
        try:  # the route's own model: one validator, whichever path answers
            batch = HashMatchRequest.model_validate_json(body)
        except ValidationError:  # FastAPI says what is wrong, as for any route
            return None
        return await answer_hash_queries(self.service, self.metrics, call.key, batch)

    async def _raw_lookup(self, call: _Call) -> dict[str, Any] | None:
        given = _parameters(call)
        if given is None:
            return None
        signal_type, signal = given.get("signal_type"), given.get("signal")
        include_distance = _FLAGS.get(given.get("include_distance", "false"))
        content_ref = given.get("content_ref", "")
        if signal_type is None or signal is None or include_distance is None:
            return None
        return await raw_lookup_answer(
            self.service, self.metrics, call.key, signal_type, signal, include_distance,
            given.get("banks"), content_ref,
        )  # fmt: skip

    async def _lookup(self, call: _Call) -> dict[str, Any] | None:
        given = _parameters(call)
        if given is None or "url" in given:  # a URL's media: fetched and hashed by the route
            return None
        bypass = _FLAGS.get(given.get("bypass_coinflip", "false"))
        content_ref = given.get("content_ref", "")
        if bypass is None:
            return None
        return await lookup_answer(
            self.service, self.metrics, call.key, given.get("signal_type"), given.get("signal"),
            given.get("banks"), given.get("seed"), bypass, content_ref,
        )  # fmt: skip


_MATCHING: Final = frozenset({Role.MATCHER, Role.ADMIN})
_ROUTES: Final[dict[tuple[str, str], tuple[_Handler, frozenset[Role]]]] = {
    ("POST", MATCH_HASHES): (HotRoutes._match_hashes, _MATCHING | {Role.HOSTER}),
    ("GET", RAW_LOOKUP): (HotRoutes._raw_lookup, _MATCHING),
    ("GET", LOOKUP): (HotRoutes._lookup, _MATCHING),
}


def _parameters(call: _Call) -> dict[str, str] | None:
    """The query's parameters, or None for a GET that carries a body, a parameter given more
    than once or one longer than its route takes (FastAPI's to answer: ``auth.one_value_each``
    refuses a repeated one the route takes)."""
    headers = call.headers
    if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
        return None
    pairs = parse_qsl(call.scope["query_string"].decode("latin-1"), keep_blank_values=True)
    given = dict(pairs)
    if len(given) < len(pairs):
        return None
    if any(len(value) > _BOUNDS.get(name, len(value)) for name, value in given.items()):
        return None
    return given


async def _read(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that gives it again to whoever reads next."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again
