"""``hashguard takedown``: what an operator sees and does from the command line, on a real
database with notices as routing leaves them: the list (filters, overdue marked), one notice
(never content: URLs and hashes), withdrawing, removal orders, the hosters with their counts,
the monitor's figures; bad input in one line with its exit status."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, update

from hashguard.store.database import open_engine
from hashguard.store.tables import TakedownNoticeRow
from hashguard.takedown import signing
from hashguard.takedown.notice import Sender, compose
from hashguard.transparency import keys

from support.invoke import Ran, hashguard
from support.notice_rows import stored_notice

HOSTERS = """\
[[hoster]]
name = "Files BV"
country = "NL"
networks = ["192.0.2.0/24"]
abuse_email = "abuse@files.example"

[[hoster]]
name = "Quiet Hosting"
country = "DE"
networks = ["198.51.100.0/24"]
abuse_email = "abuse@quiet.example"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "hosters.toml").write_text(HOSTERS)
    path = tmp_path / "hg.toml"
    path.write_text(f'database_url = "sqlite:///{tmp_path / "hg.db"}"\n\n[hotline]\n'
                    f'hotline_country = "NL"\nhotline_hosters = "{tmp_path / "hosters.toml"}"\n\n'
                    f'[takedown]\ntakedown_key = "{tmp_path / "takedown.key"}"\n')  # fmt: skip
    return path


@pytest.fixture
def engine(config: Path, tmp_path: Path) -> Engine:
    made = open_engine(f"sqlite:///{tmp_path / 'hg.db'}")
    now = datetime.now(UTC)
    stored_notice(made, state="open", deadline_at=now - timedelta(hours=3),
                  urls=["https://files.example/late.jpg"])  # fmt: skip
    stored_notice(made, state="open", deadline_at=now + timedelta(hours=20))
    return made


def takedown(config: Path, *arguments: str) -> Ran:
    return hashguard("takedown", *arguments, "--config", str(config))


def test_notices_are_listed_newest_first_with_the_overdue_marked(
    config: Path, engine: Engine
) -> None:
    ran = takedown(config, "notices")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "id\tkind\tstate\thoster\tdeadline\turls"
    assert [line.split("\t")[0] for line in lines[1:]] == ["2", "1"]
    assert lines[1].endswith("https://files.example/a/1.jpg (+1)") and "OVERDUE" not in lines[1]
    assert "OVERDUE" in lines[2].split("\t")[4]
    overdue = takedown(config, "notices", "--overdue").stdout.splitlines()
    assert [line.split("\t")[0] for line in overdue[1:]] == ["1"]
    assert takedown(config, "notices", "--hoster", "Quiet Hosting").stdout.count("\n") == 1
    # reading makes no signing key: `hashguard serve` makes it on first start
    assert not (config.parent / "takedown.key").exists()
    assert not (config.parent / "takedown.key.pub").exists()


def test_the_export_says_it_needs_the_key_and_uses_it_when_there(
    config: Path, engine: Engine
) -> None:
    for command in (("hosters",), ("monitor",), ("show", "1"), ("orders",), ("export",)):
        assert takedown(config, *command).returncode == 0, command  # nothing to sign yet
    assert not (config.parent / "takedown.key").exists()
    now = datetime.now(UTC)
    removed = stored_notice(engine, state="removed", verified_at=now, next_action_at=None)
    sender = Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
    document = compose(removed._mapping, sender, Ed25519PrivateKey.generate(), now)
    with engine.begin() as connection:
        connection.execute(update(TakedownNoticeRow).where(TakedownNoticeRow.id == removed.id)
                           .values(document=signing.dumps(document)))  # fmt: skip
    refused = takedown(config, "export")
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"no takedown key at {config.parent / 'takedown.key'}" in refused.stderr
    keys.generate(config.parent / "takedown.key")
    exported = takedown(config, "export")
    assert exported.returncode == 0, exported.stderr
    assert '"content_removed": true' in exported.stdout


def test_a_notice_is_shown_by_its_urls_and_hashes(config: Path, engine: Engine) -> None:
    ran = takedown(config, "show", "2")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("notice 2  notice  open\n  hoster     Files BV (NL)\n")
    assert "  https://files.example/a/1.jpg\n" in ran.stdout
    assert "  item https://files.example/a/1.jpg: pdq " in ran.stdout
    missing = takedown(config, "show", "99")
    assert (missing.returncode, missing.stderr) == (1, "hashguard: no notice 99\n")


