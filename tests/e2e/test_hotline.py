"""The hotline end to end, every component real and on loopback, on SQLite and PostgreSQL.

The world: websites of three hosters, each on its own loopback address (Linux routes all of
127.0.0.0/8 to lo), serving benign generated images, HTML pages and a short video, one site
behind a CDN; a DNS server answering the test zone (one name a CNAME into the CDN, one name at
a private address); an ip2asn file mapping those addresses to made-up networks, AS numbers and
countries (NL, DE, and US for the CDN); the registry of hosters; two ``hashguard serve``
processes, the hotlines of NL (home) and DE, NL naming DE as its partner with a partner key
made on DE's database by ``hashguard keys create``; the police and international endpoints as
small servers recording what they receive.

The flow: a public report of two URLs (a page with two images and a video at an NL hoster; the
first image again at a DE hoster) is crawled; the three unknown media are assessed by analysts
(one in the desk in Chromium); the same image at the DE hoster is decided by that assessment.
Traces name hoster, AS and country; routing queues a notice to the NL hoster and reports to the
police (URLs and hashes, never bytes), and refers the DE case to DE, which takes it as a report
from partner:NL and queues it for its analysts. A second report of the same media at other
sites (behind the CDN, and another DE site) is decided without anyone viewing them: the CDN
is found and the case goes to the international endpoint; the DE image is referred again and
DE, having assessed it, decides it without anyone viewing it too. Bad input is refused at
intake (400 naming the URL) or gets a named outcome from the crawl, and never holds up the
other reports. Generated test media only.
"""

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hashguard.hotline.cases import Cases, CaseShown
from hashguard.hotline.model import CaseState, ItemState
from hashguard.store.database import open_engine
from hashguard.store.tables import AuditEventRow, HotlineCaseRow, HotlineReportRow

from support import browser as chromium
from support.database import scratch_database
from support.dns import DnsServer
from support.hotline_items import BASELINE, NOT_ILLEGAL, hashes_of
from support.loopback import Loopback
from support.media import jpeg, make_video, png, png_declaring
from support.server import HASHGUARD, Server, running
from support.waiting import eventually
from support.website import Page, Pages, Website, redirect

DEADLINE = 30.0  # seconds for any one step of the pipeline or the outbox

# --- the media (generated: benign scenes) ------------------------------------------------------

ONE = jpeg(1801)
TWO = png(1802, 480, 360)
CLIP = make_video(1803, seconds=2.0, size=(160, 120))
CORRUPT = ONE[:600] + bytes(2000)  # a JPEG's header, then nothing it can decode
BOMB = png_declaring(60_000, 60_000)  # 3.6 billion pixels declared in a few bytes

# --- the internet: names, addresses, networks, hosters -----------------------------------------

GALLERY, BROKEN = "www.gallery-nl.test", "www.broken-nl.test"  # at the NL hoster
PICS, BOARD = "img.pics-de.test", "www.board-de.test"  # at the DE hoster
SHOP = "www.mirror-shop.test"  # behind the CDN
INTRANET = "intranet.gallery-nl.test"  # a name at a private address
ADDRESSES = {GALLERY: "127.0.10.1", BROKEN: "127.0.10.2", PICS: "127.0.20.1",
             BOARD: "127.0.20.2", SHOP: "127.0.30.1"}  # fmt: skip
