"""HMA-compatible routes: the requests and answers of Meta's Hasher-Matcher-Actioner 2.0, so that
an HMA client works unchanged against hashguard. Banks are hash lists; a bank's content is HMA's
content items (``store.bank_contents``: one per add, holding list entries), and a list entry no
item holds answers by its own id. The shapes are in ``docs/research/hma-api.md``; the
differences are listed in ``docs/hma-compatibility.md``. As in HMA, the parts are hashing
(``/h``), matching (``/m``) and curation (``/c``), with the core routes (``/status``,
``/readyz``, ``/livez``) here.

Errors on these routes are HMA's ``{"message": ...}`` (see ``errors.install``).
"""

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from hashguard.api.hma import curation, exchanges, hashing, matching
from hashguard.api.matching import service_of
from hashguard.api.service import Service

router = APIRouter(tags=["HMA-compatible"])  # _TAG
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "INDEX-NOT-LOADED while the lists load, INDEX-STALE when behind.",
        "content": {"text/plain": {"schema": {"type": "string"}, "example": "INDEX-NOT-LOADED"}},
    }
}


@router.get("/status", response_class=PlainTextResponse, responses=_NOT_READY)
async def status(request: Request) -> PlainTextResponse:
    """HMA's status: I-AM-ALIVE, or 503 INDEX-NOT-LOADED / INDEX-STALE."""
    return _status(service_of(request), "I-AM-ALIVE")


@router.get("/readyz", response_class=PlainTextResponse, responses=_NOT_READY)
async def readyz(request: Request) -> PlainTextResponse:
    return _status(service_of(request), "READY")


@router.get("/livez", response_class=PlainTextResponse)
async def livez() -> PlainTextResponse:
    return PlainTextResponse("OK")


def _status(service: Service, alive: str) -> PlainTextResponse:
    readiness = service.readiness()
    if readiness.ready:
        return PlainTextResponse(alive)
    loading = service.matcher is None
    return PlainTextResponse("INDEX-NOT-LOADED" if loading else "INDEX-STALE", 503)


router.include_router(hashing.router)
router.include_router(matching.router)
router.include_router(curation.router)
router.include_router(exchanges.router)

TITLE: Final = "Open Media Match API"  # HMA's title: clients may check it
_ALSO: Final = ("/status/live",)  # HMA's route that hashguard's status routes answer
_TAG: Final = "HMA-compatible"
_DESCRIPTION: Final = (
    "The Hasher-Matcher-Actioner (HMA) routes hashguard answers as HMA does; the differences "
    "are listed in docs/hma-compatibility.md. hashguard's own API is at /openapi.json."
)


@router.get("/openapi/openapi.json", include_in_schema=False)
async def hma_openapi(request: Request) -> JSONResponse:
    """HMA's OpenAPI document, where HMA serves it: the HMA-compatible routes of hashguard's
    own document (same models, same security), under HMA's title."""
    state = request.app.state
    document = getattr(state, "hma_openapi", None)
    if document is None:
        whole = request.app.openapi()
        paths = {
            path: operations
            for path, operations in whole["paths"].items()
            if path in _ALSO or any(_TAG in o.get("tags", ()) for o in operations.values())
        }
        info = {**whole["info"], "title": TITLE, "description": _DESCRIPTION}
        document = {**whole, "info": info, "paths": paths, "tags": [t for t in
                    whole.get("tags", ()) if t.get("name") == _TAG]}  # fmt: skip
        state.hma_openapi = document
    return JSONResponse(document)


@router.get("/site-map", include_in_schema=False)
async def site_map(request: Request) -> list[str]:
    """Every route's path, sorted, once each (HMA's site map): the documented routes and the
    others (pages, documents, static files)."""
    paths = set(request.app.openapi()["paths"])
    paths.update(
        path for r in request.app.routes if isinstance(path := getattr(r, "path", None), str)
    )
    paths.update(("/openapi/openapi.json", "/site-map"))
    return sorted(paths)
