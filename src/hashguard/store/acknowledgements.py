"""Followers' receipts: the list version a follower (``hashguard lists follow``) says it has
applied, and when. A row is kept for each version a follower reaches, so whether, and since
when, it had applied a given change (a withdrawal) can be read back."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from hashguard.store.tables import ListAcknowledgementRow, utc


@dataclass(frozen=True, slots=True)
class Receipt:
    partner: str
    version: int
    at: datetime


class Acknowledgements:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, list_name: str, partner: str, version: int) -> Receipt:
        """``partner`` has applied ``list_name`` up to ``version``: kept when it is further than
        the partner said before; the partner's latest receipt either way."""
        table = ListAcknowledgementRow.__table__
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            latest = connection.execute(
                select(func.max(table.c.version)).where(
                    table.c.list_name == list_name, table.c.partner == partner
                )
            ).scalar()
            if latest is not None and latest >= version:
                at = connection.execute(
                    select(func.min(table.c.at)).where(
                        table.c.list_name == list_name, table.c.partner == partner,
                        table.c.version == latest,
                    )
                ).scalar_one()  # fmt: skip
                return Receipt(partner, int(latest), utc(at))
            connection.execute(
                insert(ListAcknowledgementRow).values(
                    list_name=list_name, partner=partner, version=version, at=now
                )
            )
        return Receipt(partner, version, now)

    def receipts(self, list_name: str) -> list[Receipt]:
        """Every receipt of ``list_name``, oldest first."""
        table = ListAcknowledgementRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.partner, table.c.version, table.c.at)
                .where(table.c.list_name == list_name)
                .order_by(table.c.at, table.c.id)
            ).all()
        return [Receipt(partner, int(version), utc(at)) for partner, version, at in rows]


@dataclass(frozen=True, slots=True)
class Applied:
    """Of the followers that had acknowledged the list before a change (``of``), those that
    have since applied it (``by``: partner -> when it said so first)."""

    of: int
    by: dict[str, datetime]


def applied(receipts: list[Receipt], version: int, made_at: datetime) -> Applied:
    """Who of ``receipts``' partners had acknowledged the list by ``made_at``, and which of them
    acknowledged ``version`` or later, first when."""
    before = {r.partner for r in receipts if r.at <= made_at}
    reached: dict[str, datetime] = {}
    for receipt in receipts:  # oldest first: the first receipt at or past the version
        if receipt.partner in before and receipt.version >= version:
            reached.setdefault(receipt.partner, receipt.at)
    return Applied(len(before), reached)
