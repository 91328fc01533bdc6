"""HMA parity on a real hashguard server (SQLite and PostgreSQL): a content item per add, its
metadata and note, PUT content, bank rename, HMA's status, OpenAPI and site map, the remote
media limit, HMA's signal types and distances, as HMA's blueprints behave."""

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.database import scratch_database
from support.hma_recorded import SAMPLE_PDQ
from support.loopback import Loopback
from support.media import jpeg
from support.server import Server, running
from support.waiting import eventually

OTHER_PDQ = "f" * 32 + "0" * 32
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def website() -> Iterator[Loopback]:
    pages = {"/big.bin": b"\0" * (100 * MIB + 1), "/70.bin": b"\1" * (70 * MIB)}
    site = Loopback(lambda path, _h, _b: (200, "application/octet-stream", pages[path]))
    yield site
    site.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hma(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    fetching = ("--fetch-host", "127.0.0.1", "--fetch-network", "127.0.0.0/8")
    with (
        scratch_database(request.param, tmp_path_factory.mktemp("hma")) as url,
        running(url, *fetching) as served,
    ):
        yield served


def _bank(hma: Server, name: str) -> None:
    answer = hma.post("/c/banks", "curator", json={"name": name})
    assert answer.status_code == 201, answer.text


def _add(hma: Server, bank: str, body: dict[str, Any]) -> int:
    answer = hma.post(f"/c/bank/{bank}/signal", "curator", json=body)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["id"])


def _raw(hma: Server, pdq: str, signal_type: str = "pdq") -> list[Any]:
    answer = hma.get("/m/raw_lookup", "matcher", params={"signal_type": signal_type,
                                                         "signal": pdq})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(answer.json()["matches"])


def _own_match(hma: Server, pdq: str) -> int:
    """How many matches hashguard's own route finds (the same lists, no HMA mapping)."""
    found = hma.post(
        "/v1/match/hashes", "matcher", json={"hashes": [{"signal": "pdq", "value": pdq}]}
    )
    assert found.status_code == 200, found.text
    return len(found.json()["results"][0]["matches"])


def test_each_add_is_a_content_item_and_deleting_one_leaves_the_others(hma: Server) -> None:
    _bank(hma, "ITEMS")
    first = _add(hma, "ITEMS", {"pdq": SAMPLE_PDQ})
    second = _add(hma, "ITEMS", {"pdq": SAMPLE_PDQ})  # the same image reported again
    third = _add(hma, "ITEMS", {"pdq": OTHER_PDQ})
    assert len({first, second, third}) == 3
    assert second == first + 1 and third == second + 1  # HMA's serial ids
    assert _raw(hma, SAMPLE_PDQ) == [first, second]
    found = hma.get("/m/lookup", "matcher", params={"signal_type": "pdq", "signal": SAMPLE_PDQ})
    assert found.json() == {"ITEMS": [{"bank_content_id": first, "distance": "0"},
                                      {"bank_content_id": second, "distance": "0"}]}  # fmt: skip

    assert hma.request("DELETE", f"/c/bank/ITEMS/content/{first}", "curator").json() == {
        "deleted": 1
    }
    assert _raw(hma, SAMPLE_PDQ) == [second]  # still held by the other report
    assert _own_match(hma, SAMPLE_PDQ) == 1
    gone = hma.get(f"/c/bank/ITEMS/content/{first}", "auditor")
    assert gone.status_code == 404 and gone.json() == {"message": f"content '{first}' not found"}
    again = hma.request("DELETE", f"/c/bank/ITEMS/content/{first}", "curator")
    assert again.json() == {"deleted": 0}

    assert hma.request("DELETE", f"/c/bank/ITEMS/content/{second}", "curator").json() == {
        "deleted": 1
    }
    assert _raw(hma, SAMPLE_PDQ) == []
    assert _own_match(hma, SAMPLE_PDQ) == 0
    # A new report of it holds it again, under its own id.
    fourth = _add(hma, "ITEMS", {"pdq": SAMPLE_PDQ})
    assert _raw(hma, SAMPLE_PDQ) == [fourth]
    assert hma.request("DELETE", f"/c/bank/ITEMS/content/{fourth}", "curator").status_code == 200
    assert _raw(hma, SAMPLE_PDQ) == []  # the earlier, deleted reports do not come back


