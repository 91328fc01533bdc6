"""The victims' pages: ``/victims`` (make fingerprints of one's own pictures and videos in the
browser, open a case) and ``/victims/follow`` (a case's status, withdrawal), in English and
Dutch (``?lang=nl``, else the browser's languages).

The pages only render: the hashing runs in the browser (``static/victims/``), and the script
speaks to the cases' API (``/v1/victims/cases``). Their headers allow nothing but this origin
(and ``blob:`` for the thumbnails of the person's own files: ``web.headers``), send no
referrer, set no cookie;
every page has a quick exit to a neutral site (``victims_exit_url``).
"""

import json
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hashguard.api.matching import service_of
from hashguard.web.pages import HERE, in_language, language_of
from hashguard.web.victims_words import WORDS, script_words

_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, asked: str, **values: object) -> HTMLResponse:
    language = language_of(asked, request.headers.get("accept-language", ""))
    other = "nl" if language == "en" else "en"
    rendered = _PAGES.get_template(name).render(
        language=language,
        w=WORDS[language],
        other=other,
        here=request.url.path,
        exit_url=service_of(request).settings.victims_exit_url,
        script_words=json.dumps(script_words(language), ensure_ascii=False),
        **values,
    )
    return HTMLResponse(rendered, headers=in_language(language))


Language = Annotated[str, Query(alias="lang", max_length=8)]


@router.get("/victims")
async def start(request: Request, lang: Language = "") -> HTMLResponse:
    """Make fingerprints of one's own pictures and videos here, and open a case."""
    return _page(request, "victims/start.html", lang)


@router.get("/victims/follow")
async def follow(request: Request, lang: Language = "") -> HTMLResponse:
    """A case's status (case number and PIN), and withdrawing all or part of it."""
    return _page(request, "victims/follow.html", lang)
