"""Runs every fuzz target (or those named) under atheris for a number of executions each, then
prints a table: target, executions, seconds, executions a second, new crashes.

    PYTHONPATH=src python fuzz/run.py [--runs N] [--seconds S] [TARGET ...]

Each target starts from its seeds (fuzz/corpus/<target>) and its past crashes
(fuzz/regressions/<target>); what it learns goes to fuzz/.work/<target>/corpus (not kept in
the repository; a later run resumes from it), its output to fuzz/.work/<target>/last-run.log.
A crash, a timeout or running out of memory stops that target, and libFuzzer writes the input
to fuzz/regressions/<target>/ (crash-..., timeout-..., oom-...): fix the parser, keep the
file, and tests/fuzz/test_replay.py replays it from then on.
Exits 1 when any target crashed.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ))
from harness import CORPUS, REGRESSIONS, WORK, names  # noqa: E402

_EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")
_PROGRESS = re.compile(rb"^#(\d+)\s", re.MULTILINE)
# What libFuzzer writes for a crash, an input past -timeout, and one past its memory limit.
_FOUND = ("crash-", "timeout-", "oom-", "leak-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(names())})")
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions per target")
    parser.add_argument("--seconds", type=int, default=0, help="stop a target after this long")
    parser.add_argument(
        "--timeout",
        type=int,
        default=30,
        help="seconds one input may take (a busy machine "
        "stalls some inputs for seconds: a lower bound reports them as timeouts)",
    )
    options = parser.parse_args()
    unknown = sorted(set(options.targets) - set(names()))
    if unknown:
        parser.error(f"unknown targets {', '.join(unknown)}; the targets: {', '.join(names())}")
    rows = [run(name, options) for name in options.targets or names()]
    print(f"\n{'target':<20} {'execs':>11} {'seconds':>9} {'exec/s':>9} {'new crashes':>12}")
    for name, executed, seconds, crashes in rows:
        rate = executed / seconds if seconds else 0.0
        print(f"{name:<20} {executed:>11,} {seconds:>9.1f} {rate:>9,.0f} {len(crashes):>12}")
    found = [crash for *_, crashes in rows for crash in crashes]
    for crash in found:
        print(f"crash: {crash.relative_to(FUZZ.parent)}")
    return 1 if found else 0


def run(name: str, options: argparse.Namespace) -> tuple[str, int, float, list[Path]]:
    work, regressions = WORK / name, REGRESSIONS / name
    learnt = work / "corpus"  # libFuzzer reads its corpus directories recursively
    learnt.mkdir(parents=True, exist_ok=True)
    regressions.mkdir(parents=True, exist_ok=True)
    before = set(regressions.iterdir())
    command = [
        sys.executable, str(FUZZ / "harness.py"), name,
        f"-runs={options.runs}", f"-timeout={options.timeout}", "-print_final_stats=1",
        f"-report_slow_units={options.timeout}",
        f"-artifact_prefix={regressions}/",
        *([f"-max_total_time={options.seconds}"] if options.seconds else []),
        str(learnt), str(CORPUS / name), str(regressions),
    ]  # fmt: skip
    source = str(FUZZ.parent / "src")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [source, *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    bound = f", at most {options.seconds} s" if options.seconds else ""
    print(f"{name}: fuzzing ({options.runs:,} executions{bound})", flush=True)
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, env=environment, check=False)
    seconds = time.monotonic() - started
    output = finished.stdout + finished.stderr
    (work / "last-run.log").write_bytes(output)
    executed = _EXECUTED.search(output)
    progress = [int(n) for n in _PROGRESS.findall(output)]
    count = int(executed.group(1)) if executed else max(progress, default=0)
    crashes = sorted(p for p in set(regressions.iterdir()) - before if p.name.startswith(_FOUND))
    if finished.returncode != 0 and not crashes:
        tail = output.decode("utf-8", "replace").strip().splitlines()[-20:]
        print(f"{name}: the fuzzer failed (exit {finished.returncode}):", *tail, sep="\n  ")
    return name, count, seconds, crashes


if __name__ == "__main__":
    sys.exit(main())
