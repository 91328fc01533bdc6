"""The README, line by line: every command of its ```sh blocks runs as written in a scratch
directory prepared like a new user's checkout (``.venv`` the real virtualenv, ``examples/``
copied, the media the commands name generated), its Python snippets run as written, and every
``hashguard`` command and option it names exists.

What a command needs that a new user would type in themselves (a key printed earlier, a hash from
a list, a free port on this shared machine) comes from the tables below, each entry saying why.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer

from hashguard.cli import GROUPS, app
from hashguard.media.synthetic import encode, scene

from support.media import jpeg, make_video, png
from support.paths import PACKAGE, REPOSITORY
from support.server import free_port

README = REPOSITORY / "README.md"
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
SECONDS = 120  # the most one command may take on a busy machine before the test gives up on it


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # the README line of its first line of code
    code: str


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    found: list[Block] = []
    opened: tuple[str, str, int] | None = None  # indentation, language, first line
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if opened is None:
            if fence:
                opened, body = (fence[1], fence[2], number + 1), []
        elif fence and fence[1] == opened[0] and not fence[2]:
            found.append(Block(opened[1], opened[2], "\n".join(body)))
            opened = None
        else:
            body.append(line[len(opened[0]) :])
    return found


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # as written, continuation lines joined


def commands(block: Block) -> Iterator[Command]:
    """The command lines of a shell block: continuations (a trailing backslash) joined."""
    pending: list[str] = []
    start = block.line
    for offset, line in enumerate(block.code.splitlines()):
        if not pending:
            start = block.line + offset
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        yield Command(start, " ".join([*pending, line]))
        pending = []


def readme_commands() -> list[Command]:
    return [c for b in blocks(README.read_text()) if b.language == "sh" for c in commands(b)]


# --- the tables ------------------------------------------------------------------------------

# Lines not run here, each with why and what is checked instead.
NOT_RUN = {
    "make demo": "sets up .venv and serves until stopped: checked with make -n (the target exists)",
    "make test": "runs this very suite: checked with make -n (the target exists)",
}

# The commands whose README line documents an exit status, and the one this run expects (every
# other line: 0). The samples make each of them succeed: suspect.jpg is a lossy copy of
# original.jpg, uploads/ and the hashes given hold listed values, the release and the audit
# log are intact.
EXIT_STATUS = {
    "compare original.jpg suspect.jpg": 0,  # 0 match, 1 none
    "match --list known": 0,  # 0 if anything matched, 1 if nothing did, 2 on errors
    "lists verify": 0,  # 0 if valid, else 1
    "audit verify": 0,  # 0 if intact, else 1
}

# Commands that run in another directory: a second instance mirroring the first's list.
DIRECTORY = {"lists follow": "mirror"}

# Lines that keep running: started in the background, used by the next lines, stopped when the
# next one starts or the run ends. Each is ready when it logs this.
BACKGROUND = {"hashguard serve": "lists loaded"}


@dataclass
class Checkout:
    """A new user's checkout: the scratch directory, and what earlier commands printed."""

    directory: Path
    port: int
    printed: dict[str, str] = field(default_factory=dict)  # command text -> its output
    background: "Background | None" = None

    def output_of(self, fragment: str) -> str:
        """What the latest command holding ``fragment`` printed."""
        outputs = [out for text, out in self.printed.items() if fragment in text]
        assert outputs, f"no earlier README command holds {fragment!r}"
        return outputs[-1].strip()

    def listed(self, path: str, line: int) -> str:
        """Line ``line`` (from 0) of the example file at ``path``, comments left out."""
        lines = (self.directory / path).read_text().splitlines()
        return [text.strip() for text in lines if text.strip() and not text.startswith("#")][line]


# What the README shows as a placeholder, and the value this run gives it (first match wins).
PLACEHOLDERS: list[tuple[str, Callable[[Checkout], str]]] = [
    ("42:<hash>", lambda c: c.output_of("audit head")),  # the head printed just before
    ("<hash>", lambda c: c.listed("examples/hashes.txt", 1)),  # a listed PDQ hash
    ("<id>", lambda c: c.output_of("keys create --role curator").split("_")[1]),  # hg_<id>_...
    ("<hex hash>", lambda c: c.listed("examples/shared.csv", 4).split(",")[1]),  # a listed md5
    ("<64 hex digits>", lambda c: c.listed("examples/hashes.txt", 0)),
    ("<64 hex>", lambda c: c.listed("examples/hashes.txt", 0)),
    # the status token the hotline's answer to the report just before gave
    ("<token>", lambda c: json.loads(c.output_of("a link in a chat group"))["token"]),
    # another instance's address, and the README's port, which others may hold on this machine
    ("https://hashguard.hotline.example", lambda c: f"http://127.0.0.1:{c.port}"),
    ("8000", lambda c: str(c.port)),
]

