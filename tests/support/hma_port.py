"""What the port of HMA's own API tests (``tests/conformance/hma``) stands on, in the roles of
HMA's ``OpenMediaMatch/tests/utils.py``: HMA's Flask test ``client`` becomes ``HmaClient``, a
real ``hashguard serve`` called over loopback with an API key (HMA has no authentication);
``image_server`` becomes ``ImageServer``, checkerboards served on loopback; ``reset_tables``
becomes ``reset``, which empties the server's banks and exchanges between tests; and
``create_bank`` / ``add_hash_to_bank`` are HMA's helpers with HMA's assertions.
"""

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import Engine, text

from hashguard.signals.pdq import PdqSignal
from hashguard.store.tables import ChangeRow, EntryRow, HashListRow

from support.loopback import Loopback
from support.server import Server

# pytx's example signals (``PdqSignal.get_examples()``, ``VideoMD5Signal.get_examples()``): HMA's
# tests add them to banks, and its sample exchange serves them. Benign: ThreatExchange's test
# photos (a bridge, its variants, misc images) and GitHub's logos; the second MD5 is the empty
# file's.
PDQ_EXAMPLES = [
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0637022a038f67f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a068f67f0b36e26d596621e1d33e6339c4e9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596221e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0e370a22038f67f0b36e2ed596221e1d33e6b39c4a9c9b22",
    "d8f8f0cec0f4a84f8e370a22038f67f0b36a2ed597231e1d72e6b39c4a9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22",
    "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22",
    "d8f8f0cec4f4a84f0637022a078f67f0b36e2ee5b6621e1d33e6239c4e9c9b22",
    "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064",
    "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
    "c186f9619659658c4b6916daf934496985f4259c72c39676ab9edb631c3c349c",
    "62c9789627838f69f23cf98c29e37836d61c87c31c59587c4b49a783f496725c",
]
VIDEO_MD5_EXAMPLES = ["cab08b36195edb1a1231d2d09fa450e0", "d41d8cd98f00b204e9800998ecf8427e"]
# The signal types of HMA's default configuration, and their examples.
EXAMPLES = {"pdq": PDQ_EXAMPLES, "video_md5": VIDEO_MD5_EXAMPLES}

# HMA's image server: two 128x128 checkerboards with cells of 8 and 16 pixels (different PDQs).
CHECKERBOARD_CELLS = {"image1.jpg": 8, "image2.jpg": 16}


def checkerboard(cell: int) -> bytes:
    """A 128x128 black-and-white checkerboard with ``cell``-pixel squares, as JPEG."""
    image = Image.new("L", (128, 128))
    image.putdata([255 if (x // cell + y // cell) % 2 else 0
                   for y in range(128) for x in range(128)])  # fmt: skip
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG")
    return out.getvalue()


class ImageServer:
    """HMA's ``image_server`` fixture: the checkerboards on a loopback HTTP server (served from
    memory), with their PDQ hashes by URL (HMA's ``IMAGE_URL_TO_PDQ``)."""

    def __init__(self) -> None:
        self.images = {f"/{name}": checkerboard(cell) for name, cell in CHECKERBOARD_CELLS.items()}
        self.loopback = Loopback(self._answer)
        self.url = self.loopback.url
        pdq = PdqSignal()
        self.pdq = {f"{self.url}{path}": pdq.hash(image).hex for path, image in self.images.items()}

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        image = self.images.get(path)
        if image is None:
            return 404, "text/plain", b"not found"
        return 200, "image/jpeg", image

    def close(self) -> None:
        self.loopback.close()


class Served:
    """The suite's server and its database (what HMA's fixtures do to its database)."""

    def __init__(self, server: Server, engine: Engine) -> None:
        self.server = server
        self.engine = engine


class HmaClient:
    """HMA's Flask test client, as an HMA client sees hashguard: the same requests to a real
    server, with ``Authorization: Bearer`` and the key of ``role`` (admin: every route)."""

    def __init__(self, server: Server, role: str = "admin") -> None:
        self.server = server
        self.role = role

    def as_role(self, role: str) -> "HmaClient":
        return HmaClient(self.server, role)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self.server.request(method, path, self.role, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> httpx.Response:
        return self.request("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)


def create_bank(client: HmaClient, bank_name: str) -> None:
    """HMA's ``create_bank``: the bank is made, enabled, answered as HMA answers it."""
    post_response = client.post("/c/banks", json={"name": bank_name})
    assert post_response.status_code == 201, post_response.text
    assert post_response.json() == {"matching_enabled_ratio": 1.0, "name": bank_name}


def add_hash_to_bank(
    client: HmaClient, images: ImageServer, bank_name: str, image_url: str, content_id: int = 1
) -> None:
    """HMA's ``add_hash_to_bank``: the image at ``image_url`` becomes content ``content_id``
    with its PDQ hash."""
    post_response = client.post(f"/c/bank/{bank_name}/content?url={image_url}&content_type=photo")
    assert post_response.status_code == 200, post_response.text
    assert post_response.json() == {"id": content_id, "signals": {"pdq": images.pdq[image_url]}}


def reset(client: HmaClient) -> None:
    """What HMA's ``reset_tables`` does before each test, through the server's own routes: no
    exchanges, no exchange credentials, no banks (and so no content). HMA drops and creates its
    tables, which also starts its content ids at 1 again; hashguard never hands out an id twice,
    so the port counts them with ``ContentIds``."""
    exchanges = client.get("/c/exchanges")
    if exchanges.status_code == 200:  # the exchange routes may be missing
        for name in exchanges.json():
            deleted = client.delete(f"/c/exchange/{name}")
            assert deleted.status_code == 200, deleted.text
    apis = client.get("/c/exchanges/apis")
    if apis.status_code == 200:
        for api in apis.json():
            held = client.get(f"/c/exchanges/api/{api}")
            if held.status_code == 200 and held.json().get("has_set_authentification"):
                client.post(f"/c/exchanges/api/{api}", json={"credential_json": {}})
    banks = client.get("/c/banks")
    assert banks.status_code == 200, banks.text
    for bank in banks.json():
        deleted = client.delete(f"/c/bank/{bank['name']}")
        assert deleted.status_code == 200, deleted.text
    left = client.get("/c/banks").json()
    assert left == [], f"the banks of the last test are still there: {left}"


PROBE_BANK = "HMA_PORT_PROBE"


class ContentIds:
    """HMA's content ids as a fresh database hands them out: ``ids(n)`` is the id of the n-th
    content item made after the reset (HMA: n). The server's ids go on from the last one it
    handed out, which a probe learns: one signal added to a scratch bank, removed at once."""

    def __init__(self, client: HmaClient) -> None:
        create_bank(client, PROBE_BANK)
        added = client.post(f"/c/bank/{PROBE_BANK}/signal", json={"pdq": PDQ_EXAMPLES[0]})
        assert added.status_code == 200, added.text
        self.last: int = added.json()["id"]
        removed = client.delete(f"/c/bank/{PROBE_BANK}")
        assert removed.status_code == 200, removed.text

    def __call__(self, n: int) -> int:
        return self.last + n


@contextmanager
def lists_held(engine: Engine) -> Iterator[None]:
    """PostgreSQL: the server's reads of the lists and their change logs wait until the block
    ends (locks as a long migration or a stuck transaction would hold them). Its index is not
    loaded, or falls behind, meanwhile."""
    tables = ", ".join(row.__tablename__ for row in (HashListRow, EntryRow, ChangeRow))
    with engine.connect() as connection, connection.begin():
        connection.execute(text(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
        yield
