"""On-device checks, server-assisted: VOPRF evaluations for device keys, within a budget.

The server sees blinded elements only (uniformly random group elements, whatever the file) and
learns nothing about the file or the verdict; it keeps no record of them. What it can do, and
does, is count: each device key may ask for ``oprf_limit`` evaluations an hour (a token bucket),
so an offender cannot use the service as an unlimited oracle to test edits against the list.
"""

import base64
import binascii
import math
import threading
import time
from typing import Annotated, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError, error_body
from hashguard.api.fields import Word
from hashguard.api.schemas import BODY, KEYED, Evaluated, refusals
from hashguard.device import oprf
from hashguard.store.api_keys import ApiKey, Role

router = APIRouter(prefix="/v1/device", tags=["on-device checks"])
Device = Annotated[ApiKey, allow(Role.DEVICE)]
MAX_ELEMENTS: Final = 64


class Evaluation(BaseModel):
    elements: list[Word] = Field(
        min_length=1, max_length=MAX_ELEMENTS,
        description="Blinded elements, base64 (32 bytes each).",
    )  # fmt: skip


class Budget:
    """A token bucket per key: ``per_hour`` evaluations, refilled continuously."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str, count: int) -> float:
        """0 when ``count`` evaluations may go ahead (and takes them), else the seconds to wait."""
        rate = self.per_hour / 3600
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (float(self.per_hour), now))
            tokens = min(float(self.per_hour), tokens + (now - when) * rate)
            if count > self.per_hour:
                return math.inf
            if tokens < count:
                self._buckets[key] = (tokens, now)
                return (count - tokens) / rate
            self._buckets[key] = (tokens - count, now)
            return 0.0


class Evaluator:
    """The server's key and the budgets of the device keys."""

    def __init__(self, key: oprf.ServerKey, per_hour: int) -> None:
        self.key = key
        self.budget = Budget(per_hour)


@router.post(
    "/evaluate", response_model=Evaluated, responses=refusals(400, *KEYED, 404, *BODY, 429)
)
async def evaluate(request: Request, key: Device, body: Evaluation) -> JSONResponse:
    """Evaluate blinded elements with the server's VOPRF key, with one proof for all of them
    (RFC 9497, ristretto255-SHA512). Nothing about the request is stored. 429 when the key's
    hourly budget is spent."""
    evaluator: Evaluator | None = request.app.state.device
    if evaluator is None:
        raise ApiError(404, "this server does not evaluate for devices (serve --oprf-key)")
    try:
        elements = [base64.b64decode(e, validate=True) for e in body.elements]
    except (binascii.Error, ValueError):
        raise ApiError(400, "elements: expected base64") from None
    wait = evaluator.budget.take(key.id, len(elements))
    if wait:
        message = f"at most {evaluator.budget.per_hour} evaluations an hour per device key; " + (
            "this request asks for more" if math.isinf(wait) else f"retry in {wait:.0f} s"
        )
        headers = {} if math.isinf(wait) else {"Retry-After": str(math.ceil(wait))}
        return JSONResponse(error_body(429, message, "rate_limited"), 429, headers=headers)
    try:
        evaluated, proof = await run_in_threadpool(oprf.blind_evaluate, evaluator.key, elements)
    except oprf.OprfError as error:
        raise ApiError(400, f"elements: {error}") from None
    return JSONResponse(
        {
            "evaluated": [base64.b64encode(e).decode() for e in evaluated],
            "proof": base64.b64encode(proof).decode(),
            "suite": oprf.SUITE,
        },
        headers={"Cache-Control": "no-store"},
    )