# Variables a line uses that the README leaves to the reader, and the value this run gives.
VARIABLES: dict[str, Callable[[Checkout], dict[str, str]]] = {
    # the origin's operator gives the mirror a key that may read the change feed
    "lists follow": lambda c: {"KEY": c.output_of("keys create --role auditor")},
}
SETUP = {  # commands this run adds before a README line: the operator's side of it
    "lists follow": ".venv/bin/hashguard keys create --role auditor --list known --name mirror",
}


def filled(text: str, checkout: Checkout) -> str:
    """The line with its placeholders filled in (its comment, if any, left as it is)."""
    code, comment = re.split(r"(?=\s#\s)", text, maxsplit=1) if " # " in text else (text, "")
    for placeholder, value in PLACEHOLDERS:
        if placeholder in code:
            code = code.replace(placeholder, value(checkout))
    return code + comment


class Background:
    """A long-running command, its output read by a thread."""

    def __init__(self, text: str, cwd: Path, env: dict[str, str], ready: str) -> None:
        self.text = text
        self.process = subprocess.Popen(
            ["bash", "-c", f"set -euo pipefail\nexec {text}"],
            cwd=cwd,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log: list[str] = []
        self.logged = threading.Condition()
        self.ended = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        with self.logged:
            self.logged.wait_for(lambda: self.ended or any(ready in x for x in self.log), SECONDS)
        assert any(ready in x for x in self.log), f"{text} never got ready:\n{''.join(self.log)}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.logged:
                self.log.append(line)
                self.logged.notify_all()
        with self.logged:
            self.ended = True
            self.logged.notify_all()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(10)


def run(command: Command, checkout: Checkout, env: dict[str, str]) -> None:
    """Run one README line as bash would with ``set -euo pipefail``; check its exit status."""
    text = filled(command.text, checkout)
    where = f"README.md:{command.line}: {command.text}"
    key = next((k for k in DIRECTORY if k in text), None)
    cwd = checkout.directory / DIRECTORY[key] if key else checkout.directory
    for fragment, variables in VARIABLES.items():
        if fragment in text:
            env = {**env, **variables(checkout)}
    ready = next((log for fragment, log in BACKGROUND.items() if fragment in text), None)
    if ready is not None:
        if checkout.background is not None:
            checkout.background.stop()
        checkout.background = Background(text, cwd, env, ready)
        return
    assignment = re.fullmatch(r"([A-Z_]+)=(\S.*)", text)
    script = f'{text}\nprintf %s "${assignment[1]}"' if assignment else text
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS,
    )
    expected = next((status for k, status in EXIT_STATUS.items() if k in text), 0)
    assert done.returncode == expected, (
        f"{where}\nexit {done.returncode}, expected {expected}\n{done.stdout}\n{done.stderr}"
    )
    if text.startswith("curl"):
        assert '"error"' not in done.stdout, f"{where}\n{done.stdout}"
    checkout.printed[command.text] = done.stdout
    if assignment:
        env[assignment[1]] = done.stdout


