"""The simulated hosters the takedown tests rely on (tests/support/hosting.py), checked with the
hotline's own parts: the crawler through a real DNS server answering the world's zone, the
tracer with its registry and IP database, and httpx posting to the abuse APIs. Each behaviour
keyed to the test's clock: what is served before and after a notice, what the API answers."""

import ipaddress
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from hashguard.hotline.crawl import crawl
from hashguard.hotline.hosters import load
from hashguard.hotline.ipdb import Ip2AsnDatabase
from hashguard.hotline.trace import Tracer
from hashguard.net.dns import DnsResolver
from hashguard.net.fetch import UrlFetcher

from support.decoding import servers_decodes
from support.dns import DnsServer
from support.hosting import (
    MALFORMED,
    Answer,
    CdnFront,
    Hosting,
    MovingClock,
    SimulatedHoster,
    claims_but_keeps,
    hosting,
    never_removes,
    removes_after,
    removes_then_reuploads,
)
from support.hotline_items import hashes_of


@pytest.fixture
def clock() -> MovingClock:
    return MovingClock()


@pytest.fixture
def world(clock: MovingClock) -> Iterator[Hosting]:
    with hosting(clock) as world:
        world.hoster("Quick Hosting", removes_after(1))
        transit = world.network("Transit Net")
        world.hoster("Never Hosting", never_removes(), country="US", upstream=transit)
        world.hoster("Liar Hosting", claims_but_keeps(), mail=False)
        world.hoster("Again Hosting", removes_then_reuploads(after_days=7), api=False)
        origin = world.hoster("Origin Hosting", removes_after(2), country="DE")
        world.cdn("Edge CDN", origin)
        yield world


@pytest.fixture
def dns(world: Hosting) -> Iterator[DnsServer]:
    with DnsServer(world.zone()) as server:
        yield server


def hoster(world: Hosting, name: str) -> SimulatedHoster:
    desk = world.named(name)
    assert isinstance(desk, SimulatedHoster)
    return desk


def fetcher(dns: DnsServer) -> UrlFetcher:
    resolver = DnsResolver([dns.address])
    return UrlFetcher((), [ipaddress.ip_network("127.0.0.0/8")], timeout=10,
                      resolve=resolver.addresses, any_host=True)  # fmt: skip


def notify(desk: SimulatedHoster | CdnFront, *urls: str) -> httpx.Response:
    """What a notice by API looks like to the desk: JSON naming the URLs."""
    assert desk.abuse_api is not None
    body = {"report_id": "r-1", "urls": list(urls)}
    return httpx.post(desk.abuse_api, json=body, headers={"Idempotency-Key": "k-1"}, timeout=10)


def test_each_hoster_serves_its_gallery_through_the_zone_to_the_crawler(
    world: Hosting, dns: DnsServer
) -> None:
    for name in ("Quick Hosting", "Never Hosting", "Origin Hosting"):
        desk = hoster(world, name)
        found = crawl(desk.page_url, fetcher(dns), decodes=servers_decodes())
        assert found.page.status == 200 and found.page.kind == "page"
        assert [item.url for item in found.items] == desk.image_urls
        assert [item.hashes["sha256"] for item in found.items] == [
            hashes_of(data)["sha256"] for data in desk.images.values()
        ]
    # Every hoster's images are its own: no two share a hash.
    every = [hashes_of(data)["sha256"] for h in world.desks if isinstance(h, SimulatedHoster)
             for data in h.images.values()]  # fmt: skip
    assert len(every) == len(set(every))


def test_removes_after_serves_404_from_the_notice_plus_its_hours(
    world: Hosting, dns: DnsServer, clock: MovingClock
) -> None:
    quick = hoster(world, "Quick Hosting")
    image = quick.image_urls[0]
    answer = notify(quick, image, quick.page_url)
    assert answer.status_code == 200 and answer.json() == {"ticket": "quick-hosting-1"}
    [received] = quick.received
    assert received.channel == "api" and received.at == clock()
    assert received.headers["Idempotency-Key"] == "k-1"
    assert received.document == {"report_id": "r-1", "urls": [image, quick.page_url]}
    assert received.paths == (next(iter(quick.images)), quick.page_path)
    noticed = clock()
    clock.advance(minutes=59)
    assert crawl(image, fetcher(dns), decodes=servers_decodes()).page.status == 200
    clock.advance(minutes=1)
    assert crawl(image, fetcher(dns), decodes=servers_decodes()).page.status == 404
    assert crawl(quick.page_url, fetcher(dns), decodes=servers_decodes()).page.status == 404
    assert quick.removed_at(quick.page_path) == noticed + timedelta(hours=1)
    # The image nobody named stays.
    other = quick.image_urls[1]
    assert crawl(other, fetcher(dns), decodes=servers_decodes()).page.status == 200
    # A second notice does not restart the hoster's clock.
    notify(quick, other)
    assert quick.removed_at(quick.page_path) == noticed + timedelta(hours=1)


