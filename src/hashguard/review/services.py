"""The online services whose uploads hashguard checks, each with its legal profile."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlsplit

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from hashguard.errors import Conflict, Invalid, NotFound
from hashguard.legal.profiles import LegalProfile, profile
from hashguard.store import audit
from hashguard.store.tables import ServiceRow

# A service's name (the API's schema says the same).
NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


class ServiceError(Invalid):
    """A service that cannot be made or found; the message says why."""


class ServiceNotFound(ServiceError, NotFound):
    """No service of that name or number."""


class ServiceExists(ServiceError, Conflict):
    """A service of that name exists already."""


@dataclass(frozen=True)
class Service:
    id: int
    name: str
    legal_profile: str
    e2ee: bool
    webhook_url: str  # "" until set: actions then wait in the outbox
    content_url: str  # with "{ref}": where the review desk fetches an item ("" = not shown)

    @property
    def profile(self) -> LegalProfile:
        return profile(self.legal_profile)

    def content_location(self, content_ref: str) -> str:
        """The URL of an item for the review desk ("" when the service gives none)."""
        if not self.content_url:
            return ""
        return self.content_url.replace("{ref}", quote(content_ref, safe=""))


class ServiceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        name: str,
        legal_profile: str = "known-only",
        e2ee: bool = False,
        webhook_url: str = "",
        content_url: str = "",
        actor: str = "",
    ) -> Service:
        """Register a service. Raises ServiceError for a bad name, URL or profile, or a name
        in use."""
        if not _NAME.match(name):
            raise ServiceError(
                f"service name {name!r}: use 1-100 of a-z, 0-9, '.', '_', '-' (first a letter "
                "or digit)"
            )
        try:
            profile(legal_profile)
        except ValueError as error:
            raise ServiceError(str(error)) from None
        for what, url in (("webhook URL", webhook_url), ("content URL", content_url)):
            if url and not url.startswith(("https://", "http://")):
                raise ServiceError(f"{what} {url!r}: expected an http(s) URL")
        if content_url:
            parts = urlsplit(content_url)
            if "{ref}" not in parts.path + parts.query or "{" in parts.netloc:
                raise ServiceError(
                    f"content URL {content_url!r}: {{ref}} must be in its path or query (the "
                    "host is the service's, never the item's)"
                )
        now = datetime.now(UTC)
        values = {"name": name, "legal_profile": legal_profile, "e2ee": e2ee,
                  "webhook_url": webhook_url, "content_url": content_url}  # fmt: skip
        try:
            with self.engine.begin() as connection:
                key = connection.execute(
                    insert(ServiceRow).values(created_at=now, **values)
                ).inserted_primary_key
                audit.append(connection, actor, "service.create", name, values)
        except IntegrityError:
            raise ServiceExists(f"a service named {name!r} exists") from None
        assert key is not None
        return Service(int(key[0]), **values)  # type: ignore[arg-type]

    def get(self, name: str) -> Service:
        """The service called ``name``. Raises ServiceError if there is none."""
        found = self._one(ServiceRow.__table__.c.name == name)
        if found is None:
            raise ServiceNotFound(f"no service named {name!r}")
        return found

    def by_id(self, ident: int) -> Service:
        found = self._one(ServiceRow.__table__.c.id == ident)
        if found is None:
            raise ServiceNotFound(f"no service number {ident}")
        return found

    def all(self) -> list[Service]:
        table = ServiceRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.name)).all()
        return [_service(row) for row in rows]

    def _one(self, where: object) -> Service | None:
        table = ServiceRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(where)).one_or_none()  # type: ignore[arg-type]
        return None if row is None else _service(row)


def _service(row: object) -> Service:
    r = row._mapping  # type: ignore[attr-defined]
    return Service(int(r["id"]), r["name"], r["legal_profile"], bool(r["e2ee"]),
                   r["webhook_url"], r["content_url"])  # fmt: skip
