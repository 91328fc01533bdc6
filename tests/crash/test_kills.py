"""Crash consistency (issue 23): every command that changes state, killed with SIGKILL at a
random commit or rename and at a random moment of its run (support/crash.py), on SQLite and
PostgreSQL, leaves the state before it or after it, never between; the database intact, the
audit chain and the transparency log verifying; and run again it succeeds and leaves what a run
never killed leaves, file for file. ``make fuzz-crash`` runs 30 trials of each."""

import os
import random
from pathlib import Path

import pytest

from support.crash import SCENARIOS, DeviceUpdate, ExchangeFetch, Scenario, Tally, trials

# A few per command here; HASHGUARD_CRASH_TRIALS sets how many (make fuzz-crash: 30).
TRIALS = int(os.environ.get("HASHGUARD_CRASH_TRIALS", "2"))


def tried(scenario: Scenario, kind: str, directory: Path, every_point: bool = False) -> Tally:
    seed = random.randrange(1 << 32)  # named in a failure: the same trials again with it
    try:
        tally = trials(scenario, kind, TRIALS, directory, seed, every_point)
    finally:
        scenario.close()
    assert tally.failures == [], f"{scenario.name} on {kind}, seed {seed}: {tally.failures}"
    assert tally.between == 0 and tally.rerun_ok == tally.trials
    return tally


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("command", list(SCENARIOS))
def test_a_killed_command_leaves_the_state_before_or_after_it(
    command: str, kind: str, tmp_path: Path
) -> None:
    tally = tried(SCENARIOS[command](), kind, tmp_path)
    assert tally.trials == TRIALS


def test_a_device_update_killed_at_any_step_leaves_no_release_directory_behind(
    tmp_path: Path,
) -> None:
    """Killed after its new release was put in place but before the device's state named it,
    an update left that directory for good: every crash kept one more full filter copy. The
    next update removes it (the run again compares every file with an update never killed).
    The device's files are the same on either database: SQLite here."""
    tally = tried(DeviceUpdate(), "sqlite", tmp_path, every_point=True)
    assert tally.trials >= 3  # the release, the state, and the files kept from release 1


def test_an_exchange_fetch_killed_at_any_commit_applies_all_or_nothing_on_sqlite(
    tmp_path: Path,
) -> None:
    """On SQLite the records went in a savepoint taken before the transaction's first write,
    which the sqlite3 module had not begun: releasing it committed them alone, and a fetch
    killed before its commit kept the records without their checkpoint and audit event."""
    tried(ExchangeFetch(), "sqlite", tmp_path, every_point=True)
