"""The database tables. Changes are only ever inserted; ``list_entries`` is the fold of a list's
changes so far, kept in the same transaction as each change so reads need no replay.

Per-entry JSON (labels, sources) is stored as text that hashguard serialises itself: imports
write millions of rows that share a few distinct values, and serialising each once is far
cheaper than per row."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite gives INTEGER PRIMARY KEY columns their rowid (and autoincrement); elsewhere 64 bits.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utc(moment: datetime) -> datetime:
    """A stored time in UTC: SQLite gives times back without their zone (they were stored in
    UTC); PostgreSQL in its session's time zone (a role's or PGTZ's), converted here."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class HashListRow(Base):
    __tablename__ = "hash_lists"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused (migration 0007)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    jurisdictions: Mapped[list[Any]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(Text)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EntryRow(Base):
    """Keyed by (list, signal, value key), the order releases, exports and Matchers read
    entries in: on SQLite the table is clustered on that key (WITHOUT ROWID), so those reads
    are sequential. The value key is the value itself, or for a value too long for an index
    key (a video's vPDQ) its SHA-256 (``list_codecs.value_key``). ``id`` is unique and what
    changes and references point to."""

    __tablename__ = "list_entries"
    __table_args__ = (
        PrimaryKeyConstraint("list_id", "signal", "value_key", name="pk_list_entries"),
        UniqueConstraint("id", name="uq_list_entries_id"),
        # The few entries measured as unstable, counted for their owner without a list scan;
        # entries listed as plain hashes (no stability) stay out of it and cost imports nothing.
        Index(
            "ix_list_entries_unstable",
            "list_id",
            "stability",
            sqlite_where=text("stability IS NOT NULL"),
            postgresql_where=text("stability IS NOT NULL"),
        ),
        {"sqlite_with_rowid": False},
    )

    id: Mapped[int] = mapped_column(Id)
    list_id: Mapped[int] = mapped_column(Id, ForeignKey("hash_lists.id", ondelete="CASCADE"))
    signal: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    value_key: Mapped[str] = mapped_column(Text)
    labels: Mapped[str] = mapped_column(Text)  # JSON array, sorted
    status: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(200))
    assessed_by: Mapped[str] = mapped_column(String(200))
    sources: Mapped[str] = mapped_column(Text)  # JSON array of {organisation, jurisdiction, ...}
    version: Mapped[int] = mapped_column(BigInteger)  # of the entry's last change
    # The signal's stability (0-100) when the value was hashed from media here, else NULL.
    stability: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class ChangeRow(Base):
    __tablename__ = "list_changes"
    __table_args__ = (UniqueConstraint("list_id", "version", name="uq_list_changes_version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(Id, ForeignKey("hash_lists.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[int] = mapped_column(Id, ForeignKey("list_entries.id", ondelete="CASCADE"))
    labels: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, as in list_entries
    provenance: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stability: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)  # of an add


class ReferenceRow(Base):
    """Which entries a source's reference (its own id for what it submitted) covers, so a
    withdrawal that names only the reference finds them. Kept with every change to sources."""

    __tablename__ = "entry_references"

    list_id: Mapped[int] = mapped_column(
        Id, ForeignKey("hash_lists.id", ondelete="CASCADE"), primary_key=True
    )
    reference: Mapped[str] = mapped_column(Text, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        Id, ForeignKey("list_entries.id", ondelete="CASCADE"), primary_key=True
    )


class AuditEventRow(Base):
    """One event of the audit log; ``hash`` covers the event and the hash of the one before."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, as hashed
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHeadRow(Base):
    """The newest event's number and hash, in one row: appends update it, which orders them
    (one writer at a time), and a log cut short no longer reaches it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ApiKeyRow(Base):
    """An API key: its public id, the SHA-256 of its secret (never the secret), its role and
    the lists it is limited to (empty: all)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    lists: Mapped[list[Any]] = mapped_column(JSON)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    service: Mapped[str | None] = mapped_column(String(100), nullable=True)  # whose uploads
    hoster: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a hoster key's hoster


class MatchRow(Base):
    """One match the service answered: who asked, when, which list entry at what distance, and
    the caller's own opaque reference for the content. Queries that match nothing leave no row.
    The list and entry are kept by name and number, not as foreign keys: the record of a match
    outlives a later deletion of its entry."""

    __tablename__ = "match_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    caller: Mapped[str] = mapped_column(String(32))  # the API key's id
    list: Mapped[str] = mapped_column(String(100))
    entry_id: Mapped[int] = mapped_column(BigInteger)
    signal: Mapped[str] = mapped_column(String(32))
    distance: Mapped[float] = mapped_column(Float)
    content_ref: Mapped[str] = mapped_column(Text)
    retain_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IdCounterRow(Base):
    """The highest id handed out, per table, where the database would reuse ids (SQLite's
    list_entries: a removed list's entry ids must never come back)."""

    __tablename__ = "id_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


# --- safeguards (issue 6): who is checked, what was detected, what people decided -------------
# Every row that concerns a person carries its purpose and when it must be gone (retain_until);
# the purge job deletes what is due and records what it purged in the audit log.


class ServiceRow(Base):
    """An online service whose uploads are checked: its legal profile, whether it is
    end-to-end encrypted, where actions are sent (webhook) and where reviewers' content comes
    from (``content_url`` with ``{ref}``). Its webhook secret is derived, never stored."""

    __tablename__ = "services"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    legal_profile: Mapped[str] = mapped_column(String(64))
    e2ee: Mapped[bool] = mapped_column(Boolean)
    webhook_url: Mapped[str] = mapped_column(Text)
    content_url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DetectionRow(Base):
    """A match (or a user's flag, or a classifier's) on one item of a service, awaiting or
    after human review. ``evidence`` holds every match; ``subject`` what the service said
    about the uploader (account, IP and time), kept for reports and notices only."""

    __tablename__ = "detections"
    __table_args__ = (
        UniqueConstraint("service_id", "content_ref", name="uq_detection_content"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    content_ref: Mapped[str] = mapped_column(Text)
    account_ref: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # match, flag, classifier
    technology: Mapped[str] = mapped_column(String(64))  # pdq, md5, ..., classifier:NAME, flag
    list_name: Mapped[str] = mapped_column("list", String(100))
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    exact: Mapped[bool] = mapped_column(Boolean)
    evidence: Mapped[list[Any]] = mapped_column(JSON)
    subject: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text)
    quarantined: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(String(32))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    held_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hold_reason: Mapped[str] = mapped_column(Text)


class ReviewVoteRow(Base):
    """One reviewer's decision on a detection (four eyes: two that agree decide it)."""

    __tablename__ = "review_votes"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActionRow(Base):
    """What the service was asked to do about a detection (quarantine, remove, disable,
    suspend), and when it was undone."""

    __tablename__ = "actions"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reversal_reason: Mapped[str] = mapped_column(Text)


class WebhookRow(Base):
    """An outbox of webhook calls to services: written in the transaction of the change it
    announces, sent (and retried with backoff) by a worker, each with a fixed idempotency key."""

    __tablename__ = "webhook_outbox"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    detection_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoticeRow(Base):
    """A statement of reasons to the user of a service, with the redress routes, and the hash
    of the token that lets them complain until ``complaint_until``."""

    __tablename__ = "notices"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    complaint_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ComplaintRow(Base):
    """A user's complaint against a decision: decided by a reviewer other than those who
    decided the detection; upheld reverses the actions."""

    __tablename__ = "complaints"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), unique=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    lodged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewer: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome_reason: Mapped[str] = mapped_column(Text)


class CountRow(Base):
    """Yearly counts for transparency reports (no personal data: kept after the detections
    they count are purged): ``metric`` by ``key`` (a technology, an outcome...)."""

    __tablename__ = "safeguard_counts"
    __table_args__ = (PrimaryKeyConstraint("year", "metric", "key", name="pk_safeguard_counts"),)

    year: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)


class ReportRow(Base):
    """A provider report on a confirmed detection: the document as built (signed JSON or
    CyberTipline XML), where it goes, and how its submission went."""

    __tablename__ = "provider_reports"
    __table_args__ = (
        UniqueConstraint("detection_id", "recipient", name="uq_report_recipient"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(32))  # eu-centre, ncmec
    document: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))  # built, submitted, failed
    external_id: Mapped[str] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RiskAssessmentRow(Base):
    """A service's assessment of the risk of its use for child sexual abuse (CSA Regulation
    proposal Art 3-5): the factors, the mitigations, what risk remains, when it is next due."""

    __tablename__ = "risk_assessments"
    __table_args__ = ({"sqlite_autoincrement": True},)  # ids never reused

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    performed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    factors: Mapped[dict[str, Any]] = mapped_column(JSON)
    mitigations: Mapped[list[Any]] = mapped_column(JSON)
    remaining_risk: Mapped[str] = mapped_column(String(16))
    next_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))


