"""The service's API keys by token: each looked up in the database off the event loop, and kept
for ``seconds``.

- **One lookup at a time per token.** The requests that need a token's key while it is looked
  up wait for that lookup, not one each, if it started less than ``seconds`` ago (what a
  request gets is never older than a cached entry may be). Measured at 2,000 requests/s: when
  an entry expired, every request until the first lookup returned started its own, each on a
  new thread of the pool, and all requests stalled for 25-110 ms.
- **Looked up again ahead of its expiry.** A request served from an entry past half its time
  starts a lookup in the background: under steady use no request waits for the database.
- **``seconds`` bounds how long a key revoked elsewhere is served** while the ``KeyWatch`` is
  down (with it up, the next request after the change looks the key up again).
- **A change to keys empties the cache** (``forget_all``: the ``KeyWatch`` saw a key revoked or
  rescoped elsewhere; ``forget``: revoked here). A lookup that started before the change may
  answer the requests that came before it, never the ones after, and its key is not cached.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Final

from starlette.concurrency import run_in_threadpool

from hashguard.store.api_keys import ApiKey, KeyWatch

_MAX_ENTRIES: Final = 10_000  # tokens cached; beyond, the cache starts again

log = logging.getLogger("hashguard.api")


class KeyCache:
    def __init__(
        self,
        lookup: Callable[[str], ApiKey | None],
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup  # ApiKeyStore.authenticate: blocking, run on the thread pool
        self._seconds = seconds
        self._clock = clock
        self._entries: dict[str, tuple[ApiKey, float]] = {}  # token: key, when it expires
        self._generation = 0  # counts key changes seen: a lookup that raced one is not cached
        # Lookups under way by token and generation: each with when it started.
        self._pending: dict[tuple[str, int], tuple[asyncio.Future[ApiKey | None], float]] = {}
        self._failing = False  # the last lookup failed (logged once until one succeeds)
        self.watch: KeyWatch | None = None  # what tells of keys changed by other processes

    async def get(self, token: str) -> ApiKey | None:
        """The live key of ``token``, or None."""
        if self.watch is not None and self.watch.changed():  # revoked elsewhere, perhaps
            self.forget_all()
        now = self._clock()
        cached = self._entries.get(token)
        if cached is not None and cached[1] > now:
            if cached[1] - now < self._seconds / 2:
                self._looked_up(token)  # in the background: this request does not wait
            return cached[0]
        # Shielded: a request that goes away does not cancel the others' lookup.
        return await asyncio.shield(self._looked_up(token))

    def forget(self, ident: str) -> None:
        """Key ``ident`` was revoked here: it stops working at once."""
        self._generation += 1
        for token in [t for t, (key, _) in self._entries.items() if key.id == ident]:
            del self._entries[token]

    def forget_all(self) -> None:
        """Keys changed: every cached key is looked up again, and no lookup under way is
        cached."""
        self._generation += 1
        self._entries.clear()

    def _looked_up(self, token: str) -> "asyncio.Future[ApiKey | None]":
        """The lookup of ``token`` under way since the last change to keys, if it started less
        than ``seconds`` ago (what it reads is then as fresh as a cached entry; an older one,
        a database slow to answer, is not joined), or a new one."""
        ident, now = (token, self._generation), self._clock()
        under_way = self._pending.get(ident)
        if under_way is not None and now - under_way[1] < self._seconds:
            return under_way[0]
        lookup = asyncio.ensure_future(self._fetch(token, self._generation, now))
        self._pending[ident] = (lookup, now)
        lookup.add_done_callback(partial(self._done, ident))
        return lookup

    def _done(self, ident: tuple[str, int], lookup: "asyncio.Future[ApiKey | None]") -> None:
        if self._pending.get(ident, (None,))[0] is lookup:  # not a newer one since
            del self._pending[ident]
        error = None if lookup.cancelled() else lookup.exception()
        if error is None:
            self._failing = False
        elif not self._failing:  # once until a lookup succeeds: the requests waiting see it too
            self._failing = True
            log.warning("looking up API keys failed: %s", error)

    async def _fetch(self, token: str, generation: int, started: float) -> ApiKey | None:
        key = await run_in_threadpool(self._lookup, token)
        if key is None:
            self._entries.pop(token, None)
        elif generation == self._generation:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[token] = (key, started + self._seconds)
        return key
