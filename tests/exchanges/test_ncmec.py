"""The NCMEC plug-in against NCMEC's API on loopback (``support.exchanges.ncmec``), through the
real ``exchanges.http.Http``: windows read page by page from a checkpoint, entries, updates and
deletions as the file importer makes them, members filtered, a corrupt record quarantined while
the rest of its page applies, a corrupt page retried then named, refused credentials, feedback."""

import base64
import ipaddress
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.exchanges import registry
from hashguard.exchanges.api import (
    ExchangeConfigError,
    ExchangeUnavailable,
    FeedbackItem,
    Page,
)
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.http import Http
from hashguard.exchanges.ncmec import NcmecExchange
from hashguard.exchanges.store import Exchanges, check_settings
from hashguard.exchanges.sync import Sync
from hashguard.lists.formats import ncmec as ncmec_format
from hashguard.lists.model import Category, EntryStatus
from hashguard.lists.records import Submission, Withdrawal
from hashguard.matching import Matcher, Query, query
from hashguard.signals import registry as registry_signals
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.exchanges.ncmec import NcmecStandIn
from support.media import jpeg
from support.waiting import eventually

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pdq(n: int) -> str:
    return f"{n:064x}"


def md5(n: int) -> str:
    return f"{n:032x}"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def exchange(
    stand_in: NcmecStandIn,
    clock: Clock,
    *,
    password: str | None = None,
    timeout: float = 30,
    kind: type[NcmecExchange] = NcmecExchange,
    **config: Any,
) -> NcmecExchange:
    checked = kind.check_config({"base_url": stand_in.url, **config})
    credentials = {"username": stand_in.username, "password": password or stand_in.password}
    http = Http(checked["base_url"], LOOPBACK, timeout=timeout)
    return kind(checked, credentials, http, clock=clock)


def drain(pages: Iterator[Page]) -> list[Page]:
    return list(pages)


def records(pages: list[Page]) -> list[Any]:
    return [record for page in pages for record in page.records]


@pytest.fixture
def ncmec() -> Iterator[NcmecStandIn]:
    with NcmecStandIn(page_size=2) as stand_in:
        yield stand_in


def seed(stand_in: NcmecStandIn) -> None:
    """Two members' entries over the last three hours: images with md5, sha1, pdq and a
    PhotoDNA NCMEC serves, a video with a large fingerprint served by URL, a deletion."""
    stand_in.add(7, "keep", at=T0 - timedelta(hours=3), classification="A1",
                 md5=md5(1), pdq=pdq(1), pdna="ab" * 20)  # fmt: skip
    stand_in.add(7, "update", at=T0 - timedelta(hours=2), classification="A1", sha1="bb" * 20)
    stand_in.add(8, "shared", at=T0 - timedelta(hours=2), classification="B1", pdq=pdq(3))
    stand_in.add(9, "clip", at=T0 - timedelta(hours=1), media="video", classification="A1",
                 md5=md5(4), tmk_pdqf="href:/v2/entries/9/clip/fingerprints/TMK_PDQF")  # fmt: skip
    stand_in.delete(7, "gone", at=T0 - timedelta(minutes=30))


