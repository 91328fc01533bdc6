"""``POST /v1/match/hashes``, the route every upload check calls, answered straight from ASGI.

Measured (docs/benchmarks.md): the framework's layers (routing, dependency injection, model
validation, response encoding) cost more than the match itself. A well-formed request with a
live matcher, hoster (or admin) key is validated by the route's own model and answered here by the
same code the FastAPI route runs (``matching.answer_hash_queries``); anything else (no key,
another role, a body that is not a well-formed batch, a size over the limit) passes on to
FastAPI unchanged, body included, which refuses it with its usual error. The answers are the
same either way; the tests check both. It sits in front of the FastAPI app, not inside its
middleware stack (``app.served``): the framework's own layers cost a tenth of the
interpreter's time at 1,000 requests/s.
"""

import json
from typing import Final

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashguard.api.errors import ApiError, error_response, internal_error, status_of
from hashguard.api.matching import HashMatchRequest, answer_hash_queries
from hashguard.api.metrics import Metrics
from hashguard.api.service import Service
from hashguard.errors import HashguardError
from hashguard.store.api_keys import ApiKey, Role

PATH: Final = "/v1/match/hashes"
_ROLES: Final = frozenset({Role.MATCHER, Role.HOSTER, Role.ADMIN})
_JSON: Final = (b"content-type", b"application/json")


class HotMatchRoute:
    def __init__(self, app: ASGIApp, service: Service, metrics: Metrics) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = await self._caller(headers.get(b"authorization", b""))
        length = headers.get(b"content-length", b"")
        if (
            key is None
            or headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            != b"application/json"
            or not length.isdigit()
            or int(length) > self.service.settings.max_json_bytes
        ):
            await self.app(scope, receive, send)
            return
        body, receive = await _read(receive)
        try:  # the route's own model: one validator, whichever path answers
            batch = HashMatchRequest.model_validate_json(body)
        except ValidationError:  # FastAPI says what is wrong, as for any route
            await self.app(scope, receive, send)
            return
        scope["route_template"] = PATH
        try:
            answer = await answer_hash_queries(self.service, self.metrics, key, batch)
        except ApiError as error:
            await error_response(error.status, error.message, error.code, PATH)(
                scope, receive, send
            )
            return
        except HashguardError as error:  # as FastAPI's handler answers it
            await error_response(status_of(error), str(error), path=PATH)(scope, receive, send)
            return
        except Exception as error:  # outside FastAPI: its last-resort handler is not above us
            await internal_error(error, PATH)(scope, receive, send)
            return
        payload = json.dumps(answer, separators=(",", ":")).encode()
        length = (b"content-length", str(len(payload)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": [_JSON, length]})
        await send({"type": "http.response.body", "body": payload})

    async def _caller(self, header: bytes) -> ApiKey | None:
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        key = await self.service.authenticate(token.strip())
        return key if key is not None and key.role in _ROLES else None


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
