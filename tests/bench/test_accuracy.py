"""The accuracy bench (bench/accuracy.py) in its quick mode: its tables and what they say."""

import sys

import pytest

from support.paths import BENCH

sys.path.insert(0, str(BENCH))
from accuracy import (
    PAIR_HEADER,
    QUICK,
    RECALL_HEADER,
    TEXT_HEADER,
    VIDEO_HEADER,
    Results,
    options_from,
    recall_rows,
    render,
    run,
    upper_bound,
    wilson,
    write_section,
)


@pytest.fixture(scope="module")
def quick() -> tuple[Results, object]:
    options, out = options_from(["--quick", "--jobs", "0"])
    assert out is None
    return run(options), options


def rows_of(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``."""
    lines = markdown.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [
        [cell.strip() for cell in line.strip("|").split("|")] for line in lines[start + 2 : end]
    ]


def test_recall_has_a_row_per_transformation_with_both_columns(quick) -> None:
    results, _ = quick
    assert len(results.originals) == 3 and {o.set for o in results.originals} == {"scenes"}
    rows = recall_rows(results, results.copies, QUICK, None)
    assert [row[0] for row in rows] == list(QUICK)
    for row in rows:
        assert len(row) == len(RECALL_HEADER)
        assert row[1] == "3"
    by_name = {row[0]: row for row in rows}
    # A JPEG re-encoding matches both ways; a rotation only with hashguard's dihedral variants.
    assert by_name["JPEG q70"][2].startswith("100.0 %")
    assert by_name["JPEG q70"][3].startswith("100.0 %")
    assert by_name["rotate 90"][2].startswith("0.0 %")
    assert by_name["rotate 90"][3].startswith("100.0 %")
    # Each copy's best variant is never further than its own hash.
    assert all(c.best <= c.plain for c in results.copies)


def test_rendered_tables_have_their_shape(quick) -> None:
    results, options = quick
    text = render(results, options)
    recall = rows_of(text, "### Recall: all originals\n")
    assert len(recall) == len(QUICK) + 4  # a group heading row per group
    derived = rows_of(text, "### Crops, with the derived hashes listed\n")
    assert [row[0] for row in derived] == ["crop 10 % centred"]
    assert derived[0][3].startswith("100.0 %")  # its derived hash is listed: found
    assert all(len(row) == len(RECALL_HEADER) for row in recall)
    pairs = rows_of(text, "### False positives among different originals\n")
    assert [row[0] for row in pairs] == ["scenes"]
    assert pairs[0][2] == "3"  # 3 images: 3 pairs
    hard = rows_of(text, "### Hard negatives")
    assert [row[0] for row in hard] == ["document", "ui-screenshot", "logo", "gradient", "pattern"]
    assert all(len(row) == len(PAIR_HEADER) and row[2] == "6" for row in hard)
    flat = rows_of(text, "### Documents and app screenshots")
    assert [row[0] for row in flat] == ["JPEG q70", "rotate 90"]  # those of QUICK
    assert all(len(row) == len(TEXT_HEADER) and row[1] == "4" for row in flat)
    # A re-encoded document or screenshot is found within the stricter threshold.
    assert flat[0][5].startswith("100.0 %") and flat[0][7] == "0"
    videos = rows_of(text, "### Videos")
    assert len(videos) == 1 and len(videos[0]) == len(VIDEO_HEADER)
    assert videos[0][2].startswith("100.0 %")  # a re-encoded clip is found


def test_intervals_and_bounds() -> None:
    low, high = wilson(92, 100)
    assert 0.84 < low < 0.92 < high < 0.96
    assert wilson(0, 10)[0] == 0 and wilson(10, 10)[1] == 1
    assert upper_bound(0, 300_000) == pytest.approx(1e-5)  # the rule of three
    bound = upper_bound(25, 19_900)
    assert 25 / 19_900 < bound < 2 * 25 / 19_900


def test_out_replaces_only_the_generated_section(tmp_path) -> None:
    page = tmp_path / "accuracy.md"
    page.write_text(
        "# Accuracy\n\nprose\n\n<!-- accuracy:begin -->\nold\n<!-- accuracy:end -->\n\nmore\n"
    )
    write_section(page, "| new |\n")
    assert page.read_text() == (
        "# Accuracy\n\nprose\n\n<!-- accuracy:begin -->\n| new |\n<!-- accuracy:end -->\n\nmore\n"
    )
