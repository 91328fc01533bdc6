"""The on-device check: benign lists built into signed, logged filter releases; files blocked or
let through in both modes, with the warning and helplines; every kind of bad release refused;
delta updates; no network in offline mode and no network library in the package."""

import ast
import base64
import hashlib
import io
import json
import random
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from hashguard.cli import app
from hashguard.device import oprf
from hashguard.device.build import build
from hashguard.device.checker import DeviceChecker, DeviceCheckError
from hashguard.device.install import install, open_installed
from hashguard.device.messages import ReferralError, load_referrals
from hashguard.device.release import DeviceReleaseError
from hashguard.device.verify import open_release
from hashguard.index import fileformat
from hashguard.lists.model import (
    Category,
    ChangeKind,
    EntryStatus,
    ListPolicy,
    Provenance,
    Source,
)
from hashguard.lists.records import Submission
from hashguard.signals.digests import CanonicalSha256Signal, Sha256Signal
from hashguard.signals.pdq import PdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys
from hashguard.transparency.log import TransparencyLog, TreeHead, canonical

from support.loopback import Loopback
from support.media import jpeg, png
from support.paths import PACKAGE

SOURCE = Provenance("hotline-a", sources=(Source("Hotline A", "NL", "case-1"),))
LISTED = png(1)  # listed by its file hash and its PDQ hash
PIXELS_LISTED = png(2)  # listed by its canonical pixel hash only
UNRELATED = [png(3), png(4), jpeg(5), b"plain text, not an image"]


def _resaved(data: bytes) -> bytes:
    """The same pixels in another PNG file: other compression, a text chunk added."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved")
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "PNG", compress_level=1, pnginfo=info)
    assert out.getvalue() != data
    return out.getvalue()


def _reencoded(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class World:
    root: Path
    store: ListStore
    signer: Path
    log: TransparencyLog
    log_key: Path
    server_key: oprf.ServerKey

    def release(self, mode: str, out: str, previous: str | None = None, **options: object) -> Path:
        lists = [self.store.entries("known", [EntryStatus.ACTIVE])]
        build(
            lists, mode, keys.load(self.signer), self.log, keys.load(self.log_key),
            self.root / out, server_key=self.server_key if mode == "oprf" else None,
            previous=self.root / previous if previous else None, **options,  # type: ignore[arg-type]
        )  # fmt: skip
        return self.root / out


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = open_engine(f"sqlite:///{tmp_path / 'lists.db'}")
    store = ListStore(engine)
    store.create("known", "hotline-a", Category.TEST)
    store.apply("known", [
        Submission("sha256", Sha256Signal().hash(LISTED).hex(), provenance=SOURCE),
        Submission("pdq", PdqSignal().hash(LISTED).hex, provenance=SOURCE),
        Submission("canonical_sha256", CanonicalSha256Signal().hash(PIXELS_LISTED).hex(),
                   provenance=SOURCE),
        Submission("md5", "0" * 32, provenance=SOURCE),  # a signal devices do not compute
    ])  # fmt: skip
    keys.generate(tmp_path / "signer.key")
    keys.generate(tmp_path / "log.key")
    log = TransparencyLog.create_or_open(tmp_path / "log", keys.load(tmp_path / "log.key"))
    yield World(
        tmp_path, store, tmp_path / "signer.key", log, tmp_path / "log.key",
        oprf.ServerKey.generate(),
    )  # fmt: skip
    engine.dispose()


class LocalEvaluator:
    """The server's half in process (the HTTP route is tested in test_device_service)."""

    def __init__(self, key: oprf.ServerKey) -> None:
        self.key = key
        self.sent: list[int] = []

    def evaluate(self, elements: list[bytes]) -> tuple[list[bytes], bytes]:
        self.sent.append(len(elements))
        return oprf.blind_evaluate(self.key, elements)


