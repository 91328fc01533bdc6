"""Cases opened by the person shown: their hashes go into a victim list, the case's status
says what became of them, and a withdrawal takes them back everywhere.

* Opening: the hashes are checked (``model.checked``) and added to the adults' or under-18s'
  list (made on first use, of category ncii-victim or csam-victim) with the provenance
  "submitted by the person shown, unverified", each hash under a source reference of its own
  (a keyed hash of it under the case's random secret: unrelated to the case number and to
  the case's other hashes, as lists are shared with followers). The case number
  (130 random bits) and the PIN are shown once; the case is found by the number's SHA-256 and
  opened by the PIN's scrypt hash. An under-18 case is referred to the hotline.
* Status: each hash's state (received, active, withdrawn), partners' outcomes per partner,
  and for a withdrawal how many of the list's followers have applied it.
* Withdrawal: each hash's source leaves its entry (``Withdrawal`` of its reference): an entry
  nobody else holds is deleted, a tombstone in the list's change log, so this service stops
  matching it before the answer (the list store given is the service's), followers within
  their polling interval, device releases and StopNCII exports after.
"""

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, delete, insert, select, update

from hashguard.lists.model import Category, EntryStatus, Provenance, Source
from hashguard.lists.records import Submission, Withdrawal
from hashguard.rate_limit import AddressLimit
from hashguard.store import audit
from hashguard.store.acknowledgements import Acknowledgements, applied
from hashguard.store.list_errors import ListError, ListExists
from hashguard.store.lists import ListStore
from hashguard.store.tables import VictimCaseRow, VictimHashRow, VictimReferralRow, utc
from hashguard.victims import referrals
from hashguard.victims.feedback import Feedback
from hashguard.victims.model import (
    LANGUAGES,
    PROVENANCE,
    CaseNotOpened,
    HashState,
    InvalidHash,
    Locked,
    Outcome,
    SubmittedHash,
    UnknownHash,
    VictimError,
    checked,
    new_case_number,
    new_pin,
    normalised,
    number_digest,
    one_hash,
)
from hashguard.victims.pins import new_salt, no_case, pin_hash, pin_matches

ACTOR: Final = "victims"
LABEL: Final = "victim-submitted"
WITHDRAWN_REASON: Final = "withdrawn by the person shown"


class ListMisconfigured(VictimError, ListError):
    """The list named for victims' hashes exists with another category."""


@dataclass(frozen=True)
class CaseSettings:
    adult_list: str = "victims-ncii"
    minor_list: str = "victims-csam"
    owner: str = "hashguard"
    max_hashes: int = 100
    pin_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    address_failures: int = 20
    cases_per_hour: int = 30


@dataclass(frozen=True)
class Opened:
    case: str
    pin: str  # shown once: only its slow hash is kept


@dataclass(frozen=True)
class Withdrawn:
    """A withdrawn hash: when, and which of the list's followers have applied it."""

    at: datetime
    version: int
    followers: int  # those that had acknowledged the list before the withdrawal
    applied_by: dict[str, datetime] = field(default_factory=dict)

    def summary(self) -> str:
        return f"withdrawn; applied by {len(self.applied_by)} of {self.followers} partners"


@dataclass(frozen=True)
class HashStatus:
    hash: SubmittedHash
    state: HashState
    withdrawn: Withdrawn | None = None


@dataclass(frozen=True)
class CaseStatus:
    case: str
    under_18: bool
    language: str
    opened_at: datetime
    hashes: list[HashStatus]
    partners: dict[str, dict[Outcome, int]]  # partner -> outcome -> matches


