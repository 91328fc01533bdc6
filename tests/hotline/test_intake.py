"""The hotline's intake, on SQLite and PostgreSQL: a report's receipt (a reference, a status token
of which only the digest is kept), each URL joining its case (the same URL in other spellings,
from other reports, or from two reports at the same moment: one case), what is refused and that
nothing of a refused report stays, the limit per address, the three words a reporter sees
through a case's life, and the audit event (never the contact)."""

import hashlib
import ipaddress
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from hashguard.errors import NotFound, TooLarge, Unavailable
from hashguard.hotline.intake import Intake, InvalidReport, Receipt, UnknownReport
from hashguard.hotline.model import CaseState, PublicStatus
from hashguard.hotline.urls import InvalidUrl
from hashguard.rate_limit import RateLimited
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineReportRow,
    HotlineRouteRow,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RETAIN = timedelta(days=90)
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def intake(engine: Engine) -> Intake:
    return Intake(engine, reports_per_hour=5, retain=RETAIN, networks=LOOPBACK, clock=lambda: NOW)


def count(engine: Engine, table: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def report_row(engine: Engine, reference: str) -> Any:
    table = HotlineReportRow.__table__
    with engine.connect() as connection:
        return connection.execute(select(table).where(table.c.reference == reference)).one()


def test_a_report_gets_a_reference_and_a_token_of_which_only_the_digest_is_kept(
    intake: Intake, engine: Engine
) -> None:
    receipt = intake.report(
        ["https://site-a.example/page"], "a link in a chat app", "two pictures",
        contact="reporter@example.org", language="nl",
    )  # fmt: skip
    assert re.fullmatch(r"HR-[0-9A-HJKMNP-TV-Z]{12}", receipt.reference)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}", receipt.token)
    assert receipt.urls == ("https://site-a.example/page",)
    row = report_row(engine, receipt.reference)
    typed = receipt.token.replace("-", "")
    assert row.token_digest == hashlib.sha256(typed.encode()).hexdigest()
    assert receipt.token not in json.dumps([str(v) for v in row])
    assert (row.source, row.seen_where, row.description, row.language) == (
        "public", "a link in a chat app", "two pictures", "nl")  # fmt: skip
    assert (row.contact, row.purpose) == ("reporter@example.org", "hotline-contact")
    assert row.retain_until.replace(tzinfo=UTC) == NOW + RETAIN
    with engine.connect() as connection:
        case = connection.execute(select(HotlineCaseRow.__table__)).one()
    assert (case.id, case.url, case.host, case.state) == (
        receipt.cases[0],
        "https://site-a.example/page",
        "site-a.example",
        CaseState.NEW,
    )
    assert intake.status(receipt.token) is PublicStatus.RECEIVED
    # as a person types it back: lower case, spaces for dashes, O for 0, l for 1
    typed = receipt.token.lower().replace("-", " ").replace("0", "O").replace("1", "l")
    assert intake.status(typed) is PublicStatus.RECEIVED


def test_an_anonymous_report_keeps_no_contact(intake: Intake, engine: Engine) -> None:
    receipt = intake.report(["https://site-a.example/"], "a forum", contact="   ")
    row = report_row(engine, receipt.reference)
    assert (row.contact, row.purpose) == (None, "hotline-report")


def test_the_same_url_in_other_spellings_joins_one_case_another_query_is_another(
    intake: Intake, engine: Engine
) -> None:
    first = intake.report(["https://Site-A.example/gallery?id=7"], "a forum")
    again = intake.report(["HTTPS://site-a.example.:443/gallery?id=7#photo"], "an app")
    other = intake.report(["https://site-a.example/gallery?id=8"], "an app")
    assert again.cases == first.cases and other.cases != first.cases
    assert count(engine, HotlineCaseRow) == 2
    assert count(engine, HotlineCaseReportRow) == 3