# --- victims (issue 17): cases opened by the person shown, their hashes, partners' feedback ----


class ListAcknowledgementRow(Base):
    """A follower's receipt: the list version it has applied, and when it said so (one row per
    version a follower reached, so the first time each version was reached stays known)."""

    __tablename__ = "list_acknowledgements"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    list_name: Mapped[str] = mapped_column(String(100), index=True)
    partner: Mapped[str] = mapped_column(String(200))  # the follower's key: its name, else id
    version: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VictimCaseRow(Base):
    """A case opened by the person shown: found by the SHA-256 of its number, opened by a PIN
    of which only a slow hash (scrypt, salted per case) is kept. ``reference`` is the case's
    random secret (unrelated to the number) from which each of its hashes' source reference
    in the list is derived, a different one per hash (lists are shared)."""

    __tablename__ = "victim_cases"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    number_digest: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    pin_salt: Mapped[str] = mapped_column(String(64))
    pin_hash: Mapped[str] = mapped_column(String(128))
    under_18: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(8))
    list_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(Integer)  # wrong PINs in a row
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class VictimHashRow(Base):
    """One hash of a case (its signal's canonical form), and its withdrawal: when, and the
    list's version after it (what a follower must have applied to have honoured it)."""

    __tablename__ = "victim_hashes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("victim_cases.id"), index=True)
    signal: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class VictimFeedbackRow(Base):
    """A partner's outcome for a match on a victim list, in StopNCII's words (PendingReview,
    Blocked, NotBlocked): from hashguard's own review (``reference`` detection:N) or posted by
    a partner that reviews elsewhere (its own reference). The latest outcome per reference."""

    __tablename__ = "victim_feedback"
    __table_args__ = (
        UniqueConstraint(
            "partner", "reference", "list_name", "entry_id", name="uq_victim_feedback"
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    list_name: Mapped[str] = mapped_column(String(100), index=True)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    partner: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VictimReferralRow(Base):
    """An under-18 case referred to the hotline (a random referral id, counts and hashes;
    never an image nor the case number): an outbox, delivered with retries like the webhook
    calls."""

    __tablename__ = "victim_referrals"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("victim_cases.id"), index=True)
    payload: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)


