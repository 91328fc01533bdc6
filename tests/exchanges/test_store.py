"""Configured exchanges: each fills the list of its name (made with its plug-in's category),
its settings checked by its plug-in, every change audited, credentials kept sealed and never
shown, and a removed exchange's list kept."""

import logging
import secrets
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, text

from hashguard import errors
from hashguard.errors import NotFound, Unavailable
from hashguard.exchanges.api import ExchangeConfigError
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import ExchangeExists, ExchangeListTaken, Exchanges
from hashguard.exchanges.sync import Sync
from hashguard.lists.model import Category
from hashguard.store import audit
from hashguard.store.list_errors import ListInUse
from hashguard.store.lists import ListStore

from support.exchanges.harness import add_peer
from support.exchanges.hashguard_peer import PeerFeed, change


def test_an_exchange_fills_the_list_of_its_name_with_its_plug_ins_category(
    exchanges: Exchanges,
) -> None:
    added = exchanges.add("SAMPLE", "sample", actor="tester")
    assert (added.api, added.list, added.enabled, added.has_credentials) == (
        "sample", "SAMPLE", True, False)  # fmt: skip
    assert exchanges.lists.get("SAMPLE").category is Category.TEST
    assert [e.name for e in exchanges.all()] == ["SAMPLE"]
    event = audit.events(exchanges.engine, action="exchange.add")[-1]
    assert (event.actor, event.subject) == ("tester", "SAMPLE")

    with pytest.raises(ExchangeExists):
        exchanges.add("SAMPLE", "sample")
    exchanges.lists.create("known", "Hotline", Category.KNOWN_CSAM)
    with pytest.raises(ExchangeListTaken, match="list known holds known-csam, not test"):
        exchanges.add("known", "sample")
    with pytest.raises(NotFound, match=r"installed: .*hashguard.*sample"):
        exchanges.add("X", "nope")


def test_settings_are_checked_by_the_plug_in_and_named(exchanges: Exchanges) -> None:
    for config, said in [
        ({"list": "known"}, "base_url: required"),
        ({"base_url": "ftp://peer.example", "list": "known"}, "base_url"),
        ({"base_url": "https://peer.example"}, "list: required"),
        ({"base_url": "https://peer.example", "list": "k", "colour": "red"}, "colour: not a"),
        ({"base_url": "https://peer.example", "list": 7}, "list: 7 is not text"),
    ]:
        with pytest.raises(ExchangeConfigError, match=said):
            exchanges.add("PEER", "hashguard", config)
    with pytest.raises(ExchangeConfigError, match="api_key: required"):
        exchanges.add("PEER", "hashguard", {"base_url": "https://p.example", "list": "k"}, {})
    with pytest.raises(ExchangeConfigError, match="takes no credentials"):
        exchanges.add("S", "sample", {}, {"api_key": "x"})
    assert exchanges.all() == []


def test_update_and_remove_are_audited_and_the_list_stays(exchanges: Exchanges) -> None:
    exchanges.add("SAMPLE", "sample")
    updated = exchanges.update("SAMPLE", enabled=False, interval=3600, actor="tester")
    assert (updated.enabled, updated.interval) == (False, 3600)
    change_event = audit.events(exchanges.engine, action="exchange.update")[-1]
    assert '"interval_seconds":3600' in change_event.details
    with pytest.raises(ExchangeConfigError, match="interval"):
        exchanges.update("SAMPLE", interval=1)

    removed = exchanges.remove("SAMPLE", actor="tester")
    assert "its list SAMPLE stays" in removed.message
    assert exchanges.lists.get("SAMPLE").category is Category.TEST
    assert exchanges.all() == []
    assert audit.events(exchanges.engine, action="exchange.remove")[-1].subject == "SAMPLE"
    with pytest.raises(NotFound, match="no exchange named 'SAMPLE'"):
        exchanges.get("SAMPLE")


class _Unsealing(Sealer):
    """A sealer whose key store is gone: credentials cannot be sealed."""

    def seal(self, scope: str, credentials: Mapping[str, Any]) -> str:
        raise Unavailable(f"cannot seal the credentials of {scope}: the key store is gone")