def test_offline_blocks_listed_files_and_their_resaves(world: World) -> None:
    release = open_release(world.release("offline", "r1", near_duplicates=True), world.log)
    assert release.manifest["fingerprint_bits"] == 48
    assert release.manifest["counts"]["tag"] == {
        "sha256": 1,
        "canonical_sha256": 1,
        "pdq-segment": 6,
    }
    assert release.manifest["counts"]["source"] == {"Hotline A": 3}
    checker = DeviceChecker(release)
    assert checker.check(LISTED).reason == "match: sha256"
    assert checker.check(_resaved(PIXELS_LISTED)).reason == "match: canonical_sha256"
    assert checker.check(_reencoded(LISTED)).reason == "match: pdq-segment"
    for data in UNRELATED:
        verdict = checker.check(data)
        assert not verdict.blocked and verdict.message is None and verdict.reason == "no match"
    blocked = checker.check(LISTED)
    assert blocked.blocked and blocked.helpline is not None and blocked.support is not None
    assert blocked.helpline.name == "Stop it Now!" and blocked.helpline.phone == "0800 266 64 36"
    assert "can't be sent" in (blocked.message or "")
    assert "Nothing has been reported" in (blocked.message or "")


def test_without_near_duplicates_a_reencoded_copy_passes(world: World) -> None:
    release = open_release(world.release("offline", "r1"), world.log)
    assert release.near is None
    assert not DeviceChecker(release).check(_reencoded(LISTED)).blocked


def test_messages_in_dutch_and_english_with_the_countrys_helplines(
    world: World, tmp_path: Path
) -> None:
    release = open_release(world.release("offline", "r1"), world.log)
    dutch = DeviceChecker(release, language="nl").check(LISTED)
    assert dutch.message is not None and dutch.message.startswith("Dit bestand kan niet")
    assert "Er is niets gemeld" in dutch.message and "Stop it Now!" in dutch.message
    assert "Het is niet jouw schuld" in dutch.message and "Helpwanted" in dutch.message
    english = DeviceChecker(release, language="en", country="GB").check(LISTED)
    assert english.helpline is not None and english.helpline.phone == "0808 1000 900"
    assert "it is not your fault" in (english.message or "")
    for words in ("criminal", "offender", "illegal", "you tried", "you were"):
        assert words not in (english.message or "").lower()  # states facts, accuses no one
    with pytest.raises(ReferralError, match="no warning text in 'de'"):
        DeviceChecker(release, language="de")
    with pytest.raises(ReferralError, match="no helplines for country 'FR'"):
        DeviceChecker(release, country="FR")
    custom = tmp_path / "helplines.json"
    line = {"name": "Hulplijn", "phone": "0800 1", "url": "https://example.org"}
    custom.write_text(json.dumps({"BE": {"helpline": line, "support": line}}))
    referrals = load_referrals(custom)
    verdict = DeviceChecker(release, language="nl", country="BE", referrals=referrals).check(LISTED)
    assert verdict.helpline is not None and verdict.helpline.name == "Hulplijn"
    custom.write_text(json.dumps({"BE": {"helpline": line}}))
    with pytest.raises(ReferralError, match=r"helplines.json: BE.support: expected an object"):
        load_referrals(custom)


def test_server_assisted_blocks_through_the_oprf(world: World) -> None:
    release = open_release(world.release("oprf", "r1", near_duplicates=True), world.log)
    assert release.manifest["fingerprint_bits"] == 31
    assert release.manifest["oprf"]["public_key"] == world.server_key.public.hex()
    assert "tag_key" not in release.manifest
    evaluator = LocalEvaluator(world.server_key)
    checker = DeviceChecker(release, evaluator=evaluator)
    assert checker.check(LISTED).reason == "match: sha256"
    assert checker.check(_resaved(PIXELS_LISTED)).reason == "match: canonical_sha256"
    assert checker.check(_reencoded(LISTED)).reason == "match: pdq-segment"
    for data in UNRELATED:
        assert not checker.check(data).blocked
    # Every check sends the same number of elements, image or not.
    assert set(evaluator.sent) == {8}
    with pytest.raises(ValueError, match="needs an evaluator"):
        DeviceChecker(release)


def test_server_assisted_answers_that_do_not_verify_are_refused(world: World) -> None:
    release = open_release(world.release("oprf", "r1"), world.log)
    other_key = DeviceChecker(release, evaluator=LocalEvaluator(oprf.ServerKey.generate()))
    with pytest.raises(DeviceCheckError, match="does not verify against the release's public key"):
        other_key.check(LISTED)

    class Tampering(LocalEvaluator):
        def evaluate(self, elements: list[bytes]) -> tuple[list[bytes], bytes]:
            evaluated, proof = super().evaluate(elements)
            return evaluated, proof[:40] + bytes([proof[40] ^ 1]) + proof[41:]

    with pytest.raises(DeviceCheckError):
        DeviceChecker(release, evaluator=Tampering(world.server_key)).check(LISTED)


