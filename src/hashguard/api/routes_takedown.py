"""Notice and takedown over HTTP (hashguard.takedown; docs/takedown.md): a hoster's own notices
and orders and what it does about them, an authority's removal orders, the analysts' view of
every notice (resend, withdraw), the monitor's figures, the hotline's public key, XARF export and
import, and a partner hotline's takedown status for a case this hotline referred to it.

Every route answers 404 when the service runs no hotline (notice and takedown runs with it). A
hoster key sees only the notices of its own hoster: another hoster's notice is to it as one
that does not exist (404, the same message). Nothing here is content: notices are URLs, hashes
and labels.
"""

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, partner
from hashguard.api.errors import ApiError
from hashguard.api.fields import Name, Urls, Word
from hashguard.api.matching import service_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    TakedownExport,
    TakedownFigures,
    TakedownImported,
    TakedownKey,
    TakedownNotice,
    TakedownNoticeDetail,
    TakedownNotices,
    TakedownStatusReceived,
    refusals,
)
from hashguard.errors import MAX_ID, HashguardError
from hashguard.store.api_keys import ApiKey, Role
from hashguard.takedown.monitor import parse_moment
from hashguard.takedown.service import Takedown

router = APIRouter(prefix="/v1/takedown", tags=["takedown"])
status_router = APIRouter(prefix="/v1/hotline", tags=["hotline"])

ONLY_HOSTERS: Final = ("only a hoster key answers a hoster's notices (acknowledge, removed, "
                       "dispute, origin, confirm, inability): it speaks for that hoster, and "
                       "no other key may, an admin key neither")  # fmt: skip
# A hoster's own answers: its key alone (not admin's, as every other route allows).
Hoster = Annotated[ApiKey, allow(Role.HOSTER, admin=False, why=ONLY_HOSTERS)]
Authority = Annotated[ApiKey, allow(Role.AUTHORITY)]
Analyst = Annotated[ApiKey, allow(Role.ANALYST)]
Reader = Annotated[ApiKey, allow(Role.HOSTER, Role.ANALYST, Role.AUDITOR)]
OrderReader = Annotated[ApiKey, allow(Role.AUTHORITY, Role.ANALYST, Role.AUDITOR)]
Watcher = Annotated[ApiKey, allow(Role.ANALYST, Role.AUDITOR)]
Anyone = Annotated[ApiKey, allow(*Role)]
Partner = Annotated[ApiKey, allow(Role.PARTNER)]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The notice's number.")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Notices numbered below this "
                                     "(the next page: the last number shown).")]  # fmt: skip
NO_TAKEDOWN: Final = "this service runs no hotline, so no notice and takedown (it is started " \
    "with --hotline-country)"  # fmt: skip


def running(request: Request) -> Takedown:
    """The service's notice and takedown; 404 when it runs none."""
    takedown = service_of(request).takedown
    if takedown is None:
        raise ApiError(404, NO_TAKEDOWN)
    return takedown


Running = Annotated[Takedown, Depends(running)]


async def call(function: Any, *args: Any, **named: Any) -> Any:
    """Run a domain call off the event loop, its refusals as API errors by their kind."""
    try:
        return await run_in_threadpool(function, *args, **named)
    except HashguardError as error:
        raise ApiError.of(error) from None


def own(key: ApiKey) -> str | None:
    """The hoster whose notices ``key`` sees: its own for a hoster key, every one (None) else."""
    return key.hoster if key.role is Role.HOSTER else None


def _moment(text: str, name: str) -> datetime | None:
    try:
        return parse_moment(text, name)
    except HashguardError as error:
        raise ApiError(400, str(error)) from None


# --- reading ---------------------------------------------------------------------------------