ZONE = {
    GALLERY: [f"A {ADDRESSES[GALLERY]}"],
    BROKEN: [f"A {ADDRESSES[BROKEN]}"],
    PICS: [f"A {ADDRESSES[PICS]}"],
    BOARD: [f"A {ADDRESSES[BOARD]}"],
    SHOP: ["CNAME shop.edge.cdn-example.test"],
    "shop.edge.cdn-example.test": [f"A {ADDRESSES[SHOP]}"],
    INTRANET: ["A 10.20.30.40"],
}
IP2ASN = """\
# date: 2026-11-30
127.0.10.0\t127.0.10.255\t64510\tNL\tEXAMPLE-NL-HOSTING
127.0.20.0\t127.0.20.255\t64520\tDE\tEXAMPLE-DE-HOSTING
127.0.30.0\t127.0.30.255\t64530\tUS\tEXAMPLE-EDGE-CDN
"""
NL_HOSTER, DE_HOSTER, CDN = "Hosting Example NL B.V.", "Hosting Example DE GmbH", "Edge CDN Example"
HOSTERS = f"""\
[[hoster]]
name = "{NL_HOSTER}"
country = "NL"
asns = [64510]
abuse_email = "abuse@hosting-nl.example"

[[hoster]]
name = "{DE_HOSTER}"
country = "DE"
asns = [64520]
abuse_email = "abuse@hosting-de.example"

[[hoster]]
name = "{CDN}"
country = "US"
asns = [64530]
abuse_api = "https://cdn.example/abuse"
cdn = true
"""

# --- the websites ------------------------------------------------------------------------------

ALBUM = b"""<!doctype html><html><head><title>Album</title></head><body>
<h1>Holiday album</h1>
<img src="/i/one.jpg" alt="">
<picture><source srcset="/i/two.png 1x"><img src="/i/two.png" alt=""></picture>
<video controls src="/v/clip.mp4"></video>
</body></html>"""
SHOP_PAGE = b"""<!doctype html><html><head><title>Shop</title>
<meta property="og:image" content="/m/cover.jpg"></head><body>
<a href="/m/zoom.png">zoom</a>
<video><source src="/m/trailer.mp4" type="video/mp4"></video>
</body></html>"""
BROKEN_MEDIA = b"""<!doctype html><html><body>
<img src="/m/broken.jpg" alt=""><img src="/m/bomb.png" alt="">
</body></html>"""
HUGE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 10737418240\r\n"
        b"Connection: close\r\n\r\n<html>")  # fmt: skip
SLOW = Page([b"<!doctype html><html><body>" + b" " * 512] * 60, pause=1.0)  # a minute


def broken_site(path: str) -> Page | None:
    """The bad input: a page that is huge, slow, an endless redirect, not HTML; media that is
    corrupt or a bomb."""
    if path.startswith("/loop/"):
        return redirect(f"/loop/{int(path.rsplit('/', 1)[1]) + 1}")
    return {
        "/huge": Page([HUGE], raw=True),
        "/slow": SLOW,
        "/notes.txt": Page(b"just some notes", "text/plain"),
        "/media": Page(BROKEN_MEDIA),
        "/m/broken.jpg": Page(CORRUPT, "image/jpeg"),
        "/m/bomb.png": Page(BOMB, "image/png"),
    }.get(path)


SITES: dict[str, Pages] = {
    GALLERY: {"/album/7": Page(ALBUM), "/i/one.jpg": Page(ONE, "image/jpeg"),
              "/i/two.png": Page(TWO, "image/png"), "/v/clip.mp4": Page(CLIP, "video/mp4")},
    PICS: {"/p/one.jpg": Page(ONE, "image/jpeg")},
    BOARD: {"/t/55/photo.jpg": Page(ONE, "image/jpeg")},
    SHOP: {"/shop/item": Page(SHOP_PAGE), "/m/cover.jpg": Page(ONE, "image/jpeg"),
           "/m/zoom.png": Page(TWO, "image/png"), "/m/trailer.mp4": Page(CLIP, "video/mp4")},
    BROKEN: broken_site,
}  # fmt: skip


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    nl: Server
    de: Server
    nl_engine: Engine
    de_engine: Engine
    sites: dict[str, Website]
    police: Loopback
    international: Loopback

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.sites[host].port}{path}"


def recorder() -> Loopback:
    """A police or international endpoint: takes every report, keeps what it got."""
    return Loopback(lambda path, headers, body: (202, "application/json", b'{"taken": true}'))