def test_withdrawing_is_recorded_and_refused_twice(config: Path, engine: Engine) -> None:
    ran = takedown(config, "withdraw", "1", "--reason", "the dispute was upheld", "--actor", "ana")
    assert (ran.returncode, ran.stdout) == (0, "notice 1 to Files BV: withdrawn\n")
    shown = takedown(config, "show", "1").stdout
    assert shown.startswith("notice 1  notice  withdrawn\n")
    assert "  withdrawn        ana" in shown
    again = takedown(config, "withdraw", "1", "--reason", "again")
    assert again.returncode == 1
    assert again.stderr == "hashguard: notice 1 is withdrawn: it cannot be withdrawn\n"
    empty = takedown(config, "withdraw", "2", "--reason", "  ")
    assert empty.returncode == 1 and "a withdrawal needs a reason" in empty.stderr


def test_an_order_is_issued_and_listed(config: Path, engine: Engine) -> None:
    ran = takedown(config, "orders", "issue", "--url", "https://files.example/b.jpg",
                   "--basis", "CSA Regulation Art 14", "--reference", "ATKM-2026-7",
                   "--hoster", "Files BV", "--actor", "ATKM")  # fmt: skip
    assert (ran.returncode, ran.stdout) == (0, "order 3 to Files BV: 1 URL(s), queued\n")
    listed = takedown(config, "orders").stdout.splitlines()
    assert listed[1].split("\t")[:4] == ["3", "order", "queued", "Files BV"]
    shown = takedown(config, "show", "3").stdout
    assert "  order      ATKM-2026-7: CSA Regulation Art 14\n" in shown
    unknown = takedown(config, "orders", "issue", "--url", "https://files.example/b.jpg",
                       "--basis", "x", "--reference", "y", "--hoster", "Nobody")  # fmt: skip
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("hashguard: unknown hoster 'Nobody'")
    bare = takedown(config, "orders", "issue", "--basis", "x", "--reference", "y")
    assert bare.returncode == 1 and "--url" in bare.stderr


def test_hosters_show_their_open_and_overdue_notices(config: Path, engine: Engine) -> None:
    lines = takedown(config, "hosters").stdout.splitlines()
    assert lines == [
        "hoster\tcountry\tabuse_email\tabuse_api\tcdn\topen\toverdue",
        "Files BV\tNL\tabuse@files.example\t-\tno\t2\t1",
        "Quiet Hosting\tDE\tabuse@quiet.example\t-\tno\t0\t0",
    ]


def test_the_monitor_as_a_table_and_as_csv(config: Path, engine: Engine) -> None:
    table = takedown(config, "monitor").stdout.splitlines()
    assert table[0].startswith("hoster ") and table[1].startswith("Files BV ")
    csv = takedown(config, "monitor", "--by", "all", "--csv").stdout.splitlines()
    assert csv[0].startswith("group,notices,removed,median_hours")
    assert csv[1].startswith("all,2,0,")
    bad = takedown(config, "monitor", "--since", "yesterday")
    assert bad.returncode == 1 and bad.stderr.startswith("hashguard: --since: expected a date")
    far = takedown(config, "monitor", "--until", "0001-01-01T00:30:00+01:00")
    assert far.returncode == 1 and "--until: " in far.stderr and "out of range" in far.stderr


def test_without_the_hotline_takedown_is_off(tmp_path: Path) -> None:
    ran = hashguard("takedown", "notices", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert ran.returncode == 2
    assert ran.stderr.startswith("hashguard: the hotline is off")


def test_xarf_reports_are_imported_and_bad_ones_named(config: Path, engine: Engine) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "takedown-notices.json"
    ran = takedown(config, "import", str(example), "--source", "Desk Example")
    assert (ran.returncode, ran.stdout) == (
        0, "imported 2 outcome(s) from Desk Example; 0 linked to a case\n")  # fmt: skip
    broken = config.parent / "broken.jsonl"
    broken.write_text('{"xarf_version": "4.2.0"}\nnot json\n')
    refused = takedown(config, "import", str(broken))
    assert refused.returncode == 1 and refused.stderr.startswith("hashguard: line ")
    missing = takedown(config, "import", str(config.parent / "absent.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    out = config.parent / "export.jsonl"
    exported = takedown(config, "export", "--out", str(out))
    assert exported.returncode == 0 and out.read_text() == ""  # nothing composed yet
