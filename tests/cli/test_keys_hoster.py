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
    assert "(hoster, hoster Example Hosting B.V.)" in made.stderr
    listed = hashguard("keys", "list", "--database-url", url).stdout.splitlines()
    assert listed[1].split("\t")[1:3] == ["hoster", "hoster:Example Hosting B.V."]


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
