"""Real local Ray clusters for the tests of ``hashguard.cluster``: ``ray_local`` (one node, two
CPUs, shared by a test module) and ``ray_nodes`` (a ``ray.cluster_utils.Cluster``: a head that
runs nothing and worker nodes a test can add and remove; ``ray_two_nodes``: one with two nodes,
shared by a module). A process holds one Ray connection at
a time, so each fixture ends any other first. hashguard's code that runs on Ray lives in
``src`` (workers import it from the installed package)."""

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Before Ray is imported: no usage reporting (no network here), no dashboard.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
# Ray Serve kills an HTTP proxy not ready within 5 s: on two cores busy with the rest of the
# suite, a proxy starting slower than that failed the setup (the processes Ray starts inherit
# this).
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")

import ray
from ray.cluster_utils import Cluster

OBJECT_STORE_BYTES = 200 * 1024 * 1024  # per node: the tests' data is small; CI has 24 GB


def _disconnect() -> None:
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A local Ray instance with two CPUs for the module's tests."""
    _disconnect()
    ray.init(
        address="local",  # never a cluster another test process started (ray_current_cluster)
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def ray_nodes() -> Iterator[Any]:
    """A multi-node cluster on this machine: a head with no CPUs (so work runs on the worker
    nodes), connected; the test adds nodes (``cluster.add_node(num_cpus=1)``) and removes them
    (``cluster.remove_node(node)``) as a machine would fail."""
    yield from _cluster(nodes=0)


@pytest.fixture(scope="module")
def ray_two_nodes() -> Iterator[Any]:
    """``ray_nodes`` with two one-CPU nodes added, shared by a module's tests (one Ray start):
    a test that removes a node comes last."""
    yield from _cluster(nodes=2)


def _cluster(nodes: int) -> Iterator[Any]:
    _disconnect()
    cluster = Cluster(
        initialize_head=True,
        connect=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "object_store_memory": OBJECT_STORE_BYTES,
        },
    )
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES // 2)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
