"""The sizing table's arithmetic (bench/scale_sizing.py), on figures easy to check by hand."""

import sys

import pytest

from support.paths import BENCH

sys.path.insert(0, str(BENCH))
from scale_sizing import HEADER, PerCore, Workload, explain, sizing, table_rows

# 100 files/s/core hashed; 1,000 queries/s/core at 10M; per entry, 100 bytes in the object
# store and 10 in each worker.
FIGURES = PerCore(
    hash_files_per_s=100, match_queries_per_s=1000, store_bytes_per_entry=100,
    worker_bytes_per_entry=10,
)  # fmt: skip


def test_a_billion_files_against_a_hundred_million_entries() -> None:
    (row,) = sizing(FIGURES, cores=[1000])
    # Hashing: 1e9 / 100 = 1e7 core-s. A query: (1e8 / 1e7) / 1000 = 0.01 core-s; 1e9 of
    # them = 1e7 core-s. On 1000 cores: 1e4 s each = 2.78 h, 5.56 h in all.
    assert row.hashing_hours == pytest.approx(1e7 / 1000 / 3600)
    assert row.matching_hours == pytest.approx(1e7 / 1000 / 3600)
    assert row.hours == pytest.approx(2e7 / 1000 / 3600)
    # 1e8 entries x (100 B + 32 workers x 10 B) = 42 GB per node; 1000 cores in 32-core
    # nodes = 32 nodes.
    assert row.node_bytes == 42 * 10**9
    assert row.nodes == 32 and row.memory_bytes == 32 * 42 * 10**9


def test_hours_fall_with_cores_and_rise_with_the_list_and_lost_efficiency() -> None:
    small, large = sizing(FIGURES, cores=[100, 200])
    assert large.hours == pytest.approx(small.hours / 2)
    bigger_list = sizing(FIGURES, Workload(entries=200_000_000), cores=[100])[0]
    assert bigger_list.matching_hours == pytest.approx(2 * small.matching_hours)
    assert bigger_list.hashing_hours == pytest.approx(small.hashing_hours)
    slower = sizing(FIGURES, Workload(efficiency=0.8, queries_per_file=8), cores=[100])[0]
    assert slower.hashing_hours == pytest.approx(small.hashing_hours / 0.8)
    assert slower.matching_hours == pytest.approx(small.matching_hours * 8 / 0.8)


def test_the_explanation_and_the_table_show_the_same_numbers() -> None:
    lines = explain(FIGURES)
    assert "10,000,000 core-s = 2,778 core-hours" in lines[0]
    assert "10.000 core-ms" in lines[1]
    assert "(100 B in the object store + 32 workers x 10.0 B each) = 42.0 GB" in lines[4]
    rows = table_rows(sizing(FIGURES, cores=[1000]))
    assert len(rows[0]) == len(HEADER)
    assert rows == [["1,000", "32", "2.8", "2.8", "5.6", "42.0", "1,344"]]


@pytest.mark.parametrize(
    "bad",
    [
        {"hash_files_per_s": 0, "match_queries_per_s": 1, "store_bytes_per_entry": 1},
        {"hash_files_per_s": 1, "match_queries_per_s": float("nan"), "store_bytes_per_entry": 1},
        {"hash_files_per_s": 1, "match_queries_per_s": 1, "store_bytes_per_entry": -5},
        {
            "hash_files_per_s": 1,
            "match_queries_per_s": 1,
            "store_bytes_per_entry": 1,
            "worker_bytes_per_entry": -1,
        },
    ],
)
def test_figures_that_are_not_positive_are_refused(bad) -> None:
    with pytest.raises(ValueError, match=r"must be a positive number|must not be negative"):
        PerCore(**{"worker_bytes_per_entry": 0, **bad})


def test_impossible_workloads_are_refused() -> None:
    with pytest.raises(ValueError, match="efficiency"):
        Workload(efficiency=1.5)
    with pytest.raises(ValueError, match="core counts"):
        sizing(FIGURES, cores=[0])
