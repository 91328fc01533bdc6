"""What the match routes share (hashguard's own and HMA's): parsing hashes once at the edge,
hashing uploads in memory, running the Matcher within the caller's lists, and storing every
match in the match log (nothing for a query that matched nothing)."""

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hashguard.api import decoding
from hashguard.api.auth import check_lists, visible
from hashguard.api.errors import ApiError
from hashguard.api.fields import HASH_CHARS, MANY_HASHES, Names, Word
from hashguard.api.metrics import Metrics
from hashguard.api.service import Service
from hashguard.matching import Match, Matcher
from hashguard.matching.query import Hashed, Query, parse
from hashguard.media.budget import DecodeBusy
from hashguard.media.errors import LimitExceeded, MediaError, UnsupportedMedia
from hashguard.media.formats import SNIFF_BYTES, MediaKind, file_kind
from hashguard.media.limits import Limits
from hashguard.review.model import ScanningForbidden
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue
from hashguard.signals.batch import NotApplicable
from hashguard.signals.pdq_variants import DIHEDRAL, ORIGINAL, families_of
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.match_log import LoggedMatch


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def media_variants(service: Service, dihedral: bool = False) -> frozenset[str]:
    """The query variant families to hash media for: those the served lists allow (none
    when they all match plain hashes), and the dihedral ones too when asked for."""
    matcher = service.matcher
    families = matcher.variant_families() if matcher is not None else frozenset()
    return families | {DIHEDRAL} if dihedral else families


def ready_matcher(service: Service) -> Matcher:
    """The Matcher to answer matches from; ApiError 503 while it may not (``withheld``)."""
    matcher, reason = service.matcher, service.withheld()
    if reason is not None or matcher is None:
        raise ApiError(503, reason or "the index is loading")
    return matcher


def parse_hash(signal: str, text: str) -> Query:
    """A query of one hash; ApiError 400 naming what was expected."""
    try:
        return parse(signal, text.strip())
    except InvalidSignalValue as error:
        raise ApiError(400, f"{signal} hash {text[:80]!r}: {error}") from None
    except registry.UnknownSignal as error:
        raise ApiError(400, str(error)) from None


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
    data: bytes,
    service: Service,
    signals: Sequence[str] | None = None,
    variants: frozenset[str] = frozenset(),
    limits: Limits | None = None,
) -> tuple[MediaKind, Query, str | None]:
    """The file's kind (image, video or other), its hashes (``signals``, else every signal
    that applies: a file that is not media gets its digests; PDQ with the query ``variants``
    families asked for, as the Matcher's ``variant_families``), hashed in memory within
    ``limits`` (else the service's), and why the media could not be decoded when only its
    digests were computed, within the server's decode budget. ApiError 400/413/415 for a file
    that cannot be hashed, 503 (with Retry-After) when the budget stayed full."""
    if not data:
        raise ApiError(400, "no media in the request: send the file as the body or a form field")
    kind = file_kind(data[:SNIFF_BYTES])
    try:
        chosen = [registry.get(name) for name in (signals or registry.names())]
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    limits = limits or service.settings.media_limits
    try:
        found = await decoding.hashed(service.decodes, data, chosen, limits, variants)
    except DecodeBusy as error:
        raise ApiError(503, str(error), retry_after=error.retry_after) from None
    except NotApplicable as error:
        raise ApiError(415, f"{error} (the media is {error.kind})") from None
    except UnsupportedMedia as error:  # not media, and only signals of media asked for
        raise ApiError(415, str(error)) from None
    except LimitExceeded as error:
        raise ApiError(413, str(error)) from None
    except MediaError as error:
        raise ApiError(400, str(error)) from None
    failed = None if found.undecodable is None else str(found.undecodable)
    return kind, Query.of((signal.name, value) for signal, value in found.values), failed


def hash_json(hashed: Hashed) -> dict[str, Any]:
    """A hash as the API shows it: value, quality and stability if known, named variants if
    any."""
    shown: dict[str, Any] = {"value": hashed.text}
    quality = hashed.quality
    if quality is not None:
        shown["quality"] = quality
    stability = hashed.signal.stability(hashed.value)
    if stability is not None:
        shown["stability"] = stability
    format = hashed.signal.format
    # The original goes with the rotations when they were hashed, else with the other variants.
    turned = any(families_of(name) == {DIHEDRAL} for name, _ in hashed.variants)
    for name, value in hashed.variants:
        key = "dihedral" if turned and families_of(name) <= {DIHEDRAL} else "variants"
        shown.setdefault(key, {})[name] = format(value)
    return shown