class Cases:
    def __init__(self, engine: Engine, lists: ListStore, settings: CaseSettings) -> None:
        self.engine = engine
        self.lists = lists
        self.settings = settings
        seconds = settings.lockout.total_seconds()
        self.guesses = AddressLimit(settings.address_failures, seconds)
        self.openings = AddressLimit(settings.cases_per_hour, 3600.0)
        self.receipts = Acknowledgements(engine)
        self.feedback = Feedback(engine, lists, (settings.adult_list, settings.minor_list))

    # --- opening ----------------------------------------------------------------------------

    def open(
        self, hashes: Sequence[Mapping[str, Any]], under_18: bool, language: str, address: str = ""
    ) -> Opened:
        """A new case of ``hashes``; its number and PIN. Raises InvalidHash or TooManyHashes
        for what the hashes are refused for, Locked when ``address`` opened too many cases."""
        if language not in LANGUAGES:
            raise InvalidHash(f"language {language!r}: expected one of {', '.join(LANGUAGES)}")
        wait, token = self.openings.reserve(address)
        if wait:
            raise Locked(f"too many cases opened from this address; try again in {wait:.0f} s",
                         wait)  # fmt: skip
        try:
            opened = self._open(hashes, under_18, language)
        except Exception:  # a case not opened does not count
            self.openings.release(address, token)
            raise
        return opened

    def _open(self, hashes: Sequence[Mapping[str, Any]], under_18: bool, language: str) -> Opened:
        submitted = checked(hashes, self.settings.max_hashes)
        list_name = self._victim_list(under_18)
        number, pin, salt = new_case_number(), new_pin(), new_salt()
        reference = secrets.token_hex(16)
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            case_id = int(connection.execute(insert(VictimCaseRow).values(
                number_digest=number_digest(number), reference=reference, pin_salt=salt,
                pin_hash=pin_hash(pin, salt), under_18=under_18, language=language,
                list_name=list_name, created_at=now, failures=0, locked_until=None,
            )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
            connection.execute(insert(VictimHashRow), [
                {"case_id": case_id, "signal": h.signal, "value": h.value, "quality": h.quality,
                 "withdrawn_at": None, "withdrawn_version": None} for h in submitted])  # fmt: skip
            if under_18:
                referrals.enqueue(connection, case_id, submitted)
            audit.append(connection, ACTOR, "victims.case.open", list_name,
                         {"hashes": len(submitted), "under_18": under_18})  # fmt: skip
        records = [
            Submission(
                h.signal,
                h.value,
                frozenset({LABEL}),
                _provenance(reference, h),
                stability=h.stability,
            )
            for h in submitted
        ]
        try:
            self.lists.apply(list_name, records, ACTOR)
        except Exception:  # nothing half done: the case goes with its list entries
            self._forget(case_id)
            raise
        return Opened(number, pin)

    def _victim_list(self, under_18: bool) -> str:
        """The list for the case's hashes, made on first use."""
        name = self.settings.minor_list if under_18 else self.settings.adult_list
        category = Category.CSAM_VICTIM if under_18 else Category.NCII_VICTIM
        try:
            self.lists.create(name, self.settings.owner, category, legal_basis=PROVENANCE,
                              actor=ACTOR)  # fmt: skip
        except ListExists:
            held = self.lists.get(name).category
            if held is not category:
                raise ListMisconfigured(
                    f"list {name} is of category {held}, not {category}: victims' hashes go "
                    "to a list of their own (settings victims_adult_list, victims_minor_list)"
                ) from None
        return name

    def _forget(self, case_id: int) -> None:
        with self.engine.begin() as connection:
            for table in (VictimHashRow, VictimReferralRow):
                connection.execute(delete(table).where(table.case_id == case_id))
            connection.execute(delete(VictimCaseRow).where(VictimCaseRow.id == case_id))

    # --- opening a case with its PIN --------------------------------------------------------

    def _opened(self, number: str, pin: str, address: str) -> Any:
        """The case numbered ``number`` if ``pin`` is its PIN. Raises Locked while the case or
        the address is locked (the lock set by the failure that reaches the limit),
        CaseNotOpened for a wrong number or PIN (without saying which, nor taking a different
        time). Each attempt is counted, per address and per case, before its PIN is checked,
        so parallel guesses get no more checks than the limits allow."""
        wait, token = self.guesses.reserve(address)
        if wait:
            raise Locked(f"too many wrong case numbers or PINs from this address; try again in "
                         f"{wait:.0f} s", wait)  # fmt: skip
        row = self._attempt(number_digest(number) if normalised(number) else "")
        if row is None:
            no_case(pin)
            raise CaseNotOpened("the case number or the PIN is wrong")
        if pin_matches(pin.strip(), row.pin_salt, row.pin_hash):
            self.guesses.release(address, token)
            with self.engine.begin() as connection:
                connection.execute(update(VictimCaseRow).where(VictimCaseRow.id == row.id)
                                   .values(failures=0))  # fmt: skip
            return row
        if row.failures >= self.settings.pin_failures:
            self._lock(row.id)
        raise CaseNotOpened("the case number or the PIN is wrong")

    def _attempt(self, digest: str) -> Any:
        """Count an attempt at the case found by ``digest`` and return its row (None for no
        case), the count included. Raises Locked while the case is locked, or once the
        attempt is over the limit (it is then locked, and the PIN is not checked)."""
        now = datetime.now(UTC)
        table = VictimCaseRow.__table__
        open_case = (table.c.locked_until.is_(None)) | (table.c.locked_until <= now)
        with self.engine.begin() as connection:
            # Atomic on SQLite (the write lock) and PostgreSQL (the row's lock) alike.
            connection.execute(update(VictimCaseRow)
                               .where(table.c.number_digest == digest, open_case)
                               .values(failures=table.c.failures + 1))  # fmt: skip
            row = connection.execute(
                select(table).where(table.c.number_digest == digest)
            ).one_or_none()
            if row is None:
                return None
            if row.locked_until is not None and utc(row.locked_until) > now:
                left = (utc(row.locked_until) - now).total_seconds()
                raise Locked(_locked_message(left), left, "credential")
        if row.failures > self.settings.pin_failures:
            self._lock(row.id)
        return row

    def _lock(self, case_id: int) -> None:
        """Lock the case for the lockout (its count starts again after it). Raises Locked."""
        until = datetime.now(UTC) + self.settings.lockout
        with self.engine.begin() as connection:
            connection.execute(update(VictimCaseRow).where(VictimCaseRow.id == case_id)
                               .values(failures=0, locked_until=until))  # fmt: skip
        lockout = self.settings.lockout.total_seconds()
        raise Locked(_locked_message(lockout), lockout, "credential")

    # --- status -----------------------------------------------------------------------------

    def status(self, number: str, pin: str, address: str = "") -> CaseStatus:
        """The case's status (see ``_opened`` for what it raises)."""
        return self._status(self._opened(number, pin, address), number)

    def _status(self, case: Any, number: str) -> CaseStatus:
        table = VictimHashRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.case_id == case.id).order_by(table.c.id)
            ).all()
        receipts = self.receipts.receipts(case.list_name)
        shown, entries = [], []
        for row in rows:
            try:
                entry = self.lists.entry(case.list_name, row.signal, row.value)
            except ListError:  # the list was removed by its owner
                entry = None
            # The stability is kept with the list's entry (the case's rows keep the quality).
            stability = entry.stability if entry is not None else None
            submitted = SubmittedHash(row.signal, row.value, row.quality, stability)
            if entry is not None:
                entries.append(entry.id)
            if row.withdrawn_at is not None:
                at = utc(row.withdrawn_at)
                done = applied(receipts, int(row.withdrawn_version), at)
                withdrawn = Withdrawn(at, int(row.withdrawn_version), done.of, done.by)
                shown.append(HashStatus(submitted, HashState.WITHDRAWN, withdrawn))
            elif entry is not None and entry.status is EntryStatus.ACTIVE:
                shown.append(HashStatus(submitted, HashState.ACTIVE))
            else:
                shown.append(HashStatus(submitted, HashState.RECEIVED))
        counts = self.feedback.counts(case.list_name, entries)
        partners = {partner: {o: counted[o] for o in Outcome}
                    for partner, counted in sorted(counts.items())}  # fmt: skip
        return CaseStatus(_shown_number(number), bool(case.under_18), case.language,
                          utc(case.created_at), shown, partners)  # fmt: skip

    # --- withdrawal -------------------------------------------------------------------------

    def withdraw(
        self,
        number: str,
        pin: str,
        hashes: Sequence[Mapping[str, Any]] | None = None,
        address: str = "",
    ) -> CaseStatus:
        """Withdraw the case's hashes (those given, else all): the case's source leaves their
        entries, and an entry no one else holds is deleted (a tombstone followers apply). A
        hash withdrawn already stays so. Raises UnknownHash for a hash the case does not hold,
        InvalidHash for one that does not parse, and what ``_opened`` raises."""
        case = self._opened(number, pin, address)
        table = VictimHashRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(select(table).where(table.c.case_id == case.id)).all()
        held = {(r.signal, r.value): r for r in rows}
        if hashes is None:
            chosen = set(held)
        else:
            chosen = set()
            for index, item in enumerate(hashes):
                given = one_hash({**item, "quality": 100}, f"hashes.{index}")
                if (given.signal, given.value) not in held:
                    raise UnknownHash(f"hashes.{index}: this case holds no {given.signal} hash "
                                      f"{given.value[:80]}")  # fmt: skip
                chosen.add((given.signal, given.value))
        due = [key for key in chosen if held[key].withdrawn_at is None]
        if not due:
            return self._status(case, number)
        withdrawals = [
            Withdrawal(_reference(case.reference, *key), None, WITHDRAWN_REASON) for key in due
        ]
        summary = self.lists.apply(case.list_name, withdrawals, ACTOR)
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            connection.execute(
                update(VictimHashRow)
                .where(table.c.id.in_([held[key].id for key in due]))
                .values(withdrawn_at=now, withdrawn_version=summary.version)
            )
            audit.append(connection, ACTOR, "victims.case.withdraw", case.list_name,
                         {"hashes": len(due), "version": summary.version})  # fmt: skip
        return self._status(case, number)


def _reference(secret: str, signal: str, value: str) -> str:
    """The source reference of one hash of a case: a keyed hash (HMAC-SHA256) of the hash
    under the case's random secret, as unguessable as a random one and unrelated from hash to
    hash, so those who see the list (followers, exports) cannot tell which hashes share a
    case; the case finds it again from its secret."""
    mac = hmac.new(bytes.fromhex(secret), f"{signal}:{value}".encode(), hashlib.sha256)
    return f"victim-case:{mac.hexdigest()[:32]}"


def _provenance(secret: str, submitted: SubmittedHash) -> Provenance:
    source = Source(PROVENANCE, "", _reference(secret, submitted.signal, submitted.value))
    return Provenance(PROVENANCE, "", (source,))


def _shown_number(number: str) -> str:
    text = normalised(number)
    return "HG-" + "-".join(text[i : i + n] for i, n in ((0, 5), (5, 5), (10, 5), (15, 5),
                                                          (20, 6)))  # fmt: skip


def _locked_message(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (f"this case is locked after too many wrong PINs; try again in about {minutes} "
            "minute(s)")  # fmt: skip
