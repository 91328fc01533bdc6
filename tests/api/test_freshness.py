"""Changes made through the service hold for the very next request (README): a reviewer's false
positive, an upheld complaint, an entry contested, delisted, deleted, reinstated or relabelled, a
policy update, a list created, imported, removed, HMA's bank curation. Each change is made
through the API and the hash it touches is matched again at once after the answer, round after
round, with no pause in between.

The server runs in this process (support/in_process.py: uvicorn on a loopback socket;
``hashguard serve`` has no option for it) with a refresh interval of an hour, so that its
background refresh cannot apply a change while a test runs: what holds, holds because the
request that made the change applied it to the Matcher before answering.
"""

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from hashguard.api import ServiceSettings
from hashguard.app import create_app
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore
from hashguard.store.tables import ActionRow

from support.in_process import serving
from support.loopback import Loopback

ROUNDS = 20
IMPORT_ROUNDS = 3  # each import runs in a process of its own: seconds, not milliseconds
NEVER = 3600.0  # the background refresh interval: nothing is applied by it during a test


def hashes(seed: int, count: int) -> list[str]:
    """``count`` random PDQ hashes, about 128 bits from each other (far beyond any threshold)."""
    chosen = random.Random(seed)
    return [format(chosen.getrandbits(256), "064x") for _ in range(count)]


@dataclass
class World:
    client: httpx.Client
    tokens: dict[str, str]  # who -> key
    engine: Engine
    webhook: Loopback

    def call(self, who: str, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **options)

    def match(self, value: str, who: str = "matcher", ref: str = "", **body: Any) -> list[dict]:
        """The matches of one PDQ hash."""
        query = {"signal": "pdq", "value": value, "content_ref": ref}
        answer = self.call(who, "POST", "/v1/match/hashes", json={"hashes": [query], **body})
        assert answer.status_code == 200, answer.text
        matches: list[dict] = answer.json()["results"][0]["matches"]
        return matches


LISTED = hashes(1, 4 * ROUNDS + 1)  # on list "known", a slice per test


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    store = ListStore(engine)
    store.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"], actor="setup")
    store.apply("known", [Submission("pdq", value) for value in LISTED], "setup")
    webhook = Loopback(lambda path, headers, body: (204, "text/plain", b""))
    ServiceStore(engine).create("photos", webhook_url=webhook.url + "/hook")
    keys = ApiKeyStore(engine)
    tokens = {
        "upload": keys.create(Role.MATCHER, name="upload check", service="photos")[1],
        "matcher": keys.create(Role.MATCHER, name="matcher")[1],
        "ana": keys.create(Role.REVIEWER, name="ana")[1],
        "ben": keys.create(Role.REVIEWER, name="ben")[1],
        "curator": keys.create(Role.CURATOR, name="Test Hotline")[1],
        "admin": keys.create(Role.ADMIN, name="admin")[1],
    }
    settings = ServiceSettings(refresh_interval=NEVER, secret_file=tmp_path / "secret.key")
    try:
        with (
            serving(create_app(engine, settings)) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            yield World(client, tokens, engine, webhook)
    finally:
        webhook.close()


def _upload(world: World, value: str, ref: str) -> int:
    """A service's upload check of one hash: the number of items matched."""
    subject = {"account_ref": "account-1", "ip": "192.0.2.7", "ip_at": "2026-11-01T10:00:00Z"}
    query = {"signal": "pdq", "value": value, "content_ref": ref, **subject}
    answer = world.call("upload", "POST", "/v1/match/hashes", json={"hashes": [query]})
    assert answer.status_code == 200, answer.text
    matched: int = answer.json()["matched"]
    return matched


def _detections(world: World) -> dict[str, dict]:
    answer = world.call("ana", "GET", "/v1/detections")
    return {d["content_ref"]: d for d in answer.json()["detections"]}


def _quarantines(engine: Engine) -> int:
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(ActionRow).where(ActionRow.kind == "quarantine")
        ).scalar_one()
    return int(count)


