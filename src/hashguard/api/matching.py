"""What the match routes share (hashguard's own and HMA's): parsing hashes once at the edge,
hashing uploads in memory, running the Matcher within the caller's lists, and storing every
match in the match log (nothing for a query that matched nothing)."""

import io
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hashguard.api.auth import check_lists, visible
from hashguard.api.errors import ApiError
from hashguard.api.metrics import Metrics
from hashguard.api.service import Service
from hashguard.matching import Match, Matcher
from hashguard.media.errors import LimitExceeded, MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.review.detections import Evidence
from hashguard.review.services import Service as CheckedService
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue
from hashguard.signals.batch import NotApplicable, hash_stream
from hashguard.signals.pdq import DihedralHashes, PdqHash
from hashguard.store.api_keys import ApiKey
from hashguard.store.match_log import LoggedMatch


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def ready_matcher(service: Service) -> Matcher:
    matcher = service.matcher
    if matcher is None:
        raise ApiError(503, service.readiness().reason)
    return matcher


def parse_hash(signal: str, text: str) -> Any:
    """A hash as the Matcher takes it; ApiError 400 naming what was expected."""
    try:
        parsed = registry.get(signal).parse(text.strip())
    except InvalidSignalValue as error:
        raise ApiError(400, f"{signal} hash {text[:80]!r}: {error}") from None
    except ValueError as error:  # an unknown signal
        raise ApiError(400, str(error)) from None
    return parsed


def chosen_lists(service: Service, key: ApiKey, names: Sequence[str] | None) -> list[str]:
    """The lists a query runs against: those named (each must exist and be the key's), else
    every list the key may use."""
    matcher = ready_matcher(service)
    held = matcher.versions()
    if not names:
        return visible(key, held)
    unknown = [name for name in names if name not in held]
    if unknown:
        raise ApiError(404, f"no list named {unknown[0]!r}")
    check_lists(key, names)
    return list(dict.fromkeys(names))


async def hash_media(
    data: bytes, service: Service, signals: Sequence[str] | None = None, dihedral: bool = False
) -> tuple[MediaKind, dict[str, Any]]:
    """The media's kind and its value per signal (``signals``, else every signal that
    applies), hashed in memory. ApiError 400/413/415 for media that cannot be hashed."""
    if not data:
        raise ApiError(400, "no media in the request: send the file as the body or a form field")
    try:
        kind = sniff(data[:SNIFF_BYTES]).kind
    except MediaError as error:
        raise ApiError(415, str(error)) from None
    try:
        chosen = [registry.get(name) for name in (signals or registry.names())]
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    limits = service.settings.media_limits

    def work() -> list[tuple[Any, Any]]:
        return hash_stream(io.BytesIO(data), len(data), chosen, limits, dihedral)

    try:
        values = await run_in_threadpool(work)
    except NotApplicable as error:
        raise ApiError(415, f"{error} (the media is {error.kind})") from None
    except LimitExceeded as error:
        raise ApiError(413, str(error)) from None
    except MediaError as error:
        raise ApiError(400, str(error)) from None
    return kind, {signal.name: value for signal, value in values}


def media_query(values: dict[str, Any]) -> dict[str, Any]:
    """Hashes of media as the Matcher takes them (digests as bytes)."""
    query: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, PdqHash | DihedralHashes):
            query[name] = value
        elif isinstance(value, bytes | bytearray):
            query[name] = bytes(value)
    return query


def hash_json(name: str, value: Any) -> dict[str, Any]:
    signal = registry.get(name)
    if isinstance(value, DihedralHashes):
        variants = {variant: h.hex for variant, h in value.variants.items()}
        return {"value": value.original.hex, "quality": value.quality, "dihedral": variants}
    shown: dict[str, Any] = {"value": signal.format(value)}
    quality = getattr(value, "quality", None)
    if quality is not None:
        shown["quality"] = quality
    return shown


def match_json(match: Match) -> dict[str, Any]:
    return {"list": match.list, "entry": match.entry, "signal": match.signal,
            "distance": match.distance, "labels": sorted(match.labels),
            "value": match.value}  # fmt: skip


async def run_matches(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    items: Sequence[dict[str, Any]],
    lists: Sequence[str],
    content_refs: Sequence[str],
    subjects: Sequence[Mapping[str, Any]] | None = None,
) -> list[list[Match]]:
    """Match ``items`` within ``lists``; every match is stored in the match log (with the
    caller and the item's content reference) and counted. For a key of a service, matched
    items become detections (with ``subjects``: the uploader's account, IP and time), and an
    end-to-end-encrypted service is refused unless its profile allows scanning."""
    matcher = ready_matcher(service)
    assert service.batcher is not None and service.recorder is not None  # started
    checked = None
    if key.service is not None:  # a service's upload check: its profile decides
        checked = await run_in_threadpool(service.review.services.get, key.service)
        if checked.e2ee and not checked.profile.scan_e2ee:
            raise ApiError(403, f"service {checked.name} is end-to-end encrypted: its legal "
                                f"profile {checked.legal_profile} forbids scanning it")  # fmt: skip
    found = await service.batcher.match(matcher, items, lists)
    metrics.queries.inc(len(items))
    logged = [
        LoggedMatch(key.id, m.list, m.entry, m.signal, float(m.distance), ref)
        for matches, ref in zip(found, content_refs, strict=True)
        for m in matches
    ]
    if logged:
        await service.recorder.record(logged, busy=service.writer_busy())
        for m in logged:
            metrics.matches.labels(m.list, m.signal).inc()
        if checked is not None:
            await run_in_threadpool(
                _open_detections, service, checked, found, content_refs, subjects or []
            )
    return found


def _open_detections(
    service: Service,
    checked: CheckedService,
    found: Sequence[Sequence[Match]],
    content_refs: Sequence[str],
    subjects: Sequence[Mapping[str, Any]],
) -> None:
    """Each matched item of a service's upload check becomes a detection for human review."""
    for number, (matches, ref) in enumerate(zip(found, content_refs, strict=True)):
        if not matches or not ref:
            continue
        subject = dict(subjects[number]) if number < len(subjects) else {}
        account = str(subject.pop("account_ref", ""))
        evidence = [Evidence.of(m) for m in matches]
        service.review.open(checked, ref, evidence, account_ref=account, subject=subject)


async def answer_hash_queries(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    queries: Sequence[tuple[str, str, str, Mapping[str, Any]]],
    lists: Sequence[str] | None,
) -> dict[str, Any]:
    """The answer to ``POST /v1/match/hashes``: (signal, hex, content_ref, uploader) queries matched
    within ``lists`` (default: every list the key may use). Raises ApiError for a batch over
    the limit, a malformed hash (naming its place) or a list the key may not use."""
    limit = service.settings.max_batch
    if len(queries) > limit:
        raise ApiError(413, f"{len(queries)} hashes: at most {limit} per request")
    names = chosen_lists(service, key, lists)
    items: list[dict[str, Any]] = []
    for number, (signal, value, _ref, _subject) in enumerate(queries):
        try:
            items.append({signal: parse_hash(signal, value)})
        except ApiError as error:
            raise ApiError(400, f"hashes.{number}: {error.message}") from None
    refs = [query[2] for query in queries]
    found = await run_matches(service, metrics, key, items, names, refs, [q[3] for q in queries])
    return {
        "matched": sum(1 for matches in found if matches),
        "results": [{"matches": [match_json(m) for m in matches]} for matches in found],
    }
