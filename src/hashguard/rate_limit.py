"""How often one client address may do something (open a case, guess a PIN, report URLs), and
the error for an address past its limit: the API answers it with 429 and Retry-After.

In memory: an address's record is lost on restart; limits that must hold across restarts and
processes (a case's wrong PINs) are kept in the database by their workflow.
"""

import math
import threading
import time
from collections import deque

from hashguard.errors import Unavailable


class RateLimited(Unavailable):
    """Too many attempts: ask again in ``retry_after`` seconds (the API answers 429 with
    Retry-After). The message says what was limited."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AddressLimit:
    """Per client address: at most ``allowed`` events within ``window`` seconds; an address
    past it waits until its oldest event in the window ages out."""

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
