"""Detections: a match (or a flag) on one item of a service, through human review.

Nothing permanent happens here before a reviewer confirms: opening a detection may at most
quarantine the item (reversibly, where the legal profile allows), and only a profile that lets
exact matches on a vetted list skip review (off by default) confirms without a person. On a list
with four eyes, two different reviewers must agree. A false positive undoes everything at once:
actions reversed, the list entry contested (negative feedback to its owner), the error counted
for its technology, and the detection's data deleted.
"""

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashguard.lists.model import Category, ChangeKind, EntryStatus
from hashguard.matching import Match
from hashguard.matching.query import Hashed, Query
from hashguard.review import actions
from hashguard.review.model import (
    CONFIRMED_STATES,
    OPEN,
    ActionKind,
    Decision,
    Detection,
    NotFound,
    ReviewError,
    ScanningForbidden,
    Source,
    State,
    Vote,
)
from hashguard.review.services import Service, ServiceStore
from hashguard.signals import registry
from hashguard.store import audit
from hashguard.store.counts import bump
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore
from hashguard.store.tables import (
    ActionRow,
    ComplaintRow,
    DetectionRow,
    MatchRow,
    NoticeRow,
    ReportRow,
    ReviewVoteRow,
    WebhookRow,
    utc,
)

PURPOSE = "review"  # what a detection is kept for: review, then action, reports and redress
SCRUBBED_KEPT = timedelta(days=30)  # an emptied false positive, for its complainant to see


@dataclass(frozen=True)
class Evidence:
    """One match as a detection keeps it, with what was measured of both hashes when known:
    the entry's stability, the query's quality and stability (0-100 each)."""

    list: str
    entry: int
    signal: str
    distance: float
    labels: tuple[str, ...] = ()
    value: str = ""  # the listed hash
    variant: str = "original"  # the query variant that matched ("rotate90", "trim-lenient")
    stability: int | None = None  # the entry's, when it was hashed from media
    query_quality: int | None = None
    query_stability: int | None = None

    @staticmethod
    def of(match: Match, query: Hashed | None = None) -> "Evidence":
        """The evidence of ``match`` (with its entry's stability); ``query``, the item's hash:
        the quality and stability of the variant that matched, when it has them."""
        quality = query_stability = None
        if query is not None:
            value = dict(query.named()).get(match.variant, query.value)
            quality = query.signal.quality(value)
            query_stability = query.signal.stability(value)
        return Evidence(match.list, match.entry, match.signal, float(match.distance),
                        tuple(sorted(match.labels)), match.value, match.variant,
                        match.stability, quality, query_stability)  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        shown = {"list": self.list, "entry": self.entry, "signal": self.signal,
                 "distance": self.distance, "labels": list(self.labels),
                 "value": self.value}  # fmt: skip
        if self.variant != "original":
            shown["variant"] = self.variant
        for name in ("stability", "query_quality", "query_stability"):
            measured = getattr(self, name)
            if measured is not None:
                shown[name] = measured
        return shown


class Observer(Protocol):
    """Told of each detection opened or decided, in the transaction that does it (a workflow
    above review that keeps its own account of outcomes: hashguard.victims' feedback)."""

    def detection_changed(
        self,
        connection: Connection,
        ident: int,
        service_id: int,
        evidence: Sequence[Mapping[str, Any]],
        state: State,
    ) -> None: ...


