"""Files and directories that a crash leaves whole or absent, never torn.

Each is made aside (``.NAME.aside.tmp`` in the same directory), flushed to disk, then renamed or
linked into place, and the directory flushed so that the new name survives too. A reader sees
the old version or the new one, complete; what a killed writer left aside is taken over by the
next write of that path.
"""

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final

_NO_LINKS: Final = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS}  # hard links not supported


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A replaced file gets the mode a file written in place would get: 0o666 less the umask
# (read once, on import, before any thread could write a file).
_SHARED: Final = 0o666 & ~_umask()


@contextmanager
def writing(path: Path, mode: int = _SHARED) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new contents into; when the block ends without error it is
    fsynced and renamed over ``path``. On error ``path`` is left as it was."""
    path = Path(path)
    with _aside(path, mode) as (file, aside):
        yield file
        _flush(file)
        os.replace(aside, path)
        sync_directory(path.parent)


def write(path: Path, data: bytes, mode: int = _SHARED) -> None:
    """Replace ``path``'s contents with ``data``, atomically."""
    with writing(path, mode) as file:
        file.write(data)


def create(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` holding ``data``, whole: written aside, then linked into place, so that
    of processes creating it at once one wins and no reader sees it half-written. Raises
    FileExistsError when ``path`` exists (left as it is). Where the file system has no hard
    links, the file is created exclusively and written in place."""
    path = Path(path)
    with _aside(path, mode) as (file, aside):
        file.write(data)
        _flush(file)
        try:
            os.link(aside, path)
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as direct:
                direct.write(data)
                _flush(direct)
        sync_directory(path.parent)


def settle(path: Path) -> None:
    """Remove the aside file of ``path`` that a ``create`` killed after linking it into place
    left (a second name of the new file), unless a writer holds it now. Readers of files made
    with ``create`` call this: nothing else would ever write that path again."""
    aside = _aside_path(Path(path))
    try:
        descriptor = os.open(aside, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # none (or not this process's to touch)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _names(aside, descriptor):
            aside.unlink()
    except OSError:
        pass  # being written now, or in a directory this process may not change
    finally:
        os.close(descriptor)


@contextmanager
def assembling(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out`` to assemble its contents in (``move_into_place`` then
    publishes it); removed, with whatever a failure left in it, when the block ends."""
    work = assembly(out)
    shutil.rmtree(work, ignore_errors=True)  # a crashed build's
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def assembly(out: Path) -> Path:
    """Where ``assembling`` assembles ``out``: what a killed build left there is found there."""
    return out.with_name(f".{out.name}.building")


def move_into_place(work: Path, out: Path) -> None:
    """Publish the directory ``work`` (files only) as ``out``: its files and itself fsynced, then
    renamed to ``out``. An existing ``out`` is moved aside first and removed after: a crash
    leaves ``out`` complete, old or new, or absent."""
    for path in work.iterdir():
        with open(path, "rb") as file:
            os.fsync(file.fileno())
    sync_directory(work)
    replaced = out.with_name(f".{out.name}.replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if out.exists():
        os.replace(out, replaced)
    os.replace(work, out)
    sync_directory(out.parent)
    shutil.rmtree(replaced, ignore_errors=True)


def sync_directory(directory: Path) -> None:
    """Flush ``directory`` itself: the names created, renamed or removed in it."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def _aside(path: Path, mode: int) -> Iterator[tuple[BinaryIO, Path]]:
    """The file beside ``path`` to write its new contents in, with ``mode``, and its name.

    There is one such file per path, ``.NAME.aside.tmp``, locked while it is written: writers
    of one path take turns, and what a killed writer left there is taken over by the next (a
    fresh name per write would leave one more file behind at every crash). Removed when the
    block ends, unless it was renamed into place."""
    aside = _aside_path(path)
    while True:
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, mode)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if _names(aside, descriptor):
            break
        os.close(descriptor)  # the writer before us renamed or removed it: make a new one
    try:
        os.ftruncate(descriptor, 0)
        os.fchmod(descriptor, mode)
        with open(descriptor, "wb", closefd=False) as file:
            yield file, aside
    finally:
        if _names(aside, descriptor):  # still ours (not renamed into place): removed, locked
            aside.unlink()
        os.close(descriptor)


def _aside_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.aside.tmp")


def _names(path: Path, descriptor: int) -> bool:
    """Whether ``path`` is the name of the file open as ``descriptor``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _flush(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
