"""Videos on lists through the command line, as a user runs it: a video's vPDQ from
``hashguard hash`` imported (hashguard's CSV, one-line text, ThreatExchange's pytx CSV),
exported and imported again unchanged, and a re-encoding matched by ``hashguard match`` with
the share of frames each side finds in the other. Benign generated videos only."""

import csv
import json
from pathlib import Path

import pytest

from hashguard.signals.vpdq import VpdqSignal

from support.invoke import Ran, hashguard
from support.media import make_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    (root / "listed.mp4").write_bytes(make_video(1, seconds=8))
    (root / "reencoded.mp4").write_bytes(make_video(1, seconds=8, codec="libx264", bitrate=250_000))
    (root / "other.mp4").write_bytes(make_video(2, seconds=8))
    return root


def lists(database: Path, *args: str) -> Ran:
    return hashguard("lists", *args, "--database-url", f"sqlite:///{database}")


def created(database: Path, name: str) -> None:
    made = lists(database, "create", name, "--owner", "Test Org", "--category", "test")
    assert made.returncode == 0, made.stderr


def test_a_video_listed_in_every_format_round_trips_and_matches(
    videos: Path, tmp_path: Path
) -> None:
    hashed = hashguard("hash", str(videos / "listed.mp4"), "-s", "vpdq")
    assert hashed.returncode == 0, hashed.stderr
    text_form = json.loads(hashed.stdout)["value"]  # hashguard's: a line per frame
    canonical = VpdqSignal().canonical(text_form)  # ThreatExchange's JSON: what lists hold

    database = tmp_path / "lists.db"
    created(database, "videos")
    source = tmp_path / "videos.csv"
    with source.open("w", newline="") as file:
        csv.writer(file).writerows([["signal", "value", "labels"], ["vpdq", text_form, "A1"]])
    imported = lists(database, "import", "videos", str(source), "-f", "csv")
    assert imported.returncode == 0, imported.stderr
    assert "1 added" in imported.stdout

    plain = tmp_path / "videos.txt"
    exported = lists(database, "export", "videos", "-f", "text", "-s", "vpdq", "-o", str(plain))
    assert exported.returncode == 0, exported.stderr
    assert plain.read_text() == canonical + "\n"
    pytx = tmp_path / "videos-pytx.csv"
    exported = lists(database, "export", "videos", "-f", "pytx", "-o", str(pytx))
    assert exported.returncode == 0, exported.stderr
    for name, path, options in (("again", plain, ["-s", "vpdq"]), ("pytx", pytx, [])):
        created(database, name)
        form = "text" if path == plain else "pytx"
        imported = lists(database, "import", name, str(path), "-f", form, *options)
        assert imported.returncode == 0, imported.stderr
        shown = lists(database, "export", name, "-f", "text", "-s", "vpdq")
        assert shown.stdout == canonical + "\n", name

    url = f"sqlite:///{database}"
    matched = hashguard("match", str(videos / "reencoded.mp4"), "--list", "videos",
                        "--database-url", url)  # fmt: skip
    assert matched.returncode == 0, matched.stderr
    assert "list videos entry" in matched.stdout
    assert "% of its frames in the listed video" in matched.stdout
    as_json = hashguard("match", str(videos / "reencoded.mp4"), "--list", "videos",
                        "--format", "jsonl", "--database-url", url)  # fmt: skip
    (found,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert found["signal"] == "vpdq" and found["labels"] == ["A1"]
    assert min(found["query_percent"], found["listed_percent"]) >= 80
    assert found["distance"] == 100 - min(found["query_percent"], found["listed_percent"])

    other = hashguard("match", str(videos / "other.mp4"), "--list", "videos",
                      "--database-url", url)  # fmt: skip
    assert other.returncode == 1 and "no match" in other.stdout


def test_frame_lines_in_a_plain_list_are_refused_with_the_form_it_needs(
    videos: Path, tmp_path: Path
) -> None:
    hashed = hashguard("hash", str(videos / "other.mp4"), "-s", "vpdq")
    database = tmp_path / "lists.db"
    created(database, "videos")
    plain = tmp_path / "frames.txt"
    plain.write_text(json.loads(hashed.stdout)["value"] + "\n")  # a line per frame
    imported = lists(database, "import", "videos", str(plain), "-f", "text", "-s", "vpdq")
    assert imported.returncode == 1  # a bad list file, as for every format
    assert f"{plain}:1: expected a vpdq value" in imported.stderr
    assert "ThreatExchange's JSON form" in imported.stderr
    shown = lists(database, "show", "videos")
    assert "vpdq" not in shown.stdout  # nothing imported


def test_a_long_video_round_trips_through_every_csv_format(tmp_path: Path) -> None:
    # 30 minutes at a frame a second: its vPDQ is over Python's default CSV field limit.
    frames = "\n".join(f"{n},90,{n * 7919 + 1:064x},{n}.000" for n in range(1800))
    canonical = VpdqSignal().canonical(frames)
    assert len(canonical) > 131_072
    database = tmp_path / "lists.db"
    created(database, "long")
    source = tmp_path / "long.csv"
    with source.open("w", newline="") as file:
        csv.writer(file).writerows([["signal", "value"], ["vpdq", frames]])
    assert lists(database, "import", "long", str(source), "-f", "csv").returncode == 0
    for form in ("csv", "pytx"):
        exported = tmp_path / f"long-{form}.csv"
        ran = lists(database, "export", "long", "-f", form, "-o", str(exported))
        assert ran.returncode == 0, ran.stderr
        created(database, f"again-{form}")
        imported = lists(database, "import", f"again-{form}", str(exported), "-f", form)
        assert imported.returncode == 0, imported.stderr
        shown = lists(database, "export", f"again-{form}", "-f", "text", "-s", "vpdq")
        assert shown.stdout == canonical + "\n"
