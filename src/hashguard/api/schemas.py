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
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from hashguard.api.errors import HMA_PREFIXES
from hashguard.api.links import add_links
from hashguard.lists.model import Category, ChangeKind, EntryStatus
from hashguard.redress.complaints import Outcome
from hashguard.review.model import ActionKind, Decision, Source, State
from hashguard.store.api_keys import Role

# A JSON number as the route gives it: an int stays an int, a float a float (a plain ``float``
# field would turn 31 into 31.0).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("expected a JSON number")
    return value


# A request's number as its schema says: a JSON number, never a string or a boolean (which
# pydantic would otherwise take: "5", true). An integer may be written 5.0. Bounds of an
# optional one go before JSON_NUMBER (``Annotated[int, Field(ge=1), JSON_NUMBER] | None``), or
# pydantic leaves them out of the schema.
JSON_NUMBER: Final = BeforeValidator(_json_number)
JsonInt = Annotated[int, JSON_NUMBER]
JsonFloat = Annotated[float, JSON_NUMBER]

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
    429: ("rate_limited", "Too many requests or wrong guesses from this address, or with this "
          "case, link, token or key (Retry-After: the seconds to wait).",
          "at most 1000 evaluations an hour per device key; retry in 12 s"),
    503: ("unavailable", "The service cannot answer yet (the lists are loading) or now (a "
          "route that decodes media: the server's decode budget stayed full; Retry-After says "
          "when to try again).", "the lists are loading"),
}  # fmt: skip


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route of hashguard's own (``responses=``): each
    status with the ``ErrorBody`` model, when it is answered, and an example."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, when, message = _REFUSALS[status]
        example = {"error": {"status": status, "code": code, "message": message}}
        documented[status] = {"model": ErrorBody, "description": when,
                              "content": {"application/json": {"example": example}},
                              **retry_after(status)}  # fmt: skip
    return documented


def retry_after(status: int) -> dict[str, Any]:
    """The Retry-After header a refusal of ``status`` may carry (429, 503), as OpenAPI
    documents a response's headers; nothing for other statuses."""
    if status not in (429, 503):
        return {}
    header = {"description": "Seconds to wait before asking again.",
              "schema": {"type": "integer", "minimum": 1}}  # fmt: skip
    return {"headers": {"Retry-After": header}}


# What every keyed route can answer: no key (or a dead one), a key of another role.
KEYED: Final = (401, 403)
# A route with a JSON body: too large, or not the model.
BODY: Final = (413, 422)


# --- status ----------------------------------------------------------------------------------


class Readiness(BaseModel):
    """Ready (200) or not (503, with the reason). A replica also says how far its index is
    behind the database in all: changes not applied yet, and for how long (on its own clock,
    since it first saw one; 0 when caught up); not ready once that exceeds ``max_lag``, or once
    the index has not caught up (``index_age_seconds``, at least the lag) for the stale bound
    (at least ``max_lag``: with the defaults, the reason given first). Public: it names no list
    (an auditor's /metrics has the lag per list)."""

    model_config = _example(
        {"ready": True, "reason": "ready", "index_age_seconds": 0.2, "lag_changes": 0,
         "lag_seconds": 0.0},
        {"ready": False, "reason": "no refresh of the index for 31.2 s",
         "index_age_seconds": 31.2, "lag_changes": 40000, "lag_seconds": 31.0},
        {"ready": False, "reason": "the index is 40 change(s) behind the database, for "
         "2.3 s (max_lag: 2 s)", "index_age_seconds": 2.4, "lag_changes": 40,
         "lag_seconds": 2.3},
        {"ready": False, "reason": "the index is loading", "index_age_seconds": None,
         "lag_changes": None, "lag_seconds": None},
    )  # fmt: skip
    ready: bool
    reason: str
    index_age_seconds: Number | None
    lag_changes: int | None
    lag_seconds: Number | None


class Serving(BaseModel):
    """Whether a replica may answer at all (200), from an index perhaps behind the database, or
    not (503, with the reason): its lists loading or being loaded again, or its follower cut
    off from the database for longer than four times the stale bound. A load balancer sends
    requests to serving replicas when none is ready."""

    model_config = _example(
        {"serving": True, "reason": "serving"},
        {"serving": False, "reason": "no progress following the lists for 130.2 s"},
    )  # fmt: skip
    serving: bool
    reason: str


# --- hashing and matching --------------------------------------------------------------------


class Hash(BaseModel):
    value: str
    quality: int | SkipJsonSchema[None] = None
    stability: int | SkipJsonSchema[None] = Field(
        None,
        description="PDQ hashed here: how little the hash moves when the image is resized to "
        "99 % (0-100; 100 - the bits that change x 100 / 64). Below 50 the hash is noise "
        "(a fine regular pattern) and does not match by default.",
    )
    dihedral: dict[str, str] | SkipJsonSchema[None] = Field(
        None, description="The hashes of the 3 rotations and 4 flips, by name (original first)."
    )
    variants: dict[str, str] | SkipJsonSchema[None] = Field(
        None,
        description="The other query variants hashed, by name: the image with uniform borders "
        "trimmed (trim-lenient, trim-strict, trim-frame, trim-panel), a small image enlarged "
        "(upscaled), and their rotations and flips.",
    )


