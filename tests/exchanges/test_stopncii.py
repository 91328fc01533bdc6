"""The StopNCII exchange fetched through the real exchange HTTP client from a loopback stand-in
of its API: pages and checkpoints, withdrawals as tombstones, bad records quarantined while the
rest applies, a page that stays unreadable skipped past and named, a slow page ended at the
deadline, refused keys said clearly without the keys, feedback as StopNCII takes it."""

import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from hashguard.exchanges import registry
from hashguard.exchanges.api import (
    ExchangeConfigError,
    ExchangeUnavailable,
    FeedbackItem,
    Page,
)
from hashguard.exchanges.http import Http
from hashguard.exchanges.stopncii import StopNcii
from hashguard.lists.model import ChangeKind
from hashguard.lists.records import Submission, Tombstone

from support.exchanges.stopncii import (
    FEEDBACK_KEY,
    FETCH_KEY,
    SUBSCRIPTION_KEY,
    StopNciiStandIn,
)

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
KEYS = {"fetch_function_key": FETCH_KEY, "subscription_key": SUBSCRIPTION_KEY}
CASE = "00000000-0000-4000-8000-00000000abcd"


def pdq(n: int) -> str:
    """A benign PDQ value (not a hash of any image)."""
    return f"{n:02x}" * 32


@pytest.fixture
def stopncii() -> Iterator[StopNciiStandIn]:
    with StopNciiStandIn() as stand_in:
        yield stand_in


def exchange(
    stand_in: StopNciiStandIn,
    keys: dict[str, str] | None = None,
    timeout: float = 30.0,
    **config: Any,
) -> StopNcii:
    http = Http(stand_in.base_url, LOOPBACK, timeout=timeout)
    return StopNcii({"page_size": 2, **config}, KEYS if keys is None else keys, http)


def values(pages: list[Page]) -> list[tuple[str, str, str]]:
    """What the pages' records do, in order: (add|delete, signal, value)."""
    done = []
    for page in pages:
        for record in page.records:
            assert isinstance(record, Submission | Tombstone)
            kind = "add" if isinstance(record, Submission) else "delete"
            done.append((kind, record.signal, record.value))
    return done


def test_the_plug_in_is_registered_as_stopncii_for_an_ncii_list() -> None:
    plugin = registry.get("stopncii")
    assert plugin is StopNcii
    assert (plugin.category.value, plugin.supports_feedback) == ("ncii", True)
    credentials = plugin.credentials_schema
    assert credentials is not None
    assert [(f.name, f.required, f.secret) for f in credentials.fields] == [
        ("fetch_function_key", True, True),
        ("subscription_key", True, True),
        ("feedback_function_key", False, True),
    ]


def test_a_first_fetch_reads_every_page_and_checkpoints_each(stopncii: StopNciiStandIn) -> None:
    stopncii.add(pdq(1))
    stopncii.add(pdq(2), "Received")
    stopncii.add("cd" * 16, signal_type="VideoMD5")
    stopncii.add("ef" * 16, signal_type="VideoTMK")
    last = stopncii.add(pdq(3))

    pages = list(exchange(stopncii).fetch(None))

    assert values(pages) == [
        ("add", "pdq", pdq(1)),
        ("add", "pdq", pdq(2)),
        ("add", "md5", "cd" * 16),
        ("add", "pdq", pdq(3)),
    ]
    assert sum((p.skipped for p in pages), Counter()) == {"VideoTMK records (not supported)": 1}
    assert all(isinstance(r, Submission) and r.provenance.submitted_by == "StopNCII"
               for p in pages for r in p.records)  # fmt: skip
    # Between pages the checkpoint holds the page token; after the last, only the time.
    assert len(pages) == 3 and not any(p.quarantined for p in pages)
    assert set(pages[0].checkpoint or {}) == {"nextSetTimestamp", "startTimestamp", "nextPageToken"}
    assert pages[-1].checkpoint == {"nextSetTimestamp": last + 1}
    assert pages[-1].checkpoint_at is not None and pages[-1].checkpoint_at.timestamp() == last + 1
    fetches = stopncii.fetches()
    assert [f.params["startTimestamp"] for f in fetches] == ["10", "10", "10"]
    assert fetches[0].params["pageSize"] == "2" and "nextPageToken" not in fetches[0].params
    between = pages[0].checkpoint or {}
    assert fetches[1].params["nextPageToken"] == between["nextPageToken"]
    assert all(f.headers["x-functions-key"] == FETCH_KEY for f in fetches)
    assert all(f.headers["ocp-apim-subscription-key"] == SUBSCRIPTION_KEY for f in fetches)


