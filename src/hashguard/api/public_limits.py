"""The limits on guessing secrets over the routes anyone may call: complaint links
(``/complaints/{token}``, ``POST /v1/complaints``), reports' status tokens
(``/report/status``, ``GET /v1/hotline/reports/status``) and keys at sign-in (``/desk/login``,
``/hosters/login``), each kind with limits of its own (``rate_limit.Guesses``).

The other public limits live with their workflows: cases opened and wrong PINs
(``victims.cases``), hotline reports (``hotline.intake``), device evaluations
(``routes_device``), the monitor's figures (``web.monitor_pages``). Every refusal is a
``RateLimited``, answered 429 with Retry-After and counted in ``/metrics``
(``hashguard_rate_limited_total{route, scope}``)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from hashguard.api.settings import ServiceSettings
from hashguard.errors import NotFound
from hashguard.rate_limit import Guesses

T = TypeVar("T")


@dataclass(frozen=True)
class PublicLimits:
    complaints: Guesses
    report_tokens: Guesses
    sign_in: Guesses

    @classmethod
    def of(cls, settings: ServiceSettings) -> "PublicLimits":
        def guesses(what: str) -> Guesses:
            return Guesses(what, settings.guess_failures, settings.guess_window,
                           settings.secret_uses_per_hour)  # fmt: skip

        return cls(guesses("complaint links"), guesses("report status tokens"),
                   guesses("keys at sign-in"))  # fmt: skip


def client_of(request: Request) -> str | None:
    """The address ``request`` came from (the proxy's forwarded one where it is trusted: the
    server core, uvicorn or granian, resolves X-Forwarded-For from ``forwarded_allow_ips``;
    granian keeps a port the proxy appended, which ``rate_limit.client`` drops)."""
    return request.client.host if request.client is not None else None


async def guarded(
    request: Request, guesses: Guesses, secret: str, check: Callable[[], Awaitable[T]]
) -> T:
    """What ``check()`` finds for ``secret``, within ``guesses``' limits: a guess is counted
    against the client's address before ``check`` runs and stays counted when it raises
    NotFound (a wrong secret); a right one counts as a use of ``secret``. Raises RateLimited
    (before ``check`` runs for an address past its limit), and what ``check`` raises."""
    address = client_of(request) or ""
    token = guesses.attempt(address)
    try:
        found = await check()
    except NotFound:
        raise
    except BaseException:  # not a wrong guess (the database failed, the form was bad)
        guesses.addresses.release(address, token)
        raise
    guesses.right(address, token, secret)
    return found


def limits_of(request: Request) -> PublicLimits:
    limits: PublicLimits = request.app.state.service.limits
    return limits
