"""HMA's curation routes (``/c``): banks (hashguard's hash lists), their content (list entries),
and the signal and content types on offer."""

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, check_lists, visible
from hashguard.api.errors import ApiError
from hashguard.api.fields import Name, Text, Url, Word
from hashguard.api.hma.hashing import measured
from hashguard.api.hma.models import (
    CONTENT_SIGNALS,
    KEYED,
    LISTED,
    MEDIA,
    Admin,
    Bank,
    BankedContentMetadata,
    Banks,
    BankSignals,
    BankUpdate,
    Content,
    ContentAdded,
    ContentTypes,
    ContentUpdated,
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
from hashguard.api.uploads import read_upload
from hashguard.errors import MAX_ID
from hashguard.lists.model import ChangeKind, Entry, EntryStatus, HashList, ListPolicy
from hashguard.media.formats import MediaKind
from hashguard.store.api_keys import ApiKey
from hashguard.store.bank_contents import BankContent
from hashguard.store.list_errors import ListError, ListExists, ListNotFound

router = APIRouter()
_BANK_NAME: Final = re.compile(r"[A-Z_][A-Z0-9_]*")
NOTE_LENGTH: Final = 255  # HMA's limit on a content item's note
FIVE_YEARS: Final = 5 * 365 * 24 * 3600  # HMA's furthest disable_until_ts


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
    responses=refusals(400, *KEYED, 404),
)
async def get_bank(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    return _bank_json(await run_in_threadpool(_bank, service_of(request), key, name))


@router.put(
    "/c/bank/{name}",
    response_model=Bank,
    responses=refusals(400, *KEYED, 404, 413),
)
async def update_bank(
    request: Request, key: Curator, name: Name, body: BankUpdate
) -> dict[str, Any]:
    """Rename a bank (``name``), switch it on or off, or set its enabled_ratio. A renamed
    list keeps its entries and log; its releases already signed keep the old name, the next
    is signed under the new one."""
    service = service_of(request)
    try:
        current = await run_in_threadpool(_bank, service, key, name)
    except ApiError as error:
        raise ApiError(404, "Bank not found") if error.status == 404 else error from None
    ratio = _ratio(body.enabled_ratio, body.enabled)  # checked before anything changes
    policy = None if ratio is None else dataclasses.replace(current.policy, enabled_ratio=ratio)
    if body.name is not None and body.name != name:
        if not _BANK_NAME.fullmatch(body.name):
            raise ApiError(400, "Bank names must be UPPER_WITH_UNDERSCORE")
        if key.lists:
            raise ApiError(403, "a key limited to lists cannot rename lists")
        new_name = body.name

        def rename() -> HashList:  # the name and the ratio together, or neither (as HMA)
            return service.lists.rename(name, new_name, actor(key), policy=policy)

        try:
            return _bank_json(await run_in_threadpool(rename))
        except ListExists:
            raise ApiError(403, "Bank name already exists") from None  # HMA's status and words
    if policy is None:
        return _bank_json(current)
    updated = await run_in_threadpool(
        lambda: service.lists.update(name, policy=policy, actor=actor(key))
    )
    return _bank_json(updated)


@router.delete(
    "/c/bank/{name}",
    response_model=Message,
    responses=refusals(400, *KEYED, 409),
)
async def delete_bank(request: Request, key: Admin, name: Name) -> dict[str, Any]:
    """Remove the bank's list (admin keys only). Like HMA, a bank that does not exist is
    'Done' too. A bank an exchange fills is refused (409): remove the exchange first."""
    service = service_of(request)
    check_lists(key, [name])
    with contextlib.suppress(ListNotFound):
        await run_in_threadpool(service.lists.remove, name, actor(key))
    return {"message": "Done"}


# --- content --------------------------------------------------------------------------------


def _note(note: Any) -> str | None:
    """HMA's note: a string of at most 255 characters; empty is none."""
    if not note:
        return None
    if not isinstance(note, str):
        raise ApiError(400, "note should be a string")
    if len(note) > NOTE_LENGTH:
        raise ApiError(400, "note must be at most 255 characters")
    return note


def _metadata(given: Any) -> dict[str, Any] | None:
    """HMA's metadata: a JSON object of BankedContentMetadata's fields (``collab`` is the
    exchanges' own and dropped), stored without its empty fields."""
    if given is None:
        return None
    if not isinstance(given, dict):
        raise ApiError(400, "metadata should be a json object")
    given = {k: v for k, v in given.items() if k != "collab"}
    try:
        metadata = BankedContentMetadata(**given)
    except ValidationError as error:
        raise ApiError(400, f"Invalid metadata: {error}") from None
    stored = metadata.model_dump(by_alias=True, exclude_none=True)
    return stored or None


async def _json_body(request: Request) -> Any:
    """The body if it is JSON (HMA reads metadata and note from a JSON body), else None."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return None
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON (or nested too deeply)") from None


async def _add(
    request: Request,
    key: ApiKey,
    name: str,
    hashes: dict[str, str],
    kind: MediaKind | None,
    note: str | None,
    metadata: dict[str, Any] | None,
    stabilities: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A new content item holding each hash (``stabilities``: those measured here, by HMA's
    signal type); HMA's answer with its id."""
    service = service_of(request)
    signals: dict[str, str] = {}
    kept: dict[str, int] = {}
    for hma_name, text in hashes.items():
        signal = signal_for(hma_name)
        try:
            hashed = parse_hash(signal, text).hashes[0]
        except ApiError as error:
            raise ApiError(400, f"Invalid {hma_name} signal: {error.message}") from None
        shown = hma_name if kind is None else hma_type(signal, kind)
        signals[shown] = hashed.text
        if stabilities and hma_name in stabilities:
            kept[signal] = stabilities[hma_name]
    organisation = key.name or f"key:{key.id}"

    def run() -> int:
        return service.contents.add(
            name, signals, organisation, actor(key), note, metadata, kept
        ).id

    try:
        content_id = await run_in_threadpool(run)
    except ListNotFound:
        raise ApiError(404, f"bank '{name}' not found") from None
    return {"id": content_id, "signals": signals}


@router.post(
    "/c/bank/{name}/signal",
    response_model=ContentAdded,
    responses=refusals(400, *KEYED, 404, 413),
)
async def add_signal(
    request: Request, key: Curator, name: Name, body: BankSignals
) -> dict[str, Any]:
    """Add hashes as a new content item: ``{"pdq": "<hex>", "note": "..."}``."""
    await run_in_threadpool(_bank, service_of(request), key, name)
    given = dict(body.model_extra or {})
    note = _note(given.pop("note", None))
    if not given:
        raise ApiError(400, "No signals given")
    for signal_name, text in given.items():
        signal_for(signal_name)
        if not isinstance(text, str):
            raise ApiError(400, f"Invalid {signal_name} signal: expected a string")
    return await _add(request, key, name, given, None, note, None)


@router.post(
    "/c/bank/{name}/content",
    response_model=ContentAdded,
    responses=refusals(400, *KEYED, 404, *MEDIA),
)
async def add_content(
    request: Request,
    key: Curator,
    name: Name,
    url: Url | None = None,
    content_type: Word | None = None,
    types: Text | None = None,
) -> dict[str, Any]:
    """Add media by ``url`` or upload (field ``photo`` or ``video``) as a new content item,
    with HMA's optional ``metadata`` (JSON body or form field) and ``note``."""
    await run_in_threadpool(_bank, service_of(request), key, name)
    body = await _json_body(request)
    upload = None
    if isinstance(body, dict):
        raw_metadata, raw_note = body.get("metadata"), body.get("note")
    else:
        upload = await read_upload(request) if body is None else None
        fields = upload.fields if upload is not None else {}
        raw_metadata, raw_note = None, fields.get("note")
        if "metadata" in fields:
            try:
                raw_metadata = json.loads(fields["metadata"])
            except (ValueError, RecursionError):
                raise ApiError(400, "metadata form field must be valid JSON") from None
    metadata = _metadata(raw_metadata)
    note = _note(raw_note)
    if not url and (upload is None or not any(upload.files)):
        raise ApiError(400, "Neither `url` nor multipart file upload was received")
    kind_name, hashes, stabilities = await measured(
        request, url or None, content_type, types, upload
    )
    hashes = {n: h for n, h in hashes.items() if h}
    if not hashes:
        raise ApiError(400, "Invalid pdq signal: the image has too little detail to hash")
    kind = MediaKind.IMAGE if kind_name == "photo" else MediaKind.VIDEO
    return await _add(request, key, name, hashes, kind, note, metadata, stabilities)


ContentId = Annotated[int, Path(ge=0, le=MAX_ID)]


def _shown_metadata(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not stored:
        return None
    return {"content_id": stored.get("content_id"), "content_uri": stored.get("content_uri"),
            "json": stored.get("json"), "collab": None}  # fmt: skip


@router.get(
    "/c/bank/{name}/content/{content_id}",
    response_model_exclude_unset=True,
    response_model=Content,
    responses=refusals(400, *KEYED, 404),
)
async def get_content(
    request: Request,
    key: Reader,
    name: Name,
    content_id: ContentId,
    include_signals: Word = "false",
    include_metadata: Word = "true",
) -> dict[str, Any]:
    """A content item (``signals`` with ``include_signals=true``; its metadata unless
    ``include_metadata=false``; its note); a list entry no item added (imported or fetched)
    answers by its own id."""
    service = service_of(request)
    bank = await run_in_threadpool(_bank, service, key, name)
    answer: dict[str, Any] = {"id": content_id, "original_media_uri": None,
                              "bank": _bank_json(bank)}  # fmt: skip
    item = await run_in_threadpool(service.contents.get, name, content_id)
    if item is not None:
        answer["disable_until_ts"] = item.disable_until_ts
        if include_signals.lower() == "true":
            answer["signals"] = dict(item.signals)
        metadata = _shown_metadata(item.metadata)
        if include_metadata.lower() == "true" and metadata is not None:
            answer["metadata"] = metadata
        if item.note is not None:
            answer["note"] = item.note
        return answer
    entry = await run_in_threadpool(_entry, service, name, content_id)
    answer["disable_until_ts"] = 1 if entry.status is EntryStatus.ACTIVE else 0
    if include_signals.lower() == "true":
        answer["signals"] = {hma_type(entry.signal): entry.value}
    return answer


def _entry(service: Service, name: str, content_id: int) -> Entry:
    """The entry ``content_id`` names (``_served_entry``); ApiError 404 if none."""
    entry = _served_entry(service, name, content_id)
    if entry is None:
        raise ApiError(404, f"content '{content_id}' not found")
    return entry


def _served_entry(service: Service, name: str, content_id: int) -> Entry | None:
    """The entry of a list that ``content_id`` names on HMA's routes when no live item has that
    id: an entry no item ever had the id of (imported or fetched), or a deleted item's own
    entry when lookups answer that id for it (active, another source holding it, no live
    enabled item). A deleted item's id is gone otherwise (404, as in HMA), also while its
    entry stays for other items, which lookups answer instead."""
    try:
        entry = service.lists.entry_by_id(name, content_id)
    except ListError:
        return None
    if service.contents.known(content_id) and (
        entry.status is not EntryStatus.ACTIVE or service.contents.holders([entry.id])
    ):
        return None
    return entry


@router.put(
    "/c/bank/{name}/content/{content_id}",
    response_model=ContentUpdated,
    responses=refusals(400, *KEYED, 404, 413),
)
async def update_content(
    request: Request, key: Curator, name: Name, content_id: ContentId
) -> dict[str, Any]:
    """Disable a content item until a time (``disable_until_ts``: Unix seconds, at most five
    years ahead; 0 for ever, 1 to enable it) or set its ``note``. A disabled item stops
    holding its values: they stop matching unless another item or source holds them."""
    service = service_of(request)
    bank = await run_in_threadpool(_bank, service, key, name)
    item = await run_in_threadpool(service.contents.get, name, content_id)
    if item is None:
        raise ApiError(404, f"content '{content_id}' not found")
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object: {\"disable_until_ts\": ..., "
                            "\"note\": ...}")  # fmt: skip
    until = None
    if "disable_until_ts" in body:
        until = _timestamp(body["disable_until_ts"])
        if until < 0:
            raise ApiError(400, "disable_until_ts must be a non-negative integer")
        if until > time.time() + FIVE_YEARS:
            raise ApiError(400, "disable_until_ts must be less than 5 years in the future")
    changes: dict[str, Any] = {} if until is None else {"disable_until_ts": until}
    if "note" in body:
        changes["note"] = _note(body["note"])

    def run() -> BankContent | None:
        return service.contents.update(name, content_id, actor(key), **changes)

    updated = await run_in_threadpool(run)
    if updated is None:
        raise ApiError(404, f"content '{content_id}' not found")
    return {"id": updated.id, "disable_until_ts": updated.disable_until_ts,
            "collab_metadata": {}, "original_media_uri": None, "bank": _bank_json(bank),
            "user_metadata": dict(updated.metadata) if updated.metadata else None,
            "note": updated.note}  # fmt: skip


def _timestamp(given: Any) -> int:
    """HMA's reading of disable_until_ts: an integer, or a string or number that is one."""
    if isinstance(given, bool) or not isinstance(given, int | float | str):
        raise ApiError(400, f"Invalid int: '{given}'")
    try:
        return int(given)
    except (ValueError, OverflowError):
        raise ApiError(400, f"Invalid int: '{given}'") from None


@router.delete(
    "/c/bank/{name}/content/{content_id}",
    response_model=Deleted,
    responses=refusals(400, *KEYED, 404),
)
async def delete_content(
    request: Request, key: Curator, name: Name, content_id: ContentId
) -> dict[str, Any]:
    """Delete a content item: ``{"deleted": 1}``, or 0 if there was none. Its values stop
    matching unless another item or source holds them; its note and metadata are erased. A
    list entry lookups answer by its own id (no item added it, or its item was deleted and
    another source holds it) is deleted by that id (a ``delete`` change in its log)."""
    service = service_of(request)
    await run_in_threadpool(_bank, service, key, name)

    def run() -> int:
        if service.contents.known(content_id) and service.contents.delete(
            name, content_id, actor(key)
        ):
            return 1
        entry = _served_entry(service, name, content_id)
        if entry is None:
            return 0
        try:
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
    return [{"name": name, "enabled_ratio": 1.0} for name in LISTED]


@router.get(
    "/c/content_type",
    response_model=ContentTypes,
    responses=refusals(*KEYED),
)
async def content_types(request: Request, key: Reader) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": True} for name in CONTENT_SIGNALS]
