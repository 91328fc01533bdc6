"""How often one client address, or one credential, may do something (open a case, guess a PIN
or a complaint link, report URLs, ask for device evaluations), and the error for a caller past
its limit: the API answers it with 429 and Retry-After, counted per route and scope.

* ``WindowLimit``: at most N events per subject (a credential's digest) in a sliding window;
  ``AddressLimit`` the same per client address (IPv6 per /64: one subscriber usually holds a
  whole /64).
* ``Budget``: a token bucket per subject (device keys' and addresses' evaluations an hour).
* ``Guesses``: guessing a secret (a complaint link, a report's status token, a key at sign-in):
  wrong guesses per address, counted before the secret is checked so parallel guesses cannot
  outrun the limit, and uses of one right secret.

In memory: a record is lost on restart; limits that must hold across restarts and processes (a
case's wrong PINs) are kept in the database by their workflow. A subject is forgotten once its
events are all older than the window.
"""

import hashlib
import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Literal

from hashguard.errors import Unavailable

Scope = Literal["address", "credential", "server"]


class RateLimited(Unavailable):
    """Too many attempts: ask again in ``retry_after`` seconds (the API answers 429 with
    Retry-After). The message says what was limited; ``scope`` whether the client's address,
    the credential used (a case, a link, a key) or the whole server (work shared by every
    caller) is past its limit."""

    def __init__(self, message: str, retry_after: float, scope: Scope = "address") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.scope: Scope = scope


class WindowLimit:
    """Per subject: at most ``allowed`` events within ``window`` seconds; a subject past it
    waits until its oldest event in the window ages out. ``clock`` gives monotonic seconds."""

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
        """How many subjects (addresses, IPv6 networks) are remembered."""
        with self._lock:
            return len(self._events)

    def reserve(self, address: str) -> tuple[float, float]:
        """Count an event of ``address`` before it happens, atomically: ``(0, token)`` when it
        may go on (``release(address, token)`` takes the event back if it does not count),
        else ``(seconds to wait, 0)`` and nothing is counted."""
        now = self.clock()
        client = self.subject(address)
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
            events = self._events.get(self.subject(address))
            if events is not None and token in events:
                events.remove(token)

    def subject(self, given: str) -> str:
        """Whom ``given`` is counted as: itself."""
        return given

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


class AddressLimit(WindowLimit):
    """A ``WindowLimit`` per client address: IPv6 addresses counted per /64 network."""

    def subject(self, given: str) -> str:
        return client(given)


class Budget:
    """A token bucket per subject: ``per_hour`` units, refilled continuously (``address``: the
    subjects are client addresses, IPv6 per /64)."""

    def __init__(
        self, per_hour: int, address: bool = False, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_hour = per_hour
        self.address = address
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # -> (tokens, when)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many subjects' buckets are held (not full)."""
        with self._lock:
            return len(self._buckets)

    def take(self, subject: str, count: int) -> float:
        """0 when ``count`` units may be spent now (and spends them), else the seconds to wait
        (infinite when ``count`` is more than the whole budget)."""
        if count > self.per_hour:
            return math.inf
        rate = self.per_hour / 3600
        now = self.clock()
        subject = client(subject) if self.address else subject
        with self._lock:
            self._forget_full(now, rate)
            tokens, when = self._buckets.pop(subject, (float(self.per_hour), now))
            tokens = min(float(self.per_hour), tokens + (now - when) * rate)
            if tokens < count:
                self._buckets[subject] = (tokens, now)
                return max(1.0, math.ceil((count - tokens) / rate))
            self._buckets[subject] = (tokens - count, now)
            return 0.0

    def give_back(self, subject: str, count: int) -> None:
        """Return ``count`` units ``take`` spent for ``subject`` that were not used."""
        subject = client(subject) if self.address else subject
        with self._lock:
            held = self._buckets.get(subject)
            if held is not None:
                self._buckets[subject] = (min(float(self.per_hour), held[0] + count), held[1])

    def _forget_full(self, now: float, rate: float) -> None:
        # a bucket refilled to the brim is as good as none: oldest-touched first
        while self._buckets:
            tokens, when = next(iter(self._buckets.values()))
            if tokens + (now - when) * rate < self.per_hour:
                return
            self._buckets.popitem(last=False)


class Guesses:
    """Guessing a secret that opens something (``what``: "complaint links"): at most
    ``failures`` wrong guesses per client address within ``window`` seconds, each counted before
    the secret is checked (``attempt``) and taken back once it proves right (``right``); and at
    most ``uses`` uses of one right secret an hour, so a link shared or leaked cannot be hammered.
    Secrets are kept only as digests."""

    def __init__(
        self,
        what: str,
        failures: int,
        window: float,
        uses: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.addresses = AddressLimit(failures, window, clock)
        self.secrets = WindowLimit(uses, 3600.0, clock)

    def attempt(self, address: str) -> float:
        """Count a guess from ``address`` before its secret is checked: the token to give
        ``right`` if it proves right. Raises RateLimited (scope address) when ``address`` made
        too many wrong guesses."""
        wait, token = self.addresses.reserve(address)
        if wait:
            raise RateLimited(f"too many wrong {self.what} from this address; try again in "
                              f"{wait:.0f} s", wait)  # fmt: skip
        return token

    def right(self, address: str, token: float, secret: str) -> None:
        """The guess ``token`` of ``address`` was ``secret``, a right one: it does not count
        against the address; one use of ``secret`` does. Raises RateLimited (scope
        credential) when ``secret`` was used too often this hour."""
        self.addresses.release(address, token)
        wait, _ = self.secrets.reserve(hashlib.sha256(secret.encode()).hexdigest())
        if wait:
            raise RateLimited(f"{self.what}: this one was used too often this hour; try again "
                              f"in {wait:.0f} s", wait, "credential")  # fmt: skip


def client(address: str) -> str:
    """Whom ``address`` stands for: itself, or its /64 network when it is IPv6 (an IPv4 address
    mapped into IPv6 stands for itself). A port some proxies append (``192.0.2.7:5001``,
    ``[2001:db8::1]:443``) is dropped, so each connection is not an address of its own; a value
    that is no address at all (a test client's name) stands for itself."""
    host = address
    if address.startswith("[") and "]" in address:
        host = address[1 : address.index("]")]
    elif address.count(":") == 1:  # IPv4 with a port (IPv6 has at least two colons)
        host = address.partition(":")[0]
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address
