"""The ThreatExchange plug-in against the Graph API's threat updates on loopback
(``support.exchanges.threatexchange``), through the real ``exchanges.http.Http``: a privacy
group's updates page by page, the checkpoint as the newest update time, tombstones withdrawing
their indicator, a corrupt record quarantined while the rest of its page applies, a corrupt
page retried then named, a refused token never shown."""

import ipaddress
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.errors import Unsupported
from hashguard.exchanges import registry
from hashguard.exchanges.api import ExchangeConfigError, ExchangeUnavailable, FeedbackItem, Page
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.http import Http
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Sync
from hashguard.exchanges.threatexchange import ThreatExchangeExchange
from hashguard.lists.model import Category, EntryStatus
from hashguard.lists.records import Submission, Withdrawal
from hashguard.matching import Matcher, Query, query
from hashguard.signals import registry as signals
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.exchanges.threatexchange import ThreatExchangeStandIn
from support.media import jpeg

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
GROUP = 1012185296055235
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pdq(n: int) -> str:
    return f"{n:064x}"


def md5(n: int) -> str:
    return f"{n:032x}"


def exchange(stand_in: ThreatExchangeStandIn, *, token: str | None = None,
             timeout: float = 30, group: int = GROUP) -> ThreatExchangeExchange:  # fmt: skip
    config = ThreatExchangeExchange.check_config({"base_url": stand_in.url, "privacy_group": group})
    http = Http(config["base_url"], LOOPBACK, timeout=timeout)
    return ThreatExchangeExchange(config, {"api_token": token or stand_in.token}, http)


def records(pages: list[Page]) -> list[Any]:
    return [record for page in pages for record in page.records]


@pytest.fixture
def te() -> Iterator[ThreatExchangeStandIn]:
    with ThreatExchangeStandIn(page_size=2) as stand_in:
        yield stand_in


def seed(te: ThreatExchangeStandIn) -> None:
    te.add("101", "HASH_PDQ", pdq(1).upper(), at=T0 - timedelta(hours=5), tags=("csam", "a1"))
    te.add("102", "HASH_MD5", md5(2), at=T0 - timedelta(hours=4), tags=("csam",))
    te.add("103", "URI", "https://example.org/x", at=T0 - timedelta(hours=3))
    te.add("104", "HASH_VIDEO_MD5", md5(4), at=T0 - timedelta(hours=3))
    te.add("105", "VIDEO_HASH_MD5", md5(5), at=T0 - timedelta(hours=2))
    te.add("106", "HASH_SHA256", "ab" * 32, at=T0 - timedelta(hours=1), tags=("tvec",))
    te.delete("107", at=T0 - timedelta(minutes=30))  # deleted before we ever saw it


def test_plug_in_is_registered_with_hmas_schema() -> None:
    plugin = registry.get("fb_threatexchange")
    assert plugin is ThreatExchangeExchange and not plugin.supports_feedback
    fields = {f["name"]: f for f in plugin.config_schema.as_json()["fields"]}
    assert fields["privacy_group"]["type"] == "number" and fields["privacy_group"]["required"]
    assert plugin.credentials_schema is not None
    token = {f.name: f for f in plugin.credentials_schema.fields}["api_token"]
    assert token.type == "string" and token.secret
    assert plugin.check_config({"privacy_group": "12"}) == {
        "base_url": "https://graph.facebook.com/v21.0",
        "privacy_group": 12,
    }
    for config in ({}, {"privacy_group": "abc"}, {"privacy_group": -3}, {"privacy_group": 1.5}):
        with pytest.raises(ExchangeConfigError, match="privacy_group"):
            plugin.check_config(config)
    with pytest.raises(ExchangeConfigError, match="unknown setting"):
        plugin.check_config({"privacy_group": 1, "environment": "x"})
    with pytest.raises(ExchangeConfigError, match=r"APP_ID\|SECRET") as refused:
        plugin.check_credentials({"api_token": "not a token secret-xyz"})
    assert "secret-xyz" not in str(refused.value)