def test_a_false_positive_stops_matching_before_the_decision_is_answered(world: World) -> None:
    for number, value in enumerate(LISTED[:ROUNDS]):
        assert _upload(world, value, f"first-{number}") == 1
        ident = _detections(world)[f"first-{number}"]["id"]
        decided = world.call("ana", "POST", f"/v1/detections/{ident}/decision",
                             json={"decision": "false_positive", "reason": "a cat"})  # fmt: skip
        assert decided.json()["state"] == "false_positive", decided.text
        # At once: the same content again opens no detection and so sends no quarantine.
        assert _upload(world, value, f"again-{number}") == 0, f"round {number}"
    assert not [ref for ref in _detections(world) if ref.startswith("again-")]
    assert _quarantines(world.engine) == ROUNDS  # the first uploads' only


def test_an_upheld_complaint_stops_matching_before_it_is_answered(world: World) -> None:
    values = LISTED[ROUNDS : 2 * ROUNDS]
    for number, value in enumerate(values):  # confirmed and removed: each user is told
        assert _upload(world, value, f"first-{number}") == 1
        ident = _detections(world)[f"first-{number}"]["id"]
        world.call("ana", "POST", f"/v1/detections/{ident}/decision",
                   json={"decision": "confirm", "reason": "listed"})  # fmt: skip
        acted = world.call("ana", "POST", f"/v1/detections/{ident}/actions",
                           json={"kind": "remove", "reason": "known material"})  # fmt: skip
        assert acted.status_code == 201, acted.text
    # Three calls per detection (quarantine, removal, notice); the notice holds the token.
    assert world.webhook.wait_for(3 * ROUNDS)
    tokens = {}
    for _, _, body in world.webhook.requests:
        event = json.loads(body)
        if event["event"] == "notice":
            tokens[event["content_ref"]] = re.search(r"/complaints/(\S+)", event["text"])[1]
    assert len(tokens) == ROUNDS
    for number, value in enumerate(values):
        complaint = {"token": tokens[f"first-{number}"], "statement": "my own photo"}
        lodged = world.client.post("/v1/complaints", json=complaint)
        assert lodged.status_code == 201, lodged.text
        upheld = world.call("ben", "POST", f"/v1/complaints/{lodged.json()['id']}/decision",
                            json={"upheld": True, "reason": "a different picture"})  # fmt: skip
        assert upheld.json()["state"] == "upheld", upheld.text
        assert _upload(world, value, f"again-{number}") == 0, f"round {number}"
    assert not [ref for ref in _detections(world) if ref.startswith("again-")]


@pytest.mark.parametrize("kind", ["contest", "delist", "delete"])
def test_an_entry_contested_delisted_or_deleted_stops_matching_at_once(
    world: World, kind: str
) -> None:
    for value in LISTED[2 * ROUNDS : 3 * ROUNDS]:
        assert world.match(value)
        changed = world.call("curator", "POST", "/v1/lists/known/changes",
                             json={"kind": kind, "signal": "pdq", "value": value})  # fmt: skip
        assert changed.status_code == 200, changed.text
        assert world.match(value) == []


def test_an_entry_reinstated_after_a_false_positive_or_a_delisting_matches_at_once(
    world: World,
) -> None:
    for number, value in enumerate(LISTED[:ROUNDS]):
        if number % 2:
            delist = {"kind": "delist", "signal": "pdq", "value": value}
            removed = world.call("curator", "POST", "/v1/lists/known/changes", json=delist)
            assert removed.status_code == 200, removed.text
        else:  # a reviewer's false positive contests the entry
            assert _upload(world, value, f"first-{number}") == 1
            ident = _detections(world)[f"first-{number}"]["id"]
            decision = {"decision": "false_positive", "reason": "a cat"}
            decided = world.call("ana", "POST", f"/v1/detections/{ident}/decision", json=decision)
            assert decided.json()["state"] == "false_positive", decided.text
        assert world.match(value) == []
        reinstated = world.call("curator", "POST", "/v1/lists/known/changes",
                                json={"kind": "reinstate", "signal": "pdq", "value": value,
                                      "reason": "the owner reassessed it"})  # fmt: skip
        assert reinstated.status_code == 200, reinstated.text
        assert [m["value"] for m in world.match(value)] == [value], f"round {number}"