def test_a_refused_add_leaves_nothing_not_even_its_list(engine: Engine) -> None:
    exchanges = Exchanges(engine, ListStore(engine), _Unsealing(secrets.token_bytes(32)))
    config = {"base_url": "https://p.example", "list": "known"}
    with pytest.raises(Unavailable, match="cannot seal the credentials of exchange:PEER"):
        exchanges.add("PEER", "hashguard", config, {"api_key": "k"}, actor="tester")
    assert exchanges.all() == [] and exchanges.lists.lists() == []
    assert audit.events(engine) == []
    exchanges.add("PEER", "hashguard", config, actor="tester")  # the name is free
    assert [e.action for e in audit.events(engine)] == ["list.create", "exchange.add"]


def test_a_list_an_exchange_fills_is_removed_only_after_the_exchange(
    exchanges: Exchanges,
) -> None:
    exchanges.add("SAMPLE", "sample", enabled=False)
    with pytest.raises(ListInUse) as refused:
        exchanges.lists.remove("SAMPLE", actor="tester")
    assert str(refused.value) == (
        "list SAMPLE is filled by exchange SAMPLE: remove the exchange first"
    )
    assert errors.kind_of(refused.value) is errors.Conflict
    assert exchanges.get("SAMPLE").list == "SAMPLE"
    assert audit.events(exchanges.engine, action="list.remove") == []
    exchanges.remove("SAMPLE")
    assert exchanges.lists.remove("SAMPLE", actor="tester").name == "SAMPLE"
    assert exchanges.lists.lists() == []


def _dump(engine: Engine) -> str:
    tables = ("exchanges", "exchange_credentials", "audit_events", "hash_lists")
    with engine.connect() as connection:
        return repr([connection.execute(text(f"SELECT * FROM {t}")).all() for t in tables])


def test_credentials_never_show_in_the_database_answers_or_logs(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, caplog: pytest.LogCaptureFixture
) -> None:
    feed.changes = [change(1, "0cc175b9c0f1b6a831c399e269772661")]
    with caplog.at_level(logging.DEBUG):
        add_peer(exchanges, feed)
        stored = feed.key  # the key the exchange holds, sealed
        assert sync.fetch("PEER").succeeded
        feed.key = "another-" + secrets.token_hex(8)  # the origin stops taking it: logged
        assert not sync.fetch("PEER").succeeded
    assert stored.startswith("hg_peer_") and len(stored) > 20
    for shown in (_dump(exchanges.engine), caplog.text, repr(exchanges.get("PEER").as_json()),
                  repr(exchanges.status("PEER").as_json())):  # fmt: skip
        assert stored not in shown
        assert feed.key not in shown
    assert exchanges.get("PEER").has_credentials
    assert "401" in exchanges.status("PEER").last_error


SHARED, OWN = "shared-" + secrets.token_hex(8), "own-" + secrets.token_hex(8)


def test_an_exchanges_own_credentials_win_over_its_plug_ins(exchanges: Exchanges) -> None:
    exchanges.add("PEER", "hashguard", {"base_url": "https://p.example", "list": "known"})
    assert exchanges.credentials_for("PEER") is None and not exchanges.get("PEER").has_credentials
    exchanges.set_api_credentials("hashguard", {"api_key": SHARED}, "tester", "https://p.example/")
    assert exchanges.credentials_for("PEER") == {"api_key": SHARED}
    exchanges.set_credentials("PEER", {"api_key": OWN}, actor="tester")
    assert exchanges.credentials_for("PEER") == {"api_key": OWN}
    exchanges.set_credentials("PEER", None, actor="tester")
    assert exchanges.credentials_for("PEER") == {"api_key": SHARED}
    events = audit.events(exchanges.engine)
    assert [e.action for e in events[-3:]] == ["exchange.credentials.set"] * 2 + [
        "exchange.credentials.remove"]  # fmt: skip
    assert all(SHARED not in e.details and OWN not in e.details for e in events)


# --- credentials go only where they were set for ------------------------------------------------


