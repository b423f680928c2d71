"""Deterministic replay: an agent re-run against its record gives the same events, or says where not."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

import swarmlog
from tests.agents import Tools, triage_agent
from tests.helpers import assert_store_sound


def _record(ns, tools, run_id="triage-1", **kw):
    run = ns.begin_run(run_id=run_id, agent="triager")
    choice = triage_agent(tools, **kw)(run)
    run.end(status="ok", summary={"choice": choice})
    return run


def test_a_replayed_agent_gives_the_same_events_traces_and_state_without_calling_a_tool(ns):
    tools = Tools()
    run = _record(ns, tools)
    recorded_calls = list(tools.calls)
    history = ns.read_events(run_id=run.run_id)
    traces = ns.traces(run.run_id)
    head, digest = ns.head(), ns.digest()
    tools.calls.clear()

    report = ns.replay(run.run_id, triage_agent(tools))

    assert tools.calls == []
    assert recorded_calls  # the recording did call them
    assert report.ok and report.mode == "agent"
    assert report.events_checked == len(history)
    assert report.calls_replayed == sum(e.type.startswith("call.") for e in history)
    skipped = ("run.begin", "run.end", "trace.tool_call")  # begin/end are outside the agent
    user_writes = [e for e in history if not e.type.startswith("call.") and e.type not in skipped]
    assert report.writes_checked == len(user_writes)
    assert report.reads == 1  # the agent's one get
    assert report.state_digest == ns.at(history[-1].seq).digest()
    # Nothing was written: the same events, traces and state, byte for byte.
    assert ns.head() == head
    assert ns.digest() == digest
    assert ns.read_events(run_id=run.run_id) == history
    assert ns.traces(run.run_id) == traces
    assert_store_sound(ns)


def test_refolding_a_recorded_run_checks_every_transition_and_changes_nothing(ns):
    other = ns.begin_run(run_id="other", agent="critic")
    other.put("triage/hits", "from another run")
    run = _record(ns, Tools())
    other.put("late", 1)
    head, digest = ns.head(), ns.digest()

    report = ns.replay(run.run_id)

    history = ns.read_events(run_id=run.run_id)
    assert report.ok and report.mode == "fold", report
    assert report.events_checked == len(history)
    assert report.events_folded == history[-1].seq - history[0].seq + 1
    assert report.state_digest == ns.at(history[-1].seq).digest()
    assert (ns.head(), ns.digest()) == (head, digest)
    assert_store_sound(ns)


def test_changing_a_helpers_code_raises_at_the_first_write_that_differs(ns):
    run = _record(ns, Tools())
    changed = Tools(rank_bonus=100)
    first_put = next(e for e in ns.read_events(run_id=run.run_id) if e.type == "kv.put")

    with pytest.raises(swarmlog.NonDeterminismError) as caught:
        ns.replay(run.run_id, triage_agent(changed))

    err = caught.value
    assert (err.seq, err.event_type) == (first_put.seq, "kv.put")
    assert err.expected["payload"]["value"] == first_put.payload["value"]
    assert err.got["payload"]["value"] == changed.rank(Tools().search("refund policy"))
    assert f"event {first_put.seq} (kv.put)" in str(err)
    assert changed.calls == []
    assert_store_sound(ns)


def test_calling_a_tool_with_other_arguments_raises_at_that_call(ns):
    run = _record(ns, Tools())
    model_call = next(
        e for e in ns.read_events(run_id=run.run_id) if e.type == "call.tool" and e.payload["name"] == "model"
    )

    class LouderModel(Tools):
        def model(self, prompt, temperature=0.0):
            return super().model(prompt.upper(), temperature)

    tools = LouderModel()

    def agent(run):  # the same agent, but the model tool is called with a changed prompt
        hits = run.call("search", tools.search, "refund policy", limit=3)
        run.random(), run.now(), run.uuid()
        ranked = tools.rank(hits)
        run.put("triage/hits", ranked)
        try:
            run.call("quota", tools.quota, "alice")
        except Exception as exc:
            run.append_event("quota_hit", {"message": str(exc)})
        run.call("model", tools.model, ranked[0].upper(), temperature=0.2)

    with pytest.raises(swarmlog.NonDeterminismError) as caught:
        ns.replay(run.run_id, agent)
    assert (caught.value.seq, caught.value.event_type) == (model_call.seq, "call.tool")
    assert caught.value.got["args"] == [model_call.payload["args"][0].upper()]
    assert tools.calls == []
    assert_store_sound(ns)


def test_a_recorded_tool_error_is_raised_again_as_the_same_class(ns):
    def lookup(key):
        raise KeyError(key)

    class Unimportable(Exception):
        pass

    def broken():
        raise Unimportable("gone")

    def agent(run):
        caught = []
        for name, fn in (("lookup", lambda: lookup("k")), ("broken", broken)):
            try:
                run.call(name, fn)
            except Exception as exc:
                caught.append(exc)
        return caught

    run = ns.begin_run(agent="a")
    recorded = agent(run)
    assert [type(e) for e in recorded] == [KeyError, Unimportable]
    replayed = []
    ns.replay(run.run_id, lambda r: replayed.extend(agent(r)))
    assert type(replayed[0]) is KeyError and replayed[0].args == ("k",)
    # A class defined inside a function is not reachable by its name: RecordedError stands in.
    assert isinstance(replayed[1], swarmlog.RecordedError)
    assert replayed[1].type_name.endswith("Unimportable") and replayed[1].message == "gone"
    assert_store_sound(ns)


def test_an_agent_that_does_more_or_less_than_recorded_diverges(ns):
    run = ns.begin_run(agent="a")
    run.put("a", 1)
    run.put("b", 2)
    run.end()

    def less(r):
        r.put("a", 1)

    with pytest.raises(swarmlog.NonDeterminismError, match="2 more event") as caught:
        ns.replay(run.run_id, less)
    assert caught.value.event_type == "kv.put"

    def more(r):
        r.put("a", 1)
        r.put("b", 2)
        r.end()
        r.put("c", 3)

    with pytest.raises(swarmlog.NonDeterminismError, match="not recorded") as caught:
        ns.replay(run.run_id, more)
    assert caught.value.seq is None

    def ends_outside(r):  # run.end written after the agent returned is accepted
        r.put("a", 1)
        r.put("b", 2)

    assert ns.replay(run.run_id, ends_outside).ok
    assert_store_sound(ns)


def test_a_divergence_the_agent_swallows_is_raised_when_it_returns(ns):
    run = ns.begin_run(agent="a")
    run.put("a", 1)

    def swallowing(r):
        try:
            r.put("a", 2)
        except Exception:
            pass

    with pytest.raises(swarmlog.NonDeterminismError, match="differs in payload"):
        ns.replay(run.run_id, swallowing)
    assert_store_sound(ns)


def test_reads_answer_what_the_run_saw_even_after_the_namespace_moved_on(ns):
    other = ns.begin_run(agent="writer")
    other.put("config/mode", "careful")
    run = ns.begin_run(agent="reader")

    def agent(r):
        mode = r.get("config/mode")
        r.put("result", f"acted {mode}")
        assert r.namespace.get("config/mode") == mode
        assert r.get("result") == f"acted {mode}"
        assert [e.type for e in r.read_events()][-1] == "kv.put"

    agent(run)
    other.put("config/mode", "reckless")
    other.delete("config/mode")
    report = ns.replay(run.run_id, agent)
    assert report.ok and report.reads == 4
    assert_store_sound(ns)


def test_arguments_or_outputs_msgpack_cannot_store_are_refused_before_anything_is_written(ns):
    run = ns.begin_run(agent="a")
    called = []
    with pytest.raises(swarmlog.ValidationError, match="arguments of call 'tool'"):
        run.call("tool", called.append, object())
    assert called == []
    with pytest.raises(swarmlog.ValidationError, match="output of call 'maker'"):
        run.call("maker", lambda: {1, 2})
    assert ns.head() == 1
    assert_store_sound(ns)


def test_a_fork_replays_its_parents_part_then_its_own(ns):
    tools = Tools()
    run = _record(ns, tools)
    history = ns.read_events(run_id=run.run_id)
    cut = next(e.seq for e in history if e.type == "quota_hit")
    fork = ns.fork(run.run_id, at=cut, new_run_id="fork")
    summary = fork.call("model", tools.model, "refund policy/doc-2", temperature=0.2)
    fork.append_event("summary", summary)

    def agent(r):
        hits = r.call("search", tools.search, "refund policy", limit=3)
        r.random(), r.now(), r.uuid()
        ranked = tools.rank(hits)
        r.put("triage/hits", ranked)
        try:
            r.call("quota", tools.quota, "alice")
        except Exception as exc:
            r.append_event("quota_hit", {"message": str(exc)})
        assert r.run_id == "fork"  # from here on the record is the fork's own
        r.append_event("summary", r.call("model", tools.model, ranked[0], temperature=0.2))

    tools.calls.clear()
    report = ns.replay("fork", agent)
    assert report.ok and tools.calls == []
    assert report.events_checked == len(ns.read_events(run_id="fork"))
    assert ns.replay("fork").ok
    assert_store_sound(ns)


def test_a_fork_continued_with_a_changed_decision_diverges_from_its_parent_at_the_fork_point(ns):
    tools = Tools()
    parent = _record(ns, tools)
    history = ns.read_events(run_id=parent.run_id)
    decision_at = next(
        i for i, e in enumerate(history) if e.type == "kv.put" and e.payload["key"] == "triage/decision"
    )
    at = history[decision_at - 1].seq  # fork right before the decision is written
    fork = ns.fork(parent.run_id, at=at, new_run_id="what-if")
    tools.calls.clear()

    report = ns.replay("what-if", triage_agent(tools, decide=lambda summary, roll: "escalate"), resume=True)

    assert report.resumed_at == fork.info().began_seq  # the record ends with the fork's run.begin
    assert tools.calls == []  # the decision came after every recorded call
    diff = ns.diff(parent.run_id, "what-if")
    assert not diff.identical
    assert diff.first_divergence.index == decision_at
    assert diff.first_divergence.a.seq == history[decision_at].seq
    assert diff.first_divergence.b.run_id == "what-if"
    assert diff.first_divergence.b.payload["value"]["choice"] == "escalate"
    assert [r.op for r in diff.rows[:decision_at]] == ["equal"] * decision_at
    changed = {k.key: (k.a_value, k.b_value) for k in diff.keys}
    assert changed["triage/decision"][0]["choice"] == "refund"
    assert changed["triage/decision"][1]["choice"] == "escalate"
    assert ns.get("triage/decision")["choice"] == "refund"  # the main line did not move
    assert fork.get("triage/decision")["choice"] == "escalate"
    assert ns.diff(parent.run_id, parent.run_id).identical
    assert_store_sound(ns)


def test_replay_after_a_restart_from_a_snapshot_gives_the_same_result(store_path):
    settings = swarmlog.Settings(snapshot_every_events=5)
    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    tools = Tools()
    run = _record(ns, tools)
    fork = ns.fork(run.run_id, at=ns.read_events(run_id=run.run_id)[6].seq, new_run_id="fork")
    fork.put("triage/decision", "manual")
    before = (ns.replay(run.run_id), ns.replay(run.run_id, triage_agent(tools)), ns.replay("fork"))
    assert before[0].snapshots_compared >= 1
    mem.close()

    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    after = (ns.replay(run.run_id), ns.replay(run.run_id, triage_agent(tools)), ns.replay("fork"))
    # Closing wrote one more snapshot (and dropped the oldest): fewer or more may fall in range.
    assert [msgspec.structs.replace(r, snapshots_compared=0) for r in after] == [
        msgspec.structs.replace(r, snapshots_compared=0) for r in before
    ]
    assert after[0].snapshots_compared >= 1
    assert all(r.ok for r in after)
    assert [name for name, _ in tools.calls] == ["search", "quota", "model"]  # only when recorded
    assert_store_sound(ns)
    mem.close()


def test_refolding_finds_a_transition_the_live_state_got_wrong(mem, ns):
    run = ns.begin_run(agent="a")
    run.put("k", 1)
    engine = mem._backend.engine(ns.name)
    engine.state.kv.entries.pop("k")  # a projection bug: the live state lost the key
    engine.state.kv.keys.remove("k")
    bad = run.put("k", 2)  # decided against the wrong state: it records prev=0
    run.put("j", 3)

    report = ns.replay(run.run_id)

    assert not report.ok
    assert (report.first_mismatch, report.mismatch_type) == (bad, "kv.put")
    assert "version 0" in report.reason and "version 2" in report.reason
    # The put healed the key, so the state now equals a fresh fold: only the recorded
    # transition still shows the bug, which is what replaying a run is for.
    assert ns.verify(projections=True).ok
    assert_store_sound(ns)


@pytest.mark.asyncio
async def test_an_async_agent_with_async_tools_is_recorded_and_replayed(ns):
    fetched = []

    async def fetch(url):
        await asyncio.sleep(0)
        fetched.append(url)
        return {"url": url, "status": 200}

    async def fail(url):
        await asyncio.sleep(0)
        raise TimeoutError(url)

    async def agent(run):
        page = await run.call("fetch", fetch, "https://example.test/a")
        try:
            await run.call("fail", fail, "https://example.test/b")
        except TimeoutError:
            run.append_event("timed_out", {"url": "b"})
        run.put("page", page)
        return page

    run = ns.begin_run(agent="async-agent")
    assert (await agent(run))["status"] == 200
    assert fetched == ["https://example.test/a"]

    report = await ns.replay(run.run_id, agent)

    assert report.ok and report.calls_replayed == 2 and report.writes_checked == 2
    assert fetched == ["https://example.test/a"]
    history = ns.read_events(run_id=run.run_id)
    assert [e.payload.get("async") for e in history if e.type == "call.tool"] == [True, True]
    assert_store_sound(ns)


def test_an_agent_that_fails_after_diverging_reports_the_divergence(ns):
    run = ns.begin_run(agent="a")
    run.put("limit", 3)

    def agent(r):
        try:
            r.put("limit", 4)  # diverges; the agent swallows the error …
        except swarmlog.NonDeterminismError:
            pass
        raise RuntimeError("… and then fails on something the record does not explain")

    with pytest.raises(swarmlog.NonDeterminismError) as caught:
        ns.replay(run.run_id, agent)
    assert caught.value.event_type == "kv.put"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert_store_sound(ns)
