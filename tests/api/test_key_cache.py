"""The service's key cache (``KeyCache``): a revocation that races a lookup (the lookup that
read the key before the revocation may answer its own request, but the key is not cached for
the next); one lookup for all the requests that need a token's key at once; a lookup ahead of
the expiry that no request waits for.

The key store here is a stand-in whose lookups are counted and can be held mid-way (the races
need a lookup that read the row before the revocation and returns after it); the real store,
watch and CLI are tested through a real server in test_service.py."""

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from hashguard.api.key_cache import KeyCache
from hashguard.store.api_keys import ApiKey, Role

KEY = ApiKey("k1", Role.MATCHER, (), "test", datetime(2026, 1, 1, tzinfo=UTC))
SECONDS = 60.0


class Watch:
    """A KeyWatch: ``changed()`` is true once after each change."""

    def __init__(self) -> None:
        self.pending = False

    def changed(self) -> bool:
        pending, self.pending = self.pending, False
        return pending


class Keys:
    """Lookups of token "held" read the row, then wait for ``release`` while ``holding``."""

    def __init__(self) -> None:
        self.revoked = False
        self.failing = False
        self.holding = True
        self.lookups = 0
        self.reading = threading.Event()
        self.release = threading.Event()

    def authenticate(self, token: str) -> ApiKey | None:
        self.lookups += 1
        if self.failing:
            raise ConnectionError("the database is gone")
        live = not self.revoked
        if token == "held" and self.holding:
            self.reading.set()
            self.release.wait(30)
        return KEY if live else None


def cache(now: list[float] | None = None) -> tuple[KeyCache, Keys, Watch]:
    keys, watch = Keys(), Watch()
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    cached = KeyCache(keys.authenticate, SECONDS, clock)
    cached.watch = watch  # type: ignore[assignment]  # a stand-in
    return cached, keys, watch


def get(cached: KeyCache, token: str) -> "asyncio.Future[ApiKey | None]":
    return asyncio.ensure_future(cached.get(token))


async def until(check: Callable[[], Awaitable[bool]]) -> bool:
    """Whether ``check()`` comes true within 30 s, asked again until it does."""
    deadline = asyncio.get_running_loop().time() + 30
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    cached, keys, watch = cache()

    async def run() -> tuple[object, object, object]:
        first = get(cached, "held")  # reads the key while it is live
        await asyncio.to_thread(keys.reading.wait, 30)
        keys.holding = False
        keys.revoked = True  # another process revokes it; the watch sees the change
        watch.pending = True
        second = await get(cached, "held")  # takes the change: looked up again, not joined
        keys.release.set()
        return await first, second, await get(cached, "held")

    first, second, third = asyncio.run(run())
    assert first == KEY  # the request that came before the revocation
    assert second is None
    assert third is None  # before the fix: the raced lookup had cached the revoked key


def test_a_key_revoked_here_is_forgotten_even_while_it_is_looked_up() -> None:
    cached, keys, _ = cache()

    async def run() -> tuple[object, object]:
        first = get(cached, "held")
        await asyncio.to_thread(keys.reading.wait, 30)
        keys.holding = False
        keys.revoked = True
        cached.forget(KEY.id)  # DELETE /v1/keys/{id}
        keys.release.set()
        return await first, await get(cached, "held")

    first, after = asyncio.run(run())
    assert first == KEY
    assert after is None


def test_keys_stay_cached_when_nothing_changed() -> None:
    cached, keys, _ = cache()

    async def run() -> tuple[object, object]:
        first = await get(cached, "other")
        keys.revoked = True  # unseen by the watch: the cache answers
        return first, await get(cached, "other")

    assert asyncio.run(run()) == (KEY, KEY)
    assert keys.lookups == 1


def test_requests_that_need_a_key_at_once_share_one_lookup() -> None:
    cached, keys, _ = cache()

    async def run() -> list[ApiKey | None]:
        waiting = [get(cached, "held") for _ in range(20)]
        await asyncio.to_thread(keys.reading.wait, 30)
        await asyncio.sleep(0)  # every request has asked
        keys.release.set()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(run()) == [KEY] * 20
    assert keys.lookups == 1  # before: one lookup, on a thread of its own, per request


def test_a_key_is_looked_up_again_ahead_of_its_expiry_while_requests_go_on() -> None:
    now = [0.0]
    cached, keys, _ = cache(now)

    async def run() -> None:
        keys.holding = False
        assert await get(cached, "held") == KEY
        now[0] = 0.6 * SECONDS  # past half its time: looked up again in the background
        keys.holding, keys.revoked = True, True  # and that lookup is slow to return
        keys.reading.clear()
        answer = get(cached, "held")
        await asyncio.to_thread(keys.reading.wait, 30)
        assert answer.done() and answer.result() == KEY  # nobody waited for the lookup
        keys.release.set()
        keys.holding = False
        # Once that lookup has returned, the key it found revoked is served no more, though
        # its entry had not expired (the clock stays at 0.6 of its time).

        async def refused() -> bool:
            return await get(cached, "held") is None

        assert await until(refused)

    asyncio.run(run())


def test_a_lookup_older_than_the_cache_time_is_not_joined() -> None:
    """A database slow to answer: a request joins a lookup under way only if what it reads is
    as fresh as a cached entry may be; a later one reads the database itself."""
    now = [0.0]
    cached, keys, _ = cache(now)

    async def run() -> tuple[object, object, object]:
        first = get(cached, "held")  # reads the key, then hangs
        await asyncio.to_thread(keys.reading.wait, 30)
        keys.holding = False
        keys.revoked = True  # unseen: the watch is down
        now[0] = 0.5 * SECONDS
        joined = get(cached, "held")  # its lookup started 0.5 of the cache time ago
        await asyncio.sleep(0)  # it asks now
        now[0] = 1.1 * SECONDS
        late = await get(cached, "held")  # not joined: a lookup of its own finds it revoked
        keys.release.set()
        return await first, await joined, late

    assert asyncio.run(run()) == (KEY, KEY, None)
    assert keys.lookups == 2


def test_a_failed_lookup_ahead_of_expiry_leaves_the_key_served_until_it_expires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    cached, keys, _ = cache(now)

    async def run() -> None:
        keys.holding = False
        assert await get(cached, "other") == KEY
        keys.failing = True
        now[0] = 0.6 * SECONDS
        assert await get(cached, "other") == KEY  # its lookup fails in the background

        async def tried() -> bool:
            return keys.lookups >= 2

        assert await until(tried)
        assert await get(cached, "other") == KEY
        now[0] = 1.1 * SECONDS  # expired: the request waits for the lookup, and sees it fail
        with pytest.raises(ConnectionError):
            await get(cached, "other")

    asyncio.run(run())
    failures = [r for r in caplog.records if "looking up API keys failed" in r.getMessage()]
    assert len(failures) == 1  # once until a lookup succeeds
