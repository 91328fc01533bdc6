"""The Ray fixtures themselves: a task runs on the local instance, and a cluster's node can be
added and removed."""

import ray


@ray.remote
def _double(value: int) -> int:
    return 2 * value


def test_a_local_instance_runs_tasks(ray_local: None) -> None:
    assert ray.get([_double.remote(n) for n in range(3)]) == [0, 2, 4]
    assert ray.cluster_resources()["CPU"] == 2


def test_a_cluster_adds_and_removes_nodes(ray_nodes) -> None:  # type: ignore[no-untyped-def]
    node = ray_nodes.add_node(num_cpus=1, object_store_memory=100 * 1024 * 1024)
    ray_nodes.wait_for_nodes()
    assert ray.cluster_resources()["CPU"] == 1
    ray_nodes.remove_node(node)
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == 1  # the head
