"""Notices and outcomes exchanged as XARF v4 with other abuse desks (AbuseIO and the like):
``export_notices`` gives our signed notices and, for each notice whose removal was verified, an
outcome report (the same report with ``content_removed: true`` and the re-checks' evidence);
``read_reports`` reads what another desk sends: one report, a JSON list of them, or JSON lines,
each checked against XARF's schema (XARF v3 converted by the ``xarf`` package). Never content:
the reports carry URLs, hashes and labels, and evidence members with payloads are refused
(docs/formats.md, "Takedown notices (XARF v4)")."""

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import xarf as xarf_package
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xarf.exceptions import XARFError

from hashguard.errors import Invalid
from hashguard.store.tables import utc
from hashguard.takedown import signing
from hashguard.takedown.model import NoticeState
from hashguard.takedown.notice import XARF_HASHES, stamp, validate

MAX_REPORTS: Final = 10_000  # reports read at once
MAX_ERRORS: Final = 10  # errors named in one message
OUTCOME: Final = uuid.UUID("5d3c1f0e-8a7b-4c6d-9e2f-1a0b3c4d5e6f")  # names outcome report ids


class ReportsInvalid(Invalid):
    """XARF text that cannot be read; the message names each report (line) and field."""


@dataclass(frozen=True, slots=True)
class ImportedReport:
    """One report another abuse desk sent: what it is about, and whether the content is gone."""

    source: str  # who sent it (as the operator names them)
    report_id: str
    category: str
    type: str
    url: str | None
    at: datetime  # the report's timestamp
    reporter: str  # the reporting organisation
    content_removed: bool | None  # None: the report does not say
    hashes: tuple[dict[str, str], ...] = ()  # per item, signal -> value (where it names them)
    document: dict[str, Any] = field(default_factory=dict)  # the report as read (v4)

    @property
    def status(self) -> str:
        """``removed``, ``not-removed`` or ``reported`` (the report does not say)."""
        if self.content_removed is None:
            return "reported"
        return "removed" if self.content_removed else "not-removed"


def outcome_id(report_id: str) -> str:
    """The report id of the outcome of the notice ``report_id``: the same at every export,
    and a UUID of version 4 as XARF asks (derived by name, its version bits set to 4)."""
    return str(uuid.UUID(bytes=uuid.uuid5(OUTCOME, report_id).bytes, version=4))


