"""The detection service as a real process on a loopback port, on SQLite and PostgreSQL: every
route against every role, matching and the match log, lists through the API, the audit log,
metrics, limits and malformed requests."""

import hashlib
import ipaddress
import json
import os
import random
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from hashguard.api import ServiceSettings
from hashguard.api.auth import route_roles
from hashguard.api.service import hotline_settings
from hashguard.app import create_app
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review.webhook import load_secret
from hashguard.signals.digests import Md5Signal
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.pdq_kernel import DIHEDRAL
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.match_log import MatchLog

from support.database import scratch_database
from support.invoke import hashguard
from support.media import jpeg
from support.paths import REPOSITORY
from support.server import HASHGUARD, Server, running
from support.waiting import eventually

LISTED = jpeg(1, 512, 512)
OTHER = jpeg(7, 512, 512)
MD5_A = "0cc175b9c0f1b6a831c399e269772661"  # md5("a"): benign
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"  # md5("b")
MD5_MISS = "4a8a08f09d37b73795649038408b5f33"  # md5("c"): on no list
ROLES = [role.value for role in Role]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A served database with lists alpha (md5 a, the PDQ of LISTED) and beta (md5 b), keys
    for every role, and a matcher key limited to alpha (``tokens["alpha-matcher"]``)."""
    directory = tmp_path_factory.mktemp("service")
    with scratch_database(request.param, directory) as url:
        yield from _served(url, directory)


def _served(url: str, releases: Path) -> Iterator[Server]:
    engine = open_engine(url)
    store = ListStore(engine)
    store.create("alpha", "Org A", Category.TEST, ["NL"], actor="setup")
    store.create("beta", "Org B", Category.TEST, ["DE"], actor="setup")
    pdq = PdqSignal().hash(LISTED).hex
    store.apply("alpha", [Submission("md5", MD5_A), Submission("pdq", pdq)], "setup")
    store.apply("beta", [Submission("md5", MD5_B)], "setup")
    _key, scoped = ApiKeyStore(engine).create(Role.MATCHER, ["alpha"], "alpha only")
    engine.dispose()
    generated = hashguard("keys", "generate", "--out", str(releases / "owner.key"))
    assert generated.returncode == 0, generated.stderr
    options = ["--release-key", str(releases / "owner.key"), "--release-log",
               str(releases / "log"), "--release-dir", str(releases / "out")]  # fmt: skip
    with running(url, *options) as served:
        served.tokens["alpha-matcher"] = scoped
        yield served


def _match(
    server: Server, hashes: list[dict[str, str]], role: str = "matcher", **body: object
) -> httpx.Response:
    return server.post("/v1/match/hashes", role, json={"hashes": hashes, **body})


# --- roles ----------------------------------------------------------------------------------

_PUBLIC = {"/status/live", "/status/ready", "/status/serving", "/status", "/livez", "/readyz"}
# A user's complaint: the token of their statement of reasons is the credential (no key).
_TOKEN_ONLY = {"/v1/complaints"}
# A victim's case: opened without a key, then read and withdrawn with its number and PIN.
_VICTIM = {"/v1/victims/cases": "public", "/v1/victims/cases/{case}": "case number and PIN",
           "/v1/victims/cases/{case}/withdrawal": "case number and PIN"}  # fmt: skip
# The hotline's public routes: a report, and its status by the token given for it. This server
# runs no hotline, so they answer 404.
_HOTLINE = {"/v1/hotline/reports": "public", "/v1/hotline/reports/status": "report's status token"}


def _routes() -> list[tuple[str, str, frozenset[Role] | None]]:
    engine = open_engine("sqlite://")
    # Collected by both workers at once: each its own secret file, not one in the working directory.
    with tempfile.TemporaryDirectory() as folder:
        try:
            settings = ServiceSettings(secret_file=Path(folder) / "secret.key")
            return route_roles(create_app(engine, settings))
        finally:
            engine.dispose()


def _concrete(path: str) -> str:
    """A route's path with harmless values: names no list, ids no entry, numbers no case."""
    return (path.replace("{name}", "NO_SUCH_LIST").replace("{content_id}", "999999")
            .replace("{ident}", "0000000000000000").replace("{signal}", "md5")
            .replace("{value}", MD5_MISS).replace("{case_id}", "999999")
            .replace("{item_id}", "999999").replace("{notice_id}", "999999")
            .replace("{referral}", "0" * 32).replace("{api}", "no_such_api")
            .replace("{case}", "HG-00000-00000-00000-00000-000000"))  # fmt: skip