def test_an_incremental_fetch_reads_only_what_changed_and_a_withdrawal_is_a_tombstone(
    stopncii: StopNciiStandIn,
) -> None:
    for n in range(1, 5):
        stopncii.add(pdq(n))
    stopncii.add("cd" * 16, signal_type="VideoMD5")
    first = list(exchange(stopncii).fetch(None))
    checkpoint = first[-1].checkpoint
    assert checkpoint is not None and len(values(first)) == 5
    asked = len(stopncii.fetches())

    stopncii.withdraw(pdq(2))
    stopncii.withdraw("cd" * 16, "Deleted", "VideoMD5")
    stopncii.add(pdq(9))
    later = list(exchange(stopncii).fetch(checkpoint))

    assert values(later) == [
        ("delete", "pdq", pdq(2)),
        ("delete", "md5", "cd" * 16),
        ("add", "pdq", pdq(9)),
    ]
    tombstone = later[0].records[0]
    assert isinstance(tombstone, Tombstone) and tombstone.kind is ChangeKind.DELETE
    assert "withdrawn by the victim" in tombstone.reason
    assert stopncii.fetches()[asked].params["startTimestamp"] == str(checkpoint["nextSetTimestamp"])
    # Nothing newer: one request, the checkpoint stays where it was.
    again = list(exchange(stopncii).fetch(later[-1].checkpoint))
    assert values(again) == [] and again[-1].checkpoint == later[-1].checkpoint


def test_a_fetch_between_pages_resumes_with_the_token_or_from_its_time_when_it_expired(
    stopncii: StopNciiStandIn,
) -> None:
    for n in range(1, 7):
        stopncii.add(pdq(n))
    fetch = exchange(stopncii).fetch(None)
    between = next(fetch).checkpoint  # the fetch stops after its first page (a restart)
    assert between is not None and "nextPageToken" in between

    resumed = list(exchange(stopncii).fetch(between))
    assert values(resumed) == [("add", "pdq", pdq(n)) for n in range(3, 7)]

    stopncii.expire_tokens()
    expired = list(exchange(stopncii).fetch(between))
    # Read again from the first page's time: its last record again, then the rest.
    assert values(expired) == [("add", "pdq", pdq(n)) for n in range(2, 7)]
    assert not any(p.quarantined for p in expired)


def test_a_bad_record_is_quarantined_and_named_while_the_rest_of_its_page_applies(
    stopncii: StopNciiStandIn,
) -> None:
    stopncii.add(pdq(1))
    stopncii.add_raw({"signalType": "ImagePDQ", "hashValue": "not-a-hash", "hashStatus": "Active",
                      "caseNumbers": {CASE: "Active"}})  # fmt: skip
    stopncii.add(pdq(2))
    stopncii.add_raw({"signalType": "ImagePDQ", "hashStatus": "Active"})
    stopncii.add_raw({"signalType": 7, "hashValue": pdq(4), "hashStatus": "Active"})
    stopncii.add(pdq(3))

    pages = list(exchange(stopncii, page_size=3).fetch(None))

    assert values(pages) == [("add", "pdq", pdq(n)) for n in (1, 2, 3)]
    quarantined = [q for p in pages for q in p.quarantined]
    assert [q.position for q in quarantined] == [
        "page 1 (startTimestamp 10), record 2",
        "page 2 (startTimestamp 10), record 1",
        "page 2 (startTimestamp 10), record 2",
    ]
    assert "pdq: expected" in quarantined[0].reason
    assert "the record lacks 'hashValue'" in quarantined[1].reason
    assert "signalType is int, expected a string" in quarantined[2].reason
    assert '"hashValue": "not-a-hash"' in quarantined[0].excerpt
    assert CASE not in quarantined[0].excerpt  # the victim's case stays with StopNCII
    assert pages[-1].checkpoint == {"nextSetTimestamp": stopncii.now + 1}


