"""Who holds an exchange's lease: a process named so that another process on the same machine can
tell whether it still runs (``Holder``), and so that a fetch killed with SIGKILL does not keep
its exchange from the next fetch for the rest of its lease.

A holder is its host name, its place (the machine's boot and its PID namespace: where process
ids name the same processes), its process id and when that process started (``/proc/PID/stat``,
field 22: clock ticks after boot). Another process in the same place knows it is gone when its
id names no process, a process started at another time (the id was reused) or a zombie. Nothing
is known of a holder on another host or in another place (another container, an earlier boot),
nor where there is no ``/proc``: its lease runs to its end."""

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_HOST_CHARS: Final = 100  # of the exchanges table's lease_holder, 200 characters
_PROC: Final = Path("/proc")
_UNKNOWN: Final = "-"


@dataclass(frozen=True, slots=True)
class Holder:
    """A process that holds a lease, as another process reads it from the lease's row."""

    host: str
    place: str  # boot id and PID namespace ("" where unknown: no /proc)
    pid: int
    started: str  # clock ticks after boot ("" where unknown)

    def text(self) -> str:
        """As the lease_holder column keeps it: ``PID STARTED PLACE HOST``."""
        fields = (str(self.pid), self.started, self.place, self.host[:_HOST_CHARS])
        return " ".join(field or _UNKNOWN for field in fields)

    @classmethod
    def parse(cls, text: str | None) -> "Holder | None":
        """The holder ``text`` names, or None (none recorded, or not in the form ``text``
        writes)."""
        parts = (text or "").split(" ", 3)
        if len(parts) != 4 or not parts[0].isdigit():
            return None
        pid, started, place, host = ("" if part == _UNKNOWN else part for part in parts)
        return cls(host, place, int(pid), started)

    def describe(self) -> str:
        return f"process {self.pid} on {self.host or 'an unnamed host'}"

    def here(self) -> bool:
        """Whether this process can tell if the holder runs: the same host, boot and PID
        namespace, all known."""
        me = this_process()
        return bool(self.place and self.started) and (self.host, self.place) == (me.host, me.place)

    def running(self) -> bool:
        """Known to run: it ran here (``here``) and its id names the process started then,
        not a zombie. A process hidden from this one (``/proc`` mounted with hidepid) is not
        known to run, nor to be gone."""
        seen = _stat(self.pid) if self.here() else None
        return seen is not None and seen[1] == self.started and seen[0] not in ("Z", "X")

    def gone(self) -> bool:
        """Known to run no longer: it ran here (``here``) and its id names no process, a
        process started at another time, or a zombie. A process of another user that this one
        may not look at counts as running."""
        if not self.here():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it runs, as another user
        seen = _stat(self.pid)
        if seen is None:  # hidden from this user (or gone this instant): not known to be gone
            return False
        state, started = seen
        return started != self.started or state in ("Z", "X")


def this_process() -> Holder:
    """This process as a holder (read at each call: a forked child is a holder of its own)."""
    pid = os.getpid()
    seen = _stat(pid)
    return Holder(socket.gethostname()[:_HOST_CHARS], _place(), pid, seen[1] if seen else "")


def _stat(pid: int) -> tuple[str, str] | None:
    """A process's state and start (``/proc/PID/stat`` fields 3 and 22), or None."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # After the command's name, in parentheses and free to hold spaces and parentheses itself.
    fields = stat[stat.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _place() -> str:
    """This machine's boot and this process's PID namespace, or "" where either is unknown."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(_PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""
    number = namespace.removeprefix("pid:[").removesuffix("]")
    return f"{boot}/{number}" if boot and number.isdigit() else ""
