"""The victim pages' static files (``/static/victims/{name}``): the browser hasher
(``hasher.js``, a self-contained ES module other sites may copy) and the page's own scripts and
styles, from ``web/static/victims/``. Cached for an hour, revalidated by their digest."""

import hashlib
import re
from functools import lru_cache
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hashguard.web.pages import HERE

router = APIRouter(include_in_schema=False)

_FILES: Final = HERE / "static" / "victims"
_TYPES: Final = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]*\.(?:js|mjs|css)")


@lru_cache(maxsize=32)
def _read(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and its ETag, or None when there is no such file."""
    path = _FILES / name
    if not path.is_file():
        return None
    content = path.read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


@router.get("/static/victims/{name}")
async def static(name: str, request: Request) -> Response:
    """A file of ``web/static/victims/`` by its plain name (no paths); 404 for any other."""
    found = _read(name) if _NAME.fullmatch(name) else None
    if found is None:
        return Response("no such file", 404, media_type="text/plain")
    content, etag = found
    headers = {
        "Cache-Control": "public, max-age=3600",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # A module script from another origin loads only with CORS; these files are public.
        "Access-Control-Allow-Origin": "*",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    media_type = _TYPES[name[name.rindex(".") :]]
    return Response(content, media_type=media_type, headers=headers)