def test_plug_in_is_registered_and_describes_its_settings() -> None:
    plugin = registry.get("ncmec")
    assert plugin is NcmecExchange and plugin.category is Category.KNOWN_CSAM
    fields = {f["name"]: f for f in plugin.config_schema.as_json()["fields"]}
    assert {"environment", "only_esp_ids", "start_time"} <= set(fields)
    assert plugin.credentials_schema is not None
    secret = {f.name: f.secret for f in plugin.credentials_schema.fields}
    assert secret == {"username": False, "password": True}
    assert plugin.check_config({"environment": "test_NGO"})["base_url"] == (
        "https://hashsharing-test.ncmec.org/npo"
    )
    assert plugin.check_config({})["base_url"] == "https://report.cybertip.org/hashsharing"
    # What the exchange store keeps: the environment's URL, unless a base URL is given.
    assert check_settings(plugin, {"environment": "NGO"})["base_url"] == (
        "https://hashsharing.ncmec.org/npo"
    )
    given = check_settings(plugin, {"environment": "NGO", "base_url": "https://ncmec.test/x"})
    assert given["base_url"] == "https://ncmec.test/x"
    for config, named in [
        ({"environment": "Moon"}, "environment 'Moon'"),
        ({"only_esp_ids": ["seven"]}, "only_esp_ids: 'seven'"),
        ({"start_time": "yesterday"}, "start_time 'yesterday'"),
        ({"page": 3}, "unknown setting"),
    ]:
        with pytest.raises(ExchangeConfigError, match=named):
            plugin.check_config(config)
    with pytest.raises(ExchangeConfigError, match="non-empty password") as refused:
        plugin.check_credentials({"username": "u", "password": ""})
    assert plugin.check_credentials({"username": "u", "password": "p"}) == {
        "username": "u",
        "password": "p",
    }
    assert "p'" not in str(refused.value)


def test_first_fetch_reads_every_page_of_the_window_as_the_file_importer_would(
    ncmec: NcmecStandIn, tmp_path: Path
) -> None:
    seed(ncmec)
    pages = drain(exchange(ncmec, Clock(T0)).fetch(None))
    # 5 entries, 2 a page: 3 pages, the first two keep their next link, the last ends the window
    assert len(pages) == 3
    gets = [path for method, path in ncmec.requests if method == "GET"]
    assert gets[0].startswith("/hashsharing/v2/entries?from=1970-01-01T00%3A00%3A00Z&to=")
    assert "start=3" in gets[1] and "start=5" in gets[2]
    for page in pages[:2]:
        assert page.checkpoint is not None and page.checkpoint["from"] == 0
        assert page.checkpoint["next"].startswith("/v2/entries?") and page.checkpoint_at == (
            datetime.fromtimestamp(0, UTC)
        )
    end = T0 - timedelta(seconds=5)
    assert pages[-1].checkpoint == {
        "from": int(end.timestamp()),
        "window": pages[-1].checkpoint["window"],
    }
    assert pages[-1].checkpoint_at == end
    skipped = sum((page.skipped for page in pages), start=Counter())
    assert skipped == {
        "pdna fingerprints (not supported)": 1,
        "tmk-pdqf fingerprints (served by URL, not fetched)": 1,
    }

    # The same entries in one document, read by `lists import --format ncmec`: the same records.
    whole = NcmecStandIn(page_size=100)
    try:
        seed(whole)
        whole_pages = drain(exchange(whole, Clock(T0)).fetch(None))
        file = tmp_path / "entries.xml"
        status, _, body = whole.get(whole.requests[0][1], f"Basic {_basic(whole)}")
        file.write_bytes(body)
        assert status == 200
        assert sorted(map(repr, records(whole_pages))) == sorted(map(repr, ncmec_format.read(file)))
    finally:
        whole.close()
    assert sorted(map(repr, records(pages))) == sorted(map(repr, records(whole_pages)))


def _basic(stand_in: NcmecStandIn) -> str:
    return base64.b64encode(f"{stand_in.username}:{stand_in.password}".encode()).decode()


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    yield ListStore(engine)
    engine.dispose()