def match_json(match: Match) -> dict[str, Any]:
    shown = {"list": match.list, "entry": match.entry, "signal": match.signal,
             "distance": match.distance, "labels": sorted(match.labels),
             "value": match.value}  # fmt: skip
    if match.shares is not None:  # videos: the share of frames each side finds in the other
        shown["query_percent"], shown["listed_percent"] = match.shares
    if match.variant != ORIGINAL:
        shown["variant"] = match.variant
    return shown


async def run_matches(
    service: Service,
    metrics: Metrics,
    key: ApiKey,
    items: Sequence[Query],
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
        try:
            service.review.admit(checked)
        except ScanningForbidden as error:
            raise ApiError(403, str(error)) from None
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
            uploads = list(zip(content_refs, found, subjects or [{}] * len(found), strict=True))
            await run_in_threadpool(service.review.open_matches, checked, uploads, items)
    return found


def _listable(signal: str) -> str:
    return registry.listed(signal).name  # a ValueError naming the signals lists hold


def _hashable(signal: str) -> str:
    if signal not in registry.names(optional=True):
        known = ", ".join(registry.names(optional=True))
        raise ValueError(f"unknown signal {signal!r}; known signals: {known}")
    return signal


class _OneOf:
    """The JSON schema of a signal name: the registry's names (``names()``) when the document
    is made, so that a client (or a fuzzer) sends only names the service takes."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self.names = names

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(core), "enum": self.names()}


# A signal name lists can hold, checked against the registry when a request is validated.
ListedSignal = Annotated[
    Word,
    AfterValidator(_listable),
    _OneOf(registry.listable_names),
    Field(description="A signal lists can hold (pdq, md5, sha1, sha256, ...)."),
]
# A signal the service can compute (``POST /v1/hash``), exactly as the registry names it.
HashedSignal = Annotated[
    str, AfterValidator(_hashable), _OneOf(lambda: registry.names(optional=True))
]


# The longest content reference a match request carries (kept with each match in the log).
CONTENT_REF_LENGTH: Final = 500


class HashQuery(BaseModel):
    signal: ListedSignal
    value: str = Field(
        max_length=HASH_CHARS,
        description="The hash in its text form: hex (PDQ, digests); vPDQ: its frame lines "
        "or ThreatExchange's JSON form.",
    )
    content_ref: str = Field(
        "",
        max_length=CONTENT_REF_LENGTH,
        description="Your own reference for the content, kept with a match.",
    )
    account_ref: str = Field(
        "", max_length=500, description="Your reference for the uploader (kept for review)."
    )
    ip: str = Field("", max_length=64, description="The uploader's IP address (for reports).")
    ip_at: str = Field("", max_length=40, description="When the upload came from that IP.")

    def subject(self) -> dict[str, str]:
        """The uploader as a detection keeps it (what was given)."""
        return {k: v for k, v in (("account_ref", self.account_ref), ("ip", self.ip),
                                  ("ip_at", self.ip_at)) if v}  # fmt: skip


class HashMatchRequest(BaseModel):
    """The body of ``POST /v1/match/hashes``: validated here alone, whichever path answers."""

    hashes: list[HashQuery] = Field(min_length=1, max_length=MANY_HASHES)
    lists: Names | None = Field(None, description="Default: every list the key may use.")


async def answer_hash_queries(
    service: Service, metrics: Metrics, key: ApiKey, request: HashMatchRequest
) -> dict[str, Any]:
    """The answer to ``POST /v1/match/hashes``: each hash matched within the request's lists
    (default: every list the key may use). Raises ApiError for a batch over the limit, a
    malformed hash (naming its place) or a list the key may not use."""
    limit = service.settings.max_batch
    hashes = request.hashes
    if len(hashes) > limit:
        raise ApiError(413, f"{len(hashes)} hashes: at most {limit} per request")
    names = chosen_lists(service, key, request.lists)
    items: list[Query] = []
    for number, given in enumerate(hashes):
        try:
            items.append(parse_hash(given.signal, given.value))
        except ApiError as error:
            raise ApiError(400, f"hashes.{number}: {error.message}") from None
    refs = [given.content_ref for given in hashes]
    subjects = [given.subject() for given in hashes]
    found = await run_matches(service, metrics, key, items, names, refs, subjects)
    if key.role is Role.HOSTER:  # a re-upload check: listed or not, and on which lists
        return {
            "matched": sum(1 for matches in found if matches),
            "results": [{"matches": [{"list": name} for name in dict.fromkeys(m.list for m in
                                                                              matches)]}
                        for matches in found],
        }  # fmt: skip
    return {
        "matched": sum(1 for matches in found if matches),
        "results": [{"matches": [match_json(m) for m in matches]} for matches in found],
    }