# What a key of an allowed role gets from each route called with harmless values (``_concrete``)
# and an empty JSON body: the route's own answer, never the role check's.
_ALLOWED_ANSWER = {
    "POST /v1/hash": 200,  # the body "{}" is a file too: its digests
    "POST /v1/match/media": 200,
    "POST /v1/match/hashes": 422,
    "GET /v1/lists": 200,
    "POST /v1/lists": 422,
    "GET /v1/lists/{name}": 404,
    "PATCH /v1/lists/{name}": 404,
    "DELETE /v1/lists/{name}": 404,
    "POST /v1/lists/{name}/import": 422,
    "POST /v1/lists/{name}/changes": 422,
    "GET /v1/lists/{name}/changes": 404,
    "GET /v1/lists/{name}/entries/{signal}/{value}": 404,
    "POST /v1/lists/{name}/releases": 404,
    "GET /v1/keys": 200,
    "POST /v1/keys": 422,
    "DELETE /v1/keys/{ident}": 404,
    "GET /v1/audit": 200,
    "GET /v1/audit/verify": 200,
    "GET /v1/matches": 200,
    "GET /v1/services": 200,
    "POST /v1/services": 422,
    "POST /v1/flags": 422,
    "GET /v1/detections": 200,
    "GET /v1/detections/{ident}": 422,
    "POST /v1/detections/{ident}/decision": 422,
    "POST /v1/detections/{ident}/actions": 422,
    "POST /v1/actions/{ident}/reverse": 422,
    "POST /v1/detections/{ident}/close": 422,
    "POST /v1/detections/{ident}/hold": 422,
    "POST /v1/detections/{ident}/reports": 422,
    "GET /v1/complaints": 200,
    "POST /v1/complaints/{ident}/decision": 422,
    "POST /v1/purge": 200,
    "POST /v1/services/{name}/risk-assessments": 422,
    "GET /v1/stats/annual": 422,
    "POST /v1/device/evaluate": 422,
    "POST /v1/lists/{name}/acknowledgements": 422,
    "POST /v1/victims/feedback": 422,
    # no hotline here (--hotline-country unset): every hotline route says so
    "POST /v1/hotline/referrals": 404,
    "GET /v1/hotline/reports": 404,
    "GET /v1/hotline/cases/{case_id}": 404,
    "GET /v1/hotline/queue": 404,
    "GET /v1/hotline/items/{item_id}": 404,
    "POST /v1/hotline/items/{item_id}/assessment": 404,
    "GET /v1/hotline/vocabulary": 404,
    "GET /v1/hotline/figures": 404,
    "POST /v1/hotline/trace": 404,
    # notice and takedown runs with the hotline: off here too
    "GET /v1/takedown/notices": 404,
    "GET /v1/takedown/notices/{notice_id}": 404,
    "POST /v1/takedown/notices/{notice_id}/acknowledge": 404,
    "POST /v1/takedown/notices/{notice_id}/removed": 404,
    "POST /v1/takedown/notices/{notice_id}/dispute": 404,
    "POST /v1/takedown/notices/{notice_id}/origin": 404,
    "POST /v1/takedown/orders/{notice_id}/confirm": 404,
    "POST /v1/takedown/orders/{notice_id}/inability": 404,
    "GET /v1/takedown/figures": 404,
    "POST /v1/takedown/notices/{notice_id}/resend": 404,
    "POST /v1/takedown/notices/{notice_id}/withdraw": 404,
    "POST /v1/takedown/orders": 404,
    "GET /v1/takedown/orders": 404,
    "GET /v1/takedown/orders/{notice_id}": 404,
    "GET /v1/takedown/key": 404,
    "GET /v1/takedown/export": 404,
    "POST /v1/takedown/import": 404,
    "POST /v1/hotline/referrals/{referral}/status": 404,
    "GET /v1/takedown/monitor": 200,  # the figures need no hotline (none here: no rows)
    "GET /v1/takedown/monitor/evidence/{hoster}": 404,  # no takedown key without the hotline
    "GET /h/hash": 400,
    "POST /h/hash": 400,
    "GET /m/raw_lookup": 400,
    "GET /m/lookup": 400,
    "POST /m/lookup": 400,
    "POST /m/compare": 200,
    "GET /m/index/status": 200,
    "GET /c/banks": 200,
    "POST /c/banks": 400,
    "GET /c/bank/{name}": 404,
    "PUT /c/bank/{name}": 404,
    "DELETE /c/bank/{name}": 200,
    "POST /c/bank/{name}/signal": 404,
    "POST /c/bank/{name}/content": 404,
    "GET /c/bank/{name}/content/{content_id}": 404,
    "PUT /c/bank/{name}/content/{content_id}": 404,
    "DELETE /c/bank/{name}/content/{content_id}": 404,
    "GET /c/signal_type": 200,
    "GET /c/content_type": 200,
    "GET /metrics": 200,
    "GET /v1/exchanges": 200,
    "POST /v1/exchanges": 422,
    "GET /v1/exchanges/{name}": 404,
    "PATCH /v1/exchanges/{name}": 404,
    "DELETE /v1/exchanges/{name}": 404,
    "POST /v1/exchanges/{name}/fetch": 404,
    "GET /v1/exchanges/{name}/status": 404,
    "GET /v1/exchanges/{name}/quarantine": 404,
    "PUT /v1/exchanges/{name}/credentials": 422,
    "DELETE /v1/exchanges/{name}/credentials": 404,
    "GET /v1/exchange-apis": 200,
    "PUT /v1/exchange-apis/{api}/credentials": 422,
    "DELETE /v1/exchange-apis/{api}/credentials": 404,
    "GET /c/exchanges/apis": 200,
    "GET /c/exchanges/api/{api}": 400,
    "POST /c/exchanges/api/{api}": 400,
    "GET /c/exchanges/api/{api}/schema": 404,
    "GET /c/exchanges": 200,
    "POST /c/exchanges": 400,
    "GET /c/exchange/{name}": 404,
    "PUT /c/exchange/{name}": 404,
    "DELETE /c/exchange/{name}": 200,
    "GET /c/exchange/{name}/status": 404,
}


def test_every_route_refuses_roles_it_does_not_allow(server: Server) -> None:
    routes = _routes()
    assert {f"{method} {path}" for method, path, roles in routes if roles} == set(_ALLOWED_ANSWER)
    for method, path, roles in routes:
        target = _concrete(path)
        if roles is None and path in _VICTIM:  # no body, no PIN: what is missing is said
            refused = server.request(method, target)
            assert refused.status_code == 422, (method, path, refused.text)
            continue
        if roles is None and path in _HOTLINE:
            refused = server.request(method, target, json={})
            assert refused.status_code == 404, (method, path, refused.text)
            assert "runs no hotline" in refused.text
            continue
        if roles is None and path in _TOKEN_ONLY:
            refused = server.request(method, target, json={"token": "x" * 20, "statement": "?"})
            assert refused.status_code == 404, (method, path, refused.text)  # no such token
            continue
        if roles is None:
            assert path in _PUBLIC, f"{method} {path} is public"
            assert server.request(method, target).status_code in (200, 503)
            continue
        anonymous = server.request(method, target)
        assert anonymous.status_code == 401, f"{method} {path} without a key"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        bad = server.request(method, target, headers={"Authorization": "Bearer hg_nonsense"})
        assert bad.status_code == 401
        for role in ROLES:
            answer = server.request(method, target, role, json={})
            allowed = Role(role) in roles
            if allowed:
                expected = _ALLOWED_ANSWER[f"{method} {path}"]
                assert answer.status_code == expected, (method, path, role, answer.text)
            else:
                assert answer.status_code == 403, (method, path, role, answer.text)
                assert role in answer.text  # the message names the key's role
            assert answer.status_code < 500, (method, path, role, answer.text)


