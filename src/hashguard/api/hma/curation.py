"""HMA's curation routes (``/c``): banks (hashguard's hash lists), their content (list entries),
and the signal and content types on offer."""

import contextlib
import dataclasses
import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, check_lists, visible
from hashguard.api.errors import ApiError
from hashguard.api.hma.hashing import hashed
from hashguard.api.hma.models import (
    CONTENT_SIGNALS,
    KEYED,
    MEDIA,
    SIGNALS,
    Admin,
    Bank,
    Banks,
    BankSignals,
    BankUpdate,
    Content,
    ContentAdded,
    ContentTypes,
    Curator,
    Deleted,
    Message,
    NewBank,
    Reader,
    SignalTypes,
    hma_type,
    refusals,
    signal_for,
)
from hashguard.api.matching import parse_hash, service_of
from hashguard.api.service import Service
from hashguard.errors import MAX_ID
from hashguard.lists.model import ChangeKind, EntryStatus, HashList, ListPolicy, Provenance
from hashguard.lists.records import Submission
from hashguard.media.formats import MediaKind
from hashguard.store.api_keys import ApiKey
from hashguard.store.list_errors import ListError, ListExists

router = APIRouter()
_BANK_NAME: Final = re.compile(r"[A-Z_][A-Z0-9_]*")


def _bank_json(hash_list: HashList) -> dict[str, Any]:
    return {"name": hash_list.name, "matching_enabled_ratio": hash_list.policy.enabled_ratio}


def _bank(service: Service, key: ApiKey, name: str) -> HashList:
    check_lists(key, [name])
    try:
        return service.lists.get(name)
    except ListError:
        raise ApiError(404, f"bank '{name}' not found") from None


def _ratio(enabled_ratio: float | None, enabled: bool | None) -> float | None:
    if enabled_ratio is not None:
        if not 0 <= enabled_ratio <= 1:
            raise ApiError(400, "enabled_ratio must be between 0 and 1")
        return enabled_ratio
    return None if enabled is None else float(enabled)


@router.get(
    "/c/banks",
    response_model=Banks,
    responses=refusals(*KEYED),
)
async def banks(request: Request, key: Reader) -> list[dict[str, Any]]:
    held = await run_in_threadpool(service_of(request).lists.lists)
    names = set(visible(key, [h.name for h in held]))
    return [_bank_json(h) for h in held if h.name in names]


@router.post(
    "/c/banks",
    status_code=201,
    response_model=Bank,
    responses=refusals(400, *KEYED, 413),
)
async def create_bank(request: Request, key: Curator, body: NewBank) -> dict[str, Any]:
    """A bank is a new hash list owned by the key's organisation (its name, else its id)."""
    if not _BANK_NAME.fullmatch(body.name):
        raise ApiError(400, "Bank names must be UPPER_WITH_UNDERSCORE")
    if key.lists:
        raise ApiError(403, "a key limited to lists cannot create lists")
    service = service_of(request)
    ratio = _ratio(body.enabled_ratio, body.enabled)
    policy = ListPolicy(enabled_ratio=1.0 if ratio is None else ratio)
    owner = key.name or f"key:{key.id}"  # the organisation, as far as the key says

    def create() -> HashList:
        return service.lists.create(body.name, owner, body.category, policy=policy,
                                    actor=actor(key))  # fmt: skip

    try:
        created = await run_in_threadpool(create)
    except ListExists:
        raise ApiError(403, "Bank already exists") from None  # HMA's status and words
    except ListError as error:
        raise ApiError(400, str(error)) from None
    return _bank_json(created)


@router.get(
    "/c/bank/{name}",
    response_model=Bank,
    responses=refusals(*KEYED, 404),
)
async def get_bank(request: Request, key: Reader, name: str) -> dict[str, Any]:
    return _bank_json(await run_in_threadpool(_bank, service_of(request), key, name))


@router.put(
    "/c/bank/{name}",
    response_model=Bank,
    responses=refusals(400, *KEYED, 404, 413),
)
async def update_bank(
    request: Request, key: Curator, name: str, body: BankUpdate
) -> dict[str, Any]:
    """Switch a bank on or off, or set its enabled_ratio. Renaming is refused: a list's name is
    part of its signed releases."""
    service = service_of(request)
    try:
        current = await run_in_threadpool(_bank, service, key, name)
    except ApiError as error:
        raise ApiError(404, "Bank not found") if error.status == 404 else error from None
    if body.name is not None and body.name != name:
        raise ApiError(400, "hashguard does not rename lists (the name is part of every signed "
                            "release); create a new bank instead")  # fmt: skip
    ratio = _ratio(body.enabled_ratio, body.enabled)
    if ratio is None:
        return _bank_json(current)
    policy = dataclasses.replace(current.policy, enabled_ratio=ratio)
    updated = await run_in_threadpool(
        lambda: service.lists.update(name, policy=policy, actor=actor(key))
    )
    return _bank_json(updated)


@router.delete(
    "/c/bank/{name}",
    response_model=Message,
    responses=refusals(*KEYED),
)
async def delete_bank(request: Request, key: Admin, name: str) -> dict[str, Any]:
    """Remove the bank's list (admin keys only). Like HMA, a bank that does not exist is
    'Done' too."""
    service = service_of(request)
    check_lists(key, [name])
    with contextlib.suppress(ListError):
        await run_in_threadpool(service.lists.remove, name, actor(key))
    return {"message": "Done"}