def test_tampered_filters_and_manifests_are_refused(world: World) -> None:
    out = world.release("offline", "r1")
    copy = world.root / "copy"
    shutil.copytree(out, copy)
    fuse = next(copy.glob("exact-*.fuse"))
    data = bytearray(fuse.read_bytes())
    data[200] ^= 1
    fuse.write_bytes(bytes(data))
    with pytest.raises(DeviceReleaseError, match="SHA-256 is not the manifest's"):
        open_release(copy, world.log)
    shutil.rmtree(copy)
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "manifest.json").read_bytes())
    manifest["counts"]["list"]["known"] = 1
    (copy / "manifest.json").write_bytes(
        json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    )
    with pytest.raises(DeviceReleaseError, match="signature does not match"):
        open_release(copy, world.log)
    other = world.root / "other.key"
    keys.generate(other)
    with pytest.raises(DeviceReleaseError, match="not the pinned key"):
        open_release(out, world.log, signer_key=keys.read_public(Path(f"{other}.pub")))


def test_a_release_not_in_the_log_is_refused(world: World) -> None:
    out = world.release("offline", "r1")
    keys.generate(world.root / "elsewhere.key")
    elsewhere = TransparencyLog.create_or_open(
        world.root / "elsewhere", keys.load(world.root / "elsewhere.key")
    )
    elsewhere.append(b"some other record", keys.load(world.root / "elsewhere.key"))
    with pytest.raises(DeviceReleaseError, match="NOT LOGGED"):
        open_release(out, elsewhere)
    runner = CliRunner()
    result = runner.invoke(app, ["device", "check", str(world.root / "x"), "--release",
                                 str(out), "--log", str(world.root / "elsewhere")])  # fmt: skip
    assert result.exit_code == 2 and "REFUSED" in result.output and "NOT LOGGED" in result.output


def test_a_forked_log_is_refused(world: World) -> None:
    world.release("offline", "r1")
    seen = world.log.head()  # what a device saw
    fork = world.root / "fork"
    shutil.copytree(world.root / "log", fork)
    forked = TransparencyLog(fork)
    forked.append(b"a record only the fork has", keys.load(world.log_key))
    forked_head = forked.head()
    out = world.release("offline", "r2")  # the real log grew differently
    with pytest.raises(DeviceReleaseError, match="rewritten or forked"):
        open_release(out, world.log, known_head=forked_head)
    assert open_release(out, world.log, known_head=seen).version == 2


def test_install_refuses_rollback_and_another_signer(world: World) -> None:
    state = world.root / "device"
    first = world.release("offline", "r1")
    second = world.release("offline", "r2")
    anchor = world.log.public_key()
    with pytest.raises(DeviceReleaseError, match="needs the log's public key"):
        install(second, world.log, state)
    install(second, world.log, state, log_key=anchor)
    with pytest.raises(
        DeviceReleaseError, match=f"{first}: NOT LOGGED: version 1 is not the newest"
    ):
        install(first, world.log, state)
    assert open_installed(state, world.log).version == 2
    keys.generate(world.root / "intruder.key")
    genuine, world.signer = world.signer, world.root / "intruder.key"
    with pytest.raises(DeviceReleaseError, match="a new signer needs a new log"):
        world.release("offline", "r3")  # the builder refuses
    third = world.root / "r3"
    manifest = json.loads((second / "manifest.json").read_bytes())
    _publish(world, {**manifest, "version": 3, "signer": keys.public_hex(keys.load(world.signer))},
             third)  # but someone with the log's key could still log one  # fmt: skip
    with pytest.raises(DeviceReleaseError, match="not the pinned key"):
        install(third, world.log, state)  # the device pinned its first signer
    with pytest.raises(DeviceReleaseError, match="the signer changed"):
        open_release(third, world.log)  # and the log shows the change to anyone
    assert open_installed(state, world.log).version == 2  # the genuine release still works
    world.signer = genuine
    assert open_release(world.release("offline", "r4"), world.log).version == 4


