"""Routing a traced URL by the ordered rules: every branch of the default (home, partner country,
elsewhere, unknown, CDN, nothing illegal), rules of one's own, and rule files' errors."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hashguard.errors import Invalid
from hashguard.hotline.partners import Endpoint, Partner, PartnerRegistry
from hashguard.hotline.routing import DEFAULT, Route, RoutingRulesError, load_rules, route

from support.paths import REPOSITORY


@dataclass(frozen=True)
class Hoster:
    name: str
    country: str | None = None
    abuse_email: str | None = None


@dataclass(frozen=True)
class Trace:
    host: str = "www.site-a.test"
    country: str | None = "NL"
    cdn: bool = False
    hoster: Hoster | None = None
    unresolved: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "country": self.country, "cdn": self.cdn}


PARTNERS = PartnerRegistry(
    (Partner("Hotline DE", ("DE", "AT"), "https://de.test", None),
     Partner("Hotline BE", ("BE",), "https://be.test", None)),
    police=Endpoint("Police NL", "https://police.test/reports", None),
    international=Endpoint("International", "https://int.test/reports", None),
)  # fmt: skip
ILLEGAL_EVERYWHERE = {"NL": "illegal", "DE": "illegal", "BE": "illegal", "US": "illegal"}
NOWHERE = dict.fromkeys(ILLEGAL_EVERYWHERE, "not-illegal")
ONLY_AT_HOME = NOWHERE | {"NL": "illegal"}
ONLY_IN_DE = NOWHERE | {"DE": "illegal"}


def test_hosted_at_home_and_illegal_there_is_a_notice_to_the_hoster_and_a_police_report() -> None:
    got = route(Trace(hoster=Hoster("Hoster A", "NL", "abuse@a.test")), ILLEGAL_EVERYWHERE, "NL",
                PARTNERS)  # fmt: skip
    assert got == Route("domestic", "Hoster A", ("notice", "police"),
                        "Hosted in NL, the hotline's own country, and illegal there: a notice "
                        "to Hoster A and a report to the police.")  # fmt: skip


def test_behind_a_cdn_at_home_the_notice_goes_to_the_cdn_and_the_reason_says_so() -> None:
    trace = Trace(cdn=True, hoster=Hoster("Edge CDN", "NL"))
    got = route(trace, ILLEGAL_EVERYWHERE, "nl", PARTNERS)
    assert (got.kind, got.target, got.actions) == ("domestic", "Edge CDN", ("notice", "police"))
    assert got.reason.startswith("Hosted behind a CDN in NL")


def test_a_hoster_the_registry_does_not_know_is_named_by_the_host() -> None:
    got = route(Trace(host="img.site-b.test", country="nl"), ONLY_AT_HOME, "NL", PARTNERS)
    assert (got.kind, got.target) == ("domestic", "img.site-b.test")


@pytest.mark.parametrize("legality", [ILLEGAL_EVERYWHERE | {"AT": "illegal"}, ONLY_AT_HOME,
                                      NOWHERE | {"AT": "illegal"}])  # fmt: skip
def test_hosted_where_a_partner_works_and_illegal_there_or_at_home_is_a_referral(
    legality: dict[str, str],
) -> None:
    got = route(Trace(country="AT", hoster=Hoster("Hoster AT", "AT")), legality, "NL", PARTNERS)
    assert got == Route("partner", "Hotline DE", ("referral",),
                        "Hosted in AT, where the partner hotline Hotline DE works, and illegal "
                        "there or here: referred to it.")  # fmt: skip


def test_hosted_where_no_partner_works_and_illegal_at_home_goes_to_the_international_endpoint(
) -> None:  # fmt: skip
    got = route(Trace(country="US", cdn=True), ILLEGAL_EVERYWHERE, "NL", PARTNERS)
    assert got == Route("international", "International", ("international",),
                        "Hosted behind a CDN in US, where no partner hotline works, and illegal "
                        "in NL: reported to the international endpoint International.")  # fmt: skip


def test_without_an_international_endpoint_an_analyst_routes_it() -> None:
    got = route(Trace(country="US"), ILLEGAL_EVERYWHERE, "NL", PartnerRegistry(PARTNERS.partners))
    assert (got.kind, got.target, got.actions) == ("none", "", ())
    assert "none is configured: an analyst must route it" in got.reason


@pytest.mark.parametrize("country", ["NL", "DE", "US", None])
def test_nothing_illegal_is_routed_nowhere(country: str | None) -> None:
    got = route(Trace(country=country), NOWHERE, "NL", PARTNERS)
    assert got == Route("none", "", (), "No item is illegal in any country of the rules table: "
                        "nothing to route.")  # fmt: skip


def test_an_unknown_hosting_country_is_left_to_an_analyst_saying_what_is_unresolved() -> None:
    trace = Trace(host="gone.test", country=None, unresolved=("gone.test: no such domain",))
    got = route(trace, ILLEGAL_EVERYWHERE, "NL", PARTNERS)
    assert got == Route("none", "", (), "The hosting country of gone.test is unknown (gone.test: "
                        "no such domain): an analyst must route it.")  # fmt: skip


def test_illegal_only_outside_home_and_the_hosting_country_matches_no_rule() -> None:
    got = route(Trace(country="US"), ONLY_IN_DE, "NL", PARTNERS)
    assert got.kind == "none"
    assert got.reason == ("No routing rule applies (hosted: elsewhere; illegal: anywhere): an "
                          "analyst must route it.")  # fmt: skip


def test_a_legality_without_the_home_country_is_refused() -> None:
    with pytest.raises(Invalid, match="no legality for the home country SE"):
        route(Trace(), ILLEGAL_EVERYWHERE, "SE", PARTNERS)


def test_the_sample_file_is_the_built_in_default() -> None:
    assert load_rules(REPOSITORY / "examples" / "hotline-routing.toml") == DEFAULT


OWN = """\
[[rule]]
hosted = ["unknown"]
illegal = ["home"]
route = "international"
actions = ["international"]
because = "the hosting country of {host} is unknown: to {target}"

