"""The audit log: list changes recorded in their own transactions, and every kind of tampering
found by verification; on SQLite and PostgreSQL."""

import threading

import pytest
from sqlalchemy import Engine, text

from hashguard.lists.model import Category, ChangeKind
from hashguard.lists.records import Submission
from hashguard.store import audit
from hashguard.store.audit import event_hash
from hashguard.store.database import open_engine
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore

from support.invoke import hashguard


def logged(engine: Engine) -> Engine:
    """Five events: a list created, an import, a delisting, a second list, another import."""
    store = ListStore(engine)
    store.create("known", "Hotline", Category.KNOWN_CSAM, actor="curator-1")
    store.apply("known", [Submission("pdq", f"{n:064x}") for n in range(3)], actor="curator-1")
    store.change("known", ChangeKind.DELIST, "pdq", f"{1:064x}", "appeal upheld", "reviewer-2")
    store.create("other", "Hotline", Category.TEST, actor="admin")
    store.apply("other", [Submission("md5", "ab" * 16)], actor="admin")
    return engine


def events(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT seq, actor, action, subject FROM audit_events ORDER BY seq")
            )
        )


def test_list_changes_are_in_the_log_and_it_verifies(engine: Engine) -> None:
    logged(engine)
    assert events(engine) == [
        (1, "curator-1", "list.create", "known"),
        (2, "curator-1", "list.import", "known"),
        (3, "reviewer-2", "list.delist", "known"),
        (4, "admin", "list.create", "other"),
        (5, "admin", "list.import", "other"),
    ]
    assert audit.verify(engine) == 5
    seq, digest = audit.head(engine)
    assert seq == 5 and audit.verify(engine, (seq, digest)) == 5
    # Nothing happened, nothing logged: an import that changes nothing, a refused change.
    store = ListStore(engine)
    store.apply("other", [Submission("md5", "ab" * 16)])
    with pytest.raises(ListError):
        store.change("known", ChangeKind.DELIST, "pdq", f"{1:064x}", "again")
    with pytest.raises(ListError):
        store.create("known", "Someone", Category.TEST)
    assert audit.head(engine)[0] == 5


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            "UPDATE audit_events SET details = '{}' WHERE seq = 3",
            r"event 3 \(list.delist known\) was edited",
        ),
        ("UPDATE audit_events SET actor = 'someone' WHERE seq = 1", r"event 1 .* was edited"),
        ("DELETE FROM audit_events WHERE seq = 2", r"event 2 is missing"),
        ("DELETE FROM audit_events WHERE seq = 5", r"ends at event 4, its head says 5"),
        ("UPDATE audit_events SET seq = seq + 10 WHERE seq IN (2, 3)", r"event 2 is missing"),
        (
            "UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE seq = 1) "
            "WHERE seq = 3",
            r"event 3 does not follow event 2",
        ),
    ],
)
def test_tampering_is_found_and_named(engine: Engine, tamper: str, message: str) -> None:
    logged(engine)
    with engine.begin() as connection:
        connection.execute(text(tamper))
    with pytest.raises(audit.AuditError, match=message):
        audit.verify(engine)


def test_reordered_events_are_found(engine: Engine) -> None:
    logged(engine)
    with engine.begin() as connection:  # swap events 2 and 3, renumbered to fit
        connection.execute(text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
        connection.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 100"))
    with pytest.raises(audit.AuditError, match=r"event 2 does not follow event 1"):
        audit.verify(engine)


def test_a_rewritten_chain_is_found_against_a_known_head(engine: Engine) -> None:
    logged(engine)
    known = audit.head(engine)
    # Whoever controls the database rewrites event 3 and recomputes every hash after it.
    with engine.begin() as connection:
        rows = list(
            connection.execute(
                text(
                    "SELECT seq, at, actor, action, subject, details, prev_hash "
                    "FROM audit_events ORDER BY seq"
                )
            )
        )
        prev = "0" * 64
        for seq, at, actor, action, subject, details, _ in rows:
            if seq == 3:
                details = '{"reason":"nothing to see"}'
            digest = event_hash(seq, at, actor, action, subject, details, prev)
            connection.execute(
                text(
                    "UPDATE audit_events SET details = :d, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"d": details, "p": prev, "h": digest, "s": seq},
            )
            prev = digest
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert audit.verify(engine) == 5  # consistent in itself
    with pytest.raises(audit.AuditError, match="event 5 is not the one recorded earlier"):
        audit.verify(engine, known)


def test_concurrent_appends_never_fork_the_chain(engine: Engine) -> None:
    store = ListStore(engine)
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            store.create(f"list-{n}", "Org", Category.TEST, actor=f"worker-{n}")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert audit.verify(engine) == 8


def test_audit_verify_command(tmp_path) -> None:
    database = tmp_path / "audit.db"
    url = f"sqlite:///{database}"
    logged(open_engine(url))
    head = hashguard("audit", "head", "--database-url", url)
    assert head.returncode == 0 and head.stdout.startswith("5:")
    ok = hashguard("audit", "verify", "--known-head", head.stdout.strip(), "--database-url", url)
    assert ok.returncode == 0 and ok.stdout == "audit log valid: 5 events, chained and complete\n"
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET subject = 'x' WHERE seq = 4"))
    engine.dispose()
    bad = hashguard("audit", "verify", "--database-url", url)
    assert bad.returncode == 1
    assert bad.stderr == (
        "hashguard: audit log NOT VALID: event 4 (list.create x) was edited: "
        "it no longer gives its hash\n"
    )
