"""``hashguard serve``: the detection service under uvicorn or granian (``--server``)."""

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from hashguard.cli.common import Engine, ExitCode, RayAddressOption, fail
from hashguard.cli.settings import with_settings

if TYPE_CHECKING:  # the web stack loads only when a server starts
    from starlette.types import ASGIApp

    from hashguard.api import ServiceSettings
    from hashguard.api.configuration import Configuration


@with_settings
def serve(
    configuration: "Configuration",
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local: this process (--server: uvicorn or granian); ray: replicas on Ray "
            "Serve (the ray extra), behind its proxy on --host/--port.",
        ),
    ] = Engine.local,
    replicas: Annotated[
        int, typer.Option("--replicas", min=1, help="With --engine ray: how many replicas.")
    ] = 2,
    address: RayAddressOption = None,
) -> None:
    """Run the detection service: hashguard's API under /v1, HMA's routes, /docs, /metrics.
    Settings come from flags, else HASHGUARD_* variables, else --config FILE, else defaults
    (hashguard config check shows them and what is wrong)."""
    settings = configuration.settings
    if engine is Engine.ray:
        try:
            from hashguard.cluster import serve as ray_serve
        except ImportError as error:
            fail(f"--engine ray needs the ray extra (pip install 'hashguard[ray]'): {error}",
                 ExitCode.ERROR)  # fmt: skip
        try:
            ray_serve.run(settings, replicas, address)
        except ray_serve.ServeFailed as error:
            fail(str(error), ExitCode.ERROR)
        return
    run(settings, settings.host, settings.port, settings.access_log)


def run(settings: "ServiceSettings", host: str, port: int, access_log: bool = False) -> None:
    """Serve until interrupted; exit status 2 if the database cannot be opened."""
    from hashguard.api.access_log import CaseNumbersHidden
    from hashguard.api.diagnosis import unreachable_links
    from hashguard.app import create_app, served
    from hashguard.device.oprf import OprfError
    from hashguard.store.database import DatabaseError, open_engine

    if settings.server == "granian":
        try:
            import granian  # noqa: F401
        except ImportError as error:
            fail(f"--server granian needs the granian extra (pip install 'hashguard[granian]'): "
                 f"{error}", ExitCode.ERROR)  # fmt: skip
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
    for name in ("uvicorn.access", "granian.access"):
        logging.getLogger(name).addFilter(CaseNumbersHidden())
    # A reverse proxy on this machine says who the client is (X-Forwarded-For): every public
    # route's limits count per client address (the desks' cookie is Secure whatever the proxy
    # says). It is believed from the proxies named (forwarded_allow_ips, 127.0.0.1 by
    # default) only, so nobody else can claim another address.
    try:
        if settings.server == "granian":
            _granian(served(app), host, port, access_log, settings.forwarded_allow_ips)
        else:
            import uvicorn

            uvicorn.run(served(app), host=host, port=port, access_log=access_log,
                        log_level="info", server_header=False, proxy_headers=True,
                        forwarded_allow_ips=settings.forwarded_allow_ips)  # fmt: skip
    finally:
        engine.dispose()


# The access log's line under granian, as uvicorn writes it: client, request line, status.
_GRANIAN_ACCESS = '%(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d'


def _granian(app: "ASGIApp", host: str, port: int, access_log: bool, proxies: str) -> None:
    """``app`` on granian's server embedded in this process (its event loop, uvloop's; one
    process, as under uvicorn: the index lives in it), until SIGINT or SIGTERM, which stop it
    gracefully (lifespan shutdown included); then, as uvicorn does, the process ends by that
    signal, so a supervisor sees the same exit either way."""
    import asyncio
    import signal

    import uvloop
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    server = Server(wrap_asgi_with_proxy_headers(app, proxies), address=host, port=port,
                    interface=Interfaces.ASGI, http=HTTPModes.http1, log_access=access_log,
                    log_access_format=_GRANIAN_ACCESS, websockets=False)  # fmt: skip
    received: list[signal.Signals] = []

    def stop(number: signal.Signals) -> None:
        received.append(number)
        server.stop()  # type: ignore[no-untyped-call]  # granian declares no types here

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop, number)
        await server.serve()

    uvloop.run(serve())
    if received:
        signal.signal(received[0], signal.SIG_DFL)
        signal.raise_signal(received[0])
