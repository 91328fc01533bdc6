"""HMA's ``OpenMediaMatch/tests/test_api.py``, test by test, against a real hashguard server
(``conftest.py``): the same requests with an admin key, the same assertions.

HMA's status tests fake its index cache (monkeypatched) as not loaded, then stale; here the
server's index is really so: a second server starts while its lists cannot be read (it is still
loading them), and the suite's server falls behind while its lists are held (locks on the list
tables). Holding a reader back needs PostgreSQL: SQLite (WAL) never blocks a reader, so those
tests are skipped there. HMA's exchange tests narrow the installed exchange types to the two they
use; hashguard has more installed, so the port checks that those two are among them.
"""

import io

import httpx
from PIL import Image

from support.hma_port import HmaClient, ImageServer, Served, lists_held
from support.server import Server
from support.waiting import eventually

STALE_SECONDS = 60  # the servers are stale after 5 s without following (conftest.STALE_SOON)


def _status(client: HmaClient, path: str) -> tuple[int, str]:
    answer = client.get(path)
    return answer.status_code, answer.text


def test_status_response(client: HmaClient, served: Served, loading: Server) -> None:
    """HMA test_api.py::test_status_response. HMA's step "an old index, configured not to care"
    (``sec_old_before_stale=0``) has no counterpart: hashguard has no setting that turns
    staleness off."""
    response = client.get("/status")
    assert response.status_code == 200
    assert response.text == "I-AM-ALIVE"

    # HMA: a cache that is not ready yet; here a server still loading its lists.
    response = HmaClient(loading).get("/status")
    assert response.status_code == 503
    assert response.text == "INDEX-NOT-LOADED"

    # HMA: a cache older than sec_old_before_stale; here a server held behind its lists.
    with lists_held(served.engine):
        stale = eventually(lambda: _status(client, "/status")[0] == 503, STALE_SECONDS)
        assert stale, f"never stale: {_status(client, '/status')}"
        response = client.get("/status")
        assert response.status_code == 503
        assert response.text == "INDEX-STALE"

    # HMA: the cache checked again just now.
    assert eventually(lambda: _status(client, "/status")[0] == 200, STALE_SECONDS)
    response = client.get("/status")
    assert response.status_code == 200
    assert response.text == "I-AM-ALIVE"


def test_status_live_always_alive(client: HmaClient, served: Served, loading: Server) -> None:
    """HMA test_api.py::test_status_live_always_alive: /status/live never fails because of the
    index (a liveness probe would restart a server that is only loading)."""
    response = client.get("/status/live")
    assert response.status_code == 200
    assert response.text == "I-AM-ALIVE"

    # Index not loaded - /status/live still alive
    response = HmaClient(loading).get("/status/live")
    assert response.status_code == 200
    assert response.text == "I-AM-ALIVE"

    # Index stale - /status/live still alive
    with lists_held(served.engine):
        stale = eventually(lambda: _status(client, "/status")[0] == 503, STALE_SECONDS)
        assert stale, f"never stale: {_status(client, '/status')}"
        response = client.get("/status/live")
        assert response.status_code == 200
        assert response.text == "I-AM-ALIVE"
    assert eventually(lambda: _status(client, "/status")[0] == 200, STALE_SECONDS)


