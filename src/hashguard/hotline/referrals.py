"""Referrals received from partner hotlines (``POST /v1/hotline/referrals``): a case hosted in
this hotline's country, assessed elsewhere.

A referral becomes a report (source ``partner:NAME``, its referral id as the partner's
reference: the same referral sent twice is one report, nothing doubled), a case for its URL
(joined when the URL was reported here already: a case routed before is routed again for
the referred items once they are decided), and an item per referred medium, by its
hashes: nothing is crawled (the partner fetched it; a fetch record says "referred by NAME" with
the time of the partner's trace). The items are triaged at once: an image this hotline assessed
before is decided without anyone viewing it here either; the rest wait for this hotline's
analysts (the partner's labels are not taken as this hotline's assessment).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hashguard.hotline import intake, urls
from hashguard.hotline.assessment import mark_assessed
from hashguard.hotline.model import CaseState, ItemState, partner_source
from hashguard.hotline.partners import Referral
from hashguard.hotline.triage import Triage
from hashguard.net.fetch import Network
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineFetchRow,
    HotlineItemRow,
    HotlineReportRow,
    HotlineTraceRow,
)

REFERRED: Final = "referred"  # a fetch record's outcome: not fetched here, the partner did


@dataclass(frozen=True, slots=True)
class Received:
    """A referral taken in: its report's reference, whether this call made it (False: the same
    referral was received before), and the state of each referred item now, in their order."""

    reference: str
    new: bool
    states: tuple[ItemState, ...]


def _now() -> datetime:
    return datetime.now(UTC)


class Referrals:
    def __init__(
        self,
        engine: Engine,
        triage: Triage,
        *,
        retain: timedelta,
        networks: Sequence[Network] = (),
        clock: Any = _now,
    ) -> None:
        """``retain``: how long the report is kept (as a public report without contact);
        ``networks``: private networks a referred URL may be on (tests, intranets)."""
        self.engine = engine
        self.triage = triage
        self.retain = retain
        self.networks = tuple(networks)
        self.clock = clock

    def receive(self, partner: str, referral: Referral) -> Received:
        """Take in ``referral`` (checked by ``partners.check_referral``) from the partner
        hotline ``partner``: its report (the same for the same referral again) and its items.
        Raises ``urls.InvalidUrl`` for a URL this hotline would not take in a report."""
        source = partner_source(partner)
        known = self._known(source, referral.referral)
        if known is not None:
            return self._received(known, referral, new=False)
        reported = urls.check(referral.url, self.networks)
        verdicts = [self.triage.decide(dict(item.hashes)) for item in referral.items]
        traced_at = _time(referral.trace.get("at")) or self.clock()
        now = self.clock()
        try:
            with self.engine.begin() as connection:
                receipt = intake.record(
                    connection, [reported], source=source,
                    seen_where=f"referred by {partner} ({referral.hotline}, {referral.country})",
                    description=referral.reason, contact=None, language="en", now=now,
                    retain=self.retain, partner_reference=referral.referral,
                )  # fmt: skip
                [case_id] = receipt.cases
                queued = self._items(connection, case_id, partner, referral, verdicts,
                                     traced_at, now)  # fmt: skip
                self._trace(connection, case_id, referral, traced_at)
                # No crawl: the case is triaged by the referral's hashes (a case already
                # assessed, or closed and made new by the report, waits for its new items).
                cases = HotlineCaseRow.__table__
                waiting = [CaseState.NEW.value, CaseState.ASSESSED.value]
                connection.execute(
                    update(HotlineCaseRow)
                    .where(cases.c.id == case_id, cases.c.state.in_(waiting))
                    .values(state=CaseState.TRIAGED.value, updated_at=now, lease_until=None)
                )  # fmt: skip
        except IntegrityError:  # the same referral, received at the same moment: one report
            known = self._known(source, referral.referral)
            if known is None:
                raise
            return self._received(known, referral, new=False)
        if queued:  # an assessment made since they were matched re-triaged the queue without them
            self.triage.queued(queued)
        mark_assessed(self.engine, case_id)
        return self._received((receipt.reference, case_id), referral, new=True)

    def _known(self, source: str, reference: str) -> tuple[str, int] | None:
        """The reference and case of the report of the referral ``reference`` from ``source``."""
        reports, links = HotlineReportRow.__table__, HotlineCaseReportRow.__table__
        with self.engine.connect() as connection:
            found = connection.execute(
                select(reports.c.reference, links.c.case_id)
                .join(links, links.c.report_id == reports.c.id)
                .where(reports.c.source == source, reports.c.partner_reference == reference)
            ).first()  # fmt: skip
        return None if found is None else (str(found.reference), int(found.case_id))

    def _received(self, known: tuple[str, int], referral: Referral, new: bool) -> Received:
        """The referral's items as they stand now: those of its case taken from a referral,
        by their URLs (a URL referred twice in one referral is one item each time)."""
        reference, case_id = known
        items, fetches = HotlineItemRow.__table__, HotlineFetchRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(items.c.url, items.c.state)
                .join(fetches, fetches.c.id == items.c.fetch_id)
                .where(items.c.case_id == case_id, fetches.c.outcome == REFERRED)
                .order_by(items.c.id.desc())
            ).all()  # fmt: skip
        latest = {row.url: ItemState(row.state) for row in rows}  # the oldest item wins
        states = tuple(latest[item.url] for item in referral.items if item.url in latest)
        return Received(reference, new, states)

    def _items(
        self,
        connection: Connection,
        case_id: int,
        partner: str,
        referral: Referral,
        verdicts: Sequence[Any],
        traced_at: datetime,
        now: datetime,
    ) -> list[int]:
        """The referral's items, recorded with their verdicts; the ids of those queued."""
        queued = []
        for item, verdict in zip(referral.items, verdicts, strict=True):
            kind = "video" if "vpdq" in item.hashes else "image"
            fetch_id = int(connection.execute(insert(HotlineFetchRow).values(
                case_id=case_id, url=item.url, final_url="", at=traced_at, status=None,
                content_type="", size=0, kind=kind, outcome=REFERRED,
                detail=f"referred by {partner}: not fetched here", hashes=dict(item.hashes),
                quality=None,
            )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
            item_id = int(connection.execute(insert(HotlineItemRow).values(
                case_id=case_id, fetch_id=fetch_id, url=item.url, kind=kind,
                hashes=dict(item.hashes), quality=None, state=ItemState.QUEUED.value,
                assessment_id=None, labels={}, legality={}, triage={}, created_at=now,
                decided_at=None,
            )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
            self.triage.record(connection, item_id, verdict, now)
            if verdict.state is ItemState.QUEUED:
                queued.append(item_id)
        return queued

    @staticmethod
    def _trace(
        connection: Connection, case_id: int, referral: Referral, traced_at: datetime
    ) -> None:
        """The partner's trace, kept as it sent it (routing here traces again)."""
        trace = dict(referral.trace)
        hoster = trace.get("hoster")
        connection.execute(insert(HotlineTraceRow).values(
            case_id=case_id, at=traced_at, country=_text(trace.get("country"), 8),
            hoster=_text(hoster.get("name"), 200) if isinstance(hoster, dict) else None,
            cdn=trace.get("cdn") is True, trace=trace,
        ))  # fmt: skip


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):  # OverflowError: a zone past year 1 or 9999 in UTC
        return None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None
