"""The edges of the hotline desk and the report page over plain HTTP against a real ``hashguard
serve`` (``--hotline-country NL --hotline-four-eyes``, loopback reachable) and a real website on
loopback serving benign generated images: one person through the API and the desk is one
analyst; analysts barred from an item are not shown it; an item is shown only when the bytes
served are the ones recorded; forms are URL-encoded only, refused before their body is read;
numbers too large for a record answer the desk's 404 page; labels are bounded; the report
page's emergency number, Dutch refusals, limits and Retry-After."""

import hashlib
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from hashguard.device.messages import emergency_number
from hashguard.hotline.cases import Cases
from hashguard.hotline.model import CaseState
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine

from support.database import scratch_database
from support.desk_session import sign_in as desk_sign_in
from support.hotline_items import BASELINE, NOT_ILLEGAL, events, hashes_of, new_case, queued_item
from support.media import png
from support.server import Server, running
from support.website import Page, Website, website

PICTURE = png(31, 320, 240)
OTHER = png(32, 300, 200)
LABELS = {f"label-{group}": value for group, value in BASELINE.items()}
HUGE = "99999999999999999999"


class Desk:
    """The served hotline, its database, the website its items are on and analysts' keys."""

    def __init__(self, server: Server, engine: Engine, site: Website) -> None:
        self.server = server
        self.engine = engine
        self.site = site
        self.made = 0
        store = ApiKeyStore(engine)
        self.keys = {name: store.create(role, name=name)[1] for name, role in (
            ("ana", Role.ANALYST), ("ben", Role.ANALYST), ("cy", Role.ANALYST),
            ("rita", Role.REVIEWER))}  # fmt: skip

    def item(self, path: str, hashes: dict[str, str]) -> int:
        """An item queued at the website's ``path`` with ``hashes`` recorded."""
        self.made += 1  # a case per item: its own page
        case = new_case(self.engine, f"{self.site.url}/page-{self.made}", CaseState.TRIAGED)
        return queued_item(self.engine, case, self.site.url + path, hashes)

    def signed_in(self, name: str) -> tuple[httpx.Client, str]:
        """A desk session of ``name``'s key, and its CSRF token."""
        client = httpx.Client(base_url=self.server.url, timeout=60)
        answer = desk_sign_in(client, self.keys[name])
        assert answer.status_code == 303, answer.text
        page = client.get("/desk/hotline")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None
        return client, found.group(1)

    def api_assess(self, name: str, item: int, labels: dict[str, str]) -> httpx.Response:
        return self.server.client.post(
            f"/v1/hotline/items/{item}/assessment", json={"labels": labels},
            headers={"Authorization": f"Bearer {self.keys[name]}"},
        )  # fmt: skip


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    directory = tmp_path_factory.mktemp("desk")
    pages = {"/a.png": Page(PICTURE, "image/png"), "/b.png": Page(OTHER, "image/png")}
    with (
        scratch_database("sqlite", directory) as url,
        website(pages) as site,
        running(url, "--hotline-country", "NL", "--hotline-four-eyes", "--hotline-network",
                "127.0.0.0/8", "--hotline-reports-per-hour", "1") as server,
    ):  # fmt: skip
        engine = open_engine(url)
        yield Desk(server, engine, site)
        engine.dispose()


def shown(page: httpx.Response) -> tuple[bool, bool]:
    """Whether an item's page shows the content and the labels form."""
    return 'id="content"' in page.text, 'id="assess"' in page.text


def test_one_person_through_the_api_and_the_desk_is_one_analyst(desk: Desk) -> None:
    item = desk.item("/a.png", hashes_of(PICTURE))
    assert desk.api_assess("ana", item, BASELINE).json()["state"] == "pending"
    ana, csrf = desk.signed_in("ana")
    assert shown(ana.get(f"/desk/hotline/items/{item}")) == (False, False)
    answer = ana.post(f"/desk/hotline/items/{item}/assess", data={"csrf": csrf, **LABELS})
    assert answer.status_code == 409
    assert "ana has assessed it already" in answer.text
    assert ana.get(f"/desk/hotline/items/{item}/content").status_code == 403


def test_analysts_of_a_disagreement_are_not_shown_the_item(desk: Desk) -> None:
    item = desk.item("/b.png", hashes_of(OTHER))
    desk.api_assess("ana", item, BASELINE)
    assert desk.api_assess("ben", item, NOT_ILLEGAL).json()["state"] == "disagreed"
    for name in ("ana", "ben"):
        client, _ = desk.signed_in(name)
        page = client.get(f"/desk/hotline/items/{item}")
        assert shown(page) == (False, False)
        assert "disagreed; two other analysts decide it now" in page.text
        viewed = len(events(desk.engine, "hotline.item.viewed"))
        answer = client.get(f"/desk/hotline/items/{item}/content")
        assert answer.status_code == 403 and "disagreed" in answer.text
        assert len(events(desk.engine, "hotline.item.viewed")) == viewed  # nothing fetched
        assert item not in [i.id for i in Cases(desk.engine).queue(50, name)]  # nor "next"
    cy, _ = desk.signed_in("cy")
    assert shown(cy.get(f"/desk/hotline/items/{item}")) == (True, True)
    assert cy.get(f"/desk/hotline/items/{item}/content").content == OTHER