def test_the_readme_table_lists_every_route_and_its_roles() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    for method, path, roles in _routes():
        shown = (
            (
                _VICTIM.get(path)
                or _HOTLINE.get(path)
                or ("token from the statement of reasons" if path in _TOKEN_ONLY else "public")
            )
            if roles is None
            else ", ".join(r.value for r in Role if r in roles and r is not Role.ADMIN)
            or "admin only"
        )
        row = f"| `{method} {path}` | {shown} |"
        assert row in readme, f"README lacks the row: {row}"


def test_health_routes_and_docs_need_no_key(server: Server) -> None:
    live = server.get("/status/live")
    assert (live.status_code, live.text) == (200, "I-AM-ALIVE")
    ready = server.get("/status/ready").json()
    assert ready["ready"] is True
    assert server.get("/openapi.json").status_code == 200
    assert server.get("/docs").status_code == 200


# --- matching and the match log ---------------------------------------------------------------


def _logged(server: Server) -> list[tuple[str, str, int, str]]:
    engine = open_engine(server.database_url)
    try:
        return [
            (m.caller, m.list, m.entry, m.content_ref) for m in MatchLog(engine).recent(limit=1000)
        ]
    finally:
        engine.dispose()


def test_a_match_is_logged_and_a_miss_leaves_no_trace(server: Server) -> None:
    before = _logged(server)
    miss = _match(server, [{"signal": "md5", "value": MD5_MISS, "content_ref": "upload-miss"}])
    assert miss.status_code == 200
    assert miss.json() == {"matched": 0, "results": [{"matches": []}]}
    assert _logged(server) == before  # nothing stored for a non-match

    answer = _match(server, [
        {"signal": "md5", "value": MD5_MISS, "content_ref": "upload-1"},
        {"signal": "md5", "value": MD5_A.upper(), "content_ref": "upload-2"},
    ], lists=["alpha"])  # fmt: skip
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["matches"] == []
    [match] = results[1]["matches"]
    assert (match["list"], match["signal"], match["distance"], match["value"]) == (
        "alpha",
        "md5",
        0,
        MD5_A,
    )
    new = _logged(server)[len(before) :]
    matcher_id = server.tokens["matcher"].split("_")[1]
    assert new == [(matcher_id, "alpha", match["entry"], "upload-2")]
    shown = server.get("/v1/matches", "auditor", params={"after": 0, "limit": 1000}).json()
    assert shown["matches"][-1]["content_ref"] == "upload-2"
    assert "upload-1" not in json.dumps(shown) and "upload-miss" not in json.dumps(shown)


def test_media_is_hashed_and_matched_in_memory(server: Server) -> None:
    hashed = server.post("/v1/hash", "matcher", content=LISTED)
    assert hashed.status_code == 200, hashed.text
    body = hashed.json()
    assert body["kind"] == "image"
    assert body["hashes"]["pdq"]["value"] == PdqSignal().hash(LISTED).hex
    assert body["hashes"]["pdq"]["stability"] == PdqSignal().hash(LISTED).stability >= 50
    assert "stability" not in body["hashes"]["md5"]
    assert body["hashes"]["md5"]["value"] == Md5Signal().format(Md5Signal().hash(LISTED))

    matched = server.post("/v1/match/media", "matcher", params={"content_ref": "photo-9"},
                          files={"file": ("x.jpg", LISTED, "image/jpeg")})  # fmt: skip
    assert matched.status_code == 200, matched.text
    [match] = matched.json()["matches"]
    assert (match["list"], match["signal"], match["distance"]) == ("alpha", "pdq", 0)
    assert _logged(server)[-1][3] == "photo-9"

    other = server.post("/v1/match/media", "matcher", content=OTHER)
    assert other.json()["matches"] == []


def _altered(data: bytes, how: str) -> bytes:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    if how == "rotated":
        image = image.transpose(Image.Transpose.ROTATE_90)
    else:  # padded: a black border of 15 % on every side
        canvas = Image.new("RGB", (round(image.width * 1.3), round(image.height * 1.3)))
        canvas.paste(image, (round(image.width * 0.15), round(image.height * 0.15)))
        image = canvas
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_hash_answer_names_rotations_and_trimmed_variants_apart(server: Server) -> None:
    padded = _altered(LISTED, "padded")
    hashed = server.post("/v1/hash", "matcher", content=padded,
                         params={"dihedral": "true", "trim": "true"})  # fmt: skip
    assert hashed.status_code == 200, hashed.text
    pdq = hashed.json()["hashes"]["pdq"]
    assert set(pdq["dihedral"]) == {name for name, *_ in DIHEDRAL}
    assert pdq["variants"] and all(name.startswith("trim-") for name in pdq["variants"])
    trimmed = [PdqSignal().parse(value) for value in pdq["variants"].values()]
    assert min(t.distance(PdqSignal().hash(LISTED)) for t in trimmed) <= 31


