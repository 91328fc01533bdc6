"""PINs kept as slow hashes, and the limits on guessing them.

A PIN is stored only as scrypt (n=2^14, r=8, p=1: about 16 MB and tens of milliseconds per
try) with a salt of its own case, so a stolen database does not give PINs away cheaply. Online
guessing is bounded twice: a case locks after ``failures`` wrong PINs in a row (kept in the
database, so it holds across restarts and processes), and an address that keeps trying wrong
PINs, or case numbers that do not exist, is locked out in memory (``rate_limit.AddressLimit``).
Both count an attempt before its PIN is checked, so parallel guesses cannot outrun the limits.
"""

import hashlib
import hmac
import secrets
from typing import Final

_N: Final = 2**14
_R: Final = 8
_P: Final = 1


def new_salt() -> str:
    return secrets.token_hex(16)


def pin_hash(pin: str, salt: str) -> str:
    """The slow hash of ``pin`` with ``salt`` (hex)."""
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), n=_N, r=_R, p=_P, dklen=32)
    return digest.hex()


def pin_matches(pin: str, salt: str, stored: str) -> bool:
    """Whether ``pin`` is the one whose hash is ``stored`` (compared in constant time)."""
    return hmac.compare_digest(pin_hash(pin, salt), stored)


_DUMMY_SALT: Final = new_salt()


def no_case(pin: str) -> bool:
    """False, after the same work as ``pin_matches``: an unknown case number takes as long as
    a wrong PIN, so timing does not tell which case numbers exist."""
    pin_matches(pin, _DUMMY_SALT, "")
    return False
