"""HMA-compatible routes: the requests and answers of Meta's Hasher-Matcher-Actioner 2.0 (its
``/h``, ``/m`` and ``/c`` routes and ``/status``), so that an HMA client works unchanged against
hashguard. Banks are hash lists; a bank's content id is the list entry's id. The shapes are
in ``docs/research/hma-api.md``; the differences are listed in ``docs/hma-compatibility.md``.

Errors on these routes are HMA's ``{"message": ...}`` (see ``errors.install``).
"""

import contextlib
import dataclasses
import random
import re
import time
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, check_lists, unscoped, visible
from hashguard.api.errors import MAX_ID, ApiError
from hashguard.api.fetch import FetchRefused
from hashguard.api.matching import (
    hash_media,
    parse_hash,
    ready_matcher,
    run_matches,
    service_of,
)
from hashguard.api.service import Service
from hashguard.api.uploads import read_upload
from hashguard.lists.model import (
    Category,
    ChangeKind,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
)
from hashguard.lists.records import Submission
from hashguard.matching import Match
from hashguard.media.formats import MediaKind
from hashguard.signals import registry
from hashguard.signals.pdq import MIN_QUALITY, PdqHash
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_errors import ListError

router = APIRouter(tags=["HMA-compatible"])
Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
Reader = Annotated[ApiKey, allow(Role.CURATOR, Role.AUDITOR, Role.REVIEWER)]
Curator = Annotated[ApiKey, allow(Role.CURATOR)]
Admin = Annotated[ApiKey, allow()]

# HMA's signal type names, and hashguard's signal for each; hashguard's own names work too.
SIGNALS: Final = {"pdq": "pdq", "video_md5": "md5", "md5": "md5", "sha1": "sha1",
                  "sha256": "sha256"}  # fmt: skip
CONTENT_SIGNALS: Final = {"photo": ("pdq",), "video": ("video_md5",)}
_BANK_NAME: Final = re.compile(r"[A-Z_][A-Z0-9_]*")
_MEDIA_TYPES: Final = {"image": "photo", "video": "video"}


def _hma_name(signal: str, kind: MediaKind | None = None) -> str:
    """The name HMA gives hashguard's ``signal`` (an md5 of a video is HMA's video_md5)."""
    return "video_md5" if signal == "md5" and kind is not MediaKind.IMAGE else signal


def _signal(name: str) -> str:
    signal = SIGNALS.get(name)
    if signal is None:
        raise ApiError(400, f"No such SignalType '{name}'")
    return signal


def _types(types: str | None, content_type: str) -> tuple[str, ...]:
    """HMA's ``types=a,b`` filter over the content type's signal types."""
    wanted = CONTENT_SIGNALS[content_type]
    if types is None:
        return wanted
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    for name in chosen:
        _signal(name)
    picked = tuple(name for name in chosen if name in wanted)
    if not picked:
        raise ApiError(400, "empty signal type selection")
    return picked


def _banks(service: Service, key: ApiKey, banks: str | None) -> list[str]:
    held = ready_matcher(service).versions()
    names = visible(key, held)
    if banks is None:
        return names
    wanted = {b.strip() for b in banks.split(",") if b.strip()}
    return [name for name in names if name in wanted]


def _bank_json(hash_list: HashList) -> dict[str, Any]:
    return {"name": hash_list.name, "matching_enabled_ratio": hash_list.policy.enabled_ratio}


async def _matched(
    request: Request, key: ApiKey, item: dict[str, Any], names: list[str], content_ref: str
) -> list[Match]:
    metrics = request.app.state.metrics
    found = await run_matches(service_of(request), metrics, key, [item], names, [content_ref])
    return found[0]


