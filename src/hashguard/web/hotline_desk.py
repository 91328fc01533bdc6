"""The hotline's assessment desk (``/desk/hotline``), for analyst (and admin) keys: the dashboard
with the share of items triaged without anyone viewing them and the assessment queue (oldest
first, never a thumbnail), an item for assessment, and a case with everything recorded of it.

An item's content is never stored: it is fetched again from its URL when its page is opened,
through the hotline's own fetcher (public addresses, or the networks the operator named), and
passed through by the review desk's proxy (``desk.pass_through``), shielded by the desk's script
and styles, each viewing audited (``Cases.record_view``). Only an item waiting for an analyst
is shown, and only to an analyst who may assess it (``Cases.barred``: not the first analyst of
a pending assessment, nor either analyst of a disagreed one): one triaged automatically or
assessed is never shown again. When its URL now serves other bytes (``crawl.other_content``: a
recorded digest differs, or only a PDQ hash is recorded and it differs, or nothing recorded can
be checked) they are not shown: labels given now would describe other content than the hashes
they list.

The analyst is ``auth.analyst(key)``, as in the API: one person with two keys of one name is
one analyst for four eyes. The forms are URL-encoded only (``form_bodies``); the labels
form's session is checked before its body is read.

The labels form has one control per vocabulary group; it posts to ``Assessments.assess``, and
the answer says what happened, or the form again with the refusal said at the top.
"""

from collections.abc import Mapping
from functools import partial
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, analyst
from hashguard.api.decoding import hashed
from hashguard.api.errors import status_of
from hashguard.api.matching import service_of
from hashguard.errors import HashguardError, NotFound
from hashguard.hotline.assessment import Assessment
from hashguard.hotline.cases import Figures
from hashguard.hotline.crawl import decodes_to_check, other_content
from hashguard.hotline.model import WAITING, AssessmentState
from hashguard.hotline.service import Hotline
from hashguard.hotline.vocabulary import MAX_LABEL
from hashguard.media.budget import DecodeBudget, DecodeBusy
from hashguard.media.errors import MediaError
from hashguard.media.limits import DEFAULT_LIMITS
from hashguard.signals import registry
from hashguard.signals.batch import NotApplicable
from hashguard.store.api_keys import ApiKey
from hashguard.web import sessions
from hashguard.web.desk import pass_through, refusal
from hashguard.web.form_bodies import FormRoute
from hashguard.web.pages import numbered, page

router = APIRouter(include_in_schema=False, route_class=FormRoute)
QUEUE_LIMIT: Final = 200
REPORTS_SHOWN: Final = 20
LABEL: Final = "label-"  # a form field per vocabulary group: label-GROUP
STATE_WORDS: Final = {
    "queued": "Waiting for an analyst",
    "pending": "Second analyst needed",
    "assessed": "Assessed",
    "auto": "Triaged automatically",
    "failed": "Failed (not fetched or hashed)",
}
BADGES: Final = {
    "queued": "in_review",
    "pending": "pending",
    "assessed": "reported",
    "auto": "false_positive",
    "failed": "closed",
}  # the desk's badge colours


def _shown(key: ApiKey, csrf: str, **values: Any) -> dict[str, Any]:
    """What every hotline page gives the desk's frame: who is signed in and their desks."""
    return {"reviewer": actor(key), "csrf": csrf, "desks": sessions.desks(key),
            "product": "hotline desk", "states": STATE_WORDS, "badges": BADGES,
            **values}  # fmt: skip


async def _opened(request: Request) -> tuple[Hotline, ApiKey, str] | Response:
    """The hotline and the analyst opening one of its pages; else the answer to give."""
    found = await sessions.caller(request, sessions.HOTLINE_ROLES)
    if isinstance(found, Response):
        return found
    key, csrf = found
    hotline = service_of(request).hotline
    if hotline is None:
        return page("gone.html", 404, **_shown(key, csrf, error="The hotline is off: the "
                    "service runs without a hotline country (--hotline-country)."))  # fmt: skip
    return hotline, key, csrf


def _gone(key: ApiKey, csrf: str, error: HashguardError | str) -> HTMLResponse:
    return page("gone.html", 404, **_shown(key, csrf, error=str(error), back="/desk/hotline"))