def test_incremental_fetch_takes_updates_and_deletions_after_the_checkpoint(
    ncmec: NcmecStandIn, store: ListStore
) -> None:
    store.create("ncmec", "NCMEC", Category.KNOWN_CSAM)
    seed(ncmec)
    clock = Clock(T0)
    first = drain(exchange(ncmec, clock).fetch(None))
    store.apply("ncmec", records(first))
    active = {(e.signal, e.value): e for e in store.entries("ncmec", [EntryStatus.ACTIVE])[1]}
    assert set(active) == {
        ("md5", md5(1)), ("pdq", pdq(1)), ("sha1", "bb" * 20), ("pdq", pdq(3)), ("md5", md5(4)),
    }  # fmt: skip
    assert active[("pdq", pdq(1))].labels == {"A1"}

    # An hour later: member 7 reclassified one entry and deleted another, member 8 deleted its
    # own, a new entry arrived; one entry changed before the checkpoint is not asked for again.
    ncmec.add(7, "update", at=T0 + timedelta(minutes=10), classification="A2", sha1="bb" * 20)
    ncmec.delete(7, "keep", at=T0 + timedelta(minutes=20))
    ncmec.delete(8, "shared", at=T0 + timedelta(minutes=30))
    ncmec.add(8, "new", at=T0 + timedelta(minutes=40), classification="B2", pdq=pdq(5))
    ncmec.requests.clear()
    clock.at = T0 + timedelta(hours=1)
    second = drain(exchange(ncmec, clock).fetch(first[-1].checkpoint))
    gets = [path for method, path in ncmec.requests if method == "GET"]
    start = (T0 - timedelta(seconds=5)).strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ")
    assert gets[0].startswith(f"/hashsharing/v2/entries?from={start}&to=")
    got = records(second)
    assert sum(isinstance(r, Submission) for r in got) == 2  # the reclassified one and the new
    assert {r.reference for r in got if isinstance(r, Withdrawal) and r.keep is None} == {
        "ncmec:7:image:keep",
        "ncmec:8:image:shared",
    }
    summary = store.apply("ncmec", got)
    assert summary.removed == 3  # md5 and pdq of "keep", pdq of "shared"
    active = {(e.signal, e.value): e for e in store.entries("ncmec", [EntryStatus.ACTIVE])[1]}
    assert set(active) == {("sha1", "bb" * 20), ("md5", md5(4)), ("pdq", pdq(5))}
    assert active[("sha1", "bb" * 20)].labels == {"A2"}

    # Nothing new: the next fetch reads one empty window and applies nothing.
    clock.at += timedelta(minutes=5)
    third = drain(exchange(ncmec, clock).fetch(second[-1].checkpoint))
    assert records(third) == [] and third[-1].checkpoint["from"] > second[-1].checkpoint["from"]


def test_a_fetch_cut_short_mid_window_resumes_at_the_page_it_stopped_before(
    ncmec: NcmecStandIn,
) -> None:
    seed(ncmec)
    clock = Clock(T0)
    everything = records(drain(exchange(ncmec, clock).fetch(None)))
    ncmec.requests.clear()
    pages = exchange(ncmec, clock).fetch(None)
    first = next(pages)
    pages.close()  # the fetch ends after one page (a crash, a deadline)
    assert first.checkpoint is not None and "start=3" in first.checkpoint["next"]
    ncmec.requests.clear()
    rest = drain(exchange(ncmec, clock).fetch(first.checkpoint))
    assert "start=3" in ncmec.requests[0][1]  # the kept link, not the window again
    assert sorted(map(repr, first.records + records(rest))) == sorted(map(repr, everything))

    # A kept link older than 12 hours is not used: the window is read again from its start.
    ncmec.requests.clear()
    clock.at = T0 + timedelta(hours=13)
    again = drain(exchange(ncmec, clock).fetch(first.checkpoint))
    assert "start=" not in ncmec.requests[0][1]
    assert sorted(map(repr, records(again))) == sorted(map(repr, everything))


def test_a_window_too_big_is_cut_before_anything_of_it_is_applied(ncmec: NcmecStandIn) -> None:
    class SmallWindows(NcmecExchange):
        MAX_WINDOW_ENTRIES = 4

    for n in range(24):  # one entry an hour over the last day
        ncmec.add(7, f"e{n}", at=T0 - timedelta(hours=24 - n), classification="A1", md5=md5(n))
    pages = drain(
        exchange(ncmec, Clock(T0), kind=SmallWindows, start_time="2026-02-28").fetch(None)
    )
    got = [r for r in records(pages) if isinstance(r, Submission)]
    assert sorted(r.value for r in got) == sorted(md5(n) for n in range(24))  # each once
    assert len(got) == 24
    windows = {page.checkpoint["from"] for page in pages if "next" not in page.checkpoint}
    assert len(windows) > 2  # read in smaller windows, each ending with a checkpoint
    froms = [page.checkpoint_at for page in pages]
    assert froms == sorted(froms)  # the checkpoint never moves back