def test_a_device_stays_on_its_stream(world: World) -> None:
    state = world.root / "device"
    install(world.release("offline", "r1"), world.log, state, log_key=world.log.public_key())
    other_mode = world.release("oprf", "r2")
    with pytest.raises(DeviceReleaseError, match="of another stream than this device follows"):
        install(other_mode, world.log, state)
    near = world.release("offline", "r3", near_duplicates=True)
    with pytest.raises(DeviceReleaseError, match="of another stream"):
        install(near, world.log, state)
    assert open_installed(state, world.log).version == 1  # still the newest of its stream


def test_installing_the_same_release_again_repairs_it(world: World) -> None:
    state = world.root / "device"
    out = world.release("offline", "r1")
    install(out, world.log, state, log_key=world.log.public_key())
    held = next(state.glob("release-1-*/exact-*.fuse"))
    damaged = bytearray(held.read_bytes())
    damaged[-1] ^= 1  # always a change (appending a fixed byte may leave it as it was)
    held.write_bytes(bytes(damaged))
    with pytest.raises(DeviceReleaseError, match="SHA-256 is not the manifest's"):
        open_installed(state, world.log)
    size = held.stat().st_size
    again = install(out, world.log, state)
    assert again.fetched_bytes == size  # only the damaged file came again
    assert DeviceChecker(open_installed(state, world.log)).check(LISTED).blocked
    assert len(list(state.glob("release-*"))) == 1


def test_a_stale_head_update_does_not_roll_the_device_back(world: World) -> None:
    from hashguard.device.install import _read_state, _remember

    state = world.root / "device"
    install(world.release("offline", "r1"), world.log, state, log_key=world.log.public_key())
    stale = _read_state(state)
    install(world.release("offline", "r2"), world.log, state)  # an update commits meanwhile
    world.release("oprf", "r3")  # the log grows
    _remember(state, stale, world.log.head())  # a check that read the state before the update
    assert _read_state(state)["version"] == 2  # type: ignore[index]
    assert open_installed(state, world.log).version == 2


def test_a_release_logged_but_not_written_is_kept(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashguard import durable

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable, "move_into_place", full_disk)
    with pytest.raises(DeviceReleaseError, match=r"logged as record 0, but writing .* are in"):
        world.release("offline", "r1")
    kept = world.root / ".r1.logged-0"
    assert any(kept.glob("exact-*.fuse")) and (world.root / "r1.keys").is_file()


@pytest.mark.parametrize("mode", ["offline", "oprf"])
def test_delta_updates_fetch_only_the_changes(world: World, mode: str) -> None:
    state = world.root / "device"
    rng = random.Random(7)  # a list of some size: random (benign) hashes nothing has
    world.store.apply("known", [
        Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE) for _ in range(3000)
    ])  # fmt: skip
    first = world.release(mode, "r1")
    installed = install(first, world.log, state, log_key=world.log.public_key())
    assert installed.fetched_bytes == installed.total_bytes
    added = png(6)
    world.store.apply("known", [
        Submission("sha256", Sha256Signal().hash(added).hex(), provenance=SOURCE),
    ])  # fmt: skip
    world.store.change("known", ChangeKind.DELETE, "sha256", Sha256Signal().hash(LISTED).hex())
    second = world.release(mode, "r2", previous="r1")
    manifest = json.loads((second / "manifest.json").read_bytes())
    assert manifest["base_version"] == 1 and "delta" in manifest["files"]
    evaluator = LocalEvaluator(world.server_key) if mode == "oprf" else None
    updated = install(second, world.log, state)
    assert updated.fetched_bytes == manifest["files"]["delta"]["bytes"]
    assert updated.fetched_bytes < updated.total_bytes / 4
    checker = DeviceChecker(open_installed(state, world.log), evaluator=evaluator)
    assert checker.check(added).blocked
    assert not checker.check(LISTED).blocked  # deleted from the list
    assert checker.check(_resaved(PIXELS_LISTED)).blocked
    # Re-added: back in the next delta (added keys win over the base's removal).
    world.store.apply("known", [
        Submission("sha256", Sha256Signal().hash(LISTED).hex(), provenance=SOURCE),
    ])  # fmt: skip
    readded = world.release(mode, "r3", previous="r2")
    assert "delta" in json.loads((readded / "manifest.json").read_bytes())["files"]
    install(readded, world.log, state)
    assert (
        DeviceChecker(open_installed(state, world.log), evaluator=evaluator).check(LISTED).blocked
    )
    # A change too large for a delta gives a full release, installed in full.
    world.store.apply("known", [
        Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE) for _ in range(2000)
    ])  # fmt: skip
    full = world.release(mode, "r4", previous="r3")
    fourth = json.loads((full / "manifest.json").read_bytes())
    assert fourth["base_version"] == 4 and "delta" not in fourth["files"]
    updated = install(full, world.log, state)
    assert updated.fetched_bytes == updated.total_bytes
    checker = DeviceChecker(open_installed(state, world.log), evaluator=evaluator)
    assert checker.check(added).blocked and checker.check(LISTED).blocked


