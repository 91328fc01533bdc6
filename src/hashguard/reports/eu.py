"""The EU report of a confirmed detection: every element of Art 13(1) of the CSA Regulation
proposal (COM(2022) 209; Annex III is its template), as JSON signed with the provider's Ed25519
key.

| Art 13(1) | field |
|---|---|
| (a) provider and legal representative | ``provider`` |
| (b) date, time stamp, electronic signature | ``created_at``, ``signature`` |
| (c) content data | ``content``: the service's reference and the hashes (hashguard holds no media;
  the service attaches the item when it sends the report on) |
| (d) other data about the incident | ``incident`` |
| (e) known, new or solicitation | ``type`` |
| (f) geographic information: IP address and time | ``location`` |
| (g) identity of the user | ``user`` |
| (h) reported to a third-country authority, which | ``third_country_report`` |
| (i) removed or disabled | ``removed`` |
| (j) urgent action needed | ``urgent`` |
| (k) legal basis | ``legal_basis`` |

The article's wording is summarised in docs/research/reports.md; the law may renumber it.
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.errors import Unprocessable
from hashguard.review.model import Detection, Source
from hashguard.transparency import keys

FORMAT: Final = "hashguard/eu-csar-art13-report"
TYPES: Final = ("known", "new", "solicitation")


class ReportError(Unprocessable):
    """A report that cannot be built or does not validate; the message lists every problem."""


@dataclass(frozen=True)
class Provider:
    """Who reports: the organisation running the services (Art 13(1)(a))."""

    name: str
    contact_email: str
    country: str  # ISO 3166 alpha-2
    legal_representative: str = ""
    contact_name: str = ""


@dataclass(frozen=True)
class Circumstances:
    """What the reviewer or the service adds when a report is made."""

    removed: bool
    urgent: bool = False
    urgency_reason: str = ""
    third_country: str = ""  # e.g. "NCMEC (US)", "" when not reported outside the EU
    third_country_reference: str = ""


def build(
    detection: Detection,
    provider: Provider,
    circumstances: Circumstances,
    legal_basis: str,
    key: Ed25519PrivateKey,
    now: datetime | None = None,
    human: bool = True,
) -> dict[str, Any]:
    """The signed report; ``human``: whether a reviewer confirmed it (not the legal profile
    alone). Raises ReportError if it misses a mandatory element."""
    subject = detection.subject
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "report_id": str(uuid.uuid4()),
        "provider": {
            "name": provider.name,
            "legal_representative": provider.legal_representative,
            "contact_email": provider.contact_email,
            "contact_name": provider.contact_name,
            "country": provider.country,
        },
        "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "content": {
            "service": detection.service,
            "reference": detection.content_ref,
            "hashes": _hashes(detection),
        },
        "incident": {
            "detected_at": detection.detected_at.isoformat(timespec="seconds"),
            "confirmed_at": (
                detection.decided_at.isoformat(timespec="seconds") if detection.decided_at else ""
            ),
            "confirmed_by_human": human,
            "technology": detection.technology,
            "source": detection.source.value,
            "matches": [
                {k: m.get(k) for k in ("list", "entry", "signal", "distance", "labels")}
                for m in detection.evidence
            ],
        },
        "type": "known" if detection.source is Source.MATCH else "new",
        "location": {
            "ip": str(subject.get("ip", "")),
            "ip_at": str(subject.get("ip_at", "")),
            "port": subject.get("port"),
            "country": str(subject.get("country", "")),
        },
        "user": {
            "account_ref": detection.account_ref,
            **{k: v for k, v in dict(subject.get("user", {})).items()},
        },
        "third_country_report": {
            "reported": bool(circumstances.third_country),
            "to": circumstances.third_country,
            "reference": circumstances.third_country_reference,
        },
        "removed": circumstances.removed,
        "urgent": circumstances.urgent,
        "urgency_reason": circumstances.urgency_reason,
        "legal_basis": legal_basis,
    }
    document["signature"] = {
        "algorithm": "Ed25519",
        "public_key": keys.public_hex(key),
        "value": keys.sign(key, signed_bytes(document)),
    }
    problems = validate(document)
    if problems:
        raise ReportError("; ".join(problems))
    return document


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """What the signature covers: the report without its signature, as canonical JSON."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def validate(document: Mapping[str, Any]) -> list[str]:
    """Every problem with a report: missing mandatory elements (named by their Art 13(1)
    point), wrong values, or a signature that does not verify. Empty when it is valid."""
    problems = []

    def need(path: str, point: str, check: Any = bool) -> None:
        value: Any = document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or not check(value):
            problems.append(f"{path} ({point}) is missing or invalid")

    if document.get("format") != FORMAT:
        problems.append(f"format: expected {FORMAT!r}")
    need("provider.name", "Art 13(1)(a)")
    need("provider.contact_email", "Art 13(1)(a)", lambda v: "@" in str(v))
    need("provider.country", "Art 13(1)(a)", lambda v: len(str(v)) == 2)
    need("created_at", "Art 13(1)(b)", _is_time)
    need("content.reference", "Art 13(1)(c)")
    need("content.hashes", "Art 13(1)(c)", lambda v: isinstance(v, list) and len(v) > 0)
    need("incident.detected_at", "Art 13(1)(d)", _is_time)
    need("incident.confirmed_by_human", "Art 13(1)(d)", lambda v: isinstance(v, bool))
    need("type", "Art 13(1)(e)", lambda v: v in TYPES)
    need("location.ip", "Art 13(1)(f)")
    need("location.ip_at", "Art 13(1)(f)", _is_time)
    need("user.account_ref", "Art 13(1)(g)")
    need("third_country_report.reported", "Art 13(1)(h)", lambda v: isinstance(v, bool))
    need("removed", "Art 13(1)(i)", lambda v: isinstance(v, bool))
    need("urgent", "Art 13(1)(j)", lambda v: isinstance(v, bool))
    need("legal_basis", "Art 13(1)(k)")
    signature = document.get("signature")
    if not isinstance(signature, Mapping) or not keys.verify(
        str(signature.get("public_key", "")),
        signed_bytes(document),
        str(signature.get("value", "")),
    ):
        problems.append("signature (Art 13(1)(b)) does not verify")
    return problems


def _hashes(detection: Detection) -> list[dict[str, str]]:
    found = [{"signal": str(s), "value": str(v), "of": "content"}
             for s, v in dict(detection.subject.get("hashes", {})).items()]  # fmt: skip
    found += [{"signal": m["signal"], "value": m["value"], "of": "listed entry"}
              for m in detection.evidence if m.get("value")]  # fmt: skip
    return found


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
