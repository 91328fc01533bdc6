"""Victims' cases in the domain, on SQLite and PostgreSQL: opening (what is refused and why),
the PIN (only its slow hash kept; wrong PINs lock the case and the address), the victim list
(provenance, review never skipped, false positives counted), withdrawal (tombstones, partial
and whole, a hash another case holds stays), receipts, partners' outcomes, hotline referrals
(to a real HTTP server on loopback), StopNCII exports. Every hash is a benign test value."""

import io
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hashguard.lists.formats import stopncii
from hashguard.lists.model import Category, ChangeKind, EntryStatus
from hashguard.matching import Matcher
from hashguard.matching.query import parse
from hashguard.review.detections import Evidence, Review
from hashguard.review.model import Decision, State
from hashguard.review.services import ServiceStore
from hashguard.store.acknowledgements import Acknowledgements
from hashguard.store.list_errors import Unchanged
from hashguard.store.lists import ListStore
from hashguard.store.tables import Base, VictimCaseRow
from hashguard.victims import cases as cases_module
from hashguard.victims import referrals
from hashguard.victims.cases import Cases, CaseSettings, ListMisconfigured
from hashguard.victims.feedback import ReviewFeedback
from hashguard.victims.model import (
    CaseNotOpened,
    HashState,
    InvalidHash,
    Locked,
    Outcome,
    TooManyHashes,
    normalised,
)

from support.loopback import Loopback
from support.media import jpeg

PDQ = "f0" * 32  # 128 bits set: plausible
PDQ_2 = "0f" * 32
MD5 = "0cc175b9c0f1b6a831c399e269772661"  # md5("a")
SHA256 = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"  # sha256("a")
VICTIM_LISTS = ("victims-ncii", "victims-csam")
HASHES = [{"signal": "pdq", "value": PDQ, "quality": 90}, {"signal": "md5", "value": MD5}]


@pytest.fixture
def cases(engine: Engine) -> Cases:
    settings = CaseSettings(pin_failures=3, address_failures=6, lockout=timedelta(minutes=5))
    return Cases(engine, ListStore(engine), settings)


def test_a_case_is_opened_with_an_unguessable_number_and_a_pin_kept_only_as_a_slow_hash(
    cases: Cases, engine: Engine
) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    assert opened.case.startswith("HG-") and len(normalised(opened.case)) == 26  # 130 bits
    assert opened.pin.isdigit() and len(opened.pin) == 8
    with engine.connect() as connection:
        row = connection.execute(select(VictimCaseRow.__table__)).one()
    stored = json.dumps([str(v) for v in row])
    assert opened.pin not in stored and normalised(opened.case) not in stored
    # Read as people type it: lower case, no dashes, O for 0.
    typed = normalised(opened.case).lower().replace("0", "o")
    status = cases.status(typed, opened.pin)
    assert [(h.hash.signal, h.state) for h in status.hashes] == [
        ("pdq", HashState.ACTIVE),
        ("md5", HashState.ACTIVE),
    ]
    assert status.partners == {}