# --- the hotline (issue 18): URL reports, what was fetched, assessed, traced and routed --------
# Nothing fetched is stored: fetches keep the time, URLs, status, type, size and hashes only.


class HotlineReportRow(Base):
    """One report: from the public (anonymous allowed; ``contact`` is the only personal data
    and carries its purpose and retain_until) or a partner hotline's referral (``source``
    partner:NAME, ``partner_reference`` its referral id: the same referral twice is one
    report). The reporter follows it by a status token of which only the SHA-256 is kept."""

    __tablename__ = "hotline_reports"
    __table_args__ = (
        UniqueConstraint("source", "partner_reference", name="uq_hotline_report_referral"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(120))  # public, or partner:NAME
    partner_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    seen_where: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purpose: Mapped[str] = mapped_column(String(32))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class HotlineCaseRow(Base):
    """One reported URL (normalised; ``url_key`` its SHA-256): every report of it joins this
    case. ``state`` is where the pipeline is; a claim (``lease_until``) lets one instance of
    several crawl it."""

    __tablename__ = "hotline_cases"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)


class HotlineCaseReportRow(Base):
    """Which reports named which case (a report names one or more URLs; a URL reported again
    joins its case)."""

    __tablename__ = "hotline_case_reports"
    __table_args__ = (PrimaryKeyConstraint("case_id", "report_id"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"))
    report_id: Mapped[int] = mapped_column(ForeignKey("hotline_reports.id"), index=True)


class HotlineFetchRow(Base):
    """One fetch by the crawler (the reported page or a medium on it): what a court or a hoster
    may ask about it, never its bytes."""

    __tablename__ = "hotline_fetches"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # page, image, video, other
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    hashes: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)


class HotlineItemRow(Base):
    """A medium of a case, by its hashes: triaged automatically (``assessment_id`` the
    assessment whose labels it took, or ``triage`` the known list that matched), queued for an
    analyst, or assessed."""

    __tablename__ = "hotline_items"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"), index=True)
    fetch_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_fetches.id"), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    hashes: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    assessment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    legality: Mapped[dict[str, Any]] = mapped_column(JSON)
    triage: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class HotlineAssessmentRow(Base):
    """An analyst's labels for an item, the legality derived from them per country, and (four
    eyes) the second analyst who agreed. Final assessments put the item's hashes on the
    hotline's illegal or assessed-not-illegal list (source reference assessment:ID)."""

    __tablename__ = "hotline_assessments"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("hotline_items.id"), index=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    legality: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # pending, final, disagreed
    first_by: Mapped[str] = mapped_column(String(200))
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    second_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    second_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    list_name: Mapped[str | None] = mapped_column(String(100), nullable=True)


class HotlineTraceRow(Base):
    """Where a case's URL was hosted when traced: the whole trace (DNS, addresses, networks,
    AS, country, CDN, hoster, the IP databases' dates) and the fields routing reads."""

    __tablename__ = "hotline_traces"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    country: Mapped[str | None] = mapped_column(String(8), nullable=True)
    hoster: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cdn: Mapped[bool] = mapped_column(Boolean)
    trace: Mapped[dict[str, Any]] = mapped_column(JSON)


class HotlineRouteRow(Base):
    """Where a case was sent and why (domestic, partner, international, none)."""

    __tablename__ = "hotline_routes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(200))
    actions: Mapped[list[Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)


class HotlineOutboxRow(Base):
    """What the hotline sends elsewhere (a referral to a partner hotline, a report to the police
    or the international endpoint): URLs, hashes, labels and the trace, never content; sent
    with retries like the webhook calls, under an idempotency key the same on every retry."""

    __tablename__ = "hotline_outbox"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hotline_cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # referral, police, international
    target: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)


MONITORED = ("kind", "reported_at", "hoster", "country", "state", "verified_at", "deadline_at",
             "disputed_at", "renotices", "escalations")  # fmt: skip


class TakedownNoticeRow(Base):
    """A notice to a hoster about a case's URLs (kind ``notice``), a notice to a CDN asking for
    the origin (``cdn``; its origin's notice names it as ``parent_id``) or a removal order an
    authority issued (``order``). Queued by routing or the order, composed and signed once
    (``document``: the XARF/DSA notice as sent), then driven by the scheduler: deadline,
    re-checks, re-notices, escalation, re-checks after removal. ``previous_id``: the removed
    notice whose content reappeared here. ``next_action_at``: when the scheduler looks again;
    ``lease_until``: one instance at a time."""

    __tablename__ = "takedown_notices"
    __table_args__ = (
        # what is due now, in order (the scheduler), without reading every open notice
        Index("ix_takedown_notices_next_action_at_state", "next_action_at", "state"),
        Index("ix_takedown_notices_state_deadline_at", "state", "deadline_at"),  # overdue now
        # the monitor reads only these columns: a covering index spares it the wide rows
        Index("ix_takedown_notices_monitor", *MONITORED),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_cases.id"), nullable=True,
                                                index=True)  # fmt: skip
    kind: Mapped[str] = mapped_column(String(16))  # notice, cdn, order
    parent_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    previous_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hoster: Mapped[str] = mapped_column(String(200), index=True)
    country: Mapped[str | None] = mapped_column(String(8), nullable=True)
    abuse_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    abuse_api: Mapped[str | None] = mapped_column(Text, nullable=True)
    cdn: Mapped[bool] = mapped_column(Boolean)
    urls: Mapped[list[Any]] = mapped_column(JSON)
    items: Mapped[list[Any]] = mapped_column(JSON)  # [{url, kind, hashes, labels}]
    legal_basis: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(200))
    issued_by: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), index=True)
    report_id: Mapped[str] = mapped_column(String(36), unique=True)  # the XARF report id
    document: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)  # fmt: skip
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disputed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    dispute_reason: Mapped[str] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # orders: confirmed, inability
    outcome_reason: Mapped[str] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    renotices: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    rechecks: Mapped[int] = mapped_column(Integer)  # re-checks done after a verified removal
    next_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                            nullable=True)  # fmt: skip
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)


