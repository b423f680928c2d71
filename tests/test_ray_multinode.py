"""Namespaces on a multi-node Ray cluster (ray.cluster_utils.Cluster on this machine).

The nodes share this machine's filesystem, which stands in for the shared mount that
cluster.yaml gives a real cluster: an actor that loses its node restarts on another one and
reopens its data there.
"""

from __future__ import annotations

import time

import pytest
import ray
from ray.cluster_utils import Cluster

import swarmlog
from tests.helpers import assert_store_sound

FAST_HEALTH = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_timeout_ms": 500,
    "health_check_initial_delay_ms": 0,
}


@pytest.fixture
def cluster():
    if ray.is_initialized():
        ray.shutdown()  # the session's single-node instance; the next Ray test starts it again
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": FAST_HEALTH},
    )
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, workers
    finally:
        ray.shutdown()
        c.shutdown()


def _node_of(mem, name):
    return ray.get(mem._backend.actor(name).node_id.remote(), timeout=60)


def test_namespaces_spread_over_nodes_and_survive_the_loss_of_a_node(cluster, store_path):
    c, workers = cluster
    namespaces = [f"tenant-{i}" for i in range(6)]
    mem = swarmlog.connect(store_path)
    digests = {}
    for name in namespaces:
        ns = mem.namespace(name)
        run = ns.begin_run(agent="agent")
        for i in range(20):
            run.put(f"{name}/k{i}", {"i": i})
        digests[name] = ns.digest()
    placement = {name: _node_of(mem, name) for name in namespaces}
    assert len(set(placement.values())) >= 2  # spread, not all on one node

    worker_ids = {w.node_id: w for w in workers}
    victim_id = next(n for n in placement.values() if n in worker_ids)
    moved = [name for name, node in placement.items() if node == victim_id]
    c.remove_node(worker_ids[victim_id], allow_graceful=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(n["NodeID"] == victim_id and n["Alive"] for n in ray.nodes()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the removed node was never reported dead")

    for name in namespaces:
        ns = mem.namespace(name)
        assert ns.digest() == digests[name]  # recovered from its journal, wherever it runs now
        assert ns.get(f"{name}/k19") == {"i": 19}
        assert_store_sound(ns)
    for name in moved:
        assert _node_of(mem, name) != victim_id
    mem.shutdown()
