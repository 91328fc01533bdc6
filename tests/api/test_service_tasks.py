"""The service's background tasks each fail on their own (on SQLite and PostgreSQL): webhook
calls that fail every time keep neither HMA's disabled content items from coming back when
their time has passed, nor the retention purge from running. All hashes are benign test
values."""

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from hashguard.api import ServiceSettings
from hashguard.api.service import Service
from hashguard.lists.model import Category, EntryStatus
from hashguard.review.webhook import WebhookSender
from hashguard.store.tables import BankContentRow

from support.waiting import eventually

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_failing_webhook_calls_keep_no_other_task_from_its_turn(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: WebhookSender) -> int:
        raise RuntimeError("the webhook outbox is unreadable")

    monkeypatch.setattr(WebhookSender, "send_due", broken)
    purged: list[str] = []
    monkeypatch.setattr("hashguard.api.service.purge",
                        lambda engine, actor: purged.append(actor) or _Nothing())  # fmt: skip
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    service.lists.create("BANK", "org", Category.KNOWN_CSAM, actor="t")
    item = service.contents.add("BANK", {"pdq": PDQ}, "org", "t")
    service.contents.update("BANK", item.id, "curator", disable_until_ts=int(time.time()) + 3600)
    with engine.begin() as connection:  # its time has come
        connection.execute(update(BankContentRow).where(BankContentRow.id == item.id)
                           .values(disable_until_ts=int(time.time()) - 1))  # fmt: skip
    assert service.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.DELETED
    service.start()
    try:
        restored = eventually(
            lambda: service.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.ACTIVE
        )
        assert restored
        assert eventually(lambda: purged) == ["hashguard serve"]
    finally:
        service.stop()


class _Nothing:
    total = 0