def test_offline_filters_need_48_bit_fingerprints(world: World) -> None:
    with pytest.raises(DeviceReleaseError, match="needs at least 48"):
        world.release("offline", "r1", width=40)


def test_offline_checks_use_no_network(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    release = open_release(world.release("offline", "r1", near_duplicates=True), world.log)
    checker = DeviceChecker(release, language="nl")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the device check opened a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert checker.check(LISTED).blocked
    assert checker.check(_reencoded(LISTED)).blocked
    assert not checker.check(png(3)).blocked


_NETWORK = (
    "socket", "ssl", "http", "urllib", "requests", "httpx", "aiohttp", "asyncio", "websockets",
    "ftplib", "smtplib", "xmlrpc", "grpc", "uvicorn", "fastapi", "starlette", "sqlalchemy",
    "hashguard.api", "hashguard.store", "hashguard.web",
)  # fmt: skip


def test_no_network_library_in_the_device_package() -> None:
    """Every module the device package reaches (hashguard's own, followed transitively) imports
    no network, web or database library, nor imports by name at run time; only
    ``device/oprf_client.py`` may use the standard library's HTTP client."""
    source = PACKAGE.parent
    queue = [p for p in (PACKAGE / "device").glob("*.py")]
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:  # relative: from the file's package
                    package = path.relative_to(source).parent.parts
                    base = package[: len(package) - node.level + 1]
                    module = ".".join([*base, module] if module else base)
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Name) and node.id == "__import__":
                names = ["__import__"]
            for name in names:
                assert name.split(".")[0] not in ("importlib", "__import__"), (path, name)
                if path.name == "oprf_client.py" and name.split(".")[0] in ("urllib", "http"):
                    continue
                assert not any(
                    name == banned or name.startswith(banned + ".") for banned in _NETWORK
                ), f"{path.relative_to(source)} imports {name}"
                if name.startswith("hashguard."):
                    module = source / Path(*name.split("."))
                    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
                        if candidate.is_file():
                            queue.append(candidate)
    assert len(seen) > 10  # the walk followed hashguard's own imports