def export_notices(
    rows: Iterable[Any],
    checks: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Iterator[dict[str, Any]]:
    """The XARF reports of ``rows`` (``takedown_notices`` rows, or their mappings): each
    composed notice as it was signed and sent, and after each one whose removal was verified,
    its outcome report: ``content_removed: true``, when (``hashguard_outcome.removed_at``) and
    the evidence (``checks``: per notice id the re-checks that found it gone), signed with
    ``key`` when given. Queued notices (not yet composed) and withdrawn ones are left out."""
    for row in rows:
        notice = getattr(row, "_mapping", row)
        if not notice["document"] or notice["state"] == NoticeState.WITHDRAWN.value:
            continue
        document = json.loads(notice["document"])
        yield document
        if notice["state"] == NoticeState.REMOVED.value and notice["verified_at"] is not None:
            evidence = (checks or {}).get(notice["id"], ())
            outcome = _outcome(document, utc(notice["verified_at"]), evidence)
            yield signing.sign(outcome, key) if key is not None else outcome


def _outcome(
    document: Mapping[str, Any], removed_at: datetime, evidence: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    outcome = {name: value for name, value in document.items() if name != signing.FIELD}
    outcome.update({
        "report_id": outcome_id(str(document["report_id"])),
        "content_removed": True,
        "description": "Removal verified by the hotline's own re-check: the content is no "
                       "longer served at these URLs.",
        "hashguard_outcome": {
            "notice_report_id": document["report_id"],
            "removed_at": stamp(removed_at),
            "evidence": [_check(check) for check in evidence],
        },
    })  # fmt: skip
    validate(outcome)
    return outcome


def _check(check: Mapping[str, Any]) -> dict[str, Any]:
    """A re-check as evidence: when, which URL, the answer's status, the outcome and the
    hashes of what was served (never the content)."""
    at = check.get("at")
    return {"url": check.get("url"), "at": stamp(at) if isinstance(at, datetime) else at,
            "purpose": check.get("purpose"), "outcome": check.get("outcome"),
            "status": check.get("status"), "detail": check.get("detail", ""),
            "hashes": list(check.get("hashes") or ())}  # fmt: skip


# --- reading -------------------------------------------------------------------------------


def read_reports(text: str, source: str) -> list[ImportedReport]:
    """The reports in ``text`` (one JSON object, a JSON list, or one object per line) that
    ``source`` sent. Raises ReportsInvalid naming the line (JSON lines), the report's place
    (a list) and the field of each report XARF's schema refuses; nothing is read then."""
    try:
        found = _documents(text)
    except RecursionError:
        raise ReportsInvalid("the JSON is nested too deeply to be a XARF report") from None
    if len(found) > MAX_REPORTS:
        raise ReportsInvalid(f"{len(found)} reports: at most {MAX_REPORTS} at once")
    reports, errors = [], []
    for where, value in found:
        try:
            reports.append(_report(value, source))
        except ReportsInvalid as error:
            errors.append(f"{where}: {error}")
        except RecursionError:
            errors.append(f"{where}: nested too deeply to be a XARF report")
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        raise ReportsInvalid("; ".join(errors[:MAX_ERRORS]) + more)
    return reports


def _documents(text: str) -> list[tuple[str, Any]]:
    """(where, value) for each report in ``text``."""
    if not text.strip():
        raise ReportsInvalid("no reports: expected XARF JSON (an object, a list, or JSON lines)")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise ReportsInvalid(f"line {error.lineno}, column {error.colno}: not JSON "
                                 f"({error.msg})") from None  # fmt: skip
        return _lines(text)
    if isinstance(whole, list):
        return [(f"report {number}", value) for number, value in enumerate(whole, 1)]
    return [("the report", whole)]


def _lines(text: str) -> list[tuple[str, Any]]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as error:
            raise ReportsInvalid(f"line {number}, column {error.colno}: not JSON "
                                 f"({error.msg})") from None  # fmt: skip
        except RecursionError:
            raise ReportsInvalid(f"line {number}: nested too deeply to be a XARF "
                                 "report") from None  # fmt: skip
    return found


def _report(value: Any, source: str) -> ImportedReport:
    if not isinstance(value, dict):
        raise ReportsInvalid(f"expected a XARF report (a JSON object), got {type(value).__name__}")
    if str(value.get("xarf_version", "")).startswith("4") and "timestamp" in value:
        # Ours first: whether the package's schema checks date-times depends on what else is
        # installed (jsonschema checks formats only with rfc3339-validator present).
        _time(value["timestamp"])
    try:
        parsed = xarf_package.parse(value)
    except XARFError as error:  # a XARF v3 report the package cannot convert
        raise ReportsInvalid(_sentence(error)) from None
    except (AttributeError, TypeError) as error:  # a v3 report whose parts are not objects
        raise ReportsInvalid(f"not a report the xarf package can read ({error})") from None
    if parsed.errors:
        raise ReportsInvalid(", ".join(f"{e.field or '(the report)'}: {e.message}"
                                       for e in parsed.errors[:3]))  # fmt: skip
    document = value if parsed.report is None else _as_dict(parsed.report, value)
    if any(isinstance(e, Mapping) and e.get("payload") for e in document.get("evidence") or ()):
        raise ReportsInvalid("evidence: reports with evidence payloads are refused (hashguard "
                             "takes URLs and hashes, never content)")  # fmt: skip
    return ImportedReport(
        source=source, report_id=str(document["report_id"]),
        category=str(document["category"]), type=str(document["type"]),
        url=str(document["url"]) if isinstance(document.get("url"), str) else None,
        at=_time(document["timestamp"]), reporter=str(document["reporter"]["org"]),
        content_removed=(document["content_removed"]
                         if isinstance(document.get("content_removed"), bool) else None),
        hashes=_hashes(document), document=document,
    )  # fmt: skip


def _as_dict(report: Any, value: dict[str, Any]) -> dict[str, Any]:
    """The report as a v4 dict: ``value`` itself unless the package converted it (XARF v3)."""
    if value.get("xarf_version", "").startswith("4"):
        return value
    dumped: dict[str, Any] = report.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        got = str(value)[:40]
        raise ReportsInvalid(f"timestamp: expected an ISO 8601 time, got {got!r}") from None
    try:
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except OverflowError:  # a zone offset that takes the time past year 1 or 9999
        raise ReportsInvalid(f"timestamp: {str(value)[:40]!r} is out of range in UTC") from None


def _sentence(error: Exception) -> str:
    """The xarf package's message on one line (at most 300 characters), lower-cased at its
    start."""
    text = " ".join(str(error).split())[:300]
    return text[:1].lower() + text[1:] if text else type(error).__name__


def _hashes(document: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    """Per item its hashes (hashguard's ``hashguard_items``), else XARF's ``hash_values``."""
    items = [item.get("hashes") for item in document.get("hashguard_items") or ()
             if isinstance(item, Mapping)]  # fmt: skip
    found = [{str(s): v for s, v in h.items() if isinstance(v, str)} for h in items
             if isinstance(h, Mapping)]  # fmt: skip
    values = document.get("hash_values")
    if not found and isinstance(values, Mapping):
        found = [{s: str(values[s]).lower() for s in XARF_HASHES if isinstance(values.get(s), str)}]
    return tuple(h for h in found if h)
