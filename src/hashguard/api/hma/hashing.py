"""HMA's hashing routes (``/h``): the hashes of a fetched URL or an upload, by HMA's signal type
names; ``hashed`` is shared with the matching and curation routes."""

import dataclasses
from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hashguard.api.errors import ApiError
from hashguard.api.fields import Text, Url, Word
from hashguard.api.hma.models import (
    CONTENT_SIGNALS,
    KEYED,
    MEDIA,
    SIGNALS,
    Hashes,
    Matcher,
    refusals,
    signal_for,
)
from hashguard.api.matching import hash_media, service_of
from hashguard.api.uploads import Upload, read_upload
from hashguard.matching import Query
from hashguard.net.fetch import FetchRefused

router = APIRouter()
_MEDIA_TYPES: Final = {"image": "photo", "video": "video"}
REMOTE_BYTES: Final = 100 * 1024 * 1024  # HMA's DEFAULT_MAX_REMOTE_FILE_SIZE, for URLs


def _types(types: str | None, content_type: str) -> tuple[str, ...]:
    """HMA's ``types=a,b`` filter over the content type's signal types."""
    wanted = CONTENT_SIGNALS[content_type]
    if types is None:
        return wanted
    chosen = tuple(t.strip() for t in types.split(",") if t.strip())
    for name in chosen:
        signal_for(name)
    picked = tuple(name for name in chosen if name in wanted)
    if not picked:
        raise ApiError(400, "empty signal type selection")
    return picked


async def hashed(
    request: Request,
    url: str | None,
    content_type: str | None,
    types: str | None,
    upload: Upload | None = None,
) -> tuple[str, dict[str, str]]:
    """HMA's hashing: the content type and {signal type: hash} of a fetched URL or an upload
    (``upload``, else the request's) whose form field names the content type (``photo`` or
    ``video``). Remote media over HMA's limit (100 MiB) is 413 ``Content too large``."""
    content_type, hashes, _stabilities = await measured(request, url, content_type, types, upload)
    return content_type, hashes


async def measured(
    request: Request,
    url: str | None,
    content_type: str | None,
    types: str | None,
    upload: Upload | None = None,
) -> tuple[str, dict[str, str], dict[str, int]]:
    """What ``hashed`` answers, and the stability measured of each hash that has one (by HMA's
    signal type): a content item keeps it with its entries."""
    content_type, query, hashes = await hashed_query(request, url, content_type, types, upload)
    stabilities: dict[str, int] = {}
    for name, text in hashes.items():
        hashed = query.get(SIGNALS[name])
        if hashed is not None and text:
            stability = hashed.signal.stability(hashed.value)
            if stability is not None:
                stabilities[name] = stability
    return content_type, hashes, stabilities


async def hashed_query(
    request: Request,
    url: str | None,
    content_type: str | None,
    types: str | None,
    upload: Upload | None = None,
    variants: frozenset[str] = frozenset(),
) -> tuple[str, Query, dict[str, str]]:
    """``hashed``, with the query the hashes came from (PDQ with the query ``variants``
    families asked for: what a lookup matches)."""
    service = service_of(request)
    limits = None
    if url is not None:
        try:
            fetched = await run_in_threadpool(
                lambda: service.fetcher.fetch(url, max_bytes=REMOTE_BYTES)
            )
        except FetchRefused as error:
            if error.reason == "too-large":
                raise ApiError(413, "Content too large") from None
            raise ApiError(400, f"Invalid or unsafe URL provided: {error}") from None
        data = fetched.body
        limits = dataclasses.replace(service.settings.media_limits, max_image_bytes=REMOTE_BYTES,
                                     max_video_bytes=REMOTE_BYTES)  # fmt: skip
        if content_type is None:
            content_type = _MEDIA_TYPES.get(fetched.content_type.split("/")[0])
            if content_type is None:
                raise ApiError(400, f"unsupported url ContentType: '{fetched.content_type}', if "
                               "you know the expected type, provide it with the content_type "
                               "query param")  # fmt: skip
    else:
        upload = upload or await read_upload(request)
        files = {name: body for name, body in upload.files.items() if name}
        if not files:
            raise ApiError(400, "Missing multipart/form-data file upload")
        if len(files) > 1:
            raise ApiError(400, "Only one file allowed per request")
        content_type, data = next(iter(files.items()))
    if content_type not in CONTENT_SIGNALS:
        raise ApiError(400, f"no such content_type: '{content_type}'")
    names = _types(types, content_type)
    _kind, query, _failed = await hash_media(
        data, service, [SIGNALS[n] for n in names], variants, limits
    )
    hashes: dict[str, str] = {}
    for name in names:
        hashed = query.get(SIGNALS[name])
        if hashed is not None:  # HMA gives no hash for a low-quality image
            low = hashed.signal.too_low(hashed.quality)
            hashes[name] = "" if low else hashed.text
    return content_type, query, hashes


@router.get(
    "/h/hash",
    response_model=Hashes,
    responses=refusals(400, *KEYED, *MEDIA),
)
async def hash_url(
    request: Request,
    key: Matcher,
    url: Url,
    content_type: Word | None = None,
    types: Text | None = None,
) -> dict[str, str]:
    """Hash the media at ``url`` (only if the service allows fetching from its host)."""
    return (await hashed(request, url, content_type, types))[1]


@router.post(
    "/h/hash",
    response_model=Hashes,
    responses=refusals(400, *KEYED, *MEDIA),
)
async def hash_upload(request: Request, key: Matcher, types: Text | None = None) -> dict[str, str]:
    """Hash an upload: a multipart form whose one file field is ``photo`` or ``video``."""
    return (await hashed(request, None, None, types))[1]