@router.get("/notices", response_model=TakedownNotices, responses=refusals(400, *KEYED, 404, 422))
async def notices(
    key: Reader,
    takedown: Running,
    state: Annotated[
        Word | None, Query(description="queued, open, removed, forwarded, withdrawn")
    ] = None,
    kind: Annotated[Word | None, Query(description="notice, cdn, order")] = None,
    overdue: Annotated[bool | None, Query(description="Open and past the deadline.")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> dict[str, Any]:
    """Notices newest first: a hoster key its own hoster's, an analyst or auditor every one;
    by state, kind and whether overdue. 400 for an unknown state or kind."""
    found = await call(takedown.notices.list, hoster=own(key), state=state, kind=kind,
                       overdue=overdue, limit=limit, before=before)  # fmt: skip
    return {"notices": [notice.as_json() for notice in found]}


@router.get("/notices/{notice_id}", response_model=TakedownNoticeDetail,
            responses=refusals(*KEYED, 404, 422))  # fmt: skip
async def notice(key: Reader, takedown: Running, notice_id: NoticeId) -> dict[str, Any]:
    """A notice with its signed document (XARF v4, as sent), its timeline, the re-checks (what
    each URL served, by hash) and the deliveries. 404 for a notice that is not there, or is
    another hoster's."""
    found = await call(takedown.notices.get, notice_id, own(key))
    shown: dict[str, Any] = found.as_json()
    return shown


# --- a hoster's actions ----------------------------------------------------------------------


class Note(BaseModel):
    note: str = Field("", max_length=2000, description="What was done (optional).")


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why, for the hotline.")


class Origin(BaseModel):
    address: str = Field(max_length=64, description="The origin server's IP address.")


_HOSTER_ACTION = refusals(400, *KEYED, 404, 409, *BODY)


@router.post("/notices/{notice_id}/acknowledge", response_model=TakedownNotice,
             responses=refusals(*KEYED, 404, 409, 422))  # fmt: skip
async def acknowledge(key: Hoster, takedown: Running, notice_id: NoticeId) -> dict[str, Any]:
    """The hoster has seen the notice (once; again changes nothing). 409 for a notice that is
    no longer open."""
    shown: dict[str, Any] = (await call(takedown.notices.acknowledge, notice_id, own(key),
                                        actor(key))).as_json()  # fmt: skip
    return shown


@router.post("/notices/{notice_id}/removed", response_model=TakedownNotice,
             responses=_HOSTER_ACTION)  # fmt: skip
async def removed(
    key: Hoster, takedown: Running, notice_id: NoticeId, body: Note | None = None
) -> dict[str, Any]:
    """The hoster says the content is gone. Never taken alone: the hotline fetches every URL
    again now and the notice is removed only when that shows it gone (``verified_at``)."""
    note = body.note if body is not None else ""
    shown: dict[str, Any] = (await call(takedown.notices.claim_removed, notice_id, own(key),
                                        actor(key), note)).as_json()  # fmt: skip
    return shown


@router.post("/notices/{notice_id}/dispute", response_model=TakedownNotice,
             responses=_HOSTER_ACTION)  # fmt: skip
async def dispute(key: Hoster, takedown: Running, notice_id: NoticeId,
                  body: Reason) -> dict[str, Any]:  # fmt: skip
    """The hoster disputes the notice, with its reason (kept for an analyst, who may withdraw
    the notice); the notice stays open meanwhile."""
    shown: dict[str, Any] = (await call(takedown.notices.dispute, notice_id, own(key),
                                        actor(key), body.reason)).as_json()  # fmt: skip
    return shown


@router.post("/notices/{notice_id}/origin", response_model=TakedownNotice,
             responses=_HOSTER_ACTION)  # fmt: skip
async def origin(key: Hoster, takedown: Running, notice_id: NoticeId,
                 body: Origin) -> dict[str, Any]:  # fmt: skip
    """A CDN names the origin server of a notice's URLs: the notice goes on to the origin's
    hoster (``state`` forwarded), or, when no hoster is known for the address, it stays open
    saying so. 400 for an address that is not an IP address, 409 for a notice that is not an
    open CDN notice."""
    shown: dict[str, Any] = (await call(takedown.notices.origin, notice_id, own(key),
                                        actor(key), body.address)).as_json()  # fmt: skip
    return shown


@router.post("/orders/{notice_id}/confirm", response_model=TakedownNotice,
             responses=refusals(*KEYED, 404, 409, 422))  # fmt: skip
async def confirm(key: Hoster, takedown: Running, notice_id: NoticeId) -> dict[str, Any]:
    """The hoster confirms it executed a removal order (once); the hotline checks it."""
    shown: dict[str, Any] = (await call(takedown.notices.confirm_order, notice_id, own(key),
                                        actor(key))).as_json()  # fmt: skip
    return shown


@router.post("/orders/{notice_id}/inability", response_model=TakedownNotice,
             responses=_HOSTER_ACTION)  # fmt: skip
async def inability(key: Hoster, takedown: Running, notice_id: NoticeId,
                    body: Reason) -> dict[str, Any]:  # fmt: skip
    """The hoster cannot execute a removal order, with its reasons (once)."""
    shown: dict[str, Any] = (await call(takedown.notices.inability, notice_id, own(key),
                                        actor(key), body.reason)).as_json()  # fmt: skip
    return shown


@router.get("/figures", response_model=TakedownFigures, responses=refusals(400, *KEYED, 404, 422))
async def figures(
    key: Reader,
    takedown: Running,
    by: Annotated[Word, Query(description="hoster, country or all")] = "hoster",
    since: Annotated[str, Query(max_length=40, description="From (YYYY-MM-DD).")] = "",
    until: Annotated[str, Query(max_length=40, description="Until (YYYY-MM-DD).")] = "",
) -> dict[str, Any]:
    """Time from report to verified removal (median, p90, p99, share within 24 hours), open and
    overdue notices, re-notices, escalations, reappearances and disputes: a hoster key its own
    figures, an analyst or auditor every hoster's (or by country, or all)."""
    start, end = _moment(since, "since"), _moment(until, "until")
    hoster = own(key)
    rows = await call(takedown.monitor.figures, "all" if hoster else by, start, end, hoster)
    return {"figures": [row.as_json() for row in rows]}


# --- operators -------------------------------------------------------------------------------


@router.post("/notices/{notice_id}/resend", response_model=TakedownNotice,
             responses=refusals(*KEYED, 404, 409, 422))  # fmt: skip
async def resend(key: Analyst, takedown: Running, notice_id: NoticeId) -> dict[str, Any]:
    """Send an open notice again, as it was signed (audited)."""
    shown: dict[str, Any] = (await call(takedown.notices.resend, notice_id,
                                        actor(key))).as_json()  # fmt: skip
    return shown


@router.post("/notices/{notice_id}/withdraw", response_model=TakedownNotice,
             responses=_HOSTER_ACTION)  # fmt: skip
async def withdraw(key: Analyst, takedown: Running, notice_id: NoticeId,
                   body: Reason) -> dict[str, Any]:  # fmt: skip
    """Take back a queued or open notice (a dispute upheld, a mistake), with the reason:
    nothing more is sent or checked (audited)."""
    shown: dict[str, Any] = (await call(takedown.notices.withdraw, notice_id, actor(key),
                                        body.reason)).as_json()  # fmt: skip
    return shown


# --- authorities -----------------------------------------------------------------------------


class NewOrder(BaseModel):
    urls: Urls = Field(min_length=1, description="The URLs to remove.")
    legal_basis: str = Field(max_length=2000, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$",
                             description="The legal basis of the order (no control "
                             "characters but line breaks).")  # fmt: skip
    reference: str = Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$",
                           description="The authority's reference (printable text: it goes "
                           "into e-mail subjects).")  # fmt: skip
    hoster: str | None = Field(None, max_length=200, description="The hoster, as the registry "
                               "names it; not given: traced from the URLs.")  # fmt: skip


@router.post("/orders", status_code=201, response_model=TakedownNotice,
             responses=refusals(400, *KEYED, 404, *BODY))  # fmt: skip
async def issue(key: Authority, takedown: Running, body: NewOrder) -> dict[str, Any]:
    """Issue a removal order for URLs on a legal basis: sent to their hoster (named, or traced)
    with the order's deadline; its reminders, the hoster's confirmation or inability and the
    verified removal follow. 400 names a refused URL, an unknown hoster or URLs of several."""
    shown: dict[str, Any] = (await call(takedown.notices.issue_order, body.urls,
                                        body.legal_basis, body.reference, actor(key),
                                        body.hoster)).as_json()  # fmt: skip
    return shown


@router.get("/orders", response_model=TakedownNotices, responses=refusals(*KEYED, 404, 422))
async def orders(key: OrderReader, takedown: Running, limit: Limit = 100,
                 before: Before = None) -> dict[str, Any]:  # fmt: skip
    """Removal orders newest first: an authority key those it issued, analysts and auditors
    every one."""
    issuer = actor(key) if key.role is Role.AUTHORITY else None
    found = await call(takedown.orders, issuer, limit, before)
    return {"notices": [order.as_json() for order in found]}


@router.get("/orders/{notice_id}", response_model=TakedownNoticeDetail,
            responses=refusals(*KEYED, 404, 422))  # fmt: skip
async def order(key: OrderReader, takedown: Running, notice_id: NoticeId) -> dict[str, Any]:
    """A removal order with its timeline, checks and deliveries; to an authority key only
    those it issued (another's is 404)."""
    issuer = actor(key) if key.role is Role.AUTHORITY else None
    shown: dict[str, Any] = (await call(takedown.order, notice_id, issuer)).as_json()
    return shown


# --- every key -------------------------------------------------------------------------------


@router.get("/key", response_model=TakedownKey, responses=refusals(*KEYED, 404))
async def public_key(key: Anyone, takedown: Running) -> dict[str, Any]:
    """The hotline's Ed25519 public key (hex), which every notice, evidence bundle and status
    message is signed with (``hashguard_signature``): any key may read it, so hosters and
    authorities can check what they receive."""
    return {"algorithm": "ed25519", "public_key": takedown.public_key}


# --- exchange --------------------------------------------------------------------------------


@router.get("/export", response_model=TakedownExport, responses=refusals(*KEYED, 404, 422))
async def export(key: Watcher, takedown: Running, limit: Limit = 1000,
                 before: Before = None) -> dict[str, Any]:  # fmt: skip
    """Notices newest first as XARF v4 reports (as signed and sent), and for each verified
    removal an outcome report (``content_removed``) with its evidence, for other abuse desks."""
    return {"reports": await call(takedown.export, limit, before)}


_XARF = ("XARF v4 reports from another abuse desk: one JSON object, a list, or JSON lines; "
         "sent as text/plain or application/json.")  # fmt: skip
_XARF_BODY: Final = {"requestBody": {"required": True, "description": _XARF, "content": {
    "text/plain": {"schema": {"type": "string"}},
    "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
}}}  # fmt: skip


@router.post("/import", response_model=TakedownImported,
             responses=refusals(400, *KEYED, 404, *BODY), openapi_extra=_XARF_BODY)  # fmt: skip
async def import_reports(request: Request, key: Analyst, takedown: Running,
                         source: Annotated[Name, Query(min_length=1, max_length=200,
                                                      description="Who sent them.")]
                         ) -> dict[str, Any]:  # fmt: skip
    """Take in XARF reports of takedown outcomes from another abuse desk (``source``): kept as
    outcomes, each linked to the case of its URL when the hotline has one. The body is the
    reports as text (text/plain) or JSON (application/json), read alike. 400 names the line
    and field of a report that cannot be read; nothing is kept then."""
    raw = await request.body()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the reports are not UTF-8 text") from None
    if not body.strip():
        raise ApiError(400, "no reports: the body is empty (XARF v4 JSON: an object, a list, "
                            "or JSON lines)")  # fmt: skip
    imported, linked = await call(takedown.import_reports, body, source, actor(key))
    return {"imported": imported, "linked": linked}


# --- a partner hotline -------------------------------------------------------------------------

_STATUS: Final = ("The takedown status of a case this hotline referred (docs/takedown.md, "
                  '"Status between hotlines"), signed with the partner\'s key.')  # fmt: skip
StatusBody = Annotated[dict[str, Any], Body(description=_STATUS)]
ReferralId = Annotated[
    str, Path(pattern="^[0-9a-f]{32}$", max_length=32, description="The referral's id.")
]


@status_router.post("/referrals/{referral}/status", status_code=201,
                    response_model=TakedownStatusReceived,
                    responses=refusals(400, *KEYED, 404, *BODY))  # fmt: skip
async def referral_status(key: Partner, takedown: Running, referral: ReferralId,
                          body: StatusBody) -> Any:  # fmt: skip
    """A partner hotline tells the takedown status of a case this hotline referred to it (a
    partner key; the partner is the key's name): kept as the case's outcome. 404 for a
    referral this hotline did not send to that partner; 400 names a bad field; 422 for a
    signature that does not match. The same status again is 200, kept once."""
    received = await call(takedown.receive_status, partner(key), referral, body)
    return JSONResponse({"case": received.case_id, "status": received.status,
                         "urls": received.urls}, 201 if received.new else 200)  # fmt: skip
