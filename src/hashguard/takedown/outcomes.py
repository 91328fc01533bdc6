"""Takedown outcomes other organisations tell this hotline, kept in ``takedown_outcomes``: a
partner hotline's status of a case this hotline referred to it (``POST
/v1/hotline/referrals/{referral}/status``), and XARF reports imported from another abuse desk.

A status message is what ``takedown.scheduler.partner_status`` sends when a notice of a
referred case is verified removed (docs/takedown.md, "Status between hotlines")::

    {"referral": "<the referral's 32 hex digits>", "url": "https://site.example/page",
     "status": "removed", "verified_at": "2026-03-14T09:26:53+00:00",
     "evidence": {"report_id": "...", "urls": [...], "checks": [...], "evidence": [...]},
     "hashguard_signature": {...}}

``status`` one of STATUSES; ``url`` the case's URL and ``evidence`` (an object of at most 64 KiB:
the notice's URLs and the checks that verified the removal) optional; the signature
(takedown/signing.py), when there, must match the document, and its key is kept with the
outcome.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, insert, select

from hashguard.errors import Invalid, NotFound
from hashguard.hotline import urls as reported_urls
from hashguard.hotline.model import OutboxKind
from hashguard.net.fetch import Network
from hashguard.store import audit
from hashguard.store.tables import HotlineCaseRow, HotlineOutboxRow, TakedownOutcomeRow, utc
from hashguard.takedown import signing
from hashguard.takedown.model import Clock, now

STATUSES: Final = ("queued", "open", "removed", "forwarded", "withdrawn", "reappeared")
MAX_URL: Final = 2048
MAX_EVIDENCE: Final = 64 * 1024
_KEYS: Final = ("referral", "url", "status", "verified_at", "evidence", signing.FIELD)
_REFERRAL = re.compile(r"[0-9a-f]{32}")


class StatusError(Invalid):
    """A status message that cannot be taken; the message names the field."""


class UnknownReferral(NotFound):
    """A referral this hotline did not send to that partner."""


@dataclass(frozen=True, slots=True)
class Received:
    case_id: int
    status: str
    urls: list[str]
    new: bool  # False: the same status was told before, kept once


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome to keep: a URL's takedown status as another organisation tells it."""

    url: str
    status: str
    at: datetime
    reference: str
    detail: Mapping[str, Any]


def check_status(body: Any, referral: str) -> tuple[str, datetime, list[str], dict[str, Any]]:
    """(status, time, URLs, detail) of a status message about ``referral``. Raises StatusError
    naming the field, or signing.BadSignature (a signature that does not match)."""
    if not isinstance(body, Mapping):
        raise StatusError("the status: expected a JSON object")
    unknown = [key for key in body if key not in _KEYS]
    if unknown:
        raise StatusError(f"{unknown[0]}: unknown field (the fields: {', '.join(_KEYS)})")
    if body.get("referral") != referral:
        raise StatusError(f"referral: expected {referral} (the referral in the path)")
    status = body.get("status")
    if status not in STATUSES:
        raise StatusError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
    try:
        at = datetime.fromisoformat(str(body.get("verified_at")))
    except ValueError:
        raise StatusError(f"verified_at: expected an ISO 8601 time, got "
                          f"{str(body.get('verified_at'))[:40]!r}") from None  # fmt: skip
    if at.tzinfo is None:
        raise StatusError("verified_at: expected a time with its zone (e.g. +00:00)")
    try:
        at = at.astimezone(UTC)
    except OverflowError:  # a zone offset that takes the time past year 1 or 9999
        raise StatusError(f"verified_at: {str(body.get('verified_at'))[:40]!r} is out of range "
                          "in UTC") from None  # fmt: skip
    url = body.get("url", "")
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise StatusError(f"url: expected a URL of at most {MAX_URL} characters")
    evidence = body.get("evidence", {})
    try:  # NaN and infinities are no JSON a database keeps
        size = len(json.dumps(evidence, allow_nan=False)) if isinstance(evidence, Mapping) else 0
    except ValueError:
        raise StatusError("evidence: expected JSON numbers (no NaN or Infinity)") from None
    if not isinstance(evidence, Mapping) or size > MAX_EVIDENCE:
        raise StatusError(f"evidence: expected an object of at most {MAX_EVIDENCE} bytes")
    detail: dict[str, Any] = {"evidence": dict(evidence)}
    if signing.FIELD in body:
        detail["signed_by"] = signing.verify(body)
    return status, at, [url] if url else [], detail


def receive_status(engine: Engine, partner: str, referral: str, body: Any,
                   clock: Clock = now) -> Received:  # fmt: skip
    """Keep ``partner``'s status of the case this hotline referred to it as ``referral``: one
    outcome per URL (one without a URL when none are named), once. Raises StatusError,
    BadSignature, UnknownReferral."""
    if not _REFERRAL.fullmatch(referral):
        raise UnknownReferral(f"no referral {referral[:40]!r} (32 hex digits)")
    status, at, urls, detail = check_status(body, referral)
    outbox = HotlineOutboxRow.__table__
    table = TakedownOutcomeRow.__table__
    source = f"partner:{partner}"
    received = clock()
    with engine.begin() as connection:
        sent = connection.execute(
            select(outbox.c.case_id, outbox.c.payload).where(
                outbox.c.kind == OutboxKind.REFERRAL.value, outbox.c.target == partner,
                outbox.c.payload.contains(referral))
        ).all()  # fmt: skip
        case = next((row.case_id for row in sent
                     if json.loads(row.payload).get("referral") == referral), None)  # fmt: skip
        if case is None:
            raise UnknownReferral(f"no referral {referral} was sent to {partner}")
        held = {(row.url, row.status, utc(row.at)) for row in connection.execute(
            select(table.c.url, table.c.status, table.c.at).where(
                table.c.source == source, table.c.reference == referral))}  # fmt: skip
        new = [url for url in (urls or [""]) if (url, status, at) not in held]
        for url in new:
            connection.execute(insert(TakedownOutcomeRow).values(
                source=source, reference=referral, case_id=case, url=url, status=status, at=at,
                received_at=received, detail=detail))  # fmt: skip
        if new:
            audit.append(connection, source, "takedown.status", f"case:{case}",
                         {"referral": referral, "status": status, "urls": new})  # fmt: skip
    return Received(case, status, urls, bool(new))


def keep(engine: Engine, source: str, outcomes: Sequence[Outcome], actor: str,
         networks: Sequence[Network] = (), clock: Clock = now) -> tuple[int, int]:  # fmt: skip
    """Keep imported ``outcomes`` from ``source`` in one transaction, each linked to the case
    of its URL (in its normal form) when there is one; (kept, linked)."""
    cases = HotlineCaseRow.__table__
    received = clock()
    linked = 0
    with engine.begin() as connection:
        for outcome in outcomes:
            case = connection.execute(select(cases.c.id).where(
                cases.c.url_key == _key(outcome.url, networks))).scalar()  # fmt: skip
            linked += case is not None
            connection.execute(insert(TakedownOutcomeRow).values(
                source=source, reference=outcome.reference, case_id=case, url=outcome.url,
                status=outcome.status, at=outcome.at, received_at=received,
                detail=dict(outcome.detail)))  # fmt: skip
        audit.append(connection, actor, "takedown.import", f"source:{source}",
                     {"outcomes": len(outcomes), "linked": linked})  # fmt: skip
    return len(outcomes), linked


def _key(url: str, networks: Sequence[Network]) -> str:
    """The key a case of ``url`` is found by ("" for a URL no case can have)."""
    try:
        return reported_urls.check(url, networks).key
    except Invalid:
        return ""
