"""The signal registry is the one place a signal type is described: a new one, registered as a
plug-in would register it, is listed, imported, matched and served with no other change."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hashguard.api import ServiceSettings
from hashguard.app import create_app
from hashguard.lists.formats import reader
from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import InvalidRecord, Submission, canonical
from hashguard.matching import Matcher, Query
from hashguard.matching.query import parse_given
from hashguard.media.synthetic import encode, scene
from hashguard.signals import registry
from hashguard.signals.batch import hash_values
from hashguard.signals.digests import DigestSignal
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore

from support.in_process import serving


class Sha384Signal(DigestSignal):
    """A throwaway signal type: SHA-384 of the file bytes."""

    name = "sha384"
    algorithm = "sha384"
    size = 48


@pytest.fixture
def sha384() -> Iterator[Sha384Signal]:
    signal = Sha384Signal()
    registry.register(signal)
    try:
        yield signal
    finally:
        registry.unregister(signal.name)
    assert "sha384" not in registry.names() and "sha384" not in registry.listable_names()


@pytest.fixture
def listed(tmp_path: Path, sha384: Sha384Signal) -> Iterator[tuple[ListStore, Path, str]]:
    """A list of one SHA-384 value, imported from a text file; the image it is the hash of."""
    image = tmp_path / "listed.png"
    image.write_bytes(encode(scene(7, 96, 96), "PNG"))
    digest = hashlib.sha384(image.read_bytes()).hexdigest()
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(f"{digest.upper()}\n")  # as a source may spell it: made canonical
    engine = open_engine(f"sqlite:///{tmp_path / 'hashguard.db'}")
    store = ListStore(engine)
    store.create("plug", "Hotline", Category.KNOWN_CSAM, policy=ListPolicy({"sha384": 0}))
    summary = store.apply("plug", reader.read(hashes, "text", "sha384", "Hotline"))
    assert summary.version == 1
    yield store, image, digest
    engine.dispose()


def test_a_registered_signal_is_described_by_its_type_alone(sha384: Sha384Signal) -> None:
    assert "sha384" in registry.names() and "sha384" in registry.listable_names()
    assert registry.listed("sha384") is sha384
    assert [s.name for s in registry.by_hex_digits(96)] == ["sha384"]
    assert sha384.canonical("AB" * 48) == "ab" * 48
    with pytest.raises(ValueError, match="registered already"):
        registry.register(Sha384Signal())


def test_a_registered_signal_is_listed_and_imported(
    listed: tuple[ListStore, Path, str], tmp_path: Path
) -> None:
    store, _image, digest = listed
    (entry,) = list(store.entries("plug")[1])
    assert (entry.signal, entry.value) == ("sha384", digest)
    with pytest.raises(ListError, match=r"sha384=1: .* a distance from 0 to 0"):
        store.update("plug", policy=ListPolicy({"sha384": 1}))
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{digest}\n{digest[:-1]}\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected a sha384 value"):
        store.apply("plug", reader.read(bad, "text", "sha384", "Hotline"))
    assert store.get("plug").version == 1  # nothing applied


def test_a_registered_signal_is_matched(listed: tuple[ListStore, Path, str]) -> None:
    store, image, digest = listed
    matcher = Matcher(store, ["plug"])
    assert matcher.signals() == ("sha384",)
    every = [registry.get(name) for name in registry.names()]
    from_file = Query.of(
        (signal.name, value) for signal, value in hash_values(str(image), every).values
    )
    assert from_file.get("sha384") is not None
    (match,) = matcher.match(from_file)
    assert (match.list, match.signal, match.distance, match.value) == ("plug", "sha384", 0, digest)
    for given in (f"sha384:{digest}", digest):
        query = parse_given(given)
        assert query is not None and len(matcher.match(query)) == 1
    assert matcher.match(Query.of([("sha384", bytes(48))])) == []


def test_a_registered_signal_is_served(listed: tuple[ListStore, Path, str], tmp_path: Path) -> None:
    store, image, digest = listed
    engine = store.engine
    _key, token = ApiKeyStore(engine).create(Role.MATCHER, name="registry test")
    settings = ServiceSettings(secret_file=tmp_path / "secret.key")
    with (
        serving(create_app(engine, settings)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        client.headers["Authorization"] = f"Bearer {token}"
        body = {"hashes": [{"signal": "sha384", "value": digest, "content_ref": "upload-1"},
                           {"signal": "sha384", "value": "00" * 48}]}  # fmt: skip
        answer = client.post("/v1/match/hashes", json=body)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [m["signal"] for m in results[0]["matches"]] == ["sha384"] and results[1] == {
            "matches": []
        }
        media = client.post("/v1/match/media", files={"file": image.read_bytes()})
        assert media.status_code == 200, media.text
        assert media.json()["hashes"]["sha384"] == {"value": digest}
        assert [m["value"] for m in media.json()["matches"]] == [digest]
        refused = client.post(
            "/v1/match/hashes", json={"hashes": [{"signal": "sha385", "value": digest}]}
        )
        assert refused.status_code == 422 and "sha384" in refused.text  # names the known ones


def test_entries_of_a_signal_this_process_does_not_know_leave_the_rest_matching(
    listed: tuple[ListStore, Path, str],
) -> None:
    """A plug-in registered where the list was written but not here (another process): its
    entries cannot match here, and the list's other entries match as ever, loaded or
    refreshed."""
    store, _image, _digest = listed
    registry.unregister("sha384")
    store.apply("plug", [Submission("md5", "ab" * 16)])
    matcher = Matcher(store, ["plug"])
    assert matcher.signals() == ("md5",)
    assert len(matcher.match(Query.of([("md5", bytes.fromhex("ab" * 16))]))) == 1
    registry.register(Sha384Signal())  # back for the next import, in one batch with an md5
    store.apply("plug", [Submission("sha384", "cd" * 48), Submission("md5", "ef" * 16)])
    registry.unregister("sha384")
    assert matcher.refresh() == 2
    assert len(matcher.match(Query.of([("md5", bytes.fromhex("ef" * 16))]))) == 1


def test_signal_names_are_exact_where_lists_store_them(sha384: Sha384Signal) -> None:
    with pytest.raises(InvalidRecord, match="signal 'SHA384' cannot be listed"):
        canonical("SHA384", "ab" * 48)
    assert registry.get(" SHA384 ") is sha384  # a command-line option may be spelled loosely