def test_the_hashes_go_to_a_victim_list_made_on_first_use_unverified(cases: Cases) -> None:
    cases.open(HASHES, under_18=False, language="en")
    cases.open([{"signal": "sha256", "value": SHA256}], under_18=True, language="nl")
    adults, minors = cases.lists.get("victims-ncii"), cases.lists.get("victims-csam")
    assert (adults.category, minors.category) == (Category.NCII_VICTIM, Category.CSAM_VICTIM)
    entry = cases.lists.entry("victims-ncii", "pdq", PDQ)
    assert entry.provenance.submitted_by == "submitted by the person shown, unverified"
    assert "victim-submitted" in entry.labels
    # Each hash has a source reference of its own: neither the case number nor shared by the
    # case's other hashes, so followers cannot tell which hashes belong to one case.
    other = cases.lists.entry("victims-ncii", "md5", MD5)
    [source], [other_source] = entry.provenance.sources, other.provenance.sources
    assert (
        source.reference.startswith("victim-case:") and other_source.reference != source.reference
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ([{"signal": "pdq", "value": PDQ, "quality": 49}], r"hashes\.0: pdq quality 49 is below"),
        ([{"signal": "pdq", "value": PDQ}], r"hashes\.0: a pdq hash needs its quality"),
        ([{"signal": "md5", "value": MD5}, {"signal": "md5", "value": "xyz"}],
         r"hashes\.1: md5 value 'xyz'"),
        ([{"signal": "tmk", "value": "00"}], r"hashes\.0: signal 'tmk': expected one of"),
        ([{"signal": "pdq", "value": "f" * 64, "quality": 90}], r"no PDQ hash of a picture"),
        ([{"signal": "vpdq", "value": f"0,10,{PDQ},0.000"}], r"no frame of this vpdq hash"),
        ([], r"at least one hash"),
    ],
)  # fmt: skip
def test_values_that_do_not_parse_and_low_quality_are_refused_by_name(
    cases: Cases, given: list[dict[str, object]], said: str
) -> None:
    with pytest.raises(InvalidHash, match=said):
        cases.open(given, under_18=False, language="en")
    assert "victims-ncii" not in {h.name for h in cases.lists.lists()}  # nothing applied


def test_a_case_takes_at_most_its_cap_of_hashes(engine: Engine) -> None:
    cases = Cases(engine, ListStore(engine), CaseSettings(max_hashes=2))
    many = [{"signal": "md5", "value": f"{n:032x}"} for n in range(3)]
    with pytest.raises(TooManyHashes, match="3 hashes: a case takes at most 2"):
        cases.open(many, under_18=False, language="en")


def test_a_list_of_another_category_is_never_used_for_victims(cases: Cases) -> None:
    cases.lists.create("victims-ncii", "Org", Category.KNOWN_CSAM)
    with pytest.raises(ListMisconfigured, match="victims-ncii is of category known-csam"):
        cases.open(HASHES, under_18=False, language="en")


