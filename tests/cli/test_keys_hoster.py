"""A hoster's API key names its hoster: made with ``--hoster``, listed with it, refused without
it (and refused for a key of another role)."""

from pathlib import Path

from support.invoke import hashguard


def test_a_hoster_key_names_its_hoster(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    made = hashguard("keys", "create", "--role", "hoster", "--hoster", "Example Hosting B.V.",
                     "--database-url", url)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("hg_")
    assert "(hoster, hoster Example Hosting B.V., all lists)" in made.stderr
    for name in ("known-a", "known-b"):
        assert hashguard("lists", "create", name, "--owner", "Org", "--category", "test",
                         "--database-url", url).returncode == 0  # fmt: skip
    limited = hashguard("keys", "create", "--role", "hoster", "--hoster", "Example Hosting B.V.",
                        "--list", "known-a", "--list", "known-b",
                        "--database-url", url)  # fmt: skip
    assert limited.returncode == 0, limited.stderr
    listed = hashguard("keys", "list", "--database-url", url).stdout.splitlines()
    assert listed[1].split("\t")[1:3] == ["hoster", "hoster:Example Hosting B.V.;*"]
    assert listed[2].split("\t")[1:3] == ["hoster", "hoster:Example Hosting B.V.;known-a,known-b"]


def test_a_hoster_key_names_a_hoster_of_the_registry_when_there_is_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    registry = tmp_path / "hosters.toml"
    registry.write_text(
        '[[hoster]]\nname = "Files BV"\ncountry = "NL"\n'
        'networks = ["192.0.2.0/24"]\nabuse_email = "abuse@files.example"\n'
    )
    typo = hashguard("keys", "create", "--role", "hoster", "--hoster", "Files B.V.",
                     "--hosters", str(registry), "--database-url", url)  # fmt: skip
    assert typo.returncode == 1
    assert typo.stderr.strip() == ("hashguard: hoster 'Files B.V.' is not in the registry of "
                                   "hosters; did you mean 'Files BV'?")  # fmt: skip
    assert hashguard("keys", "list", "--database-url", url).stdout.count("\n") == 1
    made = hashguard(
        "keys",
        "create",
        "--role",
        "hoster",
        "--hoster",
        "Files BV",
        "--database-url",
        url,
        env={"HASHGUARD_HOTLINE_HOSTERS": str(registry)},
    )
    assert made.returncode == 0, made.stderr


def test_a_hoster_key_without_its_hoster_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    refused = hashguard("keys", "create", "--role", "hoster", "--database-url", url)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "hashguard: a hoster key names its hoster (--hoster NAME, as the hotline's registry of "
        "hosters names it)"
    ]
    other = hashguard("keys", "create", "--role", "matcher", "--hoster", "X", "--database-url", url)
    assert other.returncode != 0 and "only a hoster key names a hoster" in other.stderr
    assert hashguard("keys", "list", "--database-url", url).stdout.count("\n") == 1
