"""Crash consistency, proven by killing: each command that changes state is run in a forked
child of this process and killed with SIGKILL, either at a random moment of its own measured
duration or at its Nth commit or rename (``os.replace``, ``os.rename``, ``os.link`` and each
side of a database commit are counted in the child; the product has no hooks for this). Then
the state a user sees must be the one before the command or the one after it, never between;
the database intact (SQLite's ``PRAGMA integrity_check``, every table readable on PostgreSQL),
the audit chain and the transparency log verifying by the project's own commands; and running
the command again must succeed and leave the same state, file for file, as a run never killed.

``python -m support.crash`` (``make fuzz-crash``) runs HASHGUARD_CRASH_TRIALS trials (30) of
every command on SQLite and, when HASHGUARD_TEST_POSTGRES_URL names a server, PostgreSQL, and
prints the table; tests/crash runs a few of each in ``make test``.
"""

import contextlib
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import typer.main
from sqlalchemy import inspect, text, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine.default import DefaultDialect

from hashguard.cli import app
from hashguard.hotline.intake import Intake
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review import webhook
from hashguard.review.services import ServiceStore
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import WebhookRow
from hashguard.transparency import keys
from hashguard.transparency.log import TransparencyLog

from support.database import POSTGRES_URL, scratch_database
from support.exchanges.hashguard_peer import PeerFeed, change
from support.loopback import Loopback

KILLED: Final = -signal.SIGKILL  # a child's exit code when killed
_COMMAND = typer.main.get_command(app)  # made once: typer takes a while to make it
_DEVICE_RELEASE = re.compile(r"release-(\d+)-[0-9a-f]{8}")  # device/install.py's names


def hashguard_in_process(arguments: list[str]) -> int:
    """``hashguard ARGUMENTS`` in this process (a forked child): its exit status."""
    try:
        status = _COMMAND.main(arguments, prog_name="hashguard", standalone_mode=False)
    except SystemExit as exit:
        status = exit.code
    return int(status or 0)


# --- the commands --------------------------------------------------------------------------


class Scenario:
    """A command, the state it starts from, and what a user sees of the state it leaves.

    ``prepare`` makes the state before in ``work`` (the command's files) and the database at
    ``url``; ``run`` is the command (in the child); ``observe`` what users see, comparable
    between runs (no times, random names or absolute paths); ``problems`` what the project's
    verify commands say is wrong."""

    name = ""

    def prepare(self, work: Path, url: str) -> None:
        pass

    def run(self, work: Path, url: str) -> int:
        raise NotImplementedError

    def observe(self, work: Path, url: str) -> dict[str, Any]:
        return {"rows": row_counts(url), "files": listing(work, hidden=False)}

    def problems(self, work: Path, url: str) -> list[str]:
        return database_problems(url)

    def pending(self, seen: dict[str, Any], after: dict[str, Any]) -> bool:
        """Whether ``seen`` is the state after the command's commit point, with files the next
        run puts in place (a release logged, its directory not yet in place)."""
        return False

    def close(self) -> None:
        pass


def _entries(url: str, name: str, count: int, signal_name: str = "md5") -> None:
    store = ListStore(open_engine(url))
    store.create(name, "Offlimits", Category.KNOWN_CSAM, ["NL"])
    store.apply(name, [Submission(signal_name, _value(n, signal_name)) for n in range(count)])
    store.engine.dispose()


def _value(n: int, signal_name: str) -> str:
    return f"{n * 7919 + 1:032x}" if signal_name == "md5" else f"{n * 7919 + 1:064x}"


class ListsImport(Scenario):
    name = "lists import"
    size = 1000

    def prepare(self, work: Path, url: str) -> None:
        store = ListStore(open_engine(url))
        store.create("known", "Offlimits", Category.KNOWN_CSAM, ["NL"])
        store.engine.dispose()
        lines = [_value(n, "md5") for n in range(self.size)]
        (work / "hashes.txt").write_text("\n".join(lines) + "\n")

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(["lists", "import", "known", str(work / "hashes.txt"),
                                     "--format", "text", "--signal", "md5", "--source", "Origin",
                                     "--database-url", url])  # fmt: skip


