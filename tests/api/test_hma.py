"""HMA compatibility: HMA's routes on a real hashguard server answer as HMA does (the recorded
shapes in support/hma_recorded.py), on SQLite and PostgreSQL, and still need a key."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hashguard.signals.digests import Md5Signal
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal

from support.database import scratch_database
from support.hma_recorded import RECORDED, SAMPLE_PDQ, assert_shape
from support.media import jpeg, make_video
from support.server import Server, running


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hma(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with (
        scratch_database(request.param, tmp_path_factory.mktemp("hma")) as url,
        running(url) as served,
    ):
        yield served


def _filled(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _filled(v, names) for k, v in value.items()}
    return value


def test_hma_routes_answer_as_recorded(hma: Server) -> None:
    names = {"bank": "RECORDED_BANK", "id": ""}
    for method, path, options, status, shape in RECORDED:
        target = _filled(path, names)
        answer = hma.request(method, target, "admin", **_filled(options, names))
        where = f"{method} {target}"
        assert answer.status_code == status, f"{where}: {answer.status_code} {answer.text}"
        assert_shape(answer.json(), shape, where)
        if target.endswith("/signal"):
            names["id"] = str(answer.json()["id"])


def test_uploads_hash_and_match_as_hma_does(hma: Server) -> None:
    photo = jpeg(3, 512, 512)
    created = hma.post("/c/banks", "curator", json={"name": "UPLOADS"})
    assert created.status_code == 201
    hashed = hma.post("/h/hash", "matcher", files={"photo": ("x", photo)})
    assert hashed.status_code == 200
    assert hashed.json() == {"pdq": PdqSignal().hash(photo).hex}

    added = hma.post("/c/bank/UPLOADS/content", "curator", files={"photo": ("x", photo)})
    assert added.status_code == 200, added.text
    assert added.json()["signals"] == hashed.json()
    entry = added.json()["id"]

    found = hma.post("/m/lookup", "matcher", files={"photo": ("x", photo)})
    assert found.json() == {"pdq": {"UPLOADS": [{"bank_content_id": entry, "distance": "0"}]}}
    other = hma.post("/m/lookup", "matcher", files={"photo": ("x", jpeg(9, 512, 512))})
    assert other.json() == {"pdq": {}}

    content = hma.get(f"/c/bank/UPLOADS/content/{entry}", "auditor",
                      params={"include_signals": "true"}).json()  # fmt: skip
    assert content["signals"] == hashed.json()
    assert content["disable_until_ts"] == 1


def test_an_unstable_image_added_from_media_is_held_but_matches_nothing(hma: Server) -> None:
    """A checkerboard (HMA's own test image) hashes with PDQ quality 100, but its hash moves by
    dozens of bits under a 1 % resize: the bank holds it, measured, and it matches nothing,
    neither by its hash nor as an upload (``serve --min-stability 0`` restores HMA's way)."""
    from support.hma_port import checkerboard

    board = checkerboard(8)
    value = PdqSignal().hash(board)
    assert value.quality == 100 and value.stability is not None and value.stability < 50
    assert hma.post("/c/banks", "curator", json={"name": "BOARDS"}).status_code == 201
    added = hma.post("/c/bank/BOARDS/content", "curator", files={"photo": ("b", board)})
    assert added.status_code == 200, added.text
    assert added.json()["signals"] == {"pdq": value.hex}
    listed = hma.get("/v1/lists/BOARDS", "curator").json()
    assert listed["unstable"] == 1
    looked_up = hma.get("/m/raw_lookup", "matcher", params=_lookup("pdq", value.hex))
    assert looked_up.status_code == 200 and looked_up.json() == {"matches": []}
    uploaded = hma.post("/m/lookup", "matcher", files={"photo": ("b", board)})
    assert uploaded.json() == {"pdq": {}}


def test_a_video_is_hashed_as_video_md5_and_vpdq(hma: Server) -> None:
    video = make_video(4, seconds=1.0)
    answer = hma.post("/h/hash", "matcher", files={"video": ("v", video)})
    assert answer.status_code == 200, answer.text
    vpdq = VpdqSignal()
    assert answer.json() == {
        "video_md5": Md5Signal().hash(video).hex(),
        "vpdq": vpdq.canonical_of(vpdq.hash(video)),
    }
    only = hma.post("/h/hash", "matcher", params={"types": "video_md5"},
                    files={"video": ("v", video)})  # fmt: skip
    assert only.json() == {"video_md5": Md5Signal().hash(video).hex()}
    # As in HMA, video_md5 is the MD5 of the bytes, whatever they are.
    notes = b"Minutes of the meeting: nothing to see.\n"
    any_file = hma.post("/h/hash", "matcher", files={"video": ("notes.txt", notes)})
    assert any_file.json() == {"video_md5": Md5Signal().hash(notes).hex()}


def _lookup(signal_type: str, signal: str) -> dict[str, str]:
    return {"signal_type": signal_type, "signal": signal}


@pytest.mark.parametrize(
    ("method", "path", "options", "message"),
    [
        ("POST", "/h/hash", {"files": {"file": ("x", b"1")}}, "no such content_type: 'file'"),
        ("POST", "/h/hash", {"files": {"photo": ("a", b"1"), "video": ("b", b"")}}, "Only one"),
        ("POST", "/h/hash", {"content": b""}, "Missing multipart/form-data file"),
        ("POST", "/h/hash", {"files": {"photo": ("x", b"notes")}}, "not a supported image"),
        ("GET", "/m/raw_lookup", {"params": _lookup("x", "0")}, "No such SignalType"),
        ("GET", "/m/raw_lookup", {"params": _lookup("pdq", "zz")}, "invalid signal"),
        ("GET", "/m/raw_lookup", {"params": {"signal_type": "pdq"}}, "signal"),
        ("GET", "/h/hash", {"params": {"url": "http://example.org/a.jpg"}}, "unsafe URL"),
        ("POST", "/m/compare", {"json": {"pdq": [SAMPLE_PDQ]}}, "exactly two"),
        ("POST", "/c/bank/NOPE/signal", {"json": {"pdq": SAMPLE_PDQ}}, "bank 'NOPE' not found"),
        ("GET", f"/c/bank/NOPE/content/{10**25}", {}, "content_id"),
        ("POST", "/m/compare", {"content": b"[" * 100_000}, "not JSON"),
        ("POST", "/m/compare", {"content": b'{"\\ud800": ["a", "b"]}'}, "No such SignalType"),
    ],
)  # fmt: skip
def test_hma_errors_are_hma_messages(
    hma: Server, method: str, path: str, options: dict[str, Any], message: str
) -> None:
    answer = hma.request(method, path, "admin", **options)
    assert 400 <= answer.status_code < 500, answer.text
    body = answer.json()
    assert list(body) == ["message"]
    assert message in body["message"]


def test_a_banks_routes_refuse_a_body_nested_deeper_than_the_parser_goes(hma: Server) -> None:
    assert hma.post("/c/banks", "curator", json={"name": "NESTED"}).status_code == 201
    nested = {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}}
    for method, path in (("POST", "/c/bank/NESTED/content"), ("POST", "/c/bank/NESTED/signal"),
                         ("PUT", "/c/bank/NESTED")):  # fmt: skip
        answer = hma.request(method, path, "admin", **nested)
        assert answer.status_code == 400 and list(answer.json()) == ["message"], answer.text


def test_hma_routes_need_a_key_but_status_does_not(hma: Server) -> None:
    refused = hma.get("/m/lookup", params={"signal_type": "pdq", "signal": SAMPLE_PDQ})
    assert refused.status_code == 401
    assert "Bearer" in json.loads(refused.text)["message"]
    assert hma.get("/status").text == "I-AM-ALIVE"
    assert hma.get("/readyz").text == "READY"
    assert hma.get("/livez").text == "OK"


def _flipped(value: str, bits: int) -> str:
    """``value`` (hex) with its first ``bits`` bits flipped: a near match."""
    number = int(value, 16) ^ (((1 << bits) - 1) << (4 * len(value) - bits))
    return f"{number:0{len(value)}x}"


def test_the_fast_lookups_answer_as_the_framework_routes(hma: Server) -> None:
    """HMA's GET /m/lookup and /m/raw_lookup of a hash are answered by api.hot; with a body
    (which those routes ignore) the same request goes to the FastAPI route. Both give the same
    status and answer for good and bad requests alike."""
    listed = [PdqSignal().hash(jpeg(n, 512, 512)).hex for n in (21, 22)]
    for bank, value in zip(("FAST_A", "FAST_B"), listed, strict=True):
        assert hma.post("/c/banks", "curator", json={"name": bank}).status_code == 201
        assert hma.post(f"/c/bank/{bank}/signal", "curator",
                        json={"pdq": value}).status_code == 200  # fmt: skip
    made = hma.post("/v1/keys", "admin", json={"role": "matcher", "lists": ["FAST_A"]})
    hma.tokens["fast-a-matcher"] = made.json()["token"]
    near = _flipped(listed[0], 6)
    cases = [
        ("matcher", {"signal_type": "pdq", "signal": listed[0]}),
        ("matcher", {"signal_type": "pdq", "signal": near, "include_distance": "true"}),
        ("matcher", {"signal_type": "pdq", "signal": near, "include_distance": "1"}),
        ("admin", {"signal_type": "pdq", "signal": listed[1], "banks": "FAST_B,NOPE"}),
        ("matcher", {"signal_type": "pdq", "signal": listed[1], "banks": "NOPE"}),
        ("matcher", {"signal_type": "pdq", "signal": listed[1], "seed": "7",
                     "bypass_coinflip": "false", "content_ref": "upload-1"}),
        ("fast-a-matcher", {"signal_type": "pdq", "signal": listed[1]}),
        ("fast-a-matcher", {"signal_type": "pdq", "signal": listed[0]}),
        ("matcher", {"signal_type": "pdq", "signal": _flipped(listed[0], 60)}),  # no match
        ("matcher", {"signal_type": "pdq", "signal": "zz"}),  # 400: not a hash
        ("matcher", {"signal_type": "pdq", "signal": " "}),
        ("matcher", {"signal_type": "tmk", "signal": listed[0]}),  # 400: no such type
        ("matcher", {"signal_type": "pdq"}),  # 400: no signal
        ("matcher", {"signal": listed[0]}),
        ("matcher", {"signal_type": "pdq", "signal": listed[0], "content_ref": "x" * 501}),
        # each text parameter over its bound (api/fields.py): 400 naming it, on either path
        ("matcher", {"signal_type": "pdq", "signal": listed[1], "banks": "B," * 1500}),
        ("matcher", {"signal_type": "pdq", "signal": listed[1], "seed": "7" * 100}),
        ("matcher", {"signal_type": "pdq", "signal": listed[1] + "0" * 40}),
        ("matcher", {"signal_type": "pdq" * 30, "signal": listed[1]}),
        ("matcher", {"signal_type": "pdq", "signal": listed[0], "include_distance": "maybe"}),
        ("matcher", {"signal_type": "pdq", "signal": listed[0], "bypass_coinflip": "yes"}),
        ("curator", {"signal_type": "pdq", "signal": listed[0]}),  # 403: not a matcher
        (None, {"signal_type": "pdq", "signal": listed[0]}),  # 401: no key
    ]  # fmt: skip
    answered = set()
    for path in ("/m/raw_lookup", "/m/lookup"):
        for role, params in cases:
            fast = hma.get(path, role, params=params)
            slow = hma.get(path, role, params=params, content=b" ")
            assert slow.request.headers["content-length"] == "1"
            where = f"{path} as {role}: {params}"
            assert (fast.status_code, fast.json()) == (slow.status_code, slow.json()), where
            assert fast.headers.get("cache-control") == slow.headers.get("cache-control"), where
            answered.add(fast.status_code)
    assert answered == {200, 400, 401, 403}
    raw = hma.get("/m/raw_lookup", "matcher", params={
        "signal_type": "pdq", "signal": near, "include_distance": "true"}).json()  # fmt: skip
    assert raw == {"matches": [{"bank_content_id": raw["matches"][0]["bank_content_id"],
                                "distance": "6"}]}  # fmt: skip
    scoped = hma.get("/m/lookup", "fast-a-matcher", params={"signal_type": "pdq",
                                                            "signal": listed[1]})  # fmt: skip
    assert scoped.json() == {}  # FAST_B is not the key's
