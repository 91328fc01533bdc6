"""Hashing and matching, for online services checking uploads (role: matcher)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError
from hashguard.api.fields import QUERY_MANY, QueryNames, Url
from hashguard.api.matching import (
    HashedSignal,
    HashMatchRequest,
    answer_hash_queries,
    chosen_lists,
    hash_json,
    hash_media,
    match_json,
    media_variants,
    ready_matcher,
    run_matches,
    service_of,
)
from hashguard.api.schemas import (
    BODY,
    KEYED,
    HashAnswer,
    HashMatchAnswer,
    MediaMatchAnswer,
    refusals,
)
from hashguard.api.uploads import read_upload
from hashguard.net.fetch import FetchRefused
from hashguard.store.api_keys import ApiKey, Role

router = APIRouter(prefix="/v1", tags=["hash and match"])
Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
# A hoster checks its own uploads against the lists: hash in, listed or not (and where) out.
Checker = Annotated[ApiKey, allow(Role.MATCHER, Role.HOSTER)]

_MEDIA_BODY: dict[str, Any] = {
    "requestBody": {
        "description": "The media: the file as the body, or a multipart form with a 'file' field.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                     "format": "binary"}}}
            },
        },
    }
}  # fmt: skip


async def _media(request: Request, url: str | None) -> bytes:
    """The request's media: uploaded, or fetched from ``url`` when the service allows it."""
    service = service_of(request)
    if url is not None:
        try:
            return (await run_in_threadpool(service.fetcher.fetch, url)).body
        except FetchRefused as error:
            raise ApiError(400, str(error)) from None
    upload = await read_upload(request)
    if len(upload.files) > 1:
        raise ApiError(400, "send one file per request")
    return next(iter(upload.files.values()), b"")


@router.post(
    "/hash",
    openapi_extra=_MEDIA_BODY,
    response_model=HashAnswer,
    response_model_exclude_unset=True,
    responses=refusals(400, *KEYED, 413, 415, 422, 503),
)
async def hash_upload(
    request: Request,
    key: Matcher,
    signals: Annotated[
        Annotated[list[HashedSignal], Field(max_length=QUERY_MANY)] | None,
        Query(description="Default: every signal that applies."),
    ] = None,
    dihedral: Annotated[
        bool, Query(description="Also the PDQ hashes of rotations and flips.")
    ] = False,
    trim: Annotated[
        bool, Query(description="Also the PDQ hashes of the image inside flat borders.")
    ] = False,
    scale: Annotated[
        bool, Query(description="Also the PDQ hash of a small image (640 px or less) enlarged.")
    ] = False,
    url: Annotated[
        Url | None, Query(description="Fetch the media (if the service allows).")
    ] = None,
) -> dict[str, Any]:
    """Hash an uploaded file: media with every signal that applies (``kind`` image or video),
    any other file with its digests (``kind`` other). Nothing is stored: neither the file nor
    its hashes."""
    asked = {"dihedral": dihedral, "trim": trim, "scale": scale}
    variants = frozenset(family for family, wanted in asked.items() if wanted)
    kind, query, failed = await hash_media(
        await _media(request, url), service_of(request), signals, variants
    )
    answer = {"kind": kind.value, "hashes": {hashed.name: hash_json(hashed) for hashed in query}}
    if failed is not None:
        answer["failed"] = failed
    return answer


@router.post(
    "/match/media",
    openapi_extra=_MEDIA_BODY,
    response_model=MediaMatchAnswer,
    response_model_exclude_unset=True,
    responses=refusals(400, *KEYED, 404, 413, 415, 422, 503),
)
async def match_media(
    request: Request,
    key: Matcher,
    lists: Annotated[
        QueryNames | None, Query(alias="list", description="Repeat for several; default all.")
    ] = None,
    content_ref: Annotated[str, Query(max_length=500, description="Kept with a match.")] = "",
    account_ref: Annotated[
        str, Query(max_length=500, description="The uploader (kept for review).")
    ] = "",
    ip: Annotated[str, Query(max_length=64, description="The uploader's IP (reports).")] = "",
    ip_at: Annotated[str, Query(max_length=40, description="When, from that IP.")] = "",
    dihedral: Annotated[
        bool,
        Query(
            description="Also hash rotations and flips; each list's policy (its variants) "
            "says which variants may match it, and they are hashed whenever one allows them."
        ),
    ] = False,
    url: Annotated[
        Url | None, Query(description="Fetch the media (if the service allows).")
    ] = None,
) -> dict[str, Any]:
    """Hash an uploaded file with every signal the lists hold that applies to it (a file that
    is not media: its digests) and match it. An image is also hashed turned, flipped,
    trimmed of flat borders and (640 px or less) enlarged when a list's policy lets those
    variants match it; a match says
    which variant matched (``variant``). A match is stored in the match log with
    ``content_ref``; a miss leaves no trace."""
    service = service_of(request)
    metrics = request.app.state.metrics
    names = chosen_lists(service, key, lists)
    signals = ready_matcher(service).signals()
    data = await _media(request, url)
    if not signals:
        return {"kind": None, "hashes": {}, "matches": []}
    kind, query, failed = await hash_media(
        data, service, signals, media_variants(service, dihedral)
    )
    uploader: dict[str, Any] = {"hashes": {h.name: h.text for h in query if h.signal.listable}}
    uploader.update({k: v for k, v in (("account_ref", account_ref), ("ip", ip),
                                       ("ip_at", ip_at)) if v})  # fmt: skip
    found = await run_matches(service, metrics, key, [query], names, [content_ref], [uploader])
    return {
        "kind": kind.value,
        "hashes": {hashed.name: hash_json(hashed) for hashed in query},
        **({"failed": failed} if failed is not None else {}),
        "matches": [match_json(m) for m in found[0]],
    }


@router.post(
    "/match/hashes",
    response_model=HashMatchAnswer,
    response_model_exclude_unset=True,
    responses=refusals(400, *KEYED, 404, *BODY, 503),
)
async def match_hashes(request: Request, key: Checker, body: HashMatchRequest) -> dict[str, Any]:
    """Match up to 1,000 hashes in one request; one result per hash, in order. A match is
    stored in the match log with the hash's ``content_ref``; a miss leaves no trace. A hoster
    key (a re-upload check) learns only whether each hash is listed and on which lists: each
    match is ``{"list": NAME}``, never the listed hash, its labels or distance.

    (Well-formed requests with a matcher key are answered by ``api.hot`` before the framework;
    this route answers the others, and documents both.)"""
    metrics = request.app.state.metrics
    return await answer_hash_queries(service_of(request), metrics, key, body)
