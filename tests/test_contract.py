"""Contract tests of the public API (DESIGN.md, issue 2), written once for every backend."""

from __future__ import annotations

import pytest

import swarmlog
from journal.codec import blake
from journal.settings import Settings
from journal.snapshots import open_snapshot
from tests.helpers import assert_store_sound, unchanged

# -- stores, namespaces and runs -----------------------------------------------------------------


def test_a_new_store_has_an_empty_namespace_that_appears_once_written(store):
    ns = store.ns
    assert ns.name == "acme/support"
    assert ns.head() == 0
    assert ns.list() == []
    assert ns.read_events() == []
    assert ns.get("missing") is None
    assert ns.get("missing", "fallback") == "fallback"
    assert ns.entry("missing") is None
    ns.begin_run(agent="planner")
    assert "acme/support" in store.mem.namespaces()
    assert ns.head() == 1
    assert_store_sound(ns)


def test_namespaces_are_independent_journals(store):
    a = store.mem.namespace("team-a")
    b = store.mem.namespace("team-b")
    a.begin_run("r", agent="x").put("k", "from a")
    b.begin_run("r", agent="y").put("k", "from b")
    assert a.get("k") == "from a"
    assert b.get("k") == "from b"
    assert a.head() == b.head() == 2
    assert sorted(store.mem.namespaces()) == ["team-a", "team-b"]
    assert_store_sound(a)
    assert_store_sound(b)


def test_begin_run_generates_distinct_run_ids_and_records_agent_and_metadata(store):
    ns = store.ns
    first = ns.begin_run(agent="planner", metadata={"goal": "triage", "n": 3})
    second = ns.begin_run(agent="critic")
    assert first.run_id != second.run_id
    assert first.run_id.startswith("run-")
    info = ns.run_info(first.run_id)
    assert info.run_id == first.run_id
    assert info.agent == "planner"
    assert info.metadata == {"goal": "triage", "n": 3}
    assert info.status == "running" and info.running
    assert info.began_seq == 1 and info.events == 1 and info.last_seq == 1
    assert info.ended_seq is None and info.ended_ts is None
    assert ns.run_info(second.run_id).metadata == {}
    assert [r.run_id for r in ns.runs()] == [first.run_id, second.run_id]
    assert [r.run_id for r in ns.runs(agent="critic")] == [second.run_id]
    assert_store_sound(ns)


def test_begin_run_with_a_given_run_id_uses_it_and_refuses_it_twice(store):
    ns = store.ns
    run = ns.begin_run("run-42", agent="planner")
    assert run.run_id == "run-42"
    assert run.agent == "planner"
    with unchanged(ns), pytest.raises(swarmlog.ValidationError, match=r"run-42.*already exists"):
        ns.begin_run("run-42", agent="someone-else")
    assert ns.run_info("run-42").agent == "planner"
    assert_store_sound(ns)


def test_begin_run_sent_again_with_its_write_id_returns_the_same_run(store):
    ns = store.ns
    first = ns.begin_run(agent="planner", metadata={"goal": "x"}, write_id="start-1")
    with unchanged(ns):
        again = ns.begin_run(agent="planner", metadata={"goal": "x"}, write_id="start-1")
    assert again.run_id == first.run_id
    other = ns.begin_run(agent="planner", metadata={"goal": "x"}, write_id="start-2")
    assert other.run_id != first.run_id
    assert [r.run_id for r in ns.runs()] == [first.run_id, other.run_id]
    assert_store_sound(ns)


def test_a_store_open_in_this_process_cannot_be_opened_twice(store):
    ns = store.ns
    ns.begin_run(agent="a").put("k", 1)
    second = swarmlog.open_local(store.path)
    try:
        with pytest.raises(swarmlog.NamespaceUnavailable, match="open in another process or handle"):
            second.namespace(ns.name).head()
    finally:
        second.close()
    assert ns.get("k") == 1
    assert_store_sound(ns)


def test_event_times_keep_increasing_when_the_wall_clock_steps_back(store):
    clock = store.with_clock()
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    before = run.append_event("tick", 1)
    clock.advance(-3600)
    same_process = run.append_event("tick", 2)
    ns = store.reopen()
    clock.advance(-3600)
    after_restart = ns.run("r").append_event("tick", 3)
    assert before.ts < same_process.ts < after_restart.ts
    assert after_restart.time_ms >= before.time_ms
    assert_store_sound(ns)


def test_run_returns_a_handle_to_an_existing_run_and_refuses_an_unknown_one(store):
    ns = store.ns
    ns.begin_run("run-42", agent="planner")
    handle = ns.run("run-42")
    assert handle.run_id == "run-42" and handle.agent == "planner"
    version = handle.put("k", 1)
    assert ns.entry("k").run_id == "run-42"
    assert ns.entry("k").agent == "planner"
    as_tool = ns.run("run-42", agent="helper", tool="search")
    as_tool.put("k2", 2)
    assert (ns.entry("k2").agent, ns.entry("k2").tool) == ("helper", "search")
    with pytest.raises(swarmlog.NotFoundError, match="nope"):
        ns.run("nope")
    ns = store.reopen()
    again = ns.run("run-42")
    assert again.agent == "planner"
    assert again.get("k") == 1 and ns.entry("k").version == version
    assert_store_sound(ns)