def test_wrong_pins_lock_the_case_and_then_the_address(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    for _ in range(2):
        with pytest.raises(CaseNotOpened, match="the case number or the PIN is wrong"):
            cases.status(opened.case, "00000000", "192.0.2.1")
    with pytest.raises(Locked) as locked:  # the third wrong PIN locks the case
        cases.status(opened.case, "00000000", "192.0.2.1")
    assert 299 <= locked.value.retry_after <= 300
    with pytest.raises(Locked):  # even the right PIN, while locked
        cases.status(opened.case, opened.pin, "192.0.2.2")
    # Unknown case numbers count against the address too.
    for _ in range(3):
        with pytest.raises(CaseNotOpened):
            cases.status("HG-00000-00000-00000-00000-000000", "1", "192.0.2.1")
    other = cases.open(HASHES, under_18=False, language="en")
    with pytest.raises(Locked, match="from this address"):
        cases.status(other.case, other.pin, "192.0.2.1")
    assert cases.status(other.case, other.pin, "192.0.2.3").case == other.case


def test_a_right_pin_resets_the_count_of_wrong_ones(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    for _ in range(2):
        with pytest.raises(CaseNotOpened):
            cases.status(opened.case, "1", "192.0.2.9")
        cases.status(opened.case, opened.pin, "192.0.2.9")


def test_withdrawal_in_part_then_whole_tombstones_the_entries(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    matcher = Matcher(cases.lists, ["victims-ncii"])
    assert matcher.match_all([parse("md5", MD5)])[0]
    status = cases.withdraw(opened.case, opened.pin, [{"signal": "md5", "value": MD5.upper()}])
    assert {h.hash.signal: h.state for h in status.hashes} == {
        "pdq": HashState.ACTIVE, "md5": HashState.WITHDRAWN}  # fmt: skip
    assert cases.lists.entry("victims-ncii", "md5", MD5).status is EntryStatus.DELETED
    [last] = list(
        cases.lists.changes_since("victims-ncii", cases.lists.get("victims-ncii").version - 1)
    )
    assert last.kind is ChangeKind.DELETE and last.tombstone()
    matcher.refresh()
    assert not matcher.match_all([parse("md5", MD5)])[0]
    assert matcher.match_all([parse("pdq", PDQ)])[0]
    status = cases.withdraw(opened.case, opened.pin)
    assert {h.state for h in status.hashes} == {HashState.WITHDRAWN}
    matcher.refresh()
    assert not matcher.match_all([parse("pdq", PDQ)])[0]
    again = cases.withdraw(opened.case, opened.pin)  # nothing left: the same status
    assert [h.withdrawn for h in again.hashes] == [h.withdrawn for h in status.hashes]


def test_a_hash_another_case_holds_keeps_matching_after_one_withdraws(cases: Cases) -> None:
    first = cases.open(HASHES, under_18=False, language="en")
    cases.open([{"signal": "md5", "value": MD5}], under_18=False, language="en")
    cases.withdraw(first.case, first.pin)
    assert cases.lists.entry("victims-ncii", "md5", MD5).status is EntryStatus.ACTIVE
    assert cases.lists.entry("victims-ncii", "pdq", PDQ).status is EntryStatus.DELETED


def test_a_withdrawal_says_how_many_followers_applied_it(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    receipts = Acknowledgements(cases.engine)
    before = cases.lists.get("victims-ncii").version
    receipts.record("victims-ncii", "mirror-a", before)
    receipts.record("victims-ncii", "mirror-b", before)
    status = cases.withdraw(opened.case, opened.pin)
    withdrawn = status.hashes[0].withdrawn
    assert withdrawn is not None and withdrawn.summary() == "withdrawn; applied by 0 of 2 partners"
    receipts.record("victims-ncii", "mirror-a", withdrawn.version)
    receipts.record("victims-ncii", "mirror-c", withdrawn.version)  # new: not counted in M
    again = cases.status(opened.case, opened.pin).hashes[0].withdrawn
    assert again is not None and again.summary() == "withdrawn; applied by 1 of 2 partners"
    assert set(again.applied_by) == {"mirror-a"}


def test_victim_matches_always_go_to_review_and_their_outcomes_are_counted(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    # A profile that lets exact matches on vetted lists skip review: never a victim list's.
    service = ServiceStore(cases.engine).create("photos", legal_profile="interim-2021-1232")
    review = Review(cases.engine, cases.lists, observers=[ReviewFeedback()])
    entry = cases.lists.entry("victims-ncii", "md5", MD5)
    evidence = [Evidence("victims-ncii", entry.id, "md5", 0.0, ("victim-submitted",), MD5)]
    first = review.open(service, "upload-1", evidence)
    second = review.open(service, "upload-2", evidence)
    third = review.open(service, "upload-3", evidence)
    assert {first.state, second.state, third.state} == {State.PENDING}
    review.decide(first.id, "reviewer-1", Decision.CONFIRM, "the person shown, intimate")
    review.decide(second.id, "reviewer-1", Decision.FALSE_POSITIVE, "a landscape")
    status = cases.status(opened.case, opened.pin)
    assert status.partners == {"photos": {Outcome.PENDING_REVIEW: 1, Outcome.BLOCKED: 1,
                                          Outcome.NOT_BLOCKED: 1}}  # fmt: skip
    # The false positive contested the entry: not matching, so the hash shows as received.
    assert {h.hash.signal: h.state for h in status.hashes}["md5"] is HashState.RECEIVED


def test_partners_feedback_is_recorded_and_a_bad_record_is_quarantined(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    posted = cases.feedback.post("platform-x", [
        {"signal": "md5", "value": MD5, "outcome": "Blocked", "reference": "item-1"},
        {"signal": "md5", "value": MD5, "outcome": "Gone", "reference": "item-2"},
        "not a record",
        {"signal": "pdq", "value": PDQ_2, "outcome": "Blocked", "reference": "item-3"},
        {"signal": "pdq", "value": PDQ, "outcome": "PendingReview", "reference": "item-4"},
        {"signal": "pdq", "value": PDQ, "outcome": "NotBlocked", "reference": "item-4"},
    ], VICTIM_LISTS)  # fmt: skip
    assert posted.recorded == 3
    assert [i for i, _ in posted.quarantined] == [1, 2, 3]
    assert "outcome 'Gone'" in posted.quarantined[0][1]
    assert "no match of this hash to record an outcome for" in posted.quarantined[2][1]
    status = cases.status(opened.case, opened.pin)
    assert status.partners == {"platform-x": {Outcome.PENDING_REVIEW: 0, Outcome.BLOCKED: 1,
                                              Outcome.NOT_BLOCKED: 1}}  # fmt: skip


def test_an_under_18_case_is_referred_to_the_hotline_without_any_image(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=True, language="nl")
    [waiting] = referrals.referrals(cases.engine)
    assert waiting["delivered_at"] is None  # kept until a hotline URL is set
    hotline = Loopback(lambda path, headers, body: (202, "application/json", b"{}"))
    try:
        sender = referrals.ReferralSender(cases.engine, hotline.url + "/referrals")
        assert sender.send_due() == 1
        [(path, headers, sent)] = hotline.requests
    finally:
        hotline.close()
    body = json.loads(sent)
    assert path == "/referrals" and headers["Idempotency-Key"]
    assert len(body["referral"]) == 32 and normalised(opened.case) not in sent.decode().upper()
    assert body["counts"] == {"hashes": 2, "pdq": 1, "md5": 1}
    assert {h["value"] for h in body["hashes"]} == {PDQ, MD5}
    assert set(body) == {"referral", "under_18", "counts", "hashes"}  # no image, no case
    assert referrals.referrals(cases.engine)[0]["delivered_at"] is not None
    assert referrals.waiting(cases.engine) == 0


def test_stopncii_exports_of_a_victim_list_say_withdrawn(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    cases.withdraw(opened.case, opened.pin, [{"signal": "pdq", "value": PDQ}])
    _, entries = cases.lists.entries("victims-ncii")
    out = io.StringIO()
    stopncii.write(entries, out, withdrawn=True)
    records = {
        r["hashValue"]: r["hashStatus"] for r in map(json.loads, out.getvalue().splitlines())
    }
    assert records == {PDQ: "Withdrawn", MD5: "Active"}


def test_the_next_device_filter_leaves_a_withdrawn_picture_out(
    cases: Cases, tmp_path: Path
) -> None:
    from hashguard.device.build import build
    from hashguard.device.checker import DeviceChecker
    from hashguard.device.verify import open_release
    from hashguard.signals.digests import Sha256Signal
    from hashguard.transparency import keys
    from hashguard.transparency.log import TransparencyLog

    picture = jpeg(12)  # benign, generated
    digest = {"signal": "sha256", "value": Sha256Signal().hash(picture).hex()}
    opened = cases.open([digest], under_18=False, language="en")
    keys.generate(tmp_path / "signer.key")
    keys.generate(tmp_path / "log.key")
    log = TransparencyLog.create_or_open(tmp_path / "log", keys.load(tmp_path / "log.key"))

    def released(out: str) -> bool:
        """Whether a device with a filter built now blocks the picture."""
        build(
            [cases.lists.entries("victims-ncii", [EntryStatus.ACTIVE])], "offline",
            keys.load(tmp_path / "signer.key"), log, keys.load(tmp_path / "log.key"),
            tmp_path / out,
        )  # fmt: skip
        return DeviceChecker(open_release(tmp_path / out, log)).check(picture).blocked

    assert released("r1")
    cases.withdraw(opened.case, opened.pin)
    assert not released("r2")


def test_a_withdrawal_holds_for_a_contested_hash_and_it_cannot_be_reinstated(
    cases: Cases,
) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    cases.lists.change("victims-ncii", ChangeKind.CONTEST, "md5", MD5, "a false positive")
    cases.withdraw(opened.case, opened.pin)
    assert cases.lists.entry("victims-ncii", "md5", MD5).status is EntryStatus.DELETED
    with pytest.raises(Unchanged, match="every source that submitted it withdrew it"):
        cases.lists.change("victims-ncii", ChangeKind.REINSTATE, "md5", MD5, "reviewed again")
    matcher = Matcher(cases.lists, ["victims-ncii"])
    assert not matcher.match_all([parse("md5", MD5)])[0]


def _in_parallel(attempts: int, attempt: Callable[[int], None]) -> list[str]:
    """Run ``attempt(i)`` in ``attempts`` threads started together; what each raised."""
    start = threading.Barrier(attempts)
    outcomes: list[str] = [""] * attempts

    def run(index: int) -> None:
        start.wait()
        try:
            attempt(index)
        except (CaseNotOpened, Locked) as error:
            outcomes[index] = type(error).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _counting_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every PIN check Cases runs (of a case's PIN, or the dummy of an unknown case)."""
    checked: list[str] = []
    real, dummy = cases_module.pin_matches, cases_module.no_case

    def pin_matches(pin: str, salt: str, stored: str) -> bool:
        checked.append(pin)
        return real(pin, salt, stored)

    def no_case(pin: str) -> bool:
        checked.append(pin)
        return dummy(pin)

    monkeypatch.setattr(cases_module, "pin_matches", pin_matches)
    monkeypatch.setattr(cases_module, "no_case", no_case)
    return checked


def test_parallel_wrong_pins_get_no_more_checks_than_the_case_allows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CaseSettings(pin_failures=5, address_failures=1000)
    cases = Cases(engine, ListStore(engine), settings)
    opened = cases.open(HASHES, under_18=False, language="en")
    checked = _counting_checks(monkeypatch)
    outcomes = _in_parallel(40, lambda i: cases.status(opened.case, "00000000", f"192.0.2.{i}"))
    assert len(checked) <= 5
    assert outcomes.count("Locked") >= 35 and set(outcomes) == {"CaseNotOpened", "Locked"}
    with pytest.raises(Locked):
        cases.status(opened.case, opened.pin, "198.51.100.1")


def test_parallel_guesses_get_no_more_checks_than_the_address_allows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CaseSettings(pin_failures=5, address_failures=6)
    cases = Cases(engine, ListStore(engine), settings)
    opened = cases.open(HASHES, under_18=False, language="en")
    checked = _counting_checks(monkeypatch)
    unknown = "HG-00000-00000-00000-00000-000000"
    outcomes = _in_parallel(40, lambda i: cases.status(unknown, "1", "192.0.2.1"))
    assert len(checked) == 6 and outcomes.count("Locked") == 34
    with pytest.raises(Locked, match="from this address"):
        cases.status(opened.case, opened.pin, "192.0.2.1")
    assert cases.status(opened.case, opened.pin, "192.0.2.2").case == opened.case


def test_an_unknown_case_takes_a_pin_check_as_a_wrong_pin_does(
    cases: Cases, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    checked = _counting_checks(monkeypatch)
    for number in ("HG-00000-00000-00000-00000-000000", "not a number", opened.case):
        with pytest.raises(CaseNotOpened, match="the case number or the PIN is wrong"):
            cases.status(number, "12345678", "192.0.2.7")
    assert checked == ["12345678"] * 3


def test_no_table_holds_the_case_number(cases: Cases, engine: Engine) -> None:
    opened = cases.open(HASHES, under_18=True, language="nl")
    cases.withdraw(opened.case, opened.pin, [{"signal": "md5", "value": MD5}])
    number = normalised(opened.case)
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    shown = str(value).upper().replace("-", "")
                    assert number not in shown, f"{table.name} holds the case number"


def test_an_upload_matching_several_hashes_of_a_case_counts_once(cases: Cases) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    service = ServiceStore(cases.engine).create("photos")
    review = Review(cases.engine, cases.lists, observers=[ReviewFeedback()])
    md5 = cases.lists.entry("victims-ncii", "md5", MD5)
    pdq = cases.lists.entry("victims-ncii", "pdq", PDQ)
    review.open(service, "upload-1", [
        Evidence("victims-ncii", md5.id, "md5", 0.0, ("victim-submitted",), MD5),
        Evidence("victims-ncii", pdq.id, "pdq", 0.0, ("victim-submitted",), PDQ),
    ])  # fmt: skip
    cases.feedback.post("platform-x", [
        {"signal": "md5", "value": MD5, "outcome": "PendingReview", "reference": "item-1"},
        {"signal": "pdq", "value": PDQ, "outcome": "Blocked", "reference": "item-1"},
    ], VICTIM_LISTS)  # fmt: skip
    assert cases.status(opened.case, opened.pin).partners == {
        "photos": {Outcome.PENDING_REVIEW: 1, Outcome.BLOCKED: 0, Outcome.NOT_BLOCKED: 0},
        "platform-x": {Outcome.PENDING_REVIEW: 0, Outcome.BLOCKED: 1, Outcome.NOT_BLOCKED: 0},
    }


def test_feedback_with_control_characters_or_no_text_reference_is_quarantined(
    cases: Cases,
) -> None:
    opened = cases.open(HASHES, under_18=False, language="en")
    record = {"signal": "md5", "value": MD5, "outcome": "Blocked"}
    posted = cases.feedback.post("platform-x", [
        {**record, "reference": "bad\u0000"},
        {**record, "reference": "tab\there"},
        {**record, "reference": 7},
        {**record, "reference": ["item-1"]},
        {**record, "reference": "item-1"},
    ], VICTIM_LISTS)  # fmt: skip
    assert posted.recorded == 1 and [i for i, _ in posted.quarantined] == [0, 1, 2, 3]
    assert all("no control characters" in why for _, why in posted.quarantined)
    assert cases.status(opened.case, opened.pin).partners["platform-x"][Outcome.BLOCKED] == 1


def test_feedback_counts_only_on_the_lists_given_and_says_the_same_whatever_the_cause(
    cases: Cases,
) -> None:
    cases.open(HASHES, under_18=False, language="en")
    cases.open([{"signal": "sha256", "value": SHA256}], under_18=True, language="en")
    posted = cases.feedback.post("platform-x", [
        {"signal": "sha256", "value": SHA256, "outcome": "Blocked", "reference": "i-1"},
        {"signal": "md5", "value": "0" * 32, "outcome": "Blocked", "reference": "i-2"},
        {"signal": "md5", "value": MD5, "outcome": "Blocked", "reference": "i-3"},
    ], ["victims-ncii"])  # fmt: skip
    assert posted.recorded == 1
    assert [i for i, _ in posted.quarantined] == [0, 1]
    [(_, held), (_, unknown)] = posted.quarantined
    assert held.removeprefix(f"records.0: sha256 {SHA256}") == unknown.removeprefix(
        f"records.1: md5 {'0' * 32}"
    )


def test_a_measured_stability_goes_with_the_hash_and_an_unstable_one_is_refused(
    cases: Cases, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashguard.signals import registry

    monkeypatch.setattr(registry.get("pdq"), "min_stability", 50)
    with pytest.raises(InvalidHash, match=r"hashes\.0: pdq stability 49 is below 50"):
        cases.open([{"signal": "pdq", "value": PDQ, "quality": 90, "stability": 49}],
                   under_18=False, language="en")  # fmt: skip
    with pytest.raises(InvalidHash, match=r"hashes\.0: stability '7'"):
        cases.open([{"signal": "pdq", "value": PDQ, "quality": 90, "stability": "7"}],
                   under_18=False, language="en")  # fmt: skip
    opened = cases.open([{"signal": "pdq", "value": PDQ, "quality": 90, "stability": 77},
                         {"signal": "pdq", "value": PDQ_2, "quality": 90}],
                        under_18=False, language="en")  # fmt: skip
    entries = {e.value: e.stability for e in cases.lists.entries("victims-ncii")[1]}
    assert entries == {PDQ: 77, PDQ_2: None}
    shown = [h.hash.as_json() for h in cases.status(opened.case, opened.pin).hashes]
    assert shown == [{"signal": "pdq", "value": PDQ, "quality": 90, "stability": 77},
                     {"signal": "pdq", "value": PDQ_2, "quality": 90}]  # fmt: skip
