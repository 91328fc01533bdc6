"""Hash lists in the store, on SQLite and PostgreSQL: the change log, imports, tombstones."""

import json
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from hashguard.lists.model import (
    Category,
    ChangeKind,
    EntryStatus,
    ListPolicy,
    Provenance,
    Source,
    fold,
)
from hashguard.lists.records import InvalidRecord, Submission, Tombstone, Withdrawal
from hashguard.store import audit
from hashguard.store.database import (
    MIGRATIONS,
    DatabaseError,
    current_revision,
    head_revision,
    open_engine,
    upgrade,
)
from hashguard.store.list_errors import ListError, Unchanged
from hashguard.store.lists import ListStore
from hashguard.store.tables import Base

from support.database import open_when_released

NL = Provenance("Offlimits", "analyst-1", (Source("Offlimits", "NL", "case-1"),))
US = Provenance("NCMEC", "", (Source("NCMEC", "US", "report-9"),))


def pdq(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    yield ListStore(engine)
    engine.dispose()


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    engine = open_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_the_newest_revision_is_known_without_alembic_and_an_old_schema_is_upgraded(
    empty_database_url: str,
) -> None:
    """open_engine skips Alembic when the schema is at head_revision(), read from the files'
    names: each migration's revision is its file's number, each follows the one before."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert head_revision() == scripts.get_current_head()
    for script in scripts.walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
        if script.down_revision is not None:
            assert int(script.revision) == int(str(script.down_revision)) + 1, script.path
    engine = open_engine(empty_database_url, migrate=False)
    assert current_revision(engine) is None  # a new database has no schema yet
    upgrade(engine, "0014")
    assert current_revision(engine) == "0014"
    engine.dispose()
    engine = open_engine(empty_database_url)  # one revision behind: upgraded on open
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_processes_opening_a_new_database_at_once_all_open_it(empty_database_url: str) -> None:
    """Replicas started together on a new database (or after an upgrade): one migrates, the
    others wait for it and find the schema done."""
    context = multiprocessing.get_context("spawn")
    barrier, answers = context.Barrier(3), context.Queue()
    openers = [
        context.Process(target=open_when_released, args=(empty_database_url, barrier, answers))
        for _ in range(3)
    ]
    for opener in openers:
        opener.start()
    found = [answers.get(timeout=120) for _ in openers]
    for opener in openers:
        opener.join()
    assert found == [head_revision()] * 3


def test_opening_twice_keeps_the_data(database_url: str) -> None:
    ListStore(open_engine(database_url)).create("first", "Org", Category.TEST)
    assert [hash_list.name for hash_list in ListStore(open_engine(database_url)).lists()] == [
        "first"
    ]


def test_bad_database_urls_are_named() -> None:
    with pytest.raises(DatabaseError, match="not a database URL: 'nonsense'"):
        open_engine("nonsense")
    with pytest.raises(DatabaseError, match=r"127\.0\.0\.1:1"):
        open_engine("postgresql://nobody@127.0.0.1:1/none")


def test_lists_have_unique_well_formed_names_and_an_owner(store: ListStore) -> None:
    created = store.create(
        "iwf-2026", "IWF", Category.KNOWN_CSAM, ["gb"], "CSA Act", ListPolicy({"pdq": 16})
    )
    assert created.version == 0 and created.jurisdictions == ("GB",)
    assert store.get("iwf-2026") == created
    assert store.get("iwf-2026").policy.thresholds == {"pdq": 16.0}
    with pytest.raises(ListError, match="already exists"):
        store.create("iwf-2026", "IWF", Category.KNOWN_CSAM)
    with pytest.raises(ListError, match="list name 'bad name'"):
        store.create("bad name", "IWF", Category.KNOWN_CSAM)
    with pytest.raises(ListError, match="owner"):
        store.create("no-owner", " ", Category.TEST)
    for thresholds in ({"pdq": -1.0}, {"pdq": float("nan")}, {"md5": 3.0}, {"pdna": 1.0}):
        with pytest.raises(ListError, match="threshold"):
            store.create("bad-policy", "IWF", Category.TEST, policy=ListPolicy(thresholds))
    with pytest.raises(ListError, match="no list named 'missing'"):
        store.get("missing")


def test_import_adds_merges_and_reimport_appends_nothing(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    records = [
        Submission("pdq", pdq(1).upper(), frozenset({"A1"}), NL),
        Submission("md5", "ab" * 16, frozenset({"B1"}), NL),
        Submission("pdq", pdq(1), frozenset({"baseline"}), US),  # same hash, second source
    ]
    summary = store.apply("known", records, actor="curator")
    assert (summary.added, summary.updated, summary.version) == (2, 1, 3)
    again = store.apply("known", records, actor="curator")
    assert (again.added, again.updated, again.unchanged, again.version) == (0, 0, 3, 3)
    hash_list, entries = store.entries("known")
    by_value = {e.value: e for e in entries}
    merged = by_value[pdq(1)]
    assert merged.labels == {"A1", "baseline"}
    assert [s.organisation for s in merged.provenance.sources] == ["Offlimits", "NCMEC"]
    assert merged.provenance.independently_sourced()
    assert hash_list.version == 3


def test_tombstones_delete_and_a_new_submission_revives(store: ListStore) -> None:
    store.create("ncii", "StopNCII", Category.NCII)
    store.apply("ncii", [Submission("pdq", pdq(7)), Submission("pdq", pdq(8))])
    summary = store.apply(
        "ncii", [Tombstone("pdq", pdq(7), reason="withdrawn"), Tombstone("pdq", pdq(99))]
    )
    assert (summary.removed, summary.unknown_tombstones) == (1, 1)
    status = {e.value: e.status for e in store.entries("ncii")[1]}
    assert status == {pdq(7): EntryStatus.DELETED, pdq(8): EntryStatus.ACTIVE}
    store.apply("ncii", [Submission("pdq", pdq(7))])
    assert {e.value: e.status for e in store.entries("ncii")[1]}[pdq(7)] is EntryStatus.ACTIVE


def test_owner_decisions_survive_a_reimport(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(1), provenance=NL), Submission("pdq", pdq(2))])
    store.change("known", ChangeKind.CONTEST, "pdq", pdq(1), "false-positive report", "reviewer")
    store.change("known", ChangeKind.DELIST, "pdq", pdq(2), "appeal upheld", "owner")
    store.apply("known", [Submission("pdq", pdq(1), provenance=NL), Submission("pdq", pdq(2))])
    status = {e.value: e.status for e in store.entries("known")[1]}
    assert status == {pdq(1): EntryStatus.CONTESTED, pdq(2): EntryStatus.DELISTED}


def test_single_changes_name_what_is_wrong(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(1), frozenset({"A1"}))])
    relabelled = store.change("known", ChangeKind.RELABEL, "pdq", pdq(1), labels=["A2"])
    assert relabelled.version == 2 and relabelled.labels == {"A2"}
    store.change("known", ChangeKind.DELETE, "pdq", pdq(1), "withdrawn by the source")
    with pytest.raises(ListError, match="already deleted"):
        store.change("known", ChangeKind.DELETE, "pdq", pdq(1))
    with pytest.raises(ListError, match="holds no pdq entry"):
        store.change("known", ChangeKind.DELIST, "pdq", pdq(2))
    with pytest.raises(InvalidRecord, match="expected a PDQ hash"):
        store.change("known", ChangeKind.DELIST, "pdq", "xyz")
    assert store.get("known").version == 3


def test_the_owner_reinstates_a_contested_or_delisted_entry_audited(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n), provenance=NL) for n in (1, 2)])
    store.change("known", ChangeKind.CONTEST, "pdq", pdq(1), "false positive", "hashguard review")
    store.change("known", ChangeKind.DELIST, "pdq", pdq(2), "appeal upheld", "owner")
    first = store.change("known", ChangeKind.REINSTATE, "pdq", pdq(1), "not a match", "owner")
    second = store.change("known", ChangeKind.REINSTATE, "pdq", pdq(2).upper(), "reassessed", "o2")
    assert (first.version, first.kind, first.reason, first.actor) == (
        5, ChangeKind.REINSTATE, "not a match", "owner",
    )  # fmt: skip
    assert not first.tombstone() and second.value == pdq(2)
    status = {e.value: e.status for e in store.entries("known")[1]}
    assert status == {pdq(1): EntryStatus.ACTIVE, pdq(2): EntryStatus.ACTIVE}
    assert fold(store.changes_since("known", 0)) == {e.id: e for e in store.entries("known")[1]}
    events = [
        (e.actor, e.action, e.subject, json.loads(e.details)) for e in audit.events(store.engine)
    ]
    assert events[-2:] == [
        ("owner", "list.reinstate", "known",
         {"signal": "pdq", "value": pdq(1), "reason": "not a match", "version": 5}),
        ("o2", "list.reinstate", "known",
         {"signal": "pdq", "value": pdq(2), "reason": "reassessed", "version": 6}),
    ]  # fmt: skip


def test_reinstating_an_active_or_deleted_entry_or_without_a_reason_is_refused(
    store: ListStore,
) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n)) for n in (1, 2, 3)])
    store.change("known", ChangeKind.DELETE, "pdq", pdq(2), "withdrawn by the source")
    store.change("known", ChangeKind.CONTEST, "pdq", pdq(3), "false positive")
    with pytest.raises(Unchanged) as active:
        store.change("known", ChangeKind.REINSTATE, "pdq", pdq(1), "why not")
    assert str(active.value) == (
        f"list known: pdq entry {pdq(1)} is active: only a contested or delisted entry can be "
        "reinstated"
    )
    with pytest.raises(Unchanged) as deleted:
        store.change("known", ChangeKind.REINSTATE, "pdq", pdq(2), "why not")
    assert str(deleted.value) == (
        f"list known: pdq entry {pdq(2)} is deleted (withdrawn), not contested or delisted: only "
        "those can be reinstated; a new submission of the value brings it back"
    )
    with pytest.raises(ListError) as reasonless:
        store.change("known", ChangeKind.REINSTATE, "pdq", pdq(3), " ")
    assert not isinstance(reasonless.value, Unchanged)
    assert (
        str(reasonless.value)
        == "list known: a reinstatement needs a reason (it is kept in the log)"
    )
    assert store.get("known").version == 5
    assert store.entry("known", "pdq", pdq(3)).status is EntryStatus.CONTESTED


def test_a_malformed_record_anywhere_applies_nothing(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(1))])

    def records() -> Iterator[Submission]:
        for n in range(2, 5003):
            yield Submission("pdq", pdq(n))
        yield Submission("pdq", "not-a-hash")

    with pytest.raises(InvalidRecord, match="record 5002: pdq: expected a PDQ hash"):
        store.apply("known", records())
    hash_list, entries = store.entries("known")
    assert hash_list.version == 1 and [e.value for e in entries] == [pdq(1)]
    assert len(list(store.changes_since("known", 0))) == 1

    def failing() -> Iterator[Submission]:
        yield Submission("pdq", pdq(9))
        raise InvalidRecord("list.csv:3: bad label")

    with pytest.raises(InvalidRecord, match=r"list\.csv:3"):
        store.apply("known", failing())
    assert store.get("known").version == 1


def test_unlistable_signals_are_refused(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    with pytest.raises(InvalidRecord, match="signal 'pdna' cannot be listed"):
        store.apply("known", [Submission("pdna", "00")])


def test_changes_since_replays_to_the_current_state(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n), frozenset({"A1"}), NL) for n in range(20)])
    store.apply("known", [Tombstone("pdq", pdq(3)), Tombstone("pdq", pdq(4), ChangeKind.DELIST)])
    store.change("known", ChangeKind.RELABEL, "pdq", pdq(5), labels=["B2"])
    store.apply("known", [Submission("pdq", pdq(3), provenance=US)])
    changes = list(store.changes_since("known", 0))
    assert [c.version for c in changes] == list(range(1, 25))
    _, entries = store.entries("known")
    current = {e.id: e for e in entries}
    assert fold(changes) == current
    later = list(store.changes_since("known", 20))
    assert [(c.kind, c.value) for c in later] == [
        (ChangeKind.DELETE, pdq(3)),
        (ChangeKind.DELIST, pdq(4)),
        (ChangeKind.RELABEL, pdq(5)),
        (ChangeKind.ADD, pdq(3)),
    ]
    assert [c.tombstone() for c in later] == [True, True, False, False]
    at_20 = fold(changes, upto=20)
    assert all(e.status is EntryStatus.ACTIVE for e in at_20.values()) and len(at_20) == 20
    assert list(store.changes_since("known", 24)) == []


def test_two_source_rule_needs_two_jurisdictions(store: ListStore) -> None:
    policy = ListPolicy(two_sources=True)
    store.create("strict", "INHOPE", Category.KNOWN_CSAM, policy=policy)
    store.apply("strict", [Submission("pdq", pdq(1), provenance=NL)])
    (entry,) = store.entries("strict")[1]
    assert not entry.matchable(policy) and entry.matchable(ListPolicy())
    store.apply("strict", [Submission("pdq", pdq(1), provenance=NL)])  # same source again
    assert not next(iter(store.entries("strict")[1])).matchable(policy)
    store.apply("strict", [Submission("pdq", pdq(1), provenance=US)])
    assert next(iter(store.entries("strict")[1])).matchable(policy)


def test_concurrent_imports_into_two_lists_keep_ids_apart(store: ListStore) -> None:
    store.create("a", "Org A", Category.TEST)
    store.create("b", "Org B", Category.TEST)
    errors: list[BaseException] = []

    def load(name: str, offset: int) -> None:
        try:
            for start in range(0, 3000, 500):
                store.apply(
                    name, [Submission("pdq", pdq(offset + n)) for n in range(start, start + 500)]
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(n, o)) for n, o in (("a", 0), ("b", 10**6))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [e.id for name in ("a", "b") for e in store.entries(name)[1]]
    assert len(ids) == len(set(ids)) == 6000
    assert store.get("a").version == store.get("b").version == 3000


def test_entries_are_one_snapshot_of_the_version_returned(store: ListStore) -> None:
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(1))])
    hash_list, entries = store.entries("known")
    store.apply("known", [Submission("pdq", pdq(2))])  # committed while the read is open
    assert hash_list.version == 1
    assert [e.value for e in entries] == [pdq(1)]


def test_one_organisation_in_two_jurisdictions_is_not_two_sources(store: ListStore) -> None:
    policy = ListPolicy(two_sources=True)
    store.create("strict", "INHOPE", Category.KNOWN_CSAM, policy=policy)
    twice = Provenance("NCMEC", "", (Source("NCMEC", "US"), Source("ncmec ", "INT")))
    store.apply("strict", [Submission("pdq", pdq(1), provenance=twice)])
    assert not next(iter(store.entries("strict")[1])).matchable(policy)


def test_upgrading_keeps_entries_and_their_log_and_indexes_references(
    empty_database_url: str,
) -> None:
    from sqlalchemy import text

    from hashguard.store.database import upgrade

    engine = open_engine(empty_database_url, migrate=False)
    upgrade(engine, "0001")
    sources = '[{"organisation": "Member 7", "jurisdiction": "", "reference": "ncmec:7:image:1"}]'
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO hash_lists (id, name, owner, category, jurisdictions, legal_basis, "
                "policy, version, created_at) VALUES (1, 'old', 'Org', 'test', '[]', '', "
                "'{}', 1, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO list_entries (id, list_id, signal, value, labels, status, "
                "submitted_by, assessed_by, sources, version) VALUES "
                "(1, 1, 'pdq', :value, '[]', 'active', 'Member 7', '', :sources, 1)"
            ),
            {"value": pdq(1), "sources": sources},
        )
        connection.execute(
            text(
                "INSERT INTO list_changes (list_id, version, kind, entry_id, labels, provenance, "
                "reason, actor, at) VALUES (1, 1, 'add', 1, '[]', NULL, '', '', CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()
    store = ListStore(open_engine(empty_database_url))  # upgrades to the newest revision
    # Rebuilding the entries table (0003) kept the log that points to it.
    assert [(c.version, c.kind, c.value) for c in store.changes_since("old", 0)] == [
        (1, ChangeKind.ADD, pdq(1))
    ]
    summary = store.apply("old", [Withdrawal("ncmec:7:image:1")])
    assert (summary.removed, summary.unknown_tombstones) == (1, 0)
    assert [e.status for e in store.entries("old")[1]] == [EntryStatus.DELETED]


def test_big_imports_of_mostly_new_values_find_the_held_ones(store: ListStore) -> None:
    """Chunks of new values are written without lookups; one held value anywhere in a chunk
    must still merge, not duplicate, and the ids stay distinct (chunks hold 2,000 records)."""
    store.create("big", "Org", Category.TEST)
    first = store.apply("big", [Submission("pdq", pdq(n)) for n in range(0, 6000, 2)])
    assert (first.added, first.version) == (3000, 3000)
    mixed = [Submission("pdq", pdq(n), frozenset({"B1"})) for n in range(6001, 12001, 2)]
    mixed.insert(2500, Submission("pdq", pdq(3000), frozenset({"A1"})))  # held: 2nd chunk
    mixed.append(Submission("pdq", pdq(6001), frozenset({"again"})))  # added earlier in it
    summary = store.apply("big", mixed)
    assert (summary.added, summary.updated) == (3000, 2)
    entries = {e.value: e for e in store.entries("big")[1]}
    assert len(entries) == 6000 and len({e.id for e in entries.values()}) == 6000
    assert entries[pdq(3000)].labels == {"A1"} and entries[pdq(6001)].labels == {"B1", "again"}
    assert {e.id: e for e in entries.values()} == fold(store.changes_since("big", 0))


def restated(entry: str, value: str, label: str = "A1") -> list[Submission | Withdrawal]:
    """An exchange's whole record of member 7's ``entry``: its value, then the withdrawal of
    whatever the reference covered but that value (as the NCMEC plug-in yields them)."""
    reference = f"ncmec:7:image:{entry}"
    provenance = Provenance("ESP 7", "", (Source("ESP 7", "", reference),))
    return [Submission("pdq", value, frozenset({label}), provenance, restates=True),
            Withdrawal(reference, frozenset({("pdq", value)}))]  # fmt: skip


def test_restated_records_of_new_references_and_of_held_ones(store: ListStore) -> None:
    """Records restated under references no entry holds are written without lookups (chunks of
    2,000 records); a held reference, or one whose record changes within the chunk, still
    withdraws what the record no longer lists."""
    store.create("ex", "Org", Category.TEST)
    first = [r for n in range(3000) for r in restated(f"e{n}", pdq(n))]
    first.append(Withdrawal("ncmec:7:image:never-seen"))
    summary = store.apply("ex", first)
    assert (summary.added, summary.removed, summary.unknown_tombstones) == (3000, 0, 1)
    second = [r for n in range(3000, 4000) for r in restated(f"e{n}", pdq(n))]  # a chunk
    second += restated("e5", pdq(9000), "B1")  # held reference, another value now
    second += restated("n1", pdq(9001)) + restated("n1", pdq(9002))  # changed within a chunk
    second += [*restated("n2", pdq(9003)), Withdrawal("ncmec:7:image:n2")]  # then deleted
    summary = store.apply("ex", second)
    assert (summary.added, summary.removed) == (1004, 3)
    entries = {e.value: e for e in store.entries("ex")[1]}
    deleted = {value for value, e in entries.items() if e.status is EntryStatus.DELETED}
    assert deleted == {pdq(5), pdq(9001), pdq(9003)}
    assert entries[pdq(9000)].labels == {"B1"} and entries[pdq(3999)].labels == {"A1"}
    assert [s.reference for s in entries[pdq(9000)].provenance.sources] == ["ncmec:7:image:e5"]
    assert {e.id: e for e in entries.values()} == fold(store.changes_since("ex", 0))
    held = store.apply("ex", [Withdrawal("ncmec:7:image:e3999")])
    assert held.removed == 1 and held.unknown_tombstones == 0


def test_bulk_jobs_give_the_collector_back_as_it_was() -> None:
    import gc

    from hashguard.collector import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves it to the outer one
        raise RuntimeError("an import failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before: still off
    finally:
        gc.enable()


def test_a_failed_migration_changes_nothing(empty_database_url: str, monkeypatch) -> None:
    from alembic.operations import Operations
    from sqlalchemy import inspect, text

    from hashguard.store.database import upgrade

    engine = open_engine(empty_database_url, migrate=False)
    upgrade(engine, "0002")
    with engine.begin() as connection:  # a list as revision 0002 stored it
        connection.execute(
            text(
                "INSERT INTO hash_lists (id, name, owner, category, jurisdictions, legal_basis, "
                "policy, version, created_at) VALUES (1, 'kept', 'Org', 'test', '[]', '', "
                "'{}', 5, CURRENT_TIMESTAMP)"
            )
        )
        for n in range(5):
            connection.execute(
                text(
                    "INSERT INTO list_entries (id, list_id, signal, value, labels, status, "
                    "submitted_by, assessed_by, sources, version) VALUES "
                    "(:id, 1, 'pdq', :value, '[\"A1\"]', 'active', '', '', '[]', :id)"
                ),
                {"id": n + 1, "value": pdq(n)},
            )
            connection.execute(
                text(
                    "INSERT INTO list_changes (list_id, version, kind, entry_id, labels, "
                    "provenance, reason, actor, at) VALUES "
                    "(1, :id, 'add', :id, '[\"A1\"]', NULL, '', '', CURRENT_TIMESTAMP)"
                ),
                {"id": n + 1},
            )

    def interrupted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("interrupted while copying")  # as Ctrl-C or a full disk would

    for step in ("execute", "create_primary_key"):  # half-way on SQLite and on PostgreSQL
        monkeypatch.setattr(Operations, step, interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        upgrade(engine)
    monkeypatch.undo()
    with engine.connect() as connection:
        assert "list_entries_new" not in inspect(connection).get_table_names()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0002"
    engine.dispose()
    store = ListStore(open_engine(empty_database_url))  # the upgrade runs again, now to the end
    assert [e.value for e in store.entries("kept")[1]] == [pdq(n) for n in range(5)]
    assert len(list(store.changes_since("kept", 0))) == 5


def test_entries_and_their_adds_keep_the_latest_measured_stability(store: ListStore) -> None:
    """A value hashed from media carries its stability into its add and its entry, through
    the bulk path (a chunk of new values) and the careful one (a held value in the chunk); an
    add of the value as a hash keeps what was measured, a new measure replaces it, and the
    log replays to the stored state."""
    store.create("known", "Offlimits", Category.KNOWN_CSAM)
    store.apply("known", [Submission("pdq", pdq(n), stability=40 + n) for n in range(3000)])
    store.apply("known", [Submission("pdq", pdq(3000))])  # a hash: no stability
    entries = {e.value: e for e in store.entries("known")[1]}
    assert (entries[pdq(0)].stability, entries[pdq(2999)].stability) == (40, 3039)
    assert entries[pdq(3000)].stability is None
    adds = {c.value: c.stability for c in store.changes_since("known", 0)}
    assert (adds[pdq(1)], adds[pdq(3000)]) == (41, None)

    # Held values: re-listed as hashes (nothing changes), measured again (an add each), and one
    # new value in the same chunk.
    again = [Submission("pdq", pdq(1)), Submission("pdq", pdq(2), stability=90),
             Submission("pdq", pdq(3000), stability=12),
             Submission("pdq", pdq(3001), stability=7)]  # fmt: skip
    summary = store.apply("known", again)
    assert (summary.added, summary.updated, summary.unchanged) == (1, 2, 1)
    store.change("known", ChangeKind.DELIST, "pdq", pdq(2), "appeal upheld")  # keeps it
    entries = {e.value: e for e in store.entries("known")[1]}
    assert [entries[pdq(n)].stability for n in (1, 2, 3000, 3001)] == [41, 90, 12, 7]
    assert store.entry("known", "pdq", pdq(2)).stability == 90
    later = [(c.kind, c.value, c.stability) for c in store.changes_since("known", 3001)]
    assert later == [
        (ChangeKind.ADD, pdq(2), 90),
        (ChangeKind.ADD, pdq(3000), 12),
        (ChangeKind.ADD, pdq(3001), 7),
        (ChangeKind.DELIST, pdq(2), None),
    ]
    assert fold(store.changes_since("known", 0)) == {e.id: e for e in entries.values()}


def test_a_mirror_replaying_the_log_keeps_the_stability(store: ListStore) -> None:
    """Changes replayed as another instance made them (a follower's mirror, from the feed's
    JSON) give the mirror the origin's entries, stability included."""
    from hashguard.lists.model import Change

    store.create("origin", "Offlimits", Category.KNOWN_CSAM)
    store.create("mirror", "Offlimits", Category.KNOWN_CSAM)
    store.apply("origin", [Submission("pdq", pdq(1), stability=80), Submission("pdq", pdq(2))])
    store.apply("origin", [Submission("pdq", pdq(2), stability=30)])
    store.change("origin", ChangeKind.CONTEST, "pdq", pdq(1), "reported")
    feed = [json.loads(json.dumps(c.as_json())) for c in store.changes_since("origin", 0)]
    assert [c.get("stability") for c in feed] == [80, None, 30, None]
    summary = store.apply("mirror", [Change.from_json(c) for c in feed])
    assert summary.version == 4
    mirrored = {e.value: (e.status, e.stability) for e in store.entries("mirror")[1]}
    assert mirrored == {pdq(1): (EntryStatus.CONTESTED, 80), pdq(2): (EntryStatus.ACTIVE, 30)}