[[rule]]
cdn = true
illegal = ["anywhere"]
route = "none"
because = "behind a CDN: the analyst asks the CDN first"
"""


def test_rules_of_ones_own_are_applied_in_order(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(OWN)
    rules = load_rules(path)
    unknown = route(Trace(country=None), ILLEGAL_EVERYWHERE, "NL", PARTNERS, rules)
    assert unknown == Route("international", "International", ("international",),
                            "The hosting country of www.site-a.test is unknown: to "
                            "International.")  # fmt: skip
    cdn = route(Trace(cdn=True), ILLEGAL_EVERYWHERE, "NL", PARTNERS, rules)
    assert cdn == Route("none", "", (), "Behind a CDN: the analyst asks the CDN first.")
    neither = route(Trace(), ILLEGAL_EVERYWHERE, "NL", PARTNERS, rules)
    assert neither.reason.startswith("No routing rule applies (hosted: home;")


BROKEN = [
    (OWN.replace('route = "none"', 'route = "nowhere"'),
     "line 11: rule 2: route: expected one of domestic, partner, international, none, got "
     "'nowhere'"),
    (OWN.replace('hosted = ["unknown"]', 'hosted = ["abroad"]'),
     "line 2: rule 1: hosted: unknown 'abroad' (one of: home, partner, elsewhere, unknown)"),
    (OWN.replace('illegal = ["anywhere"]', 'illegal = "anywhere"'),
     "line 10: rule 2: illegal: expected a list of names"),
    (OWN.replace("cdn = true", 'cdn = "yes"'),
     "line 9: rule 2: cdn: expected true or false (or leave it out: either)"),
    (OWN.replace('actions = ["international"]', 'actions = ["email"]'),
     "line 5: rule 1: actions: expected a list of notice, police, referral, international"),
    (OWN.replace('route = "none"', 'route = "none"\nactions = ["notice"]'),
     "line 12: rule 2: a route none takes no actions"),
    (OWN.replace('route = "international"', 'route = "partner"'),
     'line 2: rule 1: a partner route needs hosted = ["partner"]'),
    (OWN.replace("{target}", "{hoster}"),
     "line 6: rule 1: because: unknown placeholder {hoster} (the placeholders: country, home, "
     "target, host, cdn, unresolved)"),
    (OWN.replace('because = "behind a CDN: the analyst asks the CDN first"', ""),
     "line 8: rule 2: because: expected the reason, a sentence"),
    (OWN.replace("cdn = true", "cdn = true\nwhen = 1"),
     "line 10: rule 2: unknown key 'when'"),
    ("home = \"NL\"\n" + OWN, "line 1: unknown key 'home' (expected [[rule]] tables)"),
    ("", "no rules: expected [[rule]] tables"),
    (OWN.replace("cdn = true", "cdn = tru"), "not valid TOML: "),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_a_bad_rules_file_is_refused_naming_file_and_line(tmp_path: Path, text: str,
                                                          message: str) -> None:  # fmt: skip
    path = tmp_path / "routing.toml"
    path.write_text(text)
    with pytest.raises(RoutingRulesError) as refused:
        load_rules(path)
    assert str(refused.value).startswith(str(path))
    assert message in str(refused.value)