def test_unknown_enum_values_are_counted_and_never_activate_a_hash(
    stopncii: StopNciiStandIn,
) -> None:
    stopncii.add(pdq(1), "Suspended")
    stopncii.add(pdq(2), signal_type="Hologram")
    stopncii.add_raw({"signalType": "ImagePDQ", "hashValue": pdq(3), "hashStatus": "Closed",
                      "caseNumbers": {CASE: "Withdrawn"}})  # fmt: skip
    stopncii.add(pdq(4))

    pages = list(exchange(stopncii).fetch(None))

    # An unknown status whose every case is withdrawn still stops the hash matching.
    assert values(pages) == [("delete", "pdq", pdq(3)), ("add", "pdq", pdq(4))]
    assert sum((p.skipped for p in pages), Counter()) == {
        "records of status 'Suspended' (not activated)": 1,
        "Hologram records (not supported)": 1,
    }
    assert not any(p.quarantined for p in pages)


def test_a_page_broken_once_is_asked_for_again_and_nothing_is_lost(
    stopncii: StopNciiStandIn,
) -> None:
    for n in range(1, 5):
        stopncii.add(pdq(n))
    stopncii.corrupt_next()

    pages = list(exchange(stopncii).fetch(None))

    assert values(pages) == [("add", "pdq", pdq(n)) for n in range(1, 5)]
    assert not any(p.quarantined for p in pages)
    assert len(stopncii.fetches()) == 3  # the first page twice


def test_a_page_nested_too_deeply_to_parse_is_asked_for_again_and_nothing_is_lost(
    stopncii: StopNciiStandIn,
) -> None:
    """JSON nested deeper than any parser's recursion once crashed the fetch (issue 23): it
    is an unreadable page like any other."""
    for n in range(1, 5):
        stopncii.add(pdq(n))
    stopncii.nest_next()

    pages = list(exchange(stopncii).fetch(None))

    assert values(pages) == [("add", "pdq", pdq(n)) for n in range(1, 5)]
    assert not any(p.quarantined for p in pages)
    assert len(stopncii.fetches()) == 3  # the first page twice


def test_a_page_that_stays_broken_is_skipped_past_named_and_can_be_fetched_again(
    stopncii: StopNciiStandIn,
) -> None:
    for n in range(1, 5):
        stopncii.add(pdq(n))
    poisoned_at = stopncii.poison(pdq(5))  # pages holding it: HTTP 200, broken JSON
    for n in range(6, 10):
        stopncii.add(pdq(n))

    pages = list(exchange(stopncii).fetch(None))

    # Pages (1, 2), (3, 4), then (4, 5) stays broken: the fetch goes on right after it.
    assert values(pages) == [("add", "pdq", pdq(n)) for n in (1, 2, 3, 4, 6, 7, 8, 9)]
    quarantined = [q for p in pages for q in p.quarantined]
    assert len(quarantined) == 1
    broken = quarantined[0]
    lost_from = poisoned_at - 1  # the last read page's time
    assert broken.position.startswith(
        f"page 3 (startTimestamp 10 after a page token): records last modified from {lost_from} "
    )
    assert f"to before {poisoned_at + 1} " in broken.position
    assert "stayed unreadable after 3 attempts (not JSON" in broken.reason
    assert f'set the checkpoint to {{"nextSetTimestamp": {lost_from}}}' in broken.reason
    assert pdq(5) in broken.excerpt and "-4000-8000-" not in broken.excerpt
    skip = next(p for p in pages if p.quarantined)
    assert skip.checkpoint == {"nextSetTimestamp": poisoned_at + 1} and skip.records == []
    assert pages[-1].checkpoint == {"nextSetTimestamp": stopncii.now + 1}

    # Once StopNCII serves that span again, the checkpoint the reason names fetches it.
    for stored in stopncii.records:
        stored.poisoned = False
    refetched = list(exchange(stopncii).fetch({"nextSetTimestamp": lost_from}))
    assert ("add", "pdq", pdq(5)) in values(refetched)


def test_a_fetch_where_no_page_reads_is_unavailable_and_keeps_its_checkpoint(
    stopncii: StopNciiStandIn,
) -> None:
    stopncii.add(pdq(1))
    stopncii.corrupt_next(1000)

    with pytest.raises(
        ExchangeUnavailable, match=r"no page from startTimestamp 10 on could be read"
    ):
        list(exchange(stopncii).fetch(None))


