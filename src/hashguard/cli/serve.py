"""``hashguard serve``: the detection service under uvicorn."""

import logging
from typing import TYPE_CHECKING

from hashguard.cli.common import ExitCode, fail
from hashguard.cli.settings import with_settings

if TYPE_CHECKING:  # the web stack loads only when a server starts
    from hashguard.api import ServiceSettings
    from hashguard.api.configuration import Configuration


@with_settings
def serve(configuration: "Configuration") -> None:
    """Run the detection service: hashguard's API under /v1, HMA's routes, /docs, /metrics.
    Settings come from flags, else HASHGUARD_* variables, else --config FILE, else defaults
    (hashguard config check shows them and what is wrong)."""
    settings = configuration.settings
    run(settings, settings.host, settings.port, settings.access_log)


def run(settings: "ServiceSettings", host: str, port: int, access_log: bool = False) -> None:
    """Serve until interrupted; exit status 2 if the database cannot be opened."""
    import uvicorn

    from hashguard.api.diagnosis import unreachable_links
    from hashguard.app import create_app, served
    from hashguard.device.oprf import OprfError
    from hashguard.store.database import DatabaseError, open_engine

    try:
        engine = open_engine(settings.database_url)
    except DatabaseError as error:
        fail(str(error), ExitCode.ERROR)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    warning = unreachable_links(settings.public_url)
    if warning is not None:  # on stderr, where the log goes
        logging.getLogger("hashguard.serve").warning("warning: %s", warning)
    try:
        app = create_app(engine, settings)
    except OprfError as error:
        engine.dispose()
        fail(str(error), ExitCode.ERROR)
    try:
        # No proxy-header rewriting: the service never uses client addresses.
        uvicorn.run(served(app), host=host, port=port, access_log=access_log, log_level="info",
                    server_header=False, proxy_headers=False)  # fmt: skip
    finally:
        engine.dispose()