@router.get("/desk/hotline")
async def dashboard(request: Request) -> Response:
    """The figures and the assessment queue."""
    opened = await _opened(request)
    if isinstance(opened, Response):
        return opened
    hotline, key, csrf = opened

    def gathered() -> HTMLResponse:
        figures = hotline.cases.figures()
        return page("hotline/dashboard.html", **_shown(
            key, csrf, figures=figures, share=share_words(figures),
            queue=hotline.cases.queue(QUEUE_LIMIT), limit=QUEUE_LIMIT,
            reports=hotline.cases.reports(REPORTS_SHOWN), four_eyes=hotline.settings.four_eyes,
        ))  # fmt: skip

    return await run_in_threadpool(gathered)


def share_words(figures: Figures) -> str:
    """The share triaged automatically as a sentence saying what it means."""
    triaged = figures.auto + figures.assessed + figures.queued + figures.pending
    if figures.auto_share is None:
        return "No item has been triaged yet."
    return (
        f"{figures.auto} of the {triaged} items triaged were decided automatically: they "
        "matched an earlier assessment or a known list, so no analyst had to view them."
    )


@router.get("/desk/hotline/items/{ident}")
async def item_page(request: Request, ident: int) -> Response:
    opened = await _opened(request)
    if isinstance(opened, Response):
        return opened
    hotline, key, csrf = opened
    if not numbered(ident):
        return _gone(key, csrf, f"no hotline item {ident}")
    return await run_in_threadpool(_item_page, hotline, key, csrf, ident)


