"""Reports from the public: one or more URLs, where they were seen, an optional description and
an optional contact (anonymous allowed; never a file). Each URL is checked and normalised
(``urls.check``) and joins the case of that URL, made on its first report in state ``new``
(what the pipeline claims). The reporter gets a reference and a status token, shown once: only
the token's SHA-256 is kept, and through it the reporter sees one of three words (received,
assessed, action taken), nothing more.

A report is recorded whole or not at all, in one transaction with its audit event. Two reports
of the same new URL at once end in one case: the case is inserted unless its URL's key is held
(``ON CONFLICT DO NOTHING``, which waits for the other transaction on both SQLite and
PostgreSQL), then read. Reports are limited per client address (``rate_limit.AddressLimit``).

A report that joins a closed case (routed, unreachable) makes it ``new`` again: the URL is
crawled again and what is found routed (no one closes a URL for good by reporting it first).
"""

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hashguard.errors import Invalid, NotFound, TooLarge
from hashguard.hotline.model import PUBLIC_SOURCE, CaseState, PublicStatus
from hashguard.hotline.urls import ReportedUrl, check_all
from hashguard.net.fetch import Network
from hashguard.rate_limit import AddressLimit, RateLimited
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineReportRow,
    HotlineRouteRow,
    utc,
)

ACTOR: Final = "hotline"
MAX_URLS: Final = 20
MAX_SEEN_WHERE: Final = 500
MAX_DESCRIPTION: Final = 4000
MAX_CONTACT: Final = 200
LANGUAGES: Final = ("en", "nl")
CONTACT_PURPOSE: Final = "hotline-contact"
REPORT_PURPOSE: Final = "hotline-report"
# Crockford's base32: no I, L, O or U, so a reference read aloud or copied by hand survives.
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_REFERENCE_LENGTH: Final = 12
_ASSESSED: Final = frozenset({CaseState.ASSESSED, CaseState.ROUTED, CaseState.UNREACHABLE})


class InvalidReport(Invalid):
    """A report that is refused; the message says which field and why."""


class MissingField(InvalidReport):
    """A report without a field it needs (a URL, where they were seen)."""


class TooManyUrls(InvalidReport, TooLarge):
    """More URLs than one report takes."""


class UnknownReport(NotFound):
    """No report has the status token given."""


@dataclass(frozen=True, slots=True)
class Receipt:
    reference: str  # "HR-" and 12 characters: what the reporter quotes
    token: str  # shown once: only its SHA-256 is kept
    cases: tuple[int, ...]  # the case of each URL, in the order given (duplicates dropped)
    urls: tuple[str, ...]  # each URL in its normal form, in that order


def _now() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self,
        engine: Engine,
        *,
        reports_per_hour: int,
        retain: timedelta,
        networks: Sequence[Network] = (),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.retain = retain
        self.networks = tuple(networks)
        self.clock = clock
        self.limit = AddressLimit(reports_per_hour, 3600.0)

    def report(
        self,
        urls: Sequence[str],
        seen_where: str,
        description: str = "",
        contact: str | None = None,
        language: str = "en",
        client: str | None = None,
    ) -> Receipt:
        """Record a report of ``urls`` from the public; its receipt. Raises InvalidUrl naming
        a refused URL, InvalidReport (TooManyUrls) for the other fields, RateLimited when
        ``client`` (the reporter's address; None: not limited) reported too often."""
        token = 0.0
        if client is not None:
            wait, token = self.limit.reserve(client)
            if wait:
                raise RateLimited(f"too many reports from this address; try again in "
                                  f"{wait:.0f} s", wait)  # fmt: skip
        try:
            checked = self._checked(urls, seen_where, description, contact, language)
            with self.engine.begin() as connection:
                return record(
                    connection, checked, source=PUBLIC_SOURCE, seen_where=seen_where.strip(),
                    description=description.strip(), contact=(contact or "").strip() or None,
                    language=language, now=self.clock(), retain=self.retain,
                )  # fmt: skip
        except Exception:  # a report not recorded does not count
            if client is not None:
                self.limit.release(client, token)
            raise

    def _checked(
        self,
        urls: Sequence[str],
        seen_where: str,
        description: str,
        contact: str | None,
        language: str,
    ) -> list[ReportedUrl]:
        if language not in LANGUAGES:
            raise InvalidReport(f"language {language!r}: expected one of {', '.join(LANGUAGES)}")
        if not urls:
            raise MissingField("urls: give at least one URL, starting with https://")
        if len(urls) > MAX_URLS:
            raise TooManyUrls(f"{len(urls)} URLs: a report takes at most {MAX_URLS}")
        if not seen_where.strip():
            raise MissingField("seen_where: say where you saw the URLs (a site, an app, a chat)")
        for name, text, most in (("seen_where", seen_where, MAX_SEEN_WHERE),
                                 ("description", description, MAX_DESCRIPTION),
                                 ("contact", contact or "", MAX_CONTACT)):  # fmt: skip
            if len(text.strip()) > most:
                raise InvalidReport(f"{name} has {len(text.strip())} characters: at most {most} "
                                    "are taken")  # fmt: skip
        return check_all(urls, self.networks)

    def status(self, token: str) -> PublicStatus:
        """What the reporter holding ``token`` may know of the report, from what happened
        since it was made (a URL reported before tells nothing of its earlier reports): action
        taken (a case of it routed with actions since), assessed (every case of it decided
        since), else received. Raises UnknownReport for a token no report has (found by its
        digest, as a known one is)."""
        digest = token_digest(token)
        reports = HotlineReportRow.__table__
        links, cases = HotlineCaseReportRow.__table__, HotlineCaseRow.__table__
        routes = HotlineRouteRow.__table__
        with self.engine.connect() as connection:
            report = connection.execute(
                select(reports.c.id, reports.c.created_at).where(reports.c.token_digest == digest)
            ).one_or_none()
            if report is None:
                raise UnknownReport("no report has this status token: check that it was "
                                    "copied whole")  # fmt: skip
            states = connection.execute(
                select(cases.c.state, cases.c.updated_at)
                .join(links, links.c.case_id == cases.c.id)
                .where(links.c.report_id == report.id)
            ).all()  # fmt: skip
            routed = connection.execute(
                select(routes.c.actions, routes.c.at)
                .join(links, links.c.case_id == routes.c.case_id)
                .where(links.c.report_id == report.id)
            ).all()  # fmt: skip
        made = utc(report.created_at)
        if any(actions and utc(at) >= made for actions, at in routed):
            return PublicStatus.ACTION_TAKEN
        if states and all(state in _ASSESSED and utc(at) >= made for state, at in states):
            return PublicStatus.ASSESSED
        return PublicStatus.RECEIVED


