"""Notices and outcomes as XARF for other abuse desks: our signed notices exported as sent, a
verified removal as an outcome report with its evidence; reports from other desks read as one
object, a list or JSON lines, each checked by XARF's schema, errors naming the line and field."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from hashguard.store.tables import TakedownNoticeRow
from hashguard.takedown import notice, signing
from hashguard.takedown.xarf import ReportsInvalid, export_notices, outcome_id, read_reports
from hashguard.transparency import keys

from support.notice_rows import stored_notice

SENDER = notice.Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
AT = datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def sent(engine: Engine, state: str, **values: Any) -> Any:
    """A notice composed and signed, in ``state``, read back as the database gives it."""
    row = stored_notice(engine, **values)
    document = notice.compose(row._mapping, SENDER, KEY, AT)
    table = TakedownNoticeRow.__table__
    with engine.begin() as connection:
        connection.execute(update(TakedownNoticeRow).where(table.c.id == row.id).values(
            state=state, document=signing.dumps(document), sent_at=AT,
            verified_at=AT + timedelta(hours=5) if state == "removed" else None,
        ))  # fmt: skip
        return connection.execute(select(table).where(table.c.id == row.id)).one()


def test_notices_export_as_sent_and_a_verified_removal_as_an_outcome(engine: Engine) -> None:
    queued = stored_notice(engine)
    open_ = sent(engine, "open")
    removed = sent(engine, "removed")
    withdrawn = sent(engine, "withdrawn")
    check = {"url": removed.urls[0], "at": AT + timedelta(hours=5), "purpose": "claimed",
             "outcome": "gone", "status": 404, "detail": "HTTP 404", "hashes": []}  # fmt: skip
    exported = list(export_notices([queued, open_, removed, withdrawn], {removed.id: [check]},
                                   KEY))  # fmt: skip

    assert [r["report_id"] for r in exported] == [open_.report_id, removed.report_id,
                                                  outcome_id(removed.report_id)]  # fmt: skip
    assert exported[0] == json.loads(open_.document)
    outcome = exported[2]
    notice.validate(outcome)
    assert signing.verify(outcome) == keys.public_hex(KEY)
    assert outcome["content_removed"] is True and outcome["urls"] == removed.urls
    assert outcome["hashguard_outcome"] == {
        "notice_report_id": removed.report_id, "removed_at": "2025-03-01T17:05:00Z",
        "evidence": [{**check, "at": "2025-03-01T17:05:00Z"}]}  # fmt: skip
    again = list(export_notices([removed], {removed.id: [check]}, KEY))
    assert again[1]["report_id"] == outcome["report_id"]  # the same outcome at every export
    assert uuid.UUID(outcome["report_id"]).version == 4


def test_an_export_reads_back_as_json_lines_a_list_or_one_report(engine: Engine) -> None:
    removed = sent(engine, "removed")
    exported = list(export_notices([removed]))
    assert "hashguard_signature" not in exported[1]  # no key: the outcome is not signed
    lines = "\n".join(json.dumps(report) for report in exported) + "\n"
    for text in (lines, json.dumps(exported, indent=2)):
        first, second = read_reports(text, "abuse-desk")
        assert (first.source, first.report_id) == ("abuse-desk", removed.report_id)
        assert first.status == "not-removed"
        assert second.status == "removed" and second.url == removed.urls[0]
        assert first.hashes == (removed.items[0]["hashes"],)
        assert first.at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC) and first.reporter == "Meldpunt"
    [single] = read_reports(json.dumps(exported[0]), "abuse-desk")
    assert single.category == "content" and single.type == "csam"


SPAM = {"xarf_version": "4.0.0", "report_id": "0b7e3a52-4c57-4f39-9d7f-2f1d6f5a8e11",
        "timestamp": "2025-02-01T08:00:00Z", "category": "messaging", "type": "spam",
        "reporter": {"org": "Desk", "contact": "abuse@desk.example", "domain": "desk.example"},
        "sender": {"org": "Desk", "contact": "abuse@desk.example", "domain": "desk.example"},
        "source_identifier": "192.0.2.5", "protocol": "smtp", "smtp_from": "a@b.example",
        "source_port": 25}  # fmt: skip


def test_other_desks_reports_are_read_and_without_hashes_or_outcome_say_so() -> None:
    [spam] = read_reports(json.dumps(SPAM), "desk")
    assert (spam.category, spam.type, spam.url, spam.hashes, spam.status) == (
        "messaging",
        "spam",
        None,
        (),
        "reported",
    )
    csam = {**SPAM, "category": "content", "type": "csam", "url": "https://x.example/1.jpg",
            "classification": "B1", "detection_method": "hash_match", "content_removed": False,
            "hash_values": {"MD5": "x", "md5": "D41D8CD98F00B204E9800998ECF8427E"}}  # fmt: skip
    [read] = read_reports(json.dumps(csam), "desk")
    assert read.hashes == ({"md5": "d41d8cd98f00b204e9800998ecf8427e"},)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no reports"),
        ('{"xarf_version": "4.0.0",', "line 1, column 26: not JSON"),
        (json.dumps(SPAM) + "\n\n{oops}\n", "line 3, column 2: not JSON"),
        (json.dumps([SPAM, {**SPAM, "report_id": "r-2"}]),
         "report 2: report_id: 'r-2' is not a 'uuid'"),
        (json.dumps(SPAM) + "\n" + json.dumps({**SPAM, "category": "content", "type": "csam"}),
         "line 2: "),
        (json.dumps([SPAM, 7]), "report 2: expected a XARF report (a JSON object), got int"),
        (json.dumps({**SPAM, "evidence": [{"content_type": "image/jpeg", "payload": "AAAA"}]}),
         "the report: evidence: reports with evidence payloads are refused"),
        (json.dumps({**SPAM, "timestamp": "yesterday"}), "the report: timestamp: expected an ISO"),
        (json.dumps({**SPAM, "timestamp": "9999-12-31T23:59:59-23:00"}),
         "the report: timestamp: '9999-12-31T23:59:59-23:00' is out of range in UTC"),
        (json.dumps({**SPAM, "timestamp": "0001-01-01T00:00:00+05:00"}),
         "the report: timestamp: '0001-01-01T00:00:00+05:00' is out of range in UTC"),
        (json.dumps({"Version": "3", "ReporterInfo": {}, "Report": {"ReportType": "Tea"}}),
         "the report: cannot convert v3 report: unknown ReportType 'Tea'"),
        (json.dumps([SPAM, {"Version": "3", "ReporterInfo": {}, "Report": "spam"}]),
         "report 2: not a report the xarf package can read"),
        ("[" * 100_000 + "]" * 100_000, "the JSON is nested too deeply to be a XARF report"),
        (json.dumps(SPAM) + "\n" + '{"a": ' * 50_000 + "1" + "}" * 50_000,
         "line 2: nested too deeply to be a XARF report"),
    ],
)  # fmt: skip
def test_what_cannot_be_read_is_named_by_line_and_field(text: str, error: str) -> None:
    with pytest.raises(ReportsInvalid) as raised:
        read_reports(text, "desk")
    assert str(raised.value).startswith(error)


def test_times_read_from_another_zone_are_kept_in_utc() -> None:
    [read] = read_reports(json.dumps({**SPAM, "timestamp": "2025-03-01T14:00:00+02:00"}), "desk")
    assert read.at.utcoffset() == timedelta(0)
    assert read.at.isoformat() == "2025-03-01T12:00:00+00:00"


FIELDS = st.sampled_from(sorted(SPAM))


@given(st.one_of(
    st.text(),
    st.lists(st.dictionaries(FIELDS, st.none() | st.text() | st.integers())).map(json.dumps),
    st.dictionaries(FIELDS, st.text()).map(lambda changed: json.dumps({**SPAM, **changed})),
))  # fmt: skip
def test_any_text_is_read_or_refused_with_a_reason(text: str) -> None:
    try:
        read_reports(text, "desk")
    except ReportsInvalid as error:
        assert str(error)
