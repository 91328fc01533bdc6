"""The service's settings read from a real TOML file, the environment and flags: a flag wins over
the environment, which wins over the file, which wins over the default; each value says where it
came from; bad input is refused with a message naming the setting, the file and line or the
variable or flag, and what was expected."""

from pathlib import Path

import pytest

from hashguard.api.configuration import ConfigError, Source, load
from hashguard.api.settings import (
    DATABASE_URL,
    DAYS,
    FLAG,
    HOST_PORT,
    HOSTS,
    INTEGER,
    NAMES,
    NETWORKS,
    NUMBER,
    PATH,
    PATHS,
    SERVER,
    SETTINGS,
    TEXT,
    URL,
    ServiceSettings,
)
from hashguard.media.limits import MIB

FILE = """\
# a deployment
max_batch = 5

[server]
host = "0.0.0.0"
port = 9000
access_log = true

[fetch]
fetch_hosts = ["media.example.org"]
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hashguard.toml"
    path.write_text(text)
    return path


def test_a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default(
    tmp_path: Path,
) -> None:
    path = written(tmp_path, FILE)
    environ = {"HASHGUARD_MAX_BATCH": "7", "HASHGUARD_PORT": "9100",
               "HASHGUARD_FETCH_HOSTS": "a.example.org, b.example.org"}  # fmt: skip
    loaded = load(path, {"max_batch": "9", "fetch_hosts": None}, environ)
    s = loaded.settings
    assert (s.max_batch, s.port, s.host, s.access_log, s.oprf_limit) == (9, 9100, "0.0.0.0", True,
                                                                         2000)  # fmt: skip
    assert s.fetch_hosts == ("a.example.org", "b.example.org")
    assert s.public_url == "http://0.0.0.0:9100"  # made from the host and port in effect
    origins = {name: str(origin) for name, origin in loaded.origins.items()}
    assert origins["max_batch"] == "flag (--max-batch)"
    assert origins["port"] == "env (HASHGUARD_PORT)"
    assert origins["host"] == f"file ({path}, line 5)"
    assert origins["access_log"] == f"file ({path}, line 7)"
    assert origins["oprf_limit"] == "default"
    assert origins["public_url"] == "default (from host and port)"


def test_repeated_flags_replace_the_lists_of_the_environment_and_file(tmp_path: Path) -> None:
    loaded = load(written(tmp_path, FILE), {"fetch_hosts": ["x.example.org", "y.example.org"],
                  "fetch_networks": ["10.1.2.0/24"]}, {})  # fmt: skip
    assert loaded.settings.fetch_hosts == ("x.example.org", "y.example.org")
    assert [str(n) for n in loaded.settings.fetch_networks] == ["10.1.2.0/24"]
    assert loaded.origins["fetch_hosts"].source is Source.FLAG


def test_no_file_no_environment_no_flags_gives_the_defaults() -> None:
    loaded = load(None, {}, {})
    assert loaded.settings == ServiceSettings()
    assert {origin.source for origin in loaded.origins.values()} == {Source.DEFAULT}


def test_an_empty_variable_counts_as_unset() -> None:
    assert load(None, {}, {"HASHGUARD_MAX_BATCH": ""}).settings.max_batch == 1000


def test_sizes_are_set_in_mib() -> None:
    s = load(None, {"max_upload_mb": "2"}, {"HASHGUARD_MAX_IMPORT_MB": "3"}).settings
    assert (s.max_upload_bytes, s.max_import_bytes) == (2 * MIB, 3 * MIB)
    assert s.media_limits.max_image_bytes == s.media_limits.max_video_bytes == 2 * MIB


# A value of each kind as the file writes it and as a variable or flag does.
SAMPLES = {
    INTEGER: ("3", "3"), NUMBER: ("2.5", "2.5"), TEXT: ('"x.example.org"', "x.example.org"),
    PATH: ('"keys/k.key"', "keys/k.key"), FLAG: ("true", "yes"),
    HOSTS: ('["h.example.org"]', "h.example.org"), NETWORKS: ('["10.0.0.0/8"]', "10.0.0.0/8"),
    NAMES: ('["a-name"]', "a-name"), PATHS: ('["a/b.db"]', "a/b.db"),
    URL: ('"https://x.example.org/r"', "https://x.example.org/r"),
    DATABASE_URL: ('"postgresql://h@db.example.org/h"', "postgresql://h@db.example.org/h"),
    DAYS: ("[1, 7]", "1,7"), HOST_PORT: ('"mail.example.org:25"', "mail.example.org:25"),
    SERVER: ('"granian"', "granian"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_setting_is_read_from_the_file_its_section_and_its_variable(
    tmp_path: Path, name: str
) -> None:
    """Declared once, each setting has a key (at the top or in its section) and a variable."""
    spec = SETTINGS[name][1]
    in_file, as_text = SAMPLES[spec.kind]
    top = load(written(tmp_path, f"{name} = {in_file}\n"), {}, {})
    sectioned = load(written(tmp_path, f"[{spec.section}]\n{name} = {in_file}\n"), {}, {})
    from_env = load(None, {}, {spec.env: as_text})
    assert top.values[name] == sectioned.values[name] == from_env.values[name]
    assert top.origins[name].source is Source.FILE and from_env.origins[name].source is Source.ENV


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("max_batch = 5\nmax_bacth = 6\n", ", line 2: unknown setting 'max_bacth'; did you mean "
                                           "max_batch or max_lag?"),
        ("port = 1\n\n[server]\nport = 2\n", ", line 4: port is set twice (also at "),
        ("[limits]\nhost = 'h'\n", ", line 2: host belongs in [server] (or at the top of the "
                                   "file), not in [limits]"),
        ("[sever]\nport = 1\n", ", line 1: unknown section [sever]; did you mean server?"),
        ("port = 'abc'\n", "port: expected an integer, got 'abc' (from "),
        ("max_batch = 0\n", "max_batch: must be at least 1, got 0 (from "),
        ("fetch_networks = ['nowhere']\n", "fetch_networks: expected a list of networks"),
        ("access_log = 'yes'\n", "access_log: expected true or false, got 'yes'"),
        ("port = \n", ": not valid TOML: Invalid value (at line 1, column 8)"),
        ("ncmec_password = 'x'\n", "the NCMEC password is not kept in files: set it in the "
                                   "environment variable HASHGUARD_NCMEC_PASSWORD"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_naming_the_file_the_line_and_what_was_expected(
    tmp_path: Path, text: str, said: str
) -> None:
    path = written(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load(path, {}, {})
    assert said in str(refused.value) and str(path) in str(refused.value)


def test_a_file_that_is_not_there_or_not_text_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read: No such file"):
        load(tmp_path / "missing.toml", {}, {})
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00port")
    with pytest.raises(ConfigError, match=r"binary\.toml: not a TOML file \(not UTF-8 text\)"):
        load(tmp_path / "binary.toml", {}, {})


def test_a_bad_variable_or_flag_is_named() -> None:
    with pytest.raises(ConfigError) as refused:
        load(None, {}, {"HASHGUARD_MAX_BATCH": "abc"})
    assert (
        str(refused.value) == "max_batch: expected an integer, got 'abc' (from HASHGUARD_MAX_BATCH)"
    )
    with pytest.raises(ConfigError) as refused:
        load(None, {"port": "70000"}, {})
    assert str(refused.value) == "port: must be at most 65535, got 70000 (from --port)"
    with pytest.raises(
        ConfigError, match=r"fetch_networks: expected a list of networks .*--fetch-network"
    ):
        load(None, {"fetch_networks": ["10.0.0.0/8", "intranet"]}, {})


def test_the_ncmec_password_is_never_a_setting() -> None:
    loaded = load(None, {}, {"HASHGUARD_NCMEC_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(loaded) + repr(loaded.settings.recorded())


def test_the_configuration_page_names_every_setting_with_its_flag_and_variable() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert set(rows) == set(SETTINGS)
    for name, (_, spec) in SETTINGS.items():
        assert f"| {spec.section} | `{spec.option}`" in rows[name] and spec.env in rows[name]