class ListsRelease(Scenario):
    """The first release of a new log: the log's key is made too."""

    name = "lists release"

    def prepare(self, work: Path, url: str) -> None:
        _entries(url, "known", 200)
        keys.generate(work / "owner.key")

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(["lists", "release", "known", "--key",
                                     str(work / "owner.key"), "--log", str(work / "tlog"),
                                     "--out", str(work / "out"), "--database-url",
                                     url])  # fmt: skip

    def observe(self, work: Path, url: str) -> dict[str, Any]:
        # The log and its key, made by the first release and used by every later one, are
        # not observed: the records are.
        return {"rows": row_counts(url), "log": log_size(work / "tlog"),
                "release": listing(work / "out", hidden=False)}  # fmt: skip

    def pending(self, seen: dict[str, Any], after: dict[str, Any]) -> bool:
        return seen["log"] == after["log"] and not seen["release"]

    def problems(self, work: Path, url: str) -> list[str]:
        found = super().problems(work, url)
        if (work / "out").exists():
            found += _verified(["lists", "verify", str(work / "out"), "--log", str(work / "tlog")])
        if (work / "tlog.key").exists():
            try:
                keys.load(work / "tlog.key")
            except keys.KeyFileError as error:
                found.append(str(error))
        return found


class DeviceBuild(Scenario):
    name = "device build-filter"

    def prepare(self, work: Path, url: str) -> None:
        _entries(url, "known", 200, "pdq")
        keys.generate(work / "signer.key")
        keys.generate(work / "log.key")
        (work / "hashes.txt").write_bytes(b"a benign file to check\n")

    def arguments(self, work: Path, url: str, out: str) -> list[str]:
        return ["device", "build-filter", "--list", "known", "--mode", "offline", "--key",
                str(work / "signer.key"), "--log", str(work / "log"), "--log-key",
                str(work / "log.key"), "--out", str(work / out), "--database-url", url]  # fmt: skip

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(self.arguments(work, url, "c1"))

    def observe(self, work: Path, url: str) -> dict[str, Any]:
        return {"rows": row_counts(url), "log": log_size(work / "log"),
                "release": listing(work / "c1", hidden=False)}  # fmt: skip

    def pending(self, seen: dict[str, Any], after: dict[str, Any]) -> bool:
        return seen["log"] == after["log"] and not seen["release"]

    def problems(self, work: Path, url: str) -> list[str]:
        found = super().problems(work, url)
        if (work / "c1").exists():  # the release and its log record, checked as a device does
            found += _verified(["device", "check", str(work / "hashes.txt"), "--release",
                                str(work / "c1"), "--log", str(work / "log")],
                               ok=(0, 1))  # fmt: skip
        return found


class DeviceUpdate(DeviceBuild):
    """From release 1 installed to release 2: a device's update."""

    name = "device update"

    def prepare(self, work: Path, url: str) -> None:
        super().prepare(work, url)
        assert hashguard_in_process(self.arguments(work, url, "c1")) == 0
        assert hashguard_in_process([*self.update(work, "c1"), "--log-key",
                                     str(work / "log" / "log.pub")]) == 0  # fmt: skip
        assert hashguard_in_process(self.arguments(work, url, "c2")) == 0

    def update(self, work: Path, release: str) -> list[str]:
        return ["device", "update", "--release", str(work / release), "--log",
                str(work / "log"), "--state", str(work / "device")]  # fmt: skip

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(self.update(work, "c2"))

    def observe(self, work: Path, url: str) -> dict[str, Any]:
        # What the device uses: the release state.json names, whole (extra directories beside
        # it are garbage, which the rerun must remove: see ``listing``).
        state = json.loads((work / "device" / "state.json").read_bytes())
        installed = work / "device" / state["release"]
        files = sorted(path.name for path in installed.iterdir())
        return {"version": state["version"], "installed": files}

    def problems(self, work: Path, url: str) -> list[str]:
        state = json.loads((work / "device" / "state.json").read_bytes())
        if state["version"] == 2:  # checked as the device checks a file
            return _verified(["device", "check", str(work / "hashes.txt"), "--state",
                              str(work / "device"), "--log", str(work / "log")],
                             ok=(0, 1))  # fmt: skip
        # Release 1, no longer the newest in the log: the device refuses to check with it until
        # updated, so its files are compared with the release's.
        installed = work / "device" / state["release"]
        differ = [path.name for path in (work / "c1").iterdir()
                  if path.read_bytes() != (installed / path.name).read_bytes()]  # fmt: skip
        return [f"installed release 1 differs from it: {differ}"] if differ else []


class Purge(Scenario):
    """``hashguard purge`` with hotline reports and delivered webhook calls past retention."""

    name = "purge"

    def prepare(self, work: Path, url: str) -> None:
        engine = open_engine(url)
        past = datetime.now(UTC) - timedelta(days=400)
        intake = Intake(engine, reports_per_hour=10_000, retain=timedelta(days=30),
                        clock=lambda: past)  # fmt: skip
        for n in range(50):
            intake.report([f"https://site-{n}.example/"], "a forum", "seen there",
                          contact=f"reporter{n}@example.org")  # fmt: skip
        service = ServiceStore(engine).create("chat", webhook_url="http://127.0.0.1:9/hook")
        with engine.begin() as connection:
            for n in range(50):
                webhook.enqueue(connection, service.id, "test", {"n": n}, f"call-{n}", past)
            connection.execute(update(WebhookRow).values(delivered_at=past, attempts=1))
        engine.dispose()

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(["purge", "--database-url", url])


