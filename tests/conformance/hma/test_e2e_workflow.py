"""HMA's ``OpenMediaMatch/tests/test_e2e_workflow.py`` against a real hashguard server
(``conftest.py``): the same requests with an admin key, the same assertions. HMA's test runs its
indexer by hand (``build_all_indices``); hashguard's index takes each change as it is made, so
that step has no counterpart: the index status is asserted right after the adds. HMA's content
id 16 (its 16th item in a fresh database) is ``content_ids(16)`` (``support.hma_port.ContentIds``).
"""

from support.hma_port import PDQ_EXAMPLES, ContentIds, HmaClient, create_bank


def test_add_hashes_and_find_match(client: HmaClient, content_ids: ContentIds) -> None:
    """HMA test_e2e_workflow.py::test_add_hashes_and_find_match."""
    bank_name = "TEST_BANK"
    create_bank(client, bank_name)

    # PDQ hashes
    hashes = PDQ_EXAMPLES
    for pdq in hashes:
        resp = client.post(f"/c/bank/{bank_name}/signal", json={"pdq": pdq})
        assert resp.status_code == 200, resp.text

    # Sanity check that the index is build
    resp = client.get("/m/index/status?signal_type=pdq")
    assert resp.status_code == 200
    all_build_info = resp.json()
    assert "pdq" in all_build_info
    build_info = all_build_info["pdq"]
    assert build_info["present"] is True
    assert build_info["size"] == len(hashes)

    # Now match
    resp = client.get(f"/m/lookup?signal_type=pdq&signal={hashes[-1]}")
    assert resp.status_code == 200
    assert resp.json() == {"TEST_BANK": [{"bank_content_id": content_ids(16), "distance": "0"}]}

    # Test lookup with no match
    resp = client.get("/m/lookup?signal_type=pdq&signal={}".format("5" * 64))
    assert resp.status_code == 200
    assert resp.json() == {}
