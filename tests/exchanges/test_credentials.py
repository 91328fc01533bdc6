"""Sealed exchange credentials: what the database holds never shows them, they open only with
the server's secret and only for their scope, and a rotation re-seals them all or none."""

import logging
import secrets

import pytest
from sqlalchemy import Engine, select, text

from hashguard.exchanges import credentials
from hashguard.exchanges.credentials import Bound, CredentialsUnreadable, Sealer
from hashguard.store import audit
from hashguard.store.tables import ExchangeCredentialRow

API_KEY = "tok-" + secrets.token_hex(12)
SECRET = secrets.token_bytes(32)
ORIGIN = "https://hashsharing.ncmec.org:443"


def _raw(engine: Engine) -> str:
    """Every stored credentials row, as the database holds it."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM exchange_credentials")).all()
    return repr(rows)


def test_credentials_are_sealed_in_the_database_and_open_for_their_scope_only(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    sealer = Sealer(SECRET)
    with caplog.at_level(logging.DEBUG):
        with engine.begin() as connection:
            credentials.put(connection, sealer, "exchange:NCMEC", {"api_key": API_KEY}, ORIGIN)
            credentials.put(
                connection, sealer, "api:ncmec", {"user": "u", "password": API_KEY}, ORIGIN
            )
        with engine.connect() as connection:
            assert credentials.get(connection, sealer, "exchange:NCMEC") == Bound(
                ORIGIN, {"api_key": API_KEY})  # fmt: skip
            shared = credentials.get(connection, sealer, "api:ncmec")
            assert shared == Bound(ORIGIN, {"user": "u", "password": API_KEY})
            assert API_KEY not in repr(shared)
            assert credentials.get(connection, sealer, "exchange:OTHER") is None
    raw = _raw(engine)
    assert "exchange:NCMEC" in raw and API_KEY not in raw and "api_key" not in raw
    assert API_KEY not in caplog.text and API_KEY not in repr(sealer)

    # A sealed value moved to another scope does not open there.
    with engine.begin() as connection:
        sealed = connection.execute(
            select(ExchangeCredentialRow.ciphertext).where(
                ExchangeCredentialRow.scope == "exchange:NCMEC"
            )
        ).scalar_one()
        connection.execute(
            ExchangeCredentialRow.__table__.update()
            .where(ExchangeCredentialRow.scope == "api:ncmec")
            .values(ciphertext=sealed)
        )
    with engine.connect() as connection, pytest.raises(CredentialsUnreadable, match="api:ncmec"):
        credentials.get(connection, sealer, "api:ncmec")


def test_another_secret_cannot_open_them_and_says_to_rotate(engine: Engine) -> None:
    with engine.begin() as connection:
        credentials.put(connection, Sealer(SECRET), "exchange:NCMEC", {"api_key": API_KEY}, ORIGIN)
    other = Sealer(secrets.token_bytes(32))
    said = r"exchange:NCMEC.*another server secret.*rotate"
    with (
        engine.connect() as connection,
        pytest.raises(CredentialsUnreadable, match=said) as refused,
    ):
        credentials.get(connection, other, "exchange:NCMEC")
    assert API_KEY not in str(refused.value)


def test_rotation_reseals_every_row_or_none(engine: Engine) -> None:
    old, new = SECRET, secrets.token_bytes(32)
    with engine.begin() as connection:
        credentials.put(connection, Sealer(old), "exchange:A", {"api_key": "a-" + API_KEY}, ORIGIN)
        credentials.put(connection, Sealer(old), "api:stopncii", {"key": "b-" + API_KEY}, ORIGIN)
    before = _raw(engine)

    assert credentials.rotate(engine, old, new) == 2
    with engine.connect() as connection:
        assert credentials.get(connection, Sealer(new), "exchange:A") == Bound(
            ORIGIN, {"api_key": "a-" + API_KEY})  # fmt: skip
        assert credentials.get(connection, Sealer(new), "api:stopncii") == Bound(
            ORIGIN, {"key": "b-" + API_KEY})  # fmt: skip
        with pytest.raises(CredentialsUnreadable):
            credentials.get(connection, Sealer(old), "exchange:A")
    assert API_KEY not in _raw(engine)
    rotated = audit.events(engine)[-1]
    assert rotated.action == "exchange.credentials.rotate"
    assert "exchange:A" in rotated.details and API_KEY not in rotated.details
    assert before != _raw(engine)

    # A third secret's row: nothing is re-sealed, the error names the scope.
    with engine.begin() as connection:
        credentials.put(
            connection, Sealer(secrets.token_bytes(32)), "exchange:Z", {"k": "v"}, ORIGIN
        )
    after = _raw(engine)
    newer = secrets.token_bytes(32)
    with pytest.raises(CredentialsUnreadable, match="exchange:Z"):
        credentials.rotate(engine, new, newer)
    assert _raw(engine) == after