def test_only_the_members_followed_are_taken(ncmec: NcmecStandIn) -> None:
    seed(ncmec)
    pages = drain(exchange(ncmec, Clock(T0), only_esp_ids=[7, "9"]).fetch(None))
    references = {
        r.reference if isinstance(r, Withdrawal) else r.provenance.sources[0].reference
        for r in records(pages)
    }
    assert references == {
        "ncmec:7:image:keep", "ncmec:7:image:update", "ncmec:7:image:gone", "ncmec:9:video:clip",
    }  # fmt: skip
    skipped = sum((page.skipped for page in pages), start=Counter())
    assert skipped["entries of members not followed (only_esp_ids)"] == 1


def test_a_corrupt_record_is_quarantined_and_the_rest_of_its_page_applied(
    ncmec: NcmecStandIn,
) -> None:
    ncmec.page_size = 10
    ncmec.add(7, "good", at=T0 - timedelta(hours=2), classification="A1", pdq=pdq(1))
    ncmec.add(7, "badhash", at=T0 - timedelta(hours=2), classification="A1", pdq="zz" * 32,
              md5=md5(2))  # fmt: skip
    raw = (
        '<image><member id="7">Example ESP</member><timestamp>2026-03-01T11:00:00Z</timestamp>'
        f"<fingerprints><md5>{md5(3)}</md5></fingerprints></image>"
    )
    ncmec.add(7, "noid", at=T0 - timedelta(hours=1), raw=raw)
    ncmec.add(8, "fine", at=T0 - timedelta(minutes=5), classification="B1", md5=md5(4))
    pages = drain(exchange(ncmec, Clock(T0)).fetch(None))
    assert len(pages) == 1
    values = {r.value for r in pages[0].records if isinstance(r, Submission)}
    assert values == {pdq(1), md5(4)}  # nothing of a bad entry, everything of the good ones
    quarantined = sorted(pages[0].quarantined, key=lambda q: q.reason)
    assert len(quarantined) == 2
    for bad in quarantined:
        assert bad.position.startswith("GET /v2/entries?from=")
    by_reason = {q.reason: q for q in quarantined}
    bad_hash = next(q for q in quarantined if "badhash" in q.position)
    assert "(member 7, id badhash)" in bad_hash.position and "pdq" in bad_hash.reason
    assert "zz" * 32 in bad_hash.excerpt
    no_id = by_reason["no <id>"]
    assert "<image>" in no_id.position and md5(3) in no_id.excerpt
    assert pages[0].checkpoint is not None and "next" not in pages[0].checkpoint


def test_a_corrupt_page_is_asked_for_again_then_named_and_the_fetch_stops(
    ncmec: NcmecStandIn,
) -> None:
    seed(ncmec)
    ncmec.corrupt_page(start=3, times=2)  # twice HTML, then the page
    pages = drain(exchange(ncmec, Clock(T0)).fetch(None))
    assert len(records(pages)) == 10 and len(pages) == 3
    assert sum("start=3" in path for _, path in ncmec.requests) == 3

    ncmec.corrupt_page(start=3)  # always HTML
    ncmec.requests.clear()
    fetched: list[Page] = []
    with pytest.raises(ExchangeUnavailable) as failed:
        for page in exchange(ncmec, Clock(T0)).fetch(None):
            fetched.append(page)
    message = str(failed.value)
    assert "start=3" in message and "stayed unreadable after 3 tries" in message
    assert "cannot be skipped" in message and ncmec.password not in message
    assert sum("start=3" in path for _, path in ncmec.requests) == 3
    # What came before it stands, and its checkpoint points at the page that failed.
    assert len(fetched) == 1 and "start=3" in fetched[0].checkpoint["next"]