def prepare(directory: Path) -> None:
    """A new user's checkout: .venv (the real one), examples/, and the media commands name."""
    (directory / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    shutil.copytree(REPOSITORY / "examples", directory / "examples")
    (directory / "photos").mkdir()
    (directory / "photos" / "beach.jpg").write_bytes(jpeg(30))
    (directory / "photos" / "garden.png").write_bytes(png(31))
    (directory / "video.mp4").write_bytes(make_video(7))
    # photo.jpg: StopNCII's listed scene 6 (examples/fetch.json), turned a quarter: --dihedral
    (directory / "photo.jpg").write_bytes(encode(scene(6).rotate(90, expand=True), "JPEG"))
    (directory / "original.jpg").write_bytes(jpeg(1))
    (directory / "suspect.jpg").write_bytes(encode(scene(1).resize((480, 360)), "JPEG", quality=40))
    uploads = directory / "uploads"
    uploads.mkdir()
    (uploads / "a.jpg").write_bytes(jpeg(1, quality=70))  # listed in examples/hashes.txt
    (uploads / "b.png").write_bytes(png(4))  # listed in examples/shared.csv
    (uploads / "c.jpg").write_bytes(jpeg(20))  # not listed
    (uploads / "notes.txt").write_bytes(b"benign sample\n")  # its digests: examples/shared.csv
    (uploads / "clip.mp4").write_bytes(make_video(7, bitrate=400_000))  # examples/videos.txt
    (directory / "mirror").mkdir()
    (directory / "mirror" / ".venv").symlink_to(sys.prefix, target_is_directory=True)


def environment(directory: Path, port: int) -> dict[str, str]:
    """The user's environment, with this checkout's source first (PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHGUARD_")}
    return {
        **env,
        "HOME": str(directory),
        "PYTHONPATH": str(PACKAGE.parent),
        "HASHGUARD_PORT": str(port),  # for `serve --config`: the file says 8000
    }


def test_every_command_in_the_readme_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip(  # make test installs it; a bare pytest run may lack it
            "curl is not installed, and the README's service lines use it: "
            "run scripts/ensure-system-packages python3 --test (make test does)"
        )
    prepare(tmp_path)
    checkout = Checkout(tmp_path, free_port())
    env = environment(tmp_path, checkout.port)
    ran = 0
    try:
        for command in readme_commands():
            if command.text.split("#")[0].strip() in NOT_RUN:
                target = command.text.split()[1]
                dry = subprocess.run(["make", "-n", "-C", str(REPOSITORY), target], check=False,
                                     capture_output=True, timeout=SECONDS)  # fmt: skip
                assert dry.returncode == 0, f"README.md:{command.line}: no make target {target}"
                continue
            for fragment, setup in SETUP.items():
                if fragment in command.text:
                    run(Command(command.line, setup), checkout, env)
            run(command, checkout, env)
            ran += 1
    finally:
        if checkout.background is not None:
            checkout.background.stop()
    assert ran > 30  # the parser found the README's commands


def test_the_tables_name_lines_of_the_readme() -> None:
    """An entry that names no README line any more is stale: the README changed under it."""
    texts = [c.text for c in readme_commands()]
    named = [*NOT_RUN, *EXIT_STATUS, *DIRECTORY, *BACKGROUND, *VARIABLES, *SETUP]
    named += [placeholder for placeholder, _ in PLACEHOLDERS]
    assert [k for k in named if not any(k in text for text in texts)] == []


def test_the_python_snippets_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippets = [b for b in blocks(README.read_text()) if b.language == "python"]
    assert snippets
    monkeypatch.chdir(tmp_path)
    for snippet in snippets:
        printed = io.StringIO()
        with redirect_stdout(printed):
            exec(compile(snippet.code, f"README.md:{snippet.line}", "exec"), {})


# --- every command and option named anywhere in the README -----------------------------------

MENTION = re.compile(r"(?:\.venv/bin/)?\bhashguard((?: +[a-z][a-z-]*)+)((?:[^`\n#|]*))")
LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def inline_code(text: str) -> list[str]:
    """The README's inline code spans (outside code blocks), line breaks as spaces."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def named_commands(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(words after ``hashguard``, options) of every ``hashguard ...`` the README shows: in
    code blocks (continuations joined) and inline code, where a span may leave out the
    ``hashguard`` (`lists create --four-eyes`)."""
    root = typer.main.get_command(app)
    commands = {*GROUPS, *getattr(root, "commands", {})}
    spans = [
        span if span.split()[0] not in commands else f"hashguard {span}"
        for span in inline_code(text)
    ]
    for code in [*(b.code.replace("\\\n", " ") for b in blocks(text)), *spans]:
        for line in code.splitlines():
            for words, rest in MENTION.findall(line):
                yield words.split(), re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", words + rest)


def resolved(words: list[str]) -> tuple[list[str], Any]:
    """The longest command path ``words`` start with, and its (click) command."""
    command = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        if word in GROUPS and not path:  # a group, loaded when used
            command = typer.main.get_group(GROUPS[word][1]())
        elif word in getattr(command, "commands", {}):
            command = command.commands[word]
        else:
            break  # an argument: a list's name, a path
        path.append(word)
    return path, command


def options(command: Any) -> set[str]:
    """Every option of ``command`` and, for a group, of its commands."""
    own = {name for p in command.params for name in [*p.opts, *p.secondary_opts]}
    for sub in getattr(command, "commands", {}).values():
        own |= options(sub)
    return own | {"--help"}


def test_every_hashguard_command_and_option_in_the_readme_exists() -> None:
    checked = 0
    for words, named in named_commands(README.read_text()):
        path, command = resolved(words)
        assert path, f"README: `hashguard {' '.join(words)}` is no command"
        missing = [o for o in named if o not in options(command)]
        assert not missing, f"README: `hashguard {' '.join(path)}` has no option {missing}"
        checked += 1
    assert checked > 50


def test_every_option_the_readme_names_in_passing_exists() -> None:
    """Options in the prose (`--max-upload-mb`, `--every 60`) belong to some command."""
    everything = options(typer.main.get_command(app))
    for group in GROUPS.values():
        everything |= options(typer.main.get_group(group[1]()))
    named = {o for span in inline_code(README.read_text()) for o in LONG_OPTION.findall(span)}
    assert len(named) > 20
    assert sorted(named - everything) == []
