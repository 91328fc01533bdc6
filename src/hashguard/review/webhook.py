"""Webhook calls to a service: an outbox written with the change it announces, sent by a worker
with retries and backoff, each call signed and carrying a fixed idempotency key.

A call is ``POST webhook_url`` with a JSON body and the headers
``Idempotency-Key`` (the same on every retry: a receiver acts once per key),
``X-Hashguard-Event`` and ``X-Hashguard-Signature: t=UNIX,v1=HEX``, where HEX is
HMAC-SHA256 over ``"{t}.{body}"`` with the service's secret. The secret is derived from the
server's secret file and the service's name (``service_secret``): nothing secret is stored in
the database, and ``hashguard services secret NAME`` shows it to the service's operator.

Nothing fails silently: every failed attempt is logged with its reason (a name that does not
resolve, a refused connection, the status a service answered), each attempt is told to the
caller's ``attempted`` (the service counts them in ``/metrics``), and each call's state
(pending with its attempts and last error, delivered, failed) is kept for its detection.
"""

import hashlib
import hmac
import json
import logging
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import (
    Connection,
    Engine,
    String,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from hashguard import durable
from hashguard.errors import Invalid
from hashguard.store.outbox import retry_delay
from hashguard.store.tables import ActionRow, ServiceRow, WebhookRow, utc

MAX_ATTEMPTS: Final = 36  # about a day of retries with store.outbox's backoff, then given up
SIGNATURE_TOLERANCE: Final = 300  # seconds a receiver should accept a signature's time
# A delivery's state, for webhook calls and reports alike.
PENDING: Final = "pending"  # not delivered yet; tried again later (or, for reports, by hand)
DELIVERED: Final = "delivered"
FAILED: Final = "failed"  # given up: every attempt failed
NO_WEBHOOK: Final = "not sent: the service has no webhook URL"

log = logging.getLogger("hashguard.webhook")


class SecretFileError(Invalid):
    """The server's secret file cannot be read or made; the message names it."""


def load_secret(path: Path) -> bytes:
    """The server's secret (32 random bytes, hex in ``path``), made owner-only on first use."""
    path = Path(path)
    if not path.exists():
        _make_secret(path)
    durable.settle(path)  # a copy of the secret a killed server left beside it
    try:
        text = path.read_text().strip()
        value = bytes.fromhex(text)
    except (OSError, ValueError) as error:
        raise SecretFileError(f"{path}: not a hashguard secret file ({error})") from None
    if len(value) != 32:
        raise SecretFileError(f"{path}: expected 64 hex digits, found {len(text)} characters")
    return value


def _make_secret(path: Path) -> None:
    """Create a new secret whole (``durable.create``): of servers starting at once on one file,
    the first wins for all."""
    try:
        durable.create(path, (secrets.token_hex(32) + "\n").encode(), 0o600)
    except FileExistsError:
        pass  # another process made it first: theirs is the secret
    except OSError as error:
        raise SecretFileError(f"{path}: cannot write: {error.strerror or error}") from None


def service_secret(server_secret: bytes, service: str) -> str:
    """The webhook signing secret of ``service``, as hex."""
    return hmac.new(server_secret, b"webhook:" + service.encode(), hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Hashguard-Signature`` header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_valid(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within SIGNATURE_TOLERANCE seconds
    (what a receiver checks)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    moment = datetime.now(UTC).timestamp() if now is None else now
    if abs(moment - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, header.strip())


def enqueue(
    connection: Connection,
    service_id: int,
    event: str,
    payload: Mapping[str, Any],
    idempotency_key: str,
    retain_until: datetime,
    detection_id: int | None = None,
) -> None:
    """Add a call to the outbox, in the caller's transaction (sent once it commits)."""
    now = datetime.now(UTC)
    body = json.dumps({"event": event, **payload}, sort_keys=True, separators=(",", ":"))
    connection.execute(
        insert(WebhookRow).values(
            service_id=service_id, detection_id=detection_id, event=event, payload=body,
            idempotency_key=idempotency_key, created_at=now, attempts=0, next_attempt_at=now,
            delivered_at=None, last_error="", retain_until=retain_until,
        )
    )  # fmt: skip


@dataclass(frozen=True)
class Call:
    id: int
    service: str
    event: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    delivered_at: datetime | None
    last_error: str  # why the last attempt failed, or why there was none (NO_WEBHOOK)
    detection_id: int | None
    created_at: datetime
    next_attempt_at: datetime

    @property
    def state(self) -> str:
        """PENDING, DELIVERED or FAILED (MAX_ATTEMPTS failed: no more attempts)."""
        if self.delivered_at is not None:
            return DELIVERED
        return FAILED if self.attempts >= MAX_ATTEMPTS else PENDING


def calls(
    engine: Engine, service_id: int | None = None, detection_id: int | None = None
) -> list[Call]:
    """The outbox (a service's, or the calls about a detection), oldest first."""
    outbox, services = WebhookRow.__table__, ServiceRow.__table__
    query = (
        select(outbox, services.c.name, services.c.webhook_url)
        .join(services, services.c.id == outbox.c.service_id)
        .order_by(outbox.c.id)
    )
    if service_id is not None:
        query = query.where(outbox.c.service_id == service_id)
    if detection_id is not None:
        query = query.where(outbox.c.detection_id == detection_id)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        Call(
            r.id,
            r.name,
            r.event,
            json.loads(r.payload),
            r.idempotency_key,
            r.attempts,
            utc(r.delivered_at) if r.delivered_at else None,
            r.last_error or ("" if r.delivered_at or r.webhook_url else NO_WEBHOOK),
            r.detection_id,
            utc(r.created_at),
            utc(r.next_attempt_at),
        )
        for r in rows
    ]


def quarantines_delivered(engine: Engine, detection_ids: Iterable[int]) -> set[int]:
    """Of ``detection_ids``, those whose quarantine in force its service has taken (the call
    asking for it delivered): a detection is quarantined only once its service was told."""
    wanted = sorted(set(detection_ids))
    if not wanted:
        return set()
    actions, outbox = ActionRow.__table__, WebhookRow.__table__
    key = literal("action-", String) + cast(actions.c.id, String)  # as actions.record names it
    # The purge deletes a delivered call once its retention passes, never an undelivered one:
    # a quarantine in force whose call is gone was delivered.
    query = (
        select(actions.c.detection_id)
        .outerjoin(outbox, outbox.c.idempotency_key == key)
        .where(actions.c.detection_id.in_(wanted), actions.c.kind == "quarantine",
               actions.c.reversed_at.is_(None),
               outbox.c.delivered_at.is_not(None) | outbox.c.id.is_(None))
    )  # fmt: skip
    with engine.connect() as connection:
        return {int(ident) for ident in connection.execute(query).scalars()}


@dataclass(frozen=True)
class Backlog:
    """What waits to be delivered: how many, the oldest one's age, and how many were given up."""

    pending: int
    oldest_seconds: float  # 0 when nothing waits
    failed: int


def backlog(engine: Engine, now: datetime | None = None) -> Backlog:
    """The outbox's undelivered calls to services with a webhook URL: pending and given up."""
    now = now or datetime.now(UTC)
    outbox, services = WebhookRow.__table__, ServiceRow.__table__
    undelivered = outbox.c.delivered_at.is_(None)
    retried = outbox.c.attempts < MAX_ATTEMPTS
    # A service without a webhook URL is never called: its calls wait for no one.
    sendable = outbox.join(services, services.c.id == outbox.c.service_id)
    addressed = services.c.webhook_url != ""
    with engine.connect() as connection:
        pending, oldest = connection.execute(
            select(func.count(), func.min(outbox.c.created_at))
            .select_from(sendable)
            .where(undelivered, retried, addressed)
        ).one()
        failed = connection.execute(
            select(func.count()).select_from(sendable).where(undelivered, ~retried, addressed)
        ).scalar_one()
    age = max(0.0, (now - utc(oldest)).total_seconds()) if oldest is not None else 0.0
    return Backlog(int(pending), age, int(failed))


def failure_reason(error: httpx.HTTPError) -> str:
    """What went wrong in a call that got no answer, in words an operator can act on: the name
    that does not resolve, the connection refused, the time waited."""
    url = error.request.url if _has_request(error) else None
    host = url.host if url is not None else "the host"
    where = f"{host}:{url.port}" if url is not None and url.port else host
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve {host}: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.TimeoutException):
        return f"no answer from {where} in time ({type(error).__name__})"
    return f"{where}: {type(error).__name__}: {error}"


def post_json(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str]
) -> str | None:
    """POST ``body`` (JSON) to ``url`` with ``headers``; None when the receiver took it (2xx),
    else what went wrong (``failure_reason``, ``status_reason``)."""
    try:
        answer = client.post(url, content=body, headers={"Content-Type": "application/json",
                                                         **headers})  # fmt: skip
    except httpx.HTTPError as error:
        return failure_reason(error)
    if 200 <= answer.status_code < 300:
        return None
    return status_reason(answer.status_code)