def test_first_fetch_reads_every_page_of_updates(te: ThreatExchangeStandIn) -> None:
    seed(te)
    pages = list(exchange(te).fetch(None))
    assert len(pages) == 4  # 7 updates, 2 a page
    first, *_ = te.requests
    assert first[0].startswith(f"/v21.0/{GROUP}/threat_updates?fields=id%2Cindicator%2Ctype")
    assert "start_time" not in first[0] and "access_token" not in first[0]
    assert first[1]["Authorization"] == f"OAuth {te.token}"
    assert all("after=" in path for path, _ in te.requests[1:])
    times = [page.checkpoint["update_time"] for page in pages if page.checkpoint]
    assert times == sorted(times) and len(times) == 4
    assert times[-1] == int((T0 - timedelta(minutes=30)).timestamp())
    assert pages[-1].checkpoint_at == T0 - timedelta(minutes=30)

    got = records(pages)
    submissions = {(r.signal, r.value): r for r in got if isinstance(r, Submission)}
    assert set(submissions) == {
        ("pdq", pdq(1)), ("md5", md5(2)), ("md5", md5(4)), ("md5", md5(5)), ("sha256", "ab" * 32),
    }  # fmt: skip
    held = submissions[("pdq", pdq(1))]
    assert held.labels == {"csam", "a1"} and held.restates
    assert [s.reference for s in held.provenance.sources] == [f"fb_threatexchange:{GROUP}:101"]
    assert held.provenance.sources[0].organisation == f"ThreatExchange privacy group {GROUP}"
    assert [r.reference for r in got if isinstance(r, Withdrawal)] == [
        f"fb_threatexchange:{GROUP}:107"
    ]
    skipped = sum((page.skipped for page in pages), start=Counter())
    assert skipped == {"URI indicators (not supported)": 1}


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    yield ListStore(engine)
    engine.dispose()


def test_incremental_fetch_from_the_update_time_applies_tombstones(
    te: ThreatExchangeStandIn, store: ListStore
) -> None:
    store.create("fb_threatexchange", "ThreatExchange", Category.KNOWN_CSAM)
    seed(te)
    first = list(exchange(te).fetch(None))
    store.apply("fb_threatexchange", records(first))
    active = {
        (e.signal, e.value) for e in store.entries("fb_threatexchange", [EntryStatus.ACTIVE])[1]
    }
    assert len(active) == 5

    te.delete("101", at=T0 + timedelta(minutes=5))  # the PDQ withdrawn
    te.add("102", "HASH_MD5", md5(2), at=T0 + timedelta(minutes=6), tags=("reviewed",))
    te.add("108", "HASH_PDQ", pdq(8), at=T0 + timedelta(minutes=7), tags=("csam",))
    te.requests.clear()
    checkpoint = first[-1].checkpoint
    second = list(exchange(te).fetch(checkpoint))
    assert f"start_time={checkpoint['update_time']}" in te.requests[0][0]
    got = records(second)
    # The update at the checkpoint's second is read again (start_time includes it): harmless.
    assert [r.reference for r in got if isinstance(r, Withdrawal)] == [
        f"fb_threatexchange:{GROUP}:107",
        f"fb_threatexchange:{GROUP}:101",
    ]
    summary = store.apply("fb_threatexchange", got)
    assert summary.removed == 1 and summary.added == 1
    entries = {(e.signal, e.value): e for e in store.entries("fb_threatexchange")[1]}
    assert entries[("pdq", pdq(1))].status is EntryStatus.DELETED
    assert entries[("md5", md5(2))].labels == {"reviewed"}  # restated by its only source
    assert entries[("pdq", pdq(8))].status is EntryStatus.ACTIVE
    assert second[-1].checkpoint == {"update_time": int((T0 + timedelta(minutes=7)).timestamp())}


