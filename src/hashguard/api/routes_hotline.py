"""The hotline over HTTP (hashguard.hotline; docs/hotline.md): public reports of URLs and their
status, referrals from partner hotlines, and the analysts' work (reports, cases, the queue,
items, assessment, the vocabulary, the dashboard's figures, hosting traces).

Every route answers 404 when the service runs no hotline (``--hotline-country`` unset). A public
report is JSON only, never a file; it is limited per client address (429 with Retry-After). The
reporter's status token travels in the ``X-Report-Token`` header, never in a URL. Nothing here
shows content: items are their URLs and hashes.
"""

from datetime import datetime
from functools import partial
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, analyst, partner
from hashguard.api.errors import ApiError, too_many
from hashguard.api.fields import Text, Urls
from hashguard.api.matching import service_of
from hashguard.api.public_limits import client_of, guarded, limits_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    HotlineAssessment,
    HotlineCase,
    HotlineFigures,
    HotlineItemDetail,
    HotlineQueue,
    HotlineReceipt,
    HotlineReferralReceived,
    HotlineReports,
    HotlineStatus,
    HotlineTrace,
    HotlineVocabulary,
    refusals,
)
from hashguard.errors import MAX_ID, HashguardError
from hashguard.hotline import urls
from hashguard.hotline.cases import CaseShown, ItemShown
from hashguard.hotline.model import WAITING, ItemState
from hashguard.hotline.partners import check_referral
from hashguard.hotline.service import Hotline
from hashguard.hotline.vocabulary import MAX_LABEL
from hashguard.rate_limit import RateLimited
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey, Role

router = APIRouter(prefix="/v1/hotline", tags=["hotline"])
Analyst = Annotated[ApiKey, allow(Role.ANALYST)]
Watcher = Annotated[ApiKey, allow(Role.ANALYST, Role.AUDITOR)]
Partner = Annotated[ApiKey, allow(Role.PARTNER)]
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's number.")]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="The item's number.")]
Limit = Annotated[int, Query(ge=1, le=500)]
NO_HOTLINE: Final = "this service runs no hotline (it is started with --hotline-country)"
NO_STORE: Final = {"Cache-Control": "no-store"}


def running(request: Request) -> Hotline:
    """The service's hotline; 404 when it runs none."""
    hotline = service_of(request).hotline
    if hotline is None:
        raise ApiError(404, NO_HOTLINE)
    return hotline


Running = Annotated[Hotline, Depends(running)]