@pytest.mark.parametrize(("how", "variant"), [("rotated", "rotate270"), ("padded", "trim-")])
def test_a_rotated_or_padded_upload_matches_as_the_list_policy_allows(
    server: Server, how: str, variant: str
) -> None:
    plain = {"name": f"plain-{how}", "owner": "Org P", "category": "test",
             "policy": {"variants": []}}  # fmt: skip
    created = server.post("/v1/lists", "curator", json=plain)
    assert created.status_code == 201, created.text
    assert created.json()["policy"]["variants"] == []
    try:
        body = f"{PdqSignal().hash(LISTED).hex}\n".encode()
        params = {"format": "text", "signal": "pdq", "source": "Org P"}
        imported = server.post(f"/v1/lists/{plain['name']}/import", "curator", content=body,
                               params=params)  # fmt: skip
        assert imported.status_code == 200, imported.text
        altered = _altered(LISTED, how)
        matched = server.post("/v1/match/media", "matcher", content=altered)
        assert matched.status_code == 200, matched.text
        # alpha's policy is the default (every variant): found, and the match says how;
        # the plain list holds the same hash but matches the upload only as it is.
        [match] = matched.json()["matches"]
        assert match["list"] == "alpha" and variant in match["variant"]  # enlarged too when small
        assert match["distance"] <= 31
        assert server.post("/v1/match/media", "matcher", content=LISTED).json()["matches"]
    finally:
        assert server.request("DELETE", f"/v1/lists/{plain['name']}", "admin").status_code == 200


def test_media_that_cannot_be_decoded_is_matched_by_its_digests(server: Server) -> None:
    broken = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # a JPEG's start, then nothing decodable
    hashed = server.post("/v1/hash", "matcher", content=broken)
    assert hashed.status_code == 200, hashed.text
    body = hashed.json()
    assert body["kind"] == "image" and set(body["hashes"]) == {"md5", "sha1", "sha256"}
    assert body["failed"]  # why there is no PDQ
    matched = server.post("/v1/match/media", "matcher", content=broken)
    assert matched.status_code == 200 and matched.json()["failed"] == body["failed"]
    assert matched.json()["matches"] == []  # on no list


def test_any_file_is_hashed_and_matched_by_its_digests(server: Server) -> None:
    notes, noise = (
        b"Minutes of the meeting: nothing to see.\n" * 30,
        random.Random(16).randbytes(70_000),
    )
    for content in (notes, noise):
        hashed = server.post("/v1/hash", "matcher", content=content)
        assert hashed.status_code == 200, hashed.text
        digests = {name: {"value": hashlib.new(name, content).hexdigest()}
                   for name in ("md5", "sha1", "sha256")}  # fmt: skip
        assert hashed.json() == {"kind": "other", "hashes": digests}

    matched = server.post("/v1/match/media", "matcher", params={"content_ref": "notes-1"},
                          files={"file": ("a.txt", b"a", "text/plain")})  # fmt: skip
    assert matched.status_code == 200, matched.text
    assert matched.json()["kind"] == "other" and set(matched.json()["hashes"]) == {"md5"}
    [match] = matched.json()["matches"]
    assert (match["list"], match["signal"], match["value"]) == ("alpha", "md5", MD5_A)
    assert _logged(server)[-1][3] == "notes-1"

    # PDQ needs an image: asked for alone, the file is refused with the reason, as before.
    refused = server.post("/v1/hash", "matcher", content=notes, params={"signals": "pdq"})
    assert refused.status_code == 415
    assert refused.json()["error"]["message"] == "not a supported image or video format"


def test_a_key_limited_to_lists_matches_only_those(server: Server) -> None:
    both = [{"signal": "md5", "value": MD5_A}, {"signal": "md5", "value": MD5_B}]
    everything = _match(server, both).json()
    assert [len(r["matches"]) for r in everything["results"]] == [1, 1]
    scoped = _match(server, both, "alpha-matcher").json()
    assert [len(r["matches"]) for r in scoped["results"]] == [1, 0]
    refused = _match(server, both, "alpha-matcher", lists=["beta"])
    assert refused.status_code == 403
    assert "beta" in refused.json()["error"]["message"]
    assert server.get("/v1/lists/beta", "alpha-matcher").status_code == 403


def test_a_key_limited_to_lists_sees_nothing_of_other_lists(server: Server) -> None:
    def scoped(role: str) -> dict[str, str]:
        made = server.post("/v1/keys", "admin", json={"role": role, "lists": ["alpha"]})
        return {"Authorization": f"Bearer {made.json()['token']}"}

    admin, auditor = scoped("admin"), scoped("auditor")
    minted = server.client.post("/v1/keys", headers=admin, json={"role": "admin"})
    assert minted.status_code == 403  # no unscoped key from a scoped one
    assert server.client.get("/v1/keys", headers=admin).status_code == 403
    events = server.client.get("/v1/audit", headers=auditor, params={"limit": 1000}).json()
    assert {e["subject"] for e in events["events"]} == {"alpha"}
    for path in ("/metrics", "/v1/audit/verify", "/m/index/status"):
        assert server.client.get(path, headers=admin).status_code == 403, path
    banks = server.client.get("/c/banks", headers=auditor).json()
    assert [bank["name"] for bank in banks] == ["alpha"]


def test_the_fast_route_and_the_framework_answer_alike(server: Server) -> None:
    """A request with a Content-Length is answered by api.hot; a chunked one (no length) by
    the FastAPI route. Both give the same answers, errors included."""
    bodies = [
        {"hashes": [{"signal": "md5", "value": MD5_A}, {"signal": "md5", "value": MD5_MISS}]},
        {"hashes": [{"signal": "md5", "value": MD5_B}], "lists": ["alpha"]},
        {"hashes": [{"signal": "pdq", "value": "12"}]},
        {"hashes": [{"signal": "md5", "value": MD5_A}], "lists": ["nope"]},
    ]
    for body in bodies:
        payload = json.dumps(body).encode()
        fast = server.post("/v1/match/hashes", "matcher", content=payload, headers=_JSON)
        slow = server.post("/v1/match/hashes", "matcher", content=iter([payload]), headers=_JSON)
        assert "content-length" not in slow.request.headers
        assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())


