"""How often one client address may do something (open a case, guess a PIN, report URLs), and
the error for an address past its limit: the API answers it with 429 and Retry-After.

In memory: an address's record is lost on restart; limits that must hold across restarts and
processes (a case's wrong PINs) are kept in the database by their workflow. An address is
forgotten once its events are all older than the window. IPv6 clients are counted per /64
network: one subscriber usually holds a whole /64.
"""

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from hashguard.errors import Unavailable


class RateLimited(Unavailable):
    """Too many attempts: ask again in ``retry_after`` seconds (the API answers 429 with
    Retry-After). The message says what was limited."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AddressLimit:
    """Per client address (IPv6: per /64): at most ``allowed`` events within ``window``
    seconds; an address past it waits until its oldest event in the window ages out.
    ``clock`` gives monotonic seconds."""

    def __init__(
        self, allowed: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.allowed = allowed
        self.window = window
        self.clock = clock
        # by the time of each address's latest event, oldest first: idle ones are at the front
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many addresses (IPv6 networks) are remembered."""
        with self._lock:
            return len(self._events)

    def reserve(self, address: str) -> tuple[float, float]:
        """Count an event of ``address`` before it happens, atomically: ``(0, token)`` when it
        may go on (``release(address, token)`` takes the event back if it does not count),
        else ``(seconds to wait, 0)`` and nothing is counted."""
        now = self.clock()
        client = _client(address)
        with self._lock:
            self._forget_idle(now)
            events = self._recent(client, now)
            if len(events) >= self.allowed:
                return max(1.0, math.ceil(events[0] + self.window - now)), 0.0
            events.append(now)
            self._events.move_to_end(client)
            return 0.0, now

    def release(self, address: str, token: float) -> None:
        """Take back the event ``reserve`` counted as ``token`` (one that did not count)."""
        with self._lock:
            events = self._events.get(_client(address))
            if events is not None and token in events:
                events.remove(token)

    def _recent(self, address: str, now: float) -> deque[float]:
        events = self._events.setdefault(address, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def _forget_idle(self, now: float) -> None:
        # amortised: each address is dropped once, when it reaches the front
        while self._events:
            events = next(iter(self._events.values()))
            if events and events[-1] > now - self.window:
                return
            self._events.popitem(last=False)


def _client(address: str) -> str:
    """Whom ``address`` stands for: itself, or its /64 network when it is IPv6 (an IPv4 address
    mapped into IPv6 stands for itself)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's name): itself
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address
