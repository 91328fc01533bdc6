"""API keys: shown once, stored hashed, checked, limited to lists, revoked, audited; on SQLite
and PostgreSQL, and through the command line."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from hashguard.lists.model import Category
from hashguard.store import audit
from hashguard.store.api_keys import WATCH_NAME, ApiKeyError, ApiKeyStore, KeyWatch, Role
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.invoke import Ran, hashguard
from support.relay import Relay
from support.waiting import eventually


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
    revoked, unconfirmed = keys.revoke(key.id, actor="admin-2")
    assert revoked.revoked_at is not None and unconfirmed == ()  # no server runs
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


def test_the_watch_sees_every_change_to_keys_and_no_other_commit(engine: Engine) -> None:
    """A running service empties its key cache when its watch says keys changed: a key made,
    revoked or rescoped (its list renamed or removed), by any process; not when other tables
    change (lists, matches, the audit), which on SQLite commit all the time."""
    keys, lists = ApiKeyStore(engine), ListStore(engine)
    watch = KeyWatch(engine)
    try:
        assert watch.changed() is False
        lists.create("alpha", "Test", Category.TEST, actor="setup")
        lists.update("alpha", legal_basis="a test", actor="setup")
        assert watch.changed() is False  # on SQLite the data version moved; the keys did not
        key, _ = keys.create(Role.MATCHER, lists=["alpha"])
        assert eventually(watch.changed) is True  # PostgreSQL: the NOTIFY is on its way
        assert watch.changed() is False  # told once
        lists.rename("alpha", "beta", actor="setup")  # the key's scope follows
        assert eventually(watch.changed) is True
        keys.revoke(key.id)
        assert eventually(watch.changed) is True
        lists.create("gamma", "Test", Category.TEST, actor="setup")
        assert watch.changed() is False
        keys.create(Role.MATCHER, lists=["gamma"])
        assert eventually(watch.changed) is True
        lists.remove("gamma", actor="setup")  # the key is left limited to a removed list
        assert eventually(watch.changed) is True
        assert watch.changed() is False and watch.watching and watch.lost == 0
    finally:
        watch.close()
    assert watch.changed() is None  # closed: the cache's time bound holds


@contextmanager
def _relayed(tmp_path: Path) -> Iterator[tuple[Engine, Relay, Engine]]:
    """A scratch PostgreSQL database: an engine straight to it, a relay in front of it (to
    freeze or hold the link), and an engine through the relay (a service's)."""
    with scratch_database("postgresql", tmp_path) as url:
        engine = open_engine(url)
        address = make_url(url)
        with Relay(address.host or "127.0.0.1", address.port or 5432) as relay:
            relayed = open_engine(address.set(port=relay.port).render_as_string(False))
            try:
                yield engine, relay, relayed
            finally:
                relayed.dispose()
                engine.dispose()


def test_the_watch_finds_out_a_link_gone_silent(tmp_path: Path) -> None:
    """PostgreSQL: a link that stops carrying anything (a partition, a host switched off)
    brings no error, so a revocation would never arrive and the watch would go on saying
    nothing changed. Its round trip every beat_seconds finds the silence out: down within
    beat_seconds of the round trip sent, then back by a new connection, saying keys changed."""
    now = [0.0]
    with _relayed(tmp_path) as (engine, relay, relayed):
        keys = ApiKeyStore(engine)
        watch = KeyWatch(relayed, retry_seconds=5.0, beat_seconds=5.0, clock=lambda: now[0])
        try:
            assert watch.changed() is False
            now[0] = 5.0
            assert watch.changed() is False  # its round trip is on its way
            key, _ = keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True  # after the round trip's answer
            relay.freeze()
            _, unconfirmed = keys.revoke(key.id, confirm_seconds=0.0)
            assert len(unconfirmed) == 1  # its notification is lost in the silent link
            now[0] = 10.0
            assert watch.changed() is False  # not known yet: a round trip goes out
            now[0] = 15.1
            assert watch.changed() is None  # no answer within beat_seconds: down
            assert not watch.watching and watch.lost == 1
            now[0] = 20.1
            answers: list[bool | None] = []

            def answered() -> bool:
                answers.append(watch.changed())
                return answers[-1] is not None

            assert eventually(answered)
            assert answers[-1] is True and watch.watching  # by a new connection
            keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True
        finally:
            watch.close()


def test_a_revocation_returns_once_every_running_watch_has_taken_it(tmp_path: Path) -> None:
    """PostgreSQL hands a notification to a listener a little after the commit (10 ms and more
    on a loaded machine), so a revocation waits until each running service's watch has taken
    it: the very next request to any of them is refused. One that does not confirm in time is
    named (it holds the revocation within its key cache's time bound)."""
    with _relayed(tmp_path) as (engine, relay, relayed):
        keys = ApiKeyStore(engine)
        watch = KeyWatch(relayed)  # a service's, its link to the database slow at will
        revoking = ThreadPoolExecutor(1)
        try:
            key, token = keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True
            relay.hold()  # the notification of the revocation waits in the relay
            revoked = revoking.submit(keys.revoke, key.id, "cli", 60.0)
            assert eventually(lambda: keys.authenticate(token) is None)  # committed
            with pytest.raises(FuturesTimeout):
                revoked.result(timeout=0.5)  # not back while the watch has not taken it
            relay.release()
            assert revoked.result(timeout=60)[1] == ()  # every watch confirmed
            assert watch.changed() is True  # at once: its cache is emptied now
            late, token = keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True
            relay.hold()
            _, unconfirmed = keys.revoke(late.id, confirm_seconds=0.2)
            [pid] = [u.pid for u in unconfirmed]
            with engine.connect() as connection:
                named = connection.execute(
                    text("SELECT application_name FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                ).scalar_one()
            assert named == WATCH_NAME and str(unconfirmed[0]).startswith(f"connection {pid}")
            relay.release()
            assert eventually(watch.changed) is True  # it took it late, within its bound
            assert watch.watching and watch.lost == 0
            # A service's requests ask the watch all the while: the confirmation still goes.
            asking = threading.Event()
            answers = (watch.changed() for _ in iter(asking.is_set, True))
            asked = revoking.submit(list, answers)
            try:
                busy, _ = keys.create(Role.MATCHER)
                assert keys.revoke(busy.id, confirm_seconds=30.0)[1] == ()
            finally:
                asking.set()
            assert True in asked.result(timeout=60)
        finally:
            relay.release()
            revoking.shutdown()
            watch.close()


def test_an_idle_watch_says_nothing_until_a_round_trip_answers(tmp_path: Path) -> None:
    """PostgreSQL: after a quiet spell longer than twice beat_seconds, the link may have gone
    silent meanwhile: the watch answers None (the key cache's time bound holds) until its
    round trip is answered."""
    now = [0.0]
    with scratch_database("postgresql", tmp_path) as url:
        engine = open_engine(url)
        watch = KeyWatch(engine, beat_seconds=5.0, clock=lambda: now[0])
        try:
            assert watch.changed() is False
            now[0] = 60.0
            assert watch.changed() is None
            assert eventually(lambda: watch.changed() is False)
            assert watch.watching and watch.lost == 0
        finally:
            watch.close()
            engine.dispose()


def test_the_watch_comes_back_after_its_connection_is_cut(tmp_path: Path) -> None:
    """PostgreSQL: every connection of a service ended by the server (a restart, a dropped
    link). While its watch is down it says nothing is known; it connects again at most every
    retry_seconds and then says keys changed, since a revocation sent meanwhile was missed; and
    it confirms the next revocation, on a new connection for its confirmations."""
    now = [0.0]
    with scratch_database("postgresql", tmp_path) as url:
        engine, served = open_engine(url), open_engine(url)  # the CLI's, the service's
        keys = ApiKeyStore(engine)
        watch = KeyWatch(served, retry_seconds=5.0, clock=lambda: now[0])
        try:
            confirmed, _ = keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True
            assert keys.revoke(confirmed.id, confirm_seconds=30.0)[1] == ()
            with engine.begin() as connection:  # every other connection: the service's all
                connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"))  # fmt: skip
            engine.dispose()
            assert eventually(lambda: not watch.watching)  # its thread saw the connection end
            assert watch.changed() is True  # the revocation it confirmed holds all the same
            key, _ = keys.create(Role.MATCHER)
            assert watch.changed() is None
            assert not watch.watching and watch.lost == 1
            keys.revoke(key.id)  # notified to nobody: the watch is gone
            assert watch.changed() is None  # not yet time to connect again
            now[0] = 5.0
            answers: list[bool | None] = []
            assert eventually(lambda: answers.append(watch.changed()) or answers[-1] is not None)
            assert answers[-1] is True and watch.watching  # back: what it missed counts
            assert watch.changed() is False
            late, _ = keys.create(Role.MATCHER)
            assert eventually(watch.changed) is True  # listening again
            assert keys.revoke(late.id, confirm_seconds=30.0)[1] == ()
        finally:
            watch.close()
            served.dispose()
            engine.dispose()