def test_batches_are_limited_and_each_hash_checked(server: Server) -> None:
    too_many = _match(server, [{"signal": "md5", "value": MD5_MISS}] * 1001)
    assert too_many.status_code == 413
    assert "1000" in too_many.json()["error"]["message"]
    malformed = _match(
        server, [{"signal": "md5", "value": MD5_A}, {"signal": "pdq", "value": "abc"}]
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["message"].startswith("hashes.1: ")
    unknown_list = _match(server, [{"signal": "md5", "value": MD5_A}], lists=["gamma"])
    assert unknown_list.status_code == 404


# --- lists, changes, audit ------------------------------------------------------------------


def test_lists_through_the_api_are_followed_at_once_and_audited(server: Server) -> None:
    new_list = {"name": "gamma", "owner": "Org C", "category": "test", "jurisdictions": ["nl"]}
    created = server.post("/v1/lists", "curator", json=new_list)
    assert created.status_code == 201, created.text
    assert created.json()["jurisdictions"] == ["NL"]
    assert server.post("/v1/lists", "curator", json={
        "name": "gamma", "owner": "x", "category": "test"}).status_code == 409  # fmt: skip
    body = f"{MD5_MISS}\n".encode()
    params = {"format": "text", "signal": "md5", "source": "Org C"}
    imported = server.post("/v1/lists/gamma/import", "curator", content=body, params=params)
    assert imported.status_code == 200, imported.text
    assert imported.json()["added"] == 1
    hit = _match(server, [{"signal": "md5", "value": MD5_MISS}], lists=["gamma"]).json()
    assert hit["matched"] == 1  # the very next request sees the import

    feed = server.get("/v1/lists/gamma/changes", "auditor", params={"since": 0}).json()
    assert [c["kind"] for c in feed["changes"]] == ["add"]
    assert feed["changes"][0]["provenance"]["sources"][0]["organisation"] == "Org C"
    delisted = server.post("/v1/lists/gamma/changes", "curator", json={
        "kind": "delist", "signal": "md5", "value": MD5_MISS, "reason": "wrong"})  # fmt: skip
    assert delisted.status_code == 200, delisted.text
    assert (
        _match(server, [{"signal": "md5", "value": MD5_MISS}], lists=["gamma"]).json()["matched"]
        == 0
    )
    again = server.get("/v1/lists/gamma/changes", "auditor", params={"since": 1}).json()
    assert [(c["version"], c["kind"], c["tombstone"]) for c in again["changes"]] == [
        (2, "delist", True)
    ]

    patched = server.request("PATCH", "/v1/lists/gamma", "curator",
                             json={"policy": {"thresholds": {"pdq": 10}}})  # fmt: skip
    assert patched.status_code == 200
    assert patched.json()["policy"]["thresholds"] == {"pdq": 10.0}
    assert server.request("DELETE", "/v1/lists/gamma", "curator").status_code == 403
    assert server.request("DELETE", "/v1/lists/gamma", "admin").status_code == 200
    assert server.get("/v1/lists/gamma", "auditor").status_code == 404
    remade = server.post("/v1/lists", "curator", json=new_list)
    assert remade.status_code == 201  # the name is free again; the new list is a new list
    server.post("/v1/lists/gamma/import", "curator", content=f"{MD5_B}\n".encode(), params=params)
    found = _match(server, [{"signal": "md5", "value": MD5_B}], lists=["gamma"]).json()
    assert found["results"][0]["matches"][0]["list"] == "gamma"
    assert server.request("DELETE", "/v1/lists/gamma", "admin").status_code == 200

    events = server.get("/v1/audit", "auditor", params={"limit": 1000}).json()["events"]
    actions = [(e["action"], e["subject"]) for e in events if e["subject"] == "gamma"]
    assert actions == [("list.create", "gamma"), ("list.import", "gamma"), ("list.delist", "gamma"),
                       ("list.update", "gamma"), ("list.remove", "gamma"), ("list.create", "gamma"),
                       ("list.import", "gamma"), ("list.remove", "gamma")]  # fmt: skip
    update = next(e for e in events if e["action"] == "list.update")
    assert json.loads(update["details"])["before"]["policy"]["thresholds"] == {}
    assert server.get("/v1/audit/verify", "auditor").json()["ok"] is True


def test_an_entry_reinstated_through_the_api_matches_at_once_and_is_audited(
    server: Server,
) -> None:
    values = [hashlib.md5(f"reinstate-{n}".encode()).hexdigest() for n in range(3)]
    created = server.post("/v1/lists", "curator",
                          json={"name": "delta", "owner": "Org D", "category": "test"})  # fmt: skip
    assert created.status_code == 201, created.text
    body = "".join(f"{value}\n" for value in values).encode()
    params = {"format": "text", "signal": "md5", "source": "Org D"}
    assert server.post("/v1/lists/delta/import", "curator", content=body,
                       params=params).status_code == 200  # fmt: skip

    def change(kind: str, value: str, role: str = "curator", reason: str = "r") -> httpx.Response:
        return server.post("/v1/lists/delta/changes", role,
                           json={"kind": kind, "signal": "md5", "value": value,
                                 "reason": reason})  # fmt: skip

    def matched(value: str) -> int:
        hashes = [{"signal": "md5", "value": value}]
        answer: int = _match(server, hashes, lists=["delta"]).json()["matched"]
        return answer

    for removal, value in (("contest", values[0]), ("delist", values[1])):
        assert change(removal, value).status_code == 200
        assert matched(value) == 0
        reinstated = change("reinstate", value, reason="reassessed by the owner")
        assert reinstated.status_code == 200, reinstated.text
        shown = reinstated.json()
        assert (shown["kind"], shown["tombstone"], shown["value"]) == ("reinstate", False, value)
        assert shown["reason"] == "reassessed by the owner"
        assert shown["actor"].startswith("key:")
        assert matched(value) == 1  # the very next request matches it again

    refused = change("reinstate", values[0])
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"list delta: md5 entry {values[0]} is active: only a contested or delisted entry can "
        "be reinstated"
    )
    assert change("delete", values[2]).status_code == 200
    deleted = change("reinstate", values[2])
    assert deleted.status_code == 409
    assert "is deleted (withdrawn), not contested or delisted" in deleted.json()["error"]["message"]
    assert change("contest", values[0]).status_code == 200
    reasonless = change("reinstate", values[0], reason=" ")
    assert reasonless.status_code == 400
    assert "a reinstatement needs a reason" in reasonless.json()["error"]["message"]
    assert change("reinstate", values[0], role="reviewer").status_code == 403
    assert matched(values[0]) == 0

    feed = server.get("/v1/lists/delta/changes", "auditor", params={"since": 3}).json()
    assert [c["kind"] for c in feed["changes"]] == [
        "contest", "reinstate", "delist", "reinstate", "delete", "contest",
    ]  # fmt: skip
    events = server.get("/v1/audit", "auditor", params={"limit": 1000}).json()["events"]
    reinstated_events = [
        json.loads(e["details"])
        for e in events
        if e["subject"] == "delta" and e["action"] == "list.reinstate"
    ]
    assert reinstated_events == [
        {"signal": "md5", "value": values[0], "reason": "reassessed by the owner", "version": 5},
        {"signal": "md5", "value": values[1], "reason": "reassessed by the owner", "version": 7},
    ]
    assert server.request("DELETE", "/v1/lists/delta", "admin").status_code == 200


