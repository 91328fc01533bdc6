"""The sample lists in ``examples/`` (docs/formats.md shows them): each imports as the docs say,
what a format holds that hashguard cannot match is reported, and the hashes are what the files
say they are, benign stand-ins made from generated scenes and short texts."""

import hashlib
import json
from pathlib import Path

import pytest

from hashguard.lists.formats.reader import FORMATS
from hashguard.signals import get
from hashguard.takedown import notice, signing
from hashguard.takedown.xarf import read_reports

from support.invoke import hashguard
from support.media import jpeg, make_video
from support.paths import REPOSITORY

EXAMPLES = REPOSITORY / "examples"

# file, format (and signal), the list's summary line, and what the import reports beside it
IMPORTS = [
    ("hashes.txt", ["--format", "text", "--signal", "pdq"], "3 added", []),
    ("videos.txt", ["--format", "text", "--signal", "vpdq"], "1 added", []),
    ("shared.csv", ["--format", "csv"], "3 added, 1 updated, 0 removed", [
        "1 removal(s) of values known never held: ignored"]),
    ("signals.csv", ["--format", "pytx"], "3 added", [
        "not imported: 1 NEGATIVE_CLASS rows",
        "not imported: 1 raw_text signals (not supported)"]),
    ("local_file.txt", ["--format", "pytx"], "2 added", [
        "not imported: 1 url signals (not supported)"]),
    ("fetch.json", ["--format", "stopncii"], "2 added", [
        "1 removal(s) of values known never held: ignored",
        "not imported: 1 VideoTMK records (not supported)"]),
    ("entries.xml", ["--format", "ncmec"], "4 added", [
        "1 removal(s) of values known never held: ignored",
        "not imported: 1 pdna fingerprints (not supported)",
        "not imported: 1 tmk-pdqf fingerprints (served by URL, not fetched)"]),
]  # fmt: skip


def lines(name: str) -> list[str]:
    text = (EXAMPLES / name).read_text().splitlines()
    return [line for line in text if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(("name", "options", "summary", "notes"), IMPORTS)
def test_each_example_imports_into_an_empty_list_and_says_what_it_left_out(
    tmp_path: Path, name: str, options: list[str], summary: str, notes: list[str]
) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path / 'lists.db'}"]
    hashguard("lists", "create", "known", "--owner", "Example", "--category", "test", *url)
    imported = hashguard("lists", "import", "known", str(EXAMPLES / name), *options, *url)
    assert imported.returncode == 0, imported.stderr
    first, *rest = imported.stdout.splitlines()
    assert first.startswith(f"known: {summary}"), first
    assert rest == notes


def test_an_export_names_what_its_format_cannot_carry(tmp_path: Path) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path / 'lists.db'}"]
    hashguard("lists", "create", "known", "--owner", "Example", "--category", "test", *url)
    for name, options, _, _ in IMPORTS:
        hashguard("lists", "import", "known", str(EXAMPLES / name), *options, *url)
    notes = {
        "pytx": "the pytx export carries PDQ and vPDQ only",
        "ncmec": "NCMEC fingerprints are md5, sha1 and pdq",
        "stopncii": "StopNCII types are ImagePDQ and VideoMD5",
    }
    for format, note in notes.items():
        exported = hashguard("lists", "export", "known", "-f", format, *url)
        assert exported.returncode == 0, exported.stderr
        assert note in exported.stderr
    pytx = hashguard("lists", "export", "known", "-f", "pytx", *url).stdout.splitlines()
    assert [row.split(",")[0] for row in pytx[1:]] == ["pdq"] * 6 + ["vpdq"]


def test_the_examples_hold_benign_stand_ins() -> None:
    pdq, vpdq = get("pdq"), get("vpdq")
    listed = [pdq.parse(value) for value in lines("hashes.txt")]
    for seed, value in zip((1, 2, 3), listed, strict=True):  # sample scenes 1-3, as it says
        assert pdq.distance(pdq.hash(jpeg(seed)), value) <= 8
    video = vpdq.hash(make_video(7))
    assert vpdq.compare(video, vpdq.parse(lines("videos.txt")[0])).match
    sample = hashlib.md5(b"benign sample\n").hexdigest()
    assert any(line.startswith(f"md5,{sample},") for line in lines("shared.csv"))


def test_docs_formats_shows_every_format_and_example() -> None:
    page = (REPOSITORY / "docs" / "formats.md").read_text()
    assert [f for f in FORMATS if f"\n## `{f}`" not in page] == []
    samples = [p.name for p in EXAMPLES.iterdir() if p.name not in DEPLOYMENT]
    assert [name for name in samples if f"(../examples/{name})" not in page] == []
    assert {name for name, *_ in IMPORTS} == {n for n in samples if not n.endswith(".toml")
                                              and n not in XARF}  # fmt: skip


# Examples of deploying, not of formats: the settings file (docs/configuration.md) and the
# load balancer in front of replicas (docs/scaling.md).
DEPLOYMENT = ["hashguard.toml", "haproxy.cfg"]


XARF = ["takedown-notices.json"]  # XARF v4 reports (takedown notices), not lists


def test_the_takedown_sample_is_a_signed_notice_and_its_outcome_as_xarf() -> None:
    text = (EXAMPLES / "takedown-notices.json").read_text()
    sent, removed = read_reports(text, "example")
    assert (sent.status, removed.status) == ("not-removed", "removed")
    for document in json.loads(text):
        notice.validate(document)
        assert signing.verify(document)
    pdq = get("pdq")
    [hashes] = sent.hashes
    assert hashes["md5"] == hashlib.md5(b"benign sample\n").hexdigest()
    assert pdq.distance(pdq.hash(jpeg(1)), pdq.parse(hashes["pdq"])) <= 8