def test_a_report_of_three_urls_one_reported_before_joins_that_case_and_opens_two(
    intake: Intake, engine: Engine
) -> None:
    before = intake.report(["https://site-b.example/video"], "a chat")
    receipt = intake.report(
        ["https://site-a.example/1", "https://site-b.example/video", "https://site-c.example/",
         "https://SITE-A.example/1"],  # the same URL twice in one report: once
        "a chat",
    )  # fmt: skip
    assert len(receipt.cases) == 3 and receipt.cases[1] == before.cases[0]
    assert len(set(receipt.cases)) == 3 and count(engine, HotlineCaseRow) == 3
    [event] = [e for e in audit.events(engine, limit=100) if e.subject == receipt.reference]
    details = json.loads(event.details)
    assert (event.actor, event.action) == ("hotline", "hotline.report")
    assert details == {"reference": receipt.reference, "source": "public", "urls": 3,
                       "cases": list(receipt.cases), "joined": [False, True, False]}  # fmt: skip


def test_the_audit_event_never_holds_the_contact(intake: Intake, engine: Engine) -> None:
    intake.report(["https://site-a.example/"], "a forum", contact="+31 6 1234 5678")
    assert not any("1234 5678" in e.details for e in audit.events(engine, limit=100))


@pytest.mark.parametrize(
    ("given", "kind", "message"),
    [
        ({"urls": []}, InvalidReport, "urls: give at least one URL, starting with https://"),
        ({"urls": [f"https://s{i}.example/" for i in range(21)]}, TooLarge,
         "21 URLs: a report takes at most 20"),
        ({"seen_where": "  "}, InvalidReport, "seen_where: say where you saw the URLs"),
        ({"seen_where": "x" * 501}, InvalidReport,
         "seen_where has 501 characters: at most 500 are taken"),
        ({"description": "x" * 4001}, InvalidReport,
         "description has 4001 characters: at most 4000 are taken"),
        ({"contact": "x" * 201}, InvalidReport, "contact has 201 characters: at most 200"),
        ({"language": "de"}, InvalidReport, "language 'de': expected one of en, nl"),
        ({"urls": ["https://ok.example/", "https://10.1.2.3/"]}, InvalidUrl,
         "URL 2: 'https://10.1.2.3/' names address 10.1.2.3, which is not public"),
    ],
)  # fmt: skip
def test_a_refused_report_says_why_and_leaves_nothing(
    intake: Intake, engine: Engine, given: dict[str, object], kind: type, message: str
) -> None:
    fields: dict[str, object] = {"urls": ["https://site-a.example/"], "seen_where": "a forum"}
    fields.update(given)
    with pytest.raises(kind) as refused:
        intake.report(**fields)  # type: ignore[arg-type]
    assert message in str(refused.value)
    assert count(engine, HotlineReportRow) == count(engine, HotlineCaseRow) == 0
    assert audit.events(engine, limit=100, action="hotline.report") == []


