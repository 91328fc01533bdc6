"""Bearer API keys and roles, checked on every route but the health routes.

``allow(Role.MATCHER, ...)`` is a dependency that answers 401 without a live key and 403 for a
key of another role; admin keys may use every route. The roles a route allows are its OpenAPI
security scopes, so the table of routes and roles is read from the app itself (``route_roles``).
"""

from collections.abc import Callable, Iterable, Iterator
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import Depends, FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hashguard.api.errors import HMA_PREFIXES, ApiError
from hashguard.store.api_keys import ApiKey, Role

T = TypeVar("T")

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key, made with `hashguard keys create --role ROLE`.",
)


def allow(*roles: Role, admin: bool = True, why: str = "") -> Any:
    """A dependency giving the caller's key if its role is one of ``roles`` (or admin, unless
    ``admin`` is False: a hoster's own answers). The roles appear in the OpenAPI document as the
    route's security scopes. ``why`` ends the 403's message."""
    allowed = frozenset(roles) | ({Role.ADMIN} if admin else set())

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> ApiKey:
        if credentials is None:
            raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'")
        key: ApiKey | None = await request.app.state.service.authenticate(credentials.credentials)
        if key is None:
            raise ApiError(401, "the API key is not valid (unknown, malformed or revoked)")
        if key.role not in allowed:
            shown = ", ".join(sorted(role.value for role in allowed))
            raise ApiError(403, f"a {key.role.value} key may not use this route (allowed: "
                                f"{shown}){': ' + why if why else ''}")  # fmt: skip
        request.state.key = key
        one_value_each(request)  # after the key: a refusal of what was asked tells the caller
        return key  # (of a role the route admits) that the route let it in

    _KEYED.add(caller)
    return Security(caller, scopes=[role.value for role in Role if role in allowed])


_KEYED: set[Callable[..., Any]] = set()  # allow()'s dependencies


def one_value_each(request: Request) -> None:
    """Refuse (422; 400 on HMA's routes) a query that gives a parameter of the route more than
    once: each takes one value, and which of several the route would read (FastAPI's choice:
    the last) is not for the client to guess. Parameters the route does not take are ignored,
    repeated or not."""
    taken = _query_names(request.scope.get("route"))
    names = [name for name, _ in request.query_params.multi_items() if name in taken]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:  # as a malformed parameter is answered: HMA's clients expect 400
        status = 400 if request.url.path.startswith(HMA_PREFIXES) else 422
        raise ApiError(status, f"query parameter {repeated!r} is given more than once: it "
                               "takes one value")  # fmt: skip


async def one_value_each_unkeyed(request: Request) -> None:
    """The app's dependency (it runs before a route's own): ``one_value_each`` for the API's
    routes that take no key (a keyed route checks once the key is checked, in ``allow``; pages
    are left as they are, a repeated ``lang`` read as the framework reads it)."""
    route = request.scope.get("route")
    if getattr(route, "include_in_schema", False) and not _keyed(route):
        one_value_each(request)


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters ``route`` (an APIRoute; None: no route) reads one value of (not
    those that take a list, such as ``signals``)."""
    return _of_route(route, "query_names", lambda dependants: frozenset(
        field.alias for dependant in dependants for field in dependant.query_params
        if not _many(field.field_info.annotation)
    ), frozenset())  # fmt: skip


def _many(annotation: Any) -> bool:
    """Whether a parameter of type ``annotation`` takes several values (a list, or a list or
    None)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _many(get_args(annotation)[0])
    if (origin or annotation) in (list, tuple, set, frozenset):
        return True
    return origin in (Union, UnionType) and any(_many(kind) for kind in get_args(annotation))


def _keyed(route: Any) -> bool:
    """Whether ``route`` (an APIRoute; None: no route) has one of allow()'s dependencies."""
    return _of_route(route, "keyed", lambda dependants: any(
        dependant.call in _KEYED for dependant in dependants
    ), False)  # fmt: skip


def _of_route(route: Any, name: str, found: Callable[[list[Dependant]], T], default: T) -> T:
    """``found`` of ``route``'s dependants (its own and all below), worked out once and kept
    on the route (routes are not hashable); ``default`` for what is not an APIRoute."""
    if not isinstance(route, APIRoute):
        return default
    kept: dict[str, Any] = vars(route).setdefault("_hashguard_facts", {})
    if name not in kept:
        kept[name] = found([route.dependant, *_dependants(route.dependant)])
    value: T = kept[name]
    return value


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def check_lists(key: ApiKey, names: Iterable[str]) -> None:
    """Raise 403 if ``key`` is limited to lists and ``names`` reaches beyond them."""
    outside = [name for name in names if not key.may_use(name)]
    if outside:
        raise ApiError(403, f"this key may not use list {outside[0]!r} "
                            f"(it is limited to {', '.join(key.lists)})")  # fmt: skip


def actor(key: ApiKey) -> str:
    """Who a change made with ``key`` is by, as the audit and change logs record it."""
    return f"key:{key.id}" + (f" ({key.name})" if key.name else "")


def partner(key: ApiKey) -> str:
    """Who a key is to others (a follower's receipts, a partner's outcomes in a victim's case):
    its service, else its name, else its id."""
    return key.service or key.name or f"key:{key.id}"


def analyst(key: ApiKey) -> str:
    """Who assesses with ``key`` (a hotline analyst): its name, else its id. Four eyes count
    people, so two keys of one person (one name) are one analyst."""
    return key.name or f"key:{key.id}"


def unscoped(key: ApiKey, what: str) -> None:
    """Raise 403 for a key limited to lists: ``what`` spans every list."""
    if key.lists:
        raise ApiError(403, f"a key limited to lists may not {what}")


def visible(key: ApiKey, names: Iterable[str]) -> list[str]:
    return [name for name in names if key.may_use(name)]


def route_roles(app: FastAPI) -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, path, roles) of every documented route, read from its OpenAPI document; None
    for a public route."""
    table = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            roles = None
            for requirement in operation.get("security", []):
                roles = frozenset(Role(scope) for scope in requirement.get("apiKey", []))
            table.append((method.upper(), path, roles))
    return table
