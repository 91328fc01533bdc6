"""Victims' cases through real ``hashguard serve`` processes, on SQLite and PostgreSQL: opening a
case without a key, refusals of bad values and low quality, the PIN's lockout, the status,
partial and whole withdrawal (the origin, its HMA routes and a follower stop matching: a second
server over a real ``hashguard lists follow --every 1`` process), receipts from that follower,
partners' outcomes from review and by POST. Every hash is a benign test value."""

import re
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hashguard.lists.model import Category
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.conformance import ConformanceReport
from support.database import scratch_database
from support.server import HASHGUARD, Server, running

PDQ = "f0" * 32  # 128 bits set, as a picture's PDQ hash has
MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5("b")
TRIALS = 10  # withdrawals timed per database
EVERY = "0.2"  # seconds between the follower's polls
DEADLINE = 30.0  # seconds a follower may take before the test gives up on it


class World:
    """The origin (a service "photos" with a matcher key of its own), and the database of a
    follower of its adults' victim list."""

    def __init__(self, origin: Server, follower_url: str) -> None:
        self.origin = origin
        self.follower_url = follower_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with (
        scratch_database(request.param, tmp_path_factory.mktemp("origin")) as url,
        scratch_database(request.param, tmp_path_factory.mktemp("follower")) as follower_url,
    ):
        engine = open_engine(url)
        ServiceStore(engine).create("photos")
        _key, photos = ApiKeyStore(engine).create(Role.MATCHER, name="photos", service="photos")
        engine.dispose()
        options = ("--victims-pin-failures", "3", "--victims-lockout-minutes", "1",
                   "--victims-address-failures", "1000",
                   "--victims-cases-per-hour", "1000")  # fmt: skip
        with running(url, *options) as origin:
            origin.tokens["photos"] = photos
            yield World(origin, follower_url)


