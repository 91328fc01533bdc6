"""Exchanges: the lists this service fetches from NCMEC, StopNCII, ThreatExchange and peers
(docs/exchanges.md). Curators add, change and fetch them, as they import lists; auditors and
curators read them, their fetch status and quarantined records; credentials are admin keys'
alone, as keys are, and so is removing an exchange. Credentials go in and never come out: an
answer says only whether they are set, and the origin (scheme, host, port) they are bound to:
they go nowhere else, so a curator who moves an exchange to another host moves no credential
there (its own are forgotten; an admin's move keeps them). A key limited to lists reaches only
the exchanges that fill those lists, by the list each fills (whatever its name); the others
answer 404 to it, as exchanges that do not exist do."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, check_lists, unscoped, visible
from hashguard.api.errors import ApiError
from hashguard.api.fields import Name
from hashguard.api.matching import service_of
from hashguard.api.schemas import (
    BODY,
    JSON_NUMBER,
    KEYED,
    CredentialsState,
    ExchangeApisShown,
    ExchangeRemoved,
    ExchangeShown,
    ExchangesShown,
    ExchangeStatus,
    FetchDone,
    FetchQueued,
    JsonInt,
    Quarantine,
    refusals,
)
from hashguard.api.service import Service
from hashguard.errors import MAX_ID
from hashguard.exchanges import registry
from hashguard.exchanges.credentials import CredentialsUnreadable
from hashguard.exchanges.store import (
    DEFAULT_INTERVAL,
    MAX_INTERVAL,
    MIN_INTERVAL,
    Exchange,
    ExchangeNotFound,
    Exchanges,
)
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_errors import ListNotFound

router = APIRouter(prefix="/v1", tags=["exchanges"])
Reader = Annotated[ApiKey, allow(Role.CURATOR, Role.AUDITOR)]
Curator = Annotated[ApiKey, allow(Role.CURATOR)]
Admin = Annotated[ApiKey, allow()]

_CREDENTIALS = Field(
    description="The credentials the plug-in's credentials_schema names (JSON object); stored "
    "sealed, never shown again.",
    json_schema_extra={"writeOnly": True},
)


class NewExchange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100, description="The exchange, and the list it fills.")
    api: str = Field(max_length=60, description="The plug-in (GET /v1/exchange-apis).")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="base_url and the plug-in's settings (its config_schema).",
    )
    credentials: dict[str, Any] | None = Field(
        None,
        description="The exchange's own credentials (admin keys only; or set them later with "
        "PUT /v1/exchanges/{name}/credentials).",
        json_schema_extra={"writeOnly": True},
    )
    enabled: StrictBool = True
    interval_seconds: JsonInt = Field(DEFAULT_INTERVAL, ge=MIN_INTERVAL, le=MAX_INTERVAL)


class ExchangeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool | None = None
    interval_seconds: (
        Annotated[int, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL), JSON_NUMBER] | None
    ) = None
    config: dict[str, Any] | None = Field(
        None, description="All the settings, replacing the old ones (base_url included)."
    )


class NewCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credentials: dict[str, Any] = _CREDENTIALS


class NewSharedCredentials(NewCredentials):
    base_url: str = Field(
        "",
        max_length=2000,
        description="The base URL of the exchanges they are for (default: the plug-in's "
        "default_base_url); they serve exchanges on its scheme, host and port only.",
    )


def exchanges_of(service: Service) -> Exchanges:
    exchanges: Exchanges | None = getattr(service, "exchanges", None)
    if exchanges is None:
        raise ApiError(503, "this service fetches no exchanges")
    return exchanges


def visible_exchange(exchanges: Exchanges, key: ApiKey, name: str) -> Exchange:
    """The exchange ``name`` if ``key`` may see it: a key limited to lists sees those filling
    them (by the list it fills, whatever its name). Raises ExchangeNotFound for one it may not
    see, as for one that does not exist (names cannot be probed)."""
    exchange = exchanges.get(name)
    if not key.may_use(exchange.list):
        raise ExchangeNotFound(f"no exchange named {name[:100]!r}")
    return exchange


async def _visible(exchanges: Exchanges, key: ApiKey, name: str) -> Exchange:
    return await run_in_threadpool(visible_exchange, exchanges, key, name)


@router.get("/exchanges", response_model=ExchangesShown, responses=refusals(*KEYED, 503))
async def all_exchanges(request: Request, key: Reader) -> dict[str, Any]:
    """Every exchange this key may see (a key limited to lists: those filling them)."""
    exchanges = exchanges_of(service_of(request))
    found = await run_in_threadpool(exchanges.all)
    names = set(visible(key, [e.list for e in found]))
    return {"exchanges": [e.as_json() for e in found if e.list in names]}


@router.post(
    "/exchanges",
    status_code=201,
    response_model=ExchangeShown,
    responses=refusals(400, *KEYED, 404, 409, *BODY, 503),
)
async def add_exchange(request: Request, key: Curator, body: NewExchange) -> dict[str, Any]:
    """Add an exchange: it fetches into the list of its name (made when absent), first at once
    when enabled, then every ``interval_seconds`` (audited, never with the credentials).
    400 names the setting or credential the plug-in refuses; 404 an unknown plug-in; 409 a
    name taken, or a list another exchange fills. A key limited to lists adds exchanges into
    those lists only, and only when they exist (403: it cannot create lists)."""
    check_lists(key, [body.name])
    if body.credentials is not None and key.role is not Role.ADMIN:
        raise ApiError(403, "credentials are set with admin keys: add the exchange without "
                            "them, then PUT /v1/exchanges/{name}/credentials")  # fmt: skip
    service = service_of(request)
    exchanges = exchanges_of(service)
    if key.lists and not await run_in_threadpool(_list_exists, service, body.name):
        raise ApiError(403, "a key limited to lists cannot create lists")
    added = await run_in_threadpool(lambda: exchanges.add(
        body.name, body.api, body.config, body.credentials, enabled=body.enabled,
        interval=body.interval_seconds, actor=actor(key)))  # fmt: skip
    _wake(service)
    return added.as_json()


@router.get("/exchanges/{name}", response_model=ExchangeShown, responses=refusals(*KEYED, 404, 503))
async def get_exchange(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    exchanges = exchanges_of(service_of(request))
    return (await _visible(exchanges, key, name)).as_json()


@router.patch(
    "/exchanges/{name}",
    response_model=ExchangeShown,
    responses=refusals(400, *KEYED, 404, *BODY, 503),
)
async def update_exchange(
    request: Request, key: Curator, name: Name, body: ExchangeUpdate
) -> dict[str, Any]:
    """Switch an exchange on (fetched at once) or off, change its interval or its settings
    (audited with the old values). Settings that move it to another scheme, host or port
    forget its own credentials, unless an admin key moves it (then they go with it, never
    over plain http)."""
    service = service_of(request)
    exchanges = exchanges_of(service)
    await _visible(exchanges, key, name)
    updated = await run_in_threadpool(lambda: exchanges.update(
        name, enabled=body.enabled, interval=body.interval_seconds, config=body.config,
        actor=actor(key), carry_credentials=key.role is Role.ADMIN))  # fmt: skip
    if body.enabled:
        _wake(service)
    return updated.as_json()


@router.delete(
    "/exchanges/{name}", response_model=ExchangeRemoved, responses=refusals(*KEYED, 404, 503)
)
async def remove_exchange(request: Request, key: Admin, name: Name) -> dict[str, Any]:
    """Remove an exchange, its own credentials, quarantined records and feedback owed (admin
    only; audited). Its list stays with what it fetched."""
    exchanges = exchanges_of(service_of(request))
    await _visible(exchanges, key, name)
    removed = await run_in_threadpool(exchanges.remove, name, actor(key))
    return {"removed": removed.exchange.name, "list": removed.exchange.list,
            "message": removed.message}  # fmt: skip


@router.post(
    "/exchanges/{name}/fetch",
    status_code=202,
    response_model=FetchQueued,
    responses={
        200: {
            "model": FetchDone,
            "description": "With ``wait=true``, or for a disabled exchange: the fetch, done.",
        },
        **refusals(*KEYED, 404, 409, 503),
    },
)
async def fetch_exchange(
    request: Request,
    key: Curator,
    name: Name,
    wait: Annotated[
        bool, Query(description="Fetch while the request waits and answer what it did (200).")
    ] = False,
) -> Any:
    """Fetch the exchange now: the service's scheduler is woken for it (202; its status says
    when it is done), or, with ``wait=true`` or for a disabled exchange (which the scheduler
    leaves alone), the fetch runs while the request waits (200 with what it applied and
    quarantined, or why it failed). 409 while a fetch of it is running."""
    service = service_of(request)
    exchanges = exchanges_of(service)
    exchange = await _visible(exchanges, key, name)
    scheduler = getattr(service, "exchange_scheduler", None)
    if not wait and exchange.enabled and scheduler is not None:
        queued = await run_in_threadpool(scheduler.wake, name)
        if not queued:
            raise ApiError(409, f"exchange {name} is being fetched now; its status says when "
                                "it is done")  # fmt: skip
        return {"name": name, "queued": True, "status": f"/v1/exchanges/{name}/status"}
    sync = getattr(service, "exchange_sync", None)
    if sync is None:
        raise ApiError(503, "this service fetches no exchanges")
    done = await run_in_threadpool(sync.fetch, name)
    return JSONResponse(FetchDone(**done.as_json()).model_dump(), 200)


@router.get(
    "/exchanges/{name}/status", response_model=ExchangeStatus, responses=refusals(*KEYED, 404, 503)
)
async def exchange_status(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    """Where its fetching stands: HMA's fetch status and hashguard's."""
    exchanges = exchanges_of(service_of(request))
    await _visible(exchanges, key, name)
    status = await run_in_threadpool(exchanges.status, name)
    return {"name": name, **status.as_json()}


@router.get(
    "/exchanges/{name}/quarantine",
    response_model=Quarantine,
    responses=refusals(*KEYED, 404, 422, 503),
)
async def exchange_quarantine(
    request: Request,
    key: Reader,
    name: Name,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Older than this id.")] = None,
) -> dict[str, Any]:
    """The records the exchange sent that could not be read (where, why, an excerpt), newest
    first; they are in the audit log too."""
    exchanges = exchanges_of(service_of(request))
    await _visible(exchanges, key, name)
    held = await run_in_threadpool(exchanges.quarantined, name, limit, before)
    more = held[-1].id if len(held) == limit else None
    return {"name": name, "records": [r.as_json() for r in held], "next_before": more}


# --- credentials -----------------------------------------------------------------------------


@router.put(
    "/exchanges/{name}/credentials",
    response_model=CredentialsState,
    responses=refusals(400, *KEYED, 404, *BODY, 503),
)
async def set_exchange_credentials(
    request: Request, key: Admin, name: Name, body: NewCredentials
) -> dict[str, Any]:
    """Set the exchange's own credentials (checked by its plug-in; they win over the
    plug-in's shared ones), stored sealed and bound to its base URL's origin, audited without
    them. 400 for a plain http base URL (https only)."""
    exchanges = exchanges_of(service_of(request))
    await _visible(exchanges, key, name)
    origin = await run_in_threadpool(exchanges.set_credentials, name, body.credentials, actor(key))
    return {"scope": f"exchange:{name}", "has_credentials": True, "origin": origin}


@router.delete(
    "/exchanges/{name}/credentials",
    response_model=CredentialsState,
    responses=refusals(*KEYED, 404, 503),
)
async def clear_exchange_credentials(request: Request, key: Admin, name: Name) -> dict[str, Any]:
    """Forget the exchange's own credentials (its plug-in's shared ones, if any, apply)."""
    exchanges = exchanges_of(service_of(request))
    await _visible(exchanges, key, name)
    await run_in_threadpool(exchanges.set_credentials, name, None, actor(key))
    return {"scope": f"exchange:{name}", "has_credentials": False}


@router.get("/exchange-apis", response_model=ExchangeApisShown, responses=refusals(*KEYED, 503))
async def exchange_apis(request: Request, key: Reader) -> dict[str, Any]:
    """The installed plug-ins: the settings and credentials an exchange of each takes, and
    whether shared credentials are set for it."""
    exchanges = exchanges_of(service_of(request))

    def read() -> list[dict[str, Any]]:
        return [{"name": name, "title": plugin.title, "category": plugin.category,
                 "default_base_url": plugin.default_base_url,
                 "supports_feedback": plugin.supports_feedback,
                 "config_schema": plugin.config_schema.as_json(),
                 "credentials_schema": None if plugin.credentials_schema is None
                 else plugin.credentials_schema.as_json(),
                 "has_credentials": exchanges.has_api_credentials(name),
                 "credentials_origin": _shared_origin(exchanges, name)}
                for name, plugin in registry.installed().items()]  # fmt: skip

    return {"apis": await run_in_threadpool(read)}


@router.put(
    "/exchange-apis/{api}/credentials",
    response_model=CredentialsState,
    responses=refusals(400, *KEYED, 404, *BODY, 503),
)
async def set_api_credentials(
    request: Request, key: Admin, api: Name, body: NewSharedCredentials
) -> dict[str, Any]:
    """Set the credentials every exchange of the plug-in uses unless it has its own (HMA's
    per-API credentials), stored sealed, audited without them. They serve only exchanges on
    the scheme, host and port of ``base_url`` (default: the plug-in's); 400 when the plug-in
    has no default and none is given, or for plain http (https only)."""
    unscoped(key, "set credentials shared by every exchange of a plug-in")
    exchanges = exchanges_of(service_of(request))
    origin = await run_in_threadpool(lambda: exchanges.set_api_credentials(
        api, body.credentials, actor(key), body.base_url))  # fmt: skip
    return {"scope": f"api:{api}", "has_credentials": True, "origin": origin}


@router.delete(
    "/exchange-apis/{api}/credentials",
    response_model=CredentialsState,
    responses=refusals(*KEYED, 404, 503),
)
async def clear_api_credentials(request: Request, key: Admin, api: Name) -> dict[str, Any]:
    unscoped(key, "clear credentials shared by every exchange of a plug-in")
    exchanges = exchanges_of(service_of(request))
    await run_in_threadpool(exchanges.set_api_credentials, api, None, actor(key))
    return {"scope": f"api:{api}", "has_credentials": False}


def _list_exists(service: Service, name: str) -> bool:
    try:
        service.lists.get(name)
    except ListNotFound:
        return False
    return True


def _shared_origin(exchanges: Exchanges, api: str) -> str | None:
    try:
        return exchanges.api_credentials_origin(api)
    except CredentialsUnreadable:
        return None  # stored (has_credentials) but sealed under another secret


def _wake(service: Service) -> None:
    """A pass of the scheduler now (a new or re-enabled exchange is due at once)."""
    scheduler = getattr(service, "exchange_scheduler", None)
    if scheduler is not None:
        scheduler.wake()
