"""Replay, fork, diff and time travel through the Ray clients (``swarmlog.connect`` and
``connect_async``): the same handle code, every step a call to the namespace actor."""

from __future__ import annotations

import asyncio

import pytest

import swarmlog
from tests.agents import Tools, triage_agent
from tests.helpers import assert_store_sound


def test_record_replay_fork_and_diff_through_the_sync_ray_client(ray_mem):
    ns = ray_mem.namespace("ray/replay")
    tools = Tools()
    run = ns.begin_run(run_id="r1", agent="triager")
    triage_agent(tools)(run)
    run.end()
    history = ns.read_events(run_id="r1")
    assert all(e.write_id is not None for e in history)  # the Ray client gave every write one
    tools.calls.clear()

    report = ns.replay("r1", triage_agent(tools))
    assert report.ok and report.events_checked == len(history) and tools.calls == []
    assert ns.replay("r1").ok
    with pytest.raises(swarmlog.NonDeterminismError):
        ns.replay("r1", triage_agent(Tools(rank_bonus=100)))

    at = next(e.seq for e in history if e.type == "quota_hit")
    fork = ns.fork("r1", at=at, new_run_id="f1")
    assert isinstance(fork, swarmlog.BranchRun)
    fork.put("triage/decision", {"choice": "escalate"})
    assert fork.get("triage/decision") == {"choice": "escalate"}
    assert ns.get("triage/decision")["choice"] != "escalate"
    assert ns.at(at, run="f1").get("triage/decision") is None
    diff = ns.diff("r1", "f1")
    assert diff.first_divergence.index == [e.seq for e in history].index(at) + 1
    assert ns.replay("f1").ok
    assert_store_sound(ns)


def test_an_async_agent_replays_through_the_async_ray_client(ray_session, store_path):
    fetched = []

    async def fetch(url):
        await asyncio.sleep(0)
        fetched.append(url)
        return {"url": url, "status": 200}

    def make_agent(decision):
        async def agent(run):
            page = await run.call("fetch", fetch, "https://example.test/a")
            roll = await run.random()
            v = await run.put("page", page)
            await run.trace("decision", {"choice": decision, "confidence": roll}, event=v)
            with pytest.raises(swarmlog.ConflictError):
                await run.put("page", "stale", expected_version=1)
            return await run.get("page")

        return agent

    async def scenario():
        amem = await swarmlog.connect_async(store_path)
        try:
            ns = amem.namespace("ray/async-replay")
            run = await ns.begin_run(run_id="a1", agent="async-agent")
            await make_agent("keep")(run)
            recorded = len(fetched)
            report = await ns.replay("a1", make_agent("keep"))
            diverged = None
            try:
                await ns.replay("a1", make_agent("change"))
            except swarmlog.NonDeterminismError as exc:
                diverged = exc
            fold = await ns.replay("a1")
            fork = await ns.fork("a1", at=(await ns.head()) - 1, new_run_id="a2")
            await fork.put("page", {"forked": True})
            views = (await ns.get("page"), await fork.get("page"))
            return recorded, report, diverged, fold, views, await ns.read_events(run_id="a1")
        finally:
            await amem.shutdown()

    recorded, report, diverged, fold, views, history = asyncio.run(scenario())
    assert recorded == 1 and fetched == ["https://example.test/a"]
    assert report.ok and report.calls_replayed == 2 and report.events_checked == len(history)
    trace = next(e for e in history if e.type == "trace.decision")
    assert (diverged.seq, diverged.event_type) == (trace.seq, "trace.decision")
    assert fold.ok
    assert views == ({"url": "https://example.test/a", "status": 200}, {"forked": True})
    local = swarmlog.open_local(store_path)  # the actors are stopped: check the store in process
    assert_store_sound(local.namespace("ray/async-replay"))
    local.close()