class WebhookSend(Scenario):
    """The sender `hashguard serve` runs every second (review/webhook.py's WebhookSender), with
    one call due to a real receiver on loopback that acts once per idempotency key."""

    name = "webhook sender"

    def __init__(self) -> None:
        self.receiver = Loopback(lambda path, headers, body: (200, "application/json", b"{}"))

    def prepare(self, work: Path, url: str) -> None:
        engine = open_engine(url)
        hook = f"{self.receiver.url}/{work.name}"
        service = ServiceStore(engine).create("chat", webhook_url=hook)
        with engine.begin() as connection:
            webhook.enqueue(connection, service.id, "quarantine", {"upload": "u-1"},
                            f"{work.name}-1", datetime.now(UTC) + timedelta(days=30))  # fmt: skip
        engine.dispose()
        (work / "secret.key").write_text(secrets.token_hex(32) + "\n")

    def run(self, work: Path, url: str) -> int:
        engine = open_engine(url)
        sender = webhook.WebhookSender(engine, webhook.load_secret(work / "secret.key"))
        return 0 if sender.send_due() == 1 else 1

    def observe(self, work: Path, url: str) -> dict[str, Any]:
        engine = open_engine(url, migrate=False)
        with engine.connect() as connection:
            calls = connection.execute(
                sql_select(WebhookRow.attempts, WebhookRow.delivered_at.is_not(None))
            ).all()
        engine.dispose()
        return {"rows": row_counts(url), "calls": [tuple(call) for call in calls]}

    def problems(self, work: Path, url: str) -> list[str]:
        found = super().problems(work, url)
        received = {headers.get("Idempotency-Key") for path, headers, _ in self.receiver.requests
                    if path == f"/{work.name}"}  # fmt: skip
        delivered = self.observe(work, url)["calls"][0][1]
        if delivered and f"{work.name}-1" not in received:
            found.append("a call is marked delivered that its service never received")
        return found

    def close(self) -> None:
        self.receiver.close()


class ExchangeFetch(Scenario):
    """``hashguard exchanges fetch`` of another hashguard's change feed on loopback (its pages
    are applied with the checkpoint after them and the audit events, in one transaction). Run
    again at once: the killed fetch's lease is taken over, its process being gone."""

    name = "exchange fetch"

    def __init__(self) -> None:
        self.feed = PeerFeed("known", "hg_peer_" + secrets.token_hex(16), page=1000)
        self.feed.changes = [change(n, _value(n, "md5")) for n in range(1, 301)]

    def prepare(self, work: Path, url: str) -> None:
        (work / "hg.toml").write_text(f'database_url = "{url}"\n\n[server]\nsecret_file = '
                                      f'"{work / "secret.key"}"\n\n[fetch]\n'
                                      'exchange_networks = ["127.0.0.0/8"]\n')  # fmt: skip
        (work / "peer.json").write_text(json.dumps({"api_key": self.feed.key}))
        added = hashguard_in_process(["exchanges", "add", "PEER", "--api", "hashguard",
                                      "--base-url", self.feed.url, "--set", "list=known",
                                      "--credentials-file", str(work / "peer.json"),
                                      "--interval", "1h", "--config",
                                      str(work / "hg.toml")])  # fmt: skip
        assert added == 0

    def run(self, work: Path, url: str) -> int:
        return hashguard_in_process(["exchanges", "fetch", "PEER", "--config",
                                     str(work / "hg.toml")])  # fmt: skip

    def close(self) -> None:
        self.feed.close()


_KINDS: Final = (ListsImport, ListsRelease, DeviceBuild, DeviceUpdate, Purge, WebhookSend,
                 ExchangeFetch)  # fmt: skip
SCENARIOS: Final[dict[str, Callable[[], Scenario]]] = {kind.name: kind for kind in _KINDS}


# --- what a user sees, and what the verify commands say -------------------------------------


def row_counts(url: str) -> dict[str, int]:
    """Every table's number of rows."""
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as connection:
            names = inspect(connection).get_table_names()
            return {
                name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in sorted(names)
            }
    finally:
        engine.dispose()


