"""Health (public): live while the process answers (HMA's answer, text ``I-AM-ALIVE``, whatever
the index's state, so an orchestrator restarts only a wedged process); ready when the index is
loaded and at most ``max_lag`` seconds behind the lists' change logs in the database; serving
when it may answer at all, behind or not (a load balancer's fallback when no replica is ready).
All answer from memory (the follower thread reads the database), never waiting on the
database; none names a list or quotes a database error."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from hashguard.api.matching import service_of
from hashguard.api.schemas import Readiness, Serving

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


@router.get(
    "/status/serving",
    response_model=Serving,
    responses={503: {"model": Serving, "description": "Not serving: the reason says why."}},
)
async def serving(request: Request) -> JSONResponse:
    """Serving when the lists are loaded (and not being loaded again) and the follower has
    made progress within four times the stale bound: answers may be behind the database, but
    not from an index it no longer holds (a load balancer's fallback when none is ready)."""
    reason = service_of(request).serving()  # from memory: no database read
    body = {"serving": reason is None, "reason": reason or "serving"}
    return JSONResponse(body, 200 if reason is None else 503)