def test_a_list_an_exchange_fills_is_refused_removal_naming_it(server: Server) -> None:
    engine = open_engine(server.database_url)
    exchanges = Exchanges(engine, ListStore(engine), Sealer(load_secret(server.secret_file)))
    exchanges.add("SAMPLE", "sample", enabled=False, actor="setup")
    said = "list SAMPLE is filled by exchange SAMPLE: remove the exchange first"
    try:
        refused = server.request("DELETE", "/v1/lists/SAMPLE", "admin")
        assert refused.status_code == 409
        assert refused.json() == {"error": {"status": 409, "code": "conflict", "message": said}}
        hma = server.request("DELETE", "/c/bank/SAMPLE", "admin")
        assert (hma.status_code, hma.json()) == (409, {"message": said})
        assert server.get("/v1/lists/SAMPLE", "auditor").status_code == 200
    finally:
        exchanges.remove("SAMPLE", actor="setup")
        engine.dispose()
    assert server.request("DELETE", "/v1/lists/SAMPLE", "admin").status_code == 200


def test_a_key_revoked_by_the_cli_fails_the_very_next_request(server: Server) -> None:
    """``hashguard keys revoke`` is another process: the running server learns of it before
    its next request (SQLite's data version, PostgreSQL's notification), not 2 s later."""
    match = {"hashes": [{"signal": "md5", "value": "0" * 32}]}
    for role, path, body in (("reviewer", "/v1/matches", None),
                             ("matcher", "/v1/match/hashes", match)):  # fmt: skip
        created = server.post("/v1/keys", "admin", json={"role": role, "name": "cli"}).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        method = "GET" if body is None else "POST"
        for _ in range(2):  # the key is cached now
            used = server.client.request(method, path, headers=headers, json=body)
            assert used.status_code == 200, used.text
        # The CLI in this process (in well under the cache's 2 s), the server in its own.
        revoked = hashguard("keys", "revoke", created["id"],
                            env={"HASHGUARD_DATABASE_URL": server.database_url})  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        refused = server.client.request(method, path, headers=headers, json=body)
        assert refused.status_code == 401, refused.text


@pytest.mark.parametrize("wait", ["60", "0"])
def test_a_revocation_by_the_cli_waits_for_a_running_server_that_is_slow_to_take_it(
    server: Server, wait: str
) -> None:
    """PostgreSQL: ``hashguard keys revoke`` returns once the running server has taken the
    revocation, however late (here the server is stopped meanwhile), so the next request is
    refused; with a wait too short for it, the command says which server did not confirm, and
    the server holds the revocation within its key cache's time bound."""
    if not server.database_url.startswith("postgresql"):
        pytest.skip("on SQLite a server reads revocations on its next request: nothing to wait for")
    created = server.post("/v1/keys", "admin", json={"role": "reviewer", "name": "cli"}).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert server.client.get("/v1/matches", headers=headers).status_code == 200  # cached
    engine = open_engine(server.database_url)
    server.process.send_signal(signal.SIGSTOP)
    try:
        command = [HASHGUARD, "keys", "revoke", created["id"], "--wait", wait]
        env = {**os.environ, "HASHGUARD_DATABASE_URL": server.database_url}
        revoking = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
        if wait == "0":  # done while the server is still stopped: it cannot have confirmed
            out, err = revoking.communicate(timeout=120)
        else:
            assert eventually(lambda: ApiKeyStore(engine).authenticate(created["token"]) is None)
            with pytest.raises(subprocess.TimeoutExpired):
                revoking.wait(0.5)  # committed, and waiting for the stopped server
    finally:
        server.process.send_signal(signal.SIGCONT)
        engine.dispose()
    if wait != "0":
        out, err = revoking.communicate(timeout=120)
    assert revoking.returncode == 0 and out == f"revoked key {created['id']}\n", err
    if wait == "0":
        assert "1 running server(s) did not confirm within 0 s (connection " in err, err
        assert eventually(lambda: server.client.get("/v1/matches", headers=headers)
                          .status_code == 401)  # fmt: skip
    else:  # confirmed: the very next request is refused
        assert err == ""
        refused = server.client.get("/v1/matches", headers=headers)
        assert refused.status_code == 401, refused.text