def _open(server: Server, *hashes: dict[str, object], under_18: bool = False) -> dict[str, str]:
    answer = server.post("/v1/victims/cases", json={"hashes": list(hashes), "under_18": under_18,
                                                    "language": "en"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return dict(answer.json())


def _status(server: Server, case: dict[str, str], pin: str | None = None) -> httpx.Response:
    return server.get(f"/v1/victims/cases/{case['case']}",
                      headers={"X-Case-Pin": pin or case["pin"]})  # fmt: skip


def _withdraw(server: Server, case: dict[str, str], *hashes: dict[str, str]) -> httpx.Response:
    body = {"hashes": list(hashes)} if hashes else None
    return server.post(f"/v1/victims/cases/{case['case']}/withdrawal",
                       headers={"X-Case-Pin": case["pin"]}, json=body)  # fmt: skip


def _matches(server: Server, signal: str, value: str, role: str = "matcher") -> bool:
    answer = server.post("/v1/match/hashes", role,
                         json={"hashes": [{"signal": signal, "value": value}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["matched"])


def _md5(n: int) -> str:
    return f"{n:032x}"


def test_a_case_is_opened_without_a_key_and_its_status_read_with_the_pin(world: World) -> None:
    origin = world.origin
    case = _open(origin, {"signal": "pdq", "value": PDQ, "quality": 92},
                 {"signal": "md5", "value": MD5_A.upper()})  # fmt: skip
    assert case["case"].startswith("HG-") and case["pin"].isdigit()
    answer = _status(origin, case)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    status = answer.json()
    assert status["case"] == case["case"] and status["under_18"] is False
    assert [(h["signal"], h["value"], h["state"]) for h in status["hashes"]] == [
        ("pdq", PDQ, "active"), ("md5", MD5_A, "active")]  # fmt: skip
    assert _matches(origin, "md5", MD5_A)


@pytest.mark.parametrize(
    ("hashes", "status", "said"),
    [
        ([{"signal": "pdq", "value": PDQ, "quality": 30}], 400,
         "hashes.0: pdq quality 30 is below 50"),
        ([{"signal": "md5", "value": MD5_A}, {"signal": "md5", "value": "nope"}], 400,
         "hashes.1: md5 value 'nope'"),
        ([{"signal": "sha256", "value": MD5_A}], 400, "hashes.0: sha256 value"),
        ([{"signal": "md5", "value": _md5(n)} for n in range(101)], 413,
         "101 hashes: a case takes at most 100"),
    ],
)  # fmt: skip
def test_bad_values_and_low_quality_are_refused_naming_which_and_why(
    world: World, hashes: list[dict[str, object]], status: int, said: str
) -> None:
    answer = world.origin.post("/v1/victims/cases", json={"hashes": hashes})
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]


def test_wrong_pins_lock_the_case_with_retry_after(world: World) -> None:
    origin = world.origin
    case = _open(origin, {"signal": "md5", "value": _md5(7001)})
    for _ in range(2):
        wrong = _status(origin, case, "12345678")
        assert wrong.status_code == 403
        assert wrong.json()["error"]["message"] == "the case number or the PIN is wrong"
    locked = _status(origin, case, "12345678")
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 60
    assert "locked after too many wrong PINs" in locked.json()["error"]["message"]
    assert _status(origin, case).status_code == 429  # the right PIN waits too
    metrics = origin.get("/metrics", "auditor").text
    counted = re.search(r'hashguard_rate_limited_total\{route="/v1/victims/cases/\{case\}",'
                        r'scope="credential"\} (\d+)', metrics)  # fmt: skip
    assert counted is not None and int(counted[1]) >= 2, metrics
    unknown = _status(origin, {"case": "HG-00000-00000-00000-00000-000000", "pin": case["pin"]})
    assert unknown.status_code == 403  # an unknown case reads as a wrong PIN


def test_partial_then_whole_withdrawal_stops_matching_here_and_on_hma_routes(
    world: World,
) -> None:
    origin = world.origin
    case = _open(origin, {"signal": "md5", "value": MD5_B},
                 {"signal": "pdq", "value": "e1" * 32, "quality": 80})  # fmt: skip
    hma = {"signal_type": "md5", "signal": MD5_B}
    assert origin.get("/m/raw_lookup", "matcher", params=hma).json()["matches"]
    partial = _withdraw(origin, case, {"signal": "md5", "value": MD5_B})
    assert partial.status_code == 200, partial.text
    states = {h["signal"]: h["state"] for h in partial.json()["hashes"]}
    assert states == {"md5": "withdrawn", "pdq": "active"}
    assert not _matches(origin, "md5", MD5_B)  # at once: before the answer came
    assert not origin.get("/m/raw_lookup", "matcher", params=hma).json()["matches"]
    assert _matches(origin, "pdq", "e1" * 32)
    unknown = _withdraw(origin, case, {"signal": "md5", "value": MD5_A})
    assert unknown.status_code == 404 and "holds no md5 hash" in unknown.text
    whole = _withdraw(origin, case)
    assert {h["state"] for h in whole.json()["hashes"]} == {"withdrawn"}
    assert not _matches(origin, "pdq", "e1" * 32)
    # The change feed carries the tombstones followers apply.
    feed = origin.get("/v1/lists/victims-ncii/changes", "auditor", params={"limit": 10000})
    deleted = [c for c in feed.json()["changes"] if c["kind"] == "delete"]
    assert {c["value"] for c in deleted} >= {MD5_B, "e1" * 32}
    assert all(c["tombstone"] for c in deleted)


def test_outcomes_from_review_and_from_partners_feedback_show_in_the_status(
    world: World,
) -> None:
    origin = world.origin
    value = _md5(8001)
    case = _open(origin, {"signal": "md5", "value": value})
    # The service's own check: a detection for review, never confirmed on the match alone.
    checked = origin.post("/v1/match/hashes", "photos", json={
        "hashes": [{"signal": "md5", "value": value, "content_ref": "upload-1"}]})  # fmt: skip
    assert checked.json()["matched"] == 1
    [detection] = origin.get("/v1/detections", "reviewer").json()["detections"][-1:]
    assert detection["state"] == "pending" and detection["content_ref"] == "upload-1"
    posted = origin.post("/v1/victims/feedback", "matcher", json={"records": [
        {"signal": "md5", "value": value, "outcome": "Blocked", "reference": "r-1"},
        {"signal": "md5", "value": value, "outcome": "Removed", "reference": "r-2"},
        {"signal": "md5", "value": _md5(8002), "outcome": "Blocked", "reference": "r-3"},
    ]})  # fmt: skip
    assert posted.status_code == 200, posted.text
    assert posted.json()["recorded"] == 1
    assert [q["index"] for q in posted.json()["quarantined"]] == [1, 2]
    decided = origin.post(f"/v1/detections/{detection['id']}/decision", "reviewer",
                          json={"decision": "false_positive", "reason": "a landscape"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    status = _status(origin, case).json()
    assert status["partners"] == [
        {"partner": "photos", "matches": 1, "pending_review": 0, "blocked": 0, "not_blocked": 1},
        {"partner": "test matcher", "matches": 1, "pending_review": 0, "blocked": 1,
         "not_blocked": 0},
    ]  # fmt: skip
    assert status["hashes"][0]["state"] == "received"  # contested: not matching now


def test_feedback_keeps_to_the_keys_lists_and_quarantines_control_characters(
    world: World,
) -> None:
    origin = world.origin
    value = _md5(8101)
    case = _open(origin, {"signal": "md5", "value": value})
    engine = open_engine(origin.database_url)
    try:
        ListStore(engine).create("elsewhere", "Org", Category.KNOWN_CSAM)
        keys = ApiKeyStore(engine)
        origin.tokens["elsewhere"] = keys.create(Role.MATCHER, name="elsewhere",
                                                 lists=["elsewhere"])[1]  # fmt: skip
        origin.tokens["adults"] = keys.create(Role.MATCHER, name="adults",
                                              lists=["victims-ncii"])[1]  # fmt: skip
    finally:
        engine.dispose()
    record = {"signal": "md5", "value": value, "outcome": "Blocked"}
    refused = origin.post("/v1/victims/feedback", "elsewhere",
                          json={"records": [{**record, "reference": "r-1"}]})  # fmt: skip
    assert refused.status_code == 403 and "may not use list 'victims-ncii'" in refused.text
    posted = origin.post("/v1/victims/feedback", "adults", json={"records": [
        {**record, "reference": "bad\u0000"}, {**record, "reference": 5},
        {**record, "reference": "r-1"}]})  # fmt: skip
    assert posted.status_code == 200, posted.text
    assert posted.json()["recorded"] == 1
    assert [q["index"] for q in posted.json()["quarantined"]] == [0, 1]
    [partner] = _status(origin, case).json()["partners"]
    assert partner == {"partner": "adults", "matches": 1, "pending_review": 0, "blocked": 1,
                       "not_blocked": 0}  # fmt: skip


def test_withdrawal_reaches_a_follower_within_its_polling_interval_with_receipts(
    world: World, tmp_path: Path, report: ConformanceReport
) -> None:
    origin = world.origin
    _open(origin, {"signal": "md5", "value": _md5(9000)})  # the list exists before following
    with running(world.follower_url) as follower:
        follow = subprocess.Popen(
            [HASHGUARD, "lists", "follow", "victims-ncii", "--from", origin.url,
             "--key", origin.tokens["auditor"], "--every", EVERY, "--database-url",
             world.follower_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            origin_times, follower_times = [], []
            for trial in range(TRIALS):
                value = _md5(9001 + trial)
                case = _open(origin, {"signal": "md5", "value": value})
                _until(lambda: _matches(follower, "md5", value), "the follower matches")  # noqa: B023
                started = time.monotonic()
                answer = _withdraw(origin, case)
                assert answer.status_code == 200, answer.text
                assert not _matches(origin, "md5", value)
                origin_times.append(time.monotonic() - started)
                _until(lambda: not _matches(follower, "md5", value), "the follower stops")  # noqa: B023
                follower_times.append(time.monotonic() - started)
            # The follower's receipt: the case says who has applied its withdrawal.
            _until(lambda: _status(origin, case).json()["hashes"][0]["withdrawal"]["applied_by"]
                       == 1, "the follower's receipt")  # fmt: skip
            withdrawal = _status(origin, case).json()["hashes"][0]["withdrawal"]
            assert withdrawal["summary"] == "withdrawn; applied by 1 of 1 partners"
            assert withdrawal["partners"][0]["partner"] == "test auditor"
            assert withdrawal["partners"][0]["at"] >= withdrawal["at"]
        finally:
            follow.terminate()
            _, errors = follow.communicate(timeout=30)
    assert "Traceback" not in errors
    timed = {"origin": origin_times, "follower": follower_times}
    figures = {name: (statistics.median(times), _p99(times)) for name, times in timed.items()}
    database = origin.database_url.split(":")[0].split("+")[0]
    for name, (p50, p99) in figures.items():
        report.append(
            f"victims withdrawal -> no match on the {name} ({database}, {TRIALS} trials, "
            f"follower every {EVERY} s): p50 {p50:.3f} s, p99 {p99:.3f} s"
        )  # measured, not asserted (no timings in tests): docs/victims.md records the figures


def _p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _until(condition: object, what: str) -> None:
    """Wait for ``condition()`` (a callable) to hold, asking again every 20 ms."""
    assert callable(condition)
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {DEADLINE:.0f} s for {what}")
        time.sleep(0.02)


def test_a_case_takes_a_pdq_hashs_stability_beside_its_quality(world: World) -> None:
    origin = world.origin
    value = "d2" * 32
    case = _open(origin, {"signal": "pdq", "value": value, "quality": 88, "stability": 71})
    (shown,) = _status(origin, case).json()["hashes"]
    assert (shown["quality"], shown["stability"]) == (88, 71)
    bad = origin.post("/v1/victims/cases", json={"hashes": [
        {"signal": "pdq", "value": value, "quality": 88, "stability": 101}]})  # fmt: skip
    assert bad.status_code == 400 and "hashes.0: stability 101" in bad.text


def test_opening_cases_is_limited_per_address_with_retry_after(tmp_path: Path) -> None:
    """Opening a case needs no key: one address may open ``--victims-cases-per-hour`` of them;
    the next is refused with 429 and Retry-After (counted in /metrics), and a case refused for
    its hashes does not count."""
    with (
        scratch_database("sqlite", tmp_path) as url,
        running(url, "--victims-cases-per-hour", "2") as server,
    ):
        bad = server.post("/v1/victims/cases", json={"hashes": [{"signal": "md5", "value": "x"}]})
        assert bad.status_code == 400, bad.text
        first = _open(server, {"signal": "md5", "value": _md5(9001)})
        second = _open(server, {"signal": "md5", "value": _md5(9002)})
        assert first["case"] != second["case"]
        third = {"hashes": [{"signal": "md5", "value": _md5(9003)}]}
        refused = server.post("/v1/victims/cases", json=third)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        assert "too many cases opened from this address" in refused.json()["error"]["message"]
        metrics = server.get("/metrics", "auditor").text
        counted = re.search(r'hashguard_rate_limited_total\{route="/v1/victims/cases",'
                            r'scope="([a-z]+)"\} (\d+)', metrics)  # fmt: skip
        assert counted is not None and int(counted[2]) == 1, metrics
        assert _status(server, first).status_code == 200  # the cases opened stay readable
