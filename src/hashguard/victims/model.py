"""What a case is made of, as plain values: its number and PIN, the hashes a person submits
(checked once here: values that parse, PDQ of quality 50 or more), the states a hash goes
through and partners' outcomes in StopNCII's words; the errors, by kind."""

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from hashguard.errors import Forbidden, Invalid, NotFound, TooLarge
from hashguard.rate_limit import RateLimited
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue
from hashguard.signals.vpdq import VpdqHash

MIN_QUALITY: Final = 50  # PDQ below this matches noise (Meta's rule); refused, never shipped
LANGUAGES: Final = ("en", "nl")
SIGNALS: Final = ("pdq", "vpdq", "md5", "sha1", "sha256")
PROVENANCE: Final = "submitted by the person shown, unverified"

# Crockford's base32: no I, L, O or U, so a number read aloud or copied by hand survives.
_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS: Final = {"O": "0", "I": "1", "L": "1"}
_NUMBER_BITS: Final = 130  # 26 characters of 5 bits: at least 128 bits of chance
_GROUPS: Final = (5, 5, 5, 5, 6)
PIN_DIGITS: Final = 8


class VictimError(Invalid):
    """A case request that cannot be done; the message says why (subclasses: of what kind)."""


class InvalidHash(VictimError):
    """A submitted hash that does not parse, or is of too low a quality; names which."""


class TooManyHashes(VictimError, TooLarge):
    """More hashes than a case takes."""


class CaseNotOpened(VictimError, Forbidden):
    """The case number or the PIN is wrong (which one is not said)."""


class UnknownHash(VictimError, NotFound):
    """A withdrawal names a hash the case does not hold."""


class Locked(VictimError, RateLimited):
    """Too many wrong PINs or cases: the case, or the address asking, is locked for
    ``retry_after`` seconds (the API answers 429 with Retry-After)."""


class HashState(StrEnum):
    RECEIVED = "received"  # held, not matching now (contested after a false positive)
    ACTIVE = "active"  # on the list, matching
    WITHDRAWN = "withdrawn"  # withdrawn by the person: tombstoned everywhere


class Outcome(StrEnum):
    """A partner's outcome for a match, in StopNCII's feedback vocabulary."""

    PENDING_REVIEW = "PendingReview"
    BLOCKED = "Blocked"
    NOT_BLOCKED = "NotBlocked"


def new_case_number() -> str:
    """A random case number, 130 bits in five groups of Crockford base32 (``HG-XXXXX-...``)."""
    number = secrets.randbits(_NUMBER_BITS)
    digits = "".join(_ALPHABET[(number >> (5 * i)) & 31] for i in range(_NUMBER_BITS // 5))
    groups, start = [], 0
    for size in _GROUPS:
        groups.append(digits[start : start + size])
        start += size
    return "HG-" + "-".join(groups)


def normalised(number: str) -> str:
    """A case number as typed (any case, with or without dashes or spaces, O for 0, I or L for
    1) in its one canonical form; "" for text that cannot be a case number."""
    text = number.strip().upper().replace(" ", "").replace("-", "")
    text = text.removeprefix("HG")
    text = "".join(_READ_AS.get(c, c) for c in text)
    if len(text) != sum(_GROUPS) or any(c not in _ALPHABET for c in text):
        return ""
    return text


def number_digest(number: str) -> str:
    """What a case is found by: the SHA-256 of its canonical number (the number is not kept)."""
    return hashlib.sha256(normalised(number).encode()).hexdigest()


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))


@dataclass(frozen=True, slots=True)
class SubmittedHash:
    """A hash as a case holds it: the signal, the value in its canonical form, its quality,
    and its stability when the device measured it (the list entry keeps it)."""

    signal: str
    value: str
    quality: int | None = None
    stability: int | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"signal": self.signal, "value": self.value}
        if self.quality is not None:
            shown["quality"] = self.quality
        if self.stability is not None:
            shown["stability"] = self.stability
        return shown


def checked(given: Sequence[Mapping[str, Any]], limit: int) -> list[SubmittedHash]:
    """The hashes of a submission, each parsed once, duplicates dropped. Raises TooManyHashes
    over ``limit``, InvalidHash naming the hash (``hashes.N``) and what is wrong: a signal
    cases do not take, a value that does not parse, a PDQ hash without its quality or of a
    quality below 50 (it would match unrelated pictures) or measured as unstable (its hash
    moves under a 1 % resize: it would never be matched), a vPDQ hash without such a frame."""
    if not given:
        raise InvalidHash("hashes: at least one hash is needed")
    if len(given) > limit:
        raise TooManyHashes(f"{len(given)} hashes: a case takes at most {limit}")
    found: dict[tuple[str, str], SubmittedHash] = {}
    for number, item in enumerate(given):
        submitted = one_hash(item, f"hashes.{number}")
        found.setdefault((submitted.signal, submitted.value), submitted)
    return list(found.values())


def one_hash(item: Mapping[str, Any], where: str) -> SubmittedHash:
    """One submitted hash (``{"signal", "value", "quality"?, "stability"?}``); InvalidHash
    naming ``where``."""
    signal = str(item.get("signal", "")).strip().lower()
    text = item.get("value")
    quality = item.get("quality")
    stability = item.get("stability")
    if signal not in SIGNALS:
        raise InvalidHash(f"{where}: signal {signal!r}: expected one of {', '.join(SIGNALS)}")
    if not isinstance(text, str) or not text.strip():
        raise InvalidHash(f"{where}: the {signal} value is missing")
    if quality is not None and (
        isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100
    ):
        raise InvalidHash(f"{where}: quality {quality!r}: expected a whole number from 0 to 100")
    if stability is not None and (
        isinstance(stability, bool) or not isinstance(stability, int) or not 0 <= stability <= 100
    ):
        raise InvalidHash(
            f"{where}: stability {stability!r}: expected a whole number from 0 to 100"
        )
    kind = registry.listed(signal)
    try:
        value = kind.canonical(text)
    except InvalidSignalValue as error:
        raise InvalidHash(f"{where}: {signal} value {text[:80]!r}: {error}") from None
    if signal == "pdq":
        if quality is None:
            raise InvalidHash(f"{where}: a pdq hash needs its quality (0-100)")
        if quality < MIN_QUALITY:
            raise InvalidHash(
                f"{where}: pdq quality {quality} is below {MIN_QUALITY}: the picture has too "
                "little detail to be recognised safely (its hash would match unrelated "
                "pictures), so it is not taken"
            )
        if not kind.plausible(value):
            raise InvalidHash(f"{where}: {value} is no PDQ hash of a picture (over 128 bits set)")
        if kind.too_unstable(stability):
            raise InvalidHash(
                f"{where}: pdq stability {stability} is below {kind.min_stability}: the "
                "picture's hash moves under a 1 % resize, so it would not be recognised "
                "(and may match unrelated pictures); it is not taken"
            )
    if signal == "vpdq":
        video: VpdqHash = kind.parse(value)
        if not any(frame.quality >= MIN_QUALITY for frame in video.frames):
            raise InvalidHash(
                f"{where}: no frame of this vpdq hash has quality {MIN_QUALITY} or more: the "
                "video has too little detail to be recognised safely"
            )
        quality = video.mean_quality
    return SubmittedHash(signal, value, quality, stability if signal == "pdq" else None)
