"""Safeguards over HTTP: services, detections and their review, actions, complaints, reports,
holds, the purge, risk assessments and the annual figures.

Nothing here can act before a human confirms (the domain refuses it: 409). Reviewers decide;
a complaint is decided by a reviewer who took no part; users complain with the token of their
statement of reasons (the only credential they have: no key).
"""

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from hashguard.api import safeguards
from hashguard.api.auth import actor, allow, unscoped
from hashguard.api.errors import ApiError
from hashguard.api.fields import MANY, Name, Text, Texts
from hashguard.api.matching import service_of
from hashguard.api.public_limits import guarded, limits_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    ActionReversed,
    ActionTaken,
    AnnualReport,
    AssessmentShown,
    Complaints,
    ComplaintShown,
    DetectionDetail,
    Detections,
    DetectionShown,
    NewServiceShown,
    Purged,
    ReportShown,
    Services,
    refusals,
)
from hashguard.api.service import Service
from hashguard.errors import MAX_ID, HashguardError
from hashguard.legal.profiles import DEFAULT
from hashguard.redress import notices
from hashguard.redress.complaints import Complaint
from hashguard.reports.eu import Circumstances
from hashguard.reports.risk import RiskAssessment, RiskAssessments
from hashguard.reports.submit import Report
from hashguard.retention.purge import purge
from hashguard.review import actions, webhook
from hashguard.review.detections import Review
from hashguard.review.model import (
    ActionKind,
    Decision,
    Detection,
    Source,
    State,
)
from hashguard.review.services import NAME_PATTERN
from hashguard.review.services import Service as CheckedService
from hashguard.review.webhook import PENDING, service_secret
from hashguard.stats import annual
from hashguard.store.api_keys import ApiKey, Role

router = APIRouter(prefix="/v1", tags=["safeguards"])
Admin = Annotated[ApiKey, allow()]
Reviewer = Annotated[ApiKey, allow(Role.REVIEWER)]
Watcher = Annotated[ApiKey, allow(Role.REVIEWER, Role.AUDITOR)]
Auditor = Annotated[ApiKey, allow(Role.AUDITOR)]
Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
DetectionId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a domain call off the event loop, its refusals as API errors."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except HashguardError as error:
        raise ApiError.of(error) from None


def detection_json(d: Detection, quarantine_delivered: bool) -> dict[str, Any]:
    """A detection as the API shows it: ``quarantined`` only once its service took the
    quarantine (its webhook call delivered); ``quarantine_requested`` as soon as it is asked."""
    return {
        "id": d.id, "service": d.service, "content_ref": d.content_ref,
        "account_ref": d.account_ref, "source": d.source.value, "technology": d.technology,
        "list": d.list_name, "entry": d.entry_id, "distance": d.distance, "exact": d.exact,
        "labels": d.labels, "evidence": d.evidence, "state": d.state.value,
        "detected_at": d.detected_at.isoformat(),
        "decided_at": d.decided_at.isoformat() if d.decided_at else None,
        "decision_reason": d.decision_reason,
        "quarantined": d.quarantined and quarantine_delivered,
        "quarantine_requested": d.quarantined, "retain_until": d.retain_until.isoformat(),
        "held_until": d.held_until.isoformat() if d.held_until else None,
    }  # fmt: skip


async def detections_json(service: Service, found: list[Detection]) -> list[dict[str, Any]]:
    delivered = await call(webhook.quarantines_delivered, service.engine,
                           [d.id for d in found if d.quarantined])  # fmt: skip
    return [detection_json(d, d.id in delivered) for d in found]


async def one_detection_json(service: Service, found: Detection) -> dict[str, Any]:
    [shown] = await detections_json(service, [found])
    return shown


