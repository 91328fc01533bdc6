"""``hashguard match`` as a user runs it (in this process: tests/support/invoke.py): files and
hashes against stored lists, each list's threshold, the exit status, errors that name the list
or the query."""

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hashguard.signals.pdq import PdqSignal

from support.invoke import Ran, hashguard
from support.media import jpeg, make_video, png


@dataclass
class Listed:
    url: str  # the database
    root: Path  # the media
    entries: dict[str, int]  # file name -> the id of its listed PDQ entry
    hashes: dict[str, str]  # file name -> its PDQ hash

    def match(self, *args: str) -> Ran:
        return hashguard("match", "--database-url", self.url, *args)


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Listed:
    """Lists in a database: "known" with two images' PDQ hashes (labelled), "strict" with one
    of them at PDQ threshold 8, "digests" with another image's SHA-256; and a folder with
    those images, a rotated copy of the first, an unlisted image and a flat one."""
    from PIL import Image

    from hashguard.lists.model import Category, ListPolicy
    from hashguard.lists.records import Submission
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    root = tmp_path_factory.mktemp("match")
    signal = PdqSignal()
    (root / "listed.jpg").write_bytes(jpeg(31))
    (root / "also-listed.png").write_bytes(png(32))
    rotated = Image.open(io.BytesIO(jpeg(31))).rotate(90, expand=True)
    buffer = io.BytesIO()
    rotated.save(buffer, "PNG")
    (root / "rotated.png").write_bytes(buffer.getvalue())
    (root / "other.jpg").write_bytes(jpeg(33))
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (40, 40, 40)).save(buffer, "PNG")
    (root / "flat.png").write_bytes(buffer.getvalue())
    names = ("listed.jpg", "also-listed.png")
    hashes = {n: signal.hash((root / n).read_bytes()).hex for n in names}
    url = f"sqlite:///{root.parent / (root.name + '.db')}"
    engine = open_engine(url)
    store = ListStore(engine)
    store.create("known", "Test Org", Category.TEST)
    store.apply("known", [Submission("pdq", hashes[n], frozenset({"B1", "test"})) for n in names])
    store.create("strict", "Test Org", Category.TEST, policy=ListPolicy({"pdq": 8}))
    store.apply("strict", [Submission("pdq", hashes["listed.jpg"])])
    store.create("digests", "Test Org", Category.TEST)
    other = hashlib.sha256((root / "other.jpg").read_bytes()).hexdigest()
    store.apply("digests", [Submission("sha256", other)])
    entries = {e.value: e.id for e in store.entries("known")[1]}
    engine.dispose()
    return Listed(url, root, {n: entries[hashes[n]] for n in names}, hashes)


def test_match_reports_lists_entries_and_exit_status(listed: Listed) -> None:
    root = listed.root
    result = listed.match("--list", "known", str(root))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    first, second = listed.entries["listed.jpg"], listed.entries["also-listed.png"]
    assert lines[str(root / "listed.jpg")] == (
        f"match, list known entry {first}, pdq distance 0 [B1, test]"
    )
    assert lines[str(root / "also-listed.png")].startswith(f"match, list known entry {second},")
    # The list's policy lets rotations match (the default): turned back, the copy matches.
    turned = lines[str(root / "rotated.png")]
    assert turned.startswith(f"match, list known entry {first}, pdq distance ")
    assert turned.endswith((" as rotate90 [B1, test]", " as rotate270 [B1, test]"))
    assert lines[str(root / "other.jpg")] == "no match"
    assert lines[str(root / "flat.png")] == "PDQ quality 0 too low to match"
    assert "1 image(s) of PDQ quality below 50 not matched" in result.stderr
    nothing = listed.match("--list", "known", str(root / "other.jpg"))
    assert nothing.returncode == 1 and nothing.stdout.endswith("no match\n")


