"""Hashing an upload in memory within the server's decode budget (``media.budget``): one path
for every route and page that hashes media (``api.matching.hash_media``, the console's match
tester). Its cost is estimated from the header in a pool thread; the wait for its share is in
the event loop (a waiting request holds no pool thread); the decode runs in a pool thread."""

import io
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from hashguard.media.budget import DecodeBudget
from hashguard.media.errors import MediaError
from hashguard.media.limits import Limits
from hashguard.signals.base import SignalType
from hashguard.signals.batch import StreamHashes, decode_bytes, hash_stream


async def hashed(
    budget: DecodeBudget,
    data: bytes,
    signals: Sequence[SignalType[Any]],
    limits: Limits,
    variants: frozenset[str] = frozenset(),
) -> StreamHashes:
    """``data``'s hashes with ``signals`` (``signals.batch.hash_stream``), decoded within
    ``budget``: what decodes nothing, or is refused from its header, never waits. Raises
    DecodeBusy when the budget stayed full, and what ``hash_stream`` raises."""

    def work() -> StreamHashes:
        return hash_stream(io.BytesIO(data), len(data), signals, limits, variants)

    try:
        cost = await run_in_threadpool(decode_bytes, data, signals, limits)
    except MediaError:
        cost = 0  # refused or failed by the decoder at once, as from the header here
    if not cost:
        return await run_in_threadpool(work)
    async with budget.held(cost):
        return await run_in_threadpool(work)