def deliveries(service: Service, ident: int) -> list[dict[str, Any]]:
    """Each webhook call and report about detection ``ident``, oldest first, with its state:
    pending (its attempts and last error), delivered, or failed."""
    calls = [
        {"kind": "webhook", "event": c.event, "what": _what(c), "state": c.state,
         "attempts": c.attempts,
         "last_error": c.last_error, "created_at": c.created_at.isoformat(),
         "delivered_at": c.delivered_at.isoformat() if c.delivered_at else None,
         "next_attempt_at": c.next_attempt_at.isoformat() if c.state == PENDING else None}
        for c in webhook.calls(service.engine, detection_id=ident)
    ]  # fmt: skip
    reports = [
        {"kind": "report", "event": "report", "what": f"report to {r.recipient}",
         "state": r.delivery,
         "attempts": r.attempts, "last_error": r.last_error or _unsent(service, r),
         "created_at": r.created_at.isoformat(),
         "delivered_at": r.submitted_at.isoformat() if r.submitted_at else None,
         "next_attempt_at": None}
        for r in service.reports.of(ident)
    ]  # fmt: skip
    return sorted(calls + reports, key=lambda d: d["created_at"])


def _what(c: webhook.Call) -> str:
    """What a call asks of its service, in a reviewer's words."""
    kind = c.payload.get("kind")  # absent once a false positive purged the payload
    if c.event == "action.taken" and kind:
        return str(kind)
    if c.event == "action.reversed" and kind:
        return f"{kind} reversed"
    return "statement of reasons" if c.event == "notice" else c.event


def _unsent(service: Service, r: Report) -> str:
    """Why a report was never sent, when the service cannot send it."""
    option = {"eu-centre": ("--eu-centre-url", service.settings.eu_centre_url),
              "ncmec": ("--ncmec-url", service.settings.ncmec_url)}.get(r.recipient)  # fmt: skip
    if r.state == "submitted" or r.attempts or option is None or option[1]:
        return ""
    return f"not sent: the service was started without {option[0]}"


def visible_detection(review: Review, key: ApiKey, ident: int) -> Detection:
    """The detection as ``key`` may see it (``Review.visible``)."""
    return review.visible(ident, key.lists)


# --- services --------------------------------------------------------------------------------


class NewService(BaseModel):
    name: str = Field(max_length=100, pattern=NAME_PATTERN)
    legal_profile: str = Field(DEFAULT, max_length=64)
    e2ee: StrictBool = False
    webhook_url: str = Field("", max_length=2000)
    content_url: str = Field("", max_length=2000, description="Where reviewers see an item; {ref}")


def service_json(s: CheckedService) -> dict[str, Any]:
    return {"name": s.name, "legal_profile": s.legal_profile, "e2ee": s.e2ee,
            "webhook_url": s.webhook_url, "content_url": s.content_url}  # fmt: skip


@router.post(
    "/services",
    status_code=201,
    response_model=NewServiceShown,
    responses=refusals(400, *KEYED, 409, *BODY),
)
async def create_service(request: Request, key: Admin, body: NewService) -> dict[str, Any]:
    """Register a service; its webhook signing secret is in this answer. Audited."""
    unscoped(key, "register services")
    service = service_of(request)
    made = await call(service.review.services.create, body.name, body.legal_profile, body.e2ee,
                      body.webhook_url, body.content_url, actor(key))  # fmt: skip
    return {**service_json(made), "webhook_secret": service_secret(service.secret, made.name)}


@router.get(
    "/services",
    response_model=Services,
    responses=refusals(*KEYED),
)
async def list_services(request: Request, key: Auditor) -> dict[str, Any]:
    found = await call(service_of(request).review.services.all)
    return {"services": [service_json(s) for s in found]}


# --- detections --------------------------------------------------------------------------------


class UserFlag(BaseModel):
    content_ref: str = Field(min_length=1, max_length=500)
    account_ref: str = Field("", max_length=500, description="The uploader, not the flagger.")
    ip: str = Field("", max_length=64, description="The uploader's IP address (for reports).")
    ip_at: str = Field("", max_length=40, description="When the upload came from that IP.")
    reason: str = Field("", max_length=2000)