def test_a_corrupt_record_is_quarantined_and_the_rest_of_its_page_applied(
    te: ThreatExchangeStandIn,
) -> None:
    te.page_size = 10
    te.add("201", "HASH_PDQ", pdq(1), at=T0 - timedelta(hours=3))
    te.add("202", "HASH_PDQ", "not-a-hash", at=T0 - timedelta(hours=2))
    te.add_raw(
        {"indicator": md5(3), "type": "HASH_MD5", "last_updated": 1}, at=T0 - timedelta(hours=2)
    )
    te.add_raw({"id": "204", "indicator": md5(4), "type": "HASH_MD5", "last_updated": "soon"},
               at=T0 - timedelta(hours=2))  # fmt: skip
    te.add("205", "HASH_MD5", md5(5), at=T0 - timedelta(hours=1))
    pages = list(exchange(te).fetch(None))
    assert len(pages) == 1
    assert {r.value for r in pages[0].records} == {pdq(1), md5(5)}
    bad = {q.position: q for q in pages[0].quarantined}
    assert set(bad) == {
        "page 1 of threat updates since the start, update 2 (id 202)",
        "page 1 of threat updates since the start, update 3",
        "page 1 of threat updates since the start, update 4 (id 204)",
    }
    assert "pdq" in bad["page 1 of threat updates since the start, update 2 (id 202)"].reason
    assert "no id" in bad["page 1 of threat updates since the start, update 3"].reason
    assert md5(3) in bad["page 1 of threat updates since the start, update 3"].excerpt
    assert (
        "last_updated" in bad["page 1 of threat updates since the start, update 4 (id 204)"].reason
    )
    assert pages[0].checkpoint == {"update_time": int((T0 - timedelta(hours=1)).timestamp())}


def test_a_corrupt_page_is_asked_for_again_then_named_and_the_fetch_stops(
    te: ThreatExchangeStandIn,
) -> None:
    seed(te)
    te.corrupt_page(2, times=2)
    assert len(list(exchange(te).fetch(None))) == 4
    te.corrupt_page(2)
    fetched: list[Page] = []
    with pytest.raises(ExchangeUnavailable) as failed:
        for page in exchange(te).fetch(None):
            fetched.append(page)
    message = str(failed.value)
    assert "page 2 of threat updates since the start stayed unreadable after 3 tries" in message
    assert "cannot be skipped" in message and te.token not in message
    assert len(fetched) == 1 and fetched[0].checkpoint is not None


def test_a_slow_page_ends_the_fetch_as_unavailable(te: ThreatExchangeStandIn) -> None:
    seed(te)
    te.slow_page(2)  # held until released: the timeout only has to let page 1 through
    fetched: list[Page] = []
    with pytest.raises(ExchangeUnavailable, match="timed out") as failed:
        for page in exchange(te, timeout=5).fetch(None):  # 1 s was missed on a busy machine
            fetched.append(page)
    te.release()
    assert len(fetched) == 1 and te.token not in str(failed.value)


def test_a_refused_token_or_group_is_named_without_the_token(te: ThreatExchangeStandIn) -> None:
    seed(te)
    wrong = "1234567890123|wrongsecretwrongsecret"
    with pytest.raises(ExchangeUnavailable) as refused:
        list(exchange(te, token=wrong).fetch(None))
    message = str(refused.value)
    assert "refused the access token" in message and "OAuthException 190" in message
    assert "wrongsecret" not in message and te.token.split("|")[1] not in message
    assert len(te.requests) == 1  # not retried
    with pytest.raises(ExchangeUnavailable, match="GraphMethodException 100"):
        list(exchange(te, group=42).fetch(None))