class TakedownDeliveryRow(Base):
    """One message about a notice to one destination (an outbox, as ``store.outbox`` sends
    them): the notice, a re-notice, an escalation step, an order's reminder, or a takedown
    status to the referring hotline; by e-mail (``smtp``) or to an API (``api``), retried with
    backoff; ``reply`` keeps the start of an API's answer (a CDN names the origin there)."""

    __tablename__ = "takedown_deliveries"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("takedown_notices.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # a DeliveryPurpose: notice, renotice, ...
    step: Mapped[str] = mapped_column(String(64))  # the escalation step's name, else ""
    channel: Mapped[str] = mapped_column(String(8))  # smtp, api
    target: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)
    reply: Mapped[str] = mapped_column(Text)


class TakedownCheckRow(Base):
    """One re-fetch of a notice's URL and what it served, by hash: the evidence that content
    is gone (``gone``: 404/410 or the host gone; ``changed``: other content) or still there
    (``present``), or that the check could not tell (``inconclusive``)."""

    __tablename__ = "takedown_checks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("takedown_notices.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purpose: Mapped[str] = mapped_column(String(16))  # claimed, deadline, renotice, recheck
    outcome: Mapped[str] = mapped_column(String(16))  # gone, changed, present, inconclusive
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    hashes: Mapped[list[Any]] = mapped_column(JSON)  # what the URL served, by signal