def test_text_over_its_bound_is_refused_naming_the_field(server: Server) -> None:
    body = {"name": "bounded", "owner": "Test", "category": "test", "legal_basis": "x" * 2001}
    refused = server.post("/v1/lists", "curator", json=body)
    assert refused.status_code == 422 and "legal_basis" in refused.json()["error"]["message"]
    path = server.get("/v1/lists/" + "n" * 201, "curator")
    assert path.status_code == 422 and "name" in path.json()["error"]["message"]
    many = server.post("/v1/match/hashes", "matcher",
                       json={"hashes": [{"signal": "md5", "value": "0" * 32}],
                             "lists": ["a"] * 1001})  # fmt: skip
    assert many.status_code == 422 and "lists" in many.json()["error"]["message"]
    hma = server.get("/m/lookup", "matcher", params={"signal_type": "p" * 65, "signal": "0"})
    assert hma.status_code == 400 and "signal_type" in hma.json()["message"]  # as HMA answers


def test_a_query_parameter_given_twice_is_refused_once_the_key_is_checked(server: Server) -> None:
    """Each query parameter takes one value: given twice, it is refused naming it (422; 400 on
    HMA's routes, as HMA answers a malformed one) after the key is checked, on the fast path's
    routes as on the others; a parameter the route does not take is ignored, repeated or not."""
    twice = server.get("/v1/audit?after=0&after=1", "auditor")
    assert twice.status_code == 422 and "'after'" in twice.json()["error"]["message"]
    assert server.get("/v1/audit?after=0&after=1", "matcher").status_code == 403
    assert server.get("/v1/audit?after=0&x=1&x=2", "auditor").status_code == 200
    both = server.post("/v1/hash?signals=md5&signals=sha256", "matcher", content=b"a",
                       headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert both.status_code == 200 and set(both.json()["hashes"]) == {"md5", "sha256"}
    pdq = PdqSignal().hash(LISTED).hex
    lookup = server.get(f"/m/lookup?signal_type=pdq&signal={pdq}&signal={pdq}", "matcher")
    assert lookup.status_code == 400 and "'signal'" in lookup.json()["message"]
    assert server.get(f"/m/lookup?signal_type=pdq&signal={pdq}", "matcher").status_code == 200


def test_keys_through_the_api_are_audited_and_revoked_at_once(server: Server) -> None:
    created = server.post("/v1/keys", "admin", json={"role": "reviewer", "name": "desk"})
    assert created.status_code == 201
    token = created.json()["token"]
    ident = created.json()["id"]
    assert token not in json.dumps(server.get("/v1/keys", "admin").json())
    headers = {"Authorization": f"Bearer {token}"}
    assert server.client.get("/v1/matches", headers=headers).status_code == 200
    assert server.request("DELETE", f"/v1/keys/{ident}", "admin").status_code == 200
    assert server.client.get("/v1/matches", headers=headers).status_code == 401
    events = server.get("/v1/audit", "auditor", params={"limit": 1000}).json()["events"]
    assert [e["action"] for e in events if e["subject"] == ident] == ["key.create", "key.revoke"]
    assert (
        server.post("/v1/keys", "admin", json={"role": "matcher", "lists": ["nope"]}).status_code
        == 400
    )


def test_an_edited_audit_event_is_detected(server: Server) -> None:
    assert server.get("/v1/audit/verify", "auditor").json()["ok"] is True
    engine = open_engine(server.database_url)
    select_actor = text("SELECT actor FROM audit_events WHERE seq = 2")
    set_actor = text("UPDATE audit_events SET actor = :actor WHERE seq = 2")
    try:
        with engine.begin() as connection:
            original = connection.execute(select_actor).scalar_one()
            connection.execute(set_actor, {"actor": "someone else"})
        answer = server.get("/v1/audit/verify", "auditor").json()
        assert answer["ok"] is False
        assert "event 2" in answer["problem"] and "edited" in answer["problem"]
        verify = hashguard("audit", "verify", "--database-url", server.database_url)
        assert verify.returncode != 0 and "event 2" in verify.stderr
    finally:  # put it back for the other tests on this server
        with engine.begin() as connection:
            connection.execute(set_actor, {"actor": original})
        engine.dispose()
    assert server.get("/v1/audit/verify", "auditor").json()["ok"] is True


def test_a_release_through_the_api_verifies(server: Server, tmp_path: Path) -> None:
    answer = server.post("/v1/lists/alpha/releases", "curator")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["manifest"]["list"] == "alpha"
    log = Path(body["directory"]).parents[2] / "log"
    verify = hashguard("lists", "verify", body["directory"], "--log", str(log))
    assert verify.returncode == 0, verify.stderr + verify.stdout


# --- metrics, limits, malformed requests, logs -------------------------------------------------


def test_metrics_count_requests_matches_and_the_index(server: Server) -> None:
    _match(server, [{"signal": "md5", "value": MD5_B}])
    metrics = server.get("/metrics", "auditor")
    assert metrics.status_code == 200
    text_ = metrics.text
    assert 'hashguard_matches_total{list="beta",signal="md5"}' in text_
    assert 'hashguard_requests_total{method="POST",route="/v1/match/hashes",status="200"}' in text_
    assert 'hashguard_request_seconds_bucket{le="0.005",route="/v1/match/hashes"}' in text_
    assert 'hashguard_index_entries{signal="md5"}' in text_
    assert "hashguard_index_age_seconds" in text_ and "hashguard_ready 1.0" in text_
    assert MD5_B not in text_  # hashes never become label values


_FORM_NO_BOUNDARY = {"content-type": "multipart/form-data"}
_JSON = {"content-type": "application/json"}
_ODD_JSON = {"content-type": "application/jsonfoo"}
_ONE_HASH = b'{"hashes": [{"signal": "md5", "value": "%s"}]}' % MD5_A.encode()
_SURROGATE = b'{"hashes": [{"signal": "md5", "value": "%s", "content_ref": "\\ud800"}]}' % (
    MD5_A.encode()
)


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "says"),
    [
        ("POST", "/v1/match/hashes", {"content": b"{no", "headers": _JSON}, 422, "not valid JSON"),
        ("POST", "/v1/match/hashes", {"content": b"[]"}, 422, "expected a JSON object"),
        ("POST", "/v1/match/hashes", {"json": {"hashes": "x"}}, 422, "hashes"),
        ("POST", "/v1/match/hashes", {"json": {"hashes": [{"signal": "tlsh"}]}}, 422, "signal"),
        ("POST", "/v1/match/hashes", {"json": {"hashes": []}}, 422, "hashes"),
        # Once answered 500 (a hand-written validator beside the model): one validator now.
        ("POST", "/v1/match/hashes", {"json": {"hashes": [{"signal": {}, "value": ""}]}}, 422,
         "hashes.0.signal"),
        ("POST", "/v1/match/hashes", {"json": {"hashes": [{"signal": "md5", "value": ["x"]}]}},
         422, "hashes.0.value"),
        ("POST", "/v1/match/hashes", {"json": {"hashes": [{"signal": "md5", "value": "x"}],
                                               "lists": [{}]}}, 422, "lists.0"),
        ("POST", "/v1/match/media", {"content": b""}, 400, "no media"),
        ("POST", "/v1/hash", {"content": b"not an image at all", "params": {"signals": "pdq"}},
         415, "not a supported image or video format"),
        ("POST", "/v1/hash", {"content": b"\xff\xd8\xff\xe0" + b"\x00" * 64,
                              "params": {"signals": "pdq"}}, 400, ""),
        ("POST", "/v1/hash", {"files": {"a": ("a", b"1"), "b": ("b", b"2")}}, 400, "one file"),
        ("POST", "/v1/hash", {"content": b"--x", "headers": _FORM_NO_BOUNDARY}, 400, "boundary"),
        ("GET", "/v1/lists/alpha/changes", {"params": {"since": -1}}, 422, "since"),
        ("GET", "/v1/lists/alpha/changes", {"params": {"since": 10**30}}, 422, "since"),
        ("GET", "/v1/matches", {"params": {"after": 10**30}}, 422, "after"),
        ("POST", "/v1/match/hashes", {"content": b"[" * 100_000, "headers": _JSON}, 400, "parsing"),
        ("POST", "/v1/match/hashes", {"content": _SURROGATE, "headers": _JSON}, 422, "content_ref"),
        ("POST", "/v1/match/hashes", {"content": _ONE_HASH, "headers": _ODD_JSON}, 422, "object"),
        ("GET", "/no/such/route", {}, 404, "no such route"),
        ("PUT", "/v1/match/hashes", {}, 405, "method"),
    ],
)  # fmt: skip
def test_malformed_requests_get_a_4xx_json_error(
    server: Server, method: str, path: str, options: dict[str, object], status: int, says: str
) -> None:
    answer = server.request(method, path, "admin", **options)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["status"] == status
    assert says.lower() in error["message"].lower()
    assert "Traceback" not in answer.text


