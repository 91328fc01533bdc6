"""The public report page: ``/report`` (send web addresses where child sexual abuse material
was seen) and ``/report/status`` (a report's status by its status code), in English and Dutch
(``?lang=nl``, else the browser's languages).

Plain forms that work without JavaScript (the only script is the quick exit's Shift shortcut);
never a file upload. The status code travels in a form body, never in a URL. Headers allow
nothing but this origin, send no referrer, set no cookie; every page has the quick exit of the
victims' pages (``victims_exit_url``) and the helplines of the hotline's country.
"""

import math
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from hashguard.api.matching import service_of
from hashguard.device.messages import ReferralError, referral
from hashguard.errors import Invalid, NotFound
from hashguard.rate_limit import RateLimited
from hashguard.web.pages import HERE, language_of
from hashguard.web.report_words import WORDS

HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Vary": "Accept-Language",
}

_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)

router = APIRouter(include_in_schema=False)

Language = Annotated[str, Query(alias="lang", max_length=8)]


def _page(request: Request, name: str, asked: str, code: int = 200, **values: Any
          ) -> HTMLResponse:  # fmt: skip
    language = language_of(asked, request.headers.get("accept-language", ""))
    service = service_of(request)
    hotline = service.hotline
    helplines = []
    if hotline is not None:
        try:
            found = referral(hotline.country)
            helplines = [found.support, found.helpline]
        except ReferralError:
            pass  # no helplines known for the hotline's country: none shown
    words = WORDS[language]
    rendered = _PAGES.get_template(name).render(
        language=language,
        w=words,
        other="nl" if language == "en" else "en",
        here=request.url.path,
        exit_url=service.settings.victims_exit_url,
        helplines=helplines,
        **values,
    )
    headers = {**HEADERS, "Content-Language": language}
    return HTMLResponse(rendered, code, headers=headers)


def _no_hotline(request: Request, lang: str) -> HTMLResponse:
    language = language_of(lang, request.headers.get("accept-language", ""))
    return HTMLResponse(WORDS[language]["no_hotline"], 404, headers=HEADERS)


def _form(request: Request, lang: str, code: int = 200, **values: Any) -> HTMLResponse:
    hotline = service_of(request).hotline
    language = language_of(lang, request.headers.get("accept-language", ""))
    days = hotline.contact_days if hotline is not None else 0
    fields = {"urls": "", "seen_where": "", "description": "", "contact": ""}
    fields.update(values.pop("values", {}))
    return _page(request, "report/form.html", lang, code, values=fields,
                 contact_hint=WORDS[language]["contact_hint"].format(days=days),
                 **values)  # fmt: skip


@router.get("/report")
async def report_page(request: Request, lang: Language = "") -> HTMLResponse:
    """The report form."""
    if service_of(request).hotline is None:
        return _no_hotline(request, lang)
    return _form(request, lang)


@router.post("/report")
async def send_report(
    request: Request,
    urls: Annotated[str, Form(max_length=45_000)] = "",
    seen_where: Annotated[str, Form(max_length=2_000)] = "",
    description: Annotated[str, Form(max_length=20_000)] = "",
    contact: Annotated[str, Form(max_length=1_000)] = "",
    lang: Language = "",
) -> HTMLResponse:
    """A report sent from the form: the receipt (reference and status code), or the form again
    with what was typed and what to change."""
    hotline = service_of(request).hotline
    if hotline is None:
        return _no_hotline(request, lang)
    language = language_of(lang, request.headers.get("accept-language", ""))
    words = WORDS[language]
    typed = {"urls": urls, "seen_where": seen_where, "description": description,
             "contact": contact}  # fmt: skip
    lines = [line.strip() for line in urls.splitlines() if line.strip()]
    client = request.client.host if request.client is not None else None
    try:
        receipt = await run_in_threadpool(
            hotline.report, lines, seen_where.strip(), description.strip(),
            contact.strip() or None, language, client,
        )  # fmt: skip
    except RateLimited as error:
        minutes = max(1, math.ceil(error.retry_after / 60))
        return _form(request, lang, 429, values=typed,
                     error=words["busy"].format(minutes=minutes))  # fmt: skip
    except Invalid as error:  # the sentence says which field or URL, in English
        if language == "en":
            return _form(request, lang, 400, values=typed, error=str(error))
        return _form(request, lang, 400, values=typed, error="", detail=str(error))
    return _page(request, "report/received.html", lang, 201,
                 reference=receipt.reference, token=receipt.token)  # fmt: skip


@router.get("/report/status")
async def status_page(request: Request, lang: Language = "") -> HTMLResponse:
    """The status form."""
    if service_of(request).hotline is None:
        return _no_hotline(request, lang)
    return _page(request, "report/status.html", lang)


@router.post("/report/status")
async def show_status(
    request: Request, token: Annotated[str, Form(max_length=200)] = "", lang: Language = ""
) -> HTMLResponse:
    """A report's status, one of three words; nothing else about it."""
    hotline = service_of(request).hotline
    if hotline is None:
        return _no_hotline(request, lang)
    try:
        status = await run_in_threadpool(hotline.intake.status, token.strip())
    except NotFound:
        return _page(request, "report/status.html", lang, 404, unknown=True)
    return _page(request, "report/status.html", lang, status=status.value)