def test_head_counts_every_event_of_the_namespace(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    assert ns.head() == 1
    run.put("k", 1)
    run.append_event("note", {"x": 1})
    run.trace("assumption", {"text": "t"})
    assert ns.head() == 4
    run.delete("absent")
    assert ns.head() == 4
    run.end()
    assert ns.head() == 5
    assert_store_sound(ns)


# -- key/value -----------------------------------------------------------------------------------


def test_put_returns_the_seq_of_its_event_as_the_new_version(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v1 = run.put("plan/step-1", {"todo": "read"})
    assert v1 == ns.head() == 2
    v2 = run.put("plan/step-1", {"todo": "answer"})
    assert v2 == 3 > v1
    assert ns.entry("plan/step-1").version == v2
    (ev,) = ns.read_events(after=v1, upto=v2)
    assert ev.type == "kv.put" and ev.payload["key"] == "plan/step-1"
    assert ev.payload["value"] == {"todo": "answer"}
    assert ev.payload["prev"] == v1
    assert_store_sound(ns)


def test_put_with_expected_version_writes_only_over_that_version(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v1 = run.put("k", "one")
    v2 = run.put("k", "two", expected_version=v1)
    assert ns.get("k") == "two"
    with unchanged(ns), pytest.raises(swarmlog.ConflictError) as err:
        run.put("k", "stale", expected_version=v1)
    assert (err.value.key, err.value.expected, err.value.actual) == ("k", v1, v2)
    assert "'k'" in str(err.value) and str(v1) in str(err.value)
    assert ns.get("k") == "two"
    assert_store_sound(ns)


def test_expected_version_zero_creates_only_when_absent(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v = run.put("leader", "agent-7", expected_version=0)
    with unchanged(ns), pytest.raises(swarmlog.ConflictError) as err:
        run.put("leader", "agent-8", expected_version=0)
    assert (err.value.key, err.value.expected, err.value.actual) == ("leader", 0, v)
    assert ns.get("leader") == "agent-7"
    assert run.delete("leader") is True
    run.put("leader", "agent-8", expected_version=0)
    assert ns.get("leader") == "agent-8"
    with pytest.raises(swarmlog.ConflictError) as err:
        run.put("other", 1, expected_version=5)
    assert (err.value.expected, err.value.actual) == (5, 0)
    assert_store_sound(ns)


def test_entry_holds_value_version_run_writer_and_expiry(store):
    ns = store.ns
    run = ns.begin_run("run-1", agent="planner")
    version = run.with_tool("search").put("doc", {"a": [1, 2, {"b": None}], "c": b"\x00\x01"})
    entry = ns.entry("doc")
    assert isinstance(entry, swarmlog.Entry)
    assert entry.key == "doc"
    assert entry.value == {"a": [1, 2, {"b": None}], "c": b"\x00\x01"}
    assert entry.version == entry.seq == version
    assert entry.run_id == "run-1"
    assert entry.agent == "planner"
    assert entry.tool == "search"
    assert entry.expires_at is None
    assert run.get("doc") == ns.get("doc") == entry.value
    assert_store_sound(ns)


def test_values_read_back_are_copies_that_callers_cannot_change_in_the_store(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("k", {"list": [1, 2]})
    got = ns.get("k")
    got["list"].append(3)
    got["new"] = True
    assert ns.get("k") == {"list": [1, 2]}
    assert_store_sound(ns)


def test_dicts_keyed_by_tuples_read_back_as_written(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    value = {(1, 2): "pair", "nested": [{(3, (4, 5)): True}], 7: "int key"}
    run.put("k", value)
    ev = run.append_event("note", {("a", "b"): 1})
    assert ns.get("k") == value
    assert ev.payload == {("a", "b"): 1} == ns.event(ev.seq).payload
    assert_store_sound(store.reopen())
    assert store.ns.get("k") == value


def test_delete_returns_whether_the_key_existed_and_journals_only_real_deletes(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v = run.put("k", 1)
    head = ns.head()
    assert run.delete("k") is True
    assert ns.head() == head + 1
    (ev,) = ns.read_events(after=head)
    assert ev.type == "kv.delete" and ev.payload == {"key": "k", "prev": v}
    assert ns.get("k") is None and ns.entry("k") is None
    with unchanged(ns):
        assert run.delete("k") is False
        assert run.delete("never-was") is False
    assert "k" not in ns.list()
    assert_store_sound(ns)


def test_delete_with_expected_version_refuses_a_stale_version(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v1 = run.put("k", 1)
    v2 = run.put("k", 2)
    with unchanged(ns), pytest.raises(swarmlog.ConflictError) as err:
        run.delete("k", expected_version=v1)
    assert (err.value.key, err.value.expected, err.value.actual) == ("k", v1, v2)
    assert run.delete("k", expected_version=v2) is True
    assert ns.get("k") is None
    assert_store_sound(ns)


def test_list_and_items_return_live_keys_in_order_with_prefix_paging_and_limit(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    keys = ["plan/b", "plan/a", "notes/x", "plan/c/1", "plan/c", "plan", "plam", "plao"]
    with run.batch() as b:
        for i, key in enumerate(keys):
            b.put(key, i)
    run.delete("plan/c")
    assert ns.list() == sorted(set(keys) - {"plan/c"})
    assert ns.list("plan/") == ["plan/a", "plan/b", "plan/c/1"]
    assert ns.list(prefix="plan") == ["plan", "plan/a", "plan/b", "plan/c/1"]
    assert ns.list("plan/", limit=2) == ["plan/a", "plan/b"]
    assert ns.list("plan/", start_after="plan/a") == ["plan/b", "plan/c/1"]
    assert ns.list("plan/", start_after="plan/b", limit=1) == ["plan/c/1"]
    assert ns.list("plan/", start_after="plan/c/1") == []
    assert ns.list("plan/", start_after="a") == ["plan/a", "plan/b", "plan/c/1"]
    assert ns.list("plan/", start_after="zzz") == []
    assert ns.list("plan/", limit=0) == []
    assert ns.list("nothing/") == []
    # Paging with start_after and limit visits every key once.
    seen, cursor = [], None
    while True:
        page = ns.list(start_after=cursor, limit=3)
        if not page:
            break
        seen += page
        cursor = page[-1]
    assert seen == ns.list()
    items = ns.items("plan/")
    assert [e.key for e in items] == ["plan/a", "plan/b", "plan/c/1"]
    assert [e.value for e in items] == [keys.index(k) for k in ["plan/a", "plan/b", "plan/c/1"]]
    assert all(e.version == ns.entry(e.key).version for e in items)
    assert [e.key for e in ns.items("plan/", start_after="plan/a", limit=1)] == ["plan/b"]
    assert run.list("notes/") == ["notes/x"]
    assert_store_sound(ns)


# -- events --------------------------------------------------------------------------------------


def test_append_event_returns_the_journaled_event_with_identity_and_chain(store):
    ns = store.ns
    run = ns.begin_run("run-7", agent="planner")
    before = ns.event(1)
    ev = run.append_event(
        "tool_call", {"tool": "search", "args": {"q": "refund"}}, source={"channel": "slack"}, write_id="w-1"
    )
    assert isinstance(ev, swarmlog.Event)
    assert ev.seq == 2 == ns.head()
    assert ev.id.endswith("-2")
    assert ev.run_id == "run-7"
    assert ev.agent == "planner"
    assert ev.tool is None
    assert ev.type == "tool_call"
    assert ev.payload == {"tool": "search", "args": {"q": "refund"}}
    assert ev.source == {"channel": "slack"}
    assert ev.write_id == "w-1"
    assert ev.prev == before.hash
    assert len(ev.hash) == 32 and ev.hash != ev.prev
    assert ev.ts > before.ts
    assert ev.time.tzinfo is not None and ev.time_ms == ev.ts >> 16
    assert ns.event(2) == ev
    assert ns.read_events(after=1) == [ev]
    tooled = run.append_event("note", None, tool="calculator")
    assert tooled.tool == "calculator" and tooled.payload is None and tooled.source is None
    assert tooled.prev == ev.hash and tooled.ts > ev.ts
    assert run.with_tool("browser").append_event("note", 1).tool == "browser"
    assert_store_sound(ns)


def test_event_hash_covers_the_canonical_record_and_ids_are_unique(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    for i in range(5):
        run.append_event("note", {"i": i})
    events = ns.read_events()
    assert len({e.id for e in events}) == len(events)
    assert len({e.hash for e in events}) == len(events)
    engine = store.engine()
    for ev in events:
        digest, canonical = engine.journal.canonical(ev.seq)
        assert digest == ev.hash == blake(canonical)
    assert_store_sound(ns)


def test_read_events_by_run_type_range_and_limit(store):
    ns = store.ns
    a = ns.begin_run("a", agent="x")
    b = ns.begin_run("b", agent="y")
    for i in range(6):
        (a if i % 2 == 0 else b).append_event("obs" if i % 3 else "act", {"i": i})
    a.put("k", 1)
    everything = ns.read_events()
    assert [e.seq for e in everything] == list(range(1, ns.head() + 1))
    of_a = ns.read_events(run_id="a")
    assert [e.run_id for e in of_a] == ["a"] * len(of_a)
    assert [e.seq for e in of_a] == [e.seq for e in everything if e.run_id == "a"]
    assert a.read_events() == of_a
    assert [e.seq for e in ns.read_events(after=3, upto=6)] == [4, 5, 6]
    assert ns.read_events(after=ns.head()) == []
    assert ns.read_events(upto=0) == []
    assert [e.seq for e in ns.read_events(upto=10**9)] == [e.seq for e in everything]
    obs = ns.read_events(types="obs")
    assert [e.seq for e in obs] == [e.seq for e in everything if e.type == "obs"]
    both = ns.read_events(types=["obs", "act"])
    assert [e.seq for e in both] == [e.seq for e in everything if e.type in ("obs", "act")]
    assert ns.read_events(types=["nothing"]) == []
    assert [e.seq for e in ns.read_events(limit=2)] == [1, 2]
    assert ns.read_events(limit=0) == []
    combined = ns.read_events(run_id="b", after=2, upto=8, types=["obs", "act"], limit=2)
    expected = [e.seq for e in everything if e.run_id == "b" and 2 < e.seq <= 8 and e.type in ("obs", "act")]
    assert [e.seq for e in combined] == expected[:2]
    assert ns.read_events(run_id="a", types="kv.put") == [e for e in everything if e.type == "kv.put"]
    with pytest.raises(swarmlog.NotFoundError, match="zzz"):
        ns.read_events(run_id="zzz")
    assert_store_sound(ns)


def test_read_events_by_run_spans_many_commits_and_interleavings(store):
    ns = store.ns
    runs = [ns.begin_run(f"r{i}", agent="x") for i in range(3)]
    for i in range(60):
        run = runs[i * 7 % 3]
        if i % 10 == 0:
            with run.batch() as b:
                b.append_event("tick", {"i": i})
                b.append_event("tock", {"i": i})
        else:
            run.append_event("tick", {"i": i})
    everything = ns.read_events()
    for run in runs:
        want = [e.seq for e in everything if e.run_id == run.run_id]
        assert [e.seq for e in ns.read_events(run.run_id)] == want
        assert [e.seq for e in ns.read_events(run.run_id, after=want[3], limit=4)] == want[4:8]
        assert ns.run_info(run.run_id).events == len(want)
    assert_store_sound(ns)


# -- traces --------------------------------------------------------------------------------------

TRACE_DATA = {
    "tool_call": {"tool": "search", "args": {"q": "x"}},
    "model_input": {"messages": [{"role": "user", "content": "hi"}]},
    "model_output": {"text": "hello"},
    "citation": {"source": "https://example.org", "quote": "q"},
    "decision": {"choice": "refund", "confidence": 0.8},
    "confidence": {"value": 0.25},
    "assumption": {"text": "the customer is right"},
}


def test_every_trace_kind_is_recorded_linked_and_filterable(store):
    ns = store.ns
    run = ns.begin_run("r", agent="planner")
    other = ns.begin_run("other", agent="critic")
    ev = run.append_event("tool_result", {"hits": 3})
    assert set(TRACE_DATA) == set(swarmlog.TRACE_KINDS)
    traces = []
    for kind, data in TRACE_DATA.items():
        t = run.trace(kind, data, event=ev if kind == "decision" else ev.seq)
        assert isinstance(t, swarmlog.Trace)
        assert (t.kind, t.data, t.event, t.run_id, t.agent, t.tool) == (
            kind,
            data,
            ev.seq,
            "r",
            "planner",
            None,
        )
        assert t.seq == ns.head()
        traces.append(t)
    unlinked = other.trace("decision", {"choice": "wait"}, tool="judge")
    assert unlinked.event is None and unlinked.tool == "judge"
    assert ns.traces("r") == traces
    assert run.traces() == traces
    assert ns.traces() == [*traces, unlinked]
    assert ns.traces(kind="decision") == [traces[4], unlinked]
    assert ns.traces("r", kind="decision") == [traces[4]]
    assert ns.traces(event=ev.seq) == traces
    assert ns.traces("other", event=ev.seq) == []
    assert [e.type for e in ns.read_events(types=[f"trace.{k}" for k in TRACE_DATA])] == [
        f"trace.{k}" for k in TRACE_DATA
    ] + ["trace.decision"]
    with pytest.raises(swarmlog.NotFoundError):
        ns.traces("unknown-run")
    ns = store.reopen()
    assert ns.traces() == [*traces, unlinked]
    assert_store_sound(ns)


def test_a_trace_can_link_to_any_earlier_event_but_not_a_future_one(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    version = run.put("k", 1)
    t = run.trace("citation", {"source": "doc-1"}, event=version)
    assert t.event == version
    with unchanged(ns), pytest.raises(swarmlog.ValidationError, match="does not exist yet"):
        run.trace("citation", {"source": "doc-2"}, event=ns.head() + 5)
    assert_store_sound(ns)


# -- ending runs ---------------------------------------------------------------------------------


def test_end_sets_the_status_and_refuses_later_writes_to_the_run(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    run.put("k", 1)
    info = run.end(status="error", summary={"why": "timeout"})
    assert isinstance(info, swarmlog.RunInfo)
    assert info.status == "error" and not info.running
    assert info.ended_seq == ns.head() and info.ended_ts is not None
    assert info.summary == {"why": "timeout"}
    assert info.events == 3
    assert ns.run_info("r") == info == run.info()
    with unchanged(ns):
        for write in (
            lambda: run.put("k", 2),
            lambda: run.delete("k"),
            lambda: run.append_event("note", 1),
            lambda: run.trace("assumption", {"text": "x"}),
            lambda: run.end(),
        ):
            with pytest.raises(swarmlog.ValidationError, match="ended"):
                write()
    assert ns.get("k") == 1
    assert [r.run_id for r in ns.runs(status="error")] == ["r"]
    assert ns.runs(status="running") == []
    assert_store_sound(ns)


# -- batches -------------------------------------------------------------------------------------


def test_batch_commits_everything_in_one_go_and_returns_results_in_order(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("old", 0)
    head = ns.head()
    with run.batch() as b:
        p_put = b.put("k1", 1)
        p_del = b.delete("old")
        p_missing = b.delete("missing")
        p_ev = b.append_event("observation", {"seen": True})
        p_tr = b.trace("assumption", {"text": "obs is right"}, event=p_ev)
        p_put2 = b.put("k1", 2, expected_version=head + 1)
        assert len(b) == 6
        assert b.results is None
        assert ns.head() == head  # nothing sent before the block exits
    version, deleted, missing, event, trace, version2 = b.results
    assert version == head + 1
    assert (deleted, missing) == (True, False)
    assert isinstance(event, swarmlog.Event) and event.seq == head + 3
    assert isinstance(trace, swarmlog.Trace) and trace.event == event.seq and trace.seq == head + 4
    assert version2 == head + 5 == ns.head()
    assert [p.result for p in (p_put, p_del, p_missing, p_ev, p_tr, p_put2)] == b.results
    assert ns.get("k1") == 2 and ns.get("old") is None
    # One commit: the events are contiguous and carry the same run and agent.
    assert [e.seq for e in ns.read_events(after=head)] == list(range(head + 1, head + 6))
    assert_store_sound(ns)


def test_a_batch_whose_operation_fails_midway_writes_nothing_at_all(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    v = run.put("k", "original")
    with unchanged(ns), pytest.raises(swarmlog.ConflictError) as err, run.batch() as b:
        b.put("new", 1)
        b.append_event("note", {"x": 1})
        b.delete("k")
        b.put("k", "again", expected_version=v)  # k was deleted just before: conflict
        b.put("later", 2)
    assert err.value.key == "k" and err.value.actual == 0
    assert b.results is None
    assert ns.get("k") == "original" and ns.entry("k").version == v
    assert ns.get("new") is None and ns.list() == ["k"]
    assert ns.read_events(types="note") == []
    # A batch that fails on its first or its last operation writes nothing either.
    with unchanged(ns):
        for fail_at in (0, 4):
            with pytest.raises(swarmlog.ConflictError), run.batch() as b:
                for i in range(5):
                    b.put(f"p{i}", i, expected_version=99 if i == fail_at else None)
    assert_store_sound(ns)


def test_an_exception_inside_the_batch_block_sends_nothing(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    with unchanged(ns), pytest.raises(RuntimeError, match="changed my mind"), run.batch() as b:
        b.put("k", 1)
        b.append_event("note", 1)
        raise RuntimeError("changed my mind")
    assert b.results is None
    assert ns.get("k") is None
    with run.batch() as empty:
        pass
    assert empty.results == []
    assert_store_sound(ns)


def test_a_committed_batch_takes_no_more_operations(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    with run.batch() as b:
        b.put("k", 1)
    with unchanged(ns), pytest.raises(swarmlog.ValidationError, match="already committed"):
        b.put("k", 2)
    assert_store_sound(ns)


def test_a_batch_can_end_its_run_and_the_end_is_atomic_with_the_rest(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    with run.batch() as b:
        b.put("result", 42)
        b.end("ok")
    assert b.results[1].status == "ok"
    assert ns.run_info("r").ended_seq == ns.head()
    with unchanged(ns), pytest.raises(swarmlog.ValidationError, match="ended"), run.batch() as b2:
        b2.put("more", 1)
    assert_store_sound(ns)


# -- provenance ----------------------------------------------------------------------------------


def test_why_returns_the_lineage_of_the_current_value_newest_first(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    other = ns.begin_run(agent="b")
    v1 = run.put("k", 1)
    run.put("unrelated", 0)
    v2 = other.put("k", 2)
    v3 = run.put("k", 3)
    lineage = ns.why("k")
    assert [e.seq for e in lineage] == [v3, v2, v1]
    assert [e.payload["value"] for e in lineage] == [3, 2, 1]
    assert [e.agent for e in lineage] == ["a", "b", "a"]
    assert [e.seq for e in ns.why("k", limit=2)] == [v3, v2]
    assert [e.seq for e in ns.why("k", limit=None)] == [v3, v2, v1]
    assert ns.why("k", limit=0) == []
    assert run.delete("k")
    assert ns.why("k") == []
    v4 = run.put("k", 4)
    assert [e.seq for e in ns.why("k")] == [v4]
    assert ns.why("never") == []
    assert_store_sound(ns)


# -- time travel ---------------------------------------------------------------------------------


def _fold_types(state, event):
    state[event.type] = state.get(event.type, 0) + 1
    return state


def test_at_seq_answers_every_read_as_of_that_event(store):
    ns = store.ns
    ns.register_projection("types", _fold_types, {})
    run = ns.begin_run("r", agent="a")
    v1 = run.put("k", "one")
    run.put("gone", 1)
    ev = run.append_event("obs", {"n": 1})
    tr = run.trace("decision", {"choice": "go"}, event=ev)
    past = ns.head()
    digest_then = ns.digest()
    keys_then = ns.list()
    v2 = run.put("k", "two")
    run.delete("gone")
    run.put("new", 1)
    run.end("ok")
    view = ns.at(past)
    assert isinstance(view, swarmlog.View) and view.seq == past
    assert view.head() == past
    assert view.get("k") == "one" and view.get("new") is None and view.get("new", 7) == 7
    assert view.entry("k").version == v1
    assert view.list() == keys_then == ["gone", "k"]
    assert view.list("g") == ["gone"]
    assert [e.key for e in view.items()] == keys_then
    assert view.read_events() == ns.read_events(upto=past)
    assert view.read_events("r", types="obs") == [ev]
    assert view.read_events(upto=past + 3) == ns.read_events(upto=past)
    assert view.traces("r") == [tr]
    assert view.run_info("r").status == "running"
    assert [r.status for r in view.runs()] == ["running"]
    assert [e.seq for e in view.why("k")] == [v1]
    assert view.projection("types") == {"run.begin": 1, "kv.put": 2, "obs": 1, "trace.decision": 1}
    assert view.digest() == digest_then
    # The live namespace moved on; the view did not.
    assert ns.get("k") == "two" and [e.seq for e in ns.why("k")] == [v2, v1]
    assert ns.at(ns.head()).digest() == ns.digest()
    empty = ns.at(0)
    assert empty.head() == 0 and empty.list() == [] and empty.read_events() == []
    assert empty.projection("types") == {}
    with pytest.raises(swarmlog.NotFoundError):
        empty.run_info("r")
    with pytest.raises(swarmlog.ValidationError):
        ns.at(ns.head() + 1)
    assert_store_sound(ns)


def test_at_seq_reads_the_same_after_a_reopen_and_across_snapshots(store):
    ns = store.reopen(Settings(snapshot_every_events=3))
    run = ns.begin_run(agent="a")
    digests, values = {}, {}
    for i in range(12):
        run.put(f"k{i % 4}", i)
        digests[ns.head()] = ns.digest()
        values[ns.head()] = {k: ns.get(k) for k in ns.list()}
    ns = store.reopen(Settings(snapshot_every_events=3))
    for seq, digest in digests.items():
        view = ns.at(seq)
        assert view.digest() == digest
        assert {k: view.get(k) for k in view.list()} == values[seq]
    assert_store_sound(ns)


def test_at_seq_judges_ttl_at_the_time_of_that_event(store):
    clock = store.with_clock()
    ns = store.ns
    run = ns.begin_run(agent="a")
    v = run.put("lease", "mine", ttl=10)
    expires_at = ns.entry("lease").expires_at
    assert expires_at == pytest.approx(clock.now_ms / 1000 + 10)
    clock.advance(5)
    mid = run.append_event("tick", 1).seq
    clock.advance(6)
    late = run.append_event("tick", 2).seq
    assert ns.get("lease") is None
    assert ns.at(v).get("lease") == "mine"
    assert ns.at(mid).get("lease") == "mine"
    assert ns.at(mid).list() == ["lease"]
    assert ns.at(late).get("lease") is None
    assert ns.at(late).list() == []
    assert ns.at(late).entry("lease") is None
    assert_store_sound(ns)


# -- verify and close ----------------------------------------------------------------------------


def test_verify_checks_every_event_of_a_sound_store(store):
    ns = store.ns
    report = ns.verify()
    assert report.ok and report.checked == 0 and report.first_bad is None and report.reason is None
    run = ns.begin_run(agent="a")
    for i in range(10):
        run.put(f"k{i}", i, write_id=f"w{i}")
    report = ns.verify(projections=True)
    assert isinstance(report, swarmlog.VerifyReport)
    assert report.ok and report.checked == ns.head() == 11
    assert_store_sound(ns)


def test_every_call_after_close_raises_namespace_unavailable(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("k", 1)
    store.mem.close()
    calls = [
        ns.head,
        lambda: ns.get("k"),
        lambda: ns.entry("k"),
        ns.list,
        ns.read_events,
        ns.traces,
        ns.verify,
        ns.digest,
        lambda: ns.why("k"),
        lambda: ns.at(1),
        lambda: ns.run(run.run_id),
        lambda: ns.begin_run(agent="a"),
        lambda: run.put("k", 2),
        lambda: run.append_event("note", 1),
        lambda: run.end(),
        lambda: store.mem.namespace("another").head(),
    ]
    for call in calls:
        with pytest.raises(swarmlog.NamespaceUnavailable):
            call()
    store.mem.close()  # closing twice is harmless
    ns = store.reopen()
    assert ns.get("k") == 1
    assert_store_sound(ns)


def test_a_view_taken_before_close_is_unavailable_after_it(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("k", 1)
    view = ns.at(2)
    assert view.get("k") == 1
    store.mem.close()
    with pytest.raises(swarmlog.NamespaceUnavailable):
        view.get("k")
    ns = store.reopen()
    assert_store_sound(ns)


# -- TTL -----------------------------------------------------------------------------------------


def test_an_entry_with_a_ttl_disappears_from_reads_once_it_expires(store):
    clock = store.with_clock()
    ns = store.ns
    run = ns.begin_run(agent="a")
    v = run.put("session", {"user": 1}, ttl=30)
    run.put("forever", 1)
    entry = ns.entry("session")
    assert entry.expires_at == pytest.approx(clock.now_ms / 1000 + 30)
    clock.advance(29.999)
    assert ns.get("session") == {"user": 1}
    assert ns.list() == ["forever", "session"]
    clock.advance(0.001)
    assert ns.get("session") is None
    assert ns.entry("session") is None
    assert ns.list() == ["forever"]
    assert [e.key for e in ns.items()] == ["forever"]
    assert ns.why("session") == []
    # An expired key counts as absent for writers too.
    with unchanged(ns):
        assert run.delete("session") is False
    with pytest.raises(swarmlog.ConflictError) as err:
        run.put("session", 2, expected_version=v)
    assert err.value.actual == 0
    run.put("session", 2, expected_version=0)
    assert ns.get("session") == 2 and ns.entry("session").expires_at is None
    assert_store_sound(ns)


def test_a_ttl_is_renewed_by_a_new_put_and_survives_a_reopen(store):
    clock = store.with_clock()
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("k", 1, ttl=10)
    clock.advance(8)
    run.put("k", 2, ttl=10)
    clock.advance(8)
    assert ns.get("k") == 2
    ns = store.reopen()
    assert ns.get("k") == 2
    clock.advance(2.5)
    assert ns.get("k") is None
    run = ns.run(run.run_id)
    run.put("tick", 0)  # an event after the expiry purges the entry from the projection
    ns = store.reopen()
    assert ns.get("k") is None and ns.list() == ["tick"]
    assert_store_sound(ns)


def test_fractional_ttls_round_up_to_whole_milliseconds(store):
    clock = store.with_clock()
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("k", 1, ttl=0.0001)
    assert ns.get("k") == 1
    clock.advance(0.001)
    assert ns.get("k") is None
    assert_store_sound(ns)


# -- user projections ----------------------------------------------------------------------------

FOLD_CALLS: list[int] = []


def _fold_counting(state, event):
    FOLD_CALLS.append(event.seq)
    if event.type == "kv.put":
        state["puts"] = state.get("puts", 0) + 1
        state["last_key"] = event.payload["key"]
    return state


def _fold_fragile(state, event):
    if event.type == "boom":
        raise RuntimeError("cannot fold boom")
    return state + 1


def _fold_sturdy(state, event):
    return state + 1


def test_a_user_projection_folds_every_event_past_and_future(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    run.put("a", 1)
    ns.register_projection("puts", _fold_counting, {})
    assert ns.projection("puts") == {"puts": 1, "last_key": "a"}
    run.put("b", 2)
    run.append_event("note", 1)
    assert ns.projection("puts") == {"puts": 2, "last_key": "b"}
    got = ns.projection("puts")
    got["puts"] = 1000
    assert ns.projection("puts")["puts"] == 2
    with pytest.raises(swarmlog.NotFoundError, match="nope"):
        ns.projection("nope")
    assert_store_sound(ns)


def test_a_user_projection_is_rebuilt_on_reopen_from_its_stored_registration(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    ns.register_projection("count", lambda state, event: state + 1, 0)
    for i in range(5):
        run.put(f"k{i}", i)
    assert ns.projection("count") == 6
    ns = store.reopen()
    assert ns.projection("count") == 6
    ns.run(run.run_id).put("k", 1)
    assert ns.projection("count") == 7
    assert_store_sound(ns)


def test_a_user_projection_is_kept_in_snapshots_and_not_refolded_from_them(store):
    ns = store.reopen(Settings(snapshot_every_events=4))
    run = ns.begin_run(agent="a")
    ns.register_projection("puts", _fold_counting, {})
    for i in range(6):
        run.put(f"k{i}", i)
    state = ns.projection("puts")
    store.close()
    FOLD_CALLS.clear()
    ns = store.reopen(Settings(snapshot_every_events=4))
    assert ns.projection("puts") == state
    assert FOLD_CALLS == []  # restored from the snapshot taken at close, not refolded
    journal = store.engine().journal
    seq, blob = next(journal.snapshots())
    assert seq == ns.head()
    assert "puts" in open_snapshot(blob, seq)["user"]
    ns.run(run.run_id).put("more", 1)
    assert [ns.head()] == FOLD_CALLS
    assert ns.projection("puts")["puts"] == 7
    assert_store_sound(ns)


def test_a_failing_fold_makes_only_its_projection_fail(store):
    ns = store.ns
    run = ns.begin_run(agent="a")
    ns.register_projection("fragile", _fold_fragile, 0)
    ns.register_projection("sturdy", _fold_sturdy, 0)
    run.put("k", 1)
    assert ns.projection("fragile") == 2
    boom = run.append_event("boom", {"x": 1})
    assert boom.seq == ns.head()
    with pytest.raises(swarmlog.ProjectionError, match=r"fragile.*boom") as err:
        ns.projection("fragile")
    assert str(boom.seq) in str(err.value)
    run.put("k", 2)
    assert ns.get("k") == 2
    assert ns.projection("sturdy") == ns.head()
    with pytest.raises(swarmlog.ProjectionError):
        ns.projection("fragile")
    ns = store.reopen()
    with pytest.raises(swarmlog.ProjectionError):
        ns.projection("fragile")
    assert ns.projection("sturdy") == ns.head()
    # Registering a fixed fold under a new version rebuilds it from the first event.
    ns.register_projection("fragile", _fold_sturdy, 0, version=2)
    assert ns.projection("fragile") == ns.head()
    assert_store_sound(ns)


def test_register_projection_refuses_what_it_cannot_use(store):
    ns = store.ns
    ns.begin_run(agent="a")
    with unchanged(ns):
        with pytest.raises(swarmlog.ValidationError, match="callable"):
            ns.register_projection("p", "not a function")
        with pytest.raises(swarmlog.ValidationError, match="version"):
            ns.register_projection("p", _fold_sturdy, 0, version=0)
        with pytest.raises(swarmlog.ValidationError, match="initial state"):
            ns.register_projection("p", _fold_sturdy, {1, 2})
        with pytest.raises(swarmlog.ValidationError, match="projection name"):
            ns.register_projection("", _fold_sturdy, 0)
    with pytest.raises(swarmlog.NotFoundError):
        ns.projection("p")
    assert_store_sound(ns)


def test_a_dropped_projection_is_gone_and_stays_gone_after_reopen(store):
    ns = store.ns
    ns.begin_run(agent="a")
    ns.register_projection("count", _fold_sturdy, 0)
    assert ns.projection("count") == 1
    ns.drop_projection("count")
    with pytest.raises(swarmlog.NotFoundError):
        ns.projection("count")
    ns = store.reopen()
    with pytest.raises(swarmlog.NotFoundError):
        ns.projection("count")
    assert_store_sound(ns)


# -- idempotency ---------------------------------------------------------------------------------


def test_a_write_id_seen_before_returns_the_original_result_and_appends_nothing(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a", write_id="begin-r")
    v = run.put("k", {"v": 1}, write_id="put-1")
    ev = run.append_event("note", {"n": 1}, write_id="ev-1", source={"msg": 9})
    tr = run.trace("decision", {"choice": "x"}, event=ev, write_id="tr-1")
    deleted = run.delete("absent", write_id="del-1")
    with run.batch(write_id="batch-1") as b:
        b.put("b1", 1)
        b.append_event("note", {"n": 2})
    run.put("k", {"v": 2})  # the key moved on since
    with unchanged(ns):
        assert ns.begin_run("r", agent="a", write_id="begin-r").run_id == "r"
        assert run.put("k", {"v": 1}, write_id="put-1") == v
        assert run.append_event("note", {"n": 1}, write_id="ev-1", source={"msg": 9}) == ev
        assert run.trace("decision", {"choice": "x"}, event=ev, write_id="tr-1") == tr
        assert run.delete("absent", write_id="del-1") is deleted is False
        with run.batch(write_id="batch-1") as again:
            again.put("b1", 1)
            again.append_event("note", {"n": 2})
        assert again.results == b.results
    assert ns.get("k") == {"v": 2}
    # Caller-given write ids are on their events (the Ray client gives the writes that have
    # none an automatic "~<client>-<n>" id, so that its retries are safe too).
    given = [e.write_id for e in ns.read_events() if e.write_id and not e.write_id.startswith("~")]
    assert given == [
        "begin-r",
        "put-1",
        "ev-1",
        "tr-1",
        "batch-1",
        "batch-1",
    ]
    assert_store_sound(ns)


def test_a_write_id_is_remembered_across_a_reopen(store):
    ns = store.reopen(Settings(snapshot_every_events=2))
    run = ns.begin_run("r", agent="a")
    ev = run.append_event("note", {"n": 1}, write_id="ev-1")
    v = run.put("k", 1, write_id="put-1")
    ns = store.reopen()
    run = ns.run("r")
    with unchanged(ns):
        assert run.append_event("note", {"n": 1}, write_id="ev-1") == ev
        assert run.put("k", 1, write_id="put-1") == v
    assert_store_sound(ns)


def test_a_write_id_reused_for_different_content_is_a_conflict(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    other = ns.begin_run("other", agent="a")
    run.put("k", 1, write_id="w")
    with unchanged(ns):
        for write in (
            lambda: run.put("k", 2, write_id="w"),
            lambda: run.put("k2", 1, write_id="w"),
            lambda: run.put("k", 1, ttl=5, write_id="w"),
            lambda: other.put("k", 1, write_id="w"),
            lambda: run.append_event("note", 1, write_id="w"),
            lambda: run.with_tool("t").put("k", 1, write_id="w"),
        ):
            with pytest.raises(swarmlog.ConflictError, match="write id 'w'") as err:
                write()
            assert err.value.key == "w"
    assert ns.get("k") == 1
    assert_store_sound(ns)


def test_a_refused_write_does_not_use_up_its_write_id(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    v = run.put("k", 1)
    with unchanged(ns), pytest.raises(swarmlog.ConflictError):
        run.put("k", 2, expected_version=v + 100, write_id="w")
    v2 = run.put("k", 2, expected_version=v, write_id="w")
    assert ns.get("k") == 2
    with unchanged(ns):
        assert run.put("k", 2, expected_version=v, write_id="w") == v2
    assert_store_sound(ns)
