"""HMA's matching routes (``/m``): lookups by hash, URL or upload, pairwise compare, and the index
status, keyed by HMA's bank and signal type names."""

import random
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import unscoped, visible
from hashguard.api.errors import ApiError
from hashguard.api.fields import HashText, Text, Url, Word
from hashguard.api.hma.hashing import hashed_query
from hashguard.api.hma.models import (
    INDEXED,
    KEYED,
    MEDIA,
    SIGNALS,
    BySignalType,
    Compared,
    IndexStatus,
    Lookup,
    Matcher,
    RawLookup,
    refusals,
    signal_for,
)
from hashguard.api.matching import (
    CONTENT_REF_LENGTH,
    media_variants,
    parse_hash,
    ready_matcher,
    run_matches,
    service_of,
)
from hashguard.api.metrics import Metrics
from hashguard.api.service import Service
from hashguard.matching import Match
from hashguard.matching import Query as HashQuery
from hashguard.signals import registry
from hashguard.signals.base import IndexKind
from hashguard.signals.vpdq import VpdqComparison
from hashguard.store.api_keys import ApiKey

router = APIRouter()


def _banks(service: Service, key: ApiKey, banks: str | None) -> list[str]:
    held = ready_matcher(service).versions()
    names = visible(key, held)
    if banks is None:
        return names
    wanted = {b.strip() for b in banks.split(",") if b.strip()}
    return [name for name in names if name in wanted]


async def _matched(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    item: HashQuery,
    names: list[str],
    content_ref: str,
) -> list[tuple[Match, int]]:
    """The matches, each with the content id HMA answers: one per live, enabled content item
    holding the entry, or the entry's own id when no item does (imported or fetched, or its
    item deleted or disabled while another source holds it), which GET and DELETE of content
    serve (``curation._served_entry``)."""
    found = (await run_matches(service, metrics, key, [item], names, [content_ref]))[0]
    if not found:
        return []
    holders = await run_in_threadpool(service.contents.holders, [m.entry for m in found])
    return [(m, content) for m in found for content in holders.get(m.entry, [m.entry])]


def _distance(match: Match) -> str:
    """HMA's distance: the bits apart, for videos "<query %>%[<listed %>%]", and "-" for an
    exact match of a digest (HMA's video_md5), which has no distance."""
    if match.shares is not None:
        return f"{match.shares[0]:.0f}%[{match.shares[1]:.0f}%]"
    if registry.get(match.signal).index is IndexKind.EXACT:
        return "-"
    return str(int(match.distance))