def test_never_removes_and_claims_but_keeps_keep_serving(
    world: Hosting, clock: MovingClock
) -> None:
    never, liar = hoster(world, "Never Hosting"), hoster(world, "Liar Hosting")
    assert notify(never, never.page_url).json() == {"ticket": "never-hosting-1"}
    assert notify(liar, liar.page_url).json() == {"ticket": "liar-hosting-1", "status": "removed"}
    clock.advance(days=400)
    assert never.serves(never.page_path) and liar.serves(liar.page_path)
    assert never.removed_at(never.page_path) is None
    answer = httpx.get(liar.url(liar.page_path).replace(liar.host, liar.address), timeout=10)
    assert answer.status_code == 200 and b"Liar Hosting" in answer.content


def test_removes_then_reuploads_is_back_after_its_days_and_goes_again_when_noticed(
    world: Hosting, clock: MovingClock
) -> None:
    again = hoster(world, "Again Hosting")
    assert again.abuse_api is None and again.abuse_email == "abuse@again-hosting.test"
    message = EmailMessage()
    message["To"] = again.abuse_email
    message["Subject"] = "Notice"
    message.set_content(f"Please remove {again.page_url} and {again.image_urls[0]}.")
    [received] = world.take_mail([again.abuse_email.upper()], message.as_bytes())
    assert received.channel == "smtp" and received.document is None
    assert set(received.paths) == {again.page_path, next(iter(again.images))}
    path = again.page_path
    start = clock()
    assert [again.serves(path, start + timedelta(hours=h)) for h in (0, 0.99, 1, 24 * 7 - 1)] == [
        True, True, False, False]  # fmt: skip
    # The moments it changes (per path noticed): where a test moves its clock to.
    assert world.changes() == [start + timedelta(hours=1)] * 2 + [start + timedelta(days=7)] * 2
    clock.set(start + timedelta(days=7))
    assert again.serves(path)
    clock.advance(days=1)
    world.take_mail([again.abuse_email], message.as_bytes())
    assert again.serves(path)
    removed = clock() + timedelta(hours=1)
    assert world.changes()[-2:] == [removed] * 2
    clock.set(removed)
    assert not again.serves(path)
    clock.advance(days=30)
    assert not again.serves(path)  # re-uploaded once only
    assert max(world.changes()) == removed


def test_a_cdn_is_traced_answers_with_its_origin_and_serves_what_the_origin_serves(
    world: Hosting, dns: DnsServer, clock: MovingClock, tmp_path: Path
) -> None:
    (tmp_path / "hosters.toml").write_text(world.registry())
    (tmp_path / "ip2asn.tsv").write_text(world.ip2asn())
    registry = load(tmp_path / "hosters.toml")
    tracer = Tracer(DnsResolver([dns.address]), [Ip2AsnDatabase([tmp_path / "ip2asn.tsv"])],
                    registry, cdn_asns=(), clock=clock)  # fmt: skip
    origin = hoster(world, "Origin Hosting")
    edge = world.named("Edge CDN")
    assert isinstance(edge, CdnFront) and origin.front is edge
    trace = tracer.trace(origin.page_url)
    assert trace.dns.cnames == (edge.edge,)
    assert trace.cdn and trace.hoster is not None and trace.hoster.name == "Edge CDN"
    assert trace.hoster.abuse_api == edge.abuse_api
    # Its API names the origin; the registry knows whose address that is.
    reply = notify(edge, origin.page_url).json()
    assert reply == {"ticket": "edge-cdn-1", "origin": origin.address}
    origin_hoster = registry.lookup(reply["origin"])
    assert origin_hoster is not None and origin_hoster.name == "Origin Hosting"
    assert (origin_hoster.country, origin_hoster.cdn) == ("DE", False)
    assert edge.received[0].paths == (origin.page_path,)
    assert origin.received == []  # the CDN does not forward notices
    # The CDN serves what the origin serves: until the origin removes it.
    assert crawl(origin.page_url, fetcher(dns), decodes=servers_decodes()).page.status == 200
    notify(origin, origin.page_url)
    clock.advance(hours=2)
    assert crawl(origin.page_url, fetcher(dns), decodes=servers_decodes()).page.status == 404
    assert (
        crawl(origin.image_urls[0], fetcher(dns), decodes=servers_decodes()).page.status == 200
    )  # not noticed