async def json_only(request: Request) -> None:
    """415 for a body that is not JSON: a report never carries a file."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "a report is JSON (Content-Type: application/json); the hotline "
                            "never takes a file: send the web addresses only")  # fmt: skip


async def call(function: Any, *args: Any) -> Any:
    """Run a domain call off the event loop, its refusals as API errors by their kind."""
    try:
        return await run_in_threadpool(function, *args)
    except HashguardError as error:
        raise ApiError.of(error) from None


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- the public ------------------------------------------------------------------------------


class NewReport(BaseModel):
    urls: Urls = Field(description="The web addresses (1 to 20), starting with https://.")
    seen_where: Text = Field(description="Where they were seen: a site, an app, a chat.")
    description: Text = Field("", description="What they show, if you wish to say.")
    contact: Text | None = Field(None, description="How to reach you (optional; kept 90 days).")
    language: Literal["en", "nl"] = "en"


@router.post(
    "/reports", status_code=201, response_model=HotlineReceipt,
    responses=refusals(400, 404, *BODY, 415, 429),
    dependencies=[Depends(running), Depends(json_only)],
)  # fmt: skip
async def report(request: Request, hotline: Running, body: NewReport) -> Any:
    """Report web addresses where child sexual abuse material was seen (no key; anonymous
    allowed; never a file). Each URL is checked (http or https, a public host, at most 2,048
    characters; 400 names a refused URL or field) and joins the case of that URL if it was
    reported before (which the answer never says). The answer holds the report's reference and
    its status token, shown this once. Limited per client address (429 with Retry-After)."""
    try:
        receipt = await run_in_threadpool(
            hotline.report, body.urls, body.seen_where, body.description, body.contact,
            body.language, client_of(request),
        )  # fmt: skip
    except RateLimited as error:
        return too_many(request, error)
    except HashguardError as error:
        raise ApiError.of(error) from None
    return JSONResponse({"reference": receipt.reference, "token": receipt.token,
                         "urls": list(receipt.urls)}, 201,
                        headers=NO_STORE)  # fmt: skip


Token = Annotated[
    str, Header(alias="X-Report-Token", max_length=200, description="The report's status token.")
]


@router.get("/reports/status", response_model=HotlineStatus, responses=refusals(404, 422, 429))
async def report_status(request: Request, hotline: Running, token: Token) -> Any:
    """A report's status by its token (in the ``X-Report-Token`` header, never in a URL):
    received, assessed or action taken; nothing else about it. 404 for a token no report has;
    wrong tokens are limited per address, uses of one token per hour (429 with Retry-After)."""
    lookup = partial(run_in_threadpool, hotline.intake.status, token.strip())
    status = await guarded(request, limits_of(request).report_tokens, token.strip(), lookup)
    return JSONResponse({"status": status.value}, headers=NO_STORE)


# --- partner hotlines ------------------------------------------------------------------------

_REFERRAL: Final = (
    "The referral as a partner's hashguard sends it (docs/formats.md, \"Referrals between "
    'hotlines"): URLs, hashes, labels, the trace; never content.'
)
ReferralBody = Annotated[dict[str, Any], Body(description=_REFERRAL)]


@router.post(
    "/referrals", status_code=201, response_model=HotlineReferralReceived,
    responses=refusals(400, *KEYED, 404, *BODY),
)  # fmt: skip
async def referral(key: Partner, hotline: Running, body: ReferralBody) -> Any:
    """A referral from a partner hotline (a partner key; the partner is the key's name): it
    becomes a report here, its items triaged at once: an image this hotline assessed before is
    decided without anyone viewing it, the rest wait for this hotline's analysts. 400 names
    the field that is wrong. The same referral again (its ``referral`` id) is the same report:
    200 with the same reference and its items as they stand now (201 the first time)."""
    checked = await call(check_referral, body)
    received = await call(hotline.referrals.receive, partner(key), checked)
    queued = sum(state in WAITING for state in received.states)
    triaged = sum(state is ItemState.AUTO for state in received.states)
    return JSONResponse({"reference": received.reference, "items": len(checked.items),
                         "queued": queued, "triaged": triaged},
                        201 if received.new else 200)  # fmt: skip


# --- analysts --------------------------------------------------------------------------------


def item_json(item: ItemShown) -> dict[str, Any]:
    return {
        "id": item.id, "case": item.case_id, "case_url": item.case_url, "url": item.url,
        "kind": item.kind, "state": item.state, "hashes": item.hashes, "quality": item.quality,
        "labels": item.labels, "legality": item.legality, "triage": item.triage,
        "assessment": item.assessment_id, "created_at": _at(item.created_at),
        "decided_at": _at(item.decided_at), "first_analyst": item.first_analyst,
        "derived": item.derived, "stability": item.stability,
    }  # fmt: skip


def case_json(case: CaseShown) -> dict[str, Any]:
    trace, route = case.trace, case.route
    return {
        "id": case.id, "url": case.url, "host": case.host, "state": case.state,
        "created_at": _at(case.created_at), "updated_at": _at(case.updated_at),
        "attempts": case.attempts, "last_error": case.last_error,
        "reports": [{"reference": r.reference, "source": r.source, "seen_where": r.seen_where,
                     "created_at": _at(r.created_at)} for r in case.reports],
        "fetches": [{"id": f.id, "url": f.url, "final_url": f.final_url, "at": _at(f.at),
                     "status": f.status, "content_type": f.content_type, "size": f.size,
                     "kind": f.kind, "outcome": f.outcome, "detail": f.detail,
                     "hashes": f.hashes, "quality": f.quality} for f in case.fetches],
        "items": [item_json(i) for i in case.items],
        "trace": None if trace is None else {
            "at": _at(trace.at), "country": trace.country, "hoster": trace.hoster,
            "cdn": trace.cdn, "trace": trace.trace},
        "route": None if route is None else {
            "at": _at(route.at), "kind": route.kind, "target": route.target,
            "actions": list(route.actions), "reason": route.reason},
        "notices": [{"id": n.id, "hoster": n.hoster, "abuse_email": n.abuse_email,
                     "abuse_api": n.abuse_api, "cdn": n.cdn, "urls": list(n.urls),
                     "state": n.state, "created_at": _at(n.created_at)} for n in case.notices],
        "outbox": [{"id": o.id, "kind": o.kind, "target": o.target,
                    "created_at": _at(o.created_at), "attempts": o.attempts,
                    "next_attempt_at": _at(o.next_attempt_at),
                    "delivered_at": _at(o.delivered_at), "last_error": o.last_error}
                   for o in case.outbox],
    }  # fmt: skip


@router.get("/reports", response_model=HotlineReports, responses=refusals(*KEYED, 404, 422))
async def reports(
    key: Analyst,
    hotline: Running,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    """Reports, newest first, ``limit`` at a time from ``offset``; of a contact only whether
    there is one."""
    found = await call(hotline.cases.reports, limit, offset)
    return {"reports": [
        {"id": r.id, "reference": r.reference, "source": r.source,
         "created_at": _at(r.created_at), "language": r.language, "seen_where": r.seen_where,
         "description": r.description, "has_contact": r.has_contact, "cases": list(r.cases)}
        for r in found
    ]}  # fmt: skip


@router.get("/cases/{case_id}", response_model=HotlineCase, responses=refusals(*KEYED, 404, 422))
async def case(key: Analyst, hotline: Running, case_id: CaseId) -> dict[str, Any]:
    """A case (one reported URL): its reports, every fetch record, its items (URLs, hashes,
    states, labels; never content), the latest trace and route, notices and outbox messages."""
    return case_json(await call(hotline.cases.case, case_id))


@router.get("/queue", response_model=HotlineQueue, responses=refusals(*KEYED, 404, 422))
async def queue(key: Analyst, hotline: Running, limit: Limit = 50) -> dict[str, Any]:
    """Items waiting for an analyst (queued, or pending a second one under four eyes), oldest
    first. Items triaged automatically never appear here."""
    return {"items": [item_json(i) for i in await call(hotline.cases.queue, limit)]}


@router.get("/items/{item_id}", response_model=HotlineItemDetail,
            responses=refusals(*KEYED, 404, 422))  # fmt: skip
async def item(key: Analyst, hotline: Running, item_id: ItemId) -> dict[str, Any]:
    """An item (its URLs and hashes, never content) with every assessment of it."""
    found = await call(hotline.cases.item, item_id)
    return {**item_json(found), "assessments": [
        {"id": a.id, "state": a.state, "labels": a.labels, "legality": a.legality,
         "first_by": a.first_by, "first_at": _at(a.first_at), "second_by": a.second_by,
         "second_at": _at(a.second_at), "list": a.list_name}
        for a in found.assessments
    ]}  # fmt: skip


LabelText = Annotated[str, StringConstraints(max_length=MAX_LABEL)]


class Labels(BaseModel):
    labels: dict[LabelText, LabelText] = Field(
        max_length=64,
        description="One value per label group (GET /v1/hotline/vocabulary), e.g. "
        '{"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}.',
    )


@router.post(
    "/items/{item_id}/assessment", response_model=HotlineAssessment,
    responses=refusals(400, *KEYED, 404, 409, *BODY),
)  # fmt: skip
async def assess(key: Analyst, hotline: Running, item_id: ItemId, body: Labels) -> dict[str, Any]:
    """Assess an item waiting for an analyst (the analyst is the key's name). The legality
    per country follows from the labels; a final assessment lists the item's hashes (illegal
    at home: the hotline's illegal list, else its assessed-not-illegal list) and triages the
    queue again. With four eyes the first assessment is ``pending`` until a second analyst
    gives the same labels (other labels: ``disagreed``, back to the queue). 400 for labels
    the vocabulary refuses (the message names the group and value), 409 for an item not
    waiting for an analyst or an analyst assessing it twice."""
    made = await call(hotline.assessments.assess, item_id, body.labels, analyst(key))
    return {"id": made.id, "item": made.item_id, "state": made.state.value,
            "labels": made.labels, "legality": made.legality, "analysts": list(made.analysts),
            "list": made.list_name, "triaged": list(made.triaged)}  # fmt: skip


@router.get("/vocabulary", response_model=HotlineVocabulary, responses=refusals(*KEYED, 404))
async def vocabulary(key: Analyst, hotline: Running) -> dict[str, Any]:
    """The label groups an analyst chooses from (each with its values and whether it is
    required), and the countries whose legality the rules table derives from them."""
    held = hotline.vocabulary
    return {"groups": [{"name": g.name, "values": list(g.values), "required": g.required,
                        "description": g.description} for g in held.groups],
            "countries": sorted(held.rules)}  # fmt: skip


@router.get("/figures", response_model=HotlineFigures, responses=refusals(*KEYED, 404))
async def figures(key: Watcher, hotline: Running) -> dict[str, Any]:
    """The dashboard's figures: reports, cases by state, items by how they were decided, routes
    by kind, and the share of items triaged without anyone viewing them."""
    found = await call(hotline.cases.figures)
    return {"reports": found.reports, "cases": found.cases, "items": found.items,
            "auto": found.auto, "assessed": found.assessed, "queued": found.queued,
            "pending": found.pending, "failed": found.failed, "auto_share": found.auto_share,
            "cases_by_state": found.cases_by_state,
            "routes_by_kind": found.routes_by_kind}  # fmt: skip


class TraceRequest(BaseModel):
    url: str = Field(max_length=4096, description="The URL whose hosting to trace.")


@router.post("/trace", response_model=HotlineTrace, responses=refusals(400, *KEYED, 404, *BODY))
async def trace(
    request: Request, key: Analyst, hotline: Running, body: TraceRequest
) -> dict[str, Any]:
    """Trace a URL's hosting now: DNS (the CNAME chain, addresses), each address's network, AS
    and country from the offline IP databases (their dates stated), the hoster and its abuse
    contact from the registry, whether a CDN is in front; what could not be found is said.
    400 for a URL the hotline would not take in a report. Audited ("hotline.traced")."""
    checked = await call(urls.check, body.url, hotline.settings.networks)
    made = await call(hotline.trace, checked.url)
    shown: dict[str, Any] = made.as_json()
    await call(_audited, hotline, actor(key), shown)
    return shown


def _audited(hotline: Hotline, who: str, shown: dict[str, Any]) -> None:
    with hotline.engine.begin() as connection:
        audit.append(connection, who, "hotline.traced", shown["url"],
                     {"host": shown["host"], "country": shown["country"], "cdn": shown["cdn"],
                      "hoster": (shown["hoster"] or {}).get("name"),
                      "addresses": [a["address"] for a in shown["addresses"]]})  # fmt: skip
