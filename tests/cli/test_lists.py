"""``hashguard lists ...`` as a user runs it (in this process: tests/support/invoke.py), on a real
database file."""

import hashlib
import json
import secrets
from pathlib import Path

import pytest

from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.invoke import Ran, hashguard

PDQ = ["0f" * 32, "1e" * 32, "2d" * 32]


def run(database: Path, *args: str, env_url: bool = False) -> Ran:
    """``hashguard lists ARGS`` on ``database``, named by --database-url or, with ``env_url``,
    by HASHGUARD_DATABASE_URL."""
    url = f"sqlite:///{database}"
    if env_url:
        return hashguard("lists", *args, env={"HASHGUARD_DATABASE_URL": url})
    return hashguard("lists", *args, "--database-url", url)


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    database = tmp_path / "lists.db"
    created = run(database, "create", "demo", "--owner", "Test Org", "--category", "test",
                  "--threshold", "pdq=24", "--jurisdiction", "nl")  # fmt: skip
    assert created.returncode == 0, created.stderr
    source = tmp_path / "pdq.txt"
    source.write_text("# three benign hashes\n" + "\n".join(PDQ) + "\n")
    imported = run(database, "import", "demo", str(source), "-f", "text", "-s", "pdq",
                   "--source", "Test Org", "--jurisdiction", "nl")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == (
        "demo: 3 added, 0 updated, 0 removed, 0 unchanged; version 3"
    )
    return database


def test_show_lists_policy_version_and_counts(listed: Path) -> None:
    shown = run(listed, "show", "demo", env_url=True)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "policy        pdq <= 24; query variants dihedral, scale, trim" in lines
    assert "version       3" in lines
    assert "entries       pdq     active     3" in lines
    assert run(listed, "show").stdout.startswith("demo\tTest Org\ttest\tversion 3")


def test_query_variants_are_chosen_per_list(tmp_path: Path) -> None:
    database = tmp_path / "lists.db"
    created = run(database, "create", "plain", "--owner", "Test Org", "--category", "test",
                  "--variants", "none")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert (
        "policy        signal defaults; query variants none"
        in run(database, "show", "plain").stdout.splitlines()
    )
    assert ListStore(open_engine(f"sqlite:///{database}")).get("plain").policy.variants == set()
    updated = run(database, "update", "plain", "--variants", "trim,dihedral", "--threshold",
                  "pdq=20")  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout.strip() == (
        "updated list plain: pdq <= 20; query variants dihedral, trim"
    )
    policy = ListStore(open_engine(f"sqlite:///{database}")).get("plain").policy
    assert policy.variants == {"dihedral", "trim"} and policy.thresholds == {"pdq": 20}
    refused = run(database, "update", "plain", "--variants", "rotations")
    assert refused.returncode == 2 and "expected dihedral, trim, scale" in refused.stderr


def test_delist_then_changes_and_export_say_so(listed: Path, tmp_path: Path) -> None:
    delisted = run(listed, "delist", "demo", "pdq", PDQ[1].upper(), "--reason", "appeal upheld")
    assert delisted.returncode == 0, delisted.stderr
    changes = [
        json.loads(line)
        for line in run(listed, "changes", "demo", "--since", "3").stdout.splitlines()
    ]
    assert changes == [
        {"version": 4, "kind": "delist", "tombstone": True, "entry": changes[0]["entry"],
         "signal": "pdq", "value": PDQ[1], "at": changes[0]["at"],
         "actor": changes[0]["actor"], "reason": "appeal upheld"}
    ]  # fmt: skip
    # No --actor: the log still says who, the login user and host the command ran as.
    assert changes[0]["actor"].endswith(" (cli)") and "@" in changes[0]["actor"]
    beyond = run(listed, "changes", "demo", "--since", "120")
    assert beyond.returncode == 1 and beyond.stdout == ""
    assert beyond.stderr == "hashguard: list demo is at version 4: --since 120 is beyond it\n"
    active = run(listed, "export", "demo", "-f", "text", "-s", "pdq")
    assert active.stdout.split() == [PDQ[0], PDQ[2]]
    everything = run(listed, "export", "demo", "--all", "-o", str(tmp_path / "all.csv"))
    assert everything.returncode == 0 and "wrote 3 entries" in everything.stdout
    rows = (tmp_path / "all.csv").read_text().splitlines()
    assert rows[0].startswith("signal,value,labels") and rows[2].endswith(",delisted,")
    assert ",Test Org,Test Org,NL," in rows[1]


