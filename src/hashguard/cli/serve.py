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

    from hashguard.api.access_log import CaseNumbersHidden
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
    logging.getLogger("uvicorn.access").addFilter(CaseNumbersHidden())
    try:
        # A reverse proxy on this machine says who the client is and whether it came over https
        # (X-Forwarded-For, X-Forwarded-Proto): the victims' routes limit wrong PINs per client,
        # and the desk's cookie is Secure over https. Those headers are believed from 127.0.0.1
        # only, so nobody else can claim another address.
        uvicorn.run(served(app), host=host, port=port, access_log=access_log, log_level="info",
                    server_header=False, proxy_headers=True,
                    forwarded_allow_ips="127.0.0.1")  # fmt: skip
    finally:
        engine.dispose()
