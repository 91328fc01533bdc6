"""API keys: shown once, stored hashed, checked, limited to lists, revoked, audited; on SQLite
and PostgreSQL, and through the command line."""

import pytest
from sqlalchemy import Engine, text

from hashguard.lists.model import Category
from hashguard.store import audit
from hashguard.store.api_keys import ApiKeyError, ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.invoke import Ran, hashguard


def test_a_key_works_only_as_given_and_is_stored_hashed(engine: Engine) -> None:
    keys = ApiKeyStore(engine)
    key, token = keys.create(Role.MATCHER, name="upload checks", actor="admin-1")
    assert token.startswith(f"hg_{key.id}_") and key.role is Role.MATCHER
    assert keys.authenticate(token) == key
    assert keys.authenticate(f"  {token}\n") == key
    secret = token.removeprefix(f"hg_{key.id}_")  # URL-safe base64 may hold "_" itself
    assert len(secret) == 43
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for attempt in (wrong, token.replace(key.id, "0" * 16), "", "Bearer " + token, token + "x"):
        assert keys.authenticate(attempt) is None
    with engine.connect() as connection:
        stored = " ".join(str(row) for row in connection.execute(text("SELECT * FROM api_keys")))
        logged = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM audit_events"))
        )
    assert secret not in stored and secret not in logged


def test_keys_limited_to_lists_and_revoked(engine: Engine) -> None:
    ListStore(engine).create("known", "Hotline", Category.KNOWN_CSAM)
    keys = ApiKeyStore(engine)
    with pytest.raises(ApiKeyError, match="no list named 'nolist'"):
        keys.create(Role.CURATOR, ["known", "nolist"])
    key, token = keys.create(Role.CURATOR, ["known"], actor="admin-1")
    assert key.may_use("known") and not key.may_use("other")
    assert keys.create(Role.AUDITOR)[0].may_use("anything")
    assert keys.revoke(key.id, actor="admin-2").revoked_at is not None
    assert keys.authenticate(token) is None
    with pytest.raises(ApiKeyError, match="no live key"):
        keys.revoke(key.id)
    with engine.connect() as connection:
        actions = list(
            connection.execute(
                text(
                    "SELECT action, subject, actor FROM audit_events "
                    "WHERE action LIKE 'key.%' ORDER BY seq"
                )
            )
        )
    assert [tuple(row) for row in actions] == [
        ("key.create", key.id, "admin-1"),
        ("key.create", keys.all()[1].id, ""),
        ("key.revoke", key.id, "admin-2"),
    ]
    assert audit.verify(engine) == 4  # the list, two keys, one revocation


def test_keys_commands(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"

    def run(*args: str) -> Ran:
        return hashguard("keys", *args, "--database-url", url)

    created = run("create", "--role", "matcher", "--name", "uploads")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    key_id = token.split("_")[1]
    assert created.stderr == f"created key {key_id} (matcher, all lists); it is shown once:\n"
    listed = run("list").stdout.splitlines()
    assert listed[0] == "id\trole\tlists\tname\tcreated\tstatus"
    assert listed[1].startswith(f"{key_id}\tmatcher\t*\tuploads\t") and token not in listed[1]
    assert listed[1].endswith("\tactive")
    keys = ApiKeyStore(open_engine(url))
    live = keys.authenticate(token)
    assert live is not None and (live.id, live.role, live.lists, live.name) == (
        key_id, Role.MATCHER, (), "uploads")  # fmt: skip
    assert run("revoke", key_id).stdout == f"revoked key {key_id}\n"
    assert "\trevoked 20" in run("list").stdout.splitlines()[1]
    assert keys.authenticate(token) is None
    again = run("revoke", key_id)
    assert again.returncode == 1 and again.stderr == f"hashguard: no live key '{key_id}'\n"
    bad_role = run("create", "--role", "owner")
    assert bad_role.returncode == 2 and "owner" in bad_role.stderr
    scoped = run("create", "--role", "curator", "--list", "missing")
    assert scoped.returncode == 1 and "no list named 'missing'" in scoped.stderr


def test_a_hoster_key_names_its_hoster_and_only_a_hoster_key_does(engine: Engine) -> None:
    keys = ApiKeyStore(engine)
    key, token = keys.create(Role.HOSTER, name="abuse desk", hoster="Example Hosting B.V.")
    assert key.hoster == "Example Hosting B.V."
    assert keys.authenticate(token) == key
    with pytest.raises(ApiKeyError, match="names its hoster"):
        keys.create(Role.HOSTER, name="nobody's")
    with pytest.raises(ApiKeyError, match="only a hoster key"):
        keys.create(Role.MATCHER, hoster="Example Hosting B.V.")
    assert [k.id for k in keys.all()] == [key.id]