def test_shared_credentials_serve_only_exchanges_on_the_origin_they_were_set_for(
    exchanges: Exchanges,
) -> None:
    tx = {"api_token": "1234|" + SHARED}
    assert exchanges.set_api_credentials("fb_threatexchange", tx, "admin") == (
        "https://graph.facebook.com:443")  # fmt: skip
    exchanges.add("TX", "fb_threatexchange", {"privacy_group": 1})
    assert exchanges.credentials_for("TX") == tx and exchanges.get("TX").has_credentials
    # an exchange anyone adds elsewhere inherits nothing
    for number, base in enumerate(("https://attacker.example/v21.0",
                                   "http://graph.facebook.com/v21.0",
                                   "https://graph.facebook.com:8443/v21.0")):  # fmt: skip
        name = f"X{number}"
        exchanges.add(name, "fb_threatexchange", {"privacy_group": 1, "base_url": base})
        assert exchanges.credentials_for(name) is None and not exchanges.get(name).has_credentials
    # moved elsewhere, the exchange loses them; moved back, it has them again
    exchanges.update("TX", config={"privacy_group": 1, "base_url": "https://attacker.example"})
    assert exchanges.credentials_for("TX") is None
    exchanges.update("TX", config={"privacy_group": 2})
    assert exchanges.credentials_for("TX") == tx

    # a plug-in without a default base URL: the admin names the one they are for
    with pytest.raises(ExchangeConfigError, match="base_url: required"):
        exchanges.set_api_credentials("hashguard", {"api_key": SHARED}, "admin")
    assert (
        exchanges.set_api_credentials(
            "hashguard", {"api_key": SHARED}, "admin", "https://Peer.Example/v1"
        )
        == "https://peer.example:443"
    )


def test_an_exchange_moved_elsewhere_forgets_its_own_credentials_unless_an_admin_moves_it(
    exchanges: Exchanges,
) -> None:
    exchanges.add("PEER", "hashguard", {"base_url": "https://p.example/a", "list": "known"},
                  {"api_key": OWN})  # fmt: skip
    # on the same origin (another path, another setting) they stay
    exchanges.update("PEER", config={"base_url": "https://p.example/b", "list": "other"})
    assert exchanges.credentials_for("PEER") == {"api_key": OWN}

    # an admin's move carries them, bound to the new origin
    exchanges.update("PEER", config={"base_url": "https://q.example", "list": "known"},
                     carry_credentials=True, actor="admin")  # fmt: skip
    assert exchanges.credentials_for("PEER") == {"api_key": OWN}
    assert '"credentials":"moved"' in audit.events(exchanges.engine)[-1].details

    # anyone else's move forgets them (audited), and a move back does not bring them back
    exchanges.update("PEER", config={"base_url": "https://attacker.example", "list": "known"},
                     actor="curator")  # fmt: skip
    assert exchanges.credentials_for("PEER") is None and not exchanges.get("PEER").has_credentials
    removed, updated = audit.events(exchanges.engine)[-2:]
    assert (removed.action, removed.subject) == ("exchange.credentials.remove", "PEER")
    assert "another origin" in removed.details and '"credentials":"removed"' in updated.details
    exchanges.update("PEER", config={"base_url": "https://q.example", "list": "known"})
    assert exchanges.credentials_for("PEER") is None


def test_credentials_never_go_over_plain_http_but_to_the_networks_named(
    engine: Engine, exchanges: Exchanges
) -> None:
    strict = Exchanges(engine, exchanges.lists, exchanges.sealer)  # no exchange_networks
    said = "plain http, and credentials go over https only"
    with pytest.raises(ExchangeConfigError, match=said):
        strict.add(
            "PEER", "hashguard", {"base_url": "http://10.0.0.7", "list": "k"}, {"api_key": OWN}
        )
    with pytest.raises(ExchangeConfigError, match=said):
        strict.set_api_credentials("hashguard", {"api_key": SHARED}, "admin", "http://p.example")
    strict.add("PEER", "hashguard", {"base_url": "http://10.0.0.7", "list": "k"})  # no credentials
    with pytest.raises(ExchangeConfigError, match=said):
        strict.set_credentials("PEER", {"api_key": OWN})
    # an admin may not carry credentials from https to http either
    strict.add(
        "SAFE", "hashguard", {"base_url": "https://p.example", "list": "k"}, {"api_key": OWN}
    )
    with pytest.raises(ExchangeConfigError, match=said):
        strict.update("SAFE", config={"base_url": "http://p.example", "list": "k"},
                      carry_credentials=True)  # fmt: skip
    assert strict.credentials_for("SAFE") == {"api_key": OWN}
    assert strict.get("SAFE").config["base_url"] == "https://p.example"
    # loopback named in exchange_networks (the tests' stand-ins): plain http is allowed there
    exchanges.add("LOCAL", "hashguard", {"base_url": "http://127.0.0.1:9", "list": "k"},
                  {"api_key": OWN})  # fmt: skip
    assert exchanges.credentials_for("LOCAL") == {"api_key": OWN}
    assert strict.credentials_for("LOCAL") == {"api_key": OWN}  # bound, but a fetch refuses:
    fetched = Sync(strict, networks=[]).fetch("LOCAL")
    assert not fetched.succeeded and "plain http" in fetched.error
