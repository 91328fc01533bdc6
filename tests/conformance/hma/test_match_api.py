"""HMA's ``OpenMediaMatch/tests/test_match_api.py`` against a real hashguard server
(``conftest.py``): the same lookups with an admin key, the same assertions.

HMA's fixtures fill its storage directly; the port does what they do through HMA's own routes:
the sample exchange is created with ``POST /c/exchanges`` and fetched by the server's scheduled
sync (HMA's fixture runs the fetcher by hand), banks and their content are made with
``POST /c/banks`` and ``POST /c/bank/{name}/signal``. HMA runs its indexer by hand after that;
hashguard's index takes each change as it is made.
"""

from typing import Any

import pytest

from support.hma_port import EXAMPLES, PDQ_EXAMPLES, HmaClient, create_bank
from support.waiting import eventually

FETCH_SECONDS = 60


def _fetched(client: HmaClient, exchange: str) -> dict[str, Any] | None:
    answer = client.get(f"/c/exchange/{exchange}/status")
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status if status.get("last_fetch_complete_ts") else None


@pytest.fixture
def client_with_sample_data(client: HmaClient) -> HmaClient:
    """HMA's ``client_with_sample_data``: an exchange SAMPLE of the static sample API, fetched
    into its bank."""
    created = client.post("/c/exchanges", json={"api": "sample", "bank": "SAMPLE", "api_json": {}})
    assert created.status_code == 201, created.text
    status = eventually(lambda: _fetched(client, "SAMPLE"), FETCH_SECONDS)
    assert status, f"the sample exchange was not fetched within {FETCH_SECONDS} s"
    assert status["last_fetch_succeeded"], status

    # The bank's new entries reach the index within a moment; this suite's servers turn stale
    # after 1 s behind (STALE_SOON), which a busy machine can take: wait for it, as HMA's
    # clients do when they poll /status.
    ready = eventually(lambda: client.get("/status").status_code == 200, 30)
    assert ready, client.get("/status").text
    return client


def _signal_type_configs(client: HmaClient) -> dict[str, dict[str, Any]]:
    """HMA's ``storage.get_signal_type_configs()``, as its route ``/c/signal_type`` shows it."""
    answer = client.get("/c/signal_type")
    assert answer.status_code == 200, answer.text
    return {config["name"]: config for config in answer.json()}


def test_raw_lookups(client_with_sample_data: HmaClient) -> None:
    """HMA test_match_api.py::test_raw_lookups."""
    client = client_with_sample_data

    configs = _signal_type_configs(client)
    assert set(configs) == {"pdq", "video_md5"}
    for sig_name, signal_cfg in configs.items():
        assert signal_cfg["enabled_ratio"] >= 0.0  # HMA's SignalTypeConfig.enabled

        # For each type, just lookup one signal
        sig_str = EXAMPLES[sig_name][0]

        query_str: dict[str, Any] = {"signal": sig_str, "signal_type": sig_name}

        resp = client.get("/m/raw_lookup", params=query_str)
        assert resp.status_code == 200, resp.text
        match_count = len(resp.json()["matches"])
        assert match_count >= 1

        # With distance
        query_str["include_distance"] = True
        resp = client.get("/m/raw_lookup", params=query_str)
        assert resp.status_code == 200
        with_dist_matches = resp.json()["matches"]
        assert len(with_dist_matches) == match_count

        for match in with_dist_matches:
            assert "bank_content_id" in match
            assert "distance" in match


def test_lookups(client_with_sample_data: HmaClient) -> None:
    """HMA test_match_api.py::test_lookups."""
    client = client_with_sample_data

    # sanity check
    configs = _signal_type_configs(client)
    assert set(configs) == {"pdq", "video_md5"}
    for sig_name, signal_cfg in configs.items():
        assert signal_cfg["enabled_ratio"] >= 0.0  # HMA's SignalTypeConfig.enabled

        # For each type, just lookup one signal
        sig_str = EXAMPLES[sig_name][0]

        query_str = {"signal": sig_str, "signal_type": sig_name}

        resp = client.get("/m/lookup", params=query_str)
        assert resp.status_code == 200, resp.text
        resp_json = resp.json()
        assert len(resp_json) == 1
        assert "SAMPLE" in resp_json
        with_dist_matches = resp_json["SAMPLE"]
        assert len(with_dist_matches) > 0

        for match in with_dist_matches:
            assert "bank_content_id" in match
            assert "distance" in match