def record(
    connection: Connection,
    urls: Sequence[ReportedUrl],
    *,
    source: str,
    seen_where: str,
    description: str,
    contact: str | None,
    language: str,
    now: datetime,
    retain: timedelta,
    partner_reference: str | None = None,
) -> Receipt:
    """Record a report of ``urls`` (checked already) in the connection's transaction: the
    report, each URL's case (made in state ``new`` unless one holds the URL) and the audit
    event "hotline.report"; its receipt. For a partner's referral too (``source``
    partner:NAME with its ``partner_reference``)."""
    reference, token = new_reference(), new_token()
    report_id = int(connection.execute(insert(HotlineReportRow).values(
        reference=reference, token_digest=token_digest(token), source=source,
        partner_reference=partner_reference, seen_where=seen_where, description=description,
        contact=contact, language=language, created_at=now,
        purpose=REPORT_PURPOSE if contact is None else CONTACT_PURPOSE, retain_until=now + retain,
    )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
    cases: dict[str, tuple[int, bool]] = {}  # url key -> case id, joined
    for reported in sorted(urls, key=lambda u: u.key):  # one order: no deadlock between reports
        case_id = _new_case(connection, reported, now)
        if case_id is None:
            case_id = connection.execute(
                select(HotlineCaseRow.id).where(HotlineCaseRow.url_key == reported.key)
            ).scalar_one()
            _reopen(connection, case_id, now)
            cases[reported.key] = (case_id, True)
        else:
            cases[reported.key] = (case_id, False)
    case_ids = [cases[u.key][0] for u in urls]
    joined = [cases[u.key][1] for u in urls]
    connection.execute(insert(HotlineCaseReportRow),
                       [{"case_id": c, "report_id": report_id} for c in case_ids])  # fmt: skip
    audit.append(connection, ACTOR, "hotline.report", reference,
                 {"reference": reference, "source": source, "urls": len(urls),
                  "cases": case_ids, "joined": joined})  # fmt: skip
    return Receipt(reference, token, tuple(case_ids), tuple(u.url for u in urls))


def _new_case(connection: Connection, reported: ReportedUrl, now: datetime) -> int | None:
    """The id of a new case of ``reported``, or None when a case holds its URL already (one
    being made by another transaction is waited for: the unique key decides)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(HotlineCaseRow)
        .values(
            url=reported.url,
            url_key=reported.key,
            host=reported.host,
            state=CaseState.NEW.value,
            created_at=now,
            updated_at=now,
            attempts=0,
            lease_until=None,
            last_error="",
        )
        .on_conflict_do_nothing(index_elements=["url_key"])
        .returning(HotlineCaseRow.id)
    )
    found = connection.execute(statement).scalar_one_or_none()
    return None if found is None else int(found)


def _reopen(connection: Connection, case_id: int, now: datetime) -> None:
    """A case closed (``routed`` or ``unreachable``) made ``new`` again: reported anew, its
    URL is crawled again and what is decided then routed (a URL reported while it failed, or
    before its material was put up, is not closed for good)."""
    closed = [CaseState.ROUTED.value, CaseState.UNREACHABLE.value]
    connection.execute(
        update(HotlineCaseRow)
        .where(HotlineCaseRow.id == case_id, HotlineCaseRow.state.in_(closed))
        .values(state=CaseState.NEW.value, attempts=0, lease_until=None, last_error="",
                updated_at=now)
    )  # fmt: skip


_MISREAD: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_reference() -> str:
    """A report's reference: "HR-" and 12 characters of Crockford base32 (60 random bits)."""
    return "HR-" + "".join(secrets.choice(_ALPHABET) for _ in range(_REFERENCE_LENGTH))


def new_token() -> str:
    """A status token a person can write down and type: 25 characters of Crockford base32
    (125 random bits) in groups of five, e.g. "7KQ2M-..."."""
    drawn = "".join(secrets.choice(_ALPHABET) for _ in range(25))
    return "-".join(drawn[i : i + 5] for i in range(0, 25, 5))


def token_digest(token: str) -> str:
    """What a report is found by: the SHA-256 (hex) of its status token as typed, read as
    Crockford base32 reads it (case, spaces and dashes ignored; O as 0, I and L as 1)."""
    typed = "".join(token.split()).replace("-", "").upper()
    typed = typed.translate(_MISREAD)
    return hashlib.sha256(typed.encode("utf-8", "replace")).hexdigest()