def test_match_jsonl_is_one_object_per_match_and_nothing_else(listed: Listed) -> None:
    root = listed.root
    result = listed.match(
        "-l", "known", "-l", "strict", "-l", "digests", "--dihedral", "-f", "jsonl",
        str(root / "rotated.png"), str(root / "other.jpg"), str(root / "flat.png"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = [json.loads(text) for text in result.stdout.splitlines()]
    # The rotated copy is within the default 31 bits of "known", not within 8 of "strict";
    # the other image is hashed with SHA-256 too, since "digests" holds SHA-256.
    assert sorted((f["query"], f["list"], f["signal"]) for f in found) == [
        (str(root / "other.jpg"), "digests", "sha256"),
        (str(root / "rotated.png"), "known", "pdq"),
    ]
    for line in found:
        assert set(line) - {"variant"} == {"query", "list", "entry", "signal", "distance", "labels"}
    rotated = next(f for f in found if f["signal"] == "pdq")
    assert rotated["variant"] in ("rotate90", "rotate270")  # matched as turned back
    assert rotated["entry"] == listed.entries["listed.jpg"] and 8 < rotated["distance"] <= 31
    assert rotated["labels"] == ["B1", "test"]
    assert next(f for f in found if f["signal"] == "sha256")["distance"] == 0


def test_match_takes_hashes_as_queries_with_each_lists_threshold(listed: Listed) -> None:
    listed_hash = listed.hashes["listed.jpg"]
    bits = bytearray(bytes.fromhex(listed_hash))
    for i in range(12):  # 12 bits off: within "known"'s 31, beyond "strict"'s 8
        bits[i] ^= 1
    near = bits.hex()
    far = "".join("f" if c != "f" else "0" for c in listed_hash)
    result = listed.match("-l", "known", "-l", "strict", "-f", "csv", near, far, "pdq:" + near)
    assert result.returncode == 0, result.stderr
    entry = str(listed.entries["listed.jpg"])
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["query", "list", "entry", "signal", "distance", "labels"],
        [near, "known", entry, "pdq", "12", "B1;test"],
        ["pdq:" + near, "known", entry, "pdq", "12", "B1;test"],
    ]
    exact = listed.match("-l", "strict", "-f", "jsonl", listed_hash)
    assert [json.loads(line)["list"] for line in exact.stdout.splitlines()] == ["strict"]


def test_match_errors_name_the_list_or_the_query(listed: Listed) -> None:
    missing = listed.match("--list", "nolist", str(listed.root / "listed.jpg"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "hashguard: no list named 'nolist'\n"
    short = listed.match("--list", "known", "abcd")
    assert short.returncode == 2
    expected = "32 (md5), 40 (sha1) or 64 (pdq, sha256, canonical_sha256) hex digits; got 4"
    assert f"abcd: a hash has {expected}" in short.stderr


def test_match_reports_unreadable_files_and_skips_videos(tmp_path, listed, bad) -> None:
    (tmp_path / "clip.mp4").write_bytes(make_video(5, seconds=1))
    result = listed.match("-l", "known", str(bad / "corrupt.jpg"), str(tmp_path / "clip.mp4"))
    assert result.returncode == 2
    assert f"{bad / 'corrupt.jpg'}: " in result.stderr
    assert "skipped 1 video file(s): the lists hold only pdq entries" in result.stderr
    # A list of digests matches videos too: the file is hashed, not skipped.
    both = listed.match("-l", "known", "-l", "digests", str(tmp_path / "clip.mp4"))
    assert both.returncode == 1 and both.stdout.endswith("clip.mp4: no match\n")


def test_any_file_matches_a_list_of_its_digests(tmp_path: Path, listed: Listed) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"Minutes of the meeting: nothing to see.\n" * 30)
    (tmp_path / "hashes.txt").write_text(hashlib.sha256(notes.read_bytes()).hexdigest() + "\n")

    def lists(*args: str) -> Ran:
        return hashguard("lists", *args, "--database-url", listed.url)

    created = lists("create", "files", "--owner", "Test Org", "--category", "test")
    assert created.returncode == 0, created.stderr
    imported = lists("import", "files", str(tmp_path / "hashes.txt"), "-f", "text",
                     "-s", "sha256", "--source", "Test Org")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    found = listed.match("-l", "files", "-f", "jsonl", str(notes))
    assert found.returncode == 0, found.stderr
    [match] = [json.loads(line) for line in found.stdout.splitlines()]
    assert (match["query"], match["list"], match["signal"], match["distance"]) == (
        str(notes),
        "files",
        "sha256",
        0,
    )
    # Lists of PDQ hashes alone cannot match a text file: refused with the reason, as before.
    refused = listed.match("-l", "known", str(notes))
    assert refused.returncode == 2
    assert f"{notes}: not a supported image or video format" in refused.stderr


def test_a_broken_copy_of_a_listed_broken_file_is_found_by_its_digests(tmp_path: Path) -> None:
    good = jpeg(8)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[: len(good) // 2])  # truncated: no PDQ, but the same bytes
    url = f"sqlite:///{tmp_path / 'lists.db'}"
    made = hashguard("lists", "create", "files", "--owner", "Org", "--category", "test",
                     "--database-url", url)  # fmt: skip
    assert made.returncode == 0, made.stderr
    digest = tmp_path / "digests.txt"
    digest.write_text(hashlib.sha256(broken.read_bytes()).hexdigest() + "\n")
    imported = hashguard("lists", "import", "files", str(digest), "-f", "text", "-s", "sha256",
                         "--database-url", url)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    image = tmp_path / "image.txt"  # the list holds PDQ too: the file's PDQ is tried
    image.write_text(PdqSignal().hash(jpeg(9)).hex + "\n")
    imported = hashguard("lists", "import", "files", str(image), "-f", "text", "-s", "pdq",
                         "--database-url", url)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    found = hashguard("match", "--database-url", url, "--list", "files", str(broken))
    assert found.returncode == 2  # an error (its PDQ), which the exit status puts first
    assert "match, list files entry 1, sha256 distance 0" in found.stdout
    assert "truncated" in found.stderr and "only the hashes of its bytes" in found.stderr