@pytest.fixture
def client_with_multi_bank_data(client: HmaClient) -> HmaClient:
    """HMA's ``client_with_multi_bank_data``: banks A, B and C, each holding the first PDQ
    example."""
    for bank in ("BANK_A", "BANK_B", "BANK_C"):
        create_bank(client, bank)

    pdq_signal = PDQ_EXAMPLES[0]
    for bank in ("BANK_A", "BANK_B", "BANK_C"):
        added = client.post(f"/c/bank/{bank}/signal", json={"pdq": pdq_signal})
        assert added.status_code == 200, added.text

    # The bank's new entries reach the index within a moment; this suite's servers turn stale
    # after 1 s behind (STALE_SOON), which a busy machine can take: wait for it, as HMA's
    # clients do when they poll /status.
    ready = eventually(lambda: client.get("/status").status_code == 200, 30)
    assert ready, client.get("/status").text
    return client


def test_raw_lookup_with_bank_filter(client_with_multi_bank_data: HmaClient) -> None:
    """HMA test_match_api.py::test_raw_lookup_with_bank_filter."""
    client = client_with_multi_bank_data

    sig_str = PDQ_EXAMPLES[0]
    query_str = {"signal": sig_str, "signal_type": "pdq"}

    # Test without bank filter - should return all banks
    resp = client.get("/m/raw_lookup", params=query_str)
    assert resp.status_code == 200
    all_matches = resp.json()["matches"]
    assert len(all_matches) == 3  # One from each bank

    # Test filtering by single bank
    query_str["banks"] = "BANK_A"
    resp = client.get("/m/raw_lookup", params=query_str)
    assert resp.status_code == 200
    bank_a_matches = resp.json()["matches"]
    assert len(bank_a_matches) == 1

    # Test filtering by multiple banks
    query_str["banks"] = "BANK_A,BANK_B"
    resp = client.get("/m/raw_lookup", params=query_str)
    assert resp.status_code == 200
    multi_bank_matches = resp.json()["matches"]
    assert len(multi_bank_matches) == 2

    # Test filtering by non-existent bank
    query_str["banks"] = "NON_EXISTENT_BANK"
    resp = client.get("/m/raw_lookup", params=query_str)
    assert resp.status_code == 200
    no_matches = resp.json()["matches"]
    assert len(no_matches) == 0


def test_raw_lookup_with_distance_and_bank_filter(
    client_with_multi_bank_data: HmaClient,
) -> None:
    """HMA test_match_api.py::test_raw_lookup_with_distance_and_bank_filter."""
    client = client_with_multi_bank_data

    sig_str = PDQ_EXAMPLES[0]
    query_str: dict[str, Any] = {
        "signal": sig_str,
        "signal_type": "pdq",
        "include_distance": True,
        "banks": "BANK_A,BANK_B",
    }

    resp = client.get("/m/raw_lookup", params=query_str)
    assert resp.status_code == 200
    matches = resp.json()["matches"]
    assert len(matches) == 2

    for match in matches:
        assert "bank_content_id" in match
        assert "distance" in match


def test_lookup_with_bank_filter(client_with_multi_bank_data: HmaClient) -> None:
    """HMA test_match_api.py::test_lookup_with_bank_filter."""
    client = client_with_multi_bank_data

    sig_str = PDQ_EXAMPLES[0]
    query_str = {"signal": sig_str, "signal_type": "pdq"}

    # Test without bank filter - should return all banks
    resp = client.get("/m/lookup", params=query_str)
    assert resp.status_code == 200
    resp_json = resp.json()
    assert len(resp_json) == 3
    assert "BANK_A" in resp_json
    assert "BANK_B" in resp_json
    assert "BANK_C" in resp_json

    # Test filtering by single bank
    query_str["banks"] = "BANK_A"
    resp = client.get("/m/lookup", params=query_str)
    assert resp.status_code == 200
    resp_json = resp.json()
    assert len(resp_json) == 1
    assert "BANK_A" in resp_json
    assert len(resp_json["BANK_A"]) > 0

    # Test filtering by multiple banks
    query_str["banks"] = "BANK_A,BANK_C"
    resp = client.get("/m/lookup", params=query_str)
    assert resp.status_code == 200
    resp_json = resp.json()
    assert len(resp_json) == 2
    assert "BANK_A" in resp_json
    assert "BANK_C" in resp_json
    assert "BANK_B" not in resp_json

    # Test filtering by non-existent bank
    query_str["banks"] = "NON_EXISTENT_BANK"
    resp = client.get("/m/lookup", params=query_str)
    assert resp.status_code == 200
    resp_json = resp.json()
    assert len(resp_json) == 0
