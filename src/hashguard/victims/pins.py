"""PINs kept as slow hashes, and the limits on guessing them.

A PIN is stored only as scrypt (n=2^14, r=8, p=1: about 16 MB and tens of milliseconds per
try) with a salt of its own case, so a stolen database does not give PINs away cheaply. Online
guessing is bounded twice: a case locks after ``failures`` wrong PINs in a row (kept in the
database, so it holds across restarts and processes), and an address that keeps trying wrong
PINs, or case numbers that do not exist, is locked out in memory (``AddressLimit``). Both count
an attempt before its PIN is checked, so parallel guesses cannot outrun the limits.
"""

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
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


class AddressLimit:
    """Per client address: at most ``allowed`` events within ``window`` seconds; an address
    past it waits until its oldest event in the window ages out. In memory: an address's
    record is lost on restart, which the per-case lock (in the database) does not depend on."""

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed = allowed
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def reserve(self, address: str) -> tuple[float, float]:
        """Count an event of ``address`` before it happens, atomically: ``(0, token)`` when it
        may go on (``release(address, token)`` takes the event back if it does not count),
        else ``(seconds to wait, 0)`` and nothing is counted."""
        now = time.monotonic()
        with self._lock:
            events = self._recent(address, now)
            if len(events) >= self.allowed:
                return max(1.0, math.ceil(events[0] + self.window - now)), 0.0
            events.append(now)
            if len(self._events) > 100_000:  # a flood of addresses: forget the idle ones
                for idle in [a for a, e in self._events.items() if not e]:
                    del self._events[idle]
            return 0.0, now

    def release(self, address: str, token: float) -> None:
        """Take back the event ``reserve`` counted as ``token`` (one that did not count)."""
        with self._lock:
            events = self._events.get(address)
            if events is not None and token in events:
                events.remove(token)

    def _recent(self, address: str, now: float) -> deque[float]:
        events = self._events.setdefault(address, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events