def test_a_slow_page_ends_at_the_deadline(stopncii: StopNciiStandIn) -> None:
    stopncii.add(pdq(1))
    stopncii.hold_next()
    try:
        with pytest.raises(ExchangeUnavailable, match=r"timed out|deadline"):
            list(exchange(stopncii, timeout=0.5).fetch(None))
        assert stopncii.holding.is_set()
    finally:
        stopncii.release.set()


def test_refused_keys_are_said_clearly_without_the_keys(stopncii: StopNciiStandIn) -> None:
    stopncii.add(pdq(1))
    wrong = {"fetch_function_key": FETCH_KEY, "subscription_key": "not-the-subscription-key"}
    with pytest.raises(ExchangeUnavailable) as refused:
        list(exchange(stopncii, keys=wrong).fetch(None))
    message = str(refused.value)
    assert "StopNCII refused the keys on FetchHashes (401)" in message
    assert "fetch_function_key and subscription_key" in message
    assert "not-the-subscription-key" not in message and FETCH_KEY not in message

    stopncii.refuse_keys()
    with pytest.raises(ExchangeUnavailable, match=r"refused the keys on FetchHashes \(401\)"):
        list(exchange(stopncii).fetch(None))
    assert SUBSCRIPTION_KEY not in str(refused.value)


def test_feedback_reaches_stopncii_with_its_keys_and_plain_words(
    stopncii: StopNciiStandIn,
) -> None:
    keys = {**KEYS, "feedback_function_key": FEEDBACK_KEY}
    plugin = exchange(stopncii, keys=keys)
    plugin.send_feedback(FeedbackItem("pdq", pdq(1), "", "Blocked", ("Nude",)))
    plugin.send_feedback(FeedbackItem("md5", "cd" * 16, "", "NotBlocked"))
    plugin.send_feedback(FeedbackItem("pdq", pdq(2), "", "PendingReview"))

    assert [json.loads(r.body) for r in stopncii.feedback] == [
        {"count": 1, "hashFeedbacks": [{"hashValue": pdq(1), "feedbackValue": "Blocked",
                                        "tags": ["Nude"]}]},
        {"count": 1, "hashFeedbacks": [{"hashValue": "cd" * 16, "feedbackValue": "NotBlocked",
                                        "tags": []}]},
        {"count": 1, "hashFeedbacks": [{"hashValue": pdq(2), "feedbackValue": "PendingReview",
                                        "tags": []}]},
    ]  # fmt: skip
    first = stopncii.feedback[0]
    assert (first.method, first.path) == ("POST", "/v1/SubmitFeedback")
    assert first.headers["x-functions-key"] == FEEDBACK_KEY
    assert first.headers["ocp-apim-subscription-key"] == SUBSCRIPTION_KEY
    assert first.headers["content-type"] == "application/json"

    with pytest.raises(ExchangeConfigError, match="not one of Blocked, NotBlocked, PendingReview"):
        plugin.send_feedback(FeedbackItem("pdq", pdq(1), "", "StopNCIICSPFeedbackValue.Blocked"))
    with pytest.raises(ExchangeConfigError, match="pdq and md5 hashes, not 'sha256'"):
        plugin.send_feedback(FeedbackItem("sha256", "ab" * 32, "", "Blocked"))
    # Without its own key, feedback goes with the FetchHashes key: refused here, and said so.
    with pytest.raises(
        ExchangeUnavailable, match=r"on SubmitFeedback \(401\).*feedback_function_key"
    ):
        exchange(stopncii).send_feedback(FeedbackItem("pdq", pdq(1), "", "Blocked"))
    assert len(stopncii.feedback) == 3


