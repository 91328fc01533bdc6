"""Health (public): live while the process answers (HMA's answer, text ``I-AM-ALIVE``, whatever
the index's state, so an orchestrator restarts only a wedged process); ready when the index is
loaded and at most ``max_lag`` seconds behind the lists' change logs in the database. Both
answer from memory (the follower thread reads the database), never waiting on the database;
neither names a list nor quotes a database error."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from hashguard.api.matching import service_of
from hashguard.api.schemas import Readiness

router = APIRouter(tags=["status"])


@router.get(
    "/status/live",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"},
                                                "example": "I-AM-ALIVE"}}}},
)  # fmt: skip
async def live() -> PlainTextResponse:
    """I-AM-ALIVE while the process answers, loaded or not (HMA's liveness answer)."""
    return PlainTextResponse("I-AM-ALIVE")


@router.get(
    "/status/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the reason says why."}},
)
async def ready(request: Request) -> JSONResponse:
    """Ready when the lists are loaded and the index is at most ``max_lag`` seconds behind
    the database (a load balancer's health check); the lag in all either way."""
    readiness = service_of(request).readiness()  # from memory: no database read
    lag = readiness.lag
    body = {
        "ready": readiness.ready,
        "reason": readiness.reason,
        "index_age_seconds": readiness.age,
        "lag_changes": None if lag is None else lag.changes,
        "lag_seconds": None if lag is None else lag.seconds,
    }
    return JSONResponse(body, 200 if readiness.ready else 503)