class TakedownEventRow(Base):
    """A notice's timeline: every step, its time and who took it (the monitor counts these)."""

    __tablename__ = "takedown_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("takedown_notices.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class TakedownOutcomeRow(Base):
    """A takedown outcome another organisation told us: a partner hotline about a case this
    hotline referred to it, or an abuse desk's XARF report (``content_removed``)."""

    __tablename__ = "takedown_outcomes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_cases.id"), nullable=True,
                                                index=True)  # fmt: skip
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- exchanges (issue 20): lists fetched from NCMEC, StopNCII, ThreatExchange, other hashguards -
# An exchange writes into its list (made with its name; a renamed list keeps its exchange, by
# id). Credentials are never stored in the clear:
# ``exchange_credentials`` holds AES-GCM ciphertexts under a key derived from the server's secret.


class ExchangeRow(Base):
    """A configured exchange: its API (a plug-in name), its settings, and where its fetching
    stands: the checkpoint (the plug-in's resume point, JSON), the last fetch's times, counts
    and error, the failures in a row (backoff), and the lease one instance of several holds
    while it fetches: until when, and which process holds it (``lease_holder``: its id, start,
    boot and PID namespace, and host, as ``exchanges.holder`` writes it), so that a fetch on the
    same machine takes over at once the lease of one that died."""

    __tablename__ = "exchanges"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    api: Mapped[str] = mapped_column(String(32))
    list_id: Mapped[int] = mapped_column(Id, ForeignKey("hash_lists.id"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    checkpoint_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    fetch_started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    fetch_completed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    fetch_succeeded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    up_to_date: Mapped[bool] = mapped_column(Boolean)
    last_error: Mapped[str] = mapped_column(Text)
    last_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    fetched_items: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer)
    next_fetch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_holder: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ExchangeCredentialRow(Base):
    """Credentials of an exchange API (``api:NAME``, as HMA keeps them) or of one exchange
    (``exchange:NAME``): the AES-GCM ciphertext (nonce included) and the id of the key that
    sealed it (derived from the server's secret file), so a rotation finds what to re-seal."""

    __tablename__ = "exchange_credentials"

    scope: Mapped[str] = mapped_column(String(140), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExchangeQuarantineRow(Base):
    """A record (or a whole page) of an exchange that could not be applied: where it was
    (``position``: page and record), why, and an excerpt of it (bounded; hashes, never media).
    The fetch went on past it."""

    __tablename__ = "exchange_quarantine"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    exchange_id: Mapped[int] = mapped_column(
        Id, ForeignKey("exchanges.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    position: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)


class ExchangeFeedbackRow(Base):
    """Feedback owed to an exchange about one of its hashes (StopNCII: Blocked, NotBlocked,
    PendingReview; NCMEC: affirmative or negative): an outbox, sent with retries."""

    __tablename__ = "exchange_feedback"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    exchange_id: Mapped[int] = mapped_column(
        Id, ForeignKey("exchanges.id", ondelete="CASCADE"), index=True
    )
    signal: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)  # the exchange's own id for it, when it has one
    feedback: Mapped[str] = mapped_column(String(32))
    tags: Mapped[list[Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str] = mapped_column(Text)


class BankContentRow(Base):
    """An HMA bank content item: one submission to a list through HMA's routes (each add makes
    a new one, as HMA does). ``signals``: its values by HMA's signal type (``{"pdq": ...}``),
    submitted with ``organisation`` (who added it) as their source. Its entries are found by
    the reference ``hma:ID`` in ``entry_references``; deleting it withdraws that reference
    alone, so the value keeps matching while another content item holds it, and erases its
    ``note`` and ``content_metadata`` (HMA's metadata, as HMA validates them).
    ``disable_until_ts`` as HMA's PUT sets it: 1 enabled, 0 disabled, else disabled until that
    Unix time (a time passed is stored as 1 again once the item's values are submitted again:
    ``store.bank_contents``)."""

    __tablename__ = "bank_contents"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(
        Id, ForeignKey("hash_lists.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disable_until_ts: Mapped[int] = mapped_column(BigInteger)
    signals: Mapped[dict[str, str]] = mapped_column(JSON)
    organisation: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
