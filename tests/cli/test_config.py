"""``hashguard config check``: every setting with its value and where it came from, then what is
wrong, each with what to do; the database is really connected to and key files really read.
Exit status 0 without errors (warnings and notes alone), 1 with errors, 2 for settings that
cannot be read. And ``hashguard serve --config`` serving with a setting from the file."""

import re
from pathlib import Path

import pytest

from hashguard.store.database import open_engine

from support.invoke import Ran, hashguard
from support.server import free_port, running

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of its own to run in, and no HASHGUARD_* settings from the test's world."""
    monkeypatch.chdir(tmp_path)
    for name in ("HASHGUARD_DATABASE_URL", "HASHGUARD_SECRET_FILE", "HASHGUARD_CONFIG",
                 "HASHGUARD_NCMEC_PASSWORD", "HASHGUARD_FETCH_HOSTS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def check(*options: str, env: dict[str, str] | None = None) -> Ran:
    return hashguard("config", "check", *options, env=env)


def row(ran: Ran, name: str) -> list[str]:
    """The table's row of the setting ``name``: value, then where it came from."""
    [line] = [line for line in ran.stdout.splitlines() if line.startswith(name + " ")]
    return re.split(r"\s{2,}", line)[1:]


def problems(ran: Ran) -> list[str]:
    return ran.stdout.partition("problems:\n")[2].strip().splitlines()


def test_the_example_file_is_accepted_and_shown_with_where_each_value_came_from() -> None:
    example = ROOT / "examples" / "hashguard.toml"
    ran = check("--config", str(example))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert row(ran, "public_url") == ["https://hashguard.example.org", f"file ({example}, line 13)"]
    assert row(ran, "release_key") == ["-", "default"]


def test_flags_beat_the_environment_which_beats_the_file(scratch: Path) -> None:
    (scratch / "hg.toml").write_text("[limits]\nmax_batch = 5\nmax_upload_mb = 8\n\n"
                                     "[server]\nport = 9000\n")  # fmt: skip
    ran = check("--config", "hg.toml", "--max-batch", "9",
                env={"HASHGUARD_MAX_BATCH": "7", "HASHGUARD_MAX_UPLOAD_MB": "16"})  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert row(ran, "max_batch") == ["9", "flag (--max-batch)"]
    assert row(ran, "max_upload_mb") == ["16", "env (HASHGUARD_MAX_UPLOAD_MB)"]
    assert row(ran, "port") == ["9000", "file (hg.toml, line 6)"]
    assert row(ran, "public_url") == ["http://127.0.0.1:9000", "default (from host and port)"]


@pytest.mark.parametrize(
    ("options", "env", "said"),
    [
        ((), {"HASHGUARD_MAX_BATCH": "abc"},
         "hashguard: max_batch: expected an integer, got 'abc' (from HASHGUARD_MAX_BATCH)\n"),
        (("--port", "0"), {}, "hashguard: port: must be at least 1, got 0 (from --port)\n"),
        (("--config", "absent.toml"), {},
         "hashguard: absent.toml: cannot read: No such file or directory\n"),
        ((), {"HASHGUARD_FETCH_TIMEOUT": "nan"},
         "hashguard: fetch_timeout: expected a number, got 'nan' (from HASHGUARD_FETCH_TIMEOUT)\n"),
        (("--max-upload-mb", "inf"), {},
         "hashguard: max_upload_mb: expected an integer, got 'inf' (from --max-upload-mb)\n"),
        (("--public-url", "http://[::1"), {},
         "hashguard: public_url: expected an http(s) URL, got 'http://[::1' (from --public-url)\n"),
        (("--eu-centre-url", "mailto:eu@example.org"), {},
         "hashguard: eu_centre_url: expected an http(s) URL, got 'mailto:eu@example.org' "
         "(from --eu-centre-url)\n"),
        ((), {"HASHGUARD_DATABASE_URL": "postgresql://u:pa55@127.0.0.1:notaport/db"},
         "hashguard: database_url: expected a database URL (sqlite:///file.db, "
         "postgresql://user@host:5432/name), got 'postgresql://u:***@127.0.0.1:notaport/db' "
         "(from HASHGUARD_DATABASE_URL)\n"),
    ],
)  # fmt: skip
def test_settings_that_cannot_be_read_end_with_status_2_and_one_line(
    options: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    ran = check(*options, env=env)
    assert (ran.returncode, ran.stdout, ran.stderr) == (2, "", said)


def test_a_bad_file_names_its_line(scratch: Path) -> None:
    (scratch / "hg.toml").write_text("[server]\nport = 8000\nhots = 'x'\n")
    ran = check("--config", "hg.toml")
    assert ran.returncode == 2
    assert ran.stderr == (
        "hashguard: hg.toml, line 3: unknown setting 'hots'; did you mean "
        "host? (the settings: docs/configuration.md, hashguard serve --help)\n"
    )
    (scratch / "hg.toml").write_text("[server\n")
    assert "hg.toml: not valid TOML: " in (ran := check("--config", "hg.toml")).stderr
    assert "(at line 1, column 8)" in ran.stderr and ran.returncode == 2


def test_the_same_settings_stop_serve_before_it_starts(scratch: Path) -> None:
    (scratch / "hg.toml").write_text("max_batch = 'many'\n")
    ran = hashguard("serve", "--config", "hg.toml")
    assert (ran.returncode, ran.stderr) == (2, "hashguard: max_batch: expected an integer, got "
                                               "'many' (from hg.toml, line 1)\n")  # fmt: skip


def test_a_real_sqlite_database_is_opened_and_a_file_that_is_not_one_is_an_error(
    scratch: Path,
) -> None:
    open_engine(f"sqlite:///{scratch / 'hg.db'}").dispose()
    ran = check("--database-url", f"sqlite:///{scratch / 'hg.db'}")
    assert ran.returncode == 0 and not any("database_url" in p for p in problems(ran))
    (scratch / "notes.db").write_text("not a database\n" * 100)
    ran = check("--database-url", "sqlite:///notes.db")
    assert ran.returncode == 1
    assert f"error:   database_url: {Path('notes.db')}: cannot be used as a database" in ran.stdout
    ran = check("--database-url", "sqlite:///missing/hg.db")
    assert ran.returncode == 1
    assert "database_url: missing/hg.db: its directory missing does not exist" in ran.stdout


def test_an_unreachable_database_is_an_error_and_its_password_is_never_shown() -> None:
    url = f"postgresql://hashguard:pa55word@127.0.0.1:{free_port()}/hashguard"
    ran = check(env={"HASHGUARD_DATABASE_URL": url})
    assert ran.returncode == 1
    shown = url.replace("pa55word", "***")
    assert row(ran, "database_url") == [shown, "env (HASHGUARD_DATABASE_URL)"]
    [said] = [p for p in problems(ran) if "database_url" in p]
    assert said.startswith(f"error:   database_url: cannot connect to {shown}: ")
    assert "pa55word" not in ran.stdout + ran.stderr
    as_parameter = f"postgresql://hashguard@127.0.0.1:{free_port()}/db?password=pa55word"
    ran = check("--eu-centre-url", "https://eu:pa55word@eu.example/reports",
                env={"HASHGUARD_DATABASE_URL": as_parameter})  # fmt: skip
    assert row(ran, "database_url")[0].endswith("/db?password=***")
    assert row(ran, "eu_centre_url")[0] == "https://eu:***@eu.example/reports"
    assert "pa55word" not in ran.stdout + ran.stderr


def test_named_key_files_that_are_missing_are_errors(scratch: Path) -> None:
    ran = check("--release-key", "owner.key", "--release-log", "tlog", "--release-dir", "out",
                "--report-key", "report.key", "--oprf-key", "oprf.key",
                "--provider-name", "P", "--provider-email", "p@example.org",
                "--provider-country", "nl")  # fmt: skip
    assert ran.returncode == 1
    said = "\n".join(problems(ran))
    for setting, path, make in [("release_key", "owner.key", "hashguard keys generate"),
                                ("report_key", "report.key", "hashguard keys generate"),
                                ("oprf_key", "oprf.key", "hashguard device keygen")]:  # fmt: skip
        assert f"error:   {setting}: {path}: cannot read: No such file or directory" in said
        assert f"make one with {make} --out {path}" in said
    assert (
        "note:    release_log: tlog.key, the log's signing key, is made at the first release"
        in said
    )
    assert row(ran, "provider_country") == ["NL", "flag (--provider-country)"]


def test_existing_keys_are_read_and_pass(scratch: Path) -> None:
    assert hashguard("keys", "generate", "--out", "owner.key").returncode == 0
    assert hashguard("device", "keygen", "--out", "oprf.key").returncode == 0
    ran = check("--release-key", "owner.key", "--release-log", "tlog", "--release-dir", "out",
                "--oprf-key", "owner.key")  # fmt: skip
    [said] = [p for p in problems(ran) if p.startswith("error")]  # the wrong kind of key
    assert said.startswith("error:   oprf_key: owner.key: not a ristretto255-SHA512 OPRF key")
    ran = check("--release-key", "owner.key", "--release-log", "tlog", "--release-dir", "out",
                "--oprf-key", "oprf.key")  # fmt: skip
    assert ran.returncode == 0, ran.stdout


def test_the_secret_file_is_named_never_shown(scratch: Path) -> None:
    ran = check("--secret-file", "secret.key")
    assert ran.returncode == 0
    assert (
        "note:    secret_file: secret.key does not exist yet: it is created at start" in ran.stdout
    )
    secret = "ab" * 32
    (scratch / "secret.key").write_text(secret + "\n")
    ran = check("--secret-file", "secret.key")
    assert ran.returncode == 0 and secret not in ran.stdout and "secret_file:" not in ran.stdout
    (scratch / "secret.key").write_text("not hex, and a secret nonetheless\n")
    ran = check("--secret-file", "secret.key")
    assert (
        ran.returncode == 1
        and "error:   secret_file: secret.key: not a hashguard secret" in ran.stdout
    )
    assert "a secret nonetheless" not in ran.stdout


def test_the_ncmec_password_is_reported_as_set_never_shown() -> None:
    ran = check("--ncmec-url", "https://report.example.org/ispws", "--ncmec-user", "u",
                env={"HASHGUARD_NCMEC_PASSWORD": "hunter2-secret"})  # fmt: skip
    assert row(ran, "ncmec_password") == ["(set, not shown)", "env (HASHGUARD_NCMEC_PASSWORD)"]
    assert "hunter2-secret" not in ran.stdout + ran.stderr


def test_links_fetching_and_reports_are_checked() -> None:
    ran = check("--host", "0.0.0.0", "--public-url", "http://127.0.0.1:8000",
                "--eu-centre-url", "https://eu.example.org/reports")  # fmt: skip
    said = "\n".join(problems(ran))
    assert ran.returncode == 1
    assert "warning: public_url: complaint links in statements of reasons will point to " in said
    assert "warning: host: hashguard speaks plain HTTP on 0.0.0.0" in said
    assert "note:    fetch_hosts: no hosts are allowed: media by URL is off" in said
    assert ("error:   report_key: reports are signed, and eu_centre_url is set without "
            "report_key") in said  # fmt: skip
    assert "error:   provider_name: reports need the provider's name, e-mail and country" in said
    fetching = check("--fetch-host", "media.example.org", "--public-url", "https://h.example.org")
    assert fetching.returncode == 0 and "fetch_hosts:" not in fetching.stdout


def test_serve_takes_a_setting_from_the_file(scratch: Path) -> None:
    """A real server started with --config answers by the file's max_batch."""
    (scratch / "hashguard.toml").write_text("[limits]\nmax_batch = 2\n")
    url = f"sqlite:///{scratch / 'hg.db'}"
    with running(url, "--config", str(scratch / "hashguard.toml")) as server:
        hashes = [{"signal": "md5", "value": f"{n:032x}"} for n in range(3)]
        answer = server.post("/v1/match/hashes", "matcher", json={"hashes": hashes})
        assert answer.status_code == 413 and "at most 2 per request" in answer.text
        assert server.post("/v1/match/hashes", "matcher",
                           json={"hashes": hashes[:2]}).status_code == 200  # fmt: skip


def test_client_addresses_believed_from_anyone_are_a_warning() -> None:
    said = problems(check("--forwarded-allow-ips", "10.0.0.5, *"))
    assert (
        "warning: forwarded_allow_ips: * believes X-Forwarded-For from anyone: any client can "
        "claim any address, past the per-address limits; name the balancer's address" in said
    )
    assert not [p for p in problems(check("--forwarded-allow-ips", "10.0.0.5")) if "forwarded" in p]
