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

from support.database import scratch_database
from support.dns import DnsServer
from support.hotline_items import BASELINE, NOT_ILLEGAL, hashes_of
from support.loopback import Loopback
from support.media import jpeg, make_video, png, png_declaring
from support.server import HASHGUARD, Server, running
from support.waiting import eventually
from support.website import Page, Website, redirect

DEADLINE = 30.0  # seconds for any one step of the pipeline

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


SITES: dict[str, dict[str, Page] | Any] = {
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
                  "--fetch-network", "127.0.0.0/8", "--hotline-crawl-timeout", "5",
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
    return str(answer.json()["detail"])


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
    nl, de = world.nl, world.de
    url = world.url
    # Refused at intake, each named: nothing malformed or private is recorded.
    for bad in ("not a url", "ftp://files.example/one.jpg", "http://192.168.1.20/one.jpg",
                "http://[::1]/one.jpg", "http://10.0.0.8:8080/album"):  # fmt: skip
        assert bad in refused(nl, bad)
    # Bad input that only the crawl finds, reported first: it holds up nothing else.
    slow = url(BROKEN, "/slow")
    bad_urls = [slow, url(BROKEN, "/huge"), url(BROKEN, "/loop/1"), url(BROKEN, "/notes.txt"),
                f"http://{INTRANET}:{world.sites[GALLERY].port}/", url(BROKEN, "/media")]  # fmt: skip
    report(nl, bad_urls, "spam mail")
    album, pics = url(GALLERY, "/album/7"), url(PICS, "/p/one.jpg")
    first = report(nl, [album, pics])
    assert first["urls"] == [album, pics]
    # Crawled: the album's three media, the DE image itself; all unknown, queued.
    case_a = wait_case(world.nl_engine, album, CaseState.TRIAGED)
    case_b = wait_case(world.nl_engine, pics, CaseState.TRIAGED)
    items = by_url(case_a)
    assert {u: (i.kind, i.state) for u, i in items.items()} == {
        url(GALLERY, "/i/one.jpg"): ("image", ItemState.QUEUED),
        url(GALLERY, "/i/two.png"): ("image", ItemState.QUEUED),
        url(GALLERY, "/v/clip.mp4"): ("video", ItemState.QUEUED),
    }
    one, two, clip = items.values()
    assert {k: one.hashes[k] for k in hashes_of(ONE)} == hashes_of(ONE)
    assert two.hashes["sha256"] == sha256(TWO) and clip.hashes["sha256"] == sha256(CLIP)
    assert "vpdq" in clip.hashes
    page = next(f for f in case_a.fetches if f.url == album)
    assert (page.kind, page.outcome, page.status, page.size) == ("page", "ok", 200, len(ALBUM))
    [copy] = case_b.items
    assert copy.hashes["sha256"] == sha256(ONE) and copy.state == ItemState.QUEUED
    # The bad input: each its named outcome, recorded with the fetch; the good report did
    # not wait for the slow page.
    outcomes = {}
    for bad in bad_urls:
        case = wait_case(world.nl_engine, bad, CaseState.UNREACHABLE, CaseState.ROUTED)
        outcomes[bad] = [(f.kind, f.outcome) for f in case.fetches]
    assert outcomes == {
        slow: [("page", "timed-out")],
        url(BROKEN, "/huge"): [("page", "too-large")],
        url(BROKEN, "/loop/1"): [("page", "too-many-redirects")],
        url(BROKEN, "/notes.txt"): [("other", "not-html")],
        bad_urls[4]: [("page", "private-address")],
        url(BROKEN, "/media"): [("page", "ok"), ("image", "corrupt-media"),
                                ("image", "media-limit")],
    }  # fmt: skip
    crawled = crawl_order(world.nl_engine)
    assert crawled.index(case_a.id) < crawled.index(case_of(world.nl_engine, slow))
    media_case = Cases(world.nl_engine).case(case_of(world.nl_engine, url(BROKEN, "/media")))
    assert [i.state for i in media_case.items] == [ItemState.FAILED, ItemState.FAILED]
    assert media_case.route is not None and media_case.route.kind == "none"

    # Three unknown media assessed (the first in the desk); the DE copy of the first image is
    # decided by that assessment, nobody viewing it.
    desk_assess(world, one.id, BASELINE)
    assert assess(nl, two.id, NOT_ILLEGAL)["list"] == "hotline-not-illegal"
    made = assess(nl, clip.id, BASELINE)
    assert (made["state"], made["list"], made["legality"]["NL"]) == (
        "final",
        "hotline-illegal",
        "illegal",
    )
    assert viewed(world.nl_engine) == {one.id}
    routed_a = wait_case(world.nl_engine, album, CaseState.ROUTED)
    routed_b = wait_case(world.nl_engine, pics, CaseState.ROUTED)
    [decided] = routed_b.items
    assert decided.state == ItemState.AUTO and decided.assessment_id is not None
    assert (
        decided.triage["assessment"]
        == decided.assessment_id
        == by_url(routed_a)[one.url].assessment_id
    )

    # Traced: hoster, AS, country, the IP database's date.
    trace_a, trace_b = routed_a.trace, routed_b.trace
    assert trace_a is not None and trace_b is not None
    assert (trace_a.hoster, trace_a.country, trace_a.cdn) == (NL_HOSTER, "NL", False)
    [address] = trace_a.trace["addresses"]
    assert (address["address"], address["asn"], address["as_name"]) == (
        ADDRESSES[GALLERY],
        64510,
        "EXAMPLE-NL-HOSTING",
    )
    assert trace_a.trace["databases"] == ["ip2asn 2026-11-30"]
    assert (trace_b.hoster, trace_b.country) == (DE_HOSTER, "DE")
    assert trace_b.trace["addresses"][0]["asn"] == 64520

    # Routed at home: a notice queued for the NL hoster, a report to the police (no bytes).
    route_a = routed_a.route
    assert route_a is not None and (route_a.kind, route_a.target) == ("domestic", NL_HOSTER)
    assert set(route_a.actions) == {"notice", "police"}
    [notice] = routed_a.notices
    assert (notice.hoster, notice.abuse_email, notice.state, notice.cdn) == (
        NL_HOSTER,
        "abuse@hosting-nl.example",
        "queued",
        False,
    )
    assert set(notice.urls) == {one.url, clip.url, album}  # the illegal media and the page
    assert world.police.wait_for(1, DEADLINE)
    [(path, headers, body)] = world.police.requests
    assert path == "/nl" and headers["Authorization"] == "Bearer police-nl-key"
    sent = json.loads(body)
    assert sent["url"] == album
    assert {i["url"]: i["hashes"]["sha256"] for i in sent["items"]} == {
        one.url: sha256(ONE),
        clip.url: sha256(CLIP),
    }
    assert all(set(i) == {"url", "hashes", "labels", "legality", "assessment"}
               for i in sent["items"])  # fmt: skip
    assert len(body) < min(len(ONE), len(CLIP)) and ONE[:64] not in body
    # Referred to DE: DE takes it as a report from partner:NL, its item queued there.
    route_b = routed_b.route
    assert route_b is not None and (route_b.kind, route_b.target) == ("partner", "Hotline DE")
    received = wait_case(world.de_engine, pics, CaseState.TRIAGED)
    assert [r.source for r in received.reports] == ["partner:NL"]
    [referred] = received.items
    assert referred.state == ItemState.QUEUED and referred.hashes["sha256"] == sha256(ONE)
    assert eventually(
        lambda: all(m.delivered_at for m in Cases(world.nl_engine).case(routed_b.id).outbox),
        DEADLINE,
    )

    # DE assesses it: at home there, a notice and DE's police.
    assert assess(de, referred.id, BASELINE)["state"] == "final"
    routed_de = wait_case(world.de_engine, pics, CaseState.ROUTED)
    assert routed_de.route is not None and routed_de.route.kind == "domestic"
    assert [n.hoster for n in routed_de.notices] == [DE_HOSTER]
    assert world.police.wait_for(2, DEADLINE) and world.police.requests[1][0] == "/de"

    # The same media at other sites: decided without anyone viewing them.
    shop, board = url(SHOP, "/shop/item"), url(BOARD, "/t/55/photo.jpg")
    second = report_by_form(world, [shop, board])
    seen_before = viewed(world.nl_engine)
    case_c = wait_case(world.nl_engine, shop, CaseState.ROUTED)
    case_d = wait_case(world.nl_engine, board, CaseState.ROUTED)
    assessments = {i.hashes["sha256"]: i.assessment_id for i in routed_a.items}
    for item in (*case_c.items, *case_d.items):
        assert item.state == ItemState.AUTO, item
        assert item.assessment_id == assessments[item.hashes["sha256"]]
    assert len(case_c.items) == 3 and viewed(world.nl_engine) == seen_before == {one.id}
    # Behind the CDN (the CNAME, the CDN's AS, the registry), hosted in the US: international.
    trace_c = case_c.trace
    assert trace_c is not None and (trace_c.hoster, trace_c.country, trace_c.cdn) == (
        CDN,
        "US",
        True,
    )
    assert trace_c.trace["dns"]["cnames"] == ["shop.edge.cdn-example.test"]
    assert trace_c.trace["addresses"][0]["asn"] == 64530
    assert case_c.route is not None and case_c.route.kind == "international"
    assert world.international.wait_for(1, DEADLINE)
    [to_world] = posted(world.international, "/reports")
    assert to_world["url"] == shop and {i["url"] for i in to_world["items"]} == {
        url(SHOP, "/m/cover.jpg"),
        url(SHOP, "/m/trailer.mp4"),
    }
    # Referred to DE again: DE assessed it, so DE decides it without anyone viewing it.
    assert case_d.route is not None and case_d.route.kind == "partner"
    again = wait_case(world.de_engine, board, CaseState.ASSESSED, CaseState.ROUTED)
    [auto] = again.items
    assert auto.state == ItemState.AUTO and auto.assessment_id == referred.assessment_id
    assert [r.source for r in again.reports] == ["partner:NL"]
    assert len(reports_from(world.de_engine, "partner:NL")) == 2
    assert viewed(world.de_engine) == set()

    # What each reporter may know.
    assert status(nl, first["token"]) == "action taken"
    assert status(nl, second) == "action taken"
    figures = nl.get("/v1/hotline/figures", "analyst").json()
    assert figures["auto"] == 4 and figures["assessed"] == 3


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
    assess(world.nl, item_id, labels)
