"""Waiting for what a server does in its own threads (a webhook, a crawl): polled with a
deadline, never a fixed sleep."""

import threading
import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """``check()`` once it is true, or its last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not (found := check()) and time.monotonic() < deadline:
        pause.wait(0.05)
    return found
