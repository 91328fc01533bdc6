"""The partner registry (files, their errors' lines, key files), the referral a partner receives
(built, checked on the receiving side, refused field by field)."""

import copy
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hashguard.hotline.partners import (
    MAX_ITEMS,
    Partner,
    PartnerFileError,
    PartnerKeyError,
    ReferralError,
    check_referral,
    load,
    read_key,
    referral_payload,
)
from hashguard.hotline.routing import Route

from support.paths import REPOSITORY

PDQ = "58a32d55a9b1a5d8e5c1e1b0c3b2a1f0e4d3c2b1a0f9e8d7c6b5a4f3e2d1cecf"
MD5 = hashlib.md5(b"benign sample\n").hexdigest()


@dataclass(frozen=True)
class Trace:
    host: str = "img.site-b.test"
    country: str | None = "DE"
    cdn: bool = False
    hoster: None = None
    unresolved: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"url": f"https://{self.host}/", "host": self.host, "country": self.country,
                "cdn": self.cdn, "databases": ["ip2asn 2026-11-30"]}  # fmt: skip


ROUTE = Route("partner", "Hotline DE", ("referral",), "Hosted in DE, where the partner hotline "
              "Hotline DE works, and illegal there or here: referred to it.")  # fmt: skip


def item(number: int = 1, **extra: Any) -> dict[str, Any]:
    return {"url": f"https://img.site-b.test/{number}.jpg",
            "hashes": {"pdq": PDQ.upper(), "md5": MD5},
            "labels": {"iccam": "baseline", "age": "prepubescent", "industry": "A1",
                       "depiction": "real"},
            "legality": {"NL": "illegal", "DE": "illegal"},
            "assessment": f"A-{number:06d}", **extra}  # fmt: skip


