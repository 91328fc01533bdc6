"""HMA's ``OpenMediaMatch/tests/test_api_banks.py``, test by test, against a real hashguard server
(``conftest.py``): the same requests with an admin key, the same assertions.

HMA resets its tables before each test, so its content ids start at 1 in each; hashguard never
hands out an id twice, so where HMA's test names id n, the port names ``content_ids(n)``, the
n-th id the server hands out after the reset (``support.hma_port.ContentIds``).

Where HMA fetched an image from github.com, the port fetches the loopback image server's
(no test reaches the internet). HMA builds its index in a background task, which its tests run
by hand (``build_all_indices``); hashguard's index follows each change, so that step has no
counterpart.
"""

from datetime import datetime, timedelta

from support.hma_port import ContentIds, HmaClient, ImageServer, add_hash_to_bank, create_bank


def test_banks_empty_index(client: HmaClient) -> None:
    """HMA test_api_banks.py::test_banks_empty_index."""
    response = client.get("/c/banks")
    assert response.status_code == 200
    assert response.json() == []


def test_banks_create(client: HmaClient) -> None:
    """HMA test_api_banks.py::test_banks_create."""
    # Must not start with number
    post_response = client.post("/c/banks", json={"name": "01_TEST_BANK"})
    assert post_response.status_code == 400

    # Cannot contain lowercase letters
    post_response = client.post("/c/banks", json={"name": "my_test_bank"})
    assert post_response.status_code == 400

    post_response = client.post("/c/banks", json={"name": "MY_TEST_BANK_01"})
    assert post_response.status_code == 201
    assert post_response.json() == {"matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK_01"}

    # Should now be visible on index
    response = client.get("/c/banks")
    assert response.status_code == 200
    assert response.json() == [post_response.json()]


def test_banks_update(client: HmaClient) -> None:
    """HMA test_api_banks.py::test_banks_update."""
    post_response = client.post("/c/banks", json={"name": "MY_TEST_BANK"})
    assert post_response.status_code == 201

    # check name validation
    post_response = client.put("/c/bank/MY_TEST_BANK", json={"name": "1_invalid_name"})
    assert post_response.status_code == 400

    # check update with rename
    post_response = client.put("/c/bank/MY_TEST_BANK", json={"name": "MY_TEST_BANK_RENAMED"})
    assert post_response.status_code == 200, post_response.text
    assert post_response.json()["name"] == "MY_TEST_BANK_RENAMED"

    # check update without rename
    post_response = client.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled": False})
    assert post_response.status_code == 200
    assert post_response.json()["matching_enabled_ratio"] == 0

    # check update without ratio
    post_response = client.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled_ratio": 0.5})
    assert post_response.status_code == 200
    assert post_response.json()["matching_enabled_ratio"] == 0.5

    # Final test to make sure we only have one bank with proper name and disabled
    get_response = client.get("/c/banks")
    assert get_response.status_code == 200
    json = get_response.json()
    assert len(json) == 1
    assert json[0] == {"name": "MY_TEST_BANK_RENAMED", "matching_enabled_ratio": 0.5}


def test_banks_delete(client: HmaClient) -> None:
    """HMA test_api_banks.py::test_banks_delete."""
    post_response = client.post("/c/banks", json={"name": "MY_TEST_BANK"})
    assert post_response.status_code == 201

    # check name validation
    post_response = client.delete("/c/bank/MY_TEST_BANK")
    assert post_response.status_code == 200

    # deleting non existing bank should succeed
    post_response = client.delete("/c/bank/MY_TEST_BANK")
    assert post_response.status_code == 200


