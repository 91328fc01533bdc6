"""Running bulk jobs (imports, releases, loading a Matcher) without the cyclic garbage collector.

Such jobs allocate millions of short-lived objects that hold references (rows, entries), so the
collector keeps walking them, for about a third of the job's time. They form no cycles:
reference counting frees them at once either way.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block, then as it was (nesting is fine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