def test_a_slow_page_ends_the_fetch_as_unavailable(ncmec: NcmecStandIn) -> None:
    seed(ncmec)
    ncmec.slow_page(start=3)  # held until released: the timeout only has to let page 1 through
    fetched: list[Page] = []
    with pytest.raises(ExchangeUnavailable, match="timed out"):
        for page in exchange(ncmec, Clock(T0), timeout=5).fetch(None):  # 1 s: a busy CI missed it
            fetched.append(page)
    ncmec.release()
    assert len(fetched) == 1


def test_refused_credentials_are_named_without_the_secret(ncmec: NcmecStandIn) -> None:
    seed(ncmec)
    wrong = "not-the-password-42"
    with pytest.raises(ExchangeUnavailable) as refused:
        drain(exchange(ncmec, Clock(T0), password=wrong).fetch(None))
    message = str(refused.value)
    assert "refused the credentials (HTTP 401)" in message and "username and password" in message
    assert wrong not in message and ncmec.password not in message
    assert len(ncmec.requests) == 1  # not retried


def test_feedback_reaches_ncmec_for_entries_it_named(ncmec: NcmecStandIn) -> None:
    plugin = exchange(ncmec, Clock(T0))
    plugin.send_feedback(FeedbackItem("pdq", pdq(1), "ncmec:7:image:e 1", "Blocked"))
    plugin.send_feedback(FeedbackItem("pdq", pdq(1), "ncmec:8:image:e2", "NotBlocked"))
    # Nothing NCMEC has a place for: another source's reference, a verdict still pending.
    plugin.send_feedback(FeedbackItem("pdq", pdq(1), "stopncii:abc", "Blocked"))
    plugin.send_feedback(FeedbackItem("md5", md5(1), "ncmec:7:video:v1", "PendingReview"))
    with pytest.raises(ExchangeUnavailable, match="NCMEC offers: Not CSAM, Poor quality"):
        plugin.send_feedback(FeedbackItem("md5", md5(1), "ncmec:7:video:v1", "NotBlocked"))
    chosen = exchange(ncmec, Clock(T0), negative_reason="poor quality")
    chosen.send_feedback(FeedbackItem("md5", md5(1), "ncmec:7:video:v1", "NotBlocked"))
    got = [(f.member, f.entry, f.type, f.verdict, f.reasons) for f in ncmec.feedback]
    assert got == [
        ("7", "e%201", "PDQ", "affirmative", ()),
        ("8", "e2", "PDQ", "negative", ("a1b2c3d4-0000-4000-8000-000000000001",)),
        ("7", "v1", "MD5", "negative", ("a1b2c3d4-0000-4000-8000-000000000003",)),
    ]
    assert {f.content_type for f in ncmec.feedback} == {"application/xml; charset=utf-8"}
    wrong = exchange(ncmec, Clock(T0), password="wrong-password-1")
    with pytest.raises(ExchangeUnavailable, match="refused the credentials") as refused:
        wrong.send_feedback(FeedbackItem("pdq", pdq(1), "ncmec:7:image:e1", "Blocked"))
    assert "wrong-password-1" not in str(refused.value)


