"""HMA's exchange routes (``/c/exchanges``, ``/c/exchange/{name}``): exchange types and their
shared credentials, and exchanges as HMA creates, shows, switches, deletes and reports them,
over hashguard's exchanges (``hashguard.exchanges``). As in HMA, an exchange fills the bank of
its name, made with it, and deleting the exchange deletes that bank; renaming the bank renames
the bank only (HMA keeps its exchange's bank by id), and keys limited to lists reach an
exchange through the bank it fills. Requests and answers, statuses and messages are HMA's
(differences: docs/hma-compatibility.md).
"""

import contextlib
import json
import re
from typing import Any, Final

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictBool
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, check_lists, unscoped
from hashguard.api.errors import ApiError
from hashguard.api.fields import Name
from hashguard.api.hma.models import (
    KEYED,
    Admin,
    Curator,
    ExchangeApiAuth,
    ExchangeApis,
    ExchangeApiSchema,
    ExchangeNames,
    FetchStatus,
    HmaExchange,
    Message,
    Reader,
    refusals,
)
from hashguard.api.matching import service_of
from hashguard.api.routes_exchanges import exchanges_of, visible_exchange
from hashguard.errors import Conflict, Invalid
from hashguard.exchanges import registry
from hashguard.exchanges.api import ExchangeApi
from hashguard.exchanges.store import BASE_URL, Exchange, ExchangeNotFound, Exchanges
from hashguard.store.api_keys import ApiKey
from hashguard.store.list_errors import ListError

router = APIRouter()
_EXCHANGE_NAME: Final = re.compile(r"^[A-Z0-9_]+$")
_FIELDS_SET_BY_HMA: Final = ("name", "api", "enabled")  # not settings of the exchange type
_JSON_BODY: Final = {
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
}


class ExchangeUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    enabled: StrictBool | None = None


def _plugin(api: str, status: int) -> type[ExchangeApi]:
    plugin = registry.installed().get(api)
    if plugin is None:
        message = f"no such Exchange API '{api}'" if status == 400 else (
            f"Exchange API '{api}' not found")  # fmt: skip
        raise ApiError(status, message)
    return plugin


def _auth(exchanges: Exchanges, api: str, plugin: type[ExchangeApi]) -> dict[str, bool]:
    return {"supports_authentification": plugin.credentials_schema is not None,
            "has_set_authentification": exchanges.has_api_credentials(api)}  # fmt: skip


def _exchange(exchanges: Exchanges, key: ApiKey, name: str) -> Exchange:
    """The exchange, if ``key`` may see it (by the list it fills); 404 as HMA answers an
    unknown one otherwise."""
    try:
        return visible_exchange(exchanges, key, name)
    except ExchangeNotFound:
        raise ApiError(404, f"Exchange '{name}' not found") from None


def _exchange_json(exchange: Exchange) -> dict[str, Any]:
    """HMA's exchange configuration: name, api, enabled, then the type's settings (the base
    URL, hashguard's, when it has one)."""
    settings = {k: v for k, v in exchange.config.items() if not (k == BASE_URL and not v)}
    return {"name": exchange.name, "api": exchange.api, "enabled": exchange.enabled, **settings}