@router.post(
    "/flags",
    status_code=201,
    response_model=DetectionShown,
    responses=refusals(400, *KEYED, 404, 409, *BODY),
)
async def flag(request: Request, key: Matcher, body: UserFlag) -> dict[str, Any]:
    """A user of the service flagged an item: it joins the review queue (no action)."""
    if key.service is None:
        raise ApiError(403, "only a key tied to a service can flag its content")
    review = service_of(request).review
    checked = await call(review.services.get, key.service)
    found = await call(review.open, checked, body.content_ref, [], account_ref=body.account_ref,
                       subject={k: v for k, v in (("flag_reason", body.reason), ("ip", body.ip),
                                                  ("ip_at", body.ip_at)) if v},
                       source=Source.FLAG,
                       technology="flag", actor=actor(key))  # fmt: skip
    return await one_detection_json(service_of(request), found)


@router.get(
    "/detections",
    response_model=Detections,
    responses=refusals(*KEYED, 422),
)
async def queue(
    request: Request, key: Watcher, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Open detections (pending or in review), oldest first; a key limited to lists sees those
    lists' only."""
    service = service_of(request)
    found = await call(service.review.queue, list(key.lists) if key.lists else None, limit)
    return {"detections": await detections_json(service, found)}


@router.get(
    "/detections/{ident}",
    response_model=DetectionDetail,
    responses=refusals(*KEYED, 404, 422),
)
async def detection(request: Request, key: Watcher, ident: DetectionId) -> dict[str, Any]:
    """A detection with its votes, its actions and its deliveries: each webhook call (actions,
    notices) and report, pending (with its attempts and last error), delivered or failed."""
    service = service_of(request)
    review = service.review
    found = await call(visible_detection, review, key, ident)
    votes = await call(review.votes, ident)
    taken = await call(actions.actions, review.engine, ident)
    sent = await call(deliveries, service, ident)
    return {
        **await one_detection_json(service, found),
        "four_eyes": review.four_eyes(found),
        "votes": [{"reviewer": v.reviewer, "decision": v.decision.value, "reason": v.reason,
                   "at": v.at.isoformat()} for v in votes],
        "actions": [{"id": a.id, "kind": a.kind.value, "reason": a.reason,
                     "taken_at": a.taken_at.isoformat(),
                     "reversed_at": a.reversed_at.isoformat() if a.reversed_at else None}
                    for a in taken],
        "deliveries": sent,
    }  # fmt: skip


class NewDecision(BaseModel):
    decision: Decision
    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/detections/{ident}/decision",
    response_model=DetectionShown,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def decide(
    request: Request, key: Reviewer, ident: DetectionId, body: NewDecision
) -> dict[str, Any]:
    """Confirm, or call a false positive (undone at once: actions reversed, the entry
    contested, the data purged). On a four-eyes list it takes two reviewers who agree."""
    service = service_of(request)
    await call(visible_detection, service.review, key, ident)
    decided = await call(service.review.decide, ident, actor(key), body.decision, body.reason)
    return await one_detection_json(service, decided)


class NewAction(BaseModel):
    kind: ActionKind
    reason: str = Field(min_length=1, max_length=2000)
    language: Literal["en", "nl"] = "en"
    country: str = Field("", max_length=2, description="The user's country: names its DPA.")


@router.post(
    "/detections/{ident}/actions",
    status_code=201,
    response_model_exclude_unset=True,
    response_model=ActionTaken,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def act(
    request: Request, key: Reviewer, ident: DetectionId, body: NewAction
) -> dict[str, Any]:
    """Ask the service to act (through its webhook). Remove, disable and suspend need a
    confirmed detection and send the user a statement of reasons; 409 otherwise."""
    service = service_of(request)
    found = await call(visible_detection, service.review, key, ident)
    taken, notice = await call(safeguards.act, service, found, body.kind, actor(key), body.reason,
                               body.language, body.country)  # fmt: skip
    if notice is None:
        return {"action": taken.id, "kind": taken.kind.value}
    return {"action": taken.id, "kind": taken.kind.value, "notice": notice.id,
            "notice_text": notice.text,
            "complaint_until": notice.complaint_until.isoformat()}  # fmt: skip


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/actions/{ident}/reverse",
    response_model=ActionReversed,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def reverse(
    request: Request, key: Reviewer, ident: DetectionId, body: Reason
) -> dict[str, Any]:
    """Undo one action (the service is told through its webhook)."""
    service = service_of(request)
    detection_id = await call(actions.detection_of, service.engine, ident)
    await call(visible_detection, service.review, key, detection_id)
    undone = await call(actions.reverse, service.engine, ident, actor(key), body.reason)
    return {"action": undone.id, "kind": undone.kind.value,
            "reversed_at": undone.reversed_at.isoformat() if undone.reversed_at else None,
            }  # fmt: skip


@router.post(
    "/detections/{ident}/close",
    response_model=DetectionShown,
    responses=refusals(*KEYED, 404, 409, 422),
)
async def close(request: Request, key: Reviewer, ident: DetectionId) -> dict[str, Any]:
    """Close a confirmed or reported detection: nothing more is to be done about it."""
    service = service_of(request)
    await call(visible_detection, service.review, key, ident)
    closed = await call(service.review.mark, ident, State.CLOSED, actor(key))
    return await one_detection_json(service, closed)


class Hold(BaseModel):
    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/detections/{ident}/hold",
    response_model=DetectionShown,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def hold(request: Request, key: Admin, ident: DetectionId, body: Hold) -> dict[str, Any]:
    """A legal hold: kept past its retention until ``until``. Audited."""
    service = service_of(request)
    held = await call(service.review.hold, ident, body.until, body.reason, actor(key))
    return await one_detection_json(service, held)


# --- reports ---------------------------------------------------------------------------------


class NewReport(BaseModel):
    recipient: Literal["eu-centre", "ncmec"]
    removed: StrictBool
    urgent: StrictBool = False
    urgency_reason: str = Field("", max_length=3000)
    third_country: str = Field("", max_length=200)
    third_country_reference: str = Field("", max_length=200)


def report_json(r: Report) -> dict[str, Any]:
    return {"id": r.id, "detection": r.detection_id, "recipient": r.recipient, "state": r.state,
            "external_id": r.external_id, "attempts": r.attempts, "last_error": r.last_error,
            "document": r.document}  # fmt: skip


@router.post(
    "/detections/{ident}/reports",
    status_code=201,
    response_model=ReportShown,
    responses=refusals(*KEYED, 404, 409, *BODY, 503),
)
async def report(
    request: Request, key: Reviewer, ident: DetectionId, body: NewReport
) -> dict[str, Any]:
    """Make the provider report of a confirmed detection (409 before confirmation) and send it
    when the recipient is configured; otherwise it is kept, built, to send later."""
    service = service_of(request)
    await call(visible_detection, service.review, key, ident)
    circumstances = Circumstances(body.removed, body.urgent, body.urgency_reason,
                                  body.third_country, body.third_country_reference)  # fmt: skip
    made = await call(safeguards.report, service, ident, body.recipient, circumstances, actor(key))
    return report_json(made)


# --- complaints --------------------------------------------------------------------------------


def complaint_json(c: Complaint) -> dict[str, Any]:
    return {"id": c.id, "detection": c.detection_id, "state": c.state.value,
            "statement": c.statement, "lodged_at": c.lodged_at.isoformat(),
            "decided_at": c.decided_at.isoformat() if c.decided_at else None,
            "outcome_reason": c.outcome_reason}  # fmt: skip


class NewComplaint(BaseModel):
    token: str = Field(min_length=8, max_length=100, description="From the statement of reasons.")
    statement: str = Field(min_length=1, max_length=10_000)


@router.post(
    "/complaints",
    status_code=201,
    response_model=ComplaintShown,
    responses=refusals(404, 409, *BODY, 429),
)
async def lodge(request: Request, body: NewComplaint) -> dict[str, Any]:
    """A user complains about a decision, with the token of their statement of reasons (no
    key: it is their only credential). Wrong tokens are limited per address, uses of one token
    per hour (429 with Retry-After)."""
    service = service_of(request)
    link = partial(run_in_threadpool, notices.by_token, service.engine, body.token)
    await guarded(request, limits_of(request).complaints, body.token, link)
    lodged = await call(service.complaints.lodge, body.token, body.statement)
    return complaint_json(lodged)


@router.get(
    "/complaints",
    response_model=Complaints,
    responses=refusals(*KEYED),
)
async def open_complaints(request: Request, key: Reviewer) -> dict[str, Any]:
    unscoped(key, "see every complaint")
    found = await call(service_of(request).complaints.open)
    return {"complaints": [complaint_json(c) for c in found]}


class ComplaintDecision(BaseModel):
    upheld: StrictBool
    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/complaints/{ident}/decision",
    response_model=ComplaintShown,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def decide_complaint(
    request: Request, key: Reviewer, ident: DetectionId, body: ComplaintDecision
) -> dict[str, Any]:
    """Decide a complaint (not by anyone who took part in the decision). Upheld: the decision
    is reversed and counted as an error."""
    unscoped(key, "decide complaints")
    decided = await call(service_of(request).complaints.decide, ident, actor(key), body.upheld,
                         body.reason)  # fmt: skip
    return complaint_json(decided)


# --- retention, risk, figures --------------------------------------------------------------


@router.post(
    "/purge",
    response_model=Purged,
    responses=refusals(*KEYED),
)
async def run_purge(request: Request, key: Admin) -> dict[str, Any]:
    """Delete what is past its retention now (holds and open complaints keep theirs)."""
    unscoped(key, "purge")
    done = await call(purge, service_of(request).engine, None, actor(key))
    return {"detections": done.detections, "matches": done.matches,
            "webhook_calls": done.webhook_calls, "held": done.held}  # fmt: skip


class NewAssessment(BaseModel):
    factors: dict[Name, Text] = Field(max_length=MANY)
    mitigations: Texts = Field(default_factory=list)
    remaining_risk: Literal["low", "medium", "high"]
    next_due_at: AwareDatetime | None = None


def assessment_json(a: RiskAssessment) -> dict[str, Any]:
    return {"id": a.id, "service": a.service, "performed_at": a.performed_at.isoformat(),
            "factors": a.factors, "mitigations": a.mitigations,
            "remaining_risk": a.remaining_risk,
            "next_due_at": a.next_due_at.isoformat()}  # fmt: skip


@router.post(
    "/services/{name}/risk-assessments",
    status_code=201,
    response_model=AssessmentShown,
    responses=refusals(400, *KEYED, 404, 409, *BODY),
)
async def assess(request: Request, key: Admin, name: Name, body: NewAssessment) -> dict[str, Any]:
    """Record a risk assessment of a service (CSA Regulation Art 3-5). Audited."""
    service = service_of(request)
    checked = await call(service.review.services.get, name)
    made = await call(RiskAssessments(service.engine).record, checked, body.factors,
                      body.mitigations, body.remaining_risk, actor(key), None,
                      body.next_due_at)  # fmt: skip
    return assessment_json(made)


@router.get(
    "/stats/annual",
    response_model=AnnualReport,
    responses=refusals(*KEYED, 422),
)
async def figures(
    request: Request,
    key: Auditor,
    year: Annotated[int, Query(ge=2000, le=9999)],
    provider: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    """The annual transparency figures (no personal data; counts under 10 suppressed)."""
    unscoped(key, "read the annual figures")
    service = service_of(request)
    name = provider or service.settings.provider_name or "the provider"
    document: dict[str, Any] = await call(annual.report, service.engine, year, name)
    return document