def database_problems(url: str) -> list[str]:
    """What SQLite's integrity check and the audit chain's verification find wrong."""
    found: list[str] = []
    if url.startswith("sqlite"):
        engine = open_engine(url, migrate=False)
        with engine.connect() as connection:
            answer = [row[0] for row in connection.execute(text("PRAGMA integrity_check"))]
        engine.dispose()
        if answer != ["ok"]:
            found.append(f"integrity check: {answer}")
    return found + _verified(["audit", "verify", "--database-url", url])


def log_size(directory: Path) -> int:
    """The number of records in a transparency log (0 where there is none)."""
    return TransparencyLog(directory).size() if (directory / "records").is_dir() else 0


def listing(work: Path, hidden: bool) -> list[str]:
    """The names of the files under ``work``, device releases' random names normalised; with
    ``hidden``, the dot-names too (scratch files a crashed command left)."""
    names = []
    for path in sorted(work.rglob("*") if work.is_dir() else []):
        relative = path.relative_to(work)
        if not hidden and any(part.startswith(".") for part in relative.parts):
            continue
        names.append(_DEVICE_RELEASE.sub(r"release-\1-*", str(relative)))
    return names


def _verified(arguments: list[str], ok: tuple[int, ...] = (0,)) -> list[str]:
    status = run_child(lambda: hashguard_in_process(arguments)).status
    return [] if status in ok else [f"hashguard {' '.join(arguments[:2])}: exit status {status}"]


# --- running and killing --------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Standard output and error to nowhere: the commands' lines are not the trials'."""
    with (
        open(os.devnull, "w") as nowhere,
        contextlib.redirect_stdout(nowhere),
        contextlib.redirect_stderr(nowhere),
    ):
        yield


@dataclass(frozen=True)
class Ran:
    status: int  # KILLED when killed
    points: int  # commits and renames reached
    seconds: float


def run_child(
    command: Callable[[], int], kill_at: int | None = None, kill_after: float | None = None
) -> Ran:
    """``command()`` in a forked child, killed with SIGKILL at its ``kill_at``-th commit or
    rename, or ``kill_after`` seconds after it started (unless it ended before)."""
    reading, writing = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns to the caller
        status = 99
        try:
            os.close(reading)
            points = _counting_points(kill_at)
            with _quiet():
                status = command()
            os.write(writing, str(points()).encode())
        finally:
            os._exit(status)
    os.close(writing)
    if kill_after is not None:
        process = os.pidfd_open(pid)
        ended, _, _ = select.select([process], [], [], kill_after)
        if not ended:
            os.kill(pid, signal.SIGKILL)
        os.close(process)
    _, waited = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    with os.fdopen(reading, "rb") as pipe:
        told = pipe.read()
    return Ran(os.waitstatus_to_exitcode(waited), int(told or 0), seconds)


def _counting_points(kill_at: int | None) -> Callable[[], int]:
    """Count, in this (child) process, each ``os.replace``, ``os.rename`` and ``os.link`` and
    the moments just before and just after each database commit; die by SIGKILL at the
    ``kill_at``-th. What it returns tells the count."""
    reached = 0

    def point() -> None:
        nonlocal reached
        reached += 1
        if reached == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def counted(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            point()
            return original(*args, **kwargs)

        return call

    for name in ("replace", "rename", "link"):
        setattr(os, name, counted(getattr(os, name)))
    commit = DefaultDialect.do_commit

    def do_commit(dialect: DefaultDialect, connection: Any) -> None:
        point()
        commit(dialect, connection)
        point()

    DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]
    # What a killed process wrote stays in the page cache: flushing it to disk is for power
    # failures, and slow here.
    os.fsync = lambda descriptor: None
    return lambda: reached