def test_importing_the_checker_loads_no_http_client() -> None:
    import subprocess

    code = (
        "import sys, hashguard.device.checker, hashguard.device.install;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ssl', 'http', 'httpx', 'requests', 'urllib3') or m == 'urllib.request'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_lists_of_different_categories_or_negative_lists_are_refused(world: World) -> None:
    world.store.create("other", "hotline-b", Category.NCII)
    lists = [world.store.entries(name, [EntryStatus.ACTIVE]) for name in ("known", "other")]
    with pytest.raises(DeviceReleaseError, match="one category only"):
        build(lists, "offline", keys.load(world.signer), world.log, keys.load(world.log_key),
              world.root / "out")  # fmt: skip
    world.store.create("fp", "hotline-a", Category.TEST, policy=ListPolicy(negative=True))
    lists = [world.store.entries(name, [EntryStatus.ACTIVE]) for name in ("known", "fp")]
    with pytest.raises(DeviceReleaseError, match="fp is a negative list"):
        build(lists, "offline", keys.load(world.signer), world.log, keys.load(world.log_key),
              world.root / "out")  # fmt: skip
    assert world.log.size() == 0  # nothing was logged


def test_cli_builds_checks_and_updates(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    database = f"sqlite:///{world.root / 'lists.db'}"
    common = ["--key", str(world.signer), "--log", str(world.root / "log"),
              "--log-key", str(world.log_key), "--database-url", database]  # fmt: skip
    result = runner.invoke(app, ["device", "build-filter", "--list", "known", "--mode",
                                 "offline", "--out", str(tmp_path / "c1"), *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "version 1 (offline, full)" in result.output
    assert "can be queried offline" in result.output
    files = []
    for name, data in (("listed.png", LISTED), ("other.png", png(3))):
        (tmp_path / name).write_bytes(data)
        files.append(str(tmp_path / name))
    check = ["device", "check", *files, "--release", str(tmp_path / "c1"), "--log",
             str(world.root / "log")]  # fmt: skip
    result = runner.invoke(app, [*check, "--format", "jsonl"])
    assert result.exit_code == 1  # something was blocked
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"path": files[0], "blocked": True, "reason": "match: sha256"},
        {"path": files[1], "blocked": False, "reason": "no match"},
    ]
    result = runner.invoke(app, [*check[:2], *check[3:], "--language", "nl"])
    assert result.exit_code == 0 and "ok (no match)" in result.output
    result = runner.invoke(app, [*check, "--language", "nl"])
    assert "BLOCKED" in result.output and "Dit bestand kan niet worden verstuurd" in result.output
    update = ["device", "update", "--release", str(tmp_path / "c1"), "--log",
              str(world.root / "log"), "--state", str(tmp_path / "dev")]  # fmt: skip
    result = runner.invoke(app, update)
    assert result.exit_code == 2 and "needs the log's public key" in result.output
    result = runner.invoke(app, [*update, "--log-key", str(world.root / "log" / "log.pub")])
    assert result.exit_code == 0 and "installed device release version 1" in result.output
    installed = ["device", "check", files[0], "--state", str(tmp_path / "dev"), "--log",
                 str(world.root / "log"), "-f", "jsonl"]  # fmt: skip
    result = runner.invoke(app, installed)
    assert result.exit_code == 1 and '"blocked": true' in result.output
    result = runner.invoke(app, [*installed, "--log-key", str(world.root / "log" / "log.pub")])
    assert result.exit_code == 2 and "no pins with it" in result.output
    head = world.log.head()
    (tmp_path / "head.json").write_text(json.dumps(head.as_json()))
    assert TreeHead.from_json(json.loads((tmp_path / "head.json").read_text()), "x") == head
    result = runner.invoke(app, [*check, "--known-head", str(tmp_path / "head.json")])
    assert result.exit_code == 1


def test_the_demo_builds_device_releases_that_block_its_samples(tmp_path: Path) -> None:
    from hashguard.cli.demo import prepare_service

    tokens = prepare_service(tmp_path)
    assert "device" in tokens
    device, images = tmp_path / "device", tmp_path / "images"
    release = open_release(device / "release-offline", TransparencyLog(device / "log"))
    checker = DeviceChecker(release)
    assert checker.check((images / "copy-a.jpg").read_bytes()).reason == "match: sha256"
    assert checker.check((images / "copy-b.jpg").read_bytes()).reason == "match: pdq-segment"
    assert not checker.check((images / "other-11.jpg").read_bytes()).blocked
    served = open_release(device / "release-oprf", TransparencyLog(device / "log"))
    evaluator = LocalEvaluator(oprf.ServerKey.load(device / "oprf.key"))
    assert (
        DeviceChecker(served, evaluator=evaluator)
        .check((images / "copy-a.jpg").read_bytes())
        .blocked
    )


def test_a_fresh_device_trusts_only_the_log_it_was_given(world: World) -> None:
    """An attacker's own log and release (validly signed by keys of their own) is refused by a
    device set up with the real log's key."""
    genuine = world.log.public_key()
    keys.generate(world.root / "evil-log.key")
    keys.generate(world.root / "evil-signer.key")
    evil_log = TransparencyLog.create_or_open(
        world.root / "evil-log", keys.load(world.root / "evil-log.key")
    )
    world.signer, world.log, world.log_key = (
        world.root / "evil-signer.key",
        evil_log,
        world.root / "evil-log.key",
    )
    evil = world.release("offline", "evil")
    assert open_release(evil, evil_log).version == 1  # consistent in itself...
    with pytest.raises(
        DeviceReleaseError, match=r"NOT LOGGED: the log key given .* is not the key this log is"
    ):
        install(evil, evil_log, world.root / "device", log_key=genuine)  # ...but not the real log
    assert not (world.root / "device" / "state.json").exists()


def test_a_genuine_release_outside_the_log_or_with_a_bad_proof_is_refused(world: World) -> None:
    world.release("offline", "r0")
    shutil.copytree(world.root / "log", world.root / "before")  # the same log, before
    out = world.release("offline", "r1")
    with pytest.raises(DeviceReleaseError, match="NOT LOGGED: the log shrank"):
        open_release(out, TransparencyLog(world.root / "before"))
    located = json.loads((out / "log.json").read_bytes())
    located["index"] = 0  # the proof is for record 1
    (out / "log.json").write_text(json.dumps(located))
    with pytest.raises(DeviceReleaseError, match=r"NOT LOGGED: .*tampered proof"):
        open_release(out, world.log)


def test_an_older_release_cannot_be_replayed(world: World) -> None:
    first = world.release("offline", "r1")
    world.release("offline", "r2")
    with pytest.raises(DeviceReleaseError, match=r"not the newest .* the log holds version 2"):
        open_release(first, world.log)


def _publish(world: World, manifest: dict, out: Path) -> None:  # type: ignore[type-arg]
    """A release whose manifest is validly signed and logged, whatever it says."""
    out.mkdir()
    body = canonical(manifest)
    signature = keys.sign(keys.load(world.signer), body)
    record = canonical({"manifest": manifest, "signature": signature})
    index, head = world.log.append(record, keys.load(world.log_key))
    proof = [p.hex() for p in world.log.inclusion(index, head.size)]
    (out / "manifest.json").write_bytes(body)
    (out / "manifest.sig").write_text(signature)
    (out / "log.json").write_bytes(canonical({"index": index, "head": head.as_json(),
                                              "inclusion": proof}))  # fmt: skip


def test_signed_but_malformed_manifests_are_refused_clearly(world: World) -> None:
    good = json.loads((world.release("offline", "r1") / "manifest.json").read_bytes())
    for number, (change, message) in enumerate([
        ({"files": [good["files"]["exact"]]}, "files: expected an object"),
        ({"files": {"exact": {**good["files"]["exact"], "bytes": "many"}}}, "files.exact"),
        ({"files": {"exact": {**good["files"]["exact"], "name": "../x"}}}, "files.exact"),
        ({"version": 2.5}, "version: expected a positive integer"),
        ({"version": True}, "version: expected a positive integer"),
        ({"mode": "online"}, "mode: expected offline or oprf"),
    ]):  # fmt: skip
        with pytest.raises(DeviceReleaseError, match=message):
            _publish(world, {**good, **change}, world.root / f"bad{number}")
            open_release(world.root / f"bad{number}", world.log)


def test_bad_delta_files_are_refused(world: World) -> None:
    rng = random.Random(3)
    world.store.apply("known", [
        Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE) for _ in range(3000)
    ])  # fmt: skip
    world.release("offline", "r1")
    world.store.apply("known", [Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE)])
    world.store.change("known", ChangeKind.DELETE, "sha256", Sha256Signal().hash(LISTED).hex())
    out = world.release("offline", "r2", previous="r1")
    manifest = json.loads((out / "manifest.json").read_bytes())
    unsorted = {
        "exact_added": np.array([9, 3, 5], dtype=np.uint64),
        "exact_removed": np.zeros(0, dtype=np.uint64),
    }
    for number, (arrays, message) in enumerate((
        (unsorted, "not a sorted set of keys"),
        ({"exact_added": np.array([3], dtype=np.uint64)},
         r"delta-[0-9a-f]{16}\.idx: holds \['exact_added'\], "
         r"expected \['exact_added', 'exact_removed'\]"),
        ({"exact_added": np.array([3], dtype=np.uint64),
          "exact_removed": np.array([3], dtype=np.uint64)}, "both added and removed"),
    )):  # fmt: skip
        path = world.root / "delta.idx"
        fileformat.write(path, "device-delta", {}, arrays)
        data = path.read_bytes()
        name = f"delta-{hashlib.sha256(data).hexdigest()[:16]}.idx"
        (out / name).write_bytes(data)
        files = {**manifest["files"], "delta": {"name": name, "sha256":
                 hashlib.sha256(data).hexdigest(), "bytes": len(data)}}  # fmt: skip
        published = world.root / f"published-{name}"
        _publish(world, {**manifest, "version": manifest["version"] + 1 + number,
                         "files": files}, published)  # fmt: skip
        for file in out.iterdir():
            if file.suffix in (".fuse", ".idx"):
                shutil.copyfile(file, published / file.name)
        with pytest.raises(DeviceReleaseError, match=message):
            open_release(published, world.log)


