"""The public report page: ``/report`` (send web addresses where child sexual abuse material
was seen) and ``/report/status`` (a report's status by its status code), in English and Dutch
(``?lang=nl``, else the browser's languages).

Plain forms that work without JavaScript (the only script is the quick exit's Shift shortcut);
never a file upload. The status code travels in a form body, never in a URL. Headers allow
nothing but this origin, send no referrer, set no cookie; every page has the quick exit of the
victims' pages (``victims_exit_url``) and the helplines of the hotline's country.
"""

import math
from functools import partial
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from hashguard.api.errors import counted, retry_header
from hashguard.api.matching import service_of
from hashguard.api.public_limits import client_of, guarded, limits_of
from hashguard.device.messages import ReferralError, emergency_number, referral
from hashguard.errors import Invalid, NotFound
from hashguard.hotline.intake import (
    MAX_CONTACT,
    MAX_DESCRIPTION,
    MAX_SEEN_WHERE,
    MAX_URLS,
    InvalidReport,
    MissingField,
    TooManyUrls,
)
from hashguard.hotline.urls import MAX_LENGTH, InvalidUrl, NotPublic
from hashguard.rate_limit import RateLimited
from hashguard.web.form_bodies import FormRoute
from hashguard.web.pages import HERE, in_language, language_of
from hashguard.web.report_words import WORDS

_PAGES: Final = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)

router = APIRouter(include_in_schema=False, route_class=FormRoute)

Language = Annotated[str, Query(alias="lang", max_length=8)]


def _language(request: Request, asked: str) -> str:
    return language_of(asked, request.headers.get("accept-language", ""))


def _page(request: Request, name: str, language: str, code: int = 200,
          headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:  # fmt: skip
    service = service_of(request)
    hotline = service.hotline
    helplines, number = [], None
    if hotline is not None:
        number = emergency_number(hotline.country)
        try:
            found = referral(hotline.country)
            helplines = [found.support, found.helpline]
        except ReferralError:
            pass  # no helplines known for the hotline's country: none shown
    words = WORDS[language]
    rendered = _PAGES.get_template(name).render(
        language=language,
        w=words,
        danger=words["danger"].format(number=number) if number else words["danger_unknown"],
        other="nl" if language == "en" else "en",
        here=request.url.path,
        exit_url=service.settings.victims_exit_url,
        helplines=helplines,
        **values,
    )
    return HTMLResponse(rendered, code, headers={**in_language(language), **(headers or {})})


def _no_hotline(request: Request, lang: str) -> HTMLResponse:
    return HTMLResponse(
        WORDS[_language(request, lang)]["no_hotline"],
        404,
        headers=in_language(_language(request, lang)),
    )


def _form(request: Request, language: str, code: int = 200, **values: Any) -> HTMLResponse:
    hotline = service_of(request).hotline
    days = hotline.contact_days if hotline is not None else 0
    fields = {"urls": "", "seen_where": "", "description": "", "contact": ""}
    fields.update(values.pop("values", {}))
    return _page(request, "report/form.html", language, code, values=fields, limits=LIMITS,
                 contact_hint=WORDS[language]["contact_hint"].format(days=days),
                 **values)  # fmt: skip


@router.get("/report")
async def report_page(request: Request, lang: Language = "") -> HTMLResponse:
    """The report form."""
    if service_of(request).hotline is None:
        return _no_hotline(request, lang)
    return _form(request, _language(request, lang))


@router.post("/report")
async def send_report(
    request: Request,
    urls: Annotated[str, Form()] = "",
    seen_where: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    lang: Language = "",
) -> HTMLResponse:
    """A report sent from the form: the receipt (reference and status code), or the form again
    with what was typed and what to change."""
    hotline = service_of(request).hotline
    if hotline is None:
        return _no_hotline(request, lang)
    language = _language(request, lang)
    words = WORDS[language]
    typed = {"urls": urls, "seen_where": seen_where, "description": description,
             "contact": contact}  # fmt: skip
    longer = next((name for name, text in typed.items() if len(text) > LIMITS[name]), None)
    if longer is not None:  # the form's own limits: what a browser lets one type
        shown = {name: text[: LIMITS[name]] for name, text in typed.items()}
        error = f"{longer} has more than {LIMITS[longer]} characters"
        return _refused(request, language, InvalidReport(error), shown)
    lines = [line.strip() for line in urls.splitlines() if line.strip()]
    try:
        receipt = await run_in_threadpool(
            hotline.report, lines, seen_where.strip(), description.strip(),
            contact.strip() or None, language, client_of(request),
        )  # fmt: skip
    except RateLimited as error:
        counted(request, error)
        return _form(request, language, 429, values=typed, error=_busy(words, error),
                     headers=retry_header(error.retry_after))  # fmt: skip
    except Invalid as error:  # the sentence says which field or URL, in English
        return _refused(request, language, error, typed)
    return _page(request, "report/received.html", language, 201,
                 reference=receipt.reference, token=receipt.token)  # fmt: skip


def _busy(words: dict[str, str], error: RateLimited, why: str = "busy") -> str:
    """Why a request past a limit waits (``why``: the words' key), and for how many minutes, in
    the page's language."""
    minutes = max(1, math.ceil(error.retry_after / 60))
    return words[f"{why}_one"] if minutes == 1 else words[why].format(minutes=minutes)


def _refused(request: Request, language: str, error: Invalid, typed: dict[str, str]
             ) -> HTMLResponse:  # fmt: skip
    """The form again with what was typed and why it was refused: in English the refusal
    itself; in Dutch the reason in Dutch for the common cases, the English one beside it."""
    if language == "en":
        return _form(request, language, 400, values=typed, error=str(error))
    reason = next((key for kind, key in _REASONS if isinstance(error, kind)), "refused")
    return _form(request, language, 400, values=typed, error=WORDS[language][reason],
                 detail=str(error))  # fmt: skip


# What a refusal is, most specific first: the key of its words in a language without the
# domain's own sentences.
_REASONS: Final = (
    (NotPublic, "refused_private"),
    (InvalidUrl, "refused_url"),
    (TooManyUrls, "refused_too_many"),
    (MissingField, "refused_missing"),
    (InvalidReport, "refused_long"),
)
LIMITS: Final = {
    "urls": MAX_URLS * (MAX_LENGTH + 2),  # a line each
    "seen_where": MAX_SEEN_WHERE,
    "description": MAX_DESCRIPTION,
    "contact": MAX_CONTACT,
}


@router.get("/report/status")
async def status_page(request: Request, lang: Language = "") -> HTMLResponse:
    """The status form."""
    if service_of(request).hotline is None:
        return _no_hotline(request, lang)
    return _page(request, "report/status.html", _language(request, lang))


@router.post("/report/status")
async def show_status(
    request: Request, token: Annotated[str, Form()] = "", lang: Language = ""
) -> HTMLResponse:
    """A report's status, one of three words; nothing else about it."""
    hotline = service_of(request).hotline
    if hotline is None:
        return _no_hotline(request, lang)
    language = _language(request, lang)
    try:
        status = await guarded(
            request,
            limits_of(request).report_tokens,
            token.strip(),
            partial(run_in_threadpool, hotline.intake.status, token.strip()),
        )
    except NotFound:
        return _page(request, "report/status.html", language, 404, unknown=True)
    except RateLimited as error:
        counted(request, error)
        return _page(request, "report/status.html", language, 429, retry_header(error.retry_after),
                     busy=_busy(WORDS[language], error, "status_busy"))  # fmt: skip
    return _page(request, "report/status.html", language, status=status.value)
