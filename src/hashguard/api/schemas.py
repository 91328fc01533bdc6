"""The answers of hashguard's own routes as the OpenAPI document describes them: a pydantic
model per answer (each with an example), the error body every refusal has, and which error
statuses a route documents (``refusals``); ``document`` serves the OpenAPI document so.

The models describe the JSON the routes build; FastAPI validates each answer against its model
and serialises it in the model's field order, so the fields are declared in the order the
routes write them. Keys a route writes only sometimes are optional here and left out unless
given (the routes say ``response_model_exclude_unset=True``), so no answer gains a null.
HMA's answers are described in ``api.hma.models``.
"""

import builtins
from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from hashguard.lists.model import Category, ChangeKind, EntryStatus
from hashguard.redress.complaints import Outcome
from hashguard.review.model import ActionKind, Decision, Source, State
from hashguard.store.api_keys import Role

# A JSON number as the route gives it: an int stays an int, a float a float (a plain ``float``
# field would turn 31 into 31.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]

_PDQ = "f" * 32 + "0" * 32
_AT = "2026-03-14T09:26:53.589793+00:00"


def _example(*examples: dict[str, Any] | list[Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- errors ----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every refusal of hashguard's own routes: the HTTP status, a code for programs and a
    message for people saying what was wrong."""

    model_config = _example(
        {"error": {"status": 404, "code": "not_found", "message": "no list named 'ncii'"}}
    )
    error: ErrorDetail


# status -> (code, when it is answered, an example message)
_REFUSALS: Final[dict[int, tuple[str, str, str]]] = {
    400: ("bad_request", "The request is malformed: the message says what was expected.",
          "pdq hash 'abc': expected 64 hex digits"),
    401: ("unauthenticated", "No API key, or one that is unknown, malformed or revoked.",
          "an API key is required: send 'Authorization: Bearer <key>'"),
    403: ("forbidden", "The key's role may not use this route, or the key is limited to other "
          "lists.", "a matcher key may not use this route (allowed: admin, curator)"),
    404: ("not_found", "No such thing (the message names it).", "no list named 'ncii'"),
    409: ("conflict", "The request conflicts with the current state (the message says how).",
          "list 'known' exists"),
    413: ("too_large", "The body (or the batch) is larger than this route takes.",
          "the request body is larger than this route takes (1048576 bytes)"),
    415: ("unsupported_media_type", "The file is not media this signal applies to.",
          "not a supported image or video format"),
    422: ("invalid", "A parameter or the body does not match this route's schema; the message "
          "names each problem.", "hashes.0.value: String should have at most 128 characters"),
    429: ("rate_limited", "The key's budget is spent (Retry-After says when to ask again).",
          "at most 1000 evaluations an hour per device key; retry in 12 s"),
    503: ("unavailable", "The service cannot answer yet (the lists are loading) or now.",
          "the lists are loading"),
}  # fmt: skip


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route of hashguard's own (``responses=``): each
    status with the ``ErrorBody`` model, when it is answered, and an example."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, when, message = _REFUSALS[status]
        example = {"error": {"status": status, "code": code, "message": message}}
        documented[status] = {"model": ErrorBody, "description": when,
                              "content": {"application/json": {"example": example}}}  # fmt: skip
    return documented


# What every keyed route can answer: no key (or a dead one), a key of another role.
KEYED: Final = (401, 403)
# A route with a JSON body: too large, or not the model.
BODY: Final = (413, 422)


# --- status ----------------------------------------------------------------------------------


class Live(BaseModel):
    model_config = _example({"live": True})
    live: bool


class Readiness(BaseModel):
    """Ready (200) or not (503, with the reason)."""

    model_config = _example(
        {"ready": True, "reason": "ready", "index_age_seconds": 0.2},
        {"ready": False, "reason": "the lists are loading", "index_age_seconds": None},
    )
    ready: bool
    reason: str
    index_age_seconds: Number | None


# --- hashing and matching --------------------------------------------------------------------


class Hash(BaseModel):
    value: str
    quality: int | SkipJsonSchema[None] = None
    dihedral: dict[str, str] | SkipJsonSchema[None] = None


class HashAnswer(BaseModel):
    model_config = _example(
        {
            "kind": "image",
            "hashes": {"pdq": {"value": _PDQ, "quality": 100}, "md5": {"value": "0" * 32}},
        },
        {"kind": "other", "hashes": {"sha256": {"value": "a" * 64}}},
        {
            "kind": "image",
            "hashes": {"md5": {"value": "0" * 32}},
            "failed": "cannot decode JPEG data: image file is truncated",
        },
    )
    kind: str
    hashes: dict[str, Hash]
    # Media that could not be decoded: why; its hashes are then those of its bytes alone.
    failed: str | None = None


class MatchFound(BaseModel):
    list: str
    entry: int
    signal: str
    distance: Number
    labels: builtins.list[str]
    value: str
    # Videos (vPDQ) only: the share of the query's frames found in the listed video, and of
    # the listed video's frames found in the query (``distance`` is 100 minus the lesser).
    query_percent: float | None = None
    listed_percent: float | None = None


_MATCH = {"list": "known", "entry": 17, "signal": "pdq", "distance": 4, "labels": ["A1"],
          "value": _PDQ}  # fmt: skip


class MediaMatchAnswer(BaseModel):
    model_config = _example(
        {"kind": "image", "hashes": {"pdq": {"value": _PDQ, "quality": 100}},
         "matches": [_MATCH]},
        {"kind": None, "hashes": {}, "matches": []},
    )  # fmt: skip
    kind: str | None
    hashes: dict[str, Hash]
    failed: str | None = None  # as in HashAnswer: matched by the hashes of its bytes alone
    matches: list[MatchFound]


class HashResult(BaseModel):
    matches: list[MatchFound]


class HashMatchAnswer(BaseModel):
    """One result per hash asked, in order."""

    model_config = _example({"matched": 1, "results": [{"matches": [_MATCH]}, {"matches": []}]})
    matched: int
    results: list[HashResult]


# --- lists -----------------------------------------------------------------------------------


class PolicyShown(BaseModel):
    thresholds: dict[str, Number]
    negative: bool
    two_sources: bool
    enabled_ratio: Number
    four_eyes: bool


_POLICY = {"thresholds": {"pdq": 31.0}, "negative": False, "two_sources": False,
           "enabled_ratio": 1.0, "four_eyes": False}  # fmt: skip
_LIST = {"name": "known", "owner": "Test Hotline", "category": "known-csam",
         "jurisdictions": ["NL"], "legal_basis": "", "policy": _POLICY, "version": 3}  # fmt: skip


class HashListShown(BaseModel):
    model_config = _example(_LIST)
    name: str
    owner: str
    category: Category
    jurisdictions: list[str]
    legal_basis: str
    policy: PolicyShown
    version: int


class HashLists(BaseModel):
    model_config = _example({"lists": [_LIST]})
    lists: list[HashListShown]


class ListRemoved(BaseModel):
    model_config = _example({"removed": "known", "version": 3})
    removed: str
    version: int


class Imported(BaseModel):
    model_config = _example(
        {"list": "known", "added": 2, "updated": 0, "removed": 0, "unchanged": 1,
         "unknown_tombstones": 0, "version": 5, "skipped": {"low quality": 1}}
    )  # fmt: skip
    list: str
    added: int
    updated: int
    removed: int
    unchanged: int
    unknown_tombstones: int
    version: int
    skipped: dict[str, int]


class SourceShown(BaseModel):
    organisation: str
    jurisdiction: str
    reference: str


class ProvenanceShown(BaseModel):
    submitted_by: str
    assessed_by: str
    sources: list[SourceShown]


_CHANGE = {"version": 4, "kind": "contest", "tombstone": False, "entry": 17, "signal": "pdq",
           "value": _PDQ, "at": _AT, "actor": "key:3f2a (hotline)",
           "reason": "false positive confirmed by review"}  # fmt: skip


class ChangeShown(BaseModel):
    """One change of a list's log; ``labels``, ``provenance`` and ``reason`` only when the
    change has them."""

    model_config = _example(_CHANGE)
    version: int
    kind: ChangeKind
    tombstone: bool
    entry: int
    signal: str
    value: str
    at: str
    actor: str
    labels: list[str] | SkipJsonSchema[None] = None
    provenance: ProvenanceShown | SkipJsonSchema[None] = None
    reason: str | SkipJsonSchema[None] = None


class Changes(BaseModel):
    model_config = _example({"list": "known", "version": 4, "since": 3, "changes": [_CHANGE]})
    list: str
    version: int
    since: int
    changes: builtins.list[ChangeShown]


class EntryShown(BaseModel):
    model_config = _example(
        {"entry": 17, "signal": "pdq", "value": _PDQ, "status": "active", "labels": ["A1"],
         "provenance": {"submitted_by": "Test Hotline", "assessed_by": "",
                        "sources": [{"organisation": "Test Hotline", "jurisdiction": "NL",
                                     "reference": ""}]},
         "version": 2}
    )  # fmt: skip
    entry: int
    signal: str
    value: str
    status: EntryStatus
    labels: list[str]
    provenance: ProvenanceShown
    version: int


class Release(BaseModel):
    """The signed manifest (``docs/formats.md``) and the release's place in the log."""

    model_config = _example(
        {"manifest": {"format": "hashguard/list-release", "list": "known", "version": 4},
         "log_index": 11, "log_size": 12, "directory": "/srv/hashguard/releases/known/4"}
    )  # fmt: skip
    manifest: dict[str, Any]
    log_index: int
    log_size: int
    directory: str


# --- keys and logs ---------------------------------------------------------------------------


_KEY: dict[str, Any] = {"id": "3f2a9c1e", "role": "curator", "lists": [],
                        "name": "hotline import job", "created_at": _AT,
                        "revoked_at": None}  # fmt: skip


class KeyShown(BaseModel):
    model_config = _example(_KEY)
    id: str
    role: Role
    lists: list[str]
    name: str
    created_at: str
    revoked_at: str | None


class NewKeyShown(KeyShown):
    """The key with its token: shown in this answer only."""

    model_config = _example({**_KEY, "token": "hg_3f2a9c1e_k8Jd0s..."})
    token: str


class Keys(BaseModel):
    model_config = _example({"keys": [_KEY]})
    keys: list[KeyShown]


class AuditEventShown(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str


class AuditEvents(BaseModel):
    model_config = _example(
        {"events": [{"seq": 1, "at": _AT, "actor": "cli", "action": "list.create",
                     "subject": "known", "details": '{"owner":"Test Hotline"}',
                     "prev_hash": "0" * 64, "hash": "b" * 64}]}
    )  # fmt: skip
    events: list[AuditEventShown]


class AuditHead(BaseModel):
    seq: int
    hash: str


class AuditCheck(BaseModel):
    """``ok`` with the count and head, or not ``ok`` with the first problem."""

    model_config = _example(
        {"ok": True, "events": 42, "head": {"seq": 42, "hash": "b" * 64}},
        {"ok": False, "problem": "event 7: its hash does not match its content"},
    )
    ok: bool
    events: int | SkipJsonSchema[None] = None
    head: AuditHead | SkipJsonSchema[None] = None
    problem: str | SkipJsonSchema[None] = None


class LoggedMatchShown(BaseModel):
    id: int
    at: str | None
    caller: str
    list: str
    entry: int
    signal: str
    distance: Number
    content_ref: str


class LoggedMatches(BaseModel):
    model_config = _example(
        {"matches": [{"id": 9, "at": _AT, "caller": "3f2a9c1e", "list": "known", "entry": 17,
                      "signal": "pdq", "distance": 4.0, "content_ref": "upload-123"}]}
    )  # fmt: skip
    matches: list[LoggedMatchShown]


METRICS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"description": "Prometheus' text format.",
          "content": {"text/plain": {"schema": {"type": "string"},
                                     "example": "hashguard_queries_total 12.0\n"}}}
}  # fmt: skip


# --- on-device checks ------------------------------------------------------------------------


class Evaluated(BaseModel):
    model_config = _example(
        {"evaluated": ["4kQ0...="], "proof": "Zm9v...=", "suite": "ristretto255-SHA512"}
    )
    evaluated: list[str]
    proof: str
    suite: str


# --- safeguards ------------------------------------------------------------------------------


_SERVICE = {"name": "photos", "legal_profile": "eu-interim", "e2ee": False,
            "webhook_url": "https://photos.example/hashguard", "content_url":
            "https://photos.example/content/{ref}"}  # fmt: skip


class ServiceShown(BaseModel):
    model_config = _example(_SERVICE)
    name: str
    legal_profile: str
    e2ee: bool
    webhook_url: str
    content_url: str


class NewServiceShown(ServiceShown):
    """The service with its webhook signing secret."""

    model_config = _example({**_SERVICE, "webhook_secret": "c2VjcmV0..."})
    webhook_secret: str


class Services(BaseModel):
    model_config = _example({"services": [_SERVICE]})
    services: list[ServiceShown]


_DETECTION = {
    "id": 5, "service": "photos", "content_ref": "upload-123", "account_ref": "user-9",
    "source": "match", "technology": "pdq", "list": "known", "entry": 17, "distance": 4.0,
    "exact": False, "labels": ["A1"], "evidence": [{**_MATCH, "distance": 4.0}],
    "state": "pending", "detected_at": _AT, "decided_at": None, "decision_reason": "",
    "quarantined": False, "quarantine_requested": False, "retain_until": _AT, "held_until": None,
}  # fmt: skip


class DetectionShown(BaseModel):
    """``quarantined`` once the service took the quarantine (its webhook call delivered);
    ``quarantine_requested`` as soon as it is asked."""

    model_config = _example(_DETECTION)
    id: int
    service: str
    content_ref: str
    account_ref: str
    source: Source
    technology: str
    list: str
    entry: int | None
    distance: Number | None
    exact: bool
    labels: builtins.list[str]
    evidence: builtins.list[dict[str, Any]]
    state: State
    detected_at: str
    decided_at: str | None
    decision_reason: str
    quarantined: bool
    quarantine_requested: bool
    retain_until: str
    held_until: str | None


class Detections(BaseModel):
    model_config = _example({"detections": [_DETECTION]})
    detections: list[DetectionShown]


class VoteShown(BaseModel):
    reviewer: str
    decision: Decision
    reason: str
    at: str


class ActionShown(BaseModel):
    id: int
    kind: ActionKind
    reason: str
    taken_at: str
    reversed_at: str | None


class Delivery(BaseModel):
    """A webhook call or a report: pending (with its attempts and last error), delivered or
    failed."""

    kind: str
    event: str
    what: str
    state: str
    attempts: int
    last_error: str
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None


class DetectionDetail(DetectionShown):
    model_config = _example(
        {**_DETECTION, "four_eyes": False,
         "votes": [{"reviewer": "key:7c1d (ana)", "decision": "confirm", "reason": "known item",
                    "at": _AT}],
         "actions": [{"id": 3, "kind": "quarantine", "reason": "pending review",
                      "taken_at": _AT, "reversed_at": None}],
         "deliveries": [{"kind": "webhook", "event": "action.taken", "what": "quarantine",
                         "state": "delivered", "attempts": 1, "last_error": "",
                         "created_at": _AT, "delivered_at": _AT, "next_attempt_at": None}]}
    )  # fmt: skip
    four_eyes: bool
    votes: list[VoteShown]
    actions: list[ActionShown]
    deliveries: list[Delivery]


class ActionTaken(BaseModel):
    """A quarantine; or a permanent action with the statement of reasons sent to the user."""

    model_config = _example(
        {"action": 3, "kind": "quarantine"},
        {"action": 4, "kind": "remove", "notice": 2, "notice_text": "Statement of reasons...",
         "complaint_until": _AT},
    )  # fmt: skip
    action: int
    kind: ActionKind
    notice: int | SkipJsonSchema[None] = None
    notice_text: str | SkipJsonSchema[None] = None
    complaint_until: str | SkipJsonSchema[None] = None


class ActionReversed(BaseModel):
    model_config = _example({"action": 3, "kind": "quarantine", "reversed_at": _AT})
    action: int
    kind: ActionKind
    reversed_at: str | None


class ReportShown(BaseModel):
    """The provider report; ``document`` is the report itself, as sent (or to send)."""

    model_config = _example(
        {"id": 1, "detection": 5, "recipient": "eu-centre", "state": "built",
         "external_id": "", "attempts": 0, "last_error": "", "document": "{...}"}
    )  # fmt: skip
    id: int
    detection: int
    recipient: str
    state: str
    external_id: str
    attempts: int
    last_error: str
    document: str


_COMPLAINT = {"id": 2, "detection": 5, "state": "received", "statement": "This is my own photo.",
              "lodged_at": _AT, "decided_at": None, "outcome_reason": ""}  # fmt: skip


class ComplaintShown(BaseModel):
    model_config = _example(_COMPLAINT)
    id: int
    detection: int
    state: Outcome
    statement: str
    lodged_at: str
    decided_at: str | None
    outcome_reason: str


class Complaints(BaseModel):
    model_config = _example({"complaints": [_COMPLAINT]})
    complaints: list[ComplaintShown]


class Purged(BaseModel):
    """The ids of the detections deleted, and how many matches and webhook calls were; ``held``:
    due, but kept by a legal hold or an open complaint."""

    model_config = _example({"detections": [3, 4], "matches": 10, "webhook_calls": 6, "held": 1})
    detections: list[int]
    matches: int
    webhook_calls: int
    held: int


class AssessmentShown(BaseModel):
    model_config = _example(
        {"id": 1, "service": "photos", "performed_at": _AT,
         "factors": {"user_base": "adults, 2M monthly"}, "mitigations": ["hash matching"],
         "remaining_risk": "low", "next_due_at": _AT}
    )  # fmt: skip
    id: int
    service: str
    performed_at: str
    factors: dict[str, Any]
    mitigations: list[str]
    remaining_risk: str
    next_due_at: str


class AnnualReport(BaseModel):
    """The annual transparency figures: Regulation (EU) 2021/1232 Art 3(1)(g)(vii) and the CSA
    Regulation's Art 83; counts under 10 are given as ``"<10"``."""

    model_config = _example(
        {"format": "hashguard/annual-transparency-report", "year": 2025,
         "provider": "Photos Inc.",
         "regulation_2021_1232": {"cases": {"child_sexual_abuse_material": 12,
                                            "solicitation": 0}},
         "csa_regulation_art_83": {"technologies": ["pdq"], "decisions_reversed": "<10"}}
    )  # fmt: skip
    format: str
    year: int
    provider: str
    regulation_2021_1232: dict[str, Any]
    csa_regulation_art_83: dict[str, Any]


# --- victims -------------------------------------------------------------------------------

_CASE = "HG-7K3QZ-M2B9X-4TRVD-HW8PE-Q6NC1A"


class CaseOpened(BaseModel):
    """A new case: its number and PIN, shown this once (only a slow hash of the PIN is kept;
    neither can be recovered)."""

    model_config = _example({"case": _CASE, "pin": "40417326"})
    case: str
    pin: str


class PartnerApplied(BaseModel):
    partner: str
    at: str


class WithdrawalShown(BaseModel):
    """A withdrawn hash: when, and which of the list's followers (those that had acknowledged
    the list before the withdrawal) have applied it since, first when."""

    at: str
    summary: str
    applied_by: int
    of: int
    partners: list[PartnerApplied]


class CaseHashShown(BaseModel):
    signal: str
    value: str
    quality: int | SkipJsonSchema[None] = None
    state: Literal["received", "active", "withdrawn"]
    withdrawal: WithdrawalShown | SkipJsonSchema[None] = None


class PartnerOutcomes(BaseModel):
    """A partner's matches of the case's hashes and their outcomes (counts only)."""

    partner: str
    matches: int
    pending_review: int
    blocked: int
    not_blocked: int


class CaseStatusShown(BaseModel):
    """A case's status: each hash's state, and per partner counts of matches and outcomes;
    never content or account data."""

    model_config = _example(
        {"case": _CASE, "under_18": False, "language": "en", "opened_at": _AT,
         "hashes": [{"signal": "pdq", "value": _PDQ, "quality": 100, "state": "active"},
                    {"signal": "md5", "value": "0cc175b9c0f1b6a831c399e269772661",
                     "state": "withdrawn",
                     "withdrawal": {"at": _AT, "summary": "withdrawn; applied by 1 of 2 partners",
                                    "applied_by": 1, "of": 2,
                                    "partners": [{"partner": "mirror-nl", "at": _AT}]}}],
         "partners": [{"partner": "photos-example", "matches": 2, "pending_review": 1,
                       "blocked": 1, "not_blocked": 0}]}
    )  # fmt: skip
    case: str
    under_18: bool
    language: str
    opened_at: str
    hashes: list[CaseHashShown]
    partners: list[PartnerOutcomes]


class QuarantinedRecord(BaseModel):
    index: int
    reason: str


class FeedbackRecorded(BaseModel):
    """How many outcomes were recorded; each record that was not, quarantined with why."""

    model_config = _example(
        {"recorded": 2, "quarantined": [{"index": 2, "reason": "records.2: outcome 'Gone': "
                                         "expected one of PendingReview, Blocked, NotBlocked"}]}
    )  # fmt: skip
    recorded: int
    quarantined: list[QuarantinedRecord]


class Acknowledged(BaseModel):
    """A follower's receipt as recorded: the furthest version it has acknowledged, since when."""

    model_config = _example({"list": "victims-ncii", "partner": "mirror-nl", "version": 12,
                             "at": _AT})  # fmt: skip
    list: str
    partner: str
    version: int
    at: str


# --- the document ----------------------------------------------------------------------------

_FRAMEWORK_422: Final = "#/components/schemas/HTTPValidationError"


def document(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document as the service answers: without FastAPI's own 422
    answer, a shape this service never sends (each route lists the errors it answers, in their
    real shape), and with the answers' examples whole (FastAPI drops every null from the
    document, which would leave an example without its null fields)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            described = generate()
            _without_framework_422(described)
            _with_examples(described)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _without_framework_422(described: dict[str, Any]) -> None:
    for operations in described.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            content = answers.get("422", {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") == _FRAMEWORK_422:
                del answers["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        described.get("components", {}).get("schemas", {}).pop(name, None)


def _with_examples(described: dict[str, Any]) -> None:
    schemas = described.get("components", {}).get("schemas", {})
    for model in _models(BaseModel):
        extra = model.model_config.get("json_schema_extra")
        if isinstance(extra, dict) and "examples" in extra and model.__name__ in schemas:
            schemas[model.__name__]["examples"] = extra["examples"]


def _models(base: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """The API's models (``api.schemas``, ``api.hma.models``): every subclass of ``base``."""
    for model in base.__subclasses__():
        if model.__module__.startswith("hashguard.api."):
            yield model
        yield from _models(model)