def payload(items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return referral_payload("https://site-b.test/gallery", items or [item()], Trace(), ROUTE,
                            "HL-2026-000123", hotline="Hotline NL", country="NL")  # fmt: skip


def test_a_referral_carries_the_listed_fields_and_nothing_else() -> None:
    made = payload([item(1, content="aGVsbG8=", reporter="someone@example.test"), item(2)])
    assert set(made) == {"version", "referral", "from", "url", "items", "trace", "reason"}
    assert made["from"] == {"hotline": "Hotline NL", "country": "NL", "reference": "HL-2026-000123"}
    assert set(made["items"][0]) == {"url", "hashes", "labels", "legality", "assessment"}
    assert "aGVsbG8=" not in json.dumps(made) and "someone" not in json.dumps(made)
    assert made["trace"] == Trace().as_json()
    assert made["reason"] == ROUTE.reason
    assert payload()["referral"] != payload()["referral"]  # a random id per referral


def test_a_referral_round_trips_through_the_receivers_check() -> None:
    made = payload([item(1), item(2)])
    received = check_referral(json.loads(json.dumps(made)))
    assert (received.referral, received.hotline, received.country, received.reference) == (
        made["referral"],
        "Hotline NL",
        "NL",
        "HL-2026-000123",
    )
    assert received.url == "https://site-b.test/gallery"
    assert [i.url for i in received.items] == ["https://img.site-b.test/1.jpg",
                                               "https://img.site-b.test/2.jpg"]  # fmt: skip
    assert received.items[0].hashes == {"pdq": PDQ, "md5": MD5}  # canonical: lower case
    assert received.items[1].labels["industry"] == "A1"
    assert received.items[1].legality == {"NL": "illegal", "DE": "illegal"}
    assert received.items[1].assessment == "A-000002"
    assert received.trace == Trace().as_json()
    assert received.reason == ROUTE.reason


def test_a_referral_the_partner_would_refuse_is_not_made() -> None:
    with pytest.raises(ReferralError, match=r"items\[0\]\.hashes\.pdq: "):
        payload([item(hashes={"pdq": "not a hash"})])


def changed(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(payload())
    change(document)
    return document


REFUSED = [
    (lambda d: d.update(content="aGVsbG8="),
     "the referral: unknown field 'content' (the fields: version, referral, from, url, items, "
     "trace, reason)"),
    (lambda d: d.pop("trace"), "the referral: the field 'trace' is missing"),
    (lambda d: d.update(version=2), "version: expected 1, got 2"),
    (lambda d: d.update(referral="1234"),
     "referral: expected a referral id of 32 lower-case hex digits"),
    (lambda d: d["from"].update(reporter="someone"),
     "from: unknown field 'reporter' (the fields: hotline, country, reference)"),
    (lambda d: d["from"].update(country="Netherlands"),
     "from.country: expected a country code (two capital letters)"),
    (lambda d: d["from"].update(hotline=""), "from.hotline: expected text"),
    (lambda d: d["from"].update(reference="x" * 201), "from.reference: longer than 200 characters"),
    (lambda d: d["from"].update(hotline="Hotline\nNL"),
     "from.hotline: control characters in the text"),
    (lambda d: d.update(url="ftp://site-b.test/"),
     "url: expected an http or https URL with a host, got 'ftp://site-b.test/'"),
    (lambda d: d.update(url="https://site-b.test/" + "a" * 2048),
     "url: longer than 2048 characters"),
    (lambda d: d.update(url="https://user:secret@site-b.test/"),
     "url: a URL with a user name or password"),
    (lambda d: d.update(items=[]), "items: expected a list of at least one item"),
    (lambda d: d.update(items=[d["items"][0]] * (MAX_ITEMS + 1)),
     "items: 501 items, at most 500 in one referral"),
    (lambda d: d["items"][0].update(bytes="aGVsbG8="),
     "items[0]: unknown field 'bytes' (the fields: url, hashes, labels, legality, assessment)"),
    (lambda d: d["items"][0].pop("assessment"), "items[0]: the field 'assessment' is missing"),
    (lambda d: d["items"][0].update(url="https://site-b.test/a b.jpg"),
     "items[0].url: spaces or control characters in the URL"),
    (lambda d: d["items"][0].update(hashes={}),
     "items[0].hashes: expected an object of signal -> hash"),
    (lambda d: d["items"][0]["hashes"].update(photodna="00"), "items[0].hashes.photodna: "),
    (lambda d: d["items"][0]["hashes"].update(md5=MD5[:-1]), "items[0].hashes.md5: "),
    (lambda d: d["items"][0]["labels"].update(age="very young"),
     "items[0].labels.age: expected a label (letters, digits and -, at most 32)"),
    (lambda d: d["items"][0]["legality"].update(NL="maybe"),
     'items[0].legality.NL: expected a country code and "illegal" or "not-illegal"'),
    (lambda d: d["items"][0]["legality"].update(nl="illegal"),
     'items[0].legality.nl: expected a country code and "illegal" or "not-illegal"'),
    (lambda d: d.update(trace=["a"]), "trace: expected the hosting trace, an object"),
    (lambda d: d.update(trace={"notes": "x" * 70_000}), "trace: more than 64 KiB"),
    # what the desk's pages show of a trace is of the kind they show
    (lambda d: d["trace"].update(addresses=5), "trace.addresses: expected a list"),
    (lambda d: d["trace"].update(dns={"cnames": 5}), "trace.dns.cnames: expected a list"),
    (lambda d: d["trace"].update(databases=5), "trace.databases: expected a list"),
    (lambda d: d["trace"].update(unresolved=[["a"]]), "trace.unresolved[0]: expected text"),
    (lambda d: d["trace"].update(addresses=[{"address": "192.0.2.1", "asn": True}]),
     "trace.addresses[0].asn: expected a whole number"),
    (lambda d: d["trace"].update(hoster=["Hoster B"]), "trace.hoster: expected an object"),
    (lambda d: d.update(reason="x" * 1001), "reason: longer than 1000 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), REFUSED)
def test_the_receiver_refuses_each_bad_field_by_name(change: Any, message: str) -> None:
    with pytest.raises(ReferralError) as refused:
        check_referral(changed(change))
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize("document", [None, [], "referral", 1])
def test_the_receiver_refuses_what_is_not_an_object(document: Any) -> None:
    with pytest.raises(ReferralError, match="the referral: expected an object"):
        check_referral(document)


def test_the_sample_partners_file_loads() -> None:
    path = REPOSITORY / "examples" / "hotline-partners.toml"
    registry = load(path)
    de = registry.for_country("at")
    assert de == Partner("Hotline Example DE", ("DE", "AT"), "https://hotline-de.example/",
                         path.parent / "keys" / "hotline-de.key")  # fmt: skip
    assert de.post_url == "https://hotline-de.example/v1/hotline/referrals"
    assert registry.for_country("FR") is None and registry.for_country(None) is None
    assert registry.partner("Hotline Example BE").countries == ("BE", "LU")
    assert registry.police is not None and registry.police.name == "National Police Example"
    assert registry.international is not None
    assert registry.international.post_url == "https://international.example/api/reports"


GOOD = """\
[[partner]]
name = "Hotline DE"
countries = ["DE"]
url = "http://127.0.0.1:8081"
key_file = "de.key"

[police]
name = "Police"
url = "https://police.test/reports"
"""

BROKEN = [
    (GOOD + '\n[[partner]]\nname = "Hotline AT"\ncountries = ["AT", "DE"]\nurl = "https://at.test"\n',
     "line 13: DE is covered by Hotline DE already"),
    (GOOD + '\n[[partner]]\nname = "Hotline DE"\ncountries = ["AT"]\nurl = "https://at.test"\n',
     "line 12: a second partner called 'Hotline DE'"),
    (GOOD.replace('countries = ["DE"]', 'countries = ["Germany"]'),
     "line 3: partner 1: 'Germany' is not a country code (two capital letters)"),
    (GOOD.replace('countries = ["DE"]', "countries = []"),
     'line 3: partner 1: expected countries = ["CC", ...] (ISO 3166 alpha-2)'),
    (GOOD.replace('url = "http://127.0.0.1:8081"', 'url = "127.0.0.1:8081"'),
     "line 4: partner 1: url: expected an http or https URL with a host"),
    (GOOD.replace('key_file = "de.key"', 'key = "hg_1_secret"'),
     "line 5: partner 1: unknown key 'key' (name, countries, url, key_file)"),
    (GOOD.replace('name = "Police"', "name = 7"),
     "line 8: [police]: expected name = the organisation's name (1-200 characters)"),
    (GOOD.replace('url = "https://police.test/reports"', 'url = "https://police.test/reports"\n'
                  'email = "x@police.test"'),
     "line 10: [police]: unknown key 'email' (name, url, key_file)"),
    (GOOD + '\n[interpol]\nname = "x"\n',
     "line 11: unknown key 'interpol' (expected [[partner]], [police] and [international])"),
    (GOOD.replace("[[partner]]", "[partner]"), "line 1: expected [[partner]] tables"),
    (GOOD.replace("http://127.0.0.1:8081", "http://hotline-de.test"),
     "line 4: partner 1: url: 'http://hotline-de.test' is plain http: the key would be sent "
     "readable; use https"),
    (GOOD.replace("https://police.test/reports", "http://10.1.2.3/reports"),
     "line 9: [police]: url: 'http://10.1.2.3/reports' is plain http"),
    (GOOD.replace('name = "Hotline DE"', 'name = "Hotline DE'), "not valid TOML: "),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_a_bad_partners_file_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                              message: str) -> None:  # fmt: skip
    path = tmp_path / "partners.toml"
    path.write_text(text)
    with pytest.raises(PartnerFileError) as refused:
        load(path)
    assert str(refused.value).startswith(str(path))
    assert message in str(refused.value)


def test_plain_http_is_taken_to_loopback_and_the_hotlines_own_networks(tmp_path: Path) -> None:
    path = tmp_path / "partners.toml"
    path.write_text(GOOD.replace("https://police.test/reports", "http://10.1.2.3/reports")
                    .replace("http://127.0.0.1:8081", "http://localhost:8081"))  # fmt: skip
    registry = load(path, [ipaddress.ip_network("10.1.2.0/24")])
    assert registry.police is not None and registry.police.url == "http://10.1.2.3/reports"
    assert registry.partners[0].post_url == "http://localhost:8081/v1/hotline/referrals"


def key_file(tmp_path: Path, text: str = "hg_7_partnersecret\n", mode: int = 0o600) -> Path:
    path = tmp_path / "de.key"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_key_is_read_from_an_owner_only_file_beside_the_partners_file(tmp_path: Path) -> None:
    (tmp_path / "partners.toml").write_text(GOOD)
    key_file(tmp_path)
    partner = load(tmp_path / "partners.toml").partners[0]
    assert partner.key_file == tmp_path / "de.key"
    assert partner.key() == "hg_7_partnersecret"


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("hg_7_partnersecret", 0o644, "the key file can be read by every user (mode 0644); make "
                                  "it owner-only: chmod 600"),
    ("hg_7_partnersecret", 0o606, "the key file can be read by every user (mode 0606)"),
    ("", 0o600, "expected one key on one line"),
    ("hg_7 partnersecret", 0o600, "expected one key on one line"),
    ("hg_7\nsecond", 0o600, "expected one key on one line"),
    ("hg_7_ü", 0o600, "the key file is not a key (ASCII text)"),
])  # fmt: skip
def test_a_key_file_that_cannot_be_used_is_refused_without_showing_the_key(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    path = key_file(tmp_path, text, mode)
    with pytest.raises(PartnerKeyError) as refused:
        read_key(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)
    assert "partnersecret" not in str(refused.value)


def test_a_missing_key_file_and_a_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(PartnerKeyError, match=r"absent\.key: cannot read the key file"):
        read_key(tmp_path / "absent.key")
    with pytest.raises(PartnerKeyError, match="not a regular file"):
        read_key(tmp_path)


def test_the_documented_referral_is_one_a_partner_accepts() -> None:
    page = (REPOSITORY / "docs" / "formats.md").read_text()
    section = page.split("## Referrals between hotlines", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    received = check_referral(json.loads(example))
    assert received.items[0].labels["industry"] == "A1"


def test_any_trace_the_receiver_takes_is_shown_on_the_desks_pages() -> None:
    """The trace of a referral taken (each field null, or all of them given) renders in the
    item and case pages' trace section."""
    from datetime import UTC, datetime

    from hashguard.hotline.cases import TraceShown
    from hashguard.web.pages import page

    whole = {"url": "https://img.site-b.test/", "host": "img.site-b.test", "country": "DE",
             "cdn": False, "databases": ["ip2asn 2026-11-30"], "unresolved": ["no AS"],
             "dns": {"name": "img.site-b.test", "cnames": ["edge.cdn.test"]},
             "addresses": [{"address": "192.0.2.7", "asn": 64500, "cdn": False}],
             "hoster": {"name": "Hoster B", "abuse_email": "abuse@hoster-b.test"}}  # fmt: skip
    for trace in (whole, dict.fromkeys(whole), {"dns": {"cnames": None}, "addresses": [None]}):
        taken = check_referral(changed(lambda d, t=trace: d.update(trace=t))).trace
        shown = TraceShown(datetime(2026, 11, 30, tzinfo=UTC), None, None, False, dict(taken))
        html = page("hotline/trace.html", trace=shown).body.decode()
        assert "Hosting trace" in html