def _import(hma: Server, bank: str, pdq: str, source: str = "") -> dict[str, Any]:
    """A plain text import of one value into the bank's list (with ``source``, if given)."""
    query = f"format=text&signal=pdq{f'&source={source}' if source else ''}"
    answer = hma.post(f"/v1/lists/{bank}/import?{query}", "curator", content=pdq.encode() + b"\n")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_value_imported_as_well_as_added_stays_when_the_items_go(hma: Server) -> None:
    _bank(hma, "BOTH")
    after, before = "c3" * 32, "3c" * 32
    item = _add(hma, "BOTH", {"pdq": after})
    assert _import(hma, "BOTH", after)["updated"] == 1  # the import holds it too
    assert _import(hma, "BOTH", after)["unchanged"] == 1  # once
    hma.request("DELETE", f"/c/bank/BOTH/content/{item}", "curator")
    assert _own_match(hma, after) == 1  # the import still lists it

    assert _import(hma, "BOTH", before)["added"] == 1  # the other order, as before
    held = _add(hma, "BOTH", {"pdq": before})
    hma.request("PUT", f"/c/bank/BOTH/content/{held}", "curator", json={"disable_until_ts": 0})
    assert _own_match(hma, before) == 1
    disabled = _add(hma, "BOTH", {"pdq": after})
    hma.request("PUT", f"/c/bank/BOTH/content/{disabled}", "curator",
                json={"disable_until_ts": 0})  # fmt: skip
    assert _own_match(hma, after) == 1


def test_lookups_answer_only_ids_that_get_and_delete_serve(hma: Server) -> None:
    _bank(hma, "KEPT")
    pdq = "e1" * 32
    item = _add(hma, "KEPT", {"pdq": pdq})  # it makes the entry, and shares its id
    assert _import(hma, "KEPT", pdq, source="partner")["updated"] == 1  # a partner holds it too
    disabled = hma.request("PUT", f"/c/bank/KEPT/content/{item}", "curator",
                           json={"disable_until_ts": 0})  # fmt: skip
    assert disabled.status_code == 200
    assert _raw(hma, pdq) == [item]  # still listed by the partner
    shown = hma.get(f"/c/bank/KEPT/content/{item}", "auditor").json()
    assert shown["disable_until_ts"] == 0  # the item, as it stands

    assert hma.request("DELETE", f"/c/bank/KEPT/content/{item}", "curator").json() == {"deleted": 1}
    assert _raw(hma, pdq) == [item]  # the partner's entry, under its id
    entry = hma.get(f"/c/bank/KEPT/content/{item}", "auditor", params={"include_signals": "true"})
    assert entry.status_code == 200, entry.text
    assert entry.json()["disable_until_ts"] == 1 and entry.json()["signals"] == {"pdq": pdq}
    again = hma.request("DELETE", f"/c/bank/KEPT/content/{item}", "curator")
    assert again.json() == {"deleted": 1}  # the entry, by that id
    assert _raw(hma, pdq) == [] and _own_match(hma, pdq) == 0
    assert hma.get(f"/c/bank/KEPT/content/{item}", "auditor").status_code == 404
    assert hma.request("DELETE", f"/c/bank/KEPT/content/{item}", "curator").json() == {"deleted": 0}


def test_metadata_and_notes_are_stored_and_validated_as_hma_does(hma: Server) -> None:
    _bank(hma, "NOTES")
    photo = ("x.jpg", jpeg(5, 256, 256))
    metadata = {"content_id": "ext-123", "content_uri": "https://example.org/item/123",
                "json": {"source": "test", "nested": {"key": "value"}}}  # fmt: skip
    added = hma.post("/c/bank/NOTES/content", "curator", files={"photo": photo},
                     data={"metadata": json.dumps(metadata), "note": "from X"})  # fmt: skip
    assert added.status_code == 200, added.text
    content = hma.get(f"/c/bank/NOTES/content/{added.json()['id']}", "auditor").json()
    assert content["metadata"] == {**metadata, "collab": None}
    assert content["note"] == "from X"
    hidden = hma.get(f"/c/bank/NOTES/content/{added.json()['id']}", "auditor",
                     params={"include_metadata": "false"}).json()  # fmt: skip
    assert "metadata" not in hidden and hidden["note"] == "from X"

    plain = _add(hma, "NOTES", {"pdq": OTHER_PDQ, "note": "Hash from campaign ABC"})
    shown = hma.get(f"/c/bank/NOTES/content/{plain}", "auditor").json()
    assert shown["note"] == "Hash from campaign ABC" and "metadata" not in shown
    bare = _add(hma, "NOTES", {"pdq": SAMPLE_PDQ})
    assert set(hma.get(f"/c/bank/NOTES/content/{bare}", "auditor").json()) == {
        "id", "disable_until_ts", "original_media_uri", "bank"
    }  # fmt: skip

    refused = [
        ({"json": {"metadata": {"invalid_metadata": 5}}}, "Invalid metadata: "),
        ({"json": {"metadata": [1]}}, "metadata should be a json object"),
        ({"json": {"note": "x" * 256}}, "note must be at most 255 characters"),
        ({"json": {"note": 5}}, "note should be a string"),
        ({"files": {"photo": photo}, "data": {"metadata": "{"}},
         "metadata form field must be valid JSON"),
    ]  # fmt: skip
    for options, message in refused:
        answer = hma.post("/c/bank/NOTES/content", "curator", **options)
        assert answer.status_code == 400, (options, answer.text)
        assert answer.json()["message"].startswith(message), answer.text
    long = hma.post("/c/bank/NOTES/signal", "curator", json={"pdq": OTHER_PDQ, "note": "x" * 256})
    assert long.status_code == 400