def test_the_registry_and_ip_database_name_every_desk(world: Hosting, tmp_path: Path) -> None:
    (tmp_path / "hosters.toml").write_text(world.registry())
    (tmp_path / "ip2asn.tsv").write_text(world.ip2asn())
    registry = load(tmp_path / "hosters.toml")
    database = Ip2AsnDatabase([tmp_path / "ip2asn.tsv"])
    assert [h.name for h in registry] == [d.name for d in world.desks]
    for desk in world.desks:
        found = registry.lookup(desk.address)
        assert found is not None and found.as_json() == {
            "name": desk.name, "country": desk.country, "asns": [desk.asn],
            "networks": [f"{desk.address}/32"], "abuse_email": desk.abuse_email,
            "abuse_api": desk.abuse_api, "cdn": desk.cdn,
            "upstream": desk.upstream.name if desk.upstream else None,
        }  # fmt: skip
        record = database.lookup(desk.address)
        assert record is not None and (record.asn, record.country) == (desk.asn, desk.country)
    assert len({d.address for d in world.desks}) == len(world.desks)
    upstream = registry.upstream_of("Never Hosting")
    assert upstream is not None and upstream.abuse_email == "abuse@transit-net.test"


def test_an_email_notice_with_its_attachment_and_mail_to_nobody(world: Hosting) -> None:
    quick = hoster(world, "Quick Hosting")
    message = EmailMessage()
    message["To"] = "abuse@quick-hosting.test"
    message.set_content("Dear abuse desk, see the attached notice.")
    document = b'{"report_id": "r-2", "urls": ["%s"]}' % quick.page_url.encode()
    message.add_attachment(document, maintype="application", subtype="json",
                           filename="notice.json")  # fmt: skip
    [received] = world.take_mail(["abuse@quick-hosting.test"], message.as_bytes())
    assert received.document == {"report_id": "r-2", "urls": [quick.page_url]}
    assert received.attachments == {"notice.json": document}
    assert received.paths == (quick.page_path,)
    assert "Dear abuse desk" in received.text
    assert world.take_mail(["regulator@authority.test"], message.as_bytes()) == []
    assert world.other_mail == [(("regulator@authority.test",), message.as_bytes())]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_the_api_answers_what_the_test_sets(world: Hosting, name: str) -> None:
    never = hoster(world, "Never Hosting")
    never.reply = MALFORMED[name]
    answer = notify(never, never.page_url)
    expected = MALFORMED[name].page()
    assert (answer.status_code, answer.content) == (expected.status, expected.body)
    never.reply = lambda received: Answer(202, {"seen": list(received.paths)})
    assert notify(never, never.page_url).json() == {"seen": [never.page_path]}
    assert len(never.received) == 2  # malformed or not, every notice is kept


def test_the_api_keeps_a_body_that_is_not_json_and_refuses_other_paths(world: Hosting) -> None:
    quick = hoster(world, "Quick Hosting")
    assert quick.abuse_api is not None
    answer = httpx.post(quick.abuse_api, content=b"not json " + quick.page_url.encode())
    assert answer.status_code == 200
    assert quick.received[0].document is None and quick.received[0].paths == (quick.page_path,)
    wrong = httpx.post(quick.abuse_api.replace("/abuse/notices", "/other"), content=b"{}")
    assert wrong.status_code == 404 and len(quick.received) == 1
    liar = hoster(world, "Liar Hosting")
    assert liar.abuse_email is None and liar.entry()["abuse_api"] == liar.abuse_api


def test_the_clock_only_moves_forward(clock: MovingClock) -> None:
    start = clock()
    assert clock.advance(hours=3) == start + timedelta(hours=3) == clock()
    with pytest.raises(ValueError, match="does not go back"):
        clock.set(start)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="after the removal"):
        removes_then_reuploads(after_days=0.01)
