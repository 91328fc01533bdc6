"""Replicas as a Ray Serve deployment: each replica runs the same app as ``hashguard serve``
(its own Service over the shared database: the lists loaded, from a snapshot if set, and the
change logs followed), behind Ray Serve's HTTP proxy.

Health, as Ray Serve 2.60 acts on it: the controller calls each replica's ``check_health``
every HEALTH_CHECK_SECONDS; a failed check only counts, the replica keeps getting requests, and
after 3 failures in a row Ray stops the replica and starts a new one (which loads every list
again). There is no "kept but not routed" state. So a replica fails its check only when a
restart helps (``Service.broken``: its follower has made no progress, no refresh and no row
read, for four times the stale bound), never for lag, a long refresh or a database restored,
whose causes every replica shares and which each replica handles itself. A lagging replica
keeps answering (from an index at most its lag old); its ``/status/ready`` and ``/metrics`` say
so. Ray Serve's proxy sets each request's client address itself: ``forwarded_allow_ips`` does
not apply here (docs/scaling.md).

``hashguard serve --engine ray --replicas N [--address ADDRESS]`` starts it.
"""

import asyncio
from typing import Any, Final

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashguard.api import ServiceSettings
from hashguard.app import create_app, served
from hashguard.errors import Unavailable
from hashguard.store.database import open_engine

NAME: Final = "hashguard"
HEALTH_CHECK_SECONDS: Final = 2.0  # how often Ray Serve asks each replica check_health
MAX_ONGOING_REQUESTS: Final = 100  # per replica: its event loop batches matches (not 5)
SERVED_BY: Final = b"x-served-by"  # the replica that answered, for tracing a request


class ServeFailed(Unavailable):
    """The deployment could not start; the message says why (the replicas' log says more)."""


class NotReady(Unavailable):
    """The replica's Service is not ready; the message is its reason."""


@serve.ingress()  # the app is made in each replica: __serve_build_asgi_app__
class Replica:
    def __init__(self, settings: ServiceSettings) -> None:
        self._engine = open_engine(settings.database_url)
        self._app = create_app(self._engine, settings)
        self._service = self._app.state.service
        self._name = serve.get_replica_context().replica_id.unique_id.encode()

    def __serve_build_asgi_app__(self) -> ASGIApp:
        app = served(self._app)
        name = self._name

        async def naming(scope: Scope, receive: Receive, send: Send) -> None:
            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (SERVED_BY, name)]
                await send(message)

            await app(scope, receive, sending if scope["type"] == "http" else send)

        return naming

    async def check_health(self) -> None:
        """Return unless restarting this replica would help (``Service.broken``); raise
        NotReady with the reason then. The first check, as the replica starts, waits for the
        lists to load, through the Service's own retries of a load that fails (a database
        unreachable at start: the replica serves once it can, and Ray logs a slow start)."""
        while self._service.loading:
            await asyncio.sleep(0.05)
        reason = self._service.broken()
        if reason is not None:
            raise NotReady(reason)


def application(settings: ServiceSettings, replicas: int) -> Any:
    """The deployment of ``replicas`` replicas over ``settings``, bound, for ``serve.run``."""
    deployment = serve.deployment(
        name=NAME,
        num_replicas=replicas,
        health_check_period_s=HEALTH_CHECK_SECONDS,
        ray_actor_options={"num_cpus": 0},  # each answers many requests; Ray's CPUs do batch work
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
    )(Replica)
    return deployment.bind(settings)


def start(settings: ServiceSettings, replicas: int) -> DeploymentHandle[Any]:
    """Run the deployment on the Ray cluster this process is connected to, Ray Serve's proxy
    listening on ``settings.host``:``settings.port``; returns once every replica is healthy."""
    serve.start(http_options={"host": settings.host, "port": settings.port})
    return serve.run(application(settings, replicas), name=NAME, route_prefix="/")


def run(settings: ServiceSettings, replicas: int, address: str | None) -> None:
    """Connect to the Ray cluster at ``address`` (a local one when None), serve until
    interrupted, then take the deployment down."""
    import ray

    # No address: a new local instance ("local"), never another cluster of this machine.
    ray.init(address=address or "local", include_dashboard=False if address is None else None)
    try:
        try:
            start(settings, replicas)
        except RuntimeError as error:  # Ray Serve's DeploymentFailed / a replica failing to start
            raise ServeFailed(f"the replicas did not start: {error}") from None
        print(f"serving {replicas} replica(s) on http://{settings.host}:{settings.port}",
              flush=True)  # fmt: skip
        asyncio.run(_forever())
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


async def _forever() -> None:
    await asyncio.Event().wait()