def test_put_content_disables_one_item_and_its_note_changes(hma: Server) -> None:
    _bank(hma, "DISABLE")
    pdq = "a5" * 32
    first = _add(hma, "DISABLE", {"pdq": pdq})
    second = _add(hma, "DISABLE", {"pdq": pdq})
    later = int(time.time()) + 365 * 24 * 3600
    put = hma.request("PUT", f"/c/bank/DISABLE/content/{first}", "curator",
                      json={"disable_until_ts": later})  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json() == {"id": first, "disable_until_ts": later, "collab_metadata": {},
                          "original_media_uri": None, "user_metadata": None, "note": None,
                          "bank": {"name": "DISABLE", "matching_enabled_ratio": 1.0}}  # fmt: skip
    assert _raw(hma, pdq) == [second]  # the other item still holds it
    hma.request("PUT", f"/c/bank/DISABLE/content/{second}", "curator",
                json={"disable_until_ts": 0})  # fmt: skip
    assert _raw(hma, pdq) == [] and _own_match(hma, pdq) == 0  # on hashguard's routes too
    shown = hma.get(f"/c/bank/DISABLE/content/{first}", "auditor").json()
    assert shown["disable_until_ts"] == later
    hma.request("PUT", f"/c/bank/DISABLE/content/{first}", "curator",
                json={"disable_until_ts": 1})  # fmt: skip
    assert _raw(hma, pdq) == [first]

    # Disabled until a moment just ahead: it matches again once that has passed.
    soon = int(time.time()) + 2
    hma.request("PUT", f"/c/bank/DISABLE/content/{first}", "curator",
                json={"disable_until_ts": soon})  # fmt: skip
    assert _raw(hma, pdq) == []
    assert eventually(lambda: _raw(hma, pdq) == [first], timeout=30)

    for value, message in [(-1, "must be a non-negative integer"),
                           (9999999999, "less than 5 years in the future"),
                           ("soon", "Invalid int: 'soon'")]:  # fmt: skip
        refused = hma.request("PUT", f"/c/bank/DISABLE/content/{first}", "curator",
                              json={"disable_until_ts": value})  # fmt: skip
        assert refused.status_code == 400 and message in refused.json()["message"]
    for note, expected in [("Initial note", "Initial note"), ("Updated", "Updated"), ("", None)]:
        hma.request("PUT", f"/c/bank/DISABLE/content/{first}", "curator", json={"note": note})
        shown = hma.get(f"/c/bank/DISABLE/content/{first}", "auditor").json()
        assert shown.get("note") == expected
    missing = hma.request("PUT", "/c/bank/DISABLE/content/999999999", "curator", json={})
    assert missing.status_code == 404


