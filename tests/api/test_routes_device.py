"""Server-assisted device checks against a real ``hashguard serve --oprf-key`` on loopback: the
device CLI checks files through it, the server's budget per device key, and its refusals."""

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashguard.device import oprf
from hashguard.lists.model import Category, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.signals.digests import Sha256Signal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

from support.database import scratch_database
from support.invoke import Ran, hashguard
from support.media import png
from support.server import Server, running

LISTED = png(11)
BUDGET = 20  # evaluations per hour per device key


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    """A server evaluating with a fresh OPRF key, and a directory holding a release built with
    that key (``release``) and its log (``log``)."""
    directory = tmp_path_factory.mktemp("device-service")
    key = oprf.ServerKey.generate()
    key.save(directory / "oprf.key")
    engine = open_engine(f"sqlite:///{directory / 'lists.db'}")
    store = ListStore(engine)
    store.create("known", "hotline-a", Category.TEST)
    source = Provenance("a", sources=(Source("Hotline A", "NL"),))
    store.apply(
        "known", [Submission("sha256", Sha256Signal().hash(LISTED).hex(), provenance=source)]
    )
    engine.dispose()
    keys.generate(directory / "signer.key")
    built = hashguard(
        "device", "build-filter", "--list", "known", "--mode", "oprf",
        "--oprf-key", str(directory / "oprf.key"), "--key", str(directory / "signer.key"),
        "--log", str(directory / "log"), "--out", str(directory / "release"),
        "--database-url", f"sqlite:///{directory / 'lists.db'}",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    with scratch_database(request.param, directory) as url:
        options = ("--oprf-key", str(directory / "oprf.key"), "--oprf-limit", str(BUDGET))
        with running(url, *options) as server:
            yield server, directory


def _check(server: Server, directory: Path, token: str, *files: Path) -> Ran:
    return hashguard(
        "device", "check", *map(str, files), "--release", str(directory / "release"),
        "--log", str(directory / "log"), "--server", server.url, "--format", "jsonl",
        env={"HASHGUARD_DEVICE_TOKEN": token},
    )  # fmt: skip


def _new_device_key(server: Server) -> str:
    answer = server.post("/v1/keys", "admin", json={"role": "device", "name": "a phone"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_the_device_checks_through_the_server(served: tuple[Server, Path], tmp_path: Path) -> None:
    server, directory = served
    token = _new_device_key(server)
    (tmp_path / "listed.png").write_bytes(LISTED)
    (tmp_path / "other.png").write_bytes(png(12))
    result = _check(server, directory, token, tmp_path / "listed.png", tmp_path / "other.png")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f'{{"path": "{tmp_path / "listed.png"}", "blocked": true, "reason": "match: sha256"}}',
        f'{{"path": "{tmp_path / "other.png"}", "blocked": false, "reason": "no match"}}',
    ]
    # What the server logs: the request line, never an element it was sent.
    elements = [base64.b64encode(e).decode() for e in oprf.blind([b"a", b"b"]).elements]
    headers = {"Authorization": f"Bearer {token}"}
    answer = server.post("/v1/device/evaluate", json={"elements": elements}, headers=headers)
    assert answer.status_code == 200
    assert server.wait_for_log("POST /v1/device/evaluate")
    assert not any(element[:20] in line for element in elements for line in server.log)


def test_each_device_key_has_an_hourly_budget(served: tuple[Server, Path]) -> None:
    server, _ = served
    token = _new_device_key(server)
    elements = [oprf.blind([os.urandom(16)]).elements[0] for _ in range(8)]
    body = {"elements": [base64.b64encode(e).decode() for e in elements]}
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(BUDGET // 8):
        answer = server.post("/v1/device/evaluate", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        assert len(answer.json()["evaluated"]) == 8
    refused = server.post("/v1/device/evaluate", json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    other = {"Authorization": f"Bearer {_new_device_key(server)}"}
    assert server.post("/v1/device/evaluate", json=body, headers=other).status_code == 200
    too_many = {"elements": body["elements"] * 3}  # 24 > the whole budget: never answerable
    answer = server.post("/v1/device/evaluate", json=too_many, headers=other)
    assert answer.status_code == 413 and "asks for more" in answer.text
    metrics = server.get("/metrics", "auditor").text
    assert 'hashguard_rate_limited_total{route="/v1/device/evaluate",scope="credential"} 1.0' in (
        metrics
    )


def test_the_route_refuses_what_is_not_a_blinded_element(served: tuple[Server, Path]) -> None:
    server, _ = served
    headers = {"Authorization": f"Bearer {_new_device_key(server)}"}
    for elements, status, text in (
        (["not base64!"], 400, "expected base64"),
        ([base64.b64encode(bytes(32)).decode()], 400, "not a ristretto255 element"),
        # The identity as libsodium aliases it (top bit set): was a 500, found by fuzzing.
        ([base64.b64encode(bytes(31) + b"\x80").decode()], 400, "not a ristretto255 element"),
        ([], 422, "elements"),
        (["AAAA"] * 65, 422, "elements"),
    ):
        answer = server.post("/v1/device/evaluate", json={"elements": elements}, headers=headers)
        assert answer.status_code == status and text in answer.text, answer.text
    assert (
        server.post("/v1/device/evaluate", "matcher", json={"elements": ["x"]}).status_code == 403
    )


def test_a_server_without_a_key_says_so(tmp_path: Path) -> None:
    with running(f"sqlite:///{tmp_path / 'db'}") as server:
        answer = server.post("/v1/device/evaluate", "device", json={"elements": ["AAAA"]})
        assert answer.status_code == 404 and "--oprf-key" in answer.text


def test_serve_refuses_a_bad_key_file(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("nonsense\n")
    result = subprocess.run(
        [sys.executable, "-m", "hashguard", "serve", "--oprf-key", str(tmp_path / "bad.key"),
         "--database-url", f"sqlite:///{tmp_path / 'db'}", "--port", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "not a ristretto255-SHA512 OPRF key" in result.stderr