class HashAnswer(BaseModel):
    model_config = _example(
        {
            "kind": "image",
            "hashes": {
                "pdq": {"value": _PDQ, "quality": 100, "stability": 97},
                "md5": {"value": "0" * 32},
            },
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
    variant: str | SkipJsonSchema[None] = Field(
        None,
        description="The query variant that matched, when not the media as sent: a rotation "
        "or flip (rotate90, rotate180, rotate270, flipx, flipy, flipplus1, flipminus1), a crop "
        "inside flat borders (trim-lenient, trim-strict, trim-frame, trim-panel), a small image "
        "enlarged (upscaled), or a crop or enlargement turned (trim-lenient/rotate90, "
        "upscaled/flipx). The list's policy says which variants may match it.",
    )


_MATCH = {"list": "known", "entry": 17, "signal": "pdq", "distance": 4, "labels": ["A1"],
          "value": _PDQ}  # fmt: skip


class MediaMatchAnswer(BaseModel):
    model_config = _example(
        {"kind": "image", "hashes": {"pdq": {"value": _PDQ, "quality": 100, "stability": 97}},
         "matches": [_MATCH]},
        {"kind": "image", "hashes": {"pdq": {"value": _PDQ, "quality": 100}},
         "matches": [{**_MATCH, "distance": 12, "variant": "rotate90"}]},
        {"kind": None, "hashes": {}, "matches": []},
    )  # fmt: skip
    kind: str | None
    hashes: dict[str, Hash]
    failed: str | None = None  # as in HashAnswer: matched by the hashes of its bytes alone
    matches: list[MatchFound]


class ListedMatch(BaseModel):
    """What a hoster key learns of a match: the list the hash is on, nothing more."""

    list: str


class HashResult(BaseModel):
    matches: builtins.list[MatchFound | ListedMatch]


class HashMatchAnswer(BaseModel):
    """One result per hash asked, in order (to a hoster key, each match names its list only)."""

    model_config = _example(
        {"matched": 1, "results": [{"matches": [_MATCH]}, {"matches": []}]},
        {"matched": 1, "results": [{"matches": [{"list": "known"}]}]},
    )
    matched: int
    results: list[HashResult]


# --- lists -----------------------------------------------------------------------------------


class PolicyShown(BaseModel):
    thresholds: dict[str, Number]
    negative: bool
    two_sources: bool
    enabled_ratio: Number
    four_eyes: bool
    variants: list[str] = Field(
        description="The query variants that may match the list (dihedral, trim, scale; [] none)."
    )


_POLICY = {"thresholds": {"pdq": 31.0}, "negative": False, "two_sources": False,
           "enabled_ratio": 1.0, "four_eyes": False,
           "variants": ["dihedral", "trim", "scale"]}  # fmt: skip
_LIST = {"name": "known", "owner": "Test Hotline", "category": "known-csam",
         "jurisdictions": ["NL"], "legal_basis": "", "policy": _POLICY, "version": 3}  # fmt: skip


class HashListShown(BaseModel):
    model_config = _example({**_LIST, "unstable": 2})
    name: str
    owner: str
    category: Category
    jurisdictions: list[str]
    legal_basis: str
    policy: PolicyShown
    version: int
    unstable: int | None = Field(
        None,
        description="Active entries not matched because their hash was measured as unstable "
        "(it moves under a 1 % resize: `hashguard lists export NAME --unstable` lists them); "
        "in the answer of GET /v1/lists/{name}.",
    )


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
    stability: int | SkipJsonSchema[None] = Field(
        None,
        description="An add of a value hashed from media: its stability (0-100; how far the "
        "hash moves under a 1 % resize), when measured.",
    )


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
         "version": 2, "stability": 87}
    )  # fmt: skip
    entry: int
    signal: str
    value: str
    status: EntryStatus
    labels: list[str]
    provenance: ProvenanceShown
    version: int
    stability: int | None = Field(
        None,
        description="The stability measured when the value was hashed from media (0-100), "
        "else null; below the signal's minimum the entry is not matched.",
    )


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
                        "revoked_at": None, "hoster": None}  # fmt: skip


class KeyShown(BaseModel):
    model_config = _example(_KEY)
    id: str
    role: Role
    lists: list[str]
    name: str
    created_at: str
    revoked_at: str | None
    hoster: str | None


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


# --- the hotline ------------------------------------------------------------------------------