def test_a_bank_is_renamed_and_keeps_its_content(hma: Server) -> None:
    _bank(hma, "BEFORE")
    _bank(hma, "TAKEN")
    pdq = "5a" * 32
    item = _add(hma, "BEFORE", {"pdq": pdq})
    invalid = hma.request("PUT", "/c/bank/BEFORE", "curator", json={"name": "1_invalid_name"})
    assert invalid.status_code == 400
    taken = hma.request("PUT", "/c/bank/BEFORE", "curator", json={"name": "TAKEN"})
    assert (taken.status_code, taken.json()) == (403, {"message": "Bank name already exists"})
    missing = hma.request("PUT", "/c/bank/NO_SUCH", "curator", json={"name": "OTHER"})
    assert (missing.status_code, missing.json()) == (404, {"message": "Bank not found"})

    bad_ratio = hma.request("PUT", "/c/bank/BEFORE", "curator",
                            json={"name": "AFTER", "enabled_ratio": 2})  # fmt: skip
    assert bad_ratio.json() == {"message": "enabled_ratio must be between 0 and 1"}
    assert hma.get("/c/bank/AFTER", "auditor").status_code == 404  # 400, and nothing changed
    taken = hma.request("PUT", "/c/bank/BEFORE", "curator",
                        json={"name": "TAKEN", "enabled_ratio": 0.5})  # fmt: skip
    assert taken.status_code == 403
    assert hma.get("/c/bank/BEFORE", "auditor").json()["matching_enabled_ratio"] == 1.0

    renamed = hma.request("PUT", "/c/bank/BEFORE", "curator", json={"name": "AFTER"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {"name": "AFTER", "matching_enabled_ratio": 1.0}
    both = hma.request("PUT", "/c/bank/AFTER", "curator",
                       json={"name": "LATER", "enabled_ratio": 0.5})  # fmt: skip
    assert both.json() == {"name": "LATER", "matching_enabled_ratio": 0.5}
    assert hma.request("PUT", "/c/bank/LATER", "curator",
                       json={"name": "AFTER", "enabled_ratio": 1}).status_code == 200  # fmt: skip
    assert hma.get("/c/bank/BEFORE", "auditor").status_code == 404
    found = hma.get("/m/lookup", "matcher", params={"signal_type": "pdq", "signal": pdq})
    assert found.json() == {"AFTER": [{"bank_content_id": item, "distance": "0"}]}
    assert hma.get(f"/c/bank/AFTER/content/{item}", "auditor").status_code == 200
    audit = hma.get("/v1/audit", "auditor").json()
    events = audit["events"] if isinstance(audit, dict) else audit
    assert any(e["action"] == "list.rename" and e["subject"] == "AFTER" for e in events)


def test_status_openapi_and_site_map_as_hma_answers_them(hma: Server) -> None:
    live = hma.get("/status/live")
    assert (live.status_code, live.text) == (200, "I-AM-ALIVE")
    document = hma.get("/openapi/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "Open Media Match API"
    paths = document.json()["paths"]
    assert "/m/lookup" in paths and "/c/bank/{name}/content/{content_id}" in paths
    assert "put" in paths["/c/bank/{name}/content/{content_id}"]
    assert not any(path.startswith("/v1/") for path in paths)
    assert hma.get("/openapi.json").json()["info"]["title"] != "Open Media Match API"
    routes = hma.get("/site-map").json()
    assert routes == sorted(set(routes))
    assert {"/c/banks", "/status/live", "/m/lookup", "/site-map"} <= set(routes)


def test_signal_types_and_exact_distances_as_hma_writes_them(hma: Server) -> None:
    listed = hma.get("/c/signal_type", "auditor").json()
    assert listed == [{"name": "pdq", "enabled_ratio": 1.0},
                      {"name": "video_md5", "enabled_ratio": 1.0}]  # fmt: skip
    assert set(hma.get("/m/index/status", "matcher").json()) == {"pdq", "video_md5", "vpdq"}
    _bank(hma, "VIDEOS")
    md5 = hashlib.md5(b"a benign video").hexdigest()
    item = _add(hma, "VIDEOS", {"video_md5": md5})
    found = hma.get("/m/lookup", "matcher", params={"signal_type": "video_md5", "signal": md5})
    assert found.json() == {"VIDEOS": [{"bank_content_id": item, "distance": "-"}]}
    raw = hma.get("/m/raw_lookup", "matcher", params={"signal_type": "video_md5", "signal": md5,
                                                      "include_distance": "true"})  # fmt: skip
    assert raw.json() == {"matches": [{"bank_content_id": item, "distance": "-"}]}


def test_remote_media_is_taken_up_to_hma_s_limit(hma: Server, website: Loopback) -> None:
    _bank(hma, "REMOTE")
    between = f"{website.url}/70.bin"  # over hashguard's upload limit, within HMA's
    hashed = hma.get("/h/hash", "matcher", params={"url": between, "content_type": "video",
                                                   "types": "video_md5"})  # fmt: skip
    assert hashed.status_code == 200, hashed.text
    assert hashed.json() == {"video_md5": hashlib.md5(b"\1" * (70 * MIB)).hexdigest()}
    big = f"{website.url}/big.bin"
    for method, path, params in [
        ("GET", "/h/hash", {"url": big, "content_type": "video"}),
        ("GET", "/m/lookup", {"url": big, "content_type": "video"}),
        ("POST", "/c/bank/REMOTE/content", {"url": big, "content_type": "video"}),
    ]:
        role = "curator" if path.startswith("/c/") else "matcher"
        answer = hma.request(method, path, role, params=params)
        assert answer.status_code == 413, (path, answer.text)
        assert answer.json() == {"message": "Content too large"}