def _by_bank(matches: list[Match]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for match in matches:
        found.setdefault(match.list, []).append(
            {"bank_content_id": match.entry, "distance": str(int(match.distance))}
        )
    return found


async def _hashed(
    request: Request, url: str | None, content_type: str | None, types: str | None
) -> tuple[str, dict[str, str]]:
    """HMA's hashing: the content type and {signal type: hash} of a fetched URL or an upload
    whose form field names the content type (``photo`` or ``video``)."""
    service = service_of(request)
    if url is not None:
        try:
            fetched = await run_in_threadpool(service.fetcher.fetch, url)
        except FetchRefused as error:
            raise ApiError(400, f"Invalid or unsafe URL provided: {error}") from None
        data = fetched.body
        if content_type is None:
            content_type = _MEDIA_TYPES.get(fetched.content_type.split("/")[0])
            if content_type is None:
                raise ApiError(400, f"unsupported url ContentType: '{fetched.content_type}', if "
                               "you know the expected type, provide it with the content_type "
                               "query param")  # fmt: skip
    else:
        upload = await read_upload(request)
        files = {name: body for name, body in upload.files.items() if name}
        if not files:
            raise ApiError(400, "Missing multipart/form-data file upload")
        if len(files) > 1:
            raise ApiError(400, "Only one file allowed per request")
        content_type, data = next(iter(files.items()))
    if content_type not in CONTENT_SIGNALS:
        raise ApiError(400, f"no such content_type: '{content_type}'")
    names = _types(types, content_type)
    _kind, values = await hash_media(data, service, [SIGNALS[n] for n in names])
    hashes: dict[str, str] = {}
    for name in names:
        value = values.get(SIGNALS[name])
        if isinstance(value, PdqHash):  # HMA gives no PDQ hash for low-quality images
            hashes[name] = value.hex if (value.quality or 0) >= MIN_QUALITY else ""
        elif value is not None:
            hashes[name] = value.hex()
    return content_type, hashes


# --- status ---------------------------------------------------------------------------------


@router.get("/status", response_class=PlainTextResponse)
async def status(request: Request) -> PlainTextResponse:
    """HMA's status: I-AM-ALIVE, or 503 INDEX-NOT-LOADED / INDEX-STALE."""
    return _status(service_of(request), "I-AM-ALIVE")


@router.get("/readyz", response_class=PlainTextResponse)
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


# --- hashing and matching -------------------------------------------------------------------


@router.get("/h/hash")
async def hash_url(
    request: Request,
    key: Matcher,
    url: str,
    content_type: str | None = None,
    types: str | None = None,
) -> dict[str, str]:
    """Hash the media at ``url`` (only if the service allows fetching from its host)."""
    return (await _hashed(request, url, content_type, types))[1]


@router.post("/h/hash")
async def hash_upload(request: Request, key: Matcher, types: str | None = None) -> dict[str, str]:
    """Hash an upload: a multipart form whose one file field is ``photo`` or ``video``."""
    return (await _hashed(request, None, None, types))[1]


@router.get("/m/raw_lookup")
async def raw_lookup(
    request: Request,
    key: Matcher,
    signal_type: str,
    signal: str,
    include_distance: bool = False,
    banks: str | None = None,
    content_ref: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """Entry ids matching one hash: ``{"matches": [id, ...]}``, with distances if asked."""
    service = service_of(request)
    name = _signal(signal_type)
    item = {name: _hma_hash(name, signal)}
    found = await _matched(request, key, item, _banks(service, key, banks), content_ref)
    if include_distance:
        shown = [{"bank_content_id": m.entry, "distance": str(int(m.distance))} for m in found]
        return {"matches": shown}
    return {"matches": [m.entry for m in found]}


def _hma_hash(signal: str, text: str) -> Any:
    try:
        return parse_hash(signal, text)
    except ApiError as error:
        raise ApiError(400, f"invalid signal: {error.message}") from None


def _coinflip(service: Service, names: list[str], seed: str | None, bypass: bool) -> list[str]:
    """HMA's per-request sample: a list is matched if its enabled_ratio is at least one coin
    flip (``seed`` makes it repeatable; ``bypass`` keeps every list)."""
    if bypass:
        return names
    coin = random.Random(seed).random() if seed is not None else random.random()
    ratios = {f.name: f.policy.enabled_ratio for f in ready_matcher(service).lists}
    return [name for name in names if ratios.get(name, 0.0) >= coin]


@router.get("/m/lookup")
async def lookup(
    request: Request,
    key: Matcher,
    signal_type: str | None = None,
    signal: str | None = None,
    url: str | None = None,
    content_type: str | None = None,
    types: str | None = None,
    banks: str | None = None,
    seed: str | None = None,
    bypass_coinflip: bool = False,
    content_ref: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """Match one hash (answer keyed by bank) or the media at ``url`` (keyed by signal type,
    then bank)."""
    service = service_of(request)
    names = _coinflip(service, _banks(service, key, banks), seed, bypass_coinflip)
    if url is None:
        if signal_type is None or signal is None:
            raise ApiError(400, "Either url or both signal and signal_type are required")
        name = _signal(signal_type)
        item = {name: _hma_hash(name, signal)}
        return _by_bank(await _matched(request, key, item, names, content_ref))
    _content_type, hashes = await _hashed(request, url, content_type, types)
    answer = await _lookup_hashes(request, key, hashes, names, content_ref)
    return answer if signal_type is None else answer.get(signal_type, {})


@router.post("/m/lookup")
async def lookup_upload(
    request: Request,
    key: Matcher,
    banks: str | None = None,
    seed: str | None = None,
    bypass_coinflip: str | None = None,
    content_ref: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """Match an upload (form field ``photo`` or ``video``): keyed by signal type, then bank."""
    service = service_of(request)
    names = _coinflip(service, _banks(service, key, banks), seed, bypass_coinflip == "true")
    _content_type, hashes = await _hashed(request, None, None, None)
    return await _lookup_hashes(request, key, hashes, names, content_ref)


async def _lookup_hashes(
    request: Request, key: ApiKey, hashes: dict[str, str], names: list[str], content_ref: str
) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for hma_name, text in hashes.items():
        if not text:  # a low-quality image: no PDQ hash, nothing to match
            answer[hma_name] = {}
            continue
        signal = SIGNALS[hma_name]
        item = {signal: parse_hash(signal, text)}
        answer[hma_name] = _by_bank(await _matched(request, key, item, names, content_ref))
    return answer


@router.post("/m/compare")
async def compare(request: Request, key: Matcher) -> dict[str, Any]:
    """Compare pairs: ``{"pdq": [h1, h2]}`` gives ``{"pdq": [matched, {"distance": d}]}``."""
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON (or nested too deeply)") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object of signal type -> [hash, hash]")
    answer: dict[str, Any] = {}
    for name, pair in body.items():
        signal = _signal(str(name))
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(h, str) for h in pair)
        ):
            raise ApiError(400, f"{name}: expected a list of exactly two hashes")
        a, b = (_hma_hash(signal, text) for text in pair)
        distance = int(registry.get(signal).distance(a, b))
        threshold = 31 if signal == "pdq" else 0
        answer[name] = [distance <= threshold, {"distance": distance}]
    return answer


@router.get("/m/index/status")
async def index_status(
    request: Request, key: Matcher, signal_type: str | None = None
) -> dict[str, Any]:
    """Entries held per signal type and when the index last caught up."""
    unscoped(key, "read the size of every list's index")
    service = service_of(request)
    matcher = ready_matcher(service)
    sizes = matcher.sizes()
    age = service.readiness().age
    built = int(time.time() - age) if age is not None else -1
    answer = {}
    for name in ("pdq", "video_md5", "md5", "sha1", "sha256"):
        if name == "md5":
            continue  # HMA's video_md5 is hashguard's md5
        size = sizes.get(SIGNALS[name], 0)
        answer[name] = {"present": size > 0, "built_to": built if size else -1, "size": size}
    if signal_type is not None:
        held = "video_md5" if signal_type == "md5" else signal_type
        if held not in answer:
            raise ApiError(400, f"No such signal type '{signal_type}'")
        return {signal_type: answer[held]}
    return answer


# --- banks ----------------------------------------------------------------------------------


class NewBank(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    enabled_ratio: float | None = None
    enabled: bool | None = None
    category: Category = Category.KNOWN_CSAM  # hashguard's: what the list holds


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    enabled_ratio: float | None = None
    enabled: bool | None = None


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


@router.get("/c/banks")
async def banks(request: Request, key: Reader) -> list[dict[str, Any]]:
    held = await run_in_threadpool(service_of(request).lists.lists)
    names = set(visible(key, [h.name for h in held]))
    return [_bank_json(h) for h in held if h.name in names]


@router.post("/c/banks", status_code=201)
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
    except ListError as error:
        if "already exists" in str(error):
            raise ApiError(403, "Bank already exists") from None
        raise ApiError(400, str(error)) from None
    await run_in_threadpool(service.sync_lists)
    return _bank_json(created)


@router.get("/c/bank/{name}")
async def get_bank(request: Request, key: Reader, name: str) -> dict[str, Any]:
    return _bank_json(await run_in_threadpool(_bank, service_of(request), key, name))


@router.put("/c/bank/{name}")
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
    await run_in_threadpool(service.sync_lists)
    return _bank_json(updated)


@router.delete("/c/bank/{name}")
async def delete_bank(request: Request, key: Admin, name: str) -> dict[str, Any]:
    """Remove the bank's list (admin keys only). Like HMA, a bank that does not exist is
    'Done' too."""
    service = service_of(request)
    check_lists(key, [name])
    with contextlib.suppress(ListError):
        await run_in_threadpool(service.lists.remove, name, actor(key))
    await run_in_threadpool(service.sync_lists)
    return {"message": "Done"}


class BankSignals(BaseModel):
    model_config = ConfigDict(extra="allow")
    note: str | None = None


async def _add(
    request: Request, key: ApiKey, name: str, hashes: dict[str, str], kind: MediaKind | None
) -> dict[str, Any]:
    """Submit each hash to the bank's list; HMA's answer with the first entry's id."""
    service = service_of(request)
    await run_in_threadpool(_bank, service, key, name)
    signals: dict[str, str] = {}
    for hma_name, text in hashes.items():
        signal = _signal(hma_name)
        try:
            parsed = parse_hash(signal, text)
        except ApiError as error:
            raise ApiError(400, f"Invalid {hma_name} signal: {error.message}") from None
        shown = parsed.hex if isinstance(parsed, PdqHash) else parsed.hex()
        signals[hma_name if kind is None else _hma_name(signal, kind)] = shown
    by = actor(key)
    provenance = Provenance(submitted_by=key.name or by)
    records = [Submission(SIGNALS[n], v, provenance=provenance)
               for n, v in signals.items()]  # fmt: skip

    def run() -> int:
        service.lists.apply(name, records, by)
        service.refresh()
        first = records[0]
        return service.lists.entry(name, first.signal, first.value).id

    entry_id = await run_in_threadpool(run)
    return {"id": entry_id, "signals": signals}


@router.post("/c/bank/{name}/signal")
async def add_signal(
    request: Request, key: Curator, name: str, body: BankSignals
) -> dict[str, Any]:
    """Add hashes: ``{"pdq": "<hex>", "video_md5": "<hex>"}``."""
    hashes = {k: v for k, v in (body.model_extra or {}).items()}
    if not hashes:
        raise ApiError(400, "No signals given")
    for signal_name, text in hashes.items():
        _signal(signal_name)
        if not isinstance(text, str):
            raise ApiError(400, f"Invalid {signal_name} signal: expected a string")
    return await _add(request, key, name, hashes, None)


@router.post("/c/bank/{name}/content")
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
    kind_name, hashes = await _hashed(request, url, content_type, types)
    hashes = {n: h for n, h in hashes.items() if h}
    if not hashes:
        raise ApiError(400, "Invalid pdq signal: the image has too little detail to hash")
    kind = MediaKind.IMAGE if kind_name == "photo" else MediaKind.VIDEO
    return await _add(request, key, name, hashes, kind)


@router.get("/c/bank/{name}/content/{content_id}")
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
        answer["signals"] = {_hma_name(entry.signal): entry.value}
    return answer


@router.delete("/c/bank/{name}/content/{content_id}")
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
        service.refresh()
        return 1

    return {"deleted": await run_in_threadpool(run)}


# --- configuration --------------------------------------------------------------------------


@router.get("/c/signal_type")
async def signal_types(request: Request, key: Reader) -> list[dict[str, Any]]:
    return [{"name": name, "enabled_ratio": 1.0} for name in SIGNALS if name != "md5"]


@router.get("/c/content_type")
async def content_types(request: Request, key: Reader) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": True} for name in CONTENT_SIGNALS]
