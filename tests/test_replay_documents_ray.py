"""Agent replay of documents, vectors and transactions through the Ray client: the engine
decides each replayed request again inside the namespace actor."""

from __future__ import annotations

import pytest

import swarmlog
from tests.agents import Neighbour, memory_agent
from tests.helpers import assert_store_sound


def test_an_agent_using_documents_vectors_and_transactions_replays_through_the_ray_client(ray_mem):
    ns = ray_mem.namespace("ray/memory")
    neighbour = Neighbour(ns)
    run = ns.begin_run(run_id="m1", agent="librarian")
    recorded = memory_agent(neighbour)(run)
    history = ns.read_events(run_id="m1")
    assert all(e.write_id is not None for e in history)  # the Ray client gave every write one

    replayed = []
    report = ns.replay("m1", lambda r: replayed.append(memory_agent(neighbour)(r)))

    assert report.ok and report.events_checked == len(history)
    assert replayed == [recorded] and neighbour.calls == 1
    with pytest.raises(swarmlog.NonDeterminismError) as caught:
        ns.replay("m1", memory_agent(neighbour, bump=11))
    assert caught.value.event_type == "doc.update"
    assert ns.replay("m1").ok
    assert_store_sound(ns)
