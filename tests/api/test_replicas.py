"""Replicated matchers: several ``hashguard serve`` processes over one PostgreSQL database. A
change made through one holds on the other within a bounded wait; each reports its lag (in all
publicly, per list to an auditor); one started from a signed snapshot catches up from the
change logs; behind HAProxy (the shipped configuration, Debian's haproxy), a replica kept
behind reports not ready and gets no requests until it has caught up, requests are still
answered when no replica is ready (never by one that is live but loading its lists), a stopped
one gets none, API clients are balanced request by request and a desk browser stays on the
replica holding its session. All hashes are random benign values."""

import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

from support.conformance import ConformanceReport
from support.database import scratch_database
from support.desk_session import sign_in as desk_sign_in
from support.invoke import hashguard
from support.paths import BENCH, REPOSITORY
from support.server import Server, free_port, running
from support.waiting import eventually

sys.path.insert(0, str(BENCH))
from scale_replicas import percentile, propagation, random_values

LIST = "replicated"
LISTED = random_values(10, seed=7)  # in the list before the replicas start


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database("postgresql", tmp_path_factory.mktemp("replicas")) as url:
        engine = open_engine(url)
        store = ListStore(engine)
        store.create(LIST, "Hotline", Category.TEST, ["NL"])
        store.apply(LIST, [Submission("pdq", value) for value in LISTED])
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def a(database: str) -> Iterator[Server]:
    with running(database) as server:
        yield server


@pytest.fixture(scope="module")
def b(database: str, a: Server) -> Iterator[Server]:
    with running(database, roles=False) as server:
        server.tokens = a.tokens  # the keys are the database's: both replicas take them
        yield server


def _matches(server: Server, value: str) -> bool:
    answer = server.post("/v1/match/hashes", "matcher",
                         json={"hashes": [{"signal": "pdq", "value": value}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["results"][0]["matches"])


def _change(server: Server, kind: str, value: str) -> None:
    changed = server.post(f"/v1/lists/{LIST}/changes", "curator",
                          json={"kind": kind, "signal": "pdq", "value": value,
                                "reason": "test"})  # fmt: skip
    assert changed.status_code == 200, changed.text


def _ready(server: Server) -> httpx.Response:
    return server.get("/status/ready")


def test_changes_made_through_one_replica_hold_on_the_other(
    a: Server, b: Server, report: ConformanceReport
) -> None:
    # 50 changes through A, new entries and delistings in turn; each must hold on B within
    # 10 s (propagation raises otherwise). The delays are reported, not asserted (bench:
    # bench/scale_replicas.py).
    delays = propagation(a.client, b.client, a.tokens["curator"], a.tokens["matcher"], LIST, 50,
                         timeout=10.0)  # fmt: skip
    assert len(delays) == 50
    report.append(f"replica propagation over 50 changes: p50 {statistics.median(delays):.3f} s, "
                  f"p99 {percentile(delays, 0.99):.3f} s (target p99 <= 1 s)")  # fmt: skip


def test_each_replica_reports_its_lag_publicly_in_all_and_per_list_to_an_auditor(
    a: Server, b: Server
) -> None:
    _change(a, "delist", LISTED[0])
    version = ListStore(open_engine(a.database_url)).get(LIST).version
    applied = f'hashguard_list_version{{list="{LIST}"}} {version}.0'
    # B reports no lag as soon as it has applied what it has seen: wait until it has seen the
    # change (its follower reads the lists' versions every refresh), then it must hold.

    def shown() -> str:
        metrics = b.get("/metrics", "auditor").text
        return metrics if applied in metrics else ""

    metrics = eventually(shown)
    assert applied in metrics
    ready = _ready(b).json()
    assert ready == {"ready": True, "reason": "ready", "lag_changes": 0, "lag_seconds": 0.0,
                     "index_age_seconds": ready["index_age_seconds"]}  # fmt: skip
    assert f'hashguard_list_database_version{{list="{LIST}"}} {version}.0' in metrics
    assert f'hashguard_list_lag_changes{{list="{LIST}"}} 0.0' in metrics
    assert "hashguard_lag_changes 0.0" in metrics and "hashguard_lag_seconds 0.0" in metrics


def test_a_replica_started_from_a_snapshot_catches_up_from_the_change_log(
    database: str, a: Server, tmp_path: Path
) -> None:
    key = tmp_path / "snapshot.key"
    keys.generate(key)
    path = tmp_path / "lists.snapshot"
    made = hashguard("lists", "snapshot", "--key", str(key), "--out", str(path),
                     "--database-url", database)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"wrote {path}: 1 list(s)" in made.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if "snapshot" in p.name) == [
        "lists.snapshot",
        "snapshot.key",
        "snapshot.key.pub",
    ]  # the signature is inside
    # After the snapshot: an entry added, one delisted.
    added = random_values(1, seed=99)[0]
    assert a.post(f"/c/bank/{LIST}/signal", "curator", json={"pdq": added}).status_code == 200
    _change(a, "delist", LISTED[2])
    # (A snapshot refused, as one signed by another key, is tests/lists/test_snapshot.py's.)
    options = ("--snapshot", str(path), "--snapshot-key", f"{key}.pub")
    with running(database, *options, roles=False) as d:
        d.tokens = a.tokens
        assert d.wait_for_log(f"snapshot {path}: 1 list(s) load from it ({LIST})", 0)
        assert _matches(d, added) and _matches(d, LISTED[3])
        assert not _matches(d, LISTED[2])
        assert _ready(d).json()["lag_changes"] == 0


HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
EXAMPLE = REPOSITORY / "examples" / "haproxy.cfg"
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None, reason="Debian's haproxy is absent (scripts/ensure-system-packages --test)"
)