@pytest.mark.parametrize("removal", ["contest", "delist"])
def test_reinstate_makes_an_entry_match_again(listed: Path, removal: str) -> None:
    def match() -> Ran:
        return hashguard("match", "--database-url", f"sqlite:///{listed}", "-l", "demo",
                         f"pdq:{PDQ[1]}")  # fmt: skip

    assert run(listed, removal, "demo", "pdq", PDQ[1], "--reason", "appeal").returncode == 0
    assert match().returncode == 1
    reinstated = run(listed, "reinstate", "demo", "pdq", PDQ[1].upper(), "--reason",
                     "reassessed: it is listed rightly", "--actor", "owner")  # fmt: skip
    assert reinstated.returncode == 0, reinstated.stderr
    assert reinstated.stdout == f"demo: pdq {PDQ[1]} reinstated (version 5)\n"
    found = match()
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(f"pdq:{PDQ[1]}: match, list demo entry ")
    (change,) = [json.loads(line) for line in run(listed, "changes", "demo", "--since", "4")
                 .stdout.splitlines()]  # fmt: skip
    assert {k: change[k] for k in ("version", "kind", "tombstone", "actor", "reason")} == {
        "version": 5, "kind": "reinstate", "tombstone": False, "actor": "owner",
        "reason": "reassessed: it is listed rightly",
    }  # fmt: skip
    again = run(listed, "reinstate", "demo", "pdq", PDQ[1], "--reason", "twice")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr == (
        f"hashguard: list demo: pdq entry {PDQ[1]} is active: only a contested or delisted "
        "entry can be reinstated\n"
    )
    assert run(listed, "delete", "demo", "pdq", PDQ[0], "--reason", "withdrawn").returncode == 0
    deleted = run(listed, "reinstate", "demo", "pdq", PDQ[0], "--reason", "x")
    assert deleted.returncode == 1
    assert f"pdq entry {PDQ[0]} is deleted (withdrawn), not contested or delisted" in deleted.stderr
    assert "Traceback" not in again.stderr + deleted.stderr


