"""Bearer API keys and roles, checked on every route but the health routes.

``allow(Role.MATCHER, ...)`` is a dependency that answers 401 without a live key and 403 for a
key of another role; admin keys may use every route. The roles a route allows are kept on the
dependency, so the table of routes and roles is read from the app itself (``route_roles``).
"""

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute

from hashguard.api.errors import ApiError
from hashguard.store.api_keys import ApiKey, Role

_PREFIX = "bearer "


def allow(*roles: Role) -> Any:
    """A dependency giving the caller's key if its role is one of ``roles`` (or admin)."""
    allowed = frozenset(roles) | {Role.ADMIN}

    async def caller(request: Request) -> ApiKey:
        header = request.headers.get("authorization", "")
        if not header[: len(_PREFIX)].lower() == _PREFIX:
            raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        key: ApiKey | None = request.app.state.service.authenticate(header[len(_PREFIX) :])
        if key is None:
            raise ApiError(401, "the API key is not valid (unknown, malformed or revoked)")
        if key.role not in allowed:
            shown = ", ".join(sorted(role.value for role in allowed))
            raise ApiError(403, f"a {key.role.value} key may not use this route (allowed: {shown})")
        request.state.key = key
        return key

    caller.roles = allowed  # type: ignore[attr-defined]
    return Depends(caller)


def check_lists(key: ApiKey, names: Iterable[str]) -> None:
    """Raise 403 if ``key`` is limited to lists and ``names`` reaches beyond them."""
    outside = [name for name in names if not key.may_use(name)]
    if outside:
        raise ApiError(403, f"this key may not use list {outside[0]!r} "
                            f"(it is limited to {', '.join(key.lists)})")  # fmt: skip


def visible(key: ApiKey, names: Iterable[str]) -> list[str]:
    return [name for name in names if key.may_use(name)]


def route_roles(app: FastAPI) -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, path, roles) of every route; None for a public route."""
    table = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        roles = _roles(route.dependant.dependencies)
        for method in sorted(route.methods or ()):
            table.append((method, route.path, roles))
    return table


def _roles(dependencies: Iterable[Any]) -> frozenset[Role] | None:
    for dependency in dependencies:
        call: Callable[..., Any] | None = dependency.call
        if call is not None and hasattr(call, "roles"):
            roles: frozenset[Role] = call.roles
            return roles
        found = _roles(dependency.dependencies)
        if found is not None:
            return found
    return None
