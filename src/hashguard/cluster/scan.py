"""The scan's Ray engine: one Ray task per part, each running ``scan_part`` with the Matcher
put once into the object store (each node fetches it once, its workers share it). A task whose
worker dies, or whose node is lost, runs again (``max_retries``); the driver takes each part's
rows as it finishes (``ray.wait``), to write them."""

import os
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pyarrow as pa

from hashguard.errors import Unavailable
from hashguard.matching import Matcher
from hashguard.scan.source import Reader, StoredFile
from hashguard.scan.work import ScanSettings, scan_part

# Each part's task runs again when its worker process or node dies, up to this many times.
RETRIES: Final = 5
_IN_FLIGHT_PER_CPU = 2


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
) -> Iterator[tuple[int, pa.Table]]:
    """Each part (number, files) scanned on Ray, as (number, rows), in the order they finish.
    Connects to the cluster at ``address``, else starts a local one of ``workers`` CPUs (a
    connection this process has already is used as it is). Raises RayMissing,
    RayUnavailable."""
    ray = _ray()
    started = _connect(ray, address, workers)
    try:
        remote = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_scan_part)
        shared = ray.put(matcher)
        waiting = list(reversed(parts))
        running: dict[Any, int] = {}
        window = _IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
        while waiting or running:
            while waiting and len(running) < window:
                number, files = waiting.pop()
                running[remote.remote(list(files), reader, shared, settings)] = number
            [finished], _ = ray.wait(list(running), num_returns=1)
            number = running.pop(finished)
            try:
                rows = ray.get(finished)
            except ray.exceptions.RayError as error:
                raise RayUnavailable(
                    f"part {number} failed on Ray after {RETRIES} retries: "
                    f"{' '.join(str(error).split())[:300]}; run the scan again to resume"
                ) from None
            yield number, rows
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Whether this started the connection (and so ends it)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=max(1, workers), **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {address}" if address else "locally"
        raise RayUnavailable(f"cannot start Ray {where}: {' '.join(str(error).split())}") from None
    return True


def _scan_part(
    files: list[StoredFile], reader: Reader, matcher: Matcher, settings: ScanSettings
) -> pa.Table:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return scan_part(files, reader, matcher, settings)