def test_errors_are_one_line_and_change_nothing(listed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(PDQ[0] + "\nnot a hash\n")
    failed = run(listed, "import", "demo", str(bad), "-f", "text", "-s", "pdq")
    assert failed.returncode == 1
    assert failed.stderr == f"hashguard: {bad}:2: expected a pdq value, got 'not a hash'\n"
    unknown = run(listed, "delete", "nolist", "pdq", PDQ[0], "--reason", "x")
    assert unknown.returncode == 1 and unknown.stderr == "hashguard: no list named 'nolist'\n"
    taken = run(listed, "create", "demo", "--owner", "X", "--category", "test")
    assert taken.stderr == "hashguard: a list named 'demo' already exists\n"
    bad_url = run(listed, "show", "demo", "--database-url", "nonsense", env_url=True)
    assert bad_url.returncode == 1 and "not a database URL" in bad_url.stderr
    no_signal = run(listed, "import", "demo", str(bad), "-f", "text")
    assert no_signal.returncode == 2 and "--signal" in no_signal.stderr
    assert "version       3" in run(listed, "show", "demo").stdout


def test_ncmec_import_reports_what_it_could_not_take(listed: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.xml"
    page.write_text(
        '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images>'
        '<image><member id="7">ESP</member><id>e1</id><classification>A1</classification>'
        f"<fingerprints><pdq>{PDQ[0]}</pdq><pdna>{'0' * 40}</pdna></fingerprints></image>"
        '<deletedImage><member id="7">ESP</member><id>e0</id></deletedImage>'
        '</images><videos><video><member id="7">ESP</member><id>v1</id><fingerprints>'
        '<tmk-pdqf rel="self" href="/v2/x"/></fingerprints></video></videos></queryResult>'
    )
    imported = run(listed, "import", "demo", str(page), "-f", "ncmec")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        "demo: 0 added, 1 updated, 0 removed, 0 unchanged; version 4",
        "1 removal(s) of values demo never held: ignored",
        "not imported: 1 pdna fingerprints (not supported)",
        "not imported: 1 tmk-pdqf fingerprints (served by URL, not fetched)",
        "not imported: 1 video entries with no md5, sha1 or pdq fingerprint",
    ]
    out = tmp_path / "export.xml"
    exported = run(listed, "export", "demo", "-f", "ncmec", "-o", str(out))
    assert exported.returncode == 0 and exported.stdout == f"wrote 3 entries to {out}\n"
    assert out.read_text().count("<image>") == 3
    broken = tmp_path / "broken.xml"
    broken.write_text("<queryResult>\n<images>\n<image>\n")
    failed = run(listed, "import", "demo", str(broken), "-f", "ncmec")
    assert failed.returncode == 1 and failed.stderr.startswith(f"hashguard: {broken}:4: malformed")


def test_an_import_of_another_kind_of_hash_says_so(listed: Path, tmp_path: Path) -> None:
    """SHA-256 digests have as many hex digits as PDQ hashes: imported as pdq, they are taken
    (a list may hold odd values), but not without a word."""
    digests = tmp_path / "digests.txt"
    digests.write_text("\n".join(hashlib.sha256(b"%d" % n).hexdigest() for n in range(40)))
    wrong = run(listed, "import", "demo", str(digests), "-f", "text", "-s", "pdq")
    assert wrong.returncode == 0, wrong.stderr
    assert wrong.stderr.startswith("hashguard: note: ")
    assert "pdq values do not look like pdq hashes computed from media" in wrong.stderr
    right = tmp_path / "pdq.txt"  # hashes of images: each has 128 of its 256 bits set
    right.write_text("\n".join(PDQ[::-1]) + "\n" + "3c" * 32 + "\n")
    quiet = run(listed, "import", "demo", str(right), "-f", "text", "-s", "pdq")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_remove_refuses_a_list_an_exchange_fills_naming_it(database_url: str) -> None:
    engine = open_engine(database_url)
    exchanges = Exchanges(engine, ListStore(engine), Sealer(secrets.token_bytes(32)))
    exchanges.add("SAMPLE", "sample", enabled=False)
    url = ["--database-url", database_url]
    refused = hashguard("lists", "remove", "SAMPLE", *url)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "hashguard: list SAMPLE is filled by exchange SAMPLE: remove the exchange first\n"
    )
    assert [h.name for h in exchanges.lists.lists()] == ["SAMPLE"]
    exchanges.remove("SAMPLE")
    engine.dispose()
    removed = hashguard("lists", "remove", "SAMPLE", *url)
    assert (removed.returncode, removed.stdout) == (0, "removed list SAMPLE (version 0)\n")
    missing = hashguard("lists", "remove", "SAMPLE", *url)
    assert (missing.returncode, missing.stderr) == (1, "hashguard: no list named 'SAMPLE'\n")


def test_show_counts_the_unstable_entries_and_export_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashguard.lists.model import Category
    from hashguard.lists.records import Submission
    from hashguard.signals import registry

    database = tmp_path / "lists.db"
    engine = open_engine(f"sqlite:///{database}")
    store = ListStore(engine)
    store.create("measured", "Test Org", Category.TEST)
    store.apply("measured", [Submission("pdq", PDQ[0], stability=12),
                             Submission("pdq", PDQ[1], stability=90),
                             Submission("pdq", PDQ[2])])  # fmt: skip
    engine.dispose()
    line = "unstable      1 entries (not matched: their hash moves under a 1 % resize)"
    with monkeypatch.context() as patch:
        patch.setattr(registry.get("pdq"), "min_stability", None)
        assert line not in run(database, "show", "measured").stdout  # no floor: all match
    shown = run(database, "show", "measured")  # the default floor, 50
    assert shown.returncode == 0, shown.stderr
    assert line in shown.stdout.splitlines()
    listed = run(database, "export", "measured", "--unstable", "-f", "text", "-s", "pdq")
    assert listed.stdout.split() == [PDQ[0]]
    csv = run(database, "export", "measured", "--unstable").stdout.splitlines()
    assert len(csv) == 2 and csv[1].startswith(f"pdq,{PDQ[0]},") and csv[1].endswith(",12")
    # Without --unstable: csv keeps them with their stability; a format that cannot carry it
    # leaves them out (they would match where imported) and says so.
    everything = run(database, "export", "measured").stdout.splitlines()
    assert [row.split(",")[1] for row in everything[1:]] == sorted(PDQ[:3])
    text = run(database, "export", "measured", "-f", "text", "-s", "pdq")
    assert sorted(text.stdout.split()) == sorted(PDQ[1:3])
    assert text.stderr == (
        "hashguard: note: 1 unstable entries left out: text cannot carry their stability (not "
        "matched here, they would match where imported); csv does\n"
    )
