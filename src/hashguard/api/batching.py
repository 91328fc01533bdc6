"""Work done on threads of their own, in batches: what requests hand over while a batch runs goes
into the next one. Nothing waits for a batch to fill: a lone request is served at once.

- ``MatchBatcher``: the index's kernels run without the interpreter lock, so matching uses the
  second core while the event loop goes on with requests; and one ``match_all`` over many
  queries costs far less per query than one call per request (the index is batch-first).
- ``MatchRecorder``: the matches of concurrent requests are stored in one transaction, and each
  request is answered once its matches are committed. While the service runs a bulk job on
  SQLite (one writer: an import holds it for seconds), an answer waits at most ``RECORD_WAIT``
  and its matches are committed when the job ends; PostgreSQL never makes them wait.
  (Measured: a thread-pool call per request made every matching request wait tens of
  milliseconds for the interpreter lock.)
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from hashguard.matching import Match, Matcher
from hashguard.matching.query import Query
from hashguard.store.match_log import LoggedMatch, MatchLog

_MAX_ITEMS: Final = 4096  # per batch: a huge request does not hold up the others for long
RECORD_WAIT: Final = 0.02  # seconds an answer waits for its matches' commit

log = logging.getLogger("hashguard.api")

Work = TypeVar("Work")
Result = TypeVar("Result")


@dataclass
class _Job(Generic[Work, Result]):
    work: Work
    size: int
    future: "asyncio.Future[Result]"
    loop: asyncio.AbstractEventLoop


class _BatchThread(Generic[Work, Result]):
    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job[Work, Result] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def _submit(self, work: Work, size: int) -> Result:
        loop = asyncio.get_running_loop()
        job: _Job[Work, Result] = _Job(work, size, loop.create_future(), loop)
        self._jobs.put(job)
        return await job.future

    def close(self) -> None:
        """Finish what was handed over, then stop."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch, size, stop = [first], first.size, False
            while size < _MAX_ITEMS:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
                size += job.size
            self._serve(batch)
            if stop:
                return

    def _serve(self, batch: list[_Job[Work, Result]]) -> None:
        try:
            results = self._process([job.work for job in batch])
        except Exception as error:
            if len(batch) > 1:  # one job's fault must not fail the others: each on its own
                for job in batch:
                    self._serve([job])
                return
            batch[0].loop.call_soon_threadsafe(_fail, batch[0].future, error)
            return
        for job, result in zip(batch, results, strict=True):
            job.loop.call_soon_threadsafe(_resolve, job.future, result)

    def _process(self, works: list[Work]) -> list[Result]:
        raise NotImplementedError


_Work = tuple[Matcher, Sequence[Query], frozenset[str]]


class MatchBatcher(_BatchThread[_Work, list[list[Match]]]):
    def __init__(self) -> None:
        super().__init__("hashguard-match")

    async def match(
        self, matcher: Matcher, items: Sequence[Query], lists: Collection[str]
    ) -> list[list[Match]]:
        """``matcher.match_all(items, lists)``, batched with other requests' queries."""
        return await self._submit((matcher, items, frozenset(lists)), len(items))

    def _process(self, works: list[_Work]) -> list[list[list[Match]]]:
        groups: dict[tuple[int, frozenset[str]], list[int]] = {}
        for number, (matcher, _items, lists) in enumerate(works):
            groups.setdefault((id(matcher), lists), []).append(number)
        results: list[list[list[Match]]] = [[] for _ in works]
        for numbers in groups.values():
            matcher, _items, lists = works[numbers[0]]
            found = matcher.match_all([item for n in numbers for item in works[n][1]], lists)
            start = 0
            for n in numbers:
                results[n] = found[start : start + len(works[n][1])]
                start += len(works[n][1])
        return results


class MatchRecorder(_BatchThread[Sequence[LoggedMatch], None]):
    def __init__(self, log: MatchLog) -> None:
        super().__init__("hashguard-match-log")
        self.log = log

    async def record(self, matches: Sequence[LoggedMatch], busy: bool = False) -> None:
        """Store ``matches``; returns once they are committed, or, when the database is
        ``busy`` with a bulk write, after ``RECORD_WAIT`` with the commit still to come."""
        pending = asyncio.ensure_future(self._submit(matches, len(matches)))
        pending.add_done_callback(_report)
        await asyncio.wait({pending}, timeout=RECORD_WAIT if busy else None)

    def _process(self, works: list[Sequence[LoggedMatch]]) -> list[None]:
        self.log.record([match for matches in works for match in matches])
        return [None] * len(works)


def _report(done: "asyncio.Future[None]") -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("matches could not be stored in the match log: %s", done.exception())


def _resolve(future: "asyncio.Future[Result]", result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: "asyncio.Future[Any]", error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
