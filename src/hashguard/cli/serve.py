"""``hashguard serve``: the detection service under uvicorn."""

import ipaddress
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from hashguard.cli.common import DatabaseOption, ExitCode, fail

if TYPE_CHECKING:  # the web stack loads only when a server starts
    from hashguard.api import ServiceSettings


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a network (e.g. 10.1.2.0/24)") from None


def serve(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
    fetch_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--fetch-host",
            envvar="HASHGUARD_FETCH_HOSTS",
            help="Allow hashing media by URL from this host (repeat; '*.example.org' for its "
            "subdomains). Off by default.",
        ),
    ] = None,
    fetch_networks: Annotated[
        list[str] | None,
        typer.Option(
            "--fetch-network",
            help="A private network URLs may resolve to (repeat; e.g. an internal CDN). "
            "Private, loopback and link-local addresses are refused otherwise.",
        ),
    ] = None,
    max_upload_mb: Annotated[
        int, typer.Option(min=1, envvar="HASHGUARD_MAX_UPLOAD_MB", help="Largest media upload.")
    ] = 64,
    release_key: Annotated[
        Path | None, typer.Option(help="The owner's signing key, to sign releases via the API.")
    ] = None,
    release_log: Annotated[
        Path | None, typer.Option(help="The transparency log directory for releases.")
    ] = None,
    release_dir: Annotated[
        Path | None, typer.Option(help="Where releases made via the API are written.")
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every request line (never keys or bodies).")
    ] = False,
    secret_file: Annotated[
        Path,
        typer.Option(
            envvar="HASHGUARD_SECRET_FILE",
            help="The server's secret (webhook signatures); made on first use.",
        ),
    ] = Path("hashguard-secret.key"),
    public_url: Annotated[
        str, typer.Option(help="This service's address as users reach it (complaint links).")
    ] = "",
    provider_name: Annotated[str, typer.Option(help="Who reports (provider reports).")] = "",
    provider_email: Annotated[str, typer.Option(help="The provider's contact e-mail.")] = "",
    provider_country: Annotated[str, typer.Option(help="The provider's country (NL).")] = "",
    report_key: Annotated[
        Path | None, typer.Option(help="The Ed25519 key that signs EU reports.")
    ] = None,
    eu_centre_url: Annotated[str, typer.Option(help="Where EU reports are sent.")] = "",
    ncmec_url: Annotated[str, typer.Option(help="NCMEC's CyberTipline API base URL.")] = "",
    ncmec_user: Annotated[
        str, typer.Option(help="NCMEC user (password: HASHGUARD_NCMEC_PASSWORD).")
    ] = "",
    oprf_key: Annotated[
        Path | None,
        typer.Option(help="On-device checks: the VOPRF key to evaluate with (device keygen)."),
    ] = None,
    oprf_limit: Annotated[
        int, typer.Option(min=1, help="Evaluations per hour per device key.")
    ] = 2000,
    database_url: DatabaseOption = None,
) -> None:
    """Run the detection service: hashguard's API under /v1, HMA's routes, /docs, /metrics."""
    from hashguard.api import ServiceSettings
    from hashguard.media.limits import MIB, Limits

    limit = max_upload_mb * MIB
    settings = ServiceSettings(
        database_url=database_url,
        max_upload_bytes=limit,
        media_limits=Limits(max_image_bytes=limit, max_video_bytes=limit),
        fetch_hosts=tuple(fetch_hosts or ()),
        fetch_networks=tuple(_network(n) for n in fetch_networks or ()),
        release_key=release_key,
        release_log=release_log,
        release_dir=release_dir,
        secret_file=secret_file,
        public_url=public_url or f"http://{host}:{port}",
        provider_name=provider_name,
        provider_email=provider_email,
        provider_country=provider_country.upper(),
        report_key=report_key,
        eu_centre_url=eu_centre_url,
        ncmec_url=ncmec_url,
        ncmec_user=ncmec_user,
        oprf_key=oprf_key,
        oprf_limit=oprf_limit,
    )
    run(settings, host, port, access_log)


def unreachable_links(public_url: str) -> str | None:
    """Why the complaint links in statements of reasons, made from ``public_url``, would not
    reach users (its host is a loopback or unspecified address), or None."""
    host = (urlsplit(public_url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost" and not host.endswith(".localhost"):
            return None
    else:
        if not (address.is_loopback or address.is_unspecified):
            return None
    return (f"complaint links in statements of reasons will point to {public_url}, which "
            "users cannot reach: start the service with --public-url set to the address "
            "users reach it at (e.g. https://hashguard.example.org)")  # fmt: skip


def run(settings: "ServiceSettings", host: str, port: int, access_log: bool = False) -> None:
    """Serve until interrupted; exit status 2 if the database cannot be opened."""
    import uvicorn

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
