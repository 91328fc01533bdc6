"""The sizing table: what scanning a corpus against large lists takes, from per-core figures
measured on this machine (bench/scale.py measures them and calls ``sizing``).

The arithmetic, so that a reader can check every row:

* hashing:  files / (files hashed per second per core) = core-seconds
* matching: one query per file (times ``queries_per_file``); a query against ``entries`` costs
  (entries / measured entries) / (queries per second per core at the measured size)
  core-seconds. Linear in the list's size: the sharded index makes this exact, as a list of
  100M entries is 10 shards of 10M and every query visits every shard (one index of 100M is
  cheaper per entry, so this errs on the safe side).
* wall hours: (hashing + matching core-seconds) / (cores x efficiency) / 3600, efficiency
  being Ray's measured share of ideal scaling: its files/s / (workers x one process's), once
  started (the Matcher's put into the object store, seconds once per scan, not counted).
* memory, what ``scan --engine ray`` holds of the Matcher on a node: its copy in Ray's object
  store (one per node: the index arrays and the entries' columns, mapped by every worker) plus
  what each worker process holds of its own once it loaded it (its Python objects), times
  the workers (one per core) = entries x (store bytes + cores per node x worker bytes) per
  entry; nodes = cores / cores per node, rounded up.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

FILES = 1_000_000_000
ENTRIES = 100_000_000
CORES = (64, 256, 1024, 4096)
CORES_PER_NODE = 32
HEADER = (
    "cores",
    "nodes",
    "hashing h",
    "matching h",
    "wall hours",
    "GB per node (store + workers)",
    "GB in all",
)


@dataclass(frozen=True)
class PerCore:
    """Figures measured on one core."""

    hash_files_per_s: float  # files hashed per second
    match_queries_per_s: float  # radius-31 queries per second against measured_entries
    store_bytes_per_entry: float  # the Matcher's copy in Ray's object store, per list entry
    worker_bytes_per_entry: float  # what each Ray worker holds of its own, per list entry
    measured_entries: int = 10_000_000  # of the list the queries per second were measured on

    def __post_init__(self) -> None:
        for name in ("hash_files_per_s", "match_queries_per_s", "store_bytes_per_entry"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.worker_bytes_per_entry) and self.worker_bytes_per_entry >= 0):
            raise ValueError(
                f"worker_bytes_per_entry must not be negative, got {self.worker_bytes_per_entry!r}"
            )
        if self.measured_entries <= 0:
            raise ValueError(f"measured_entries must be positive, got {self.measured_entries}")


@dataclass(frozen=True)
class SizingRow:
    cores: int
    nodes: int
    hashing_hours: float  # wall hours spent hashing
    matching_hours: float  # wall hours spent matching
    hours: float
    node_bytes: int  # the Matcher on one node: the object store's copy and every worker's own
    memory_bytes: int  # on all nodes


@dataclass(frozen=True)
class Workload:
    files: int = FILES
    entries: int = ENTRIES
    queries_per_file: float = 1.0
    efficiency: float = 1.0  # measured share of ideal scaling, 0 < efficiency <= 1
    cores_per_node: int = CORES_PER_NODE

    def __post_init__(self) -> None:
        if self.files < 0 or self.entries < 0 or self.queries_per_file < 0:
            raise ValueError("files, entries and queries per file must not be negative")
        if not 0 < self.efficiency <= 1:
            raise ValueError(f"efficiency must be in (0, 1], got {self.efficiency}")
        if self.cores_per_node < 1:
            raise ValueError(f"cores_per_node must be at least 1, got {self.cores_per_node}")

    def hashing_core_seconds(self, figures: PerCore) -> float:
        return self.files / figures.hash_files_per_s

    def query_core_seconds(self, figures: PerCore) -> float:
        """Core-seconds one query costs against ``entries``."""
        return self.entries / figures.measured_entries / figures.match_queries_per_s

    def matching_core_seconds(self, figures: PerCore) -> float:
        return self.files * self.queries_per_file * self.query_core_seconds(figures)

    def node_bytes(self, figures: PerCore) -> float:
        """The Matcher's memory on one node: the object store's copy, and each worker's own."""
        per_entry = figures.store_bytes_per_entry
        per_entry += self.cores_per_node * figures.worker_bytes_per_entry
        return self.entries * per_entry


def sizing(
    figures: PerCore, workload: Workload = Workload(), cores: Sequence[int] = CORES
) -> list[SizingRow]:
    """One row per core count: wall hours of hashing and matching ``workload``, nodes, and the
    Matcher's memory per node and in all. Raises ValueError on a core count below 1."""
    hashing = workload.hashing_core_seconds(figures)
    matching = workload.matching_core_seconds(figures)
    node_bytes = round(workload.node_bytes(figures))
    rows = []
    for count in cores:
        if count < 1:
            raise ValueError(f"core counts must be at least 1, got {count}")
        effective = count * workload.efficiency * 3600
        nodes = math.ceil(count / workload.cores_per_node)
        rows.append(
            SizingRow(
                cores=count,
                nodes=nodes,
                hashing_hours=hashing / effective,
                matching_hours=matching / effective,
                hours=(hashing + matching) / effective,
                node_bytes=node_bytes,
                memory_bytes=nodes * node_bytes,
            )
        )
    return rows


def explain(figures: PerCore, workload: Workload = Workload()) -> list[str]:
    """The arithmetic behind ``sizing``'s rows, with the numbers filled in."""
    hashing = workload.hashing_core_seconds(figures)
    per_query = workload.query_core_seconds(figures)
    matching = workload.matching_core_seconds(figures)
    return [
        f"hashing: {workload.files:,} files / {figures.hash_files_per_s:,.1f} files/s/core = "
        f"{hashing:,.0f} core-s = {hashing / 3600:,.0f} core-hours",
        f"a query against {workload.entries:,} entries: ({workload.entries:,} / "
        f"{figures.measured_entries:,}) / {figures.match_queries_per_s:,.1f} queries/s/core = "
        f"{per_query * 1000:,.3f} core-ms",
        f"matching: {workload.files:,} files x {workload.queries_per_file:g} queries x "
        f"{per_query * 1000:,.3f} core-ms = {matching:,.0f} core-s = "
        f"{matching / 3600:,.0f} core-hours",
        f"wall hours = ({hashing / 3600:,.0f} + {matching / 3600:,.0f}) core-hours / (cores x "
        f"{workload.efficiency:g})",
        f"memory per node: {workload.entries:,} entries x ({figures.store_bytes_per_entry:,.0f}"
        f" B in the object store + {workload.cores_per_node} workers x "
        f"{figures.worker_bytes_per_entry:,.1f} B each) = "
        f"{workload.node_bytes(figures) / 1e9:,.1f} GB",
    ]


def table_rows(rows: Sequence[SizingRow]) -> list[list[str]]:
    """``rows`` as strings for ``report.table`` under HEADER."""
    return [
        [
            f"{row.cores:,}",
            f"{row.nodes:,}",
            f"{row.hashing_hours:,.1f}",
            f"{row.matching_hours:,.1f}",
            f"{row.hours:,.1f}",
            f"{row.node_bytes / 1e9:,.1f}",
            f"{row.memory_bytes / 1e9:,.0f}",
        ]
        for row in rows
    ]