def race(intake: Intake, url: str, others: tuple[str, str]) -> list[Receipt]:
    """Two reports of ``url`` (each with another URL of its own) let go at the same moment."""
    start = threading.Barrier(2)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def report(other: str) -> None:
        start.wait()
        try:
            receipts.append(intake.report([url, other], "a chat"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=report, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return receipts


def test_two_reports_of_the_same_new_url_at_once_end_in_one_case(
    intake: Intake, engine: Engine
) -> None:
    for round_ in range(5):
        others = (f"https://a-{round_}.example/", f"https://b-{round_}.example/")
        first, second = race(intake, f"https://race-{round_}.example/page", others)
        assert first.cases[0] == second.cases[0]
    assert count(engine, HotlineCaseRow) == 5 * 3  # per race: the URL raced for, and a, b


def test_reports_are_limited_per_address_and_refused_reports_do_not_count(
    engine: Engine,
) -> None:
    intake = Intake(engine, reports_per_hour=2, retain=RETAIN)
    with pytest.raises(InvalidUrl):
        intake.report(["http://localhost/"], "a forum", client="198.51.100.7")
    intake.report(["https://site-a.example/"], "a forum", client="198.51.100.7")
    intake.report(["https://site-b.example/"], "a forum", client="198.51.100.7")
    with pytest.raises(RateLimited) as limited:
        intake.report(["https://site-c.example/"], "a forum", client="198.51.100.7")
    assert isinstance(limited.value, Unavailable)  # the API's 429 with Retry-After
    assert 3000 < limited.value.retry_after <= 3600
    assert str(limited.value).startswith("too many reports from this address; try again in")
    intake.report(["https://site-c.example/"], "a forum", client="203.0.113.9")
    assert count(engine, HotlineReportRow) == 3


def set_state(engine: Engine, case_id: int, state: CaseState) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(HotlineCaseRow).where(HotlineCaseRow.id == case_id).values(state=state.value)
        )


def add_route(engine: Engine, case_id: int, kind: str, actions: list[str]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(HotlineRouteRow).values(
            case_id=case_id, at=NOW, kind=kind, target="hoster-a", actions=actions,
            reason="test"))  # fmt: skip


def test_the_status_words_follow_the_cases_of_the_report(intake: Intake, engine: Engine) -> None:
    receipt = intake.report(["https://site-a.example/", "https://site-b.example/"], "a forum")
    other = intake.report(["https://site-b.example/"], "a chat")
    a, b = receipt.cases
    assert intake.status(receipt.token) is PublicStatus.RECEIVED
    for state in (CaseState.CRAWLING, CaseState.TRIAGED):
        set_state(engine, a, state)
        assert intake.status(receipt.token) is PublicStatus.RECEIVED
    set_state(engine, a, CaseState.ASSESSED)
    assert intake.status(receipt.token) is PublicStatus.RECEIVED  # b is not decided yet
    set_state(engine, b, CaseState.UNREACHABLE)
    assert intake.status(receipt.token) is PublicStatus.ASSESSED
    assert intake.status(other.token) is PublicStatus.ASSESSED
    set_state(engine, a, CaseState.ROUTED)
    add_route(engine, a, "none", [])  # routed, nothing to do: no action taken
    assert intake.status(receipt.token) is PublicStatus.ASSESSED
    add_route(engine, a, "domestic", ["notice", "police"])
    assert intake.status(receipt.token) is PublicStatus.ACTION_TAKEN
    assert intake.status(other.token) is PublicStatus.ASSESSED  # b had no action


def test_a_report_joining_a_case_decided_before_says_only_what_happened_since(
    engine: Engine,
) -> None:
    now = [NOW]
    intake = Intake(engine, reports_per_hour=5, retain=RETAIN, clock=lambda: now[0])
    first = intake.report(["https://site-a.example/"], "a forum")
    [case] = first.cases
    with engine.begin() as connection:
        connection.execute(update(HotlineCaseRow).where(HotlineCaseRow.id == case).values(
            state=CaseState.ROUTED.value, updated_at=NOW + timedelta(hours=1)))  # fmt: skip
        connection.execute(insert(HotlineRouteRow).values(
            case_id=case, at=NOW + timedelta(hours=1), kind="domestic", target="hoster-a",
            actions=["notice", "police"], reason="test"))  # fmt: skip
    now[0] = NOW + timedelta(hours=2)
    later = intake.report(["https://SITE-A.example"], "a chat")
    assert later.cases == first.cases
    assert intake.status(first.token) is PublicStatus.ACTION_TAKEN
    assert intake.status(later.token) is PublicStatus.RECEIVED  # not the earlier report's news
    with engine.begin() as connection:
        connection.execute(insert(HotlineRouteRow).values(
            case_id=case, at=NOW + timedelta(hours=3), kind="domestic", target="hoster-a",
            actions=["notice"], reason="test"))  # fmt: skip
    assert intake.status(later.token) is PublicStatus.ACTION_TAKEN


def test_an_unknown_token_is_not_found_in_one_sentence(intake: Intake) -> None:
    receipt = intake.report(["https://site-a.example/"], "a forum")
    for token in ("", "not-a-token", receipt.token[:-1], receipt.reference, "\ud800"):
        with pytest.raises(UnknownReport) as unknown:
            intake.status(token)
        assert isinstance(unknown.value, NotFound)
        assert (
            str(unknown.value) == "no report has this status token: check that it was copied whole"
        )