@pytest.mark.parametrize(
    ("status", "error", "refused"),
    [
        (400, {"type": "OAuthException", "code": [190], "message": "a list for a code"}, False),
        (400, {"type": "OAuthException", "code": {"190": 1}, "message": "an object"}, False),
        (400, {"type": "OAuthException", "code": "190", "message": "text for a code"}, False),
        (400, {"type": "x" * 1_000_000, "code": 1, "message": ["m" * 1_000_000]}, False),
        (400, ["not", "an", "object"], False),
        (403, {"type": None, "code": None, "message": None}, True),
    ],
)
def test_an_odd_error_from_threatexchange_is_named_briefly(
    te: ThreatExchangeStandIn, status: int, error: object, refused: bool
) -> None:
    """Whatever the Graph API's error answer holds, the fetch ends with one short message
    saying the page and status (and the token refused for 401/403 or the token error codes),
    never a crash."""
    seed(te)
    te.answer_page(2, status, json.dumps({"error": error}).encode())
    fetched: list[Page] = []
    with pytest.raises(ExchangeUnavailable) as failed:
        for page in exchange(te).fetch(None):
            fetched.append(page)
    message = str(failed.value)
    assert len(fetched) == 1 and len(message) < 600 and te.token not in message
    if refused:
        assert f"refused the access token for privacy group {GROUP} (HTTP {status}" in message
    else:
        assert f"page 2 of threat updates since the start answered HTTP {status}" in message


