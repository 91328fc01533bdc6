"""Files written aside and renamed into place: what a killed writer left aside is taken over by
the next write of the same path (never left to pile up, one more file per crash), and writers
of one path take turns."""

import threading
from pathlib import Path

import pytest

from hashguard import durable


def test_what_a_killed_writer_left_aside_is_taken_over_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    (tmp_path / ".state.json.aside.tmp").write_bytes(b'{"half": ')  # as a kill leaves it
    durable.write(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_killed_create_leaves_nothing_the_next_one_trips_on(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    (tmp_path / ".log.key.aside.tmp").write_bytes(b"-----BEGIN")
    durable.create(key, b"whole")
    assert key.read_bytes() == b"whole"
    with pytest.raises(FileExistsError):
        durable.create(key, b"another")
    assert key.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.key"]


def test_writers_of_one_path_take_turns_and_each_write_is_whole(tmp_path: Path) -> None:
    target = tmp_path / "counts"
    contents = [bytes([n]) * 200_000 for n in range(8)]
    writers = [threading.Thread(target=durable.write, args=(target, data)) for data in contents]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert target.read_bytes() in contents
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts"]


def test_a_create_killed_once_in_place_leaves_no_copy_after_the_next_read(tmp_path: Path) -> None:
    """Killed after linking the new file into place, before removing its aside name, ``create``
    left a second name of it (a private key's copy): ``settle``, which readers call, removes it,
    unless a writer holds it."""
    key = tmp_path / "log.key"
    key.write_bytes(b"whole")
    (tmp_path / ".log.key.aside.tmp").hardlink_to(key)
    durable.settle(key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.key"]
    assert key.read_bytes() == b"whole"
    durable.settle(key)  # nothing to do
