"""Videos matched through a real ``hashguard serve`` (SQLite and PostgreSQL): a listed video's
re-encoding found by its vPDQ, given as a hash or uploaded, and through HMA's routes, which hash,
add, look up and compare vPDQ in HMA's own form. Benign generated videos only."""

import json
from collections.abc import Iterator

import pytest

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.signals.digests import Md5Signal
from hashguard.signals.vpdq import VpdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.media import make_video
from support.server import Server, running

VPDQ = VpdqSignal()
LISTED = make_video(1, seconds=8)
REENCODED = make_video(1, seconds=8, codec="libx264", bitrate=250_000)
OTHER = make_video(2, seconds=8)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A service whose list ``videos`` holds LISTED's vPDQ (in hashguard's text form)."""
    with scratch_database(request.param, tmp_path_factory.mktemp("video")) as url:
        engine = open_engine(url)
        store = ListStore(engine)
        store.create("videos", "Org A", Category.TEST, actor="setup")
        store.apply("videos", [Submission("vpdq", VPDQ.format(VPDQ.hash(LISTED)))], "setup")
        engine.dispose()
        with running(url) as served:
            yield served


def test_a_video_hash_and_an_upload_match_with_their_shares(server: Server) -> None:
    given = server.post("/v1/match/hashes", "matcher", json={
        "hashes": [{"signal": "vpdq", "value": VPDQ.format(VPDQ.hash(REENCODED))}]})  # fmt: skip
    assert given.status_code == 200, given.text
    [[found]] = [item["matches"] for item in given.json()["results"]]
    assert (found["list"], found["signal"]) == ("videos", "vpdq")
    assert found["value"] == VPDQ.canonical_of(VPDQ.hash(LISTED))
    assert min(found["query_percent"], found["listed_percent"]) >= 80

    uploaded = server.post("/v1/match/media", "matcher", params={"content_ref": "clip-7"},
                           files={"file": ("v.mp4", REENCODED, "video/mp4")})  # fmt: skip
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert body["kind"] == "video"
    assert [(m["list"], m["signal"]) for m in body["matches"]] == [("videos", "vpdq")]
    assert body["matches"][0]["query_percent"] == found["query_percent"]

    other = server.post("/v1/match/media", "matcher", content=OTHER)
    assert other.status_code == 200 and other.json()["matches"] == []


def test_hma_routes_hash_add_and_match_videos_by_vpdq(server: Server) -> None:
    hashed = server.post("/h/hash", "matcher", files={"video": ("v", OTHER)})
    assert hashed.status_code == 200, hashed.text
    assert hashed.json() == {
        "video_md5": Md5Signal().hash(OTHER).hex(),
        "vpdq": VPDQ.canonical_of(VPDQ.hash(OTHER)),
    }
    frames = json.loads(hashed.json()["vpdq"])  # HMA's form: "hash,quality,timestamp"
    assert frames and all(len(f.split(",")) == 3 for f in frames)

    assert server.post("/c/banks", "curator", json={"name": "HMA_VIDEOS"}).status_code == 201
    added = server.post("/c/bank/HMA_VIDEOS/content", "curator", files={"video": ("v", OTHER)})
    assert added.status_code == 200, added.text
    assert added.json()["signals"] == hashed.json()

    looked_up = server.post("/m/lookup", "matcher", files={"video": ("v", OTHER)}).json()
    assert looked_up["vpdq"]["HMA_VIDEOS"][0]["distance"] == "100%[100%]"
    assert "videos" not in looked_up["vpdq"]  # LISTED is another video
    asked = {"signal_type": "vpdq", "signal": hashed.json()["vpdq"], "include_distance": "true"}
    raw = server.get("/m/raw_lookup", "matcher", params=asked)
    assert raw.status_code == 200, raw.text
    assert [m["distance"] for m in raw.json()["matches"]] == ["100%[100%]"]

    pair = [hashed.json()["vpdq"], VPDQ.canonical_of(VPDQ.hash(LISTED))]
    compared = server.post("/m/compare", "matcher", json={"vpdq": pair})
    assert compared.status_code == 200, compared.text
    assert compared.json()["vpdq"][0] is False
    same = server.post("/m/compare", "matcher", json={"vpdq": [pair[0], pair[0]]}).json()
    assert same == {"vpdq": [True, {"distance": "100%[100%]"}]}
    assert server.get("/m/index/status", "matcher").json()["vpdq"]["size"] >= 2


def test_a_malformed_vpdq_is_refused_with_what_was_expected(server: Server) -> None:
    answer = server.post("/v1/match/hashes", "matcher", json={
        "hashes": [{"signal": "vpdq", "value": '["not a frame"]'}]})  # fmt: skip
    assert answer.status_code == 400
    assert "hash,quality,timestamp" in answer.json()["error"]["message"]


def test_a_listed_video_is_contested_and_reinstated_through_the_api(server: Server) -> None:
    listed = VPDQ.format(VPDQ.hash(LISTED))  # hashguard's form names the entry too
    asked = {"hashes": [{"signal": "vpdq", "value": listed}]}
    assert server.post("/v1/match/hashes", "matcher", json=asked).json()["matched"] == 1
    for kind, matched in (("contest", 0), ("reinstate", 1)):
        change = {"kind": kind, "signal": "vpdq", "value": listed, "reason": "checked"}
        answer = server.post("/v1/lists/videos/changes", "curator", json=change)
        assert answer.status_code == 200, answer.text
        found = server.post("/v1/match/hashes", "matcher", json=asked).json()
        assert found["matched"] == matched, kind  # at once: the very next request