def _by_bank(matches: list[tuple[Match, int]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for match, content in matches:
        found.setdefault(match.list, []).append(
            {"bank_content_id": content, "distance": _distance(match)}
        )
    return found


@router.get(
    "/m/raw_lookup",
    response_model=RawLookup,
    responses=refusals(400, *KEYED, 503),
)
async def raw_lookup(
    request: Request,
    key: Matcher,
    signal_type: Word,
    signal: HashText,
    include_distance: bool = False,
    banks: Text | None = None,
    content_ref: Annotated[str, Query(max_length=CONTENT_REF_LENGTH)] = "",
) -> dict[str, Any]:
    """Entry ids matching one hash: ``{"matches": [id, ...]}``, with distances if asked."""
    return await raw_lookup_answer(
        service_of(request), request.app.state.metrics, key,
        signal_type, signal, include_distance, banks, content_ref,
    )  # fmt: skip


async def raw_lookup_answer(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    signal_type: str,
    signal: str,
    include_distance: bool,
    banks: str | None,
    content_ref: str,
) -> dict[str, Any]:
    """The answer to ``GET /m/raw_lookup`` (whichever path serves it, ``api.hot`` or the
    route above); ApiError 400 for an unknown signal type or a malformed hash, 503 while the
    lists load."""
    name = signal_for(signal_type)
    item = _hma_hash(name, signal)
    names = _banks(service, key, banks)
    found = await _matched(service, metrics, key, item, names, content_ref)
    if include_distance:
        shown = [{"bank_content_id": c, "distance": _distance(m)} for m, c in found]
        return {"matches": shown}
    return {"matches": [c for _, c in found]}


def _hma_hash(signal: str, text: str) -> HashQuery:
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


@router.get(
    "/m/lookup",
    response_model=Lookup,
    responses=refusals(400, *KEYED, *MEDIA, 503),
)
async def lookup(
    request: Request,
    key: Matcher,
    signal_type: Word | None = None,
    signal: HashText | None = None,
    url: Url | None = None,
    content_type: Word | None = None,
    types: Text | None = None,
    banks: Text | None = None,
    seed: Word | None = None,
    bypass_coinflip: bool = False,
    content_ref: Annotated[str, Query(max_length=CONTENT_REF_LENGTH)] = "",
) -> dict[str, Any]:
    """Match one hash (answer keyed by bank) or the media at ``url`` (keyed by signal type,
    then bank)."""
    service = service_of(request)
    metrics = request.app.state.metrics
    if url is None:
        return await lookup_answer(service, metrics, key, signal_type, signal, banks, seed,
                                   bypass_coinflip, content_ref)  # fmt: skip
    names = _coinflip(service, _banks(service, key, banks), seed, bypass_coinflip)
    _content_type, query, hashes = await hashed_query(
        request, url, content_type, types, variants=media_variants(service)
    )
    answer = await _lookup_hashes(service, metrics, key, query, hashes, names, content_ref)
    return answer if signal_type is None else answer.get(signal_type, {})


async def lookup_answer(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    signal_type: str | None,
    signal: str | None,
    banks: str | None,
    seed: str | None,
    bypass_coinflip: bool,
    content_ref: str,
) -> dict[str, Any]:
    """The answer to ``GET /m/lookup`` of a hash (no ``url``), keyed by bank, whichever path
    serves it; ApiError 400 without both ``signal_type`` and ``signal``, for an unknown signal
    type or a malformed hash, 503 while the lists load."""
    names = _coinflip(service, _banks(service, key, banks), seed, bypass_coinflip)
    if signal_type is None or signal is None:
        raise ApiError(400, "Either url or both signal and signal_type are required")
    item = _hma_hash(signal_for(signal_type), signal)
    return _by_bank(await _matched(service, metrics, key, item, names, content_ref))


@router.post(
    "/m/lookup",
    response_model=BySignalType,
    responses=refusals(400, *KEYED, *MEDIA, 503),
)
async def lookup_upload(
    request: Request,
    key: Matcher,
    banks: Text | None = None,
    seed: Word | None = None,
    bypass_coinflip: Word | None = None,
    content_ref: Annotated[str, Query(max_length=CONTENT_REF_LENGTH)] = "",
) -> dict[str, Any]:
    """Match an upload (form field ``photo`` or ``video``): keyed by signal type, then bank."""
    service = service_of(request)
    names = _coinflip(service, _banks(service, key, banks), seed, bypass_coinflip == "true")
    _content_type, query, hashes = await hashed_query(
        request, None, None, None, variants=media_variants(service)
    )
    metrics = request.app.state.metrics
    return await _lookup_hashes(service, metrics, key, query, hashes, names, content_ref)


async def _lookup_hashes(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    query: HashQuery,
    hashes: dict[str, str],
    names: list[str],
    content_ref: str,
) -> dict[str, Any]:
    """Each hash matched (with the query variants its value was hashed with)."""
    answer: dict[str, Any] = {}
    for hma_name, text in hashes.items():
        value = query.get(SIGNALS[hma_name])
        if not text or value is None:  # a low-quality image: no PDQ hash, nothing to match
            answer[hma_name] = {}
            continue
        item = HashQuery((value,))
        found = await _matched(service, metrics, key, item, names, content_ref)
        answer[hma_name] = _by_bank(found)
    return answer


@router.post(
    "/m/compare",
    response_model=Compared,
    responses=refusals(400, *KEYED, 413),
)
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
        signal = signal_for(str(name))
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(h, str) for h in pair)
        ):
            raise ApiError(400, f"{name}: expected a list of exactly two hashes")
        a, b = (_hma_hash(signal, text).hashes[0] for text in pair)
        result = a.signal.compare(a.value, b.value)
        if isinstance(result, VpdqComparison):  # HMA's "<query %>%[<other's %>%]"
            shown: int | str = f"{result.query_percent:.0f}%[{result.target_percent:.0f}%]"
        else:
            shown = int(result.distance)
        answer[name] = [result.match, {"distance": shown}]
    return answer


@router.get(
    "/m/index/status",
    response_model=IndexStatus,
    responses=refusals(400, *KEYED, 503),
)
async def index_status(
    request: Request, key: Matcher, signal_type: Word | None = None
) -> dict[str, Any]:
    """Entries held per signal type and when the index last caught up."""
    unscoped(key, "read the size of every list's index")
    service = service_of(request)
    matcher = ready_matcher(service)
    sizes = matcher.sizes()
    age = service.readiness().age
    built = int(time.time() - age) if age is not None else -1
    answer = {}
    for name in INDEXED:
        size = sizes.get(SIGNALS[name], 0)
        answer[name] = {"present": size > 0, "built_to": built if size else -1, "size": size}
    if signal_type is not None:
        held = "video_md5" if signal_type == "md5" else signal_type
        if held not in answer:
            raise ApiError(400, f"No such signal type '{signal_type}'")
        return {signal_type: answer[held]}
    return answer