def test_sync_fetches_ncmec_into_its_list_and_a_deletion_stops_matching(engine: Engine) -> None:
    """End to end: an exchange added with sealed credentials, fetched by ``Sync`` into the list
    of its name; a scene's PDQ from NCMEC matches; a corrupt record is quarantined while the rest
    applies; the member's deletion, fetched from the checkpoint, stops the match."""
    scene = registry_signals.get("pdq").hash(jpeg(11))
    now = datetime.now(UTC)
    lists = ListStore(engine)
    exchanges = Exchanges(engine, lists, Sealer(secrets.token_bytes(32)), networks=LOOPBACK)
    with NcmecStandIn(page_size=2) as stand_in:
        stand_in.add(7, "scene", at=now - timedelta(hours=2), classification="A1", pdq=scene.hex)
        stand_in.add(7, "other", at=now - timedelta(hours=2), classification="A2", md5=md5(1))
        stand_in.add(8, "elsewhere", at=now - timedelta(hours=1), md5=md5(2))
        stand_in.add(7, "bad", at=now - timedelta(hours=1), pdq="0" * 63)
        credentials = {"username": stand_in.username, "password": stand_in.password}
        exchanges.add("ncmec", "ncmec", {"base_url": stand_in.url, "only_esp_ids": [7]},
                      credentials)  # fmt: skip
        sync = Sync(exchanges, networks=LOOPBACK)
        fetched = sync.fetch("ncmec")
        assert fetched.succeeded, fetched.error
        assert (fetched.quarantined, fetched.up_to_date) == (1, True)
        matcher = Matcher(lists, ["ncmec"])
        (match,) = matcher.match(Query.of([("pdq", scene)]))
        assert match.labels == {"A1"} and match.value == scene.hex
        assert matcher.match(query.parse("md5", md5(2))) == []  # member 8 is not followed
        status = exchanges.status("ncmec")
        assert status.last_fetch_succeeded and status.quarantined == 1
        assert (
            status.checkpoint_ts is not None
            and status.checkpoint_ts > (now - timedelta(minutes=1)).timestamp()
        )
        (held,) = exchanges.quarantined("ncmec")
        assert "(member 7, id bad)" in held.position and "0" * 63 in held.excerpt

        # Member 7 deletes the scene's entry just after the window read (NCMEC stamps the
        # change); the next fetch reads from the checkpoint once that second is settled.
        after = datetime.fromtimestamp(status.checkpoint_ts, UTC)
        stand_in.delete(7, "scene", at=after)
        stand_in.requests.clear()
        assert eventually(lambda: sync.fetch("ncmec").records == 1, timeout=30)
        assert all(f"from={after:%Y-%m-%dT%H}%3A" in path for _, path in stand_in.requests)
        assert matcher.refresh() >= 1
        assert matcher.match(Query.of([("pdq", scene)])) == []
        assert matcher.match(query.parse("md5", md5(1))) != []


def test_an_entry_whose_member_name_no_list_can_keep_is_quarantined_on_either_database(
    engine: Engine,
) -> None:
    """A member name longer than a list keeps (200 characters): PostgreSQL would refuse the
    entry's row and, with it, the whole fetch, every time."""
    now = datetime.now(UTC)
    exchanges = Exchanges(
        engine, ListStore(engine), Sealer(secrets.token_bytes(32)), networks=LOOPBACK
    )
    with NcmecStandIn(members={7: "M" * 250, 8: "Other ESP"}) as stand_in:
        stand_in.add(7, "long", at=now - timedelta(hours=2), md5=md5(1))
        stand_in.add(8, "fine", at=now - timedelta(hours=1), md5=md5(2))
        exchanges.add("ncmec", "ncmec", {"base_url": stand_in.url},
                      {"username": stand_in.username, "password": stand_in.password})  # fmt: skip
        fetched = Sync(exchanges, networks=LOOPBACK).fetch("ncmec")
    assert fetched.succeeded, fetched.error
    # Each entry is a submission and the withdrawal of what it no longer lists: the long one's
    # submission is quarantined, its withdrawal (of nothing held) applies.
    assert (fetched.records, fetched.quarantined) == (3, 1)
    assert [e.value for e in exchanges.lists.entries("ncmec")[1]] == [md5(2)]
    (held,) = exchanges.quarantined("ncmec")
    assert "submitted_by is 250 characters long" in held.reason
    assert exchanges.status("ncmec").checkpoint_ts is not None
