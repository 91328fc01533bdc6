"""The hotline's assessment desk (``/desk/hotline``), for analyst (and admin) keys: the dashboard
with the share of items triaged without anyone viewing them and the assessment queue (oldest
first, never a thumbnail), an item for assessment, and a case with everything recorded of it.

An item's content is never stored: it is fetched again from its URL when its page is opened,
through the hotline's own fetcher (public addresses, or the networks the operator named), and
passed through by the review desk's proxy (``desk.pass_through``), shielded by the desk's script
and styles, each viewing audited (``Cases.record_view``). Only an item waiting for an analyst
is shown: one triaged automatically or assessed is never shown again. When its URL now serves
other bytes (another SHA-256 than the crawler recorded) they are not shown: labels given now
would describe other content than the hashes they list.

The labels form has one control per vocabulary group; it posts to ``Assessments.assess``, and
the answer says what happened, or the form again with the refusal said at the top.
"""

import hashlib
from functools import partial
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor
from hashguard.api.errors import status_of
from hashguard.api.matching import service_of
from hashguard.errors import HashguardError, NotFound
from hashguard.hotline.assessment import Assessment
from hashguard.hotline.cases import Figures, ItemShown
from hashguard.hotline.model import AssessmentState, ItemState
from hashguard.hotline.service import Hotline
from hashguard.store.api_keys import ApiKey
from hashguard.web import sessions
from hashguard.web.desk import pass_through, refusal
from hashguard.web.pages import page

router = APIRouter(include_in_schema=False)
QUEUE_LIMIT: Final = 200
REPORTS_SHOWN: Final = 20
WAITING: Final = frozenset({ItemState.QUEUED.value, ItemState.PENDING.value})
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


def _gone(key: ApiKey, csrf: str, error: HashguardError) -> HTMLResponse:
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
    except NotFound as gone:
        return _gone(key, csrf, gone)
    fetches = [f for f in case.fetches if f.url == item.url]
    waiting = item.state in WAITING
    mine = item.first_analyst == actor(key)
    following = [i.id for i in hotline.cases.queue(50)
                 if i.id != ident and i.first_analyst != actor(key)]  # fmt: skip
    return page("hotline/item.html", status, **_shown(
        key, csrf, error=error, item=item, case=case, fetch=fetches[-1] if fetches else None,
        trace=case.trace, waiting=waiting, mine=mine,
        content_url=f"/desk/hotline/items/{ident}/content" if waiting else "",
        groups=hotline.vocabulary.groups, chosen=chosen or {},
        four_eyes=hotline.settings.four_eyes, next_id=following[0] if following else None,
    ))  # fmt: skip


@router.get("/desk/hotline/items/{ident}/content")
async def content(request: Request, ident: int) -> Response:
    """The item, fetched again from its URL now through the hotline's fetcher and passed
    through; each viewing audited. Otherwise a plain-text answer saying why."""
    found = await sessions.session(request, sessions.HOTLINE_ROLES)
    hotline = service_of(request).hotline
    if found is None:
        return refusal("Sign in again with an analyst key to see the item.", 401)
    if hotline is None:
        return refusal("The hotline is off.", 404)
    key, _ = found
    try:
        item = await run_in_threadpool(hotline.cases.item, ident)
    except NotFound:
        return refusal(f"There is no hotline item {ident}.", 404)
    if item.state not in WAITING:
        return refusal(f"Item {ident} is {STATE_WORDS[item.state].lower()}: an item that waits "
                       "for no analyst is not shown again.", 409)  # fmt: skip
    return await pass_through(
        hotline.fetcher, item.url, "The URL", partial(hotline.cases.record_view, ident, actor(key)),
        partial(_other_content, item), gone=": the content is gone from it",
    )  # fmt: skip


def _other_content(item: ItemShown, body: bytes) -> str:
    """Why ``body`` is not shown as ``item`` ("" when it is the content the crawler hashed)."""
    recorded = item.hashes.get("sha256")
    now = hashlib.sha256(body).hexdigest()
    if recorded is None or now == recorded.lower():
        return ""
    return (
        f"The URL now serves different content (SHA-256 {now[:16]}…, recorded "
        f"{recorded[:16]}…). It is not shown: labels given now would describe other content "
        "than the hashes they list."
    )


@router.post("/desk/hotline/items/{ident}/assess")
async def assess(request: Request, ident: int) -> Response:
    """The labels posted for item ``ident``: what the assessment did, or the item's page
    saying why it was refused."""
    form = await request.form()
    csrf = form.get("csrf")
    caller = await sessions.form_caller(request, csrf if isinstance(csrf, str) else "",
                                        sessions.HOTLINE_ROLES)  # fmt: skip
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    hotline = service_of(request).hotline
    if hotline is None:
        return page("gone.html", 404, **_shown(key, expected, error="The hotline is off."))
    labels = {name[len(LABEL):]: value.strip() for name, value in form.multi_items()
              if name.startswith(LABEL) and isinstance(value, str) and value.strip()}  # fmt: skip

    def assessed() -> HTMLResponse:
        try:
            done = hotline.assessments.assess(ident, labels, actor(key))
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
    following = [i.id for i in hotline.cases.queue(50) if i.first_analyst != actor(key)]
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

    def gathered() -> HTMLResponse:
        try:
            case = hotline.cases.case(ident)
        except NotFound as gone:
            return _gone(key, csrf, gone)
        return page("hotline/case.html", **_shown(key, csrf, case=case, trace=case.trace))

    return await run_in_threadpool(gathered)
