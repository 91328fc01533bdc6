"""The scan's Ray engine: one Ray task per part, each running ``scan_part``. The Matcher is put
once into the object store, and each worker process gets and unpickles it once, for its first
part, then keeps it for the parts that follow (a task is given the reference inside a list, so
Ray does not resolve it for every task). A task whose worker dies, or whose node is lost, or
that found the source unavailable, runs again (``max_retries``); the driver takes each part's
rows as it finishes (``ray.wait``), to write them."""

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pyarrow as pa

from hashguard.errors import Unavailable
from hashguard.matching import Matcher
from hashguard.scan.source import Reader, SourceUnavailable, StoredFile
from hashguard.scan.work import ScanSettings, scan_part

# Each part's task runs again when its worker process or node dies, or the source was
# unavailable, up to this many times.
RETRIES: Final = 5
_IN_FLIGHT_PER_CPU = 2
# In a worker process: the Matcher of the scan under way, by its object reference's id.
_MATCHER: dict[str, Matcher] = {}


class RayMissing(Unavailable):
    """``--engine ray`` without Ray installed."""


class RayUnavailable(Unavailable):
    """No Ray cluster at the address given, or a part failed on every attempt."""


def _ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home from a scan
    try:
        import ray
    except ImportError:
        raise RayMissing("--engine ray needs Ray: pip install 'hashguard[ray]'") from None
    return ray


def scan_on_ray(
    parts: Sequence[tuple[int, Sequence[StoredFile]]],
    reader: Reader,
    matcher: Matcher,
    settings: ScanSettings,
    workers: int,
    address: str | None = None,
    loads: Counter[int] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """Each part (number, files) scanned on Ray, as (number, rows), in the order they finish.
    Connects to the cluster at ``address``, else starts a local one of ``workers`` CPUs (a
    connection this process has already is used as it is). ``loads`` counts, per worker
    process id, the times it loaded the Matcher (once each). Raises RayMissing,
    RayUnavailable, SourceUnavailable."""
    ray = _ray()
    started = _connect(ray, address, workers)
    running: dict[Any, int] = {}
    try:
        retried = [SourceUnavailable]
        remote = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=retried)(_scan_part)
        shared = [ray.put(matcher)]  # in a list: each task gets the reference, not a copy
        waiting = list(reversed(parts))
        window = _IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
        while waiting or running:
            while waiting and len(running) < window:
                number, files = waiting.pop()
                running[remote.remote(list(files), reader, shared, settings)] = number
            [finished], _ = ray.wait(list(running), num_returns=1)
            number = running.pop(finished)
            try:
                rows, worker, loaded = ray.get(finished)
            except ray.exceptions.RayTaskError as error:  # the task's own, after its retries
                if isinstance(error.cause, SourceUnavailable):
                    raise error.cause from None
                raise RayUnavailable(
                    f"part {number} failed on Ray: {type(error.cause).__name__}: "
                    f"{' '.join(str(error.cause).split())[:300]}"
                ) from None
            except ray.exceptions.RayError as error:  # a worker or node lost every time
                raise RayUnavailable(
                    f"part {number} failed on Ray: its worker or node was lost "
                    f"{RETRIES + 1} times ({type(error).__name__}); run the scan again to resume"
                ) from None
            if loads is not None and loaded:
                loads[worker] += 1
            yield number, rows
    finally:
        if started:
            ray.shutdown()
        else:  # a cluster that goes on: stop what this scan left running on it
            for ref in running:
                ray.cancel(ref, force=False)


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Whether this started the connection (and so ends it)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": a new instance of this scan's own, never another cluster of this machine
            # (Ray would otherwise join the last one started here, or RAY_ADDRESS's).
            ray.init(address="local", num_cpus=max(1, workers), **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {address}" if address else "locally"
        raise RayUnavailable(f"cannot start Ray {where}: {' '.join(str(error).split())}") from None
    return True


def _scan_part(
    files: list[StoredFile], reader: Reader, shared: list[Any], settings: ScanSettings
) -> tuple[pa.Table, int, bool]:
    """A part's rows, this worker's process id, and whether it loaded the Matcher for it."""
    import ray
    from threadpoolctl import threadpool_limits

    [ref] = shared
    loaded = ref.hex() not in _MATCHER
    if loaded:
        _MATCHER.clear()  # a worker kept from an earlier scan holds no other lists
        _MATCHER[ref.hex()] = ray.get(ref)
    with threadpool_limits(limits=1, user_api="blas"):
        rows = scan_part(files, reader, _MATCHER[ref.hex()], settings)
    return rows, os.getpid(), loaded
