"""Exchange credentials, sealed: never in the database in the clear, never logged or exported.

Each scope's credentials (``api:NAME``: every exchange of that plug-in, as HMA keeps them;
``exchange:NAME``: one exchange's own) are a JSON object sealed with AES-GCM under a key
derived (HKDF-SHA256) from the server's secret file, the scope as associated data (a sealed
value copied to another scope does not open). Sealed with them is the origin they were set for
(scheme, host and port of a base URL: ``Bound``): they are sent there and nowhere else, so a
base URL changed afterwards cannot take them to another host. Beside the sealed value, the
key's id says which secret sealed it: opened with another secret, the error says so and how to
re-seal (``rotate``).
"""

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, delete, insert, select, update

from hashguard.errors import Invalid, Unverified
from hashguard.store import audit
from hashguard.store.tables import ExchangeCredentialRow

_NONCE: Final = 12
_KEY_INFO: Final = b"hashguard exchange credentials: key"
_ID_INFO: Final = b"hashguard exchange credentials: key id"
SCOPE_KINDS: Final = ("api", "exchange")


class CredentialsUnreadable(Unverified):
    """Sealed credentials that do not open with this server's secret (sealed under another
    one, or altered); the message names the scope and what to do."""


@dataclass(frozen=True, slots=True)
class Bound:
    """Credentials opened, and the origin (``http.origin_of``) they were set for: they go
    there and nowhere else."""

    origin: str
    values: dict[str, Any]

    def __repr__(self) -> str:  # never the values
        return f"Bound(origin={self.origin!r}, fields={sorted(self.values)})"


def scope_of(kind: str, name: str) -> str:
    """``api:NAME`` or ``exchange:NAME``; raises Invalid for another kind or an empty name."""
    if kind not in SCOPE_KINDS or not name:
        raise Invalid(f"a credentials scope is api:NAME or exchange:NAME, not {kind}:{name}")
    return f"{kind}:{name}"


def _derive(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


class Sealer:
    """Seals and opens credentials with the key derived from ``secret`` (the server's 32-byte
    secret, ``review.webhook.load_secret``)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(_derive(secret, _KEY_INFO, 32))
        self.key_id = _derive(secret, _ID_INFO, 8).hex()

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.key_id})"

    def seal(self, scope: str, credentials: Mapping[str, Any]) -> str:
        """The sealed form of ``credentials`` for ``scope`` (base64 of nonce and ciphertext)."""
        plain = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plain, scope.encode())
        return base64.b64encode(sealed).decode("ascii")

    def open(self, scope: str, sealed: str, key_id: str) -> dict[str, Any]:
        """The credentials ``sealed`` holds; raises CredentialsUnreadable naming ``scope`` when
        another secret sealed them or they were altered."""
        if key_id != self.key_id:
            raise CredentialsUnreadable(
                f"the credentials of {scope} were sealed under another server secret (key id "
                f"{key_id}; this server's is {self.key_id}): rotate them from the old secret "
                "to this one, or set them again"
            )
        try:
            raw = base64.b64decode(sealed.encode("ascii"), validate=True)
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], scope.encode())
            opened = json.loads(plain)
        except (InvalidTag, ValueError, UnicodeError):
            raise CredentialsUnreadable(
                f"the credentials of {scope} do not open with this server's secret (key id "
                f"{self.key_id}): they were altered or copied from another scope; set them again"
            ) from None
        if not isinstance(opened, dict):
            raise CredentialsUnreadable(f"the credentials of {scope} are not an object")
        return opened


def put(
    connection: Connection,
    sealer: Sealer,
    scope: str,
    credentials: Mapping[str, Any],
    origin: str,
    now: datetime | None = None,
) -> None:
    """Store ``credentials`` for ``scope``, sealed with the ``origin`` they may go to,
    replacing any (the caller's transaction; the caller audits the change, never the
    values)."""
    bound = {"origin": origin, "credentials": dict(credentials)}
    _store(connection, scope, sealer.seal(scope, bound), sealer.key_id, now or datetime.now(UTC))


def _store(connection: Connection, scope: str, sealed: str, key_id: str, at: datetime) -> None:
    values = {"ciphertext": sealed, "key_id": key_id, "updated_at": at}
    changed = connection.execute(
        update(ExchangeCredentialRow).where(ExchangeCredentialRow.scope == scope).values(**values)
    ).rowcount
    if not changed:
        connection.execute(insert(ExchangeCredentialRow).values(scope=scope, **values))


def get(connection: Connection, sealer: Sealer, scope: str) -> Bound | None:
    """The credentials of ``scope``, opened, with their origin (None: none stored). Raises
    CredentialsUnreadable."""
    row = connection.execute(
        select(ExchangeCredentialRow.ciphertext, ExchangeCredentialRow.key_id).where(
            ExchangeCredentialRow.scope == scope
        )
    ).first()
    if row is None:
        return None
    opened = sealer.open(scope, row.ciphertext, row.key_id)
    origin, values = opened.get("origin"), opened.get("credentials")
    if not isinstance(origin, str) or not origin or not isinstance(values, dict):
        raise CredentialsUnreadable(
            f"the credentials of {scope} were sealed without the origin they are for: set "
            "them again"
        )
    return Bound(origin, values)


def has(connection: Connection, scope: str) -> bool:
    """Whether credentials are stored for ``scope`` (without opening them)."""
    found = connection.execute(
        select(ExchangeCredentialRow.scope).where(ExchangeCredentialRow.scope == scope)
    ).first()
    return found is not None


def remove(connection: Connection, scope: str) -> bool:
    """Forget the credentials of ``scope``; whether there were any."""
    gone = connection.execute(
        delete(ExchangeCredentialRow).where(ExchangeCredentialRow.scope == scope)
    ).rowcount
    return bool(gone)


def rotate(engine: Engine, old_secret: bytes, new_secret: bytes, actor: str = "system") -> int:
    """Re-seal every stored credential from ``old_secret``'s key to ``new_secret``'s, in one
    transaction (all or none), audited; the number re-sealed. Rows sealed under the new secret
    already are left as they are. Raises CredentialsUnreadable (nothing changed) for a row
    neither secret opens."""
    old, new = Sealer(old_secret), Sealer(new_secret)
    now = datetime.now(UTC)
    resealed: list[str] = []
    with engine.begin() as connection:
        rows = connection.execute(
            select(
                ExchangeCredentialRow.scope,
                ExchangeCredentialRow.ciphertext,
                ExchangeCredentialRow.key_id,
            ).order_by(ExchangeCredentialRow.scope)
        ).all()
        for row in rows:
            if row.key_id == new.key_id:
                continue
            opened = old.open(row.scope, row.ciphertext, row.key_id)
            _store(connection, row.scope, new.seal(row.scope, opened), new.key_id, now)
            resealed.append(row.scope)
        details = {"scopes": resealed, "from_key": old.key_id, "to_key": new.key_id}
        audit.append(connection, actor, "exchange.credentials.rotate", "credentials", details)
    return len(resealed)