def test_a_relabelled_entry_matches_with_its_new_labels_at_once(world: World) -> None:
    for number, value in enumerate(LISTED[3 * ROUNDS : 4 * ROUNDS]):
        changed = world.call("curator", "POST", "/v1/lists/known/changes",
                             json={"kind": "relabel", "signal": "pdq", "value": value,
                                   "labels": [f"L{number}"]})  # fmt: skip
        assert changed.status_code == 200, changed.text
        assert [m["labels"] for m in world.match(value)] == [[f"L{number}"]]


def test_a_policy_update_holds_at_once(world: World) -> None:
    value = LISTED[4 * ROUNDS]
    for _ in range(ROUNDS):
        for ratio, matched in ((0.0, False), (1.0, True)):
            updated = world.call("curator", "PATCH", "/v1/lists/known",
                                 json={"policy": {"enabled_ratio": ratio}})  # fmt: skip
            assert updated.status_code == 200, updated.text
            assert bool(world.match(value)) is matched, f"enabled_ratio {ratio}"


def test_lists_created_imported_and_removed_hold_at_once(world: World) -> None:
    for number, value in enumerate(hashes(2, ROUNDS)):
        name = f"fresh-{number}"
        created = world.call("curator", "POST", "/v1/lists",
                             json={"name": name, "owner": "Test Hotline",
                                   "category": "known-csam"})  # fmt: skip
        assert created.status_code == 201, created.text
        assert world.match(value, lists=[name]) == []  # known to the Matcher: no 404
        if number < IMPORT_ROUNDS:  # a job in a process of its own
            imported = world.call("curator", "POST", f"/v1/lists/{name}/import",
                                  params={"format": "text", "signal": "pdq",
                                          "source": "Test Hotline"},
                                  content=f"{value}\n".encode())  # fmt: skip
        else:  # HMA's route, in the service's process
            imported = world.call("curator", "POST", f"/c/bank/{name}/signal",
                                  json={"pdq": value})  # fmt: skip
        assert imported.status_code == 200, imported.text
        assert [m["list"] for m in world.match(value)] == [name]
        removed = world.call("admin", "DELETE", f"/v1/lists/{name}")
        assert removed.status_code == 200, removed.text
        assert world.match(value) == []
        gone = world.call("matcher", "POST", "/v1/match/hashes",
                          json={"hashes": [{"signal": "pdq", "value": value}],
                                "lists": [name]})  # fmt: skip
        assert gone.status_code == 404, gone.text


def test_hma_bank_curation_holds_at_once(world: World) -> None:
    for number, value in enumerate(hashes(3, ROUNDS)):
        name = f"BANK_{number}"
        created = world.call("curator", "POST", "/c/banks", json={"name": name})
        assert created.status_code == 201, created.text
        added = world.call("curator", "POST", f"/c/bank/{name}/signal", json={"pdq": value})
        assert added.status_code == 200, added.text
        lookup = {"signal_type": "pdq", "signal": value, "banks": name}
        assert world.call("matcher", "GET", "/m/raw_lookup", params=lookup).json() == {
            "matches": [added.json()["id"]]
        }
        switched = world.call("curator", "PUT", f"/c/bank/{name}", json={"enabled": False})
        assert switched.status_code == 200, switched.text
        assert world.match(value) == []
        world.call("curator", "PUT", f"/c/bank/{name}", json={"enabled": True})
        assert [m["list"] for m in world.match(value)] == [name]
        deleted = world.call("curator", "DELETE", f"/c/bank/{name}/content/{added.json()['id']}")
        assert deleted.json() == {"deleted": 1}
        assert world.match(value) == []
        world.call("curator", "POST", f"/c/bank/{name}/signal", json={"pdq": value})
        assert [m["list"] for m in world.match(value)] == [name]  # revived
        assert world.call("admin", "DELETE", f"/c/bank/{name}").json() == {"message": "Done"}
        assert world.match(value) == []
