"""The service served by uvicorn in this process, on a loopback socket: for tests that need what
``hashguard serve`` cannot give a separate process (a signal type registered in this process, a
refresh interval it has no option for)."""

import gc
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from hashguard.app import served

STARTUP_SECONDS = 120


class _Loaded(logging.Handler):
    """Set ``event`` when the service logs that its lists are loaded, or could not be."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__(logging.INFO)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(("lists loaded", "loading the lists failed")):
            self.event.set()


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` (made by ``hashguard.app.create_app``) on a loopback port until the block ends:
    its URL, once its lists are loaded and it says it is ready. What the service sets for its
    whole process (the switch interval, frozen objects) is set back for the other tests."""
    switch_interval = sys.getswitchinterval()
    loaded = threading.Event()
    logger = logging.getLogger("hashguard.api")
    handler, level = _Loaded(loaded), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)  # requests wait in the backlog until uvicorn accepts them
    port = listening.getsockname()[1]
    config = uvicorn.Config(served(app), lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        assert loaded.wait(STARTUP_SECONDS), "the service never loaded its lists"
        assert app.state.service.readiness().ready, app.state.service.readiness().reason
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        listening.close()
        logger.removeHandler(handler)
        logger.setLevel(level)
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()
