"""Exchanges in the running service: ``hashguard serve`` builds them, fetches what is due in its
own thread, and its Matcher follows each fetch at once: a hash an exchange withdraws stops
matching within a second of the fetch."""

import ipaddress
from pathlib import Path

import httpx
from sqlalchemy import Engine

from hashguard.api.service import Service
from hashguard.api.settings import ServiceSettings
from hashguard.app import create_app
from hashguard.store.api_keys import ApiKeyStore, Role

from support.exchanges.hashguard_peer import PeerFeed, change
from support.in_process import serving
from support.waiting import eventually

A, B = "0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def _matched(client: httpx.Client, value: str) -> bool:
    answer = client.post("/v1/match/hashes", json={"hashes": [{"signal": "md5", "value": value}]})
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["results"][0]["matches"])


def test_the_service_fetches_exchanges_and_its_matcher_follows_a_tombstone_at_once(
    engine: Engine, tmp_path: Path, feed: PeerFeed
) -> None:
    _key, token = ApiKeyStore(engine).create(Role.MATCHER, name="exchange test")
    settings = ServiceSettings(secret_file=tmp_path / "secret.key", exchange_networks=LOOPBACK)
    app = create_app(engine, settings)
    service: Service = app.state.service
    feed.changes = [change(1, A), change(2, B)]
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        service.exchanges.add("PEER", "hashguard", {"base_url": feed.url, "list": "known"},
                              {"api_key": feed.key}, interval=3600)  # fmt: skip
        # Added: due at once, so the service's scheduler fetches it.
        service.exchange_scheduler.wake()
        assert eventually(lambda: service.exchanges.status("PEER").fetched_items == 2, 30)
        assert eventually(lambda: _matched(client, A), 1) and _matched(client, B)

        feed.changes.append(change(3, A, kind="delete"))
        fetched = service.exchange_sync.fetch("PEER")
        assert fetched.succeeded and fetched.records == 1
        assert eventually(lambda: not _matched(client, A), 1)
        assert _matched(client, B)
