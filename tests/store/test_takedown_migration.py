"""Migration 0013 on a database at 0012 with notices routing had queued: each becomes a queued
takedown notice (to the CDN where the trace found one) carrying the case's illegal items, so
it can be composed and sent like any notice routing makes now."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, MetaData, Table, insert, select

from hashguard.store.database import open_engine, upgrade
from hashguard.store.tables import TakedownNoticeRow
from hashguard.takedown import notice

from support.hotline_items import hashes_of
from support.media import png

CREATED = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)
LABELS = {"iccam": "baseline", "age": "prepubescent", "industry": "A1", "depiction": "real"}
SENDER = notice.Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")


def _case(engine: Engine, tables: dict[str, Table], url: str) -> int:
    with engine.begin() as connection:
        inserted = connection.execute(insert(tables["hotline_cases"]).values(
            url=url, url_key=uuid.uuid4().hex, host=url.split("/")[2], state="routed",
            created_at=CREATED, updated_at=CREATED, attempts=0, lease_until=None,
            last_error=""))  # fmt: skip
        return int(inserted.inserted_primary_key[0])  # type: ignore[index]


def _item(engine: Engine, tables: dict[str, Table], case: int, url: str, seed: int,
          legality: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    hashes = hashes_of(png(seed, 64, 64))
    with engine.begin() as connection:
        connection.execute(insert(tables["hotline_items"]).values(
            case_id=case, fetch_id=None, url=url, kind="image", hashes=hashes, quality=100,
            state="assessed", assessment_id=None, labels=LABELS, legality=legality,
            triage={}, created_at=CREATED, decided_at=CREATED))  # fmt: skip
    return {"url": url, "kind": "image", "hashes": hashes, "labels": LABELS}


def _queued(engine: Engine, tables: dict[str, Table], case: int, url: str, cdn: bool) -> None:
    with engine.begin() as connection:
        connection.execute(insert(tables["hotline_notices"]).values(
            case_id=case, hoster="Edge CDN" if cdn else "Files BV",
            abuse_email="abuse@edge.example" if cdn else "abuse@files.example", abuse_api=None,
            cdn=cdn, urls=[url], state="queued",
            created_at=CREATED + timedelta(hours=1)))  # fmt: skip


def test_queued_hotline_notices_become_takedown_notices_with_their_items(
    empty_database_url: str,
) -> None:
    engine = open_engine(empty_database_url, migrate=False)
    upgrade(engine, "0012")
    metadata = MetaData()
    metadata.reflect(engine, only=["hotline_cases", "hotline_items", "hotline_notices"])
    tables = dict(metadata.tables)
    fronted = _case(engine, tables, "https://cdn.example/a/page")
    illegal = _item(engine, tables, fronted, "https://cdn.example/a/1.jpg", 1,
                    {"NL": "illegal", "DE": "illegal"})  # fmt: skip
    _item(engine, tables, fronted, "https://cdn.example/a/2.jpg", 2, {"NL": "not-illegal"})
    _queued(engine, tables, fronted, "https://cdn.example/a/1.jpg", cdn=True)
    direct = _case(engine, tables, "https://files.example/b/page")
    somewhere = _item(engine, tables, direct, "https://files.example/b/3.jpg", 3,
                      {"NL": "not-illegal", "US": "illegal"})  # fmt: skip
    _queued(engine, tables, direct, "https://files.example/b/3.jpg", cdn=False)
    engine.dispose()

    engine = open_engine(empty_database_url)  # upgrades to the newest revision
    table = TakedownNoticeRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    engine.dispose()
    assert [(r.case_id, r.kind, r.cdn, r.hoster, r.state) for r in rows] == [
        (fronted, "cdn", True, "Edge CDN", "queued"),
        (direct, "notice", False, "Files BV", "queued"),
    ]
    assert [r.items for r in rows] == [[illegal], [somewhere]]
    # composed as any notice routing makes now: the items' hashes and labels in the document
    for row in rows:
        values = {**row._mapping, "deadline_at": CREATED + timedelta(days=1)}
        document = notice.compose(values, SENDER, Ed25519PrivateKey.generate(), CREATED)
        assert [i["hashes"]["sha256"] for i in document["hashguard_items"]] == [
            item["hashes"]["sha256"] for item in row.items
        ]
