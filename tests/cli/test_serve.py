"""``hashguard serve`` warns at start, on stderr, when the complaint links it would send users
point to an address they cannot reach (no ``--public-url``, or one on loopback)."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from hashguard.api.diagnosis import unreachable_links

from support.server import HASHGUARD, LISTENING, free_port

WARNING = "complaint links in statements of reasons will point to"


@pytest.mark.parametrize(
    "public_url",
    ["http://127.0.0.1:8000", "http://127.8.9.10", "http://[::1]:8000/", "http://localhost:8000",
     "https://LOCALHOST", "http://desk.localhost", "http://0.0.0.0:8000"],
)  # fmt: skip
def test_links_to_loopback_or_unspecified_addresses_are_unreachable(public_url: str) -> None:
    said = unreachable_links(public_url)
    assert said is not None and public_url in said and "--public-url" in said


@pytest.mark.parametrize(
    "public_url",
    ["https://hashguard.example.org", "http://192.0.2.10:8000", "http://[2001:db8::1]"],
)
def test_links_users_can_reach_are_not_warned_about(public_url: str) -> None:
    assert unreachable_links(public_url) is None


def started(tmp_path: Path, *options: str) -> list[str]:
    """What a real ``hashguard serve`` prints on stderr until it listens (then it is stopped)."""
    environment = {**os.environ, "HASHGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'hg.db'}",
                   "HASHGUARD_SECRET_FILE": str(tmp_path / "secret.key"),
                   "PYTHONUNBUFFERED": "1"}  # fmt: skip
    process = subprocess.Popen([HASHGUARD, "serve", "--port", str(free_port()), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=environment)  # fmt: skip
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if LISTENING in line:
                break
    finally:
        process.terminate()
        process.wait(30)
    assert any(LISTENING in line for line in lines), "".join(lines)
    return lines


def test_serve_warns_at_start_without_a_public_url(tmp_path: Path) -> None:
    [warning] = [line for line in started(tmp_path) if WARNING in line]
    assert "hashguard.serve warning: " in warning and "http://127.0.0.1:" in warning


def test_serve_says_nothing_with_a_public_url(tmp_path: Path) -> None:
    lines = started(tmp_path, "--public-url", "https://hashguard.example.org")
    assert not any(WARNING in line for line in lines)


def test_the_access_log_never_holds_a_case_number(tmp_path: Path) -> None:
    from support.database import scratch_database
    from support.server import running

    with scratch_database("sqlite", tmp_path) as url, running(url) as server:
        number = "HG-ABCDE-FGHJK-MNPQR-STVWX-YZ0123"  # no such case: refused, and logged
        answer = server.get(f"/v1/victims/cases/{number}", headers={"X-Case-Pin": "12345678"})
        assert answer.status_code in (403, 404, 429), answer.text
        assert server.wait_for_log("/v1/victims/cases/…"), "\n".join(server.log)
        assert not any("ABCDE" in line for line in server.log)


def test_a_proxy_on_this_machine_says_who_the_client_is(tmp_path: Path) -> None:
    from support.database import scratch_database
    from support.server import running

    with scratch_database("sqlite", tmp_path) as url, running(url) as server:
        server.get("/status/live", headers={"X-Forwarded-For": "198.51.100.7"})
        # The test's client is on 127.0.0.1, like a reverse proxy on the same machine.
        assert server.wait_for_log("198.51.100.7"), "\n".join(server.log)


@pytest.mark.parametrize("core", ["uvicorn", "granian"])
def test_either_server_core_serves_the_same_service(tmp_path: Path, core: str) -> None:
    """``serve --server granian`` is the same service as under uvicorn: the lists loaded at
    start, the hot routes and the framework's answering, the proxy's client address, the body
    limit (2 MiB of JSON), the access log without case numbers, and a graceful stop on
    SIGTERM."""
    import hashlib

    from hashguard.lists.model import Category
    from hashguard.lists.records import Submission
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    from support.database import scratch_database
    from support.server import running

    listed = hashlib.md5(b"listed").hexdigest()  # benign
    with scratch_database("sqlite", tmp_path) as url:
        engine = open_engine(url)
        store = ListStore(engine)
        store.create("known", "Org A", Category.TEST, ["NL"], actor="setup")
        store.apply("known", [Submission("md5", listed)], "setup")
        engine.dispose()
        with running(url, "--server", core) as server:
            hashes = {"hashes": [{"signal": "md5", "value": listed}]}
            matched = server.post("/v1/match/hashes", "matcher", json=hashes)
            assert matched.status_code == 200, matched.text
            assert matched.json()["results"][0]["matches"][0]["list"] == "known"
            lookup = {"signal_type": "video_md5", "signal": listed}
            looked_up = server.get("/m/raw_lookup", "matcher", params=lookup)
            assert looked_up.status_code == 200 and len(looked_up.json()["matches"]) == 1
            assert server.get("/v1/lists/known", "auditor").json()["name"] == "known"
            assert server.get("/m/lookup", params={"signal": listed}).status_code == 401
            too_large = server.post("/v1/lists", "curator", content=b"[" + b" " * (2 << 20),
                                    headers={"Content-Type": "application/json"})  # fmt: skip
            assert too_large.status_code == 413, too_large.text
            server.get("/status/live", headers={"X-Forwarded-For": "198.51.100.7"})
            assert server.wait_for_log("198.51.100.7"), "\n".join(server.log)
            case = "HG-ABCDE-FGHJK-MNPQR-STVWX-YZ0123"
            server.get(f"/v1/victims/cases/{case}", headers={"X-Case-Pin": "12345678"})
            assert server.wait_for_log("/v1/victims/cases/…"), "\n".join(server.log)
            assert not any("ABCDE" in line for line in server.log)
            process = server.process
        # Stopped gracefully by SIGTERM, each then ends by that signal (as uvicorn does).
        assert process.returncode == -signal.SIGTERM, "\n".join(server.log)
        stopped = "hashguard.api stopped: the matches answered are stored"  # the lifespan's end
        assert any(stopped in line for line in server.log), "\n".join(server.log)
