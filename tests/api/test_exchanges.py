"""Exchanges through the API of a real ``hashguard serve`` (SQLite and PostgreSQL), fetching from
a loopback stand-in of another hashguard's change feed: added by a curator, credentials set by
an admin, fetched by the service's scheduler or while the request waits, matched at once, a
withdrawal unmatched; a corrupt record quarantined and named; errors by kind; the roles; the
credentials never in an answer, the server's log or the database in the clear. HMA's exchange
routes as HMA answers them, beyond what the HMA port covers."""

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.tables import ApiKeyRow

from support.database import scratch_database
from support.exchanges.hashguard_peer import PeerFeed, change
from support.loopback import Loopback
from support.server import Server, running
from support.waiting import eventually

MD5S = [f"{n:032x}" for n in range(1, 4)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("exchanges")
    with (
        scratch_database(request.param, directory) as url,
        running(url, "--exchange-network", "127.0.0.0/8") as served,
    ):
        yield served


@pytest.fixture
def feed() -> Iterator[PeerFeed]:
    served = PeerFeed("known", "hg_peer_" + secrets.token_hex(16))
    served.changes = [change(n, value) for n, value in enumerate(MD5S, start=1)]
    yield served
    served.close()


@pytest.fixture
def name(server: Server) -> Iterator[str]:
    """A fresh exchange name, its exchange and list removed afterwards."""
    made = f"PEER_{secrets.token_hex(4).upper()}"
    yield made
    server.request("DELETE", f"/v1/exchanges/{made}", "admin")
    server.request("DELETE", f"/v1/lists/{made}", "admin")


def _add(server: Server, feed: PeerFeed, name: str, **more: Any) -> httpx.Response:
    body = {"name": name, "api": "hashguard", "interval_seconds": 3600,
            "config": {"base_url": feed.url, "list": feed.name}, **more}  # fmt: skip
    return server.post("/v1/exchanges", "curator", json=body)


def _matched(server: Server, value: str) -> bool:
    answer = server.post("/v1/match/hashes", "matcher",
                         json={"hashes": [{"signal": "md5", "value": value}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["results"][0]["matches"])


def _status(server: Server, name: str) -> dict[str, Any]:
    answer = server.get(f"/v1/exchanges/{name}/status", "auditor")
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status


def _credentials(server: Server, name: str, feed: PeerFeed) -> None:
    answer = server.request("PUT", f"/v1/exchanges/{name}/credentials", "admin",
                            json={"credentials": {"api_key": feed.key}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"scope": f"exchange:{name}", "has_credentials": True,
                             "origin": feed.url + ""}  # fmt: skip


def test_an_exchange_is_added_fetched_by_the_scheduler_and_matched(
    server: Server, feed: PeerFeed, name: str
) -> None:
    added = _add(server, feed, name, enabled=False)
    assert added.status_code == 201, added.text
    shown = added.json()
    assert shown["api"] == "hashguard" and shown["list"] == name
    assert shown["config"] == {"base_url": feed.url, "list": "known"}
    assert (shown["enabled"], shown["interval_seconds"], shown["has_credentials"]) == (
        False, 3600, False)  # fmt: skip
    _credentials(server, name, feed)
    assert feed.requests == 0  # disabled: not fetched

    # enabled: the scheduler fetches it at once
    enabled = server.request("PATCH", f"/v1/exchanges/{name}", "curator", json={"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert eventually(lambda: _status(server, name)["last_fetch_complete_ts"], 60)
    status = _status(server, name)
    assert status["last_fetch_succeeded"] is True, status
    assert status["fetched_items"] == 3 and status["up_to_date"] is True
    assert status["last_counts"]["added"] == 3 and status["failures"] == 0
    assert all(_matched(server, value) for value in MD5S)  # at once: no rebuild, no wait

    # a withdrawal at the origin, fetched by the scheduler when asked: it stops matching
    feed.changes.append(change(4, MD5S[0], kind="delete"))
    queued = server.post(f"/v1/exchanges/{name}/fetch", "curator")
    assert queued.status_code == 202, queued.text
    assert queued.json() == {"name": name, "queued": True,
                             "status": f"/v1/exchanges/{name}/status"}  # fmt: skip
    assert eventually(lambda: _status(server, name)["fetched_items"] == 4, 60)
    assert eventually(lambda: not _matched(server, MD5S[0]), 1)
    assert _matched(server, MD5S[1])

    # fetched while the request waits: matched by the time the answer is read
    new = f"{5:032x}"
    feed.changes.append(change(5, new))
    done = server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator")
    assert done.status_code == 200, done.text
    assert done.json()["succeeded"] is True and done.json()["records"] == 1
    assert done.json()["counts"]["added"] == 1
    assert _matched(server, new)

    listed = server.get("/v1/exchanges", "auditor").json()["exchanges"]
    assert [e["name"] for e in listed if e["name"] == name] == [name]
    assert server.get(f"/v1/exchanges/{name}", "auditor").json()["has_credentials"] is True


def test_a_corrupt_record_is_quarantined_named_and_audited_while_the_rest_applies(
    server: Server, feed: PeerFeed, name: str
) -> None:
    feed.changes.insert(1, {"version": 2, "kind": "add", "signal": "md5", "value": "zz"})
    assert _add(server, feed, name, enabled=False).status_code == 201
    _credentials(server, name, feed)
    done = server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator").json()
    assert (done["succeeded"], done["records"], done["quarantined"]) == (True, 3, 1), done

    held = server.get(f"/v1/exchanges/{name}/quarantine", "auditor")
    assert held.status_code == 200, held.text
    records = held.json()["records"]
    assert len(records) == 1 and held.json()["next_before"] is None
    assert records[0]["position"].startswith("change 2"), records
    assert records[0]["reason"] and "zz" in records[0]["excerpt"]
    assert _status(server, name)["quarantined"] == 1

    events = server.get("/v1/audit?limit=1000", "auditor").json()["events"]
    named = [e for e in events if e["action"] == "exchange.quarantine" and e["subject"] == name]
    assert named and json.loads(named[0]["details"])["position"] == records[0]["position"]


def test_a_failed_fetch_is_in_the_answer_and_the_status(
    server: Server, feed: PeerFeed, name: str
) -> None:
    assert _add(server, feed, name, enabled=False).status_code == 201
    no_credentials = server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator").json()
    assert no_credentials["succeeded"] is False
    assert "has no credentials" in no_credentials["error"]

    _credentials(server, name, feed)
    feed.fail_from = 1
    failed = server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator").json()
    assert failed["succeeded"] is False and "503" in failed["error"]
    status = _status(server, name)
    assert status["last_fetch_succeeded"] is False and status["failures"] == 2
    assert "overloaded" in status["last_error"]


def test_errors_come_by_kind_and_name_what_was_wrong(
    server: Server, feed: PeerFeed, name: str
) -> None:
    unknown = server.post("/v1/exchanges", "curator", json={"name": name, "api": "nope"})
    assert unknown.status_code == 404
    assert "no exchange plug-in is called 'nope'" in unknown.json()["error"]["message"]

    setting = _add(server, feed, name, config={"base_url": feed.url, "lst": "known"})
    assert setting.status_code == 400
    assert setting.json()["error"]["message"].startswith("lst: not a setting of this exchange")

    assert _add(server, feed, name).status_code == 201
    taken = _add(server, feed, name)
    assert taken.status_code == 409 and "already exists" in taken.text

    interval = server.request("PATCH", f"/v1/exchanges/{name}", "curator",
                              json={"interval_seconds": 1})  # fmt: skip
    assert interval.status_code == 422 and "interval_seconds" in interval.text
    bad_credentials = server.request("PUT", f"/v1/exchanges/{name}/credentials", "admin",
                                     json={"credentials": {"token": "x"}})  # fmt: skip
    assert bad_credentials.status_code == 400
    assert "token: not a credential of this exchange" in bad_credentials.text

    # a curator adds exchanges, but only admin keys set credentials
    sealed = _add(server, feed, "OTHER_" + name, credentials={"api_key": feed.key})
    assert sealed.status_code == 403 and "admin" in sealed.text
    for missing in (server.get("/v1/exchanges/NOPE", "auditor"),
                    server.post("/v1/exchanges/NOPE/fetch", "curator"),
                    server.get("/v1/exchanges/NOPE/quarantine", "curator")):  # fmt: skip
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["message"] == "no exchange named 'NOPE'"


def test_changing_and_removing_an_exchange(server: Server, feed: PeerFeed, name: str) -> None:
    assert _add(server, feed, name, enabled=False).status_code == 201
    changed = server.request("PATCH", f"/v1/exchanges/{name}", "curator",
                             json={"interval_seconds": 600,
                                   "config": {"base_url": feed.url, "list": "other"}})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["interval_seconds"] == 600
    assert changed.json()["config"]["list"] == "other"

    assert server.request("DELETE", f"/v1/exchanges/{name}", "curator").status_code == 403
    removed = server.request("DELETE", f"/v1/exchanges/{name}", "admin")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"] == name and "stays" in removed.json()["message"]
    assert server.get(f"/v1/exchanges/{name}", "auditor").status_code == 404
    assert server.get(f"/v1/lists/{name}", "auditor").status_code == 200  # the list stays


def test_shared_credentials_of_a_plugin_serve_its_exchanges(
    server: Server, feed: PeerFeed, name: str
) -> None:
    unnamed = server.request("PUT", "/v1/exchange-apis/hashguard/credentials", "admin",
                             json={"credentials": {"api_key": feed.key}})  # fmt: skip
    assert unnamed.status_code == 400 and "base_url: required" in unnamed.text
    shared = server.request("PUT", "/v1/exchange-apis/hashguard/credentials", "admin",
                            json={"credentials": {"api_key": feed.key},
                                  "base_url": feed.url})  # fmt: skip
    assert shared.status_code == 200, shared.text
    assert shared.json()["origin"] == feed.url
    try:
        apis = {a["name"]: a for a in server.get("/v1/exchange-apis", "auditor").json()["apis"]}
        assert apis["hashguard"]["has_credentials"] is True
        assert apis["hashguard"]["credentials_origin"] == feed.url
        assert apis["sample"]["credentials_schema"] is None
        assert [f["name"] for f in apis["hashguard"]["credentials_schema"]["fields"]] == [
            "api_key"]  # fmt: skip
        assert _add(server, feed, name, enabled=False).json()["has_credentials"] is True
        done = server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator").json()
        assert done["succeeded"] is True and done["records"] == 3, done
    finally:
        cleared = server.request("DELETE", "/v1/exchange-apis/hashguard/credentials", "admin")
        assert cleared.json() == {"scope": "api:hashguard", "has_credentials": False,
                                  "origin": None}  # fmt: skip
    assert server.get(f"/v1/exchanges/{name}", "auditor").json()["has_credentials"] is False


def test_the_credentials_never_leave_sealed(server: Server, feed: PeerFeed, name: str) -> None:
    answers = [_add(server, feed, name, enabled=False)]
    answers.append(server.request("PUT", f"/v1/exchanges/{name}/credentials", "admin",
                                  json={"credentials": {"api_key": feed.key}}))  # fmt: skip
    answers.append(server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator"))
    feed.fail_from = 1  # a refusal's message is in the status: never the key that was sent
    answers.append(server.post(f"/v1/exchanges/{name}/fetch?wait=true", "curator"))
    for path in (f"/v1/exchanges/{name}", f"/v1/exchanges/{name}/status", "/v1/exchanges",
                 "/v1/exchange-apis", "/v1/audit?limit=1000", f"/c/exchange/{name}",
                 f"/c/exchange/{name}/status", "/c/exchanges/api/hashguard"):  # fmt: skip
        answers.append(server.get(path, "admin"))
    assert all(a.status_code < 300 for a in answers), [a.text for a in answers]
    assert not any(feed.key in a.text for a in answers)
    assert feed.key not in "".join(server.log)
    engine = open_engine(server.database_url)
    try:
        with engine.connect() as connection:
            for table in ("exchange_credentials", "exchanges", "audit_events", "list_changes"):
                rows = connection.execute(text(f"SELECT * FROM {table}")).all()
                assert not any(feed.key in str(row) for row in rows), table
    finally:
        engine.dispose()


def test_no_credential_follows_a_base_url_a_curator_chose(
    server: Server, feed: PeerFeed, name: str
) -> None:
    """The review's capture: a curator points exchanges at a host of its own; the admin's
    credentials (a plug-in's shared ones, an exchange's own) never arrive there."""
    heard: list[dict[str, str]] = []

    def listen(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        heard.append(headers)
        return 500, "text/plain", b"thanks"

    capture = Loopback(listen)
    password, token = "NCMEC-" + secrets.token_hex(8), "1234|TX-" + secrets.token_hex(8)
    evil = [f"EVIL_{secrets.token_hex(3).upper()}_{n}" for n in range(2)]
    try:
        for path, body in [
            ("/v1/exchange-apis/ncmec/credentials",
             {"credentials": {"username": "ngo", "password": password}}),
            ("/v1/exchange-apis/fb_threatexchange/credentials",
             {"credentials": {"api_token": token}}),
        ]:  # fmt: skip
            set_shared = server.request("PUT", path, "admin", json=body)
            assert set_shared.status_code == 200, set_shared.text
            assert set_shared.json()["origin"].startswith("https://")  # the plug-in's default
        added = server.post("/v1/exchanges", "curator", json={
            "name": evil[0], "api": "ncmec", "enabled": False,
            "config": {"base_url": capture.url + "/"}})  # fmt: skip
        assert added.status_code == 201, added.text
        assert added.json()["has_credentials"] is False
        settings = {"privacy_group": 1, "base_url": capture.url, "enabled": False}
        made = server.post("/c/exchanges", "curator", json={
            "bank": evil[1], "api": "fb_threatexchange", "api_json": settings})  # fmt: skip
        assert made.status_code == 201, made.text
        # an exchange with its own credentials, moved by a curator: they are forgotten
        assert _add(server, feed, name, enabled=False).status_code == 201
        _credentials(server, name, feed)
        moved = server.request("PATCH", f"/v1/exchanges/{name}", "curator", json={
            "config": {"base_url": capture.url, "list": feed.name}})  # fmt: skip
        assert moved.status_code == 200, moved.text
        assert moved.json()["has_credentials"] is False

        for each in (*evil, name):
            done = server.post(f"/v1/exchanges/{each}/fetch?wait=true", "curator").json()
            assert done["succeeded"] is False and "has no credentials" in done["error"], done
        sent = repr(heard)
        assert password not in sent and token not in sent and feed.key not in sent
        assert "Authorization" not in sent

        # plain http is refused whenever credentials would go with it
        assert (
            _add(
                server,
                feed,
                "HTTP_" + name,
                enabled=False,
                config={"base_url": "http://10.0.0.7", "list": "known"},
            ).status_code
            == 201
        )
        plain = server.request("PUT", f"/v1/exchanges/HTTP_{name}/credentials", "admin",
                               json={"credentials": {"api_key": feed.key}})  # fmt: skip
        assert plain.status_code == 400 and "plain http" in plain.text, plain.text
    finally:
        for api in ("ncmec", "fb_threatexchange"):
            server.request("DELETE", f"/v1/exchange-apis/{api}/credentials", "admin")
        for each in (*evil, "HTTP_" + name):
            server.request("DELETE", f"/v1/exchanges/{each}", "admin")
            server.request("DELETE", f"/v1/lists/{each}", "admin")
        capture.close()


def _key(server: Server, role: Role, lists: list[str]) -> dict[str, str]:
    """The headers of a new key of ``role`` limited to ``lists``."""
    engine = open_engine(server.database_url)
    try:
        token = ApiKeyStore(engine).create(role, lists=lists, name="scoped")[1]
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def test_a_key_limited_to_lists_reaches_the_exchanges_filling_them_by_list_not_name(
    server: Server, feed: PeerFeed, name: str
) -> None:
    """After its bank is renamed, an exchange keeps its name and fills the renamed list: a key
    limited to that list reaches it; a key limited to a new list of the old name does not,
    and is answered as if it did not exist."""
    assert _add(server, feed, name, enabled=False).status_code == 201
    renamed = f"{name}_R"
    answer = server.request("PUT", f"/c/bank/{name}", "curator", json={"name": renamed})
    assert answer.status_code == 200, answer.text
    other = {"name": name, "owner": "someone else", "category": "ncii"}
    made = server.post("/v1/lists", "curator", json=other)
    assert made.status_code == 201, made.text
    try:
        elsewhere = _key(server, Role.CURATOR, [name])  # the list of the exchange's name
        filled = _key(server, Role.CURATOR, [renamed])  # the list it fills
        single = [("GET", f"/v1/exchanges/{name}"), ("GET", f"/v1/exchanges/{name}/status"),
                  ("GET", f"/v1/exchanges/{name}/quarantine"), ("GET", f"/c/exchange/{name}"),
                  ("GET", f"/c/exchange/{name}/status")]  # fmt: skip
        for method, path in single:
            hidden = server.request(method, path, None, headers=elsewhere)
            assert hidden.status_code == 404, (path, hidden.text)
            assert server.request(method, path, None, headers=filled).status_code == 200, path
        for method, path, body in [
            ("PATCH", f"/v1/exchanges/{name}", {"enabled": True}),
            ("PUT", f"/c/exchange/{name}", {"enabled": True}),
            ("POST", f"/v1/exchanges/{name}/fetch", None),
        ]:
            refused = server.request(method, path, None, headers=elsewhere, json=body)
            assert refused.status_code == 404, (path, refused.text)
        assert server.get(f"/v1/exchanges/{name}", "auditor").json()["enabled"] is False
        assert "no exchange named" in server.get(f"/v1/exchanges/{name}", None,
                                                 headers=elsewhere).text  # fmt: skip

        def listed(headers: dict[str, str]) -> tuple[bool, bool]:
            v1 = server.get("/v1/exchanges", None, headers=headers).json()["exchanges"]
            hma = server.get("/c/exchanges", None, headers=headers).json()
            return name in [e["name"] for e in v1], name in hma

        assert listed(elsewhere) == (False, False)
        assert listed(filled) == (True, True)
    finally:
        server.request("DELETE", f"/v1/exchanges/{name}", "admin")
        server.request("DELETE", f"/v1/lists/{renamed}", "admin")


def test_a_key_limited_to_lists_sets_no_credentials_shared_by_every_exchange_of_a_plugin(
    server: Server, feed: PeerFeed, name: str
) -> None:
    assert _add(server, feed, name, enabled=False).status_code == 201
    scoped = _key(server, Role.ADMIN, [name])
    said = "a key limited to lists may not"
    attempts = [
        ("PUT", "/v1/exchange-apis/fb_threatexchange/credentials",
         {"credentials": {"api_token": "1|attacker"}}),
        ("DELETE", "/v1/exchange-apis/fb_threatexchange/credentials", None),
        ("POST", "/c/exchanges/api/fb_threatexchange", {"credential_json": {"api_token": "1|x"}}),
        ("POST", "/c/exchanges/api/fb_threatexchange", {"credential_json": {}}),
    ]  # fmt: skip
    for method, path, body in attempts:
        refused = server.request(method, path, None, headers=scoped, json=body)
        assert refused.status_code == 403 and said in refused.text, (method, path, refused.text)
    state = server.get("/c/exchanges/api/fb_threatexchange", "auditor").json()
    assert state["has_set_authentification"] is False
    events = server.get("/v1/audit?limit=1000", "auditor").json()["events"]
    assert not [e for e in events if e["action"].startswith("exchange.credentials")
                and e["actor"].endswith("(scoped)")]  # fmt: skip


def test_a_key_limited_to_lists_creates_no_list_through_an_exchange(
    server: Server, name: str
) -> None:
    made = server.post("/v1/lists", "curator",
                       json={"name": name, "owner": "Hotline", "category": "test"})  # fmt: skip
    assert made.status_code == 201, made.text
    scoped = _key(server, Role.CURATOR, [name])
    assert server.request("DELETE", f"/v1/lists/{name}", "admin").status_code == 200
    # The key's scope names a list that is gone (a removal leaves 'NAME (removed)' there; a
    # scope written otherwise, e.g. before that, names the list itself): it creates none.
    engine = open_engine(server.database_url)
    try:
        with engine.begin() as connection:
            ident = scoped["Authorization"].split()[1].split("_")[1]  # hg_<id>_<secret>
            connection.execute(update(ApiKeyRow).where(ApiKeyRow.id == ident).values(lists=[name]))
    finally:
        engine.dispose()
    refused = server.post("/v1/exchanges", None, headers=scoped,
                          json={"name": name, "api": "sample", "enabled": False})  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "a key limited to lists cannot create lists" in refused.text
    assert server.get(f"/v1/lists/{name}", "auditor").status_code == 404
    assert server.get(f"/v1/exchanges/{name}", "auditor").status_code == 404

    # into its list, when it exists, it adds one
    again = server.post("/v1/lists", "curator",
                        json={"name": name, "owner": "Hotline", "category": "test"})  # fmt: skip
    assert again.status_code == 201, again.text
    added = server.post("/v1/exchanges", None, headers=scoped,
                        json={"name": name, "api": "sample", "enabled": False})  # fmt: skip
    assert added.status_code == 201, added.text


# --- HMA's routes ------------------------------------------------------------------------------


def test_hma_exchange_routes_answer_as_hma(server: Server, feed: PeerFeed) -> None:
    bank = f"HMA_{secrets.token_hex(4).upper()}"

    def create(body: Any) -> httpx.Response:
        return server.post("/c/exchanges", "curator", json=body)

    refusals = [
        ({"api": "sample"}, "bank is required"),
        ({"bank": "lower", "api": "sample"}, "Field `bank` must match /^[A-Z0-9_]+$/"),
        ({"bank": bank, "api": "sample", "api_json": []}, "Field `api_json` must be object"),
        ({"bank": bank}, "Field `api_type` is required"),
        ({"bank": bank, "api": "nope"}, "No such exchange type 'nope'"),
        ({"bank": bank, "api": "hashguard", "api_json": {"base_url": feed.url}},
         "Failed to parse `api_json` - list: required"),
    ]  # fmt: skip
    for body, message in refusals:
        refused = create(body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["message"].startswith(message), (body, refused.text)
    nested = b"[" * 100_000  # deeper than the JSON parser's recursion
    for path in ("/c/exchanges", "/c/exchanges/api/sample"):
        refused = server.request("POST", path, "admin", content=nested,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json() == {"message": "Failed to decode JSON object"}

    made = create(
        {
            "bank": bank,
            "api": "hashguard",
            "api_json": {"base_url": feed.url, "list": "known", "enabled": False},
        }
    )
    assert (made.status_code, made.json()) == (201, {"message": "Created successfully"})
    assert create({"bank": bank, "api": "sample"}).status_code == 403  # the bank exists
    shown = server.get(f"/c/exchange/{bank}", "auditor").json()
    assert shown == {"name": bank, "api": "hashguard", "enabled": False, "base_url": feed.url,
                     "list": "known"}  # fmt: skip
    assert bank in server.get("/c/exchanges", "auditor").json()
    status = server.get(f"/c/exchange/{bank}/status", "auditor").json()
    assert status == {"checkpoint_ts": None, "running_fetch_start_ts": None,
                      "last_fetch_complete_ts": None, "last_fetch_succeeded": None,
                      "up_to_date": False, "fetched_items": 0}  # fmt: skip

    enabled = server.request("PUT", f"/c/exchange/{bank}", "curator", json={"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    schema = server.get("/c/exchanges/api/hashguard/schema", "auditor").json()
    assert [f["name"] for f in schema["config_schema"]["fields"]] == ["base_url", "list"]
    assert server.get("/c/exchanges/api/nope", "auditor").json() == {
        "message": "no such Exchange API 'nope'"}  # fmt: skip
    assert server.get("/c/exchange/NOPE", "auditor").json() == {
        "message": "Exchange 'NOPE' not found"}  # fmt: skip

    # as in HMA, the exchange's bank goes with it
    assert server.request("DELETE", f"/c/exchange/{bank}", "curator").status_code == 403
    deleted = server.request("DELETE", f"/c/exchange/{bank}", "admin")
    assert deleted.json() == {"message": "Exchange deleted"}
    assert server.get(f"/c/bank/{bank}", "auditor").status_code == 404
    assert bank not in server.get("/c/exchanges", "auditor").json()


def test_a_renamed_bank_s_exchange_keeps_its_name_and_is_reached_through_that_bank(
    server: Server,
) -> None:
    bank = f"SAMP_{secrets.token_hex(4).upper()}"
    renamed = f"{bank}_RENAMED"
    body = {"bank": bank, "api": "sample", "api_json": {"enabled": False}}
    made = server.post("/c/exchanges", "curator", json=body)
    assert made.status_code == 201, made.text
    moved = server.request("PUT", f"/c/bank/{bank}", "curator", json={"name": renamed})
    assert moved.status_code == 200, moved.text
    assert server.post("/c/banks", "curator", json={"name": bank}).status_code == 201
    for who, lists in (("owner", [renamed]), ("other", [bank])):
        made_key = server.post("/v1/keys", "admin",
                               json={"role": "curator", "lists": lists, "name": who})  # fmt: skip
        assert made_key.status_code == 201, made_key.text
        server.tokens[who] = made_key.json()["token"]

    # another organisation's key, limited to the new bank of the old name, reaches nothing:
    # answered as if the exchange did not exist (names cannot be probed)
    for method, path, body in [
        ("GET", f"/c/exchange/{bank}", None),
        ("PUT", f"/c/exchange/{bank}", {"enabled": True}),
        ("GET", f"/c/exchange/{bank}/status", None),
        ("GET", f"/v1/exchanges/{bank}", None),
        ("PATCH", f"/v1/exchanges/{bank}", {"enabled": True}),
        ("POST", f"/v1/exchanges/{bank}/fetch?wait=true", None),
    ]:
        refused = server.request(method, path, "other", json=body)
        assert refused.status_code == 404, (method, path, refused.text)
    assert bank not in server.get("/c/exchanges", "other").json()
    assert server.get("/v1/exchanges", "other").json()["exchanges"] == []

    # the bank's own key reaches its exchange, which keeps its name and fills the renamed bank
    shown = server.get(f"/c/exchange/{bank}", "owner")
    assert (shown.status_code, shown.json()["name"]) == (200, bank)
    assert server.get("/c/exchanges", "owner").json() == [bank]
    assert server.get(f"/v1/exchanges/{bank}", "owner").json()["list"] == renamed
    assert server.request("PUT", f"/c/exchange/{bank}", "owner",
                          json={"enabled": False}).status_code == 200  # fmt: skip
    fetched = server.post(f"/v1/exchanges/{bank}/fetch?wait=true", "owner")
    assert fetched.status_code == 200, fetched.text
    assert server.get(f"/v1/lists/{renamed}", "auditor").json()["version"] > 0
    assert server.get(f"/v1/lists/{bank}", "auditor").json()["version"] == 0

    assert server.request("DELETE", f"/c/exchange/{bank}", "admin").status_code == 200
    assert server.get(f"/c/bank/{renamed}", "auditor").status_code == 404  # its bank with it
    assert server.request("DELETE", f"/c/bank/{bank}", "admin").status_code == 200
