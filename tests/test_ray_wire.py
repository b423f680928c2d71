"""Compact write results: what the client rebuilds equals what the engine answered."""

from __future__ import annotations

import asyncio

import swarmlog
from actors.wire import compact_results, dumps, expand_results, loads
from projections.commands import OpRef, append_op, begin_op, make_request, put_op, trace_op
from tests.helpers import assert_store_sound


def _through_the_wire(request, results):
    return expand_results(request, loads(dumps(compact_results(request, results))))


def test_compact_results_expand_to_the_engines_events_traces_and_values(mem):
    engine = mem._backend.engine("wire")
    begin = make_request("r", "agent-1", [begin_op(metadata={"goal": "wire"})], write_id="w0")
    assert _through_the_wire(begin, engine.submit(begin)) == engine.submit(begin)
    request = make_request(
        "r",
        "agent-1",
        [
            append_op("observation", {"seen": [1, 2], (1, "a"): "tuple key"}),
            append_op("tool_call", {"q": "x"}, tool="search", source={"channel": "slack"}),
            trace_op("decision", {"choice": "a"}, event=1),
            put_op("k", {"v": 1}),
        ],
        tool="planner",
        write_id="w1",
        source=b"\x81\xa1m\x01",  # packed {"m": 1}: the request's default source
        fence=("lock/db", 3),
    )
    results = engine.submit(request)
    packed = compact_results(request, results)
    assert packed[0] == "eet-"  # events and the trace travel compact, the version as it is
    assert expand_results(request, loads(dumps(packed))) == results
    assert results[0].extra == {"fence": ["lock/db", 3]}
    # A retried write is answered from the idempotency index: the same objects come back.
    again = engine.submit(request)
    assert again == results and _through_the_wire(request, again) == results
    assert_store_sound(mem.namespace("wire"))


def test_results_of_a_forks_writes_carry_the_branch_marker_through_the_wire(mem):
    ns = mem.namespace("wire")
    main = ns.begin_run(run_id="main", agent="a")
    main.append_event("step", 1)
    ns.fork("main", at=ns.head(), new_run_id="branch")
    request = make_request("branch", "a", [append_op("step", 2)], write_id="wb")
    results = mem._backend.engine("wire").submit(request)
    assert results[0].extra == {"branch": True}
    assert _through_the_wire(request, results) == results
    assert_store_sound(ns)


def test_batch_results_through_ray_equal_the_journaled_events_and_traces(ray_mem):
    ns = ray_mem.namespace("wire")
    run = ns.begin_run(agent="planner", tool="llm")
    with run.batch(source={"conversation": 7}) as b:
        first = b.append_event("tool_call", {"q": "refund", "k": 5}, tool="search")
        b.trace("decision", {"choice": "refund"}, event=first)
        b.put("answer", {"text": "yes"})
        b.append_event("observation", {(1, 2): "tuple key"})
    events = {e.seq: e for e in ns.read_events(run_id=run.run_id)}
    appended, trace, version, observed = b.results
    assert appended == events[appended.seq] and observed == events[observed.seq]
    assert trace == ns.traces(run.run_id)[0] and trace.event == appended.seq
    assert version == events[version].seq and appended.source == {"conversation": 7}
    assert run.append_event("note", "single") == ns.read_events(run_id=run.run_id)[-1]
    assert_store_sound(ns)


def test_coalesced_async_writes_get_the_journaled_events_back(ray_mem, store_path):
    async def swarm():
        amem = await swarmlog.connect_async(store_path)
        run = await amem.namespace("wire-async").begin_run(agent="swarm")
        written = await asyncio.gather(*(run.append_event("step", {"i": i}) for i in range(20)))
        stored = await amem.namespace("wire-async").read_events(run_id=run.run_id, types=["step"])
        await amem.close()
        return written, stored

    written, stored = asyncio.run(asyncio.wait_for(swarm(), timeout=120))
    assert sorted(written, key=lambda e: e.seq) == stored
    assert_store_sound(ray_mem.namespace("wire-async"))


def test_an_engine_answering_event_fields_gives_the_same_results_after_the_wire(mem):
    ns = mem.namespace("fields")
    run = ns.begin_run(run_id="r", agent="agent-1")
    engine = mem._backend.engine("fields")
    engine.event_fields = True  # as the Ray actor's engine answers
    request = make_request(
        "r",
        "agent-1",
        [
            append_op("observation", {"seen": [1, 2]}, source={"channel": "slack"}),
            trace_op("decision", {"choice": "a"}, event=OpRef(0)),
            append_op("tool_call", {"q": "x"}, tool="search"),
        ],
        write_id="wf",
    )
    results = engine.submit(request)
    expanded = _through_the_wire(request, results)
    events = {e.seq: e for e in run.read_events()}
    assert expanded[0] == events[results[0].seq] and expanded[2] == events[results[2].seq]
    assert expanded[1] == ns.traces("r")[0] and expanded[1].event == results[0].seq
    engine.event_fields = False
    assert engine.submit(request) == expanded  # the retry, answered from the journal
    assert_store_sound(ns)
