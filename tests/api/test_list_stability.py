"""The owner's view of unstable entries through the API: GET /v1/lists/{name} counts the
active entries not matched for their measured stability (served in this process, so the
signal's floor can be set for the test)."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from hashguard.api import ServiceSettings
from hashguard.app import create_app
from hashguard.lists.model import Category, ChangeKind
from hashguard.lists.records import Submission
from hashguard.signals import registry
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore

from support.in_process import serving

UNSTABLE = ["1f" * 32, "2e" * 32]


def test_the_list_view_counts_the_active_unstable_entries(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry.get("pdq"), "min_stability", 50)
    store = ListStore(engine)
    store.create("measured", "Test Hotline", Category.TEST)
    store.apply("measured", [*(Submission("pdq", v, stability=20) for v in UNSTABLE),
                             Submission("pdq", "3d" * 32, stability=50),
                             Submission("pdq", "4c" * 32)])  # fmt: skip
    store.change("measured", ChangeKind.DELIST, "pdq", UNSTABLE[1], "not ours")
    token = ApiKeyStore(engine).create(Role.CURATOR, name="Test Hotline")[1]
    matcher = {"Authorization": f"Bearer {ApiKeyStore(engine).create(Role.MATCHER)[1]}"}
    settings = ServiceSettings(secret_file=tmp_path / "secret.key")
    with (
        serving(create_app(engine, settings)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        shown = client.get("/v1/lists/measured")
        assert shown.status_code == 200, shown.text
        assert shown.json()["unstable"] == 1  # the delisted one is not matched anyway
        feed = client.get("/v1/lists/measured/changes").json()["changes"]
        assert [c.get("stability") for c in feed] == [20, 20, 50, None, None]  # a mirror's
        entry = client.get(f"/v1/lists/measured/entries/pdq/{UNSTABLE[0]}").json()
        assert entry["stability"] == 20
        matched = client.post("/v1/match/hashes", json={"hashes": [
            {"signal": "pdq", "value": v} for v in (UNSTABLE[0], "3d" * 32, "4c" * 32)]},
            headers=matcher)  # fmt: skip
        assert [len(r["matches"]) for r in matched.json()["results"]] == [0, 1, 1]
