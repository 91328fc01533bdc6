"""Bulk jobs (imports, releases): each runs in a process of its own, below the service's
priority, so that its seconds of CPU yield to the requests the service is answering."""

import asyncio
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from hashguard.api.jobs import JOB_NICENESS, BulkJobs, ImportJob
from hashguard.lists.model import Category
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.waiting import eventually


def _nice(pid: int) -> int:
    """The process's nice value (field 19 of /proc/PID/stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def _job_processes() -> list[int]:
    """This process's children that run a bulk job."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        if parent == os.getpid() and b"hashguard.api.jobs" in command:
            found.append(int(entry.name))
    return found


def _database(directory: Path) -> tuple[str, Engine, ListStore]:
    """A database with an empty list ``incoming``: its URL, engine and store."""
    url = f"sqlite:///{directory / 'jobs.db'}"
    engine = open_engine(url)
    lists = ListStore(engine)
    lists.create("incoming", "Test Org", Category.TEST, ["NL"])
    return url, engine, lists


def test_an_import_runs_in_a_process_of_its_own_below_the_service_then_is_followed(
    tmp_path: Path,
) -> None:
    url, engine, lists = _database(tmp_path)
    followed = []
    jobs = BulkJobs(lambda: followed.append(lists.get("incoming").version))
    # The job reads its records from a pipe: it stays at work, where it can be looked at,
    # until the records are written.
    pipe = tmp_path / "records"
    os.mkfifo(pipe)
    values = [np.random.default_rng(seed).bytes(32).hex() for seed in range(3)]
    seen: dict[str, object] = {}

    def feed() -> None:
        with open(pipe, "w") as records:  # returns once the job has opened the pipe
            seen["jobs"] = [(pid, _nice(pid)) for pid in _job_processes()]
            seen["running"] = jobs.running
            records.write("".join(value + "\n" for value in values))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    job = ImportJob(url, "incoming", str(pipe), "text", "pdq", None, "", "curator:test")
    try:
        outcome = asyncio.run(jobs.run(job))
    finally:  # a job that ended before it opened the pipe leaves the feeder waiting for it
        os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
        feeder.join(30)
    engine.dispose()

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen["running"] is True
    assert [nice for _, nice in seen["jobs"]] == [min(19, mine + JOB_NICENESS)]  # type: ignore[attr-defined]
    assert isinstance(outcome, dict) and outcome["added"] == 3, outcome
    assert followed == [lists.get("incoming").version]  # followed once it was committed
    assert not jobs.running


def test_a_job_whose_request_is_cancelled_is_killed_and_holds_the_next_one_until_it_has_ended(
    tmp_path: Path,
) -> None:
    url, engine, lists = _database(tmp_path)
    followed: list[int] = []
    jobs = BulkJobs(lambda: followed.append(1))
    pipe = tmp_path / "records"
    os.mkfifo(pipe)  # never written: the job waits for its records until it is killed
    job = ImportJob(url, "incoming", str(pipe), "text", "pdq", None, "", "curator:test")

    async def cancelled() -> None:
        running = asyncio.ensure_future(jobs.run(job))
        assert await asyncio.to_thread(eventually, _job_processes, 60)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(cancelled())
    engine.dispose()
    assert _job_processes() == []  # killed, and waited for
    assert not jobs.running and followed == []
    assert lists.get("incoming").version == 0


def test_a_job_cancelled_before_its_process_has_started_is_killed_once_it_starts(
    tmp_path: Path,
) -> None:
    url, engine, lists = _database(tmp_path)
    jobs = BulkJobs(lambda: None)
    pipe = tmp_path / "records"
    os.mkfifo(pipe)  # never written: a job left running would wait for its records for ever
    job = ImportJob(url, "incoming", str(pipe), "text", "pdq", None, "", "curator:test")

    async def cancelled_at_once() -> None:
        running = asyncio.ensure_future(jobs.run(job))
        await asyncio.sleep(0)  # the job has the lock; its process is being started
        running.cancel()
        done, _ = await asyncio.wait([running], timeout=60)
        for pid in _job_processes():  # one left running (the defect) is not left behind
            os.kill(pid, signal.SIGKILL)
        assert done, "the cancelled job's process was left running"
        with pytest.raises(asyncio.CancelledError):
            running.result()

    asyncio.run(cancelled_at_once())
    engine.dispose()
    assert _job_processes() == []
    assert not jobs.running
    assert lists.get("incoming").version == 0
