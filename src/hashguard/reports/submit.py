"""Provider reports: made for confirmed detections only, kept with their document, and submitted
by an adapter per recipient, with retries and idempotency.

- ``EuCentreAdapter``: ``POST`` of the signed JSON with an ``Idempotency-Key`` (the report's,
  the same on every retry); 2xx or 409 (seen already) means received.
- ``CyberTiplineAdapter``: NCMEC's flow, ``/submit`` then ``/finish`` (Basic auth). NCMEC has no
  idempotency keys, so the report id it returns is stored before the next step: a retry after a
  failure resumes at ``/finish`` instead of filing a second report. Files are not uploaded:
  hashguard holds no media; the hashes go in the report (and ``file_details_xml`` serves a
  service that uploads the item itself).

A report is made once per detection and recipient; the detection becomes *reported*. Every
failed attempt is logged with its reason and told to ``attempted`` (counted in ``/metrics``);
a report's delivery state (``Report.delivery``) shows on its detection.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashguard.errors import Unavailable
from hashguard.net.answers import json_of, text_of
from hashguard.reports import eu, ncmec
from hashguard.reports.eu import Circumstances, Provider, ReportError
from hashguard.review import actions
from hashguard.review.detections import Review
from hashguard.review.model import CONFIRMED_STATES, Decision, NotFound, ReviewError, Source, State
from hashguard.review.webhook import (
    DELIVERED,
    FAILED,
    PENDING,
    Backlog,
    failure_reason,
    status_reason,
)
from hashguard.store import audit
from hashguard.store.counts import bump
from hashguard.store.tables import ReportRow, utc

RECIPIENTS: Final = ("eu-centre", "ncmec")
ATTEMPTS: Final = 4  # per submit call; a report that still fails stays "built" for later
_BACKOFF: Final = 0.5  # seconds, doubled per attempt
_WAITING: Final = ("built", "sending")

log = logging.getLogger("hashguard.reports")


@dataclass(frozen=True)
class Report:
    id: int
    detection_id: int
    recipient: str
    document: str
    idempotency_key: str
    state: str  # built, sending, submitted
    external_id: str
    attempts: int
    last_error: str
    created_at: datetime
    submitted_at: datetime | None

    @property
    def delivery(self) -> str:
        """DELIVERED once submitted; PENDING until its first attempt or while one runs;
        FAILED when attempts were made and none got through (sent again only when asked)."""
        if self.state == "submitted":
            return DELIVERED
        return FAILED if self.attempts and self.state != "sending" else PENDING


class Transient(Unavailable):
    """A failure worth retrying (network, 5xx)."""


class Adapter(Protocol):
    recipient: str

    def send(self, report: Report, remember: Callable[[str], None]) -> str:
        """Deliver ``report``; the recipient's id for it. ``remember`` stores an id received
        midway, so a retry can resume. Raises Transient (retry) or ReportError (do not)."""


class Reports:
    def __init__(self, engine: Engine, review: Review | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 attempted: Callable[[bool], None] | None = None) -> None:  # fmt: skip
        """``attempted`` is told of each attempt to send a report: whether it got through."""
        self.engine = engine
        self.review = review or Review(engine)
        self.sleep = sleep
        self.attempted = attempted or (lambda delivered: None)

    def make(
        self,
        detection_id: int,
        recipient: str,
        provider: Provider,
        circumstances: Circumstances,
        key: Ed25519PrivateKey,
        actor: str,
    ) -> Report:
        """Build and keep the report of a confirmed detection for ``recipient`` (the one made
        already, if any). Raises ReviewError before a human confirmed the detection, and
        ReportError for a document that does not validate."""
        if recipient not in RECIPIENTS:
            raise ReportError(f"recipient {recipient!r}: expected one of {', '.join(RECIPIENTS)}")
        detection = self.review.get(detection_id)
        if detection.state not in CONFIRMED_STATES:
            raise ReviewError(
                f"detection {detection_id} is {detection.state.value}: reports are made only "
                "after a reviewer confirms"
            )
        if recipient == "ncmec" and detection.source is not Source.MATCH:
            raise ReportError("NCMEC reports are of known material: this detection is a "
                              f"{detection.source.value}, not a list match")  # fmt: skip
        existing = self._find(detection_id, recipient)
        if existing is not None:
            return existing
        legal_basis = self.review.services.get(detection.service).profile.legal_basis
        human = any(v.decision is Decision.CONFIRM for v in self.review.votes(detection_id))
        viewed = bool(audit.events(self.engine, 0, 1, [f"detection:{detection_id}"],
                                   action="detection.view"))  # fmt: skip
        if recipient == "eu-centre":
            built = eu.build(detection, provider, circumstances, legal_basis, key, human=human)
            document, key_text = json.dumps(built, sort_keys=True), built["report_id"]
        else:
            document = ncmec.report_xml(detection, provider, circumstances).decode()
            key_text = f"ncmec-{uuid.uuid4()}"
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as connection:
                state = actions.locked(connection, detection_id)["state"]
                if state not in CONFIRMED_STATES:  # changed meanwhile
                    raise ReviewError(f"detection {detection_id} is {state}: no report")
                connection.execute(
                    insert(ReportRow).values(
                        detection_id=detection_id, recipient=recipient, document=document,
                        idempotency_key=key_text, state="built", external_id="", attempts=0,
                        last_error="", created_at=now, submitted_at=None,
                    )
                )  # fmt: skip
                audit.append(connection, actor, "report.make", f"detection:{detection_id}",
                             {"recipient": recipient, "confirmed_by_human": human,
                              "viewed": viewed})  # fmt: skip
        except IntegrityError:
            pass  # made meanwhile by someone else: theirs stands
        found = self._find(detection_id, recipient)
        assert found is not None
        return found

    def submit(self, report_id: int, adapter: Adapter, actor: str) -> Report:
        """Send a report (again), retrying transient failures with backoff. Returns it
        submitted, or still built with ``last_error`` when every attempt failed. Raises
        ReportError when the recipient refused it outright."""
        report = self.get(report_id)
        if report.state == "submitted":
            return report
        if adapter.recipient != report.recipient:
            raise ReportError(f"report {report_id} is for {report.recipient}")
        table = ReportRow.__table__
        with self.engine.begin() as connection:  # claimed: a second sender finds it taken
            state = actions.locked(connection, report.detection_id)["state"]
            if state not in CONFIRMED_STATES:
                raise ReviewError(f"detection {report.detection_id} is {state}: not sent")
            claimed = connection.execute(
                update(ReportRow).where(table.c.id == report_id, table.c.state == "built")
                .values(state="sending")
            ).rowcount  # fmt: skip
        if not claimed:
            return self.get(report_id)
        try:
            self._send(report, adapter, actor)
        finally:
            with self.engine.begin() as connection:  # not sent: it can be sent again later
                connection.execute(
                    update(ReportRow).where(table.c.id == report_id, table.c.state == "sending")
                    .values(state="built")
                )  # fmt: skip
        return self.get(report_id)  # as left: submitted, or built again

    def _send(self, report: Report, adapter: Adapter, actor: str) -> None:
        report_id = report.id
        error = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                self.sleep(_BACKOFF * 2 ** (attempt - 1))
            try:
                external = adapter.send(report, lambda ident: self._remember(report_id, ident))
            except Transient as failure:
                error = str(failure)
                self._failed(report_id, error)
                self.attempted(False)
                log.warning("report %d (detection %d) to %s failed: %s (attempt %d of %d)",
                            report_id, report.detection_id, report.recipient, error,
                            attempt + 1, ATTEMPTS)  # fmt: skip
                report = self.get(report_id)
                continue
            except ReportError as refusal:
                self._failed(report_id, str(refusal))
                self.attempted(False)
                log.error("report %d (detection %d) refused by %s: %s", report_id,
                          report.detection_id, report.recipient, refusal)  # fmt: skip
                raise
            self.attempted(True)
            self._submitted(report, external, actor)
            return
        log.error("report %d (detection %d) to %s not delivered after %d attempts: %s; it is "
                  "sent again when asked", report_id, report.detection_id, report.recipient,
                  ATTEMPTS, error)  # fmt: skip

    def backlog(self, now: datetime | None = None) -> Backlog:
        """Reports not delivered: pending (never tried, or being sent) and failed."""
        now = now or datetime.now(UTC)
        table = ReportRow.__table__
        waiting = table.c.state.in_(_WAITING)
        never = (table.c.attempts == 0) | (table.c.state == "sending")
        with self.engine.connect() as connection:
            pending, oldest = connection.execute(
                select(func.count(), func.min(table.c.created_at)).where(waiting, never)
            ).one()
            failed = connection.execute(
                select(func.count()).select_from(table).where(waiting, ~never)
            ).scalar_one()
        age = max(0.0, (now - utc(oldest)).total_seconds()) if oldest is not None else 0.0
        return Backlog(int(pending), age, int(failed))

    def get(self, report_id: int) -> Report:
        table = ReportRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == report_id)).one_or_none()
        if row is None:
            raise NotFound(f"no report number {report_id}")
        return _report(row)

    def of(self, detection_id: int) -> list[Report]:
        table = ReportRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.detection_id == detection_id).order_by(table.c.id)
            ).all()
        return [_report(r) for r in rows]

    def _find(self, detection_id: int, recipient: str) -> Report | None:
        table = ReportRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.detection_id == detection_id,
                                    table.c.recipient == recipient)
            ).one_or_none()  # fmt: skip
        return None if row is None else _report(row)

    def _remember(self, report_id: int, external: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(ReportRow).where(ReportRow.__table__.c.id == report_id)
                .values(external_id=external)
            )  # fmt: skip

    def _failed(self, report_id: int, error: str) -> None:
        table = ReportRow.__table__
        with self.engine.begin() as connection:
            connection.execute(
                update(ReportRow).where(table.c.id == report_id)
                .values(attempts=table.c.attempts + 1, last_error=error[:500])
            )  # fmt: skip

    def _submitted(self, report: Report, external: str, actor: str) -> None:
        now = datetime.now(UTC)
        table = ReportRow.__table__
        with self.engine.begin() as connection:
            connection.execute(
                update(ReportRow).where(table.c.id == report.id).values(
                    state="submitted", external_id=external, submitted_at=now,
                    attempts=table.c.attempts + 1, last_error="",
                )
            )  # fmt: skip
            bump(connection, now, "reports", report.recipient)
            audit.append(connection, actor, "report.submit", f"detection:{report.detection_id}",
                         {"recipient": report.recipient, "external_id": external})  # fmt: skip
        detection = self.review.get(report.detection_id)
        if detection.state is State.CONFIRMED:
            self.review.mark(report.detection_id, State.REPORTED, actor)


class EuCentreAdapter:
    recipient = "eu-centre"

    def __init__(self, url: str, client: httpx.Client | None = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=30.0, follow_redirects=False)

    def send(self, report: Report, remember: Callable[[str], None]) -> str:
        headers = {"Content-Type": "application/json", "Idempotency-Key": report.idempotency_key}
        try:
            answer = self.client.post(self.url, content=report.document.encode(), headers=headers)
        except httpx.HTTPError as error:
            raise Transient(failure_reason(error)) from None
        if answer.status_code >= 500 or answer.status_code == 429:
            raise Transient(status_reason(answer.status_code))
        if answer.status_code not in (200, 201, 202, 409):
            refused = status_reason(answer.status_code)
            raise ReportError(f"the EU Centre refused the report: {refused} "
                              f"{text_of(answer)[:300]}")  # fmt: skip
        try:
            found: Any = json_of(answer)
        except ValueError:
            found = {}
        return str(found.get("id", report.idempotency_key)) if isinstance(found, dict) else ""


class CyberTiplineAdapter:
    recipient = "ncmec"

    def __init__(self, base_url: str, username: str, password: str,
                 client: httpx.Client | None = None) -> None:  # fmt: skip
        self.base = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=60.0, follow_redirects=False,
                                             auth=(username, password))  # fmt: skip
        if client is not None:
            self.client.auth = (username, password)

    def send(self, report: Report, remember: Callable[[str], None]) -> str:
        report_id = report.external_id
        if not report_id:  # not filed yet (a retry after /submit resumes below)
            answer = self._call("/submit", content=report.document.encode(),
                                headers={"Content-Type": "text/xml; charset=utf-8"})  # fmt: skip
            if answer.report_id is None:
                raise ReportError("NCMEC accepted the report but returned no reportId")
            report_id = str(answer.report_id)
            remember(report_id)
        self._call("/finish", data={"id": report_id})
        return report_id

    def _call(self, path: str, **options: Any) -> ncmec.Response:
        try:
            answer = self.client.post(self.base + path, **options)
        except httpx.HTTPError as error:
            raise Transient(f"{path}: {failure_reason(error)}") from None
        if answer.status_code >= 500:
            raise Transient(f"{path}: {status_reason(answer.status_code)}")
        if answer.status_code != 200:
            raise ReportError(f"NCMEC {path}: {status_reason(answer.status_code)}")
        parsed = ncmec.parse_response(answer.content)
        if parsed.code == 5102 and path == "/finish":
            return parsed  # finished already: an earlier attempt got through
        if parsed.code in (1000, 1100, 1300):
            raise Transient(f"{path}: code {parsed.code} {parsed.description}")
        if parsed.code != 0:
            raise ReportError(f"NCMEC {path}: code {parsed.code} {parsed.description}")
        return parsed


def _report(r: Any) -> Report:
    m = r._mapping
    return Report(m["id"], m["detection_id"], m["recipient"], m["document"],
                  m["idempotency_key"], m["state"], m["external_id"], m["attempts"],
                  m["last_error"], utc(m["created_at"]),
                  utc(m["submitted_at"]) if m["submitted_at"] else None)  # fmt: skip