class Review:
    """Detections of the services in one database."""

    def __init__(
        self, engine: Engine, lists: ListStore | None = None, observers: Sequence[Observer] = ()
    ) -> None:
        self.engine = engine
        self.lists = lists or ListStore(engine)
        self.services = ServiceStore(engine)
        self.observers = list(observers)

    def _changed(self, connection: Connection, row: Mapping[str, Any], state: State) -> None:
        for observer in self.observers:
            observer.detection_changed(
                connection, int(row["id"]), int(row["service_id"]), list(row["evidence"]), state
            )

    # --- opening ---------------------------------------------------------------------------

    @staticmethod
    def admit(service: Service) -> None:
        """Whether ``service``'s uploads may be checked at all; raises ScanningForbidden for an
        end-to-end-encrypted service whose legal profile forbids scanning it."""
        if service.e2ee and not service.profile.scan_e2ee:
            raise ScanningForbidden(
                f"service {service.name} is end-to-end encrypted: its legal profile "
                f"{service.legal_profile} forbids scanning it"
            )

    def open_matches(
        self,
        service: Service,
        uploads: Sequence[tuple[str, Sequence[Match], Mapping[str, Any]]],
        queries: Sequence[Query] | None = None,
    ) -> list[Detection]:
        """A detection for human review of each matched upload of ``service``'s check, given as
        (content_ref, its matches, the uploader: account_ref, IP, time, hashes as given);
        uploads without a match or a content_ref open none. ``queries``: each upload's hashes
        (their quality and stability go into the evidence), in the order of ``uploads``."""
        opened = []
        for number, (content_ref, matches, uploader) in enumerate(uploads):
            if not matches or not content_ref:
                continue
            subject = dict(uploader)
            account = str(subject.pop("account_ref", ""))
            query = queries[number] if queries is not None else None
            evidence = [Evidence.of(m, query.get(m.signal) if query else None) for m in matches]
            opened.append(self.open(service, content_ref, evidence, account, subject))
        return opened

    def open(
        self,
        service: Service,
        content_ref: str,
        evidence: Sequence[Evidence],
        account_ref: str = "",
        subject: Mapping[str, Any] | None = None,
        source: Source = Source.MATCH,
        technology: str | None = None,
        actor: str = "",
    ) -> Detection:
        """The detection of ``content_ref`` on ``service`` (the one open already, if any).
        Raises ScanningForbidden for an end-to-end-encrypted service its profile may not
        scan, ReviewError for a classifier flag under a known-only profile or a match without
        evidence."""
        self.admit(service)
        profile = service.profile
        if source is Source.CLASSIFIER and profile.known_only:
            raise ReviewError(
                f"the legal profile {profile.name} allows known material only: classifier "
                "flags are not accepted"
            )
        if source is Source.MATCH and not evidence:
            raise ReviewError("a match detection needs at least one match")
        if not content_ref or len(content_ref) > 500:
            raise ReviewError("content_ref: expected 1-500 characters")
        best = min(evidence, key=lambda e: (e.distance, e.list, e.entry)) if evidence else None
        technology = technology or (best.signal if best else source.value)
        exact = best is not None and registry.is_exact(best.signal) and best.distance == 0
        confirmed = exact and profile.exact_skips_review and self._vetted(best)
        now = datetime.now(UTC)
        values = {
            "service_id": service.id, "content_ref": content_ref, "account_ref": account_ref,
            "source": source.value, "technology": technology,
            "list_name": best.list if best else "", "entry_id": best.entry if best else None,
            "distance": best.distance if best else None, "exact": exact,
            "evidence": [e.as_json() for e in evidence], "subject": dict(subject or {}),
            "state": (State.CONFIRMED if confirmed else State.PENDING).value,
            "detected_at": now, "decided_at": now if confirmed else None,
            "decision_reason": "exact match on a vetted list (legal profile)" if confirmed else "",
            "quarantined": False, "purpose": PURPOSE,
            "retain_until": now + timedelta(days=profile.retention_days),
            "held_until": None, "hold_reason": "",
        }  # fmt: skip
        try:
            with self.engine.begin() as connection:
                key = connection.execute(insert(DetectionRow).values(**values))
                ident = int(key.inserted_primary_key[0])  # type: ignore[index]
                row = actions.locked(connection, ident)
                self._changed(connection, row, State(str(values["state"])))
                if profile.quarantine and source is Source.MATCH:  # flags never act
                    actions.record(connection, row, ActionKind.QUARANTINE, "hashguard",
                                   "held until a reviewer decides")  # fmt: skip
                bump(connection, now, "detections", technology)
                bump(connection, now, "detections_by_source", source.value)
                if confirmed:
                    bump(connection, now, "confirmed", technology)
                audit.append(connection, actor or "hashguard", "detection.open",
                             f"detection:{ident}",
                             {"service": service.name, "technology": technology,
                              "source": source.value, "state": values["state"]})  # fmt: skip
        except IntegrityError:
            return self._by_content(service, content_ref)
        return self.get(ident)

    def _vetted(self, evidence: Evidence | None) -> bool:
        """Whether the list is vetted known material (not a test or victim list: a victim's
        hashes are unverified, nobody has seen the images, so their matches always go to a
        person)."""
        if evidence is None:
            return False
        try:
            return self.lists.get(evidence.list).category is Category.KNOWN_CSAM
        except ListError:
            return False

    # --- reading ---------------------------------------------------------------------------

    def get(self, ident: int) -> Detection:
        """Raises NotFound (also for a purged detection). A plain read: what decides locks."""
        table = DetectionRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == ident)).one_or_none()
        if row is None:
            raise NotFound(f"no detection number {ident} (it may have been purged)")
        return self._detection(row._mapping)

    def visible(self, ident: int, lists: Sequence[str]) -> Detection:
        """The detection as a key limited to ``lists`` may see it (all when empty): one of its
        matches must be on those lists, and only those matches are shown. Raises NotFound."""
        found = self.get(ident)
        if not lists:
            return found
        mine = [m for m in found.evidence if m.get("list") in lists]
        if not mine and found.list_name not in lists:
            raise NotFound(f"no detection number {ident}")
        return dataclasses.replace(found, evidence=mine)

    def queue(self, lists: Sequence[str] | None = None, limit: int = 50) -> list[Detection]:
        """Open detections, oldest first; only those on ``lists`` when given (flags and
        classifier detections, which have no list, only when ``lists`` is None)."""
        return self.find(OPEN, lists, limit=limit)

    def find(
        self,
        states: Collection[State],
        lists: Sequence[str] | None = None,
        list_name: str = "",
        service: str = "",
        limit: int = 50,
    ) -> list[Detection]:
        """Detections in ``states``, oldest first, as ``queue`` limits them to ``lists``;
        only those on the list ``list_name`` and of the service ``service`` when given.
        Raises ServiceNotFound for a service that does not exist."""
        table = DetectionRow.__table__
        query = (
            self._filtered(select(table), lists, list_name, service)
            .where(table.c.state.in_([s.value for s in states]))
            .order_by(table.c.detected_at, table.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [self._detection(row._mapping) for row in connection.execute(query)]

    def counts(
        self, lists: Sequence[str] | None = None, list_name: str = "", service: str = ""
    ) -> dict[State, int]:
        """How many detections are in each state, filtered as ``find`` filters them."""
        table = DetectionRow.__table__
        query = self._filtered(
            select(table.c.state, func.count()), lists, list_name, service
        ).group_by(table.c.state)
        with self.engine.connect() as connection:
            found = {State(state): int(count) for state, count in connection.execute(query)}
        return {state: found.get(state, 0) for state in State}

    def _filtered(
        self, query: Select[Any], lists: Sequence[str] | None, list_name: str, service: str
    ) -> Select[Any]:
        table = DetectionRow.__table__
        if lists is not None:
            query = query.where(table.c.list.in_(list(lists)))
        if list_name:
            query = query.where(table.c.list == list_name)
        if service:
            query = query.where(table.c.service_id == self.services.get(service).id)
        return query

    def votes(self, ident: int) -> list[Vote]:
        with self.engine.connect() as connection:
            return _votes(connection, ident)

    def four_eyes(self, detection: Detection) -> bool:
        """Whether two reviewers must agree: the list's policy says so. A list that cannot be
        found (removed, or its name not what the detection kept) asks for two: one reviewer
        alone must never decide what a four-eyes list would have had two decide."""
        if not detection.list_name:
            return False
        try:
            return self.lists.get(detection.list_name).policy.four_eyes
        except ListError:
            return True

    # --- deciding --------------------------------------------------------------------------

    def claim(self, ident: int, reviewer: str) -> Detection:
        """A reviewer opens the detection: pending -> in review (no effect otherwise)."""
        with self.engine.begin() as connection:
            row = actions.locked(connection, ident)
            if row["state"] == State.PENDING.value:
                connection.execute(
                    update(DetectionRow)
                    .where(DetectionRow.__table__.c.id == ident)
                    .values(state=State.IN_REVIEW.value)
                )
                audit.append(connection, reviewer, "detection.claim", f"detection:{ident}")
        return self.get(ident)

    def decide(self, ident: int, reviewer: str, decision: Decision, reason: str) -> Detection:
        """Record ``reviewer``'s decision; the detection after it (a false positive comes back
        emptied: its data is purged). With four eyes, the decision takes effect once a
        second reviewer agrees. Raises ReviewError for a decided detection, a missing reason,
        or a reviewer voting twice."""
        if not reason.strip():
            raise ReviewError("a decision needs a reason")
        detection = self.get(ident)
        four_eyes = self.four_eyes(detection)
        with self.engine.begin() as connection:
            row = actions.locked(connection, ident)
            if State(row["state"]) not in OPEN:
                raise ReviewError(f"detection {ident} is {row['state']}: decided already")
            earlier = _votes(connection, ident)
            if four_eyes and any(v.reviewer == reviewer for v in earlier):
                raise ReviewError(
                    f"detection {ident}: {reviewer} has decided already; four eyes need "
                    "another reviewer"
                )
            now = datetime.now(UTC)
            connection.execute(
                insert(ReviewVoteRow).values(detection_id=ident, reviewer=reviewer,
                                             decision=decision.value, reason=reason, at=now)
            )  # fmt: skip
            audit.append(connection, reviewer, "detection.vote", f"detection:{ident}",
                         {"decision": decision.value, "reason": reason})  # fmt: skip
            agreeing = {v.reviewer for v in earlier if v.decision is decision} | {reviewer}
            if four_eyes and len(agreeing) < 2:
                connection.execute(
                    update(DetectionRow)
                    .where(DetectionRow.__table__.c.id == ident)
                    .values(state=State.IN_REVIEW.value)
                )
                return self._detection(actions.locked(connection, ident))
            if decision is Decision.FALSE_POSITIVE:
                self._changed(connection, row, State.FALSE_POSITIVE)  # before it is emptied
                undone = _undo(connection, row, reviewer, reason, now)
            else:
                self._changed(connection, row, State.CONFIRMED)
                connection.execute(
                    update(DetectionRow)
                    .where(DetectionRow.__table__.c.id == ident)
                    .values(state=State.CONFIRMED.value, decided_at=now, decision_reason=reason)
                )
                bump(connection, now, "confirmed", row["technology"])
                audit.append(connection, reviewer, "detection.confirm", f"detection:{ident}",
                             {"reviewers": sorted(agreeing)})  # fmt: skip
                undone = None
        if undone is not None:
            self._contest_all(undone, ident, reason)
        return self.get(ident)

    def overturn(self, ident: int, actor: str, reason: str) -> None:
        """A confirmed detection found wrong after all (a complaint upheld): undone like any
        false positive. Raises NotFound."""
        with self.engine.begin() as connection:
            row = actions.locked(connection, ident)
            if row["state"] == State.FALSE_POSITIVE.value:
                raise ReviewError(f"detection {ident} is a false positive already")
            self._changed(connection, row, State.FALSE_POSITIVE)
            undone = _undo(connection, row, actor, reason, datetime.now(UTC))
        self._contest_all(undone, ident, reason)

    def mark(self, ident: int, state: State, actor: str) -> Detection:
        """confirmed -> reported (a provider report was made) or -> closed."""
        allowed = {State.REPORTED: {State.CONFIRMED}, State.CLOSED: {State.CONFIRMED,
                                                                       State.REPORTED}}  # fmt: skip
        with self.engine.begin() as connection:
            row = actions.locked(connection, ident)
            if State(row["state"]) not in allowed.get(state, set()):
                raise ReviewError(f"detection {ident} is {row['state']}: cannot become {state}")
            connection.execute(
                update(DetectionRow)
                .where(DetectionRow.__table__.c.id == ident)
                .values(state=state.value)
            )
            audit.append(connection, actor, f"detection.{state.value}", f"detection:{ident}")
        return self.get(ident)

    def hold(self, ident: int, until: datetime, reason: str, actor: str) -> Detection:
        """A legal hold: the detection is kept until ``until`` even past its retention."""
        if not reason.strip():
            raise ReviewError("a legal hold needs a reason (an authority's request, a case)")
        if until.tzinfo is None:
            raise ReviewError("a hold's end needs a time zone")
        until = until.astimezone(UTC)
        with self.engine.begin() as connection:
            actions.locked(connection, ident)
            connection.execute(
                update(DetectionRow)
                .where(DetectionRow.__table__.c.id == ident)
                .values(held_until=until, hold_reason=reason)
            )
            audit.append(connection, actor, "detection.hold", f"detection:{ident}",
                         {"until": until.isoformat(), "reason": reason})  # fmt: skip
        return self.get(ident)

    # --- undoing ---------------------------------------------------------------------------

    def _contest_all(self, evidence: Sequence[Mapping[str, Any]], ident: int, reason: str) -> None:
        for match in evidence:
            self._contest(match, ident, reason)

    def _contest(self, match: Mapping[str, Any], ident: int, reason: str) -> bool:
        """Negative feedback to the list's owner: the entry becomes contested (not matched
        until its owner resolves it). False if it is gone or contested already."""
        try:
            entry = self.lists.entry_by_id(match["list"], int(match["entry"]))
            if entry.status is not EntryStatus.ACTIVE:
                return False
            # The owner should know when the entry matched a variant of the upload (rotated,
            # trimmed): the false positive may lie in the variant rather than the entry.
            variant = match.get("variant")
            how = f", matched by the upload's {variant} variant" if variant else ""
            self.lists.change(match["list"], ChangeKind.CONTEST, entry.signal, entry.value,
                              reason=f"false positive (detection {ident}{how}): {reason}",
                              actor="hashguard review")  # fmt: skip
        except ListError:
            return False
        return True

    # --- rows ------------------------------------------------------------------------------

    def _by_content(self, service: Service, content_ref: str) -> Detection:
        table = DetectionRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.service_id == service.id,
                                    table.c.content_ref == content_ref)
            ).one()  # fmt: skip
        return self._detection(row._mapping)

    def _detection(self, r: Any) -> Detection:
        service = self.services.by_id(r["service_id"])
        return Detection(
            r["id"], service.name, r["content_ref"], r["account_ref"], Source(r["source"]),
            r["technology"], r["list"], r["entry_id"], r["distance"], bool(r["exact"]),
            list(r["evidence"]), dict(r["subject"]), State(r["state"]), utc(r["detected_at"]),
            utc(r["decided_at"]) if r["decided_at"] else None, r["decision_reason"],
            bool(r["quarantined"]), r["purpose"], utc(r["retain_until"]),
            utc(r["held_until"]) if r["held_until"] else None, r["hold_reason"],
        )  # fmt: skip


