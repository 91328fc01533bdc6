"""The hotline put together: one object the service, the pages and the CLI use.

``HotlineSettings`` is what an operator sets (``hashguard serve``'s hotline section, as plain
values); ``Hotline`` reads the files it names (vocabulary, routing rules, partners, hosters, IP
databases: each error names its file and line, before anything starts; a vocabulary without
legality rules for the hotline's country is refused too) and builds the parts:
the crawler's fetcher (any public host, redirects across hosts checked again, through the
configured resolver), the tracer, intake, the desk's reads, triage, assessment, referrals and
the pipeline. ``start()`` runs the pipeline's workers and outbox; ``report()`` wakes them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hashguard.hotline import hosters, partners, routing, vocabulary
from hashguard.hotline.assessment import Assessments
from hashguard.hotline.cases import Cases
from hashguard.hotline.crawl import Crawl, CrawlLimits, crawl
from hashguard.hotline.intake import Intake, Receipt
from hashguard.hotline.ipdb import IpDatabase, open_database
from hashguard.hotline.model import OutboxKind
from hashguard.hotline.pipeline import INTERNATIONAL, POLICE, Pipeline
from hashguard.hotline.referrals import Referrals
from hashguard.hotline.trace import Trace, Tracer
from hashguard.hotline.triage import CurrentMatcher, Triage
from hashguard.matching.matcher import Matcher
from hashguard.media.budget import DecodeBudget
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.net.dns import DnsResolver
from hashguard.net.fetch import Network, UrlFetcher
from hashguard.store.lists import ListStore

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HotlineSettings:
    country: str  # ISO 3166 alpha-2: the hotline's home
    name: str = "hashguard hotline"
    four_eyes: bool = False
    illegal_list: str = "hotline-illegal"
    not_illegal_list: str = "hotline-not-illegal"
    known_lists: tuple[str, ...] = ()
    reports_per_hour: int = 20
    contact_days: int = 90
    resolver: tuple[str, ...] = ()  # nameservers; none: the system's
    ip_databases: tuple[Path, ...] = ()
    hosters: Path | None = None
    partners: Path | None = None
    vocabulary: Path | None = None
    routing: Path | None = None
    crawlers: int = 2
    crawl_timeout: float = 10.0
    networks: tuple[Network, ...] = ()  # private networks the crawler may reach (tests, intranets)
    media_limits: Limits = DEFAULT_LIMITS
    max_media_bytes: int = 64 * MiB
    # Crawled images' derived PDQ hashes (crops), listed with the item when it is assessed.
    derived_hashes: bool = True


def _now() -> datetime:
    return datetime.now(UTC)


class Hotline:
    def __init__(
        self,
        engine: Engine,
        lists: ListStore,
        settings: HotlineSettings,
        matcher: Callable[[], Matcher] | None = None,
        clock: Callable[[], datetime] = _now,
        *,
        decodes: DecodeBudget,
    ) -> None:
        """``matcher``: the current Matcher over every list (the service's); without it, one
        of the hotline's own lists and known lists, brought up to the store at each use.
        ``decodes``: the decode budget the crawler's decodes take their share of (the
        server's, shared with its routes; a command's own, of the same settings)."""
        self.engine = engine
        self.decodes = decodes
        self.settings = settings
        self.country = settings.country.upper()
        self.contact_days = settings.contact_days
        # The operator's files, read now: a mistake stops the start with its file and line.
        self.vocabulary = (vocabulary.load(settings.vocabulary) if settings.vocabulary
                           else vocabulary.default())  # fmt: skip
        if self.country not in self.vocabulary.rules:  # else nothing would be illegal at home
            name = settings.vocabulary or "the built-in vocabulary"
            raise vocabulary.VocabularyError(
                f"{name} has no legality rules for {self.country}, the hotline's country: "
                'add them (docs/formats.md, "Hotline vocabulary")')  # fmt: skip
        self.rules = routing.load_rules(settings.routing) if settings.routing else routing.DEFAULT
        self.partners = (partners.load(settings.partners, settings.networks) if settings.partners
                         else partners.PartnerRegistry())  # fmt: skip
        self.hosters = (hosters.load(settings.hosters) if settings.hosters
                        else hosters.HosterRegistry())  # fmt: skip
        self.databases: list[IpDatabase] = [open_database(p) for p in settings.ip_databases]
        self.resolver = DnsResolver(settings.resolver, timeout=min(5.0, settings.crawl_timeout))
        self.tracer = Tracer(self.resolver, self.databases, self.hosters, clock=clock)
        self.fetcher = UrlFetcher(
            (), settings.networks, settings.crawl_timeout, settings.max_media_bytes,
            resolve=self.resolver.addresses, any_host=True, cross_host_redirects=True,
            max_redirects=5,
        )  # fmt: skip
        self.limits = CrawlLimits(media_bytes=settings.max_media_bytes,
                                  timeout=settings.crawl_timeout,
                                  media=settings.media_limits)  # fmt: skip
        retain = timedelta(days=settings.contact_days)
        self.intake = Intake(engine, reports_per_hour=settings.reports_per_hour, retain=retain,
                             networks=settings.networks, clock=clock)  # fmt: skip
        self.cases = Cases(engine)
        self._own_matcher: CurrentMatcher | None = None
        if matcher is None:
            names = [settings.illegal_list, settings.not_illegal_list, *settings.known_lists]
            matcher = self._own_matcher = CurrentMatcher(lists, names)
        self.triage = Triage(
            lists, matcher, illegal_list=settings.illegal_list,
            not_illegal_list=settings.not_illegal_list, known_lists=settings.known_lists,
            legality=partial(self.vocabulary.legality, home=self.country), home=self.country,
        )  # fmt: skip
        self.pipeline = Pipeline(
            engine, crawl=self.crawl_reported, tracer=self.tracer, route=self.route,
            triage=self.triage, home=self.country,
            referral_payload=partial(partners.referral_payload, hotline=settings.name,
                                     country=self.country),
            destination_of=self.destination_of, clock=clock, threads=settings.crawlers,
        )  # fmt: skip
        self.assessments = Assessments(
            engine, lists, self.triage, self.vocabulary, home=self.country,
            four_eyes=settings.four_eyes, organisation=settings.name,
            assessed=lambda case_id: self.pipeline.wake(),
        )  # fmt: skip
        self.referrals = Referrals(engine, self.triage, retain=retain,
                                   networks=settings.networks, clock=clock)  # fmt: skip

    # --- what the pipeline is given -------------------------------------------------------

    def crawl(self, url: str) -> Crawl:
        """A crawl of ``url`` (a re-check's: no derived hashes)."""
        return crawl(url, self.fetcher, self.limits, decodes=self.decodes)

    def crawl_reported(self, url: str) -> Crawl:
        """The crawl of a reported URL: its images' derived hashes too, when the deployment
        lists them (``derived_hashes``)."""
        return crawl(url, self.fetcher, self.limits, decodes=self.decodes,
                     derived=self.settings.derived_hashes)  # fmt: skip

    def trace(self, url: str) -> Trace:
        return self.tracer.trace(url)

    def route(self, trace: Any, legality: Any) -> routing.Route:
        return routing.route(trace, legality, self.country, self.partners, self.rules)

    def destination_of(self, kind: OutboxKind, target: str) -> Any:
        """Where an outbox message goes: a partner by name, the police or international
        endpoint (None when not configured: the message waits, its reason recorded). The
        international endpoint is named by routing as the partners file names it."""
        if kind in (OutboxKind.REFERRAL, OutboxKind.STATUS):
            return self.partners.partner(target)
        if kind is OutboxKind.POLICE and target == POLICE:
            return self.partners.police
        international = self.partners.international
        if kind is OutboxKind.INTERNATIONAL and international is not None:
            return international if target in (INTERNATIONAL, international.name) else None
        return None

    # --- what the edges call --------------------------------------------------------------

    def report(self, urls: Sequence[str], seen_where: str, description: str = "",
               contact: str | None = None, language: str = "en",
               client: str | None = None) -> Receipt:  # fmt: skip
        """A public report (``Intake.report``); the crawlers are woken for it."""
        receipt = self.intake.report(urls, seen_where, description, contact, language, client)
        self.pipeline.wake()
        return receipt

    def start(self) -> None:
        self.pipeline.start()

    def stop(self) -> None:
        self.pipeline.stop()
        if self._own_matcher is not None:
            self._own_matcher.close()