def test_a_method_a_path_does_not_take_is_answered_with_those_it_does(server: Server) -> None:
    for method, path, allowed in [
        ("PUT", "/v1/match/hashes", "POST"),
        ("TRACE", "/v1/lists", "GET, POST"),
        ("PUT", "/v1/lists/alpha", "GET, PATCH, DELETE"),
        ("POST", "/docs-static/swagger-ui.css", "GET, HEAD"),  # a mounted app's file
    ]:
        answer = server.request(method, path, "admin")
        assert (answer.status_code, answer.headers["Allow"]) == (405, allowed), answer.text


def test_bodies_over_the_limit_are_refused_before_parsing(server: Server) -> None:
    big = b"x" * (2 * 1024 * 1024 + 1)
    json_type = {"content-type": "application/json"}
    declared = server.post("/v1/match/hashes", "matcher", content=big, headers=json_type)
    assert declared.status_code == 413
    assert "larger than" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for _ in range(40):
            yield b" " * 65536

    streamed = server.post("/v1/match/hashes", "matcher", content=chunks(), headers=json_type)
    assert streamed.status_code == 413


def test_secrets_never_reach_the_log(server: Server) -> None:
    _match(server, [{"signal": "md5", "value": MD5_A}])
    assert server.wait_for_log('"POST /v1/match/hashes HTTP/1.1" 200')  # the access log is on
    logged = "".join(server.log)
    for token in server.tokens.values():
        assert token not in logged
        assert token.split("_", 2)[2] not in logged  # the secret (it may hold "_" too)


def test_the_hotline_reaches_only_the_networks_named_for_it_not_the_fetchers() -> None:
    # Anyone may report a URL: the networks HMA's url= may reach are not opened to them.
    loopback = ipaddress.ip_network("127.0.0.0/8")
    shared = ServiceSettings(hotline_country="NL", fetch_networks=(loopback,))
    assert hotline_settings(shared).networks == ()
    own = ServiceSettings(hotline_country="NL", hotline_networks=(loopback,))
    assert hotline_settings(own).networks == (loopback,)
