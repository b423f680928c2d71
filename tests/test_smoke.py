"""A first end-to-end pass over the in-process API."""

from __future__ import annotations

import swarmlog
from tests.helpers import assert_store_sound


def test_a_run_writes_reads_and_survives_a_reopen(store_path):
    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("acme/support")
    run = ns.begin_run(agent="planner", metadata={"goal": "triage"})
    version = run.put("plan/step-1", {"todo": "read ticket"})
    ev = run.append_event("tool_call", {"tool": "search", "args": {"q": "refund"}})
    run.trace("decision", {"choice": "refund", "confidence": 0.8}, event=ev.seq)
    run.end(status="ok")
    digest = ns.digest()
    assert ns.get("plan/step-1") == {"todo": "read ticket"}
    assert ns.entry("plan/step-1").version == version
    assert_store_sound(ns)
    mem.close()

    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("acme/support")
    assert ns.digest() == digest
    assert ns.run_info(run.run_id).status == "ok"
    assert [t.kind for t in ns.traces(run.run_id)] == ["decision"]
    assert_store_sound(ns)
    mem.close()