# --- trials ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the trials of one command on one database found: how many ended in the state
    before, after, after with files the next run puts in place (``placed``), or between."""

    command: str
    database: str
    trials: int = 0
    before: int = 0
    after: int = 0
    placed: int = 0
    between: int = 0
    rerun_ok: int = 0
    failures: list[str] = field(default_factory=list)

    def row(self) -> str:
        counts = (self.trials, self.before, self.after, self.placed, self.between)
        cells = [f"{n:>{len(name)}}" for n, name in zip(counts, _COLUMNS, strict=True)]
        return f"{self.command:<20} {self.database:<11} {' '.join(cells)} {self.rerun_ok:>8}"


_COLUMNS: Final = ("trials", "before", " after", "placed", "between")
HEADER: Final = f"{'command':<20} {'database':<11} {' '.join(_COLUMNS)} rerun ok"


@contextlib.contextmanager
def _trial_state(scenario: Scenario, kind: str, directory: Path) -> Iterator[tuple[Path, str]]:
    """A fresh database of ``kind`` and a directory, in the state before the command."""
    root = Path(tempfile.mkdtemp(dir=directory))
    (root / "db").mkdir()
    work = root / "work"
    work.mkdir()
    try:
        with scratch_database(kind, root / "db") as url:
            with _quiet():
                scenario.prepare(work, url)
            yield work, url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Reference:
    """The command run once, never killed: the state before and after, every file it left,
    and how long it took and how many commits and renames it made."""

    before: dict[str, Any]
    after: dict[str, Any]
    files: list[str]
    ran: Ran


def reference(scenario: Scenario, kind: str, directory: Path) -> Reference:
    with _trial_state(scenario, kind, directory) as (work, url):
        before = scenario.observe(work, url)
        ran = run_child(lambda: scenario.run(work, url))
        if ran.status != 0:
            raise AssertionError(f"{scenario.name} on {kind}: exit status {ran.status}")
        made = Reference(before, scenario.observe(work, url), listing(work, hidden=True), ran)
    assert made.before != made.after, f"{scenario.name}: changed nothing that is observed"
    return made


def trials(
    scenario: Scenario, kind: str, count: int, directory: Path, seed: int = 23,
    every_point: bool = False,
) -> Tally:  # fmt: skip
    """``count`` trials of ``scenario`` on a database of ``kind``: killed at a random commit or
    rename (even trials) or at a random moment of its measured duration (odd ones); with
    ``every_point``, at each of its commits and renames in turn instead."""
    chance = random.Random(seed)
    done = reference(scenario, kind, directory)
    kills: list[tuple[int | None, float | None]] = (
        [(point, None) for point in range(1, done.ran.points + 1)]
        if every_point
        else [
            (chance.randint(1, done.ran.points), None)
            if n % 2 == 0
            else (None, chance.uniform(0, done.ran.seconds))
            for n in range(count)
        ]
    )
    tally = Tally(scenario.name, kind)
    for kill_at, kill_after in kills:
        how = f"killed at point {kill_at}" if kill_at else f"killed after {kill_after:.2f} s"
        with _trial_state(scenario, kind, directory) as (work, url):
            killed = run_child(lambda: scenario.run(work, url), kill_at, kill_after)
            if killed.status not in (0, KILLED):
                tally.failures.append(f"{how}: exit status {killed.status}")
            tally.trials += 1
            seen = scenario.observe(work, url)
            if seen == done.before:
                tally.before += 1
            elif seen == done.after:
                tally.after += 1
            elif scenario.pending(seen, done.after):
                tally.placed += 1
            else:
                tally.between += 1
                tally.failures.append(f"{how}: between: {_difference(done, seen)}")
            tally.failures += [f"{how}: {problem}" for problem in scenario.problems(work, url)]
            status = 0  # the state after, every file as a run never killed leaves it: done
            if seen != done.after or listing(work, hidden=True) != done.files:
                status = run_child(lambda: scenario.run(work, url)).status
            left = listing(work, hidden=True)
            if status == 0 and scenario.observe(work, url) == done.after and left == done.files:
                tally.rerun_ok += 1
            else:
                extra = (sorted((Counter(left) - Counter(done.files)).elements()),
                         sorted((Counter(done.files) - Counter(left)).elements()))  # fmt: skip
                tally.failures.append(f"{how}: run again: exit status {status}, files "
                                      f"added/missing {extra}")  # fmt: skip
    return tally


def _difference(done: Reference, seen: dict[str, Any]) -> str:
    return "; ".join(
        f"{key}: {seen.get(key)!r:.300} (before {done.before.get(key)!r:.300}, after "
        f"{done.after.get(key)!r:.300})"
        for key in sorted(set(done.before) | set(seen))
        if seen.get(key) not in (done.before.get(key), done.after.get(key))
    )


def main() -> int:
    """Every command's trials on every database there is; the table; 1 when any failed."""
    count = int(os.environ.get("HASHGUARD_CRASH_TRIALS", "30"))
    kinds = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
    if not POSTGRES_URL:
        print("PostgreSQL skipped: HASHGUARD_TEST_POSTGRES_URL is not set "
              "(scripts/with-postgresql sets it)", file=sys.stderr)  # fmt: skip
    print(HEADER)
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for make in SCENARIOS.values():
            scenario = make()
            try:
                for kind in kinds:
                    tally = trials(scenario, kind, count, Path(directory))
                    print(tally.row(), flush=True)
                    for failure in tally.failures:
                        print(f"    {failure}", flush=True)
                    failed = failed or bool(tally.failures)
            finally:
                scenario.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