def test_an_error_page_echoing_the_token_in_any_form_never_shows_it(
    te: ThreatExchangeStandIn,
) -> None:
    secret = te.token.split("|")[1]
    for echoed in (te.token, te.token.replace("|", "%7C"), te.token.replace("|", " | "),
                   secret[: len(secret) // 2], secret[-9:]):  # fmt: skip
        te.answer_page(1, 403, f"<html>access_token={echoed} refused</html>".encode())
        with pytest.raises(ExchangeUnavailable) as refused:
            list(exchange(te).fetch(None))
        message = str(refused.value)
        assert "(the token)" in message and "refused the access token" in message
        assert not any(secret[i : i + 8] in message for i in range(len(secret) - 7)), echoed


def test_feedback_is_not_offered() -> None:
    with ThreatExchangeStandIn() as te:
        with pytest.raises(Unsupported):
            exchange(te).send_feedback(FeedbackItem("pdq", pdq(1), "", "Blocked"))
        assert te.requests == []


def test_sync_fetches_a_privacy_group_and_its_tombstone_stops_matching(engine: Engine) -> None:
    """End to end: a ThreatExchange exchange with a sealed token, fetched by ``Sync`` into the
    list of its name; a scene's PDQ matches until the tombstone, fetched from the checkpoint,
    withdraws it; a corrupt update is quarantined while the rest applies."""
    scene = signals.get("pdq").hash(jpeg(12))
    lists = ListStore(engine)
    exchanges = Exchanges(engine, lists, Sealer(secrets.token_bytes(32)), networks=LOOPBACK)
    with ThreatExchangeStandIn(page_size=2) as te:
        te.add("301", "HASH_PDQ", scene.hex, at=T0 - timedelta(hours=2), tags=("csam",))
        te.add("302", "HASH_VIDEO_MD5", md5(2), at=T0 - timedelta(hours=1))
        te.add_raw({"id": "303", "type": "HASH_MD5", "indicator": "xyz", "last_updated": 5},
                   at=T0 - timedelta(minutes=50))  # fmt: skip
        config = {"base_url": te.url, "privacy_group": GROUP}
        exchanges.add("TX_COLLAB", "fb_threatexchange", config, {"api_token": te.token})
        sync = Sync(exchanges, networks=LOOPBACK)
        fetched = sync.fetch("TX_COLLAB")
        assert fetched.succeeded, fetched.error
        assert (fetched.records, fetched.quarantined) == (2, 1)
        matcher = Matcher(lists, ["TX_COLLAB"])
        (match,) = matcher.match(Query.of([("pdq", scene)]))
        assert match.labels == {"csam"}
        assert exchanges.status("TX_COLLAB").checkpoint_ts == int(
            (T0 - timedelta(hours=1)).timestamp()
        )

        te.delete("301", at=T0 + timedelta(minutes=1))
        te.requests.clear()
        again = sync.fetch("TX_COLLAB")
        assert again.succeeded, again.error
        assert f"start_time={int((T0 - timedelta(hours=1)).timestamp())}" in te.requests[0][0]
        assert matcher.refresh() >= 1
        assert matcher.match(Query.of([("pdq", scene)])) == []
        assert matcher.match(query.parse("md5", md5(2))) != []
        assert te.token not in repr(exchanges.status("TX_COLLAB"))


def test_an_update_dated_in_the_future_is_quarantined_and_never_becomes_the_checkpoint(
    te: ThreatExchangeStandIn,
) -> None:
    te.page_size = 10
    te.add("301", "HASH_MD5", md5(1), at=T0)
    for n, future in enumerate((99999999999, 1e20, float("inf")), start=2):  # year 5138, ...
        te.add_raw({"id": f"30{n}", "indicator": md5(n), "type": "HASH_MD5",
                    "last_updated": future}, at=T0 + timedelta(minutes=n))  # fmt: skip
    te.add("305", "HASH_MD5", md5(5), at=datetime.now(UTC) + timedelta(days=2))
    pages = list(exchange(te).fetch(None))
    assert {r.value for r in records(pages)} == {md5(1)}
    held = [q for page in pages for q in page.quarantined]
    assert [q.position.rpartition(" ")[2] for q in held] == ["302)", "303)", "304)", "305)"]
    assert "after this fetch began" in held[0].reason and "in the future" in held[0].reason
    assert "expected Unix seconds" in held[2].reason  # Infinity is not a time
    checkpoint = pages[-1].checkpoint
    assert checkpoint == {"update_time": int(T0.timestamp())}

    # The next fetch asks from that time, so a tombstone made since still arrives.
    te.delete("301", at=T0 + timedelta(hours=1))
    later = list(exchange(te).fetch(checkpoint))
    assert any(isinstance(r, Withdrawal) for r in records(later))
    assert te.requests[-1][0].count(f"start_time={int(T0.timestamp())}") == 1


@pytest.mark.parametrize(
    "update",
    [{"id": "3\u000002", "type": "HASH_MD5", "indicator": md5(9)},  # a NUL in its id
     {"id": "303", "type": "HASH_MD5", "indicator": md5(9), "last_updated": 1700000000,
      "tags": [["nested"]], "should_delete": None}],
)  # fmt: skip
def test_sync_quarantines_whatever_a_corrupt_update_holds_on_either_database(
    engine: Engine, update: dict[str, Any]
) -> None:
    t0 = datetime.now(UTC) - timedelta(days=1)
    exchanges = Exchanges(
        engine, ListStore(engine), Sealer(secrets.token_bytes(32)), networks=LOOPBACK
    )
    with ThreatExchangeStandIn() as stand_in:
        stand_in.add("301", "HASH_MD5", md5(1), at=t0)
        stand_in.add_raw(update, at=t0 + timedelta(minutes=1))
        for n, tags in enumerate(({"data": None}, {"data": 5}, {"data": [5, {"text": 7}]}), 2):
            stand_in.add_raw({"id": f"30{n + 2}", "type": "HASH_MD5", "indicator": md5(n),
                              "last_updated": int(t0.timestamp()) + 120, "tags": tags},
                             at=t0 + timedelta(minutes=2))  # fmt: skip
        exchanges.add("TX", "fb_threatexchange", {"base_url": stand_in.url,
                      "privacy_group": GROUP}, {"api_token": stand_in.token})  # fmt: skip
        fetched = Sync(exchanges, networks=LOOPBACK).fetch("TX")
    assert fetched.succeeded, fetched.error
    assert (fetched.records, fetched.quarantined) == (4, 1)
    values = {e.value: e for e in exchanges.lists.entries("TX")[1]}
    assert set(values) == {md5(1), md5(2), md5(3), md5(4)}
    assert values[md5(2)].labels == frozenset()  # tags it cannot read: none
    (held,) = exchanges.quarantined("TX")
    assert "\x00" not in held.position + held.reason + held.excerpt
    if "\x00" in update["id"]:
        assert held.position.endswith("(id 3\\x0002)")
