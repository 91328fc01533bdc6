"""The hotline's cases and items for tests: images generated and hashed here (never real
material), cases inserted in state ``new`` or ``triaged`` and items queued, as the pipeline would
leave them; labels in the built-in vocabulary."""

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from hashguard.hotline.model import CaseState, ItemState
from hashguard.signals import registry
from hashguard.signals.batch import hash_stream
from hashguard.store.tables import AuditEventRow, HotlineCaseRow, HotlineItemRow

SIGNALS = ("pdq", "md5", "sha1", "sha256")


def hashes_of(data: bytes) -> dict[str, str]:
    """An image's hashes as the crawler gives them: signal -> canonical string."""
    found = hash_stream(io.BytesIO(data), len(data), [registry.get(s) for s in SIGNALS])
    return {signal.name: signal.canonical_of(value) for signal, value in found.values}


def new_case(engine: Engine, url: str, state: CaseState = CaseState.NEW) -> int:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        return int(connection.execute(insert(HotlineCaseRow).values(
            url=url, url_key=hashlib.sha256(url.encode()).hexdigest(),
            host=url.split("/")[2], state=state.value, created_at=now, updated_at=now,
            attempts=0, lease_until=None, last_error="",
        )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip


def queued_item(engine: Engine, case_id: int, url: str, hashes: Mapping[str, str]) -> int:
    with engine.begin() as connection:
        return int(connection.execute(insert(HotlineItemRow).values(
            case_id=case_id, fetch_id=None, url=url, kind="image", hashes=dict(hashes),
            quality=None, state=ItemState.QUEUED.value, assessment_id=None, labels={},
            legality={}, triage={}, created_at=datetime.now(UTC), decided_at=None,
        )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip


def item(engine: Engine, item_id: int) -> Any:
    table = HotlineItemRow.__table__
    with engine.connect() as connection:
        return connection.execute(select(table).where(table.c.id == item_id)).one()


def case_state(engine: Engine, case_id: int) -> str:
    table = HotlineCaseRow.__table__
    with engine.connect() as connection:
        return str(connection.execute(select(table.c.state).where(table.c.id == case_id))
                   .scalar_one())  # fmt: skip


def events(engine: Engine, action: str) -> list[Any]:
    table = AuditEventRow.__table__
    with engine.connect() as connection:
        return list(connection.execute(
            select(table).where(table.c.action == action).order_by(table.c.seq)).all())  # fmt: skip


# Labels in the built-in vocabulary (hotline.vocabulary.default()).
BASELINE = {"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}
NATIONAL = {"iccam": "nationally-illegal", "age": "pubescent", "industry": "none",
            "depiction": "drawn"}  # fmt: skip
NOT_ILLEGAL = {"iccam": "not-illegal", "age": "adult", "industry": "none", "depiction": "real"}


@dataclass(frozen=True)
class Hoster:
    name: str = "hoster-nl"
    abuse_email: str | None = "abuse@hoster-nl.test"
    abuse_api: str | None = None


@dataclass(frozen=True)
class Trace:
    """Stands in for hotline.trace's Trace (tested there, with a DNS server)."""

    url: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    hoster: Hoster | None = Hoster()
    country: str | None = "NL"
    cdn: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "country": self.country, "hoster": {"name": "hoster-nl"},
                "cdn": self.cdn, "at": self.at.isoformat()}  # fmt: skip


class Tracer:
    """Stands in for hotline.trace's tracer: every URL is at hoster-nl in NL; remembers them."""

    def __init__(self) -> None:
        self.traced: list[str] = []

    def trace(self, url: str) -> Trace:
        self.traced.append(url)
        return Trace(url)
