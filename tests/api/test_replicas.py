"""Replicated matchers: several ``hashguard serve`` processes over one PostgreSQL database. A
change made through one holds on the other within a bounded wait; each reports its applied
versions and lag; one kept behind reports not ready until it has caught up; one started from a
signed snapshot catches up from the change logs; behind HAProxy (the shipped configuration,
Debian's haproxy), a replica stopped or not ready gets no requests. All hashes are random
benign values."""

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

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

from support.conformance import ConformanceReport
from support.database import scratch_database
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


def test_each_replica_reports_its_applied_versions_and_lag(a: Server, b: Server) -> None:
    _change(a, "delist", LISTED[0])
    version = ListStore(open_engine(a.database_url)).get(LIST).version
    ready = eventually(lambda: (r := _ready(b).json())["lag_changes"] == 0 and r)
    assert ready["ready"] and ready["lag_seconds"] == 0
    assert ready["lists"] == [{"name": LIST, "applied_version": version, "version": version,
                               "lag_changes": 0}]  # fmt: skip
    metrics = b.get("/metrics", "auditor").text
    assert f'hashguard_list_version{{list="{LIST}"}} {version}.0' in metrics
    assert f'hashguard_list_database_version{{list="{LIST}"}} {version}.0' in metrics
    assert f'hashguard_list_lag_changes{{list="{LIST}"}} 0.0' in metrics
    assert "hashguard_lag_changes 0.0" in metrics and "hashguard_lag_seconds 0.0" in metrics


def test_a_replica_kept_behind_reports_not_ready_then_ready_once_caught_up(
    database: str, a: Server
) -> None:
    # C reads the change logs every 4 s and may be 1 s behind: a change made through A just
    # after C's read waits about 4 s there, so C says it is not ready until its next read.
    with running(database, "--refresh-interval", "4", "--max-lag", "1", roles=False) as c:
        c.tokens = a.tokens
        assert eventually(lambda: (_ready(c).json()["index_age_seconds"] or 9) < 0.5, 20)
        _change(a, "delist", LISTED[1])
        behind = eventually(lambda: (r := _ready(c)).status_code == 503 and r, 10)
        assert behind, "C never reported not ready"
        shown = behind.json()
        assert shown["ready"] is False and shown["lag_changes"] >= 1
        assert shown["lag_seconds"] > 1 and "max_lag: 1 s" in shown["reason"]
        assert [held["lag_changes"] for held in shown["lists"]] == [shown["lag_changes"]]
        metrics = c.get("/metrics", "auditor").text
        assert "hashguard_ready 0.0" in metrics and "hashguard_lag_changes 0.0" not in metrics
        caught_up = eventually(lambda: (r := _ready(c)).status_code == 200 and r, 20)
        assert caught_up, "C never caught up"
        assert caught_up.json()["lag_changes"] == 0 and caught_up.json()["ready"] is True


def test_a_replica_started_from_a_snapshot_catches_up_from_the_change_log(
    database: str, a: Server, tmp_path: Path
) -> None:
    key, other = tmp_path / "snapshot.key", tmp_path / "other.key"
    keys.generate(key)
    keys.generate(other)
    path = tmp_path / "lists.snapshot"
    made = hashguard("lists", "snapshot", "--key", str(key), "--out", str(path),
                     "--database-url", database)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"wrote {path}: 1 list(s)" in made.stdout
    # After the snapshot: an entry added, one delisted.
    added = random_values(1, seed=99)[0]
    assert a.post(f"/c/bank/{LIST}/signal", "curator", json={"pdq": added}).status_code == 200
    _change(a, "delist", LISTED[2])
    for signer, used in ((key, True), (other, False)):
        options = ("--snapshot", str(path), "--snapshot-key", f"{signer}.pub")
        with running(database, *options, roles=False) as d:
            d.tokens = a.tokens
            if used:
                assert d.wait_for_log(f"snapshot {path}: 1 list(s) load from it ({LIST})", 0)
            else:
                assert d.wait_for_log("the snapshot is not used", 0)
                assert d.wait_for_log("not the key given", 0)
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
def _haproxy(directory: Path, servers: dict[str, Server]) -> Iterator[httpx.Client]:
    """HAProxy as shipped, but listening on a free port, checking every 0.1 s, in front of
    ``servers`` (by name); a client of it."""
    assert HAPROXY is not None
    port = free_port()
    text = re.sub(r"bind \S+", f"bind 127.0.0.1:{port}", EXAMPLE.read_text())
    text = re.sub(r"default-server .*", "default-server inter 100ms fall 1 rise 1", text)
    text = re.sub(r"(?m)^    server .*\n", "", text)
    text += "".join(f"    server {name} {server.url.removeprefix('http://')} check\n"
                    for name, server in servers.items())  # fmt: skip
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
    """Which replica answered a match request sent through ``client`` (it must be answered)."""
    answer = client.post("/v1/match/hashes", headers={"Authorization": f"Bearer {token}"},
                         json={"hashes": [{"signal": "pdq", "value": LISTED[5]}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["matched"] == 1
    return answer.headers["x-served-by"]


@needs_haproxy
def test_behind_haproxy_a_replica_not_ready_or_stopped_gets_no_requests(
    database: str, a: Server, tmp_path: Path
) -> None:
    token = a.tokens["matcher"]
    # B reads the change logs every 6 s and may be 0.5 s behind: kept behind after a change.
    with running(database, "--refresh-interval", "6", "--max-lag", "0.5", roles=False) as b:
        with _haproxy(tmp_path, {"a": a, "b": b}) as balanced:
            assert eventually(lambda: {_served_by(balanced, token) for _ in range(4)} == {"a", "b"})
            assert eventually(lambda: (_ready(b).json()["index_age_seconds"] or 9) < 0.5, 20)
            _change(a, "delist", LISTED[4])
            # Out of rotation while not ready: every request goes to A.
            assert eventually(lambda: {_served_by(balanced, token) for _ in range(6)} == {"a"}, 10)
            assert _ready(b).status_code == 503
            # Back once caught up.
            assert eventually(lambda: _served_by(balanced, token) == "b", 20)
            assert _ready(b).status_code == 200
        # B stopped: every request is answered, by A.
        with _haproxy(tmp_path, {"a": a, "b": b}) as balanced:
            b.process.terminate()
            b.process.wait(30)
            assert [_served_by(balanced, token) for _ in range(10)] == ["a"] * 10
