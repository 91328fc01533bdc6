"""The service's key cache against a revocation that races a lookup: the lookup that read the
key before the revocation may answer its own request, but the key is not cached for the next.

The key store here is a stand-in whose lookup can be held mid-way (the race needs a lookup that
read the row before the revocation and returns after it); the real store, watch and CLI are
tested through a real server in test_service.py."""

import asyncio
import threading
import types

from hashguard.api.service import Service


class Watch:
    """A KeyWatch: ``changed()`` is true once after each change."""

    def __init__(self) -> None:
        self.pending = False

    def changed(self) -> bool:
        pending, self.pending = self.pending, False
        return pending


class Keys:
    """The first lookup of token "held" reads its row, then waits for ``release``."""

    def __init__(self) -> None:
        self.revoked = False
        self.reading = threading.Event()
        self.release = threading.Event()

    def authenticate(self, token: str) -> str | None:
        live = not self.revoked
        if token == "held" and not self.reading.is_set():  # the first lookup only
            self.reading.set()
            self.release.wait(30)
        return "KEY" if live else None


def service() -> types.SimpleNamespace:
    settings = types.SimpleNamespace(key_cache_seconds=60.0)
    served = types.SimpleNamespace(
        _key_watch=Watch(), _key_cache={}, _key_generation=0, keys=Keys(), settings=settings
    )
    served._forget_keys = lambda: Service._forget_keys(served)  # type: ignore[arg-type]
    return served


def authenticate(served: types.SimpleNamespace, token: str) -> "asyncio.Future[object]":
    return asyncio.ensure_future(Service.authenticate(served, token))  # type: ignore[arg-type]


def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    served = service()

    async def run() -> tuple[object, object, object]:
        first = authenticate(served, "held")  # reads the key while it is live
        await asyncio.to_thread(served.keys.reading.wait, 30)
        served.keys.revoked = True  # another process revokes it; the watch sees the change
        served._key_watch.pending = True
        second = await authenticate(served, "held")  # takes the change: looked up again
        served.keys.release.set()
        return await first, second, await authenticate(served, "held")

    first, second, third = asyncio.run(run())
    assert first == "KEY"  # the request that came before the revocation
    assert second is None
    assert third is None  # before the fix: the raced lookup had cached the revoked key


def test_a_key_revoked_here_is_forgotten_even_while_it_is_looked_up() -> None:
    served = service()

    async def run() -> tuple[object, object]:
        first = authenticate(served, "held")
        await asyncio.to_thread(served.keys.reading.wait, 30)
        served.keys.revoked = True
        Service.forget_key(served, "KEY")  # type: ignore[arg-type]  # DELETE /v1/keys/{id}
        served.keys.release.set()
        return await first, await authenticate(served, "held")

    first, after = asyncio.run(run())
    assert first == "KEY"
    assert after is None


def test_keys_stay_cached_when_nothing_changed() -> None:
    served = service()

    async def run() -> tuple[object, object]:
        first = await authenticate(served, "other")
        served.keys.revoked = True  # unseen by the watch: the cache answers
        return first, await authenticate(served, "other")

    assert asyncio.run(run()) == ("KEY", "KEY")