@pytest.mark.parametrize(
    ("config", "credentials", "said"),
    [
        ({}, {"fetch_function_key": "k"}, "credentials: subscription_key is required"),
        ({}, {**KEYS, "api_key": "secret-value"}, "'api_key' is not a StopNCII credential"),
        ({}, {**KEYS, "subscription_key": 12345}, "subscription_key must be a non-empty line"),
        ({"page_size": 0}, KEYS, "page_size: 0 is not from 1 to 10000"),
        ({"page_size": "800"}, KEYS, "page_size: expected a whole number"),
        ({"pagesize": 10}, KEYS, "pagesize: not a StopNCII setting"),
    ],
)
def test_settings_and_credentials_are_checked_by_name(
    config: dict[str, Any], credentials: dict[str, Any], said: str
) -> None:
    with pytest.raises(ExchangeConfigError, match=said) as refused:
        StopNcii(config, credentials, Http("https://api.stopncii.org/v1"))
    assert "secret-value" not in str(refused.value) and "12345" not in str(refused.value)


def test_the_defaults_are_stopnciis() -> None:
    assert StopNcii.check_config({}) == {
        "page_size": 800, "start_timestamp": 10, "page_attempts": 3, "skip_seconds": 600
    }  # fmt: skip
    assert StopNcii.default_base_url == "https://api.stopncii.org/v1"
    with pytest.raises(ExchangeConfigError, match="checkpoint: expected"):
        next(StopNcii({}, KEYS, Http("https://api.stopncii.org/v1")).fetch({"since": 5}))


def test_fetched_pages_applied_to_a_list_make_a_withdrawn_hash_stop_matching(
    stopncii: StopNciiStandIn, database_url: str
) -> None:
    from hashguard.lists.model import Category, EntryStatus
    from hashguard.matching import Matcher
    from hashguard.matching.query import Query
    from hashguard.signals.pdq import PdqHash
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    engine = open_engine(database_url)
    try:
        store = ListStore(engine)
        store.create("stopncii", "StopNCII", Category.NCII)
        for n in range(1, 4):
            stopncii.add(pdq(n))
        stopncii.add_raw({"signalType": "ImagePDQ", "hashValue": "zz", "hashStatus": "Active"})
        pages = list(exchange(stopncii).fetch(None))
        assert store.apply("stopncii", [r for p in pages for r in p.records]).added == 3
        matcher = Matcher(store, ["stopncii"])
        query = Query.of([("pdq", PdqHash(bytes.fromhex(pdq(2)), 100))])
        assert len(matcher.match(query)) == 1

        stopncii.withdraw(pdq(2))
        later = list(exchange(stopncii).fetch(pages[-1].checkpoint))
        assert store.apply("stopncii", [r for p in later for r in p.records]).removed == 1
        matcher.refresh()  # follows the list's change log: no rebuild
        assert matcher.match(query) == []
        status = {e.value: e.status for e in store.entries("stopncii")[1]}
        assert status[pdq(2)] is EntryStatus.DELETED and status[pdq(1)] is EntryStatus.ACTIVE
    finally:
        engine.dispose()


# --- through Sync, into a real list --------------------------------------------------------------


@pytest.fixture
def synced(database_url: str) -> Iterator[tuple[Any, Any]]:
    """(Exchanges, ListStore) on a scratch database (SQLite and PostgreSQL)."""
    import secrets

    from hashguard.exchanges.credentials import Sealer
    from hashguard.exchanges.store import Exchanges
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    engine = open_engine(database_url)
    lists = ListStore(engine)
    try:
        yield Exchanges(engine, lists, Sealer(secrets.token_bytes(32)), networks=LOOPBACK), lists
    finally:
        engine.dispose()