@needs_haproxy
def test_the_shipped_haproxy_configuration_is_valid() -> None:
    assert HAPROXY is not None
    checked = subprocess.run([HAPROXY, "-c", "-f", str(EXAMPLE)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@contextmanager
def _haproxy(directory: Path, first: Server, second: Server | None) -> Iterator[httpx.Client]:
    """HAProxy as shipped, but listening on a free port, checking every 0.1 s, with ``first``
    as replica1 and ``second`` as replica2 (None: an address nothing listens on); a client."""
    assert HAPROXY is not None
    port = free_port()
    text = re.sub(r"bind \S+", f"bind 127.0.0.1:{port}", EXAMPLE.read_text())
    text = re.sub(r"default-server .*", "default-server inter 100ms fall 1 rise 1", text)
    addresses = [first.url, second.url if second else f"http://127.0.0.1:{free_port()}"]
    for shipped, address in zip(("10.0.0.11:8000", "10.0.0.12:8000"), addresses, strict=True):
        text = text.replace(shipped, address.removeprefix("http://"))
    configuration = directory / "haproxy.cfg"
    configuration.write_text(text)
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(configuration)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        assert eventually(lambda: _answers(client), 10), "haproxy did not start"
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(10)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/status/live").status_code == 200
    except httpx.TransportError:
        return False


def _served_by(client: httpx.Client, token: str) -> str:
    """Which replica answered a match request sent through ``client`` (it must be answered);
    the client keeps the cookies it is given, as a session object does."""
    answer = client.post("/v1/match/hashes", headers={"Authorization": f"Bearer {token}"},
                         json={"hashes": [{"signal": "pdq", "value": LISTED[5]}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["matched"] == 1
    return answer.headers["x-served-by"]


def _answered_by(client: httpx.Client, token: str) -> str | None:
    """Which replica answered a match request with its matches; None: not answered so."""
    answer = client.post("/v1/match/hashes", headers={"Authorization": f"Bearer {token}"},
                         json={"hashes": [{"signal": "pdq", "value": LISTED[5]}]})  # fmt: skip
    return answer.headers.get("x-served-by") if answer.status_code == 200 else None


def _stays_on_one_replica_once_signed_in(balanced: httpx.Client, key: str) -> None:
    with httpx.Client(base_url=balanced.base_url, timeout=30) as browser:
        signed = desk_sign_in(browser, key)
        assert signed.status_code == 303, signed.text
        assert {"hg_desk", "replica"} <= set(browser.cookies)
        home = signed.headers["x-served-by"]
        for _ in range(6):  # the other replica knows no such session: it would send a sign-in
            desk = browser.get("/desk")
            assert (desk.status_code, desk.headers["x-served-by"]) == (200, home)
        assert "SameSite=Lax" in signed.headers["set-cookie"]


@contextmanager
def _held_behind(url: str, a: Server, c: Server, values: list[str]) -> Iterator[httpx.Response]:
    """C held behind the database: a change made through A (it holds on A before A answers),
    then the lists' change logs locked (PostgreSQL's ACCESS EXCLUSIVE) so that C sees the new
    version but cannot read the change until the block ends; C's 503 answer. C may apply the
    change before the lock: then again with the next of ``values``."""
    engine = open_engine(url)
    try:
        for value in values:
            assert eventually(lambda: _ready(c).status_code == 200, 20)
            _change(a, "delist", value)
            with engine.connect() as connection:
                connection.execute(text("LOCK TABLE list_changes IN ACCESS EXCLUSIVE MODE"))
                try:
                    behind = eventually(lambda: (r := _ready(c)).status_code == 503 and r, 10)
                    assert behind, "C never reported not ready"
                    if behind.json()["lag_changes"] >= 1:
                        yield behind
                        return
                finally:
                    connection.rollback()
        raise AssertionError("C applied every change before it could be held")
    finally:
        engine.dispose()


@needs_haproxy
def test_behind_haproxy_a_replica_kept_behind_or_stopped_gets_no_requests(
    database: str, a: Server, tmp_path: Path
) -> None:
    token = a.tokens["matcher"]
    # C may be 1 s behind the database. A change made through A holds on A before it answers;
    # then the change logs are held: C sees a new version it cannot read, and falls behind.
    # C reads them every 3 s: its follower, held, still serves for 4 x 30 s (the stale bound
    # is 10 refresh intervals), time enough to start another replica meanwhile.
    with running(database, "--max-lag", "1", "--refresh-interval", "3", roles=False) as c:
        c.tokens = a.tokens
        with _haproxy(tmp_path, a, c) as balanced:
            both = {"replica1", "replica2"}
            # An API client that keeps cookies is not pinned to a replica; a browser signed in
            # at the review desk is (its session lives in that replica's memory).
            assert eventually(lambda: {_served_by(balanced, token) for _ in range(4)} == both)
            assert "replica" not in balanced.cookies
            _stays_on_one_replica_once_signed_in(balanced, a.tokens["reviewer"])
            with _held_behind(database, a, c, LISTED[1:4]) as behind:
                shown = behind.json()
                assert shown["ready"] is False and shown["lag_changes"] >= 1
                assert shown["lag_seconds"] > 1 and "max_lag: 1 s" in shown["reason"]
                assert "lists" not in shown and LIST not in shown["reason"]
                metrics = c.get("/metrics", "auditor").text
                assert "hashguard_ready 0.0" in metrics
                assert f'hashguard_list_lag_changes{{list="{LIST}"}} 1.0' in metrics
                # Out of rotation while not ready: every request goes to A.
                only_a = {"replica1"}
                assert eventually(lambda: {_served_by(balanced, token) for _ in range(6)} == only_a)
                assert _ready(a).status_code == 200
            # Back once caught up.
            assert eventually(lambda: _served_by(balanced, token) == "replica2", 20)
            assert _ready(c).status_code == 200 and _ready(c).json()["lag_changes"] == 0
        # No replica ready: C behind, D loading its lists (its first read of the change logs
        # waits on the lock). Requests are still answered, by C, never by D, which is live
        # but does not serve.
        with (
            _held_behind(database, a, c, LISTED[6:9]),
            running(database, roles=False, ready=False) as d,
            _haproxy(tmp_path, c, d) as alone,
        ):
            assert d.get("/status/live").status_code == 200
            loading = {"serving": False, "reason": "the index is loading"}
            assert d.get("/status/serving").json() == loading
            assert c.get("/status/serving").json() == {"serving": True, "reason": "serving"}
            only_c = {"replica1"}
            assert eventually(lambda: {_answered_by(alone, token) for _ in range(6)} == only_c)
            assert [_served_by(alone, token) for _ in range(20)] == ["replica1"] * 20
            d.process.kill()  # its stop would wait for the follower, which waits on the lock
            d.process.wait(10)
        # C stopped: every request is answered, by A.
        with _haproxy(tmp_path, a, c) as balanced:
            c.process.terminate()
            c.process.wait(30)
            assert [_served_by(balanced, token) for _ in range(10)] == ["replica1"] * 10
