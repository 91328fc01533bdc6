"""The server's decode budget: how many uploads may be decoded at once, and how much memory
those decodes may hold together (each estimated from its header:
``signals.batch.decode_bytes``). Every route and page that decodes media takes its share first
(``api.decoding``), and so does the hotline's crawler; a request beyond the budget waits its
turn (first come, first served) for a bounded time, then is refused (503 with Retry-After), so
no caller, however many requests it sends, can make the server hold more decoded media than the
budget allows. At most ``waiters`` wait at once (each holds its upload in memory meanwhile):
one more is refused at once.

One budget for the whole server, no share per key: what one key may send is rate limiting's
business; this guards the machine. Media over a limit is refused before it waits (its cost is
measured from its header), so a media bomb is still answered at once."""

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from hashguard import errors
from hashguard.media.limits import MIB

_AVERAGE_WEIGHT = 0.2  # of the latest decode in the running average of how long one takes


class DecodeBusy(errors.Unavailable):
    """The budget stayed full for as long as a request may wait; ``retry_after`` seconds is
    when trying again is likely to find room."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class DecodeLoad:
    """What the budget holds now, and what it has refused since the server started."""

    decodes: int
    memory: int  # bytes
    waiting: int
    admitted: int
    refused: int
    average_seconds: float  # how long a decode held its share, lately


class _Waiter:
    __slots__ = ("admitted", "cost", "wake")

    def __init__(self, cost: int, wake: Callable[[], None]) -> None:
        self.cost = cost
        self.wake = wake
        self.admitted = False


class DecodeBudget:
    """At most ``decodes`` decodes at once holding at most ``memory`` bytes together; a request
    waits at most ``wait`` seconds for its share (0: refused at once when there is no room),
    and at most ``waiters`` requests wait at once (one more is refused at once). A decode of
    more than the whole budget runs alone."""

    def __init__(self, decodes: int, memory: int, wait: float, waiters: int) -> None:
        self.decodes = decodes
        self.memory = memory
        self.wait = wait
        self.waiters = waiters
        self._lock = threading.Lock()  # held briefly; the event loop and pool threads share it
        self._queue: deque[_Waiter] = deque()
        self._held_decodes = 0
        self._held_memory = 0
        self._admitted = 0
        self._refused = 0
        self._average = 0.0

    def load(self) -> DecodeLoad:
        with self._lock:
            return DecodeLoad(self._held_decodes, self._held_memory, len(self._queue),
                              self._admitted, self._refused, self._average)  # fmt: skip

    @asynccontextmanager
    async def held(self, memory: int) -> AsyncIterator[None]:
        """Hold ``memory`` bytes of the budget for the block (in the event loop); raises
        DecodeBusy."""
        cost = min(memory, self.memory)
        loop = asyncio.get_running_loop()
        admitted = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_settle, admitted)

        waiter = self._enter(cost, wake)
        if not waiter.admitted:
            try:
                await asyncio.wait_for(asyncio.shield(admitted), self.wait)
            except TimeoutError:
                self._give_up(waiter)
            except BaseException:  # cancelled (the client went away): leave no share behind
                if not self._give_up(waiter, refuse=False):
                    self._release(cost, 0.0)
                raise
        started = time.monotonic()
        try:
            yield
        finally:
            self._release(cost, time.monotonic() - started)

    @contextmanager
    def holding(self, memory: int, wait: float | None = None) -> Iterator[None]:
        """Hold ``memory`` bytes of the budget for the block, waiting in the calling thread
        (best a thread of its own: a pool thread waiting is one fewer for every route); raises
        DecodeBusy. With ``wait``, up to that long, in the queue however long it is: for
        threads whose owner bounds their number (the hotline's crawlers)."""
        cost = min(memory, self.memory)
        admitted = threading.Event()
        waiter = self._enter(cost, admitted.set, bounded=wait is None)
        if not waiter.admitted and not admitted.wait(self.wait if wait is None else wait):
            self._give_up(waiter)
        started = time.monotonic()
        try:
            yield
        finally:
            self._release(cost, time.monotonic() - started)

    def _enter(self, cost: int, wake: Callable[[], None], bounded: bool = True) -> _Waiter:
        """The request's place: admitted, or queued. Raises DecodeBusy when as many wait as
        may (``waiters``) and the queue is ``bounded`` for it."""
        waiter = _Waiter(cost, wake)
        with self._lock:
            if not self._queue and self._fits(cost):
                self._take(waiter)
                return waiter
            queued = len(self._queue)
            if queued < self.waiters or not bounded:
                self._queue.append(waiter)
                return waiter
            self._refused += 1
            retry_after = self._retry_after()
        raise DecodeBusy(
            f"the server is decoding as much media as it may at once ({self.decodes} "
            f"decodes, {self.memory // MIB:,} MiB) and as many uploads as may ({queued}) "
            f"already wait their turn; try again in {math.ceil(retry_after)} s",
            retry_after,
        )

    def _give_up(self, waiter: _Waiter, *, refuse: bool = True) -> bool:
        """Leave the queue; False when the share was given meanwhile (then it is held: the
        caller goes on, or releases it). Raises DecodeBusy when ``refuse``."""
        with self._lock:
            if waiter.admitted:
                return False
            self._queue.remove(waiter)
            self._admit()  # a large share at the head may have kept smaller ones waiting
            if not refuse:
                return True
            self._refused += 1
            retry_after = self._retry_after()
        raise DecodeBusy(
            f"the server is decoding as much media as it may at once ({self.decodes} "
            f"decodes, {self.memory // MIB:,} MiB) and this upload waited "
            f"{self.wait:g} s for its turn; try again in {math.ceil(retry_after)} s",
            retry_after,
        )

    def _retry_after(self) -> float:
        """Seconds until the queue, and one more, have likely been served (the lock held)."""
        return max(1.0, self._average * (len(self._queue) + 1) / self.decodes)

    def _release(self, cost: int, seconds: float) -> None:
        with self._lock:
            self._held_decodes -= 1
            self._held_memory -= cost
            self._average += _AVERAGE_WEIGHT * (seconds - self._average)
            self._admit()

    def _admit(self) -> None:
        while self._queue and self._fits(self._queue[0].cost):
            waiter = self._queue.popleft()
            self._take(waiter)
            waiter.wake()

    def _fits(self, cost: int) -> bool:
        return self._held_decodes < self.decodes and self._held_memory + cost <= self.memory

    def _take(self, waiter: _Waiter) -> None:
        waiter.admitted = True
        self._held_decodes += 1
        self._held_memory += waiter.cost
        self._admitted += 1


def _settle(admitted: "asyncio.Future[None]") -> None:
    if not admitted.done():
        admitted.set_result(None)