def _has_request(error: httpx.HTTPError) -> bool:
    try:
        error.request  # noqa: B018 - raises when the error was raised without one
    except RuntimeError:
        return False
    return True


def status_reason(status: int) -> str:
    """An answer that is not a success: ``HTTP 500 Internal Server Error``."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


class WebhookSender:
    """Sends due outbox calls: one attempt each per ``send_due``; failures are logged with
    their reason and retried later; ``attempted`` is told whether each attempt delivered."""

    def __init__(
        self,
        engine: Engine,
        server_secret: bytes,
        client: httpx.Client | None = None,
        attempted: Callable[[bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.server_secret = server_secret
        self.attempted = attempted or (lambda delivered: None)
        # No redirects: a webhook goes where the operator said, nowhere else.
        self.client = client or httpx.Client(timeout=10.0, follow_redirects=False)

    def send_due(self, now: datetime | None = None, limit: int = 100) -> int:
        """Attempt every due call (at most ``limit``); the number delivered."""
        now = now or datetime.now(UTC)
        outbox, services = WebhookRow.__table__, ServiceRow.__table__
        earlier = outbox.alias("earlier")
        # Calls about one detection go in order: a reversal never overtakes the action it
        # reverses while that action's call is still being retried.
        waiting = exists().where(
            earlier.c.detection_id == outbox.c.detection_id, earlier.c.id < outbox.c.id,
            earlier.c.delivered_at.is_(None), earlier.c.attempts < MAX_ATTEMPTS,
        )  # fmt: skip
        query = (
            select(outbox.c.id, outbox.c.detection_id, outbox.c.event, outbox.c.payload,
                   outbox.c.idempotency_key, outbox.c.attempts, services.c.name,
                   services.c.webhook_url)
            .join(services, services.c.id == outbox.c.service_id)
            .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= now,
                   outbox.c.attempts < MAX_ATTEMPTS, services.c.webhook_url != "", ~waiting)
            .order_by(outbox.c.id)
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as connection:
            due = connection.execute(query).all()
        delivered = 0
        failed: set[int] = set()  # detections whose call failed in this pass: the rest waits
        for row in due:
            if row.detection_id is not None and row.detection_id in failed:
                continue
            error = self._post(row.webhook_url, row.name, row.event, row.payload,
                               row.idempotency_key)  # fmt: skip
            attempts = row.attempts + 1
            if error is None:
                values: dict[str, Any] = {"attempts": attempts, "delivered_at": datetime.now(UTC),
                                          "last_error": ""}  # fmt: skip
                delivered += 1
            else:
                if row.detection_id is not None:
                    failed.add(row.detection_id)
                values = {"attempts": attempts, "last_error": error[:500],
                          "next_attempt_at": now + retry_delay(attempts)}  # fmt: skip
            with self.engine.begin() as connection:
                connection.execute(update(WebhookRow).where(outbox.c.id == row.id).values(values))
            self.attempted(error is None)
            if error is not None:  # logged once kept: what the log says, the detection shows
                _log_failure(row, attempts, error, values["next_attempt_at"] - now)
        return delivered

    def _post(self, url: str, service: str, event: str, body: str, key: str) -> str | None:
        """None when the service took the call (2xx), else what went wrong."""
        data = body.encode()
        stamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Idempotency-Key": key,
            "X-Hashguard-Event": event,
            "X-Hashguard-Signature": signature(service_secret(self.server_secret, service),
                                               stamp, data),
        }  # fmt: skip
        return post_json(self.client, url, data, headers)


def _log_failure(row: Any, attempts: int, error: str, wait: timedelta) -> None:
    about = f" about detection {row.detection_id}" if row.detection_id is not None else ""
    call = f"webhook call {row.id} ({row.event}{about}) to service {row.name}"
    if attempts >= MAX_ATTEMPTS:
        log.error("%s failed: %s; given up after %d attempts", call, error, attempts)
    else:
        log.warning("%s failed: %s (attempt %d of %d; next in %.0f s)", call, error, attempts,
                    MAX_ATTEMPTS, wait.total_seconds())  # fmt: skip