def _item_page(
    hotline: Hotline, key: ApiKey, csrf: str, ident: int, error: str = "", status: int = 200,
    chosen: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    """Item ``ident`` for assessment, with ``error`` (a refused form) said at the top and the
    labels ``chosen`` in it chosen again."""
    try:
        item = hotline.cases.item(ident)
        case = hotline.cases.case(item.case_id)
        barred = hotline.cases.barred(ident, analyst(key))
    except NotFound as gone:
        return _gone(key, csrf, gone)
    fetches = [f for f in case.fetches if f.url == item.url]
    waiting = item.state in WAITING
    following = [i.id for i in hotline.cases.queue(50, analyst(key)) if i.id != ident]
    return page("hotline/item.html", status, **_shown(
        key, csrf, error=error, item=item, case=case, fetch=fetches[-1] if fetches else None,
        trace=case.trace, waiting=waiting, barred=barred if waiting else "",
        content_url="" if barred else f"/desk/hotline/items/{ident}/content",
        groups=hotline.vocabulary.groups, chosen=chosen or {},
        four_eyes=hotline.settings.four_eyes, next_id=following[0] if following else None,
    ))  # fmt: skip


@router.get("/desk/hotline/items/{ident}/content")
async def content(request: Request, ident: int) -> Response:
    """The item, fetched again from its URL now through the hotline's fetcher and passed
    through; each viewing audited. Otherwise a plain-text answer saying why."""
    found = await sessions.signed_in(request)
    hotline = service_of(request).hotline
    if found is None:
        return refusal("Sign in again with an analyst key to see the item.", 401)
    key, _ = found
    if key.role not in sessions.HOTLINE_ROLES:
        return refusal("Only analysts (and admins) see the hotline's items.", 403)
    if hotline is None:
        return refusal("The hotline is off.", 404)
    if not numbered(ident):
        return refusal(f"There is no hotline item {ident}.", 404)
    try:
        item = await run_in_threadpool(hotline.cases.item, ident)
        barred = await run_in_threadpool(hotline.cases.barred, ident, analyst(key))
    except NotFound:
        return refusal(f"There is no hotline item {ident}.", 404)
    if item.state not in WAITING:
        return refusal(f"Item {ident} is {STATE_WORDS[item.state].lower()}: an item that waits "
                       "for no analyst is not shown again.", 409)  # fmt: skip
    if barred:
        return refusal(f"Not shown to you: {barred}.", 403)
    return await pass_through(
        hotline.fetcher, item.url, "The URL", partial(hotline.cases.record_view, ident, actor(key)),
        partial(_other_content, item.hashes, hotline.decodes),
        gone=": the content is gone from it",
    )  # fmt: skip


async def _other_content(recorded: Mapping[str, str], decodes: DecodeBudget, body: bytes) -> str:
    """Why ``body`` may not be shown as the item whose hashes are ``recorded``
    (``crawl.other_content``), its PDQ hash taken within the server's decode budget
    ``decodes``, waiting in the event loop, never in a thread every route needs."""
    pdq_now = None
    if decodes_to_check(recorded):
        try:
            hashes = await hashed(decodes, body, [registry.get("pdq")], DEFAULT_LIMITS)
            pdq_now = next((value for _, value in hashes.values), None)
        except DecodeBusy as busy:
            return f"Not shown now: {busy}."
        except (MediaError, NotApplicable):
            pass  # no PDQ hash: not the item
    return await run_in_threadpool(other_content, recorded, body, pdq_now)


@router.post("/desk/hotline/items/{ident}/assess")
async def assess(request: Request, ident: int) -> Response:
    """The labels posted for item ``ident``: what the assessment did, or the item's page
    saying why it was refused."""
    signed_in = await sessions.caller(request, sessions.HOTLINE_ROLES)  # before the body
    if isinstance(signed_in, Response):
        return signed_in
    form = await request.form(max_files=0)
    csrf = form.get("csrf")
    caller = await sessions.form_caller(request, csrf if isinstance(csrf, str) else "",
                                        sessions.HOTLINE_ROLES)  # fmt: skip
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    hotline = service_of(request).hotline
    if hotline is None:
        return page("gone.html", 404, **_shown(key, expected, error="The hotline is off."))
    if not numbered(ident):
        return _gone(key, expected, f"no hotline item {ident}")
    labels = {name[len(LABEL):]: value.strip() for name, value in form.multi_items()
              if name.startswith(LABEL) and isinstance(value, str) and value.strip()}  # fmt: skip
    longer = next((name for name, value in labels.items()
                   if len(name) > MAX_LABEL or len(value) > MAX_LABEL), None)  # fmt: skip
    if longer is not None:
        error = (f"label group {longer[:MAX_LABEL]}…: label groups and values have at most "
                 f"{MAX_LABEL} characters")  # fmt: skip
        return await run_in_threadpool(_item_page, hotline, key, expected, ident, error, 400)

    def assessed() -> HTMLResponse:
        try:
            done = hotline.assessments.assess(ident, labels, analyst(key))
        except NotFound as gone:
            return _gone(key, expected, gone)
        except HashguardError as error:
            return _item_page(hotline, key, expected, ident, str(error), status_of(error),
                              labels)  # fmt: skip
        return _result_page(hotline, key, expected, done)

    return await run_in_threadpool(assessed)


def _result_page(hotline: Hotline, key: ApiKey, csrf: str, done: Assessment) -> HTMLResponse:
    """What an assessment did: final (which list, the legality per country and why), waiting
    for a second analyst, or back in the queue after a disagreement."""
    reasons = (hotline.vocabulary.reasons(done.labels, hotline.country)
               if done.state is AssessmentState.FINAL else {})  # fmt: skip
    following = [i.id for i in hotline.cases.queue(50, analyst(key))]
    return page("hotline/assessed.html", **_shown(
        key, csrf, done=done, reasons=reasons, home=hotline.country,
        illegal_list=hotline.settings.illegal_list, next_id=following[0] if following else None,
    ))  # fmt: skip


@router.get("/desk/hotline/cases/{ident}")
async def case_page(request: Request, ident: int) -> Response:
    """A case: its reports (never a contact), fetches, items (never content), trace, route,
    notices and outbox."""
    opened = await _opened(request)
    if isinstance(opened, Response):
        return opened
    hotline, key, csrf = opened
    if not numbered(ident):
        return _gone(key, csrf, f"no hotline case {ident}")

    def gathered() -> HTMLResponse:
        try:
            case = hotline.cases.case(ident)
        except NotFound as gone:
            return _gone(key, csrf, gone)
        return page("hotline/case.html", **_shown(key, csrf, case=case, trace=case.trace))

    return await run_in_threadpool(gathered)
