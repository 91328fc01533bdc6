"""The escalation ladder file: the sample loads as documented, and every mistake is named with
its file and line."""

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest

from hashguard.takedown.ladder import LadderError, load
from hashguard.takedown.model import EscalationStep

from support.paths import REPOSITORY


def test_the_sample_ladder_loads_in_order() -> None:
    steps = load(REPOSITORY / "examples" / "takedown-escalation.toml")
    assert steps == (
        EscalationStep("upstream", timedelta(hours=48), "upstream"),
        EscalationStep("registrar", timedelta(hours=96), "abuse@registrar.example"),
        EscalationStep("regulator", timedelta(hours=168), "https://regulator.example/api/notices"),
        EscalationStep("police", timedelta(hours=336), "csam-reports@police.example"),
    )


def test_fractions_equal_hours_and_http_to_own_networks(tmp_path: Path) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text(
        '[[step]]\nname = "now"\nafter_hours = 0.5\nto = "http://127.0.0.5:8080/x"\n'
        '[[step]]\nname = "also-now"\nafter_hours = 0.5\nto = "http://10.1.2.3/notices"\n'
    )
    with pytest.raises(LadderError, match=r"line 8: 'http://10\.1\.2\.3/notices' is plain http"):
        load(path)
    steps = load(path, [ipaddress.ip_network("10.0.0.0/8")])
    assert [(s.name, s.after) for s in steps] == [("now", timedelta(minutes=30)),
                                                  ("also-now", timedelta(minutes=30))]  # fmt: skip
    path.write_text("")
    assert load(path) == ()


STEP = 'name = "first"\nafter_hours = 24\nto = "upstream"\n'


@pytest.mark.parametrize(
    ("table", "line", "error"),
    [
        ('name = "x"\nafter_hours = 1\nto = "upstream"\nwhen = 2', 4, "unknown key 'when'"),
        ('name = "x"\nafter_hour = 1\nto = "upstream"', 2,
         "unknown key 'after_hour'; did you mean after_hours?"),
        ('name = "x"\nto = "upstream"', 0, "a step needs 'after_hours'"),
        ('name = "Police!"\nafter_hours = 30\nto = "upstream"', 1, "expected a name of lower-case"),
        ('name = "x"\nafter_hours = "2d"\nto = "upstream"', 2, "expected hours after the deadline"),
        ('name = "x"\nafter_hours = -1\nto = "upstream"', 2, "expected hours after the deadline"),
        ('name = "x"\nafter_hours = true\nto = "upstream"', 2, "expected hours after the deadline"),
        ('name = "x"\nafter_hours = 12\nto = "upstream"', 2,
         "steps are listed in the order they are taken: 'x' (12 h) comes before 'first' (24 h)"),
        ('name = "first"\nafter_hours = 30\nto = "upstream"', 1, "'first' is named twice"),
        ('name = "x"\nafter_hours = 30\nto = "the police"', 3, "expected an e-mail address, an"),
        ('name = "x"\nafter_hours = 30\nto = "ftp://x.example/"', 3, "expected an e-mail address"),
        ('name = "x"\nafter_hours = 30\nto = "https://u:p@x.example/"', 3,
         "expected an e-mail address"),
        ('name = "x"\nafter_hours = 30\nto = "http://x.example/"', 3, "is plain http: use https"),
        ('name = "x"\nafter_hours = 30\nto = ["a@b.example"]', 3, "expected an e-mail address"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_with_file_and_line(
    tmp_path: Path, table: str, line: int, error: str
) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text(f"[[step]]\n{STEP}\n[[step]]\n{table}\n")
    with pytest.raises(LadderError) as refused:
        load(path)
    assert str(refused.value).startswith(f"{path}, line {line + 6}: ")
    assert error in str(refused.value)


def test_files_that_are_no_ladder_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ladder.toml"
    path.write_text("[[step]\n")
    with pytest.raises(LadderError, match=f"^{path}: not valid TOML: .*line 1"):
        load(path)
    path.write_text('[[steps]]\nname = "x"\n')
    with pytest.raises(LadderError, match=f"^{path}, line 1: unknown key 'steps'"):
        load(path)
    path.write_text('step = "upstream"\n')
    with pytest.raises(LadderError, match="'step' must be"):
        load(path)
    with pytest.raises(LadderError, match="cannot read"):
        load(tmp_path / "absent.toml")
