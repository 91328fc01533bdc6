"""On-device checks, server-assisted: VOPRF evaluations for device keys, within a budget.

The server sees blinded elements only (uniformly random group elements, whatever the file) and
learns nothing about the file or the verdict; it keeps no record of them. What it can do, and
does, is count: each device key may ask for ``oprf_limit`` evaluations an hour (a token bucket),
so an offender cannot use the service as an unlimited oracle to test edits against the list.
"""

import base64
import binascii
from typing import Annotated, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError
from hashguard.api.fields import Word
from hashguard.api.public_limits import client_of
from hashguard.api.schemas import BODY, KEYED, Evaluated, refusals
from hashguard.device import oprf
from hashguard.errors import TooLarge
from hashguard.rate_limit import Budget, RateLimited
from hashguard.store.api_keys import ApiKey, Role

router = APIRouter(prefix="/v1/device", tags=["on-device checks"])
Device = Annotated[ApiKey, allow(Role.DEVICE)]
MAX_ELEMENTS: Final = 64


class Evaluation(BaseModel):
    elements: list[Word] = Field(
        min_length=1, max_length=MAX_ELEMENTS,
        description="Blinded elements, base64 (32 bytes each).",
    )  # fmt: skip


class Evaluator:
    """The server's key and the budgets: of each device key, and of each client address (IPv6
    per /64), so many keys from one place are bounded too."""

    def __init__(self, key: oprf.ServerKey, per_hour: int, per_address: int) -> None:
        self.key = key
        self.budget = Budget(per_hour)
        self.addresses = Budget(per_address, address=True)

    def spend(self, key: str, address: str, count: int) -> None:
        """Take ``count`` evaluations from ``key``'s and ``address``'s budgets (from neither
        when one is spent). Raises TooManyElements when ``count`` exceeds a whole hour's
        budget, RateLimited (scope credential: the key's; address) when one is spent."""
        if count > min(self.budget.per_hour, self.addresses.per_hour):
            raise TooManyElements(
                f"at most {min(self.budget.per_hour, self.addresses.per_hour)} evaluations an "
                "hour: this request asks for more"
            )
        wait = self.addresses.take(address, count)
        if wait:
            raise RateLimited(f"at most {self.addresses.per_hour} evaluations an hour per "
                              f"address; retry in {wait:.0f} s", wait)  # fmt: skip
        wait = self.budget.take(key, count)
        if wait:
            self.addresses.give_back(address, count)
            raise RateLimited(f"at most {self.budget.per_hour} evaluations an hour per device "
                              f"key; retry in {wait:.0f} s", wait, "credential")  # fmt: skip


class TooManyElements(TooLarge):
    """A request asks for more evaluations than an hour's budget: it could never be answered."""


@router.post(
    "/evaluate", response_model=Evaluated, responses=refusals(400, *KEYED, 404, *BODY, 429)
)
async def evaluate(request: Request, key: Device, body: Evaluation) -> JSONResponse:
    """Evaluate blinded elements with the server's VOPRF key, with one proof for all of them
    (RFC 9497, ristretto255-SHA512). Nothing about the request is stored. 429 when the key's
    hourly budget, or the client address's, is spent (Retry-After); 413 for more elements than
    an hour's budget."""
    evaluator: Evaluator | None = request.app.state.device
    if evaluator is None:
        raise ApiError(404, "this server does not evaluate for devices (serve --oprf-key)")
    try:
        elements = [base64.b64decode(e, validate=True) for e in body.elements]
    except (binascii.Error, ValueError):
        raise ApiError(400, "elements: expected base64") from None
    evaluator.spend(key.id, client_of(request) or "", len(elements))
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