async def _json_object(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ApiError(400, "Failed to decode JSON object") from None


@router.get("/c/exchanges/apis", response_model=ExchangeApis, responses=refusals(*KEYED))
async def exchange_apis(request: Request, key: Reader) -> list[str]:
    """The installed exchange types."""
    return list(registry.installed())


@router.get(
    "/c/exchanges/api/{api}", response_model=ExchangeApiAuth, responses=refusals(400, *KEYED)
)
async def exchange_api(request: Request, key: Reader, api: Name) -> dict[str, bool]:
    """Whether the type takes credentials and whether they are set (never the credentials)."""
    exchanges = exchanges_of(service_of(request))
    plugin = _plugin(api, 400)
    return await run_in_threadpool(_auth, exchanges, api, plugin)


@router.post(
    "/c/exchanges/api/{api}",
    response_model=ExchangeApiAuth,
    responses=refusals(400, *KEYED, 413),
    openapi_extra=_JSON_BODY,
)
async def set_exchange_api_credentials(request: Request, key: Admin, api: Name) -> dict[str, bool]:
    """``{"credential_json": {...}}`` sets the credentials every exchange of the type uses
    (checked, stored sealed); ``{"credential_json": {}}`` clears them. They serve only the
    exchanges on the scheme, host and port of the type's default base URL, or of
    ``"base_url"`` when given (hashguard's; required for a type without a default). Not with
    a key limited to lists (403): they serve every list's exchanges."""
    unscoped(key, "set or clear credentials shared by every exchange of a plug-in")
    exchanges = exchanges_of(service_of(request))
    plugin = _plugin(api, 400)
    body = await _json_object(request)
    if not isinstance(body, dict):
        raise ApiError(400, "this endpoint expects a json object payload")
    given = body.get("credential_json")
    base_url = body.get(BASE_URL) or ""
    if not isinstance(base_url, str):
        raise ApiError(400, "base_url must be a string")
    if given is not None:
        if not isinstance(given, dict):
            raise ApiError(400, "credential_json must be an object")
        await run_in_threadpool(lambda: exchanges.set_api_credentials(
            api, given or None, actor(key), base_url))  # fmt: skip
    return await run_in_threadpool(_auth, exchanges, api, plugin)


@router.get(
    "/c/exchanges/api/{api}/schema",
    response_model=ExchangeApiSchema,
    responses=refusals(400, *KEYED, 404),
)
async def exchange_api_schema(request: Request, key: Reader, api: Name) -> dict[str, Any]:
    """The fields of ``api_json`` (a base_url first for a type that reaches a host and has no
    default) and of ``credential_json`` (null: none)."""
    plugin = _plugin(api, 404)
    fields = [f.as_json() for f in plugin.config_schema.fields]
    if not plugin.local:
        base = {"name": BASE_URL, "type": "string", "required": not plugin.default_base_url,
                "default": plugin.default_base_url or None, "choices": None,
                "help": "the exchange's http(s) address (hashguard)"}  # fmt: skip
        fields.insert(0, base)
    credentials = plugin.credentials_schema
    shown = None if credentials is None else credentials.as_json()
    return {"config_schema": {"fields": fields}, "credentials_schema": shown}


@router.post(
    "/c/exchanges",
    status_code=201,
    response_model=Message,
    responses=refusals(400, *KEYED, 413),
    openapi_extra=_JSON_BODY,
)
async def create_exchange(request: Request, key: Curator) -> dict[str, str]:
    """``{"bank": "NAME", "api": "sample", "api_json": {...}}``: an exchange and its new bank
    NAME, fetched at once (unless ``api_json`` says ``"enabled": false``)."""
    body = await _json_object(request)
    if not isinstance(body, dict):
        raise ApiError(400, "bank is required")
    bank = body.get("bank")
    if bank is None:
        raise ApiError(400, "bank is required")
    if not isinstance(bank, str) or not _EXCHANGE_NAME.match(bank):
        raise ApiError(400, "Field `bank` must match /^[A-Z0-9_]+$/")
    api_json = body.get("api_json", {})
    if not isinstance(api_json, dict):
        raise ApiError(400, "Field `api_json` must be object")
    api = body.get("api")
    if api is None:
        raise ApiError(400, "Field `api_type` is required")
    if not isinstance(api, str) or api not in registry.installed():
        raise ApiError(400, f"No such exchange type '{api}'")
    enabled = api_json.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ApiError(400, "Failed to parse `api_json` - enabled: expected true or false")
    check_lists(key, [bank])
    if key.lists:
        raise ApiError(403, "a key limited to lists cannot create lists")
    service = service_of(request)
    exchanges = exchanges_of(service)
    settings = {k: v for k, v in api_json.items() if k not in _FIELDS_SET_BY_HMA}

    def create() -> None:
        with contextlib.suppress(ListError):
            service.lists.get(bank)
            raise ApiError(403, "Bank already exists")  # HMA makes the bank with the exchange
        try:
            exchanges.add(bank, api, settings, enabled=enabled, actor=actor(key))
        except Conflict:
            raise ApiError(403, "Bank already exists") from None
        except Invalid as error:
            raise ApiError(400, f"Failed to parse `api_json` - {error}") from None

    await run_in_threadpool(create)
    scheduler = getattr(service, "exchange_scheduler", None)
    if scheduler is not None:
        scheduler.wake()
    return {"message": "Created successfully"}


@router.get("/c/exchanges", response_model=ExchangeNames, responses=refusals(*KEYED))
async def exchange_names(request: Request, key: Reader) -> list[str]:
    """The names of the exchanges."""
    exchanges = exchanges_of(service_of(request))
    found = await run_in_threadpool(exchanges.all)
    return [e.name for e in found if key.may_use(e.list)]


@router.get("/c/exchange/{name}", response_model=HmaExchange, responses=refusals(400, *KEYED, 404))
async def get_exchange(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    exchanges = exchanges_of(service_of(request))
    return _exchange_json(await run_in_threadpool(_exchange, exchanges, key, name))


@router.put(
    "/c/exchange/{name}",
    response_model=HmaExchange,
    responses=refusals(400, *KEYED, 404, 413),
)
async def update_exchange(
    request: Request, key: Curator, name: Name, body: ExchangeUpdate
) -> dict[str, Any]:
    """``{"enabled": false}`` stops fetching; ``true`` fetches again, at once."""
    service = service_of(request)
    exchanges = exchanges_of(service)
    current = await run_in_threadpool(_exchange, exchanges, key, name)
    if body.enabled is None or body.enabled == current.enabled:
        return _exchange_json(current)
    updated = await run_in_threadpool(
        lambda: exchanges.update(name, enabled=body.enabled, actor=actor(key))
    )
    scheduler = getattr(service, "exchange_scheduler", None)
    if body.enabled and scheduler is not None:
        scheduler.wake()
    return _exchange_json(updated)


@router.delete("/c/exchange/{name}", response_model=Message, responses=refusals(400, *KEYED))
async def delete_exchange(request: Request, key: Admin, name: Name) -> dict[str, str]:
    """Delete the exchange and, as in HMA, its bank (admin keys only). An exchange that does
    not exist is deleted too, and so, to a key limited to lists, is one filling another list
    (it stays: the key may not see it)."""
    service = service_of(request)
    exchanges = exchanges_of(service)

    def delete() -> None:
        try:
            visible_exchange(exchanges, key, name)
            removed = exchanges.remove(name, actor(key))
        except ExchangeNotFound:
            return
        with contextlib.suppress(ListError):
            service.lists.remove(removed.exchange.list, actor(key))

    await run_in_threadpool(delete)
    return {"message": "Exchange deleted"}


@router.get(
    "/c/exchange/{name}/status", response_model=FetchStatus, responses=refusals(400, *KEYED, 404)
)
async def exchange_status(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    """HMA's fetch status: the checkpoint's time, a running fetch's start, the last fetch's
    end and outcome, whether it is up to date, and the items fetched."""
    exchanges = exchanges_of(service_of(request))

    def read() -> dict[str, Any]:
        _exchange(exchanges, key, name)
        status = exchanges.status(name)
        return {"checkpoint_ts": status.checkpoint_ts,
                "running_fetch_start_ts": status.running_fetch_start_ts,
                "last_fetch_complete_ts": status.last_fetch_complete_ts,
                "last_fetch_succeeded": status.last_fetch_succeeded,
                "up_to_date": status.up_to_date, "fetched_items": status.fetched_items}  # fmt: skip

    return await run_in_threadpool(read)
