"""Health (public): live while the process answers; ready when the index is loaded and has
caught up with the lists' change logs."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hashguard.api.matching import service_of
from hashguard.api.schemas import Live, Readiness

router = APIRouter(tags=["status"])


@router.get("/status/live", response_model=Live)
async def live() -> dict[str, Any]:
    return {"live": True}


@router.get(
    "/status/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the reason says why."}},
)
async def ready(request: Request) -> JSONResponse:
    readiness = service_of(request).readiness()
    body = {
        "ready": readiness.ready,
        "reason": readiness.reason,
        "index_age_seconds": readiness.age,
    }
    return JSONResponse(body, 200 if readiness.ready else 503)
