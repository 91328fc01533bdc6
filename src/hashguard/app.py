"""The served app (floor 4, above ``api`` and ``web``): hashguard's routes under /v1, HMA's
routes, health and metrics, and the review desk's pages; body limits, JSON errors, metrics on
every request."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy import Engine
from starlette.types import ASGIApp

from hashguard import __version__
from hashguard.api import (
    auth,
    docs,
    errors,
    hma,
    routes_admin,
    routes_device,
    routes_exchanges,
    routes_hotline,
    routes_lists,
    routes_media,
    routes_monitor,
    routes_review,
    routes_status,
    routes_takedown,
    routes_victims,
    schemas,
)
from hashguard.api.hot import HotRoutes
from hashguard.api.limits import BodyLimitMiddleware
from hashguard.api.metrics import Metrics, MetricsMiddleware
from hashguard.api.service import Service
from hashguard.api.settings import ServiceSettings
from hashguard.device import oprf
from hashguard.web import (
    console,
    desk,
    hosters,
    hotline_desk,
    monitor_pages,
    report_pages,
    victims,
    victims_pages,
)
from hashguard.web.headers import SecurityHeaders

_UPLOAD_ROUTES = ("/v1/hash", "/v1/match/media", "/h/hash", "/m/lookup")

_DESCRIPTION = """Match media and hashes against verifiable hash lists of known child sexual
abuse material, with API keys and roles on every route, a match log, a hash-chained audit log
and Prometheus metrics. HMA's routes (`/h`, `/m`, `/c`, `/status`) answer as HMA does.

Send a key as `Authorization: Bearer <key>` (`hashguard keys create --role ROLE`)."""


_HMA = "Meta HMA 2.0's routes; the differences: docs/hma-compatibility.md"


def create_app(engine: Engine, settings: ServiceSettings | None = None) -> FastAPI:
    """The app over ``engine`` (migrated). The lists load in the background once it starts."""
    settings = settings or ServiceSettings()
    service = Service(engine, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="hashguard",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[{"name": "HMA-compatible", "description": _HMA}],
        dependencies=[Depends(auth.one_value_each_unkeyed)],
        docs_url=None,  # served by api.docs, from the package's own files
        redoc_url=None,
    )
    docs.install(app)
    app.state.service = service
    app.state.metrics = Metrics(service)
    errors.install(app)
    schemas.document(app)
    app.state.device = (
        routes_device.Evaluator(
            oprf.ServerKey.load(settings.oprf_key),
            settings.oprf_limit,
            settings.oprf_address_limit,
        )
        if settings.oprf_key is not None
        else None
    )
    for module in (
        routes_status, routes_media, routes_lists, routes_admin, routes_review, routes_device, hma,
        routes_victims, routes_hotline, routes_takedown, routes_monitor, routes_exchanges,
    ):  # fmt: skip
        app.include_router(module.router)
    app.include_router(routes_takedown.status_router)
    app.include_router(routes_admin.metrics_router)
    app.include_router(desk.router)
    app.include_router(hotline_desk.router)
    app.include_router(hosters.router)
    app.include_router(victims.router)
    app.include_router(victims_pages.router)
    app.include_router(report_pages.router)
    app.include_router(monitor_pages.router)
    app.include_router(console.router)

    def limit_for(method: str, path: str) -> int:
        if path.startswith("/v1/lists/") and path.endswith("/import"):
            return settings.max_import_bytes
        if path in _UPLOAD_ROUTES or (path.startswith("/c/bank/") and path.endswith("/content")):
            return settings.max_upload_bytes
        if path == console.TESTER:  # a file, and a pasted hash as long as a JSON body takes
            return settings.max_upload_bytes + settings.max_json_bytes
        return settings.max_json_bytes

    def page_for(path: str) -> ASGIApp | None:
        return console.too_large(settings.max_upload_bytes) if path == console.TESTER else None

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for, page_for=page_for)
    return app


def served(app: FastAPI) -> ASGIApp:
    """What the server runs: ``app`` behind the metrics on every request and the lean path of
    the hot routes (``api.hot``: matching by hash, HMA's lookups), which passes everything else
    on to ``app``; the security headers around it all, so the hot routes' answers, the body
    limit's pages and the framework's last-resort 500s get them too."""
    metrics = app.state.metrics
    return SecurityHeaders(MetricsMiddleware(HotRoutes(app, app.state.service, metrics), metrics))
