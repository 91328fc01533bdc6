"""The monitor's API for operators (``/v1/takedown/monitor``) over a served app on loopback
(SQLite and PostgreSQL): the unsuppressed figures equal the hand computation from the inserted
notices, as JSON and as CSV; the roles it allows; bad periods refused clearly; a hoster's
evidence bundle signed with the service's takedown key (verifies with the public key, breaks
when altered), 404 for a hoster without notices, 503 when the service has no key."""

import csv as csv_module
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from hashguard.app import create_app
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.takedown import signing
from hashguard.transparency import keys

from support.in_process import serving
from support.monitor_rows import Made, by_hand, fleet

KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[httpx.Client, dict[str, str], list[Made], Any]]:
    made = fleet(engine)
    store = ApiKeyStore(engine)
    tokens = {role: store.create(Role(role), name=role)[1]
              for role in ("analyst", "auditor", "matcher")}  # fmt: skip
    app = create_app(engine)
    app.state.service.takedown_key = KEY  # what the service's takedown settings will give it
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, tokens, made, app


def get(client: httpx.Client, path: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, params=params)


def test_the_figures_as_json_and_csv_equal_the_hand_computation(served: Any) -> None:
    client, tokens, made, _ = served
    answer = get(client, "/v1/takedown/monitor", tokens["analyst"], by="hoster")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["by"] == "hoster" and body["period"] == {"since": None, "until": None}
    rows = {row["group"]: row for row in body["rows"]}
    moment = datetime.now(UTC)
    for hoster in ("fast", "slow", "small"):
        expected = by_hand([m for m in made if m.hoster == hoster], moment)
        assert rows[hoster] == pytest.approx({"group": hoster, **expected}), hoster
    assert "cdn" not in rows
    since = get(client, "/v1/takedown/monitor", tokens["auditor"], by="all",
                since="2026-05-01")  # fmt: skip
    inside = [m for m in made if m.reported_at >= datetime(2026, 5, 1, tzinfo=UTC)]
    assert since.json()["rows"][0]["notices"] == by_hand(inside)["notices"]
    exported = get(client, "/v1/takedown/monitor", tokens["analyst"], by="country", format="csv")
    assert exported.headers["content-type"].startswith("text/csv")
    lines = list(csv_module.DictReader(io.StringIO(exported.text)))
    countries = get(client, "/v1/takedown/monitor", tokens["analyst"], by="country").json()
    assert [line["group"] for line in lines] == [row["group"] for row in countries["rows"]]
    for line, row in zip(lines, countries["rows"], strict=True):
        assert int(line["notices"]) == row["notices"]
        assert line["median_hours"] == ("" if row["median_hours"] is None
                                        else str(row["median_hours"]))  # fmt: skip


def test_only_analysts_and_auditors_and_clear_refusals(served: Any) -> None:
    client, tokens, _, _ = served
    assert get(client, "/v1/takedown/monitor", None).status_code == 401
    assert get(client, "/v1/takedown/monitor", tokens["matcher"]).status_code == 403
    bad = get(client, "/v1/takedown/monitor", tokens["analyst"], since="last week")
    assert bad.status_code == 400
    assert "since: expected a date" in bad.json()["error"]["message"]
    assert get(client, "/v1/takedown/monitor", tokens["analyst"], by="planet").status_code == 422
    evidence = get(client, "/v1/takedown/monitor/evidence/slow", tokens["matcher"])
    assert evidence.status_code == 403


def test_the_evidence_bundle_is_signed_with_the_takedown_key(served: Any) -> None:
    client, tokens, made, app = served
    answer = get(client, "/v1/takedown/monitor/evidence/slow", tokens["auditor"])
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert signing.verify(bundle, keys.public_hex(KEY)) == keys.public_hex(KEY)
    assert len(bundle["notices"]) == sum(1 for m in made if m.hoster == "slow")
    bundle["notices"][1]["hours_to_removal"] = 1.0  # a slow hoster made to look fast
    with pytest.raises(signing.BadSignature):
        signing.verify(bundle, keys.public_hex(KEY))
    unknown = get(client, "/v1/takedown/monitor/evidence/nowhere", tokens["analyst"])
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no notices to hoster 'nowhere'"
    app.state.service.takedown_key = None
    keyless = get(client, "/v1/takedown/monitor/evidence/slow", tokens["analyst"])
    assert keyless.status_code == 503
    assert "no takedown key" in keyless.json()["error"]["message"]
