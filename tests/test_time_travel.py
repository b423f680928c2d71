"""``ns.at(seq)`` shows every projection as it was right after event ``seq``."""

from __future__ import annotations

import pytest

import swarmlog
from tests.helpers import assert_store_sound


def _count_types(state, event):
    state = dict(state)
    state[event.type] = state.get(event.type, 0) + 1
    return state


def test_at_shows_keys_runs_traces_events_and_user_projections_as_they_were(store_path):
    mem = swarmlog.open_local(store_path, settings=swarmlog.Settings(snapshot_every_events=4))
    ns = mem.namespace("acme/support")
    ns.register_projection("types", _count_types, {})
    run = ns.begin_run(run_id="r1", agent="planner")
    v1 = run.put("plan", "draft")
    ev = run.append_event("observation", {"n": 1})
    run.trace("decision", {"choice": "draft"}, event=ev.seq)
    mid = ns.head()
    run.put("plan", "final")
    run.delete("plan")
    run.put("other", 1)
    run.trace("decision", {"choice": "final"})
    run.end(status="ok")

    steps = list(range(0, ns.head() + 1))
    expected = {}
    for seq in steps:  # what a fold of the first `seq` events says, computed from the events
        events = ns.read_events(upto=seq)
        keys = {}
        for e in events:
            if e.type == "kv.put":
                keys[e.payload["key"]] = e.payload["value"]
            elif e.type == "kv.delete":
                keys.pop(e.payload["key"], None)
        counts = {}
        for e in events:
            counts = _count_types(counts, e)
        expected[seq] = (keys, counts, [e.seq for e in events if e.type.startswith("trace.")])

    for seq in steps:
        view = ns.at(seq)
        keys, counts, trace_seqs = expected[seq]
        assert view.head() == seq
        assert {k: view.get(k) for k in view.list()} == keys
        assert view.projection("types") == counts
        assert [e.seq for e in view.read_events()] == list(range(1, seq + 1))
        if seq >= 1:
            assert [t.seq for t in view.traces("r1")] == trace_seqs
            info = view.run_info("r1")
            assert info.events == seq
            assert info.status == ("ok" if seq == ns.head() else "running")
        else:
            with pytest.raises(swarmlog.NotFoundError):
                view.run_info("r1")

    assert ns.at(mid).entry("plan").version == v1
    assert [e.seq for e in ns.at(mid).why("plan")] == [v1]
    assert ns.at(mid).traces(event=ev.seq)[0].data == {"choice": "draft"}
    assert_store_sound(ns)
    mem.close()


def test_at_judges_ttl_by_the_time_of_that_event(ns):
    run = ns.begin_run(agent="planner")
    v = run.put("short", "lived", ttl=0.001)
    assert ns.at(v).get("short") == "lived"
    with pytest.raises(swarmlog.ValidationError):
        ns.at(ns.head() + 1)
    assert_store_sound(ns)
