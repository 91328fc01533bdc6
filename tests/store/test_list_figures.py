"""What the console reads at a glance, on SQLite and PostgreSQL: a list's entries counted by
signal and status, its latest changes newest first, and the match log's counts since a time
and its latest matches (each only within the lists asked for)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from hashguard.lists.model import Category, ChangeKind
from hashguard.lists.records import Submission
from hashguard.store.list_figures import entry_counts, latest_changes
from hashguard.store.lists import ListStore
from hashguard.store.match_log import LoggedMatch, MatchLog

A, B, C = "a" * 64, "b" * 64, "c" * 64
DIGEST = "d" * 32


def test_entries_are_counted_by_signal_and_status_and_changes_read_newest_first(
    engine: Engine,
) -> None:
    lists = ListStore(engine)
    known = lists.create("known", "Hotline", Category.KNOWN_CSAM)
    other = lists.create("other", "Hotline", Category.KNOWN_CSAM)
    empty = lists.create("empty", "Hotline", Category.KNOWN_CSAM)
    lists.apply("known", [Submission("pdq", A), Submission("pdq", B), Submission("md5", DIGEST)])
    lists.apply("other", [Submission("pdq", C)])
    lists.change("known", ChangeKind.DELIST, "pdq", B, reason="not what it was said to be",
                 actor="key:cur")  # fmt: skip

    counted = entry_counts(engine, [known.id, empty.id])
    assert counted == {known.id: {"pdq": {"active": 1, "delisted": 1}, "md5": {"active": 1}},
                       empty.id: {}}  # fmt: skip
    assert entry_counts(engine, [other.id]) == {other.id: {"pdq": {"active": 1}}}
    assert entry_counts(engine, []) == {}

    changes = latest_changes(engine, known.id, 2)
    assert [(c.version, c.kind, c.signal, c.actor) for c in changes] == [
        (4, "delist", "pdq", "key:cur"),
        (3, "add", "md5", ""),
    ]
    assert abs(changes[0].at - datetime.now(UTC)) < timedelta(minutes=5)
    assert latest_changes(engine, empty.id, 5) == []


def test_the_match_log_counts_since_a_time_and_gives_the_latest_within_lists(
    engine: Engine,
) -> None:
    log = MatchLog(engine)
    before = datetime.now(UTC) - timedelta(seconds=1)
    log.record([LoggedMatch("k1", "known", 1, "pdq", 3.0, "up-1"),
                LoggedMatch("k1", "known", 2, "md5", 0.0, "up-1"),
                LoggedMatch("k2", "other", 9, "pdq", 0.0, "up-2")])  # fmt: skip
    log.record([LoggedMatch("k1", "known", 1, "pdq", 5.0, "up-3")])
    assert log.counts_since(before) == {("known", "pdq"): 2, ("known", "md5"): 1,
                                        ("other", "pdq"): 1}  # fmt: skip
    assert log.counts_since(before, ["other"]) == {("other", "pdq"): 1}
    assert log.counts_since(datetime.now(UTC) + timedelta(minutes=1)) == {}

    latest = log.latest(2)
    assert [(m.list, m.entry, m.content_ref) for m in latest] == [("known", 1, "up-3"),
                                                                  ("other", 9, "up-2")]  # fmt: skip
    assert [m.content_ref for m in log.latest(10, ["other"])] == ["up-2"]
