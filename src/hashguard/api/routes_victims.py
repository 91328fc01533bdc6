"""Victims' cases (hashguard.victims): opened without a key by the person shown, with hashes
made on their device; followed and withdrawn with the case number and its PIN
(``X-Case-Pin``); partners that review elsewhere send their outcomes with a matcher key.

Wrong PINs are limited per case and per address: 429 with Retry-After once either is locked."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import allow, check_lists, partner, visible
from hashguard.api.errors import ApiError, too_many
from hashguard.api.fields import HASH_CHARS, MANY_HASHES, Word
from hashguard.api.matching import service_of
from hashguard.api.public_limits import client_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    CaseOpened,
    CaseStatusShown,
    FeedbackRecorded,
    JsonInt,
    refusals,
)
from hashguard.store.api_keys import ApiKey, Role
from hashguard.victims.cases import CaseStatus
from hashguard.victims.model import Locked, Outcome, VictimError

router = APIRouter(prefix="/v1/victims", tags=["victims"])
Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
Pin = Annotated[str, Header(alias="X-Case-Pin", max_length=64, description="The case's PIN.")]


class GivenHash(BaseModel):
    signal: str = Field(max_length=32, description="pdq, vpdq, md5, sha1 or sha256.")
    value: str = Field(max_length=HASH_CHARS)
    quality: JsonInt | None = Field(None, description="Required for pdq (50 or more is taken).")
    stability: JsonInt | None = Field(
        None,
        description="pdq: how far the hash moves under a 1 % resize (0-100, as `hashguard hash` "
        "measures it), when measured; the list entry keeps it, and one below pdq's minimum is "
        "refused (it would never be matched).",
    )


class NewCase(BaseModel):
    hashes: list[GivenHash] = Field(
        min_length=1, max_length=MANY_HASHES,
        description="As `hashguard hash` writes them, without path.",
    )  # fmt: skip
    under_18: StrictBool = Field(False, description="The person was under 18 in the images.")
    language: Literal["en", "nl"] = "en"


class WithdrawnHash(BaseModel):
    signal: str = Field(max_length=32)
    value: str = Field(max_length=HASH_CHARS)


class WithdrawalRequest(BaseModel):
    hashes: list[WithdrawnHash] | None = Field(
        None, max_length=MANY_HASHES, description="Default: every hash of the case."
    )


class FeedbackBatch(BaseModel):
    records: list[Any] = Field(
        max_length=1000,
        description="Each {signal, value, outcome (PendingReview, Blocked, NotBlocked), "
        "reference (your id for the item)}; a bad one is quarantined, the others recorded.",
    )


def _address(request: Request) -> str:
    return client_of(request) or ""


def status_json(status: CaseStatus) -> dict[str, Any]:
    hashes = []
    for held in status.hashes:
        shown: dict[str, Any] = {**held.hash.as_json(), "state": held.state.value}
        withdrawn = held.withdrawn
        if withdrawn is not None:
            shown["withdrawal"] = {
                "at": withdrawn.at.isoformat(), "summary": withdrawn.summary(),
                "applied_by": len(withdrawn.applied_by), "of": withdrawn.followers,
                "partners": [{"partner": p, "at": at.isoformat()}
                             for p, at in sorted(withdrawn.applied_by.items())],
            }  # fmt: skip
        hashes.append(shown)
    partners = [{"partner": partner, "matches": sum(counts.values()),
                 "pending_review": counts[Outcome.PENDING_REVIEW],
                 "blocked": counts[Outcome.BLOCKED], "not_blocked": counts[Outcome.NOT_BLOCKED]}
                for partner, counts in status.partners.items()]  # fmt: skip
    return {"case": status.case, "under_18": status.under_18, "language": status.language,
            "opened_at": status.opened_at.isoformat(), "hashes": hashes,
            "partners": partners}  # fmt: skip


@router.post(
    "/cases", status_code=201, response_model=CaseOpened, responses=refusals(400, *BODY, 429)
)
async def open_case(request: Request, body: NewCase) -> Any:
    """Open a case with hashes made on the person's device (no key: the person shown opens
    it). Each value must parse, and a PDQ hash needs quality 50 or more (400 names the hash
    and why). The case number and PIN are shown this once."""
    cases = service_of(request).victims
    given = [h.model_dump(exclude_none=True) for h in body.hashes]
    try:
        opened = await run_in_threadpool(
            cases.open, given, body.under_18, body.language, _address(request)
        )
    except Locked as error:
        return too_many(request, error)
    except VictimError as error:
        raise ApiError.of(error) from None
    return JSONResponse({"case": opened.case, "pin": opened.pin}, 201,
                        headers={"Cache-Control": "no-store"})  # fmt: skip


@router.get(
    "/cases/{case}", response_model=CaseStatusShown,
    responses=refusals(403, 404, 422, 429), response_model_exclude_unset=True,
)  # fmt: skip
async def case_status(request: Request, case: Word, pin: Pin) -> Any:
    """The case's status: each hash's state (received, active, withdrawn; a withdrawal with
    how many partners have applied it) and per partner counts of matches and outcomes. 403 for
    a wrong case number or PIN (which is not said), 429 once the case or address is locked."""
    cases = service_of(request).victims
    try:
        status = await run_in_threadpool(cases.status, case, pin, _address(request))
    except Locked as error:
        return too_many(request, error)
    except VictimError as error:
        raise ApiError.of(error) from None
    return JSONResponse(status_json(status), headers={"Cache-Control": "no-store"})


@router.post(
    "/cases/{case}/withdrawal", response_model=CaseStatusShown,
    responses=refusals(400, 403, 404, *BODY, 429), response_model_exclude_unset=True,
)  # fmt: skip
async def withdraw(
    request: Request, case: Word, pin: Pin, body: WithdrawalRequest | None = None
) -> Any:
    """Withdraw the case's hashes (those given, else all): this service stops matching them
    before it answers, followers within their polling interval; device releases and StopNCII
    exports leave them out (``hashStatus: Withdrawn``). Answers the case's status."""
    cases = service_of(request).victims
    given = None
    if body is not None and body.hashes is not None:
        given = [h.model_dump() for h in body.hashes]
    try:
        status = await run_in_threadpool(cases.withdraw, case, pin, given, _address(request))
    except Locked as error:
        return too_many(request, error)
    except VictimError as error:
        raise ApiError.of(error) from None
    return JSONResponse(status_json(status), headers={"Cache-Control": "no-store"})


@router.post("/feedback", response_model=FeedbackRecorded, responses=refusals(*KEYED, *BODY))
async def feedback(request: Request, key: Matcher, body: FeedbackBatch) -> dict[str, Any]:
    """Outcomes of a partner that reviews elsewhere, in StopNCII's words (PendingReview,
    Blocked, NotBlocked), for matches on the victim lists the key may use (403 for a key
    limited to other lists). A bad record is quarantined and named; it never stops the
    others."""
    cases = service_of(request).victims
    lists = visible(key, cases.feedback.lists)
    if not lists:
        check_lists(key, cases.feedback.lists)  # 403: the key is limited to other lists
    posted = await run_in_threadpool(cases.feedback.post, partner(key), body.records, lists)
    return {"recorded": posted.recorded,
            "quarantined": [{"index": i, "reason": r} for i, r in posted.quarantined]}  # fmt: skip