def test_a_damaged_local_filter_is_fetched_again(world: World) -> None:
    rng = random.Random(4)
    world.store.apply("known", [
        Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE) for _ in range(3000)
    ])  # fmt: skip
    state = world.root / "device"
    install(world.release("offline", "r1"), world.log, state, log_key=world.log.public_key())
    held = next(state.glob("release-1-*/exact-*.fuse"))
    data = bytearray(held.read_bytes())
    data[100] ^= 1
    held.write_bytes(bytes(data))
    world.store.apply("known", [Submission("sha256", rng.randbytes(32).hex(), provenance=SOURCE)])
    second = world.release("offline", "r2", previous="r1")
    updated = install(second, world.log, state)
    assert updated.fetched_bytes == updated.total_bytes  # the damaged base came again
    assert DeviceChecker(open_installed(state, world.log)).check(LISTED).blocked


def test_the_oprf_client_refuses_plain_http_elsewhere_and_bad_answers(world: World) -> None:
    from hashguard.device.oprf_client import HttpEvaluator

    with pytest.raises(oprf.OprfError, match="must be an https:// address"):
        HttpEvaluator("http://example.org", "token")
    with pytest.raises(oprf.OprfError, match="not a URL"):
        HttpEvaluator("http://[::1", "token")
    with pytest.raises(oprf.OprfError, match="the device token"):
        HttpEvaluator("http://127.0.0.1:9", "two\nlines")
    release = open_release(world.release("oprf", "r1"), world.log)
    nested = b"[" * 100_000  # deeper than the JSON parser's recursion
    for status, body in ((200, b"not json"), (200, b'{"evaluated": 5}'), (302, b""),
                         (200, nested), (400, b'{"error": ' + nested[:4000])):  # fmt: skip
        receiver = Loopback(lambda path, headers, sent, s=status, b=body: (s, "text/plain", b))
        try:
            checker = DeviceChecker(release, evaluator=HttpEvaluator(receiver.url, "t"))
            with pytest.raises(DeviceCheckError, match="could not be completed"):
                checker.check(LISTED)
        finally:
            receiver.close()