_REFERENCE = "HR-7K3QZM2B9X4T"
_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_LABELS = {"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}
_LEGALITY = {"DE": "illegal", "NL": "illegal", "US": "illegal"}
_ITEM: dict[str, Any] = {
    "id": 12, "case": 4, "case_url": "https://site.example/gallery",
    "url": "https://img.site.example/1.jpg", "kind": "image", "state": "queued",
    "hashes": {"pdq": _PDQ, "sha256": _SHA256}, "quality": 100, "labels": {}, "legality": {},
    "triage": {}, "assessment": None, "created_at": _AT, "decided_at": None,
    "first_analyst": None, "derived": {"crop-10": "f" * 16 + "0" * 48}, "stability": None,
}  # fmt: skip
_AUTO_ITEM: dict[str, Any] = {
    **_ITEM, "id": 13, "state": "auto", "labels": _LABELS, "legality": _LEGALITY,
    "triage": {"list": "hotline-illegal", "entry": 7, "signal": "pdq", "distance": 0,
               "assessment": 3},
    "assessment": 3, "decided_at": _AT,
}  # fmt: skip
_TRACE: dict[str, Any] = {
    "url": "https://site.example/gallery", "host": "site.example", "at": _AT,
    "dns": {"name": "site.example", "cnames": ["site.example.cdn.cloudflare.net"],
            "addresses": ["203.0.113.7"], "error": None},
    "addresses": [{"address": "203.0.113.7", "network": "203.0.113.0/24", "asn": 64500,
                   "as_name": "EXAMPLE-HOSTING", "country": "NL", "anycast": False,
                   "cdn": False, "hoster": "Example Hosting"}],
    "hoster": {"name": "Example Hosting", "country": "NL", "asns": [64500], "networks": [],
               "abuse_email": "abuse@hosting.example", "abuse_api": None, "cdn": False},
    "country": "NL", "cdn": True, "databases": ["ip2asn-v4.tsv 2026-03-01"],
    "unresolved": [],
}  # fmt: skip


class HotlineReceipt(BaseModel):
    """A public report taken in: its reference and the status token (shown this once: only its
    digest is kept) and each URL in its normal form. Whether a URL was reported before is
    never said."""

    model_config = _example(
        {
            "reference": _REFERENCE,
            "token": "7KQ2M-9XH4D-ZP0RA-3C8VT-MWJ6E",
            "urls": ["https://site.example/a"],
        }
    )
    reference: str
    token: str
    urls: list[str]


class HotlineStatus(BaseModel):
    """What a reporter may know of a report: one of three words, nothing more."""

    model_config = _example({"status": "received"}, {"status": "action taken"})
    status: Literal["received", "assessed", "action taken"]


class HotlineReferralReceived(BaseModel):
    """A partner's referral taken in as a report: its reference (the same for the same referral
    again), how many items it referred, how many wait for an analyst here and how many were
    triaged automatically (assessed here before, or on a known list) without anyone viewing
    them; counted as the items stand now."""

    model_config = _example({"reference": _REFERENCE, "items": 2, "queued": 1, "triaged": 1})
    reference: str
    items: int
    queued: int
    triaged: int


class HotlineReportListed(BaseModel):
    """A report as analysts see it: of its contact only whether there is one."""

    id: int
    reference: str
    source: str
    created_at: str
    language: str
    seen_where: str
    description: str
    has_contact: bool
    cases: list[int]


class HotlineReports(BaseModel):
    """Reports, newest first."""

    model_config = _example(
        {"reports": [{"id": 8, "reference": _REFERENCE, "source": "public", "created_at": _AT,
                      "language": "nl", "seen_where": "a link in a chat group",
                      "description": "", "has_contact": False, "cases": [4]}]}
    )  # fmt: skip
    reports: list[HotlineReportListed]


class HotlineItemShown(BaseModel):
    """A medium of a case, by its hashes (never its content): ``triage`` says what matched
    when it was decided automatically; ``first_analyst`` who assessed it first when it waits
    for a second (four eyes). An item waiting for an analyst shows no labels, nor do its
    assessments: the second analyst chooses without seeing the first one's."""

    model_config = _example(_ITEM, _AUTO_ITEM)
    id: int
    case: int
    case_url: str
    url: str
    kind: str
    state: Literal["queued", "pending", "assessed", "auto", "failed"]
    hashes: dict[str, str]
    quality: int | None
    labels: dict[str, Any]
    legality: dict[str, Any]
    triage: dict[str, Any]
    assessment: int | None
    created_at: str
    decided_at: str | None
    first_analyst: str | None
    # Its derived PDQ hashes by name (crops; hotline_derived_hashes): listed with its hashes
    # when it is assessed, never sent to hosters or partners.
    derived: dict[str, str] = {}
    stability: int | None = None  # of its PDQ hash (0-100), where it was measured


class HotlineQueue(BaseModel):
    """Items waiting for an analyst (queued, or pending a second one), oldest first."""

    model_config = _example({"items": [_ITEM]})
    items: list[HotlineItemShown]


class HotlineAssessmentRecord(BaseModel):
    id: int
    state: Literal["pending", "final", "disagreed"]
    labels: dict[str, Any]
    legality: dict[str, Any]
    first_by: str
    first_at: str
    second_by: str | None
    second_at: str | None
    list: str | None


class HotlineItemDetail(HotlineItemShown):
    """An item with every assessment of it."""

    model_config = _example(
        {**_AUTO_ITEM, "state": "assessed", "triage": {},
         "assessments": [{"id": 3, "state": "final", "labels": _LABELS, "legality": _LEGALITY,
                          "first_by": "ana", "first_at": _AT, "second_by": None,
                          "second_at": None, "list": "hotline-illegal"}]}
    )  # fmt: skip
    assessments: list[HotlineAssessmentRecord]


class HotlineAssessment(BaseModel):
    """An assessment after an analyst's labels: ``pending`` (four eyes: a second analyst must
    agree), ``final`` (the item's hashes listed on ``list``; ``triaged``: queued items decided
    by it at once) or ``disagreed`` (back to the queue). The legality per country is derived
    from the labels."""

    model_config = _example(
        {"id": 3, "item": 12, "state": "final", "labels": _LABELS, "legality": _LEGALITY,
         "analysts": ["ana"], "list": "hotline-illegal", "triaged": [15]},
        {"id": 4, "item": 14, "state": "pending", "labels": _LABELS, "legality": _LEGALITY,
         "analysts": ["ana"], "list": None, "triaged": []},
    )  # fmt: skip
    id: int
    item: int
    state: Literal["pending", "final", "disagreed"]
    labels: dict[str, str]
    legality: dict[str, str]
    analysts: list[str]
    list: str | None
    triaged: builtins.list[int]


class HotlineCaseReport(BaseModel):
    reference: str
    source: str
    seen_where: str
    created_at: str


class HotlineFetch(BaseModel):
    """One fetch by the crawler (or an item referred by a partner): never its bytes."""

    id: int
    url: str
    final_url: str
    at: str
    status: int | None
    content_type: str
    size: int
    kind: str
    outcome: str
    detail: str
    hashes: dict[str, str]
    quality: int | None


class HotlineCaseTrace(BaseModel):
    """The latest hosting trace: its summary and the trace itself (a partner's as it sent it,
    for a referred case)."""

    at: str
    country: str | None
    hoster: str | None
    cdn: bool
    trace: dict[str, Any]


class HotlineRoute(BaseModel):
    at: str
    kind: str
    target: str
    actions: list[str]
    reason: str


class HotlineNotice(BaseModel):
    id: int
    hoster: str
    abuse_email: str | None
    abuse_api: str | None
    cdn: bool
    urls: list[str]
    state: str
    created_at: str


class HotlineOutboxMessage(BaseModel):
    """A referral, police or international report: delivered, or waiting (its attempts and
    last error)."""

    id: int
    kind: str
    target: str
    created_at: str
    attempts: int
    next_attempt_at: str
    delivered_at: str | None
    last_error: str


class HotlineCase(BaseModel):
    """A case (one reported URL) with all that is known of it; never content."""

    model_config = _example(
        {"id": 4, "url": "https://site.example/gallery", "host": "site.example",
         "state": "routed", "created_at": _AT, "updated_at": _AT, "attempts": 1,
         "last_error": "",
         "reports": [{"reference": _REFERENCE, "source": "public",
                      "seen_where": "a link in a chat group", "created_at": _AT}],
         "fetches": [{"id": 9, "url": "https://img.site.example/1.jpg",
                      "final_url": "https://img.site.example/1.jpg", "at": _AT, "status": 200,
                      "content_type": "image/jpeg", "size": 48213, "kind": "image",
                      "outcome": "hashed", "detail": "", "hashes": {"pdq": _PDQ},
                      "quality": 100}],
         "items": [_AUTO_ITEM],
         "trace": {"at": _AT, "country": "NL", "hoster": "Example Hosting", "cdn": True,
                   "trace": _TRACE},
         "route": {"at": _AT, "kind": "domestic", "target": "NL", "actions": ["notice", "police"],
                   "reason": "hosted in NL, this hotline's country"},
         "notices": [{"id": 2, "hoster": "Example Hosting",
                      "abuse_email": "abuse@hosting.example", "abuse_api": None, "cdn": True,
                      "urls": ["https://img.site.example/1.jpg"], "state": "queued",
                      "created_at": _AT}],
         "outbox": [{"id": 5, "kind": "police", "target": "police", "created_at": _AT,
                     "attempts": 1, "next_attempt_at": _AT, "delivered_at": _AT,
                     "last_error": ""}]}
    )  # fmt: skip
    id: int
    url: str
    host: str
    state: Literal["new", "crawling", "triaged", "assessed", "routed", "unreachable"]
    created_at: str
    updated_at: str
    attempts: int
    last_error: str
    reports: list[HotlineCaseReport]
    fetches: list[HotlineFetch]
    items: list[HotlineItemShown]
    trace: HotlineCaseTrace | None
    route: HotlineRoute | None
    notices: list[HotlineNotice]
    outbox: list[HotlineOutboxMessage]


class HotlineLabelGroup(BaseModel):
    name: str
    values: list[str]
    required: bool
    description: str


class HotlineVocabulary(BaseModel):
    """The labels an analyst gives (one value per group; the required groups always), and the
    countries whose legality is derived from them."""

    model_config = _example(
        {"groups": [{"name": "iccam", "values": ["baseline", "nationally-illegal",
                                                 "not-illegal"],
                     "required": True, "description": "INHOPE/ICCAM's classification"},
                    {"name": "iwf", "values": ["A", "B", "C", "none"], "required": False,
                     "description": "the UK's categories"}],
         "countries": ["DE", "GB", "NL", "US"]}
    )  # fmt: skip
    groups: list[HotlineLabelGroup]
    countries: list[str]


class HotlineFigures(BaseModel):
    """The dashboard's figures: items triaged automatically (``auto``: nobody viewed them),
    assessed by analysts, waiting (``queued``, ``pending`` a second analyst), failed; and
    ``auto_share``, the share of triaged items decided without anyone viewing them (null
    before any)."""

    model_config = _example(
        {"reports": 120, "cases": 96, "items": 410, "auto": 252, "assessed": 140, "queued": 9,
         "pending": 1, "failed": 8, "auto_share": 0.62,
         "cases_by_state": {"routed": 90, "triaged": 6},
         "routes_by_kind": {"domestic": 51, "partner": 30, "international": 9}}
    )  # fmt: skip
    reports: int
    cases: int
    items: int
    auto: int
    assessed: int
    queued: int
    pending: int
    failed: int
    auto_share: Number | None
    cases_by_state: dict[str, int]
    routes_by_kind: dict[str, int]


class HotlineDns(BaseModel):
    name: str
    cnames: list[str]
    addresses: list[str]
    error: str | None


class HotlineAddress(BaseModel):
    address: str
    network: str | None
    asn: int | None
    as_name: str | None
    country: str | None
    anycast: bool
    cdn: bool
    hoster: str | None


class HotlineHoster(BaseModel):
    name: str
    country: str | None
    asns: list[int]
    networks: list[str]
    abuse_email: str | None
    abuse_api: str | None
    cdn: bool
    upstream: str | None = None


class HotlineTrace(BaseModel):
    """Where a URL is hosted, looked up now: DNS, each address's network, AS and country (the
    IP databases named with the dates of their data), the hoster from the registry, whether a
    CDN is in front, and a sentence for each thing that could not be found."""

    model_config = _example(_TRACE)
    url: str
    host: str
    at: str
    dns: HotlineDns
    addresses: list[HotlineAddress]
    hoster: HotlineHoster | None
    country: str | None
    cdn: bool
    databases: list[str]
    unresolved: list[str]


# --- notice and takedown ---------------------------------------------------------------------

_NOTICE: dict[str, Any] = {
    "id": 12, "case_id": 40, "kind": "notice", "parent_id": None, "previous_id": None,
    "hoster": "Example Hosting B.V.", "country": "NL",
    "urls": ["https://img.site.example/1.jpg"],
    "items": [{"url": "https://img.site.example/1.jpg", "kind": "image",
               "hashes": {"pdq": _PDQ, "md5": "d2c4fd9d8a23e0b5e7a0d4f0e4a1b1c2"},
               "labels": {"iccam": "baseline"}}],
    "state": "open", "report_id": "7d0f6c1e-2b9a-4c55-8e0a-3f1d2c4b5a69", "reported_at": _AT,
    "created_at": _AT, "sent_at": _AT, "deadline_at": "2026-03-15T09:26:53+00:00",
    "acknowledged_at": None, "claimed_at": None, "disputed_at": None, "dispute_reason": "",
    "verified_at": None, "withdrawn_at": None, "outcome": "", "outcome_reason": "",
    "outcome_at": None, "renotices": 0, "escalations": 0, "legal_basis": "", "reference": "",
    "overdue": False, "last_error": "",
}  # fmt: skip


class TakedownNotice(BaseModel):
    """A notice (to a hoster, a CDN, or a removal order) as it stands: its URLs and the items'
    hashes and labels (never content), its state and every time that counts; ``overdue``: open
    and past its deadline; ``last_error``: what keeps it from going on."""

    model_config = _example(_NOTICE)
    id: int
    case_id: int | None
    kind: Literal["notice", "cdn", "order"]
    parent_id: int | None
    previous_id: int | None
    hoster: str
    country: str | None
    urls: list[str]
    items: list[dict[str, Any]]
    state: Literal["queued", "open", "removed", "forwarded", "withdrawn"]
    report_id: str
    reported_at: str
    created_at: str
    sent_at: str | None
    deadline_at: str | None
    acknowledged_at: str | None
    claimed_at: str | None
    disputed_at: str | None
    dispute_reason: str
    verified_at: str | None
    withdrawn_at: str | None
    outcome: str
    outcome_reason: str
    outcome_at: str | None
    renotices: int
    escalations: int
    legal_basis: str
    reference: str
    overdue: bool
    last_error: str


class TakedownNotices(BaseModel):
    """Notices, newest first."""

    model_config = _example({"notices": [_NOTICE]})
    notices: list[TakedownNotice]


class TakedownEvent(BaseModel):
    id: int
    at: str
    kind: str
    actor: str
    detail: dict[str, Any]


class TakedownCheck(BaseModel):
    """A re-fetch of one URL: what it served, by hash (the evidence of removal, or not)."""

    id: int
    url: str
    at: str
    purpose: str
    outcome: Literal["gone", "changed", "present", "inconclusive"]
    status: int | None
    detail: str
    hashes: list[dict[str, Any]]


class TakedownDelivery(BaseModel):
    id: int
    purpose: str
    step: str
    channel: Literal["smtp", "api"]
    target: str
    created_at: str
    attempts: int
    next_attempt_at: str
    delivered_at: str | None
    last_error: str


class TakedownNoticeDetail(BaseModel):
    """A notice with its signed document (XARF v4 as sent; null until composed), its timeline,
    re-checks and deliveries, each oldest first."""

    model_config = _example(
        {"notice": _NOTICE, "document": None,
         "events": [{"id": 3, "at": _AT, "kind": "sent", "actor": "hashguard",
                     "detail": {"channel": "smtp"}}],
         "checks": [{"id": 4, "url": "https://img.site.example/1.jpg", "at": _AT,
                     "purpose": "claimed", "outcome": "present", "status": 200, "detail": "",
                     "hashes": [{"pdq": _PDQ}]}],
         "deliveries": [{"id": 5, "purpose": "notice", "step": "", "channel": "smtp",
                         "target": "abuse@hosting.example", "created_at": _AT, "attempts": 1,
                         "next_attempt_at": _AT, "delivered_at": _AT, "last_error": ""}]}
    )  # fmt: skip
    notice: TakedownNotice
    document: dict[str, Any] | None
    events: list[TakedownEvent]
    checks: list[TakedownCheck]
    deliveries: list[TakedownDelivery]


# --- the takedown monitor --------------------------------------------------------------------

_MONITOR_ROW: Final = {
    "group": "example-hosting", "notices": 212, "removed": 201, "median_hours": 9.5,
    "p90_hours": 31.2, "p99_hours": 160.4, "within_24h": 0.81, "open_now": 4, "overdue_now": 1,
    "renotices": 38, "escalations": 3, "reappeared": 6, "reappearance_rate": 0.03, "disputes": 2,
}  # fmt: skip


class MonitorRow(BaseModel):
    """One group's figures (a hoster, a country, or "all"): notices (CDN notices not counted),
    removed (verified by re-fetch), the median / p90 / p99 hours from report to verified
    removal (linear interpolation; null without removals), the share removed within 24 h of
    the notices removed or whose 24 h have passed, open and overdue now, re-notices and
    escalations sent, removed notices whose content came back and their share, disputes."""

    model_config = _example(_MONITOR_ROW)
    group: str
    notices: int
    removed: int
    median_hours: Number | None
    p90_hours: Number | None
    p99_hours: Number | None
    within_24h: Number | None
    open_now: int
    overdue_now: int
    renotices: int
    escalations: int
    reappeared: int
    reappearance_rate: Number | None
    disputes: int


class TakedownFigures(BaseModel):
    """Time from report to verified removal (INHOPE's definition) and what happened on the
    way, per group (a hoster, a country, or all)."""

    model_config = _example(
        {"figures": [{"group": "Example Hosting B.V.", "notices": 40, "removed": 38,
                      "median_hours": 5.5, "p90_hours": 22.0, "p99_hours": 30.1,
                      "within_24h": 0.92, "open_now": 2, "overdue_now": 1, "renotices": 3,
                      "escalations": 0, "reappeared": 1, "reappearance_rate": 0.03,
                      "disputes": 0}]}
    )  # fmt: skip
    figures: list[MonitorRow]


class TakedownKey(BaseModel):
    """The hotline's public key: notices, evidence and status messages carry their signature
    by it (``hashguard_signature``)."""

    model_config = _example({"algorithm": "ed25519", "public_key": "ab" * 32})
    algorithm: Literal["ed25519"]
    public_key: str


class TakedownExport(BaseModel):
    """XARF v4 reports: the notices as signed and sent, and outcome reports of removals."""

    model_config = _example({"reports": [{"xarf_version": "4.2.0", "category": "content",
                                          "type": "csam", "...": "..."}]})  # fmt: skip
    reports: list[dict[str, Any]]


class TakedownImported(BaseModel):
    """Outcomes kept from imported XARF reports, and how many of them a case was found for."""

    model_config = _example({"imported": 12, "linked": 9})
    imported: int
    linked: int


class TakedownStatusReceived(BaseModel):
    """A partner's takedown status of a referred case, kept."""

    model_config = _example(
        {"case": 40, "status": "removed", "urls": ["https://img.site.example/1.jpg"]}
    )
    case: int
    status: str
    urls: list[str]


class MonitorPeriod(BaseModel):
    since: str | None
    until: str | None


class TakedownMonitor(BaseModel):
    """The monitor's figures, unsuppressed, per ``by`` group for the period (on reported_at;
    ``since`` included, ``until`` not), with the definitions they follow."""

    model_config = _example({
        "by": "hoster", "period": {"since": "2026-01-01T00:00:00+00:00", "until": None},
        "generated_at": _AT, "definition": "Time to removal is INHOPE's ...",
        "rows": [_MONITOR_ROW],
    })  # fmt: skip
    by: Literal["hoster", "country", "all"]
    period: MonitorPeriod
    generated_at: str
    definition: str
    rows: list[MonitorRow]


class DocumentSignature(BaseModel):
    algorithm: Literal["ed25519"]
    public_key: str
    signature: str


class TakedownEvidence(BaseModel):
    """A hoster's evidence bundle for regulators: every notice to it (CDN notices too) with its
    times, its signed notice document, its re-checks (outcome, HTTP status, hashes, time), its
    deliveries and its events, and the hoster's figures; signed with the hotline's takedown key
    (Ed25519 over the canonical JSON without ``hashguard_signature``: docs/takedown.md)."""

    model_config = _example({
        "kind": "hashguard-takedown-evidence", "version": 1, "hoster": "example-hosting",
        "generated_at": _AT, "definition": "Time to removal is INHOPE's ...",
        "figures": _MONITOR_ROW,
        "notices": [{"id": 7, "kind": "notice", "reported_at": _AT, "verified_at": _AT,
                     "hours_to_removal": 0.0, "checks": [], "deliveries": [], "events": []}],
        "hashguard_signature": {"algorithm": "ed25519", "public_key": "ab" * 32,
                                "signature": "cd" * 64},
    })  # fmt: skip
    kind: Literal["hashguard-takedown-evidence"]
    version: int
    hoster: str
    generated_at: str
    definition: str
    figures: MonitorRow | None
    notices: list[dict[str, Any]]
    hashguard_signature: DocumentSignature


# --- exchanges -------------------------------------------------------------------------------

_EXCHANGE = {"name": "NCMEC_NGO", "api": "ncmec", "list": "NCMEC_NGO",
             "config": {"base_url": "https://hashsharing.ncmec.org/npo/v2", "only_members": []},
             "enabled": True, "interval_seconds": 900, "created_at": _AT,
             "has_credentials": True}  # fmt: skip
_FETCH_STATUS = {"checkpoint_ts": 1773480413, "running_fetch_start_ts": None,
                 "last_fetch_complete_ts": 1773480413, "last_fetch_succeeded": True,
                 "up_to_date": True, "fetched_items": 1200, "last_error": "",
                 "last_counts": {"added": 12, "removed": 1, "records": 13, "pages": 1,
                                 "quarantined": 1},
                 "failures": 0, "next_fetch_at": _AT, "quarantined": 1}  # fmt: skip


class ExchangeShown(BaseModel):
    """A configured exchange: which plug-in reads it into which list, its settings (never its
    credentials: only whether any apply, its own or its plug-in's), on or off, and how often."""

    model_config = _example(_EXCHANGE)
    name: str
    api: str
    list: str
    config: dict[str, Any]
    enabled: bool
    interval_seconds: int
    created_at: str
    has_credentials: bool


class ExchangesShown(BaseModel):
    model_config = _example({"exchanges": [_EXCHANGE]})
    exchanges: builtins.list[ExchangeShown]


class ExchangeRemoved(BaseModel):
    model_config = _example({"removed": "NCMEC_NGO", "list": "NCMEC_NGO",
                             "message": "exchange NCMEC_NGO removed; its list NCMEC_NGO stays "
                             "with what it fetched (remove the list itself to stop matching "
                             "it)"})  # fmt: skip
    removed: str
    list: str
    message: str


class ExchangeStatus(BaseModel):
    """Where an exchange's fetching stands: HMA's fetch status (Unix times in seconds) and
    hashguard's (the last error and counts, failures in a row, the next fetch, how many records
    are quarantined)."""

    model_config = _example({"name": "NCMEC_NGO", **_FETCH_STATUS})
    name: str
    checkpoint_ts: int | None
    running_fetch_start_ts: int | None
    last_fetch_complete_ts: int | None
    last_fetch_succeeded: bool | None
    up_to_date: bool
    fetched_items: int
    last_error: str
    last_counts: dict[str, Any]
    failures: int
    next_fetch_at: str
    quarantined: int


class QuarantinedShown(BaseModel):
    id: int
    at: str
    position: str
    reason: str
    excerpt: str


class Quarantine(BaseModel):
    """An exchange's quarantined records, newest first; ``next_before`` asks for older ones."""

    model_config = _example({"name": "NCMEC_NGO", "records": [
        {"id": 7, "at": _AT, "position": "page 3, record 17",
         "reason": "md5 value 'xyz': expected 32 hex digits",
         "excerpt": "<image><md5>xyz</md5></image>"}], "next_before": None})  # fmt: skip
    name: str
    records: builtins.list[QuarantinedShown]
    next_before: int | None


class FetchDone(BaseModel):
    """One fetch, run while the request waited: what it applied and quarantined, or why it
    failed (``error``; the status says when it is tried again)."""

    model_config = _example({"name": "NCMEC_NGO", "succeeded": True, "records": 13,
                             "quarantined": 1, "counts": _FETCH_STATUS["last_counts"],
                             "error": "", "up_to_date": True})  # fmt: skip
    name: str
    succeeded: bool
    records: int
    quarantined: int
    counts: dict[str, Any]
    error: str
    up_to_date: bool


class FetchQueued(BaseModel):
    """The scheduler was woken to fetch the exchange now (``queued``), or a fetch of it is
    running already; its status says when it is done."""

    model_config = _example({"name": "NCMEC_NGO", "queued": True,
                             "status": "/v1/exchanges/NCMEC_NGO/status"})  # fmt: skip
    name: str
    queued: bool
    status: str


class CredentialsState(BaseModel):
    """Whether credentials are stored for an exchange or a plug-in (never what they are), and
    the origin they are bound to."""

    model_config = _example({"scope": "exchange:NCMEC_NGO", "has_credentials": True,
                             "origin": "https://hashsharing.ncmec.org:443"})  # fmt: skip
    scope: str
    has_credentials: bool
    # the scheme, host and port they are bound to: sent there and nowhere else (null: none set)
    origin: str | None = None


class FieldShown(BaseModel):
    name: str
    type: Literal["string", "number", "boolean", "list"]
    required: bool
    default: Any
    help: str
    choices: builtins.list[str] | None


class SchemaShown(BaseModel):
    fields: builtins.list[FieldShown]


class ExchangeApiShown(BaseModel):
    """An installed exchange plug-in: the settings and credentials an exchange of it takes."""

    model_config = _example({"name": "hashguard", "title": "Another hashguard service's list",
                             "category": "known-csam", "default_base_url": "",
                             "supports_feedback": False,
                             "config_schema": {"fields": [{"name": "list", "type": "string",
                                                           "required": True, "default": None,
                                                           "help": "the list's name at the "
                                                           "origin", "choices": None}]},
                             "credentials_schema": {"fields": [
                                 {"name": "api_key", "type": "string", "required": True,
                                  "default": None, "help": "an API key of the origin",
                                  "choices": None}]},
                             "has_credentials": False, "credentials_origin": None})  # fmt: skip
    name: str
    title: str
    category: Category
    default_base_url: str
    supports_feedback: bool
    config_schema: SchemaShown
    credentials_schema: SchemaShown | None
    has_credentials: bool
    # where the shared credentials are bound (scheme, host, port): they serve only exchanges
    # whose base URL is there (null: none set)
    credentials_origin: str | None


class ExchangeApisShown(BaseModel):
    model_config = _example({"apis": []})
    apis: builtins.list[ExchangeApiShown]


# --- the document ----------------------------------------------------------------------------

_FRAMEWORK_422: Final = "#/components/schemas/HTTPValidationError"


def document(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document as the service answers: without FastAPI's own 422
    answer, a shape this service never sends (each route lists the errors it answers, in their
    real shape, and ``_validation_refusals`` adds those of the framework's own checks), and
    with the answers' examples whole (FastAPI drops every null from the document, which would
    leave an example without its null fields), and with the links of ``api.links``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            described = generate()
            _validation_refusals(described)
            _with_examples(described)
            add_links(described)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _validation_refusals(described: dict[str, Any]) -> None:
    """FastAPI gives its own 422 to exactly the operations whose parameters or body it checks:
    in its place, the refusal they really answer. An operation with a body also answers 400 to
    one that cannot be read at all (not UTF-8, not a form). HMA's routes answer both with 400,
    as HMA does, and document it themselves."""
    for path, operations in described.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.get("responses", {})
            content = answers.get("422", {}).get("content", {}).get("application/json", {})
            checked = content.get("schema", {}).get("$ref") == _FRAMEWORK_422
            if checked:
                del answers["422"]
            if path.startswith(HMA_PREFIXES):
                continue
            statuses = ([422] if checked else []) + ([400] if "requestBody" in operation else [])
            for status in statuses:
                answers.setdefault(str(status), _documented(status))
    for name in ("HTTPValidationError", "ValidationError"):
        described.get("components", {}).get("schemas", {}).pop(name, None)


def _documented(status: int) -> dict[str, Any]:
    """A refusal as the document holds it (``refusals`` gives it as FastAPI takes it)."""
    answer = dict(refusals(status)[status])
    del answer["model"]
    example = answer["content"]["application/json"]
    schema = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    answer["content"] = {"application/json": {"schema": schema, **example}}
    return answer


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