def test_openapi_documentation_available(client: HmaClient) -> None:
    """HMA test_api.py::test_openapi_documentation_available."""
    response = client.get("/openapi/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload is not None
    assert payload.get("info", {}).get("title") == "Open Media Match API"


def test_lookup_success(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api.py::test_lookup_success. HMA checks that no index exists before it runs its
    indexer by hand; the port checks the index status route says so (no bank holds anything)."""
    # ensure index is empty to start with
    status = client.get("/m/index/status?signal_type=pdq")
    assert status.status_code == 200, status.text
    assert status.json()["pdq"]["present"] is False

    # test GET
    image_url = f"{image_server.url}/image1.jpg"
    get_resp = client.get(f"/m/lookup?url={image_url}")
    assert get_resp.status_code == 200, get_resp.text

    # test POST with the image re-encoded (HMA writes it to a temporary file; kept in memory here)
    response = httpx.get(image_url)
    image = Image.open(io.BytesIO(response.content))
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG")
    file_tuple = ("image.jpg", encoded.getvalue(), "image/jpeg")
    resp = client.post("/m/lookup", files={"photo": file_tuple})
    assert resp.status_code == 200, resp.text

    # It's not really a video, but MD5 is simple that we can fake it
    resp = client.post("/m/lookup", files={"video": file_tuple})
    assert resp.status_code == 200, resp.text


def test_lookup_without_role(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api.py::test_lookup_without_role. HMA switches its hasher role off for the
    whole server; a hashguard key without the matcher role is refused the same way."""
    client = client.as_role("curator")

    # test GET
    image_url = f"{image_server.url}/image1.jpg"
    get_resp = client.get(f"/m/lookup?url={image_url}")
    assert get_resp.status_code == 403

    # test POST with a minimal valid JPEG file header
    jpeg = (
        b"\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
    )
    files = {"file": ("image.jpg", jpeg, "image/jpeg")}
    resp = client.post("/m/lookup", files=files)
    assert resp.status_code == 403


def test_exchange_api_set_auth(client: HmaClient) -> None:
    """HMA test_api.py::test_exchange_api_set_auth (HMA narrows the installed types to these
    two; hashguard has them among others)."""
    sample_name = "sample"
    tx_name = "fb_threatexchange"
    resp = client.get("/c/exchanges/apis")
    assert resp.status_code == 200, resp.text
    assert {sample_name, tx_name} <= set(resp.json())

    resp = client.get(f"/c/exchanges/api/{sample_name}")
    assert resp.status_code == 200
    assert resp.json() == {"supports_authentification": False, "has_set_authentification": False}

    resp = client.get(f"/c/exchanges/api/{tx_name}")
    assert resp.status_code == 200
    assert resp.json() == {"supports_authentification": True, "has_set_authentification": False}

    creds = {"api_token": "12345789|000000000000"}  # FBThreatExchangeCredentials, as JSON

    resp = client.post(f"/c/exchanges/api/{tx_name}", json={"credential_json": creds})

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"supports_authentification": True, "has_set_authentification": True}

    resp = client.get(f"/c/exchanges/api/{tx_name}")
    assert resp.status_code == 200
    assert resp.json() == {"supports_authentification": True, "has_set_authentification": True}

    # Unset
    resp = client.post(f"/c/exchanges/api/{tx_name}", json={"credential_json": {}})
    assert resp.status_code == 200
    assert resp.json() == {"supports_authentification": True, "has_set_authentification": False}


def test_exchange_api_schema(client: HmaClient) -> None:
    """HMA test_api.py::test_exchange_api_schema."""
    sample_name = "sample"
    tx_name = "fb_threatexchange"

    # Sample API has no type-specific config fields and no credentials
    resp = client.get(f"/c/exchanges/api/{sample_name}/schema")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data is not None and isinstance(data, dict)
    assert "config_schema" in data
    assert "fields" in data["config_schema"]
    assert data["credentials_schema"] is None

    # FB ThreatExchange has config (e.g. privacy_group) and credentials (api_token)
    resp = client.get(f"/c/exchanges/api/{tx_name}/schema")
    assert resp.status_code == 200
    data = resp.json()
    assert data is not None and isinstance(data, dict)
    assert "config_schema" in data
    config_fields = {f["name"]: f for f in data["config_schema"]["fields"]}
    assert "privacy_group" in config_fields
    assert config_fields["privacy_group"]["type"] == "number"
    assert config_fields["privacy_group"]["required"] is True
    cred_schema = data["credentials_schema"]
    assert cred_schema is not None
    cred_fields = {f["name"]: f for f in cred_schema["fields"]}
    assert "api_token" in cred_fields
    assert cred_fields["api_token"]["type"] == "string"


def test_compare_hashes(client: HmaClient) -> None:
    """HMA test_api.py::test_compare_hashes."""
    specimen1 = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
    specimen2 = "facd8bcb2a49bcebdec1985228d5ae84bcd006c187c598c720c2b087b3fdb318"
    # Happy path
    resp = client.post("/m/compare", json={"pdq": [specimen1, specimen2]})
    assert resp.json() == {"pdq": [True, {"distance": 9}]}

    # Malformed input
    bad_inputs = [
        # Not a dict
        ["banana"],
        # Dict, but values are not lists
        {"pdq": "banana"},
        # List of comparison hashes is empty
        {"pdq": []},
        # Hashes are invalid
        {"pdq": ["banana", "banana"]},
        # Too many hashes (must be exactly 2)
        {"pdq": [specimen1, specimen2, specimen1]},
    ]
    for bad_input in bad_inputs:
        resp = client.post("/m/compare", json=bad_input)
        assert resp.status_code == 400, (bad_input, resp.text)


def test_exchange_delete(client: HmaClient) -> None:
    """HMA test_api.py::test_exchange_delete."""
    delete_response = client.delete("/c/exchange/TEST_EXCHANGE")
    # deleting an exchange that doesn't exist returns 200
    assert delete_response.status_code == 200, delete_response.text

    # create an exchange
    post_response = client.post(
        "/c/exchanges", json={"api": "sample", "bank": "FOO_EXCHANGE", "api_json": {}}
    )
    assert post_response.status_code == 201

    # test a real delete
    delete_response = client.delete("/c/exchange/FOO_EXCHANGE")
    assert delete_response.status_code == 200
    assert delete_response.json()["message"] == "Exchange deleted"


def test_exchange_get_fetch_status(client: HmaClient) -> None:
    """HMA test_api.py::test_exchange_get_fetch_status."""
    # Unknown exchange returns 404
    resp = client.get("/c/exchange/NONEXISTENT_EXCHANGE/status")
    assert resp.status_code == 404

    # Create an exchange and get fetch status
    post_resp = client.post(
        "/c/exchanges", json={"api": "sample", "bank": "BAR_EXCHANGE", "api_json": {}}
    )
    assert post_resp.status_code == 201, post_resp.text

    resp = client.get("/c/exchange/BAR_EXCHANGE/status")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    assert data is not None
    # FetchStatus fields (from storage.interface.FetchStatus)
    assert "checkpoint_ts" in data
    assert "running_fetch_start_ts" in data
    assert "last_fetch_complete_ts" in data
    assert "last_fetch_succeeded" in data
    assert "up_to_date" in data
    assert "fetched_items" in data