def test_bank_get_content(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_get_content."""
    bank_name = "TEST_BANK_GET"
    create_bank(client, bank_name)

    # Add content
    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    assert add_response.json()
    content_id = add_response.json().get("id")

    # Get content by id
    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    assert get_response.json()
    assert get_response.json().get("id") == content_id


def test_bank_get_content_404(client: HmaClient, content_ids: ContentIds) -> None:
    """HMA test_api_banks.py::test_bank_get_content_404."""
    bank_name = "TEST_BANK_GET"
    content_id = content_ids(1)

    # Bank does not exist
    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 404, get_response.text

    create_bank(client, bank_name)

    # Content does not exist
    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 404, get_response.text


def test_banks_add_content(
    client: HmaClient, image_server: ImageServer, content_ids: ContentIds
) -> None:
    """HMA test_api_banks.py::test_banks_add_content."""
    bank_name = "NEW_BANK"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"

    post_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")

    assert post_response.status_code == 200, post_response.text
    assert post_response.json() == {
        "id": content_ids(1),
        "signals": {"pdq": image_server.pdq[image_url]},
    }


def test_bank_update_content(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_update_content."""
    bank_name = "TEST_BANK_UPDATE"
    create_bank(client, bank_name)

    # Add content
    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    assert add_response.json()
    content_id = add_response.json().get("id")

    # Define new disable_until_ts value and update content
    new_disable_ts = int((datetime.now() + timedelta(days=365)).timestamp())
    update_response = client.put(
        f"/c/bank/{bank_name}/content/{content_id}", json={"disable_until_ts": new_disable_ts}
    )
    assert update_response.status_code == 200, update_response.text
    assert update_response.json()
    updated_content = update_response.json()
    assert updated_content.get("disable_until_ts") == new_disable_ts


def test_bank_update_content_400(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_update_content_400."""
    bank_name = "TEST_BANK_UPDATE"
    create_bank(client, bank_name)

    # Add content
    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    assert add_response.json()
    content_id = add_response.json().get("id")

    # Define new disable_until_ts value too far in the future and update content
    new_disable_ts = 9999999999
    update_response = client.put(
        f"/c/bank/{bank_name}/content/{content_id}", json={"disable_until_ts": new_disable_ts}
    )
    assert update_response.status_code == 400, update_response.text


def test_banks_delete_content(
    client: HmaClient, image_server: ImageServer, content_ids: ContentIds
) -> None:
    """HMA test_api_banks.py::test_banks_delete_content."""
    bank_name = "NEW_BANK"
    image_url = f"{image_server.url}/image1.jpg"

    create_bank(client, bank_name)
    add_hash_to_bank(client, image_server, bank_name, image_url, content_ids(1))

    post_response = client.delete(f"/c/bank/{bank_name}/content/{content_ids(1)}")

    assert post_response.status_code == 200
    assert post_response.json() == {"deleted": 1}


def test_banks_add_metadata(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_banks_add_metadata."""
    bank_name = "NEW_BANK"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    post_request = f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo"

    post_response = client.post(post_request, json={"metadata": {"invalid_metadata": 5}})
    assert post_response.status_code == 400, post_response.text

    post_response = client.post(
        post_request, json={"metadata": {"content_id": "1197433091", "json": {"asdf": {}}}}
    )
    assert post_response.status_code == 200, post_response.text


def test_banks_add_hash_index(
    client: HmaClient, image_server: ImageServer, content_ids: ContentIds
) -> None:
    """HMA test_api_banks.py::test_banks_add_hash_index. HMA also asserts that its index is
    not built until its indexer runs; hashguard's index takes each change as it is made, so the
    lookups below are what is left to check."""
    bank_name = "NEW_BANK"
    bank_name_2 = "NEW_BANK_2"
    image_url = f"{image_server.url}/image1.jpg"
    image_url_2 = f"{image_server.url}/image2.jpg"

    # Make two banks and add images to each bank
    create_bank(client, bank_name)
    add_hash_to_bank(client, image_server, bank_name, image_url, content_ids(1))
    create_bank(client, bank_name_2)
    add_hash_to_bank(client, image_server, bank_name, image_url_2, content_ids(2))

    # Test against first image
    post_response = client.get(
        f"/m/raw_lookup?signal_type=pdq&signal={image_server.pdq[image_url]}"
    )
    assert post_response.status_code == 200
    assert post_response.json() == {"matches": [content_ids(1)]}

    # Test against second image
    post_response = client.get(
        f"/m/raw_lookup?signal_type=pdq&signal={image_server.pdq[image_url_2]}"
    )
    assert post_response.status_code == 200
    assert post_response.json() == {"matches": [content_ids(2)]}


def test_bank_get_content_with_signals(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_get_content_with_signals."""
    bank_name = "TEST_BANK_GET_SIGS"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    assert add_response.json()
    content_id = add_response.json().get("id")

    # Get content by id without signals
    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    assert get_response.json()
    assert get_response.json().get("id") == content_id
    # Signals should not be included when include_signals is not specified
    assert "signals" not in get_response.json()

    # Get content by id with signals
    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}?include_signals=true")
    assert get_response.status_code == 200, get_response.text
    assert get_response.json()
    assert get_response.json().get("id") == content_id
    # As in HMA: the signals field may be left out when there are none, never empty.
    if "signals" in get_response.json():
        assert isinstance(get_response.json()["signals"], dict)
        assert len(get_response.json()["signals"]) > 0


def test_bank_get_content_returns_stored_metadata(
    client: HmaClient, image_server: ImageServer
) -> None:
    """HMA test_api_banks.py::test_bank_get_content_returns_stored_metadata (the image from the
    loopback server, not github.com)."""
    bank_name = "TEST_BANK_METADATA"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    metadata = {
        "content_id": "ext-id-123",
        "content_uri": "https://example.com/item/123",
        "json": {"source": "test", "nested": {"key": "value"}},
    }
    add_response = client.post(
        f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo",
        json={"metadata": metadata},
    )
    assert add_response.status_code == 200, add_response.text
    add_data = add_response.json()
    assert add_data is not None
    content_id = add_data["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    get_data = get_response.json()
    assert get_data is not None
    assert "metadata" in get_data
    assert get_data["metadata"]["content_id"] == metadata["content_id"]
    assert get_data["metadata"]["content_uri"] == metadata["content_uri"]
    assert get_data["metadata"]["json"] == metadata["json"]


def test_bank_get_content_include_metadata_false(
    client: HmaClient, image_server: ImageServer
) -> None:
    """HMA test_api_banks.py::test_bank_get_content_include_metadata_false (the image from the
    loopback server, not github.com)."""
    bank_name = "TEST_BANK_NO_METADATA"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(
        f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo",
        json={"metadata": {"content_id": "id1", "content_uri": "https://example.com/1"}},
    )
    assert add_response.status_code == 200, add_response.text
    add_data = add_response.json()
    assert add_data is not None
    content_id = add_data["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}?include_metadata=false")
    assert get_response.status_code == 200, get_response.text
    get_data = get_response.json()
    assert get_data is not None
    assert "metadata" not in get_data


def test_bank_add_content_with_note(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_add_content_with_note."""
    bank_name = "TEST_BANK_NOTE"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(
        f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo",
        json={"note": "Reported by user X"},
    )
    assert add_response.status_code == 200, add_response.text
    content_id = add_response.json()["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    get_data = get_response.json()
    assert get_data.get("note") == "Reported by user X", get_data


def test_bank_add_content_without_note_omitted(
    client: HmaClient, image_server: ImageServer
) -> None:
    """HMA test_api_banks.py::test_bank_add_content_without_note_omitted."""
    bank_name = "TEST_BANK_NO_NOTE"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    content_id = add_response.json()["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    assert "note" not in get_response.json()


def test_bank_update_content_note(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_update_content_note."""
    bank_name = "TEST_BANK_NOTE_UPDATE"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    content_id = add_response.json()["id"]

    # Set note
    update_response = client.put(
        f"/c/bank/{bank_name}/content/{content_id}", json={"note": "Initial note"}
    )
    assert update_response.status_code == 200, update_response.text

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.json()["note"] == "Initial note"

    # Update note
    update_response = client.put(
        f"/c/bank/{bank_name}/content/{content_id}", json={"note": "Updated note"}
    )
    assert update_response.status_code == 200

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.json()["note"] == "Updated note"

    # Clear note
    update_response = client.put(f"/c/bank/{bank_name}/content/{content_id}", json={"note": ""})
    assert update_response.status_code == 200

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert "note" not in get_response.json()


def test_bank_add_note_too_long(client: HmaClient, image_server: ImageServer) -> None:
    """HMA test_api_banks.py::test_bank_add_note_too_long."""
    bank_name = "TEST_BANK_NOTE_LONG"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(
        f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo",
        json={"note": "x" * 256},
    )
    assert add_response.status_code == 400, add_response.text


def test_bank_add_hash_with_note(client: HmaClient) -> None:
    """HMA test_api_banks.py::test_bank_add_hash_with_note."""
    bank_name = "TEST_BANK_HASH_NOTE"
    create_bank(client, bank_name)

    pdq_hash = "0" * 64
    add_response = client.post(
        f"/c/bank/{bank_name}/signal", json={"pdq": pdq_hash, "note": "Hash from campaign ABC"}
    )
    assert add_response.status_code == 200, add_response.text
    content_id = add_response.json()["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    assert get_response.json().get("note") == "Hash from campaign ABC", get_response.json()


def test_bank_get_content_without_metadata_omitted(
    client: HmaClient, image_server: ImageServer
) -> None:
    """HMA test_api_banks.py::test_bank_get_content_without_metadata_omitted (the image from the
    loopback server, not github.com)."""
    bank_name = "TEST_BANK_NO_META"
    create_bank(client, bank_name)

    image_url = f"{image_server.url}/image1.jpg"
    add_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert add_response.status_code == 200, add_response.text
    add_data = add_response.json()
    assert add_data is not None
    content_id = add_data["id"]

    get_response = client.get(f"/c/bank/{bank_name}/content/{content_id}")
    assert get_response.status_code == 200, get_response.text
    get_data = get_response.json()
    assert get_data is not None
    assert "metadata" not in get_data
