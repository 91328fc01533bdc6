"""NCMEC CyberTipline reports: the ``<report>`` and ``<fileDetails>`` XML of a confirmed
detection, in the schema's element order, validated against ``cybertipline.xsd`` (the part of
NCMEC's schema hashguard writes) before anything is sent.

``fileViewedByEsp`` tells the truth: whether a person at the service viewed the file (a
confirmation on the evidence alone is not a viewing). Hashes go in
``originalFileHash`` (MD5, SHA1, SHA256) and, for PDQ, in ``details`` of type HASH.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final

from defusedxml import ElementTree as SafeTree
from lxml import etree

from hashguard.reports.eu import Circumstances, Provider, ReportError
from hashguard.review.model import Detection

INCIDENT_KNOWN: Final = "Child Pornography (possession, manufacture, and distribution)"
_HASH_TYPES: Final = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256"}
_INDUSTRY: Final = ("A1", "A2", "B1", "B2")
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"


@cache
def schema() -> etree.XMLSchema:
    text = resources.files("hashguard.reports").joinpath("cybertipline.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(text))


def report_xml(
    detection: Detection,
    provider: Provider,
    circumstances: Circumstances,
    now: datetime | None = None,
) -> bytes:
    """The ``<report>`` document. Raises ReportError if it does not validate."""
    now = now or datetime.now(UTC)
    root = etree.Element("report", nsmap={"xsi": _XSI})
    root.set(f"{{{_XSI}}}noNamespaceSchemaLocation", "https://report.cybertip.org/ispws/xsd")
    summary = _child(root, "incidentSummary")
    _child(summary, "incidentType", INCIDENT_KNOWN)
    _child(summary, "platform", detection.service)
    if circumstances.urgent:
        _child(summary, "escalateToHighPriority",
               circumstances.urgency_reason or "the provider considers this urgent")  # fmt: skip
    # NCMEC refuses incident times in the future; a detection is never later than now.
    incident = min(detection.detected_at, now - timedelta(seconds=1))
    _child(summary, "incidentDateTime", _time(incident))
    reporter = _child(root, "reporter")
    person = _child(reporter, "reportingPerson")
    if provider.contact_name:
        first, _, last = provider.contact_name.partition(" ")
        _child(person, "firstName", first)
        if last:
            _child(person, "lastName", last)
    _child(person, "email", provider.contact_email)
    user = _child(root, "personOrUserReported")
    if detection.account_ref:
        _child(user, "espIdentifier", detection.account_ref)
    _child(user, "espService", detection.service)
    subject = detection.subject
    unread: list[str] = []
    if subject.get("ip"):
        unread = _ip_event(user, subject)
    removed = "yes" if circumstances.removed else "no"
    facts = [f"content reference at {detection.service}: {detection.content_ref}",
             f"detected by {detection.technology}; confirmed by a reviewer at the provider",
             f"content removed or disabled: {removed}", *unread]  # fmt: skip
    if circumstances.third_country:
        facts.append(f"also reported to {circumstances.third_country}")
    _child(root, "additionalInfo", "\n".join(facts))
    return _checked(root)


def file_details_xml(
    detection: Detection, report_id: int, file_id: str, viewed: bool, file_name: str = ""
) -> bytes:
    """The ``<fileDetails>`` of the reported item, for ``/fileinfo`` after its upload;
    ``viewed``: whether a person at the service saw the file (the desk's ``detection.view``
    audit events), which NCMEC and US courts weigh (docs/research/reports.md)."""
    root = etree.Element("fileDetails")
    _child(root, "reportId", str(report_id))
    _child(root, "fileId", file_id)
    if file_name:
        _child(root, "originalFileName", file_name)
    _child(root, "uploadedToEspTimestamp", _time(detection.detected_at))
    _child(root, "fileViewedByEsp", "true" if viewed else "false")
    _child(root, "exifViewedByEsp", "false")
    _child(root, "fileRelevance", "Reported")
    industry = [label for label in detection.labels if label in _INDUSTRY]
    if industry:
        _child(root, "industryClassification", industry[0])
    hashes = dict(detection.subject.get("hashes", {}))
    for signal, kind in _HASH_TYPES.items():
        if signal in hashes:
            _child(root, "originalFileHash", str(hashes[signal])).set("hashType", kind)
    if detection.subject.get("ip"):
        _ip_event(root, detection.subject)
    if "pdq" in hashes:
        details = _child(root, "details")
        details.set("type", "HASH")
        pair = _child(details, "nameValuePair")
        _child(pair, "name", "PDQ")
        _child(pair, "value", str(hashes["pdq"]))
    return _checked(root)


@dataclass(frozen=True)
class Response:
    code: int
    description: str
    report_id: int | None
    file_id: str


def parse_response(body: bytes) -> Response:
    """A ``reportResponse`` (or ``reportDoneResponse``) from NCMEC. Raises ReportError for a
    body that is not one (parsed without entities or network: it comes from outside)."""
    try:
        root = SafeTree.fromstring(body)
    except Exception as error:  # defusedxml raises several kinds
        raise ReportError(f"NCMEC's answer is not XML: {error}") from None
    if root.tag not in ("reportResponse", "reportDoneResponse"):
        raise ReportError(f"NCMEC's answer is a <{root.tag}>, expected <reportResponse>")

    def text(name: str) -> str:
        found = root.find(name)
        return (found.text or "").strip() if found is not None else ""

    try:
        code = int(text("responseCode"))
        report_id = int(text("reportId")) if text("reportId") else None
    except ValueError:
        raise ReportError("NCMEC's answer has a malformed responseCode or reportId") from None
    return Response(code, text("responseDescription"), report_id, text("fileId"))


def _ip_event(parent: Any, subject: dict[str, Any]) -> list[str]:
    """The upload's IP capture event; what the platform gave that is no time or port (it gave
    the subject with its match) is left out of the event, and said as a fact instead."""
    event = _child(parent, "ipCaptureEvent")
    _child(event, "ipAddress", str(subject["ip"]))
    _child(event, "eventName", "Upload")
    unread = []
    if subject.get("ip_at"):
        given = str(subject["ip_at"])
        try:
            moment = datetime.fromisoformat(given.replace("Z", "+00:00"))
            if moment.tzinfo is None:  # a time of no zone is no moment: not claimed as one
                raise ValueError(given)
            at = _time(moment)
        except (ValueError, OverflowError):  # OverflowError: a zone past year 1 or 9999
            unread.append(f"time of the IP address as the platform gave it: {given[:40]!r}")
        else:
            _child(event, "dateTime", at)
    if subject.get("port"):
        port = str(subject["port"])
        if port.isascii() and port.isdigit() and 0 < int(port) < 65536:
            _child(event, "port", port)
        else:
            unread.append(f"port as the platform gave it: {port[:40]!r}")
    return unread


# Characters XML 1.0 cannot carry (C0 controls but tab, newline and return; lone surrogates;
# U+FFFE and U+FFFF): what a platform gave in a reference may hold them.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _child(parent: Any, name: str, text: str | None = None) -> Any:
    element = etree.SubElement(parent, name)
    if text is not None:
        element.text = _NOT_XML.sub("\ufffd", text)
    return element


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _checked(root: Any) -> bytes:
    if not schema().validate(root):
        problems = "; ".join(f"line {e.line}: {e.message}" for e in schema().error_log)
        raise ReportError(f"the CyberTipline XML does not validate: {problems}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