async def _add(
    request: Request, key: ApiKey, name: str, hashes: dict[str, str], kind: MediaKind | None
) -> dict[str, Any]:
    """Submit each hash to the bank's list; HMA's answer with the first entry's id."""
    service = service_of(request)
    await run_in_threadpool(_bank, service, key, name)
    signals: dict[str, str] = {}
    records: list[Submission] = []
    by = actor(key)
    provenance = Provenance(submitted_by=key.name or by)
    for hma_name, text in hashes.items():
        signal = signal_for(hma_name)
        try:
            hashed = parse_hash(signal, text).hashes[0]
        except ApiError as error:
            raise ApiError(400, f"Invalid {hma_name} signal: {error.message}") from None
        signals[hma_name if kind is None else hma_type(signal, kind)] = hashed.text
        records.append(Submission(signal, hashed.text, provenance=provenance))

    def run() -> int:
        service.lists.apply(name, records, by)
        first = records[0]
        return service.lists.entry(name, first.signal, first.value).id

    entry_id = await run_in_threadpool(run)
    return {"id": entry_id, "signals": signals}


@router.post(
    "/c/bank/{name}/signal",
    response_model=ContentAdded,
    responses=refusals(400, *KEYED, 404, 413),
)
async def add_signal(
    request: Request, key: Curator, name: str, body: BankSignals
) -> dict[str, Any]:
    """Add hashes: ``{"pdq": "<hex>", "video_md5": "<hex>"}``."""
    hashes = {k: v for k, v in (body.model_extra or {}).items()}
    if not hashes:
        raise ApiError(400, "No signals given")
    for signal_name, text in hashes.items():
        signal_for(signal_name)
        if not isinstance(text, str):
            raise ApiError(400, f"Invalid {signal_name} signal: expected a string")
    return await _add(request, key, name, hashes, None)


@router.post(
    "/c/bank/{name}/content",
    response_model=ContentAdded,
    responses=refusals(400, *KEYED, 404, *MEDIA),
)
async def add_content(
    request: Request,
    key: Curator,
    name: str,
    url: str | None = None,
    content_type: str | None = None,
    types: str | None = None,
) -> dict[str, Any]:
    """Add media by ``url`` or upload (field ``photo`` or ``video``): its hashes become list
    entries. HMA's metadata and note are not stored (see the compatibility notes)."""
    await run_in_threadpool(_bank, service_of(request), key, name)
    kind_name, hashes = await hashed(request, url, content_type, types)
    hashes = {n: h for n, h in hashes.items() if h}
    if not hashes:
        raise ApiError(400, "Invalid pdq signal: the image has too little detail to hash")
    kind = MediaKind.IMAGE if kind_name == "photo" else MediaKind.VIDEO
    return await _add(request, key, name, hashes, kind)


@router.get(
    "/c/bank/{name}/content/{content_id}",
    response_model_exclude_unset=True,
    response_model=Content,
    responses=refusals(400, *KEYED, 404),
)
async def get_content(
    request: Request,
    key: Reader,
    name: str,
    content_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    include_signals: bool = False,
) -> dict[str, Any]:
    service = service_of(request)
    bank = await run_in_threadpool(_bank, service, key, name)
    try:
        entry = await run_in_threadpool(service.lists.entry_by_id, name, content_id)
    except ListError:
        raise ApiError(404, f"content {content_id} not found in bank '{name}'") from None
    answer: dict[str, Any] = {
        "id": entry.id,
        "disable_until_ts": 1 if entry.status is EntryStatus.ACTIVE else 0,
        "original_media_uri": None,
        "bank": _bank_json(bank),
    }
    if include_signals:
        answer["signals"] = {hma_type(entry.signal): entry.value}
    return answer


@router.delete(
    "/c/bank/{name}/content/{content_id}",
    response_model=Deleted,
    responses=refusals(400, *KEYED, 404),
)
async def delete_content(
    request: Request, key: Curator, name: str, content_id: Annotated[int, Path(ge=0, le=MAX_ID)]
) -> dict[str, Any]:
    """Delete one entry (a tombstone in the list's change log): ``{"deleted": 1}``, or 0 if
    there was nothing to delete."""
    service = service_of(request)
    await run_in_threadpool(_bank, service, key, name)

    def run() -> int:
        try:
            entry = service.lists.entry_by_id(name, content_id)
            service.lists.change(name, ChangeKind.DELETE, entry.signal, entry.value,
                                 "deleted through the HMA API", actor(key))  # fmt: skip
        except ListError:
            return 0
        return 1

    return {"deleted": await run_in_threadpool(run)}


# --- configuration --------------------------------------------------------------------------


@router.get(
    "/c/signal_type",
    response_model=SignalTypes,
    responses=refusals(*KEYED),
)
async def signal_types(request: Request, key: Reader) -> list[dict[str, Any]]:
    return [{"name": name, "enabled_ratio": 1.0} for name in SIGNALS if name != "md5"]


@router.get(
    "/c/content_type",
    response_model=ContentTypes,
    responses=refusals(*KEYED),
)
async def content_types(request: Request, key: Reader) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": True} for name in CONTENT_SIGNALS]