def key_file(path: Path, key: str) -> Path:
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def partner_key(database_url: str, name: str) -> str:
    """A partner key made on the partner's database, as its operator does."""
    made = subprocess.run(
        [HASHGUARD, "keys", "create", "--role", "partner", "--name", name,
         "--database-url", database_url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of one kind, NL's and DE's (``support.database``)."""
    (tmp_path / "nl").mkdir()
    (tmp_path / "de").mkdir()
    with (scratch_database(request.param, tmp_path / "nl") as nl,
          scratch_database(request.param, tmp_path / "de") as de):  # fmt: skip
        yield nl, de


@pytest.fixture
def world(databases: tuple[str, str], tmp_path: Path) -> Iterator[World]:
    nl_url, de_url = databases
    with ExitStack() as stack:
        dns = stack.enter_context(DnsServer(ZONE))
        sites = {}
        for host, pages in SITES.items():
            sites[host] = site = Website(pages, ADDRESSES[host])
            stack.callback(site.close)
        police, international = recorder(), recorder()
        stack.callback(police.close)
        stack.callback(international.close)
        (tmp_path / "ip2asn.tsv").write_text(IP2ASN)
        (tmp_path / "hosters.toml").write_text(HOSTERS)
        common = ["--hotline-resolver", dns.address,
                  "--hotline-ip-database", str(tmp_path / "ip2asn.tsv"),
                  "--hotline-hosters", str(tmp_path / "hosters.toml"),
                  "--hotline-network", "127.0.0.0/8", "--hotline-crawl-timeout", "5",
                  "--hotline-reports-per-hour", "100"]  # fmt: skip
        # DE first: NL's partner file names its URL and a key made on its database.
        de_dir = tmp_path / "de"
        key_file(de_dir / "police.key", "police-de-key")
        (de_dir / "partners.toml").write_text(
            f'[police]\nname = "Polizei Example"\nurl = "{police.url}/de"\n'
            'key_file = "police.key"\n'
        )
        nl_key = partner_key(de_url, "NL")
        de = stack.enter_context(running(de_url, "--hotline-country", "DE", "--hotline-name",
                                         "Hotline DE", "--hotline-partners",
                                         str(de_dir / "partners.toml"), *common))  # fmt: skip
        nl_dir = tmp_path / "nl"
        key_file(nl_dir / "de.key", nl_key)
        key_file(nl_dir / "police.key", "police-nl-key")
        key_file(nl_dir / "international.key", "international-key")
        (nl_dir / "partners.toml").write_text(f"""\
[[partner]]
name = "Hotline DE"
countries = ["DE"]
url = "{de.url}"
key_file = "de.key"

[police]
name = "Politie Example"
url = "{police.url}/nl"
key_file = "police.key"

[international]
name = "International Example"
url = "{international.url}/reports"
key_file = "international.key"
""")
        nl = stack.enter_context(running(nl_url, "--hotline-country", "NL", "--hotline-name",
                                         "Meldpunt NL", "--hotline-partners",
                                         str(nl_dir / "partners.toml"), *common))  # fmt: skip
        nl_engine, de_engine = open_engine(nl_url), open_engine(de_url)
        stack.callback(nl_engine.dispose)
        stack.callback(de_engine.dispose)
        yield World(nl, de, nl_engine, de_engine, sites, police, international)


# --- what the test does and reads --------------------------------------------------------------


def report(server: Server, urls: list[str], seen_where: str = "a forum") -> dict[str, Any]:
    """A public report through the API; its receipt."""
    answer = server.post("/v1/hotline/reports", json={"urls": urls, "seen_where": seen_where})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def refused(server: Server, url: str) -> str:
    """The 400's message for a report of ``url``."""
    answer = server.post("/v1/hotline/reports", json={"urls": [url], "seen_where": "a chat"})
    assert answer.status_code == 400, answer.text
    return str(answer.json()["error"]["message"])


def case_of(engine: Engine, url: str) -> int:
    table = HotlineCaseRow.__table__
    with engine.connect() as connection:
        found = connection.execute(select(table.c.id).where(table.c.url == url)).scalar_one()
    return int(found)


def case_in(engine: Engine, url: str, *states: CaseState) -> CaseShown | None:
    """The case of ``url`` once it is in one of ``states``, else None."""
    table = HotlineCaseRow.__table__
    with engine.connect() as connection:
        found = connection.execute(select(table.c.id).where(table.c.url == url)).scalar()
    if found is None:
        return None
    case = Cases(engine).case(int(found))
    return case if case.state in states else None


def wait_case(engine: Engine, url: str, *states: CaseState) -> CaseShown:
    case = eventually(lambda: case_in(engine, url, *states), DEADLINE)
    assert case is not None, f"{url} never reached {', '.join(states)}"
    return case  # type: ignore[no-any-return]


def assess(server: Server, item_id: int, labels: dict[str, str]) -> dict[str, Any]:
    answer = server.post(f"/v1/hotline/items/{item_id}/assessment", "analyst",
                         json={"labels": labels})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def viewed(engine: Engine) -> set[int]:
    """The items an analyst has viewed (revealed in the desk), from the audit log."""
    table = AuditEventRow.__table__
    with engine.connect() as connection:
        details = connection.execute(
            select(table.c.details).where(table.c.action == "hotline.item.viewed")
        ).scalars()  # fmt: skip
        return {int(json.loads(detail)["item"]) for detail in details}


def reports_from(engine: Engine, source: str) -> list[str]:
    table = HotlineReportRow.__table__
    with engine.connect() as connection:
        return list(connection.execute(select(table.c.reference).where(table.c.source == source)
                                       .order_by(table.c.id)).scalars())  # fmt: skip


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_url(case: CaseShown) -> dict[str, Any]:
    return {item.url: item for item in case.items}


def posted(endpoint: Loopback, path: str) -> list[dict[str, Any]]:
    return [json.loads(body) for at, _, body in endpoint.requests if at == path]


# --- the test ----------------------------------------------------------------------------------


def test_reports_are_crawled_assessed_once_traced_and_routed_to_hosters_police_and_partners(
    world: World,
) -> None:
    refused_at_intake(world.nl)
    # Bad input that only the crawl finds, reported first: it holds up nothing else.
    bad_urls = [*(world.url(BROKEN, path) for path in BROKEN_PATHS),
                f"http://{INTRANET}:{world.sites[GALLERY].port}/"]  # fmt: skip
    report(world.nl, bad_urls, "spam mail")
    album, pics = world.url(GALLERY, "/album/7"), world.url(PICS, "/p/one.jpg")
    first = report(world.nl, [album, pics])
    assert first["urls"] == [album, pics]
    one, two, clip = crawled(world, album, pics)
    bad_input_recorded(world, bad_urls, album)

    # Three unknown media assessed, the first in the desk; the DE copy of the first image is
    # decided by that assessment, nobody viewing it.
    desk_assess(world, one.id, BASELINE)
    assert assess(world.nl, two.id, NOT_ILLEGAL)["list"] == "hotline-not-illegal"
    made = assess(world.nl, clip.id, BASELINE)
    assert (made["state"], made["list"], made["legality"]["NL"]) == \
        ("final", "hotline-illegal", "illegal")  # fmt: skip
    assert viewed(world.nl_engine) == {one.id}
    routed_a = wait_case(world.nl_engine, album, CaseState.ROUTED)
    routed_b = wait_case(world.nl_engine, pics, CaseState.ROUTED)
    [copy] = routed_b.items
    first_one = by_url(routed_a)[one.url].assessment_id
    assert copy.state == ItemState.AUTO
    assert copy.triage["assessment"] == copy.assessment_id == first_one

    traced(routed_a, routed_b)
    routed_home(world, routed_a, album, one.url, clip.url)
    at_de = referred_to_de(world, routed_b, pics)

    # The same media at other sites: decided without anyone viewing them, here and at DE.
    second = report_by_form(world, [world.url(SHOP, "/shop/item"),
                                    world.url(BOARD, "/t/55/photo.jpg")])  # fmt: skip
    seen_again(world, routed_a, at_de)

    # What each reporter may know, and the dashboard's figure.
    assert status(world.nl, first["token"]) == "action taken"
    assert status(world.nl, second) == "action taken"
    figures = world.nl.get("/v1/hotline/figures", "analyst").json()
    # Of the 8 media that could be hashed, 5 were decided without an analyst (the DE copy and
    # the second report's 4), 3 by analysts; the 2 broken ones failed.
    assert {k: figures[k] for k in ("auto", "assessed", "queued", "failed", "auto_share")} == \
        {"auto": 5, "assessed": 3, "queued": 0, "failed": 2, "auto_share": 5 / 8}  # fmt: skip


BROKEN_PATHS = ("/slow", "/huge", "/loop/1", "/notes.txt", "/media")


def refused_at_intake(nl: Server) -> None:
    """Malformed URLs and private addresses: 400 naming the URL, nothing recorded."""
    for bad in ("not a url", "ftp://files.example/one.jpg", "http://192.168.1.20/one.jpg",
                "http://[::1]/one.jpg", "http://10.0.0.8:8080/album"):  # fmt: skip
        assert bad in refused(nl, bad)


def crawled(world: World, album: str, pics: str) -> tuple[Any, Any, Any]:
    """The album's three media and the DE image crawled, hashed, all unknown: queued. The
    album's items (image, image, video)."""
    case_a = wait_case(world.nl_engine, album, CaseState.TRIAGED)
    case_b = wait_case(world.nl_engine, pics, CaseState.TRIAGED)
    url = world.url
    items = by_url(case_a)
    assert {u: (i.kind, i.state) for u, i in items.items()} == {
        url(GALLERY, "/i/one.jpg"): ("image", ItemState.QUEUED),
        url(GALLERY, "/i/two.png"): ("image", ItemState.QUEUED),
        url(GALLERY, "/v/clip.mp4"): ("video", ItemState.QUEUED),
    }
    one, two, clip = items.values()
    assert {signal: one.hashes[signal] for signal in hashes_of(ONE)} == hashes_of(ONE)
    assert two.hashes["sha256"] == sha256(TWO) and clip.hashes["sha256"] == sha256(CLIP)
    assert "vpdq" in clip.hashes
    page = next(f for f in case_a.fetches if f.url == album)
    assert (page.kind, page.outcome, page.status, page.size) == ("page", "ok", 200, len(ALBUM))
    [copy] = case_b.items
    assert copy.hashes["sha256"] == sha256(ONE) and copy.state == ItemState.QUEUED
    return one, two, clip


def bad_input_recorded(world: World, bad_urls: list[str], album: str) -> None:
    """Each bad URL's fetches with their named outcomes; the album, reported after them, was
    crawled before the slow page gave up."""
    outcomes = {}
    for bad in bad_urls:
        case = wait_case(world.nl_engine, bad, CaseState.UNREACHABLE, CaseState.ROUTED)
        outcomes[bad] = [(fetch.kind, fetch.outcome) for fetch in case.fetches]
    slow, huge, loop, notes, media, private = bad_urls
    assert outcomes == {
        slow: [("page", "timed-out")],
        huge: [("page", "too-large")],
        loop: [("page", "too-many-redirects")],
        notes: [("other", "not-html")],
        private: [("page", "private-address")],
        media: [("page", "ok"), ("image", "corrupt-media"), ("image", "media-limit")],
    }
    order = crawl_order(world.nl_engine)
    assert order.index(case_of(world.nl_engine, album)) < order.index(
        case_of(world.nl_engine, slow))  # fmt: skip
    broken = Cases(world.nl_engine).case(case_of(world.nl_engine, media))
    assert [item.state for item in broken.items] == [ItemState.FAILED, ItemState.FAILED]
    assert broken.route is not None and broken.route.kind == "none"


def traced(routed_a: CaseShown, routed_b: CaseShown) -> None:
    """Hoster, AS and country of each, and the IP database's date."""
    trace_a, trace_b = routed_a.trace, routed_b.trace
    assert trace_a is not None and trace_b is not None
    assert (trace_a.hoster, trace_a.country, trace_a.cdn) == (NL_HOSTER, "NL", False)
    [address] = trace_a.trace["addresses"]
    assert (address["address"], address["asn"], address["as_name"]) == \
        (ADDRESSES[GALLERY], 64510, "EXAMPLE-NL-HOSTING")  # fmt: skip
    assert trace_a.trace["databases"] == ["ip2asn 2026-11-30"]
    assert (trace_b.hoster, trace_b.country, trace_b.cdn) == (DE_HOSTER, "DE", False)
    assert trace_b.trace["addresses"][0]["asn"] == 64520


def routed_home(world: World, routed: CaseShown, album: str, *illegal: str) -> None:
    """Hosted at home: a notice for the NL hoster (queued by routing, then composed and sent by
    the service's takedown scheduler), and the police get URLs and hashes, never bytes."""
    route = routed.route
    assert route is not None and (route.kind, route.target) == ("domestic", NL_HOSTER)
    assert set(route.actions) == {"notice", "police"}
    [notice] = routed.notices
    assert (notice.hoster, notice.abuse_email, notice.cdn) == \
        (NL_HOSTER, "abuse@hosting-nl.example", False)  # fmt: skip
    assert notice.state in ("queued", "open")  # the scheduler may have taken it up already
    cases = Cases(world.nl_engine)
    assert eventually(lambda: [n.state for n in cases.case(routed.id).notices] == ["open"],
                      DEADLINE)  # fmt: skip
    assert set(notice.urls) == {*illegal, album}  # the illegal media and their page
    assert world.police.wait_for(1, DEADLINE)
    [(path, headers, body)] = world.police.requests
    assert path == "/nl" and headers["Authorization"] == "Bearer police-nl-key"
    sent = json.loads(body)
    assert sent["url"] == album
    assert [(item["url"], item["hashes"]["sha256"]) for item in sent["items"]] == \
        list(zip(illegal, (sha256(ONE), sha256(CLIP)), strict=True))  # fmt: skip
    assert all(set(item) == {"url", "hashes", "labels", "legality", "assessment"}
               for item in sent["items"])  # fmt: skip
    assert len(body) < min(len(ONE), len(CLIP)) and ONE[:64] not in body


def referred_to_de(world: World, routed: CaseShown, pics: str) -> dict[str, Any]:
    """Hosted where the partner works: a referral DE takes as a report from partner:NL, its
    item queued there; DE's analyst assesses it, and DE routes it at its home. That
    assessment."""
    route = routed.route
    assert route is not None and (route.kind, route.target) == ("partner", "Hotline DE")
    received = wait_case(world.de_engine, pics, CaseState.TRIAGED)
    assert [r.source for r in received.reports] == ["partner:NL"]
    [referred] = received.items
    assert referred.state == ItemState.QUEUED and referred.hashes["sha256"] == sha256(ONE)
    delivered = eventually(lambda: [(m.kind, m.target) for m in
                                    Cases(world.nl_engine).case(routed.id).outbox
                                    if m.delivered_at is not None], DEADLINE)  # fmt: skip
    assert delivered == [("referral", "Hotline DE")]
    at_de = assess(world.de, referred.id, BASELINE)
    assert (at_de["state"], at_de["legality"]["DE"]) == ("final", "illegal")
    routed_de = wait_case(world.de_engine, pics, CaseState.ROUTED)
    assert routed_de.route is not None and routed_de.route.kind == "domestic"
    assert [notice.hoster for notice in routed_de.notices] == [DE_HOSTER]
    assert world.police.wait_for(2, DEADLINE) and world.police.requests[1][0] == "/de"
    return at_de


def seen_again(world: World, routed_a: CaseShown, at_de: dict[str, Any]) -> None:
    """The second report's media, each linked to its first assessment, no analyst viewing
    them; behind the CDN, hosted in the US: to the international endpoint; the DE image
    referred again, and decided at DE by DE's assessment."""
    shop, board = world.url(SHOP, "/shop/item"), world.url(BOARD, "/t/55/photo.jpg")
    case_c = wait_case(world.nl_engine, shop, CaseState.ROUTED)
    case_d = wait_case(world.nl_engine, board, CaseState.ROUTED)
    first = {item.hashes["sha256"]: item.assessment_id for item in routed_a.items}
    assert len(case_c.items) == 3
    for item in (*case_c.items, *case_d.items):
        assert item.state == ItemState.AUTO, item
        assert item.assessment_id == item.triage["assessment"] == first[item.hashes["sha256"]]
    viewed_ever = viewed(world.nl_engine)
    assert len(viewed_ever) == 1 and not viewed_ever & {i.id for i in case_c.items + case_d.items}
    trace = case_c.trace
    assert trace is not None and (trace.hoster, trace.country, trace.cdn) == (CDN, "US", True)
    assert trace.trace["dns"]["cnames"] == ["shop.edge.cdn-example.test"]
    assert trace.trace["addresses"][0]["asn"] == 64530
    assert case_c.route is not None and case_c.route.kind == "international"
    assert world.international.wait_for(1, DEADLINE)
    [(path, _, body)] = world.international.requests
    sent = json.loads(body)
    assert (path, sent["url"]) == ("/reports", shop)
    assert [item["url"] for item in sent["items"]] == \
        [world.url(SHOP, "/m/cover.jpg"), world.url(SHOP, "/m/trailer.mp4")]  # fmt: skip
    assert case_d.route is not None and case_d.route.kind == "partner"
    again = wait_case(world.de_engine, board, CaseState.ASSESSED, CaseState.ROUTED)
    [auto] = again.items
    assert auto.state == ItemState.AUTO and auto.assessment_id == at_de["id"]
    assert [r.source for r in again.reports] == ["partner:NL"]
    assert len(reports_from(world.de_engine, "partner:NL")) == 2
    assert viewed(world.de_engine) == set()


def crawl_order(engine: Engine) -> list[int]:
    """Case ids in the order their crawls ended (the audit log's order)."""
    table = AuditEventRow.__table__
    with engine.connect() as connection:
        subjects = connection.execute(
            select(table.c.subject).where(table.c.action == "hotline.crawled")
            .order_by(table.c.seq)
        ).scalars()  # fmt: skip
        return [int(subject.split(":")[1]) for subject in subjects]


def status(server: Server, token: str) -> str:
    answer = server.get("/v1/hotline/reports/status", headers={"X-Report-Token": token})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def report_by_form(world: World, urls: list[str]) -> str:
    """A report sent from the public page (no JavaScript needed); its status token."""
    answer = world.nl.post("/report", data={"urls": "\n".join(urls), "seen_where": "a shop"})
    assert answer.status_code == 201, answer.text
    found = re.search(r'id="token">([^<]+)<', answer.text)
    assert found is not None
    return found.group(1)


def desk_assess(world: World, item_id: int, labels: dict[str, str]) -> None:
    """An analyst assesses the item in the desk, in Chromium: the queue, the item fetched again
    from its website (shielded until revealed, the viewing audited), the labels form."""
    nl, site = world.nl, world.sites[GALLERY]
    fetched = site.fetched.count("/i/one.jpg")
    with chromium.launched() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(nl.url + "/desk/login")
        page.fill("input[name=key]", nl.tokens["analyst"])
        with page.expect_navigation():
            page.click("text=Sign in")
        assert page.url == nl.url + "/desk/hotline"
        assert page.locator("#queue tr[data-href]").count() == 4  # the album's three, the copy
        assert page.locator("img, video").count() == 0  # never a thumbnail
        page.goto(f"{nl.url}/desk/hotline/items/{item_id}")
        page.wait_for_function("document.getElementById('content').naturalWidth > 0")
        assert site.fetched.count("/i/one.jpg") == fetched + 1  # fetched again, now
        look = page.eval_on_selector("#content", "e => getComputedStyle(e).filter")
        assert "blur" in look and "grayscale" in look
        page.click("#reveal")
        assert page.eval_on_selector("#content", "e => getComputedStyle(e).filter") == "none"
        trace = page.text_content("#trace") or ""
        assert NL_HOSTER in trace and "64510" in trace
        for group, value in labels.items():
            page.select_option(f"#label-{group}", value)
        with page.expect_navigation():
            page.click("#submit")
        assert page.get_attribute("#result", "data-state") == "final"
        assert "hotline-illegal" in (page.text_content("#listed") or "")
