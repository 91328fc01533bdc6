"""Derived hashes in the hotline, on SQLite and PostgreSQL: a real website on loopback serves a
generated image and, elsewhere, its 10 % centre crop. The crawl hashes the image's crops in
memory; its assessment lists them as entries of the same item (same reference, labelled
``derived:crop-10``, ...); the crop reported later is triaged without an analyst viewing it, and
what goes to the hoster carries no derived hash; contesting the derived entry takes that entry,
withdrawing the assessment's reference takes every entry of the item."""

import ipaddress
from typing import Any

from PIL import Image
from sqlalchemy import Engine, select

from hashguard.hotline.assessment import Assessments
from hashguard.hotline.crawl import crawl
from hashguard.hotline.hashes import derived_of, signal_hashes
from hashguard.hotline.model import ItemState
from hashguard.hotline.pipeline import Pipeline
from hashguard.hotline.routing import Route
from hashguard.hotline.triage import CurrentMatcher, Triage, query_of
from hashguard.hotline.vocabulary import default
from hashguard.lists.model import ChangeKind, EntryStatus
from hashguard.lists.records import Withdrawal
from hashguard.media.synthetic import encode, scene
from hashguard.net.fetch import UrlFetcher
from hashguard.signals.derived import CROPS
from hashguard.store.lists import ListStore
from hashguard.store.tables import HotlineItemRow, TakedownNoticeRow

from support.decoding import servers_decodes
from support.hotline_items import BASELINE, Tracer, new_case
from support.loopback import Loopback

ILLEGAL_LIST = "hotline-illegal"
PICTURE = scene(61, 800, 600)


def _crop_10(image: Image.Image) -> bytes:
    width, height = image.size
    return encode(image.crop((width // 10, height // 10, width - width // 10,
                              height - height // 10)))  # fmt: skip


IMAGES = {"/full.jpg": encode(PICTURE), "/cropped.jpg": _crop_10(PICTURE)}


def website(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    if path in IMAGES:
        return 200, "image/jpeg", IMAGES[path]
    return 404, "text/plain", b"not here"


def route(trace: Any, legality: Any) -> Route:
    return Route("domestic", "hoster-nl", ("notice",), "hosted at home")


def parts(engine: Engine, derived: bool) -> tuple[ListStore, Triage, Pipeline, Assessments]:
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, (ILLEGAL_LIST, "hotline-not-illegal")))
    fetcher = UrlFetcher((), networks=[ipaddress.ip_network("127.0.0.0/8")], any_host=True)
    decodes = servers_decodes()
    pipeline = Pipeline(engine, crawl=lambda url: crawl(url, fetcher, decodes=decodes,
                                                        derived=derived),
                        tracer=Tracer(), route=route, triage=triage, home="NL",
                        referral_payload=lambda *args: {})  # fmt: skip
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False,
                       organisation="meldpunt")  # fmt: skip
    return lists, triage, pipeline, desk


def the_item(engine: Engine, case_id: int) -> Any:
    table = HotlineItemRow.__table__
    with engine.connect() as connection:
        return connection.execute(select(table).where(table.c.case_id == case_id)).one()


def test_derived_entries_are_listed_and_a_crop_is_triaged_by_them(engine: Engine) -> None:
    site = Loopback(website)
    lists, triage, pipeline, desk = parts(engine, derived=True)
    try:
        full = new_case(engine, site.url + "/full.jpg")
        assert pipeline.run_once(1) == 1
        item = the_item(engine, full)
        assert item.state == ItemState.QUEUED.value
        derived = derived_of(item.hashes)
        assert "crop-10" in derived and set(derived) <= set(CROPS)
        assert set(signal_hashes(item.hashes)) == {"pdq", "md5", "sha1", "sha256"}
        assert sorted(hashed.name for hashed in query_of(item.hashes)) == [
            "md5",
            "pdq",
            "sha1",
            "sha256",
        ]  # derived hashes are listed, never asked

        assessment = desk.assess(item.id, BASELINE, "ana")
        labels = {f"{group}:{value}" for group, value in BASELINE.items()}
        reference = f"assessment:{assessment.id}"
        for name, value in derived.items():
            entry = lists.entry(ILLEGAL_LIST, "pdq", value)
            assert entry.labels == labels | {f"derived:{name}"}
            assert [s.reference for s in entry.provenance.sources] == [reference]
        own = lists.entry(ILLEGAL_LIST, "pdq", item.hashes["pdq"])
        assert own.labels == labels  # the image's own hash is no derived entry

        # The crop, reported at another URL, is decided by the derived entry: nobody views it.
        cropped = new_case(engine, site.url + "/cropped.jpg")
        assert pipeline.run_once() == 2  # the assessed case routed, the new one crawled
        copy = the_item(engine, cropped)
        assert copy.state == ItemState.AUTO.value and copy.assessment_id == assessment.id
        matched = lists.entry_by_id(ILLEGAL_LIST, copy.triage["entry"])
        assert "derived:crop-10" in matched.labels
    finally:
        site.close()

    # What goes to the hoster names the item's hashes, never its derived ones.
    notices = TakedownNoticeRow.__table__
    with engine.connect() as connection:
        [items] = connection.execute(
            select(notices.c["items"]).where(notices.c.case_id == cropped)
        ).scalars()
    assert [sorted(i["hashes"]) for i in items] == [["md5", "pdq", "sha1", "sha256"]]

    # A false positive on the derived entry contests that entry: the crop is no longer
    # decided by it, and the item's other entries stay.
    lists.change(ILLEGAL_LIST, ChangeKind.CONTEST, "pdq", derived["crop-10"],
                 reason="false positive", actor="reviewer")  # fmt: skip
    assert triage.decide(copy.hashes).state is ItemState.QUEUED
    others = [lists.entry(ILLEGAL_LIST, "pdq", v) for n, v in derived.items() if n != "crop-10"]
    assert all(entry.status is EntryStatus.ACTIVE for entry in others)

    # Withdrawing the assessment's reference takes every entry of the item, derived or not
    # (the contested one stays contested: the owner's decision; it matches nothing either).
    lists.apply(ILLEGAL_LIST, [Withdrawal(reference, reason="assessment withdrawn")], "hotline")
    values = [*signal_hashes(item.hashes).items(), *(("pdq", v) for v in derived.values())]
    statuses = {value: lists.entry(ILLEGAL_LIST, signal, value).status for signal, value in values}
    assert statuses.pop(derived["crop-10"]) is EntryStatus.CONTESTED
    assert set(statuses.values()) == {EntryStatus.DELETED}
    assert triage.decide(item.hashes).state is ItemState.QUEUED


def test_without_derived_hashes_only_the_items_own_hashes_are_listed(engine: Engine) -> None:
    site = Loopback(website)
    lists, _, pipeline, desk = parts(engine, derived=False)
    try:
        full = new_case(engine, site.url + "/full.jpg")
        assert pipeline.run_once(1) == 1
    finally:
        site.close()
    item = the_item(engine, full)
    assert derived_of(item.hashes) == {}
    assert set(item.hashes) == {"pdq", "md5", "sha1", "sha256", "stability"}
    assert set(item.hashes["stability"]) == {"pdq"}  # the item's own hash only
    desk.assess(item.id, BASELINE, "ana")
    _, entries = lists.entries(ILLEGAL_LIST)
    assert sorted(entry.signal for entry in entries) == ["md5", "pdq", "sha1", "sha256"]