def test_the_oprf_client_talks_to_this_machine_directly(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy in the environment never sees a request to this machine (nor its token)."""
    from hashguard.device.oprf_client import HttpEvaluator

    def evaluate(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        elements = [base64.b64decode(e) for e in json.loads(body)["elements"]]
        evaluated, proof = oprf.blind_evaluate(world.server_key, elements)
        answer = {"evaluated": [base64.b64encode(e).decode() for e in evaluated],
                  "proof": base64.b64encode(proof).decode()}  # fmt: skip
        return 200, "application/json", json.dumps(answer).encode()

    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    receiver = Loopback(evaluate)
    try:
        release = open_release(world.release("oprf", "r1"), world.log)
        checker = DeviceChecker(release, evaluator=HttpEvaluator(receiver.url, "a-token"))
        assert checker.check(LISTED).blocked
        assert receiver.requests[0][1]["Authorization"] == "Bearer a-token"
    finally:
        receiver.close()


def test_releases_built_at_once_get_distinct_versions(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda n: world.release("offline", f"at-once-{n}"), range(4)))
    versions = sorted(json.loads((out / "manifest.json").read_bytes())["version"] for out in outs)
    assert versions == [1, 2, 3, 4]
    newest = next(out for out in outs if b'"version":4' in (out / "manifest.json").read_bytes())
    assert open_release(newest, world.log).version == 4
