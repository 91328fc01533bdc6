"""Keys (admin), the audit log and the match log (auditor), and the metrics."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, unscoped
from hashguard.api.errors import ApiError
from hashguard.api.fields import Names, Word
from hashguard.api.matching import service_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    METRICS,
    AuditCheck,
    AuditEvents,
    Keys,
    KeyShown,
    LoggedMatches,
    NewKeyShown,
    refusals,
)
from hashguard.errors import MAX_ID, Invalid
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey, ApiKeyError, Role
from hashguard.takedown.service import check_hoster

log = logging.getLogger("hashguard.api")

router = APIRouter(prefix="/v1", tags=["keys and logs"])
metrics_router = APIRouter(tags=["status"])
Admin = Annotated[ApiKey, allow()]
Auditor = Annotated[ApiKey, allow(Role.AUDITOR)]
Watcher = Annotated[ApiKey, allow(Role.AUDITOR, Role.REVIEWER)]


class NewKey(BaseModel):
    role: Role
    lists: Names = Field(default_factory=list, description="Limit the key to these lists.")
    name: str = Field("", max_length=200, description="Who or what the key is for.")
    hoster: str | None = Field(
        None, max_length=200,
        description="A hoster key's hoster, as the registry of hosters names it (required for "
        "the hoster role, refused for others).",
    )  # fmt: skip


def key_json(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "role": key.role.value, "lists": list(key.lists), "name": key.name,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            "hoster": key.hoster}  # fmt: skip


@router.get("/keys", response_model=Keys, responses=refusals(*KEYED))
async def list_keys(request: Request, key: Admin) -> dict[str, Any]:
    """Every key (never a secret)."""
    unscoped(key, "manage keys")
    keys = await run_in_threadpool(service_of(request).keys.all)
    return {"keys": [key_json(k) for k in keys]}


@router.post(
    "/keys", status_code=201, response_model=NewKeyShown, responses=refusals(400, *KEYED, *BODY)
)
async def create_key(request: Request, key: Admin, body: NewKey) -> dict[str, Any]:
    """A new key; its token is in this answer only (stored hashed). Audited."""
    unscoped(key, "manage keys")
    service = service_of(request)
    store = service.keys
    hotline = getattr(service, "hotline", None)
    if body.hoster and hotline is not None and service.settings.hotline_hosters is not None:
        try:
            check_hoster(hotline.hosters, body.hoster)
        except Invalid as error:
            raise ApiError(400, str(error)) from None
    try:
        created, token = await run_in_threadpool(
            store.create, body.role, body.lists, body.name, actor(key), None, body.hoster
        )
    except ApiKeyError as error:
        raise ApiError(400, str(error)) from None
    return {**key_json(created), "token": token}


@router.delete("/keys/{ident}", response_model=KeyShown, responses=refusals(*KEYED, 404))
async def revoke_key(request: Request, key: Admin, ident: Word) -> dict[str, Any]:
    """Revoke a key; it stops working at once. Audited."""
    unscoped(key, "manage keys")
    service = service_of(request)
    try:
        revoked, unconfirmed = await run_in_threadpool(service.keys.revoke, ident, actor(key))
    except ApiKeyError as error:
        raise ApiError(404, str(error)) from None
    service.forget_key(ident)
    if unconfirmed is None or unconfirmed:
        late = "unknown" if unconfirmed is None else ", ".join(map(str, unconfirmed))
        log.warning("key %s revoked; running servers that did not confirm in time: %s; each "
                    "holds it within its key cache time", ident, late)  # fmt: skip
    return key_json(revoked)


@router.get("/audit", response_model=AuditEvents, responses=refusals(*KEYED, 422))
async def audit_events(
    request: Request,
    key: Auditor,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit events numbered above ``after``, oldest first (for a key limited to lists, the
    events of those lists only)."""
    subjects = key.lists or None
    engine = service_of(request).engine
    found = await run_in_threadpool(audit.events, engine, after, limit, subjects)
    return {"events": [
        {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
         "details": e.details, "prev_hash": e.prev_hash, "hash": e.hash} for e in found
    ]}  # fmt: skip


@router.get(
    "/audit/verify",
    response_model=AuditCheck,
    response_model_exclude_unset=True,
    responses=refusals(*KEYED),
)
async def verify_audit(request: Request, key: Auditor) -> dict[str, Any]:
    """Recompute the audit chain: ``ok`` with the event count and head, or the first event
    that was edited, removed or reordered."""
    unscoped(key, "verify the whole audit log")
    engine = service_of(request).engine
    try:
        count = await run_in_threadpool(audit.verify, engine)
    except audit.AuditError as error:
        return {"ok": False, "problem": str(error)}
    seq, digest = await run_in_threadpool(audit.head, engine)
    return {"ok": True, "events": count, "head": {"seq": seq, "hash": digest}}


@router.get("/matches", response_model=LoggedMatches, responses=refusals(*KEYED, 422))
async def match_log(
    request: Request,
    key: Watcher,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Stored matches numbered above ``after``, oldest first (only the key's lists)."""
    lists = key.lists or None
    found = await run_in_threadpool(service_of(request).match_log.recent, after, limit, lists)
    return {"matches": [
        {"id": m.id, "at": m.at.isoformat() if m.at else None, "caller": m.caller,
         "list": m.list, "entry": m.entry, "signal": m.signal, "distance": m.distance,
         "content_ref": m.content_ref} for m in found
    ]}  # fmt: skip


@metrics_router.get("/metrics", response_class=Response, responses={**METRICS, **refusals(*KEYED)})
async def metrics(request: Request, key: Auditor) -> Response:
    """Prometheus metrics (scrape with this key as a bearer token)."""
    unscoped(key, "read the metrics of every list")
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