def _undo(
    connection: Connection, row: Mapping[str, Any], actor: str, reason: str, now: datetime
) -> list[Mapping[str, Any]]:
    """Reverse every action, count the error and purge the detection's data: what was matched
    and whose it was, its entries in the match log, reports not sent (a sent report keeps only
    its receipt), and delivered webhook calls. Returns the matches whose entries are to be
    contested (once this transaction commits: the list store writes on its own). The emptied
    detection stays as a false positive for SCRUBBED_KEPT, so a complainant can see the
    outcome; then the purge deletes it."""
    ident = row["id"]
    evidence = list(row["evidence"])
    actions.reverse_all(connection, row, actor, f"false positive: {reason}")
    if State(row["state"]) in CONFIRMED_STATES:  # overturned: no longer a confirmed case
        bump(connection, now, "confirmed", row["technology"], -1)
    matches = MatchRow.__table__
    for match in evidence:
        connection.execute(delete(MatchRow).where(
            matches.c.content_ref == row["content_ref"], matches.c.list == match["list"],
            matches.c.entry_id == match["entry"]))  # fmt: skip
    reports = ReportRow.__table__
    connection.execute(delete(ReportRow).where(reports.c.detection_id == ident,
                                               reports.c.state != "submitted"))  # fmt: skip
    purged = {"document": "", "last_error": "false positive: document purged"}
    connection.execute(update(ReportRow).where(reports.c.detection_id == ident).values(purged))
    outbox = WebhookRow.__table__
    connection.execute(
        update(WebhookRow)
        .where(outbox.c.detection_id == ident, outbox.c.delivered_at.is_not(None))
        .values(payload='{"purged": "false positive"}')
    )
    connection.execute(
        update(DetectionRow).where(DetectionRow.__table__.c.id == ident).values(
            state=State.FALSE_POSITIVE.value, decided_at=now, decision_reason=reason,
            content_ref=f"purged:{ident}", account_ref="", subject={}, evidence=[],
            entry_id=None, quarantined=False, retain_until=now + SCRUBBED_KEPT,
            held_until=None, hold_reason="",
        )
    )  # fmt: skip
    bump(connection, now, "false_positives", row["technology"])
    audit.append(connection, actor, "detection.false_positive", f"detection:{ident}",
                 {"technology": row["technology"],
                  "contest": [f"{m['list']}:{m['entry']}" for m in evidence],
                  # what was matched, without whose it was: the desk keeps showing it
                  "evidence": [{k: m.get(k) for k in ("list", "entry", "signal", "distance")}
                               for m in evidence]})  # fmt: skip
    return evidence


def delete_detection(connection: Connection, ident: int) -> None:
    """Delete a detection and everything kept with it (votes, actions, notices, complaints).
    Webhook calls stay until delivered and kept for their receipt: they tell the service to
    restore what was acted on."""
    for table, column in ((ReportRow, "detection_id"), (ComplaintRow, "detection_id"),
                          (NoticeRow, "detection_id"),
                          (ActionRow, "detection_id"), (ReviewVoteRow, "detection_id"),
                          (DetectionRow, "id")):  # fmt: skip
        connection.execute(delete(table).where(getattr(table, column) == ident))


def _votes(connection: Connection, ident: int) -> list[Vote]:
    table = ReviewVoteRow.__table__
    rows = connection.execute(
        select(table).where(table.c.detection_id == ident).order_by(table.c.id)
    ).all()
    return [Vote(r.reviewer, Decision(r.decision), r.reason, utc(r.at)) for r in rows]
