"""Takedown notices for tests, stored as hotline routing (or an order) leaves them: a row of
``takedown_notices`` with URLs and items (generated hashes, labels in the built-in vocabulary),
never content."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from hashguard.store.tables import TakedownNoticeRow

from support.hotline_items import hashes_of
from support.media import png

LABELS = {"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}


def item(url: str, seed: int = 0, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An item as routing stores it: the hashes of a generated image, and its labels."""
    return {"url": url, "kind": "image", "hashes": hashes_of(png(seed, 64, 64)),
            "labels": dict(labels if labels is not None else LABELS)}  # fmt: skip


def stored_notice(engine: Engine, **values: Any) -> Any:
    """A composed-to-be notice (``deadline_at`` set) to the hoster "Files BV"; ``values`` replace
    any column. The stored row, read back (SQLite gives its times without zone)."""
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    url = "https://files.example/a/1.jpg"
    row: dict[str, Any] = {
        "case_id": None, "kind": "notice", "parent_id": None, "previous_id": None,
        "hoster": "Files BV", "country": "NL", "abuse_email": "abuse@files.example",
        "abuse_api": None, "cdn": False, "urls": [url, "https://files.example/a/"],
        "items": [item(url)], "legal_basis": "", "reference": "case-1", "issued_by": "hotline",
        "state": "queued", "report_id": str(uuid.uuid4()), "document": "",
        "reported_at": now - timedelta(hours=2), "created_at": now, "sent_at": None,
        "deadline_at": now + timedelta(hours=24), "dispute_reason": "", "outcome": "",
        "outcome_reason": "", "renotices": 0, "escalations": 0, "rechecks": 0,
        "next_action_at": now, "last_error": "",
    }  # fmt: skip
    row.update(values)
    table = TakedownNoticeRow.__table__
    with engine.begin() as connection:
        inserted = connection.execute(insert(TakedownNoticeRow).values(row))
        notice_id = inserted.inserted_primary_key[0]  # type: ignore[index]
        return connection.execute(select(table).where(table.c.id == notice_id)).one()