@pytest.mark.parametrize(
    ("recorded", "status"),
    [
        ({"md5": hashlib.md5(PICTURE).hexdigest()}, 200),
        ({"md5": "0" * 32}, 409),
        ({"sha1": hashlib.sha1(PICTURE).hexdigest(), "md5": "0" * 32}, 409),
        ({"pdq": hashes_of(PICTURE)["pdq"]}, 200),
        ({"pdq": hashes_of(OTHER)["pdq"]}, 409),
        ({"vpdq": "00"}, 409),
    ],
)
def test_an_item_is_shown_only_when_a_recorded_hash_checks_the_bytes(
    desk: Desk, recorded: dict[str, str], status: int
) -> None:
    item = desk.item("/a.png", recorded)  # as a partner's referral may carry them
    cy, _ = desk.signed_in("cy")
    answer = cy.get(f"/desk/hotline/items/{item}/content")
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.content == PICTURE
    else:
        assert "It is not shown" in answer.text


def sent_partly(desk: Desk, path: str, cookie: str = "") -> bytes:
    """The answer to a multipart POST of ``path`` of which only the headers and the first part
    were sent: a refusal made before the body is read comes without the rest."""
    boundary = b"zzBOUNDARYzz"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="urls"\r\n\r\n'
            b"http://example.com/\r\n--" + boundary + b'\r\nContent-Disposition: form-data; '
            b'name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n')  # fmt: skip
    port = int(desk.server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1500000\r\n"
            f"Content-Type: multipart/form-data; boundary=zzBOUNDARYzz\r\n{cookie}\r\n".encode()
            + head + b"x" * 1000
        )  # fmt: skip
        return connection.recv(200)


def test_forms_take_url_encoded_bodies_only_refused_before_reading(desk: Desk) -> None:
    assert sent_partly(desk, "/report").startswith(b"HTTP/1.1 415")
    assert sent_partly(desk, "/desk/login").startswith(b"HTTP/1.1 415")
    ana, _ = desk.signed_in("ana")
    cookie = "".join(f"Cookie: {k}={v}\r\n" for k, v in ana.cookies.items())
    assert sent_partly(desk, "/desk/hotline/items/1/assess", cookie).startswith(b"HTTP/1.1 415")
    files = {"label-iccam": ("a.txt", b"baseline")}
    assert ana.post("/desk/hotline/items/1/assess", files=files).status_code == 415
    # signed out: the sign-in page, before any body is read
    answer = httpx.post(desk.server.url + "/desk/hotline/items/1/assess", data={"csrf": "x"})
    assert answer.status_code == 303


def test_numbers_too_large_for_a_record_answer_the_desks_404(desk: Desk) -> None:
    ana, csrf = desk.signed_in("ana")
    for path in (f"/desk/hotline/items/{HUGE}", f"/desk/hotline/cases/{HUGE}",
                 "/desk/hotline/items/-1"):  # fmt: skip
        answer = ana.get(path)
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    assert ana.get(f"/desk/hotline/items/{HUGE}/content").status_code == 404
    answer = ana.post(f"/desk/hotline/items/{HUGE}/assess", data={"csrf": csrf, **LABELS})
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    rita, _ = desk.signed_in("rita")
    answer = rita.get(f"/desk/detections/{HUGE}")
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    assert rita.get(f"/desk/detections/{HUGE}/content").status_code == 404


def test_a_reviewer_is_forbidden_an_items_content_and_labels_are_bounded(desk: Desk) -> None:
    item = desk.item("/a.png", hashes_of(PICTURE))
    rita, _ = desk.signed_in("rita")
    assert rita.get(f"/desk/hotline/items/{item}/content").status_code == 403
    cy, csrf = desk.signed_in("cy")
    long = "x" * 100_000
    answer = cy.post(f"/desk/hotline/items/{item}/assess",
                     data={"csrf": csrf, **LABELS, "label-iccam": long})  # fmt: skip
    assert answer.status_code == 400 and "at most 64 characters" in answer.text
    assert long[:65] not in answer.text
    assert desk.api_assess("cy", item, {**BASELINE, "iccam": long}).status_code == 422


def test_the_report_page_says_the_emergency_number_and_refuses_in_dutch(desk: Desk) -> None:
    assert "Call the police on 112." in desk.server.get("/report?lang=en").text
    assert (emergency_number("GB"), emergency_number("us"), emergency_number("JP")) == (
        "999", "911", None)  # fmt: skip
    local = desk.server.client
    answer = local.post("/report?lang=nl", data={"urls": "http://10.0.0.1/", "seen_where": "x"})
    assert answer.status_code == 400
    assert "geen openbaar adres" in answer.text and "which is not public" in answer.text
    answer = local.post("/report?lang=nl", data={"urls": "nope", "seen_where": "x"})
    assert "Een van de webadressen klopt niet" in answer.text
    answer = local.post("/report?lang=nl", data={"urls": "", "seen_where": ""})
    assert "Vul de webadressen in" in answer.text
    answer = local.post("/report", data={"urls": "https://example.com/", "seen_where": "s" * 600})
    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
    assert "seen_where has more than 500 characters" in answer.text
    assert 'maxlength="500"' in local.get("/report").text


def test_a_busy_report_page_says_when_to_try_again(desk: Desk) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(base_url=desk.server.url, transport=transport) as client:
        body: dict[str, Any] = {"urls": "https://example.com/busy", "seen_where": "a chat"}
        assert client.post("/report", data=body).status_code == 201
        answer = client.post("/report", data=body)
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert "Please try again in" in answer.text