def test_sync_applies_fetches_a_following_matcher_stops_matching_a_withdrawal(
    stopncii: StopNciiStandIn, synced: tuple[Any, Any]
) -> None:
    from hashguard.exchanges.sync import Sync
    from hashguard.matching import Matcher
    from hashguard.matching.query import Query
    from hashguard.signals.pdq import PdqHash
    from hashguard.store import audit

    from support.waiting import eventually

    exchanges, lists = synced
    for n in range(1, 4):
        stopncii.add(pdq(n))
    stopncii.add_raw({"signalType": "ImagePDQ", "hashValue": "zz", "hashStatus": "Active",
                      "caseNumbers": {CASE: "Active"}})  # fmt: skip
    exchanges.add("stopncii", "stopncii", {"base_url": stopncii.base_url, "page_size": 2}, KEYS)

    first = Sync(exchanges, LOOPBACK).fetch("stopncii")
    assert (first.succeeded, first.records, first.quarantined) == (True, 3, 1), first.error
    held = exchanges.quarantined("stopncii")
    assert [q.position for q in held] == ["page 2 (startTimestamp 10), record 2"]
    assert "pdq: expected" in held[0].reason and CASE not in held[0].excerpt
    noted = audit.events(exchanges.engine, action="exchange.quarantine")
    assert [json.loads(e.details)["position"] for e in noted] == [held[0].position]

    matcher = Matcher(lists, ["stopncii"])
    matcher.follow(0.05)
    try:
        query = Query.of([("pdq", PdqHash(bytes.fromhex(pdq(2)), 100))])
        assert len(matcher.match(query)) == 1
        stopncii.withdraw(pdq(2))
        stopncii.add(pdq(7))
        # A restarted server (a new Sync) goes on from the stored checkpoint.
        asked = len(stopncii.fetches())
        later = Sync(exchanges, LOOPBACK).fetch("stopncii")
        assert (later.succeeded, later.records, later.quarantined) == (True, 2, 0), later.error
        assert stopncii.fetches()[asked].params["startTimestamp"] != "10"
        # The follower takes the fetch's changes as they come (not necessarily in one step).
        seven = Query.of([("pdq", PdqHash(bytes.fromhex(pdq(7)), 100))])
        assert eventually(
            lambda: matcher.match(query) == [] and len(matcher.match(seven)) == 1, timeout=5.0
        )
    finally:
        matcher.close()


def test_sync_names_a_skipped_page_and_refused_keys_in_the_status_and_audit_log(
    stopncii: StopNciiStandIn, synced: tuple[Any, Any]
) -> None:
    from hashguard.exchanges.sync import Sync
    from hashguard.store import audit

    exchanges, _ = synced
    for n in range(1, 4):
        stopncii.add(pdq(n))
    stopncii.poison(pdq(4))
    stopncii.add(pdq(5))
    exchanges.add("stopncii", "stopncii", {"base_url": stopncii.base_url, "page_size": 2}, KEYS)

    fetched = Sync(exchanges, LOOPBACK).fetch("stopncii")
    # Pages (1, 2), then (3, 4) broken: (2, 3) read again from 2's time, then (4, 5) broken:
    # the fetch goes on from the second after 4, so 3 (read) and 4 are the span not read.
    assert (fetched.succeeded, fetched.records, fetched.quarantined) == (True, 5, 1)
    status = exchanges.status("stopncii")
    assert status.last_fetch_succeeded and status.quarantined == 1
    [broken] = exchanges.quarantined("stopncii")
    assert "records last modified from" in broken.position
    assert "To fetch them again, set the checkpoint to" in broken.reason
    events = audit.events(exchanges.engine, action="exchange.quarantine")
    assert [json.loads(e.details)["position"] for e in events] == [broken.position]

    stopncii.refuse_keys()
    refused = Sync(exchanges, LOOPBACK).fetch("stopncii")
    assert not refused.succeeded
    status = exchanges.status("stopncii")
    assert "refused the keys on FetchHashes (401)" in status.last_error and status.failures == 1
    logged = " ".join(e.details for e in audit.events(exchanges.engine, limit=1000))
    for key in (FETCH_KEY, SUBSCRIPTION_KEY):
        assert key not in status.last_error and key not in logged


def test_a_next_set_timestamp_in_the_future_never_becomes_the_checkpoint(
    stopncii: StopNciiStandIn,
) -> None:
    stopncii.add(pdq(1))
    began = int(time.time())
    stopncii.now = began + 30 * 86_400  # StopNCII's clock a month ahead
    stopncii.add(pdq(2))

    pages = list(exchange(stopncii).fetch(None))
    assert values(pages) == [("add", "pdq", pdq(1)), ("add", "pdq", pdq(2))]
    checkpoint = pages[-1].checkpoint
    assert checkpoint is not None and began <= checkpoint["nextSetTimestamp"] <= time.time()
    (note,) = [q for page in pages for q in page.quarantined]
    assert f"nextSetTimestamp {stopncii.now + 1}" in note.position
    assert "after this fetch began" in note.reason

    # The victim withdraws pdq(1) meanwhile: the next fetch still reads it.
    stopncii.now = began + 60
    stopncii.withdraw(pdq(1))
    later = list(exchange(stopncii).fetch(checkpoint))
    assert ("delete", "pdq", pdq(1)) in values(later)


