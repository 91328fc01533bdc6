"""Notice and takedown's settings as an operator writes them: read from the file, the
environment and flags; and ``config check`` saying what is wrong (an unreadable key, a ladder
that cannot be used, a mail server that does not answer) before the service starts."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashguard.api.configuration import ConfigError, load
from hashguard.api.diagnosis import Problem, Severity, diagnose

REPOSITORY = Path(__file__).resolve().parents[2]


def test_the_takedown_section_is_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "hashguard.toml"
    file.write_text('[takedown]\ntakedown_recheck_days = [2, 14]\ntakedown_smtp = "mail.example:25"'
                    '\ntakedown_notice_hours = 12\n')  # fmt: skip
    loaded = load(file, {}, {"HASHGUARD_TAKEDOWN_ORDER_HOURS": "1"}).settings
    assert loaded.takedown_recheck_days == (2, 14)
    assert loaded.takedown_smtp == "mail.example:25"
    assert (loaded.takedown_notice_hours, loaded.takedown_order_hours) == (12, 1)
    flagged = load(None, {"takedown_recheck_days": "1, 7, 30"}, {}).settings
    assert flagged.takedown_recheck_days == (1, 7, 30)


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("takedown_smtp", "mail.example", "host:port"),
        ("takedown_smtp", "mail.example:99999", "host:port"),
        ("takedown_recheck_days", "7,1", "a list of days"),
        ("takedown_recheck_days", "0", "a list of days"),
        ("takedown_renotice_hours", "0", "at least 1"),
        ("takedown_notice_hours", "1000000000000", "at most 8760"),
        ("takedown_order_hours", "8761", "at most 8760"),
        ("takedown_renotice_hours", "99999999999999", "at most 8760"),
        ("takedown_recheck_days", "1,7,3651", "each 1 to 3650"),
    ],
)
def test_a_bad_takedown_setting_is_named(name: str, given: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}: .*{expected}"):
        load(None, {name: given}, {})


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something answers on (a mail server, as far as a connection can tell)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def takedown_problems(tmp_path: Path, **flags: str) -> list[Problem]:
    given = {"hotline_country": "NL", "database_url": f"sqlite:///{tmp_path / 'hg.db'}", **flags}
    found = diagnose(load(None, given, {}), {}, timeout=1)
    return [p for p in found if p.setting.startswith("takedown_")]


def test_config_check_names_what_is_wrong_with_takedown(tmp_path: Path) -> None:
    key = tmp_path / "takedown.key"
    key.write_text("not a key")
    ladder = tmp_path / "ladder.toml"
    ladder.write_text('[[step]]\nname = "x"\nafter_hours = 1\nto = "nowhere"\n')
    port = _closed_port()
    found = takedown_problems(
        tmp_path, takedown_key=str(key), takedown_escalation=str(ladder),
        takedown_smtp=f"127.0.0.1:{port}", takedown_profile="strict",
    )  # fmt: skip
    said = {(p.severity, p.setting): p.message for p in found}
    assert said[Severity.ERROR, "takedown_key"].startswith(f"{key}: not a whole PEM private key")
    assert "unknown legal profile 'strict'" in said[Severity.ERROR, "takedown_profile"]
    assert f"{ladder}, line 4" in said[Severity.ERROR, "takedown_escalation"]
    assert said[Severity.WARNING, "takedown_smtp"].startswith(f"127.0.0.1:{port}: no answer")


def test_config_check_passes_a_good_takedown_setup(tmp_path: Path, listener: int) -> None:
    found = takedown_problems(
        tmp_path, takedown_key=str(tmp_path / "new.key"), takedown_smtp=f"127.0.0.1:{listener}",
        takedown_escalation=str(REPOSITORY / "examples" / "takedown-escalation.toml"),
    )  # fmt: skip
    said = {(p.severity, p.setting): p.message for p in found}
    assert set(said) == {(Severity.NOTE, "takedown_key"), (Severity.OK, "takedown_escalation"),
                         (Severity.OK, "takedown_smtp")}  # fmt: skip
    assert "made at start" in said[Severity.NOTE, "takedown_key"]
    assert (
        "upstream after 48 h, registrar after 96 h, regulator after 168 h"
        in said[Severity.OK, "takedown_escalation"]
    )


def test_takedown_files_without_the_hotline_are_a_warning(tmp_path: Path) -> None:
    found = diagnose(load(None, {"takedown_smtp": "mail.example:25"}, {}), {}, timeout=1)
    assert any(p.severity is Severity.WARNING and p.setting == "takedown_smtp"
               and "notice and takedown is off" in p.message for p in found)  # fmt: skip