def test_a_page_that_stays_broken_is_never_probed_past_the_fetchs_start(
    stopncii: StopNciiStandIn,
) -> None:
    stopncii.add(pdq(1))
    stopncii.corrupt_next(1000)
    with pytest.raises(ExchangeUnavailable, match="no page from startTimestamp 10 on"):
        list(exchange(stopncii, skip_seconds=86_400 * 30).fetch(None))
    asked = [int(r.params["startTimestamp"]) for r in stopncii.fetches()]
    assert max(asked) <= time.time()


def test_case_numbers_of_any_shape_never_fail_the_fetch(stopncii: StopNciiStandIn) -> None:
    stopncii.add(pdq(1))
    for cases in ({CASE: ["Withdrawn"]}, {CASE: {"status": "Withdrawn"}}, [CASE], "Withdrawn"):
        stopncii.add_raw({"signalType": "ImagePDQ", "hashValue": pdq(2), "hashStatus": "Paused",
                          "caseNumbers": cases})  # fmt: skip
    stopncii.add(pdq(3))
    skipped: Counter[str] = Counter()
    pages = list(exchange(stopncii, page_size=10).fetch(None))
    for page in pages:
        skipped.update(page.skipped)
    # An unknown status whose cases do not all say withdrawn never activates the hash.
    assert values(pages) == [("add", "pdq", pdq(1)), ("add", "pdq", pdq(3))]
    assert skipped == Counter({"records of status 'Paused' (not activated)": 4})


def test_the_quarantines_instruction_fetches_a_skipped_withdrawal_again(
    stopncii: StopNciiStandIn, synced: tuple[Any, Any]
) -> None:
    """A withdrawal in a span skipped past (its page stayed unreadable) is applied once the
    operator sets the checkpoint the quarantined record names and StopNCII serves it again."""
    from hashguard.exchanges.store import FetchRunning
    from hashguard.exchanges.sync import Sync
    from hashguard.lists.model import EntryStatus
    from hashguard.store import audit

    exchanges, lists = synced
    for n in range(1, 4):
        stopncii.add(pdq(n))
    exchanges.add("stopncii", "stopncii", {"base_url": stopncii.base_url, "page_size": 2}, KEYS)
    sync = Sync(exchanges, LOOPBACK)
    assert sync.fetch("stopncii").records == 3
    stopncii.withdraw(pdq(2))
    (withdrawal,) = [s for s in stopncii.records if s.key == ("ImagePDQ", pdq(2))]
    withdrawal.poisoned = True  # every page holding the withdrawal is broken
    for n in range(4, 7):
        stopncii.add(pdq(n))
    assert sync.fetch("stopncii").quarantined == 1
    entries = {e.value: e.status for e in lists.entries("stopncii")[1]}
    assert entries[pdq(2)] is EntryStatus.ACTIVE  # the withdrawal was skipped past

    (held,) = exchanges.quarantined("stopncii")
    told = re.search(r"set the checkpoint to (\{.*\})", held.reason)
    assert told is not None
    for refused in ({"nextSetTimestamp": "soon"}, {"update_time": 5},
                    {"nextSetTimestamp": int(time.time()) + 86_400}):  # fmt: skip
        with pytest.raises(ExchangeConfigError, match="nextSetTimestamp"):
            exchanges.set_checkpoint("stopncii", refused, actor="operator")
    lease = sync.claim("stopncii")
    with pytest.raises(FetchRunning):
        exchanges.set_checkpoint("stopncii", json.loads(told.group(1)), actor="operator")
    sync.run(lease)

    withdrawal.poisoned = False  # StopNCII serves that span again
    exchanges.set_checkpoint("stopncii", json.loads(told.group(1)), actor="operator")
    assert exchanges.checkpoint("stopncii") == json.loads(told.group(1))
    assert sync.fetch("stopncii").succeeded
    entries = {e.value: e.status for e in lists.entries("stopncii")[1]}
    assert entries[pdq(2)] is EntryStatus.DELETED
    (event,) = audit.events(exchanges.engine, action="exchange.checkpoint")
    assert (event.actor, json.loads(event.details)["after"]) == (
        "operator", json.loads(told.group(1)))  # fmt: skip
