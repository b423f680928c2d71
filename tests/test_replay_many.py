"""mem.replay_many: replays fanned out as Ray tasks (read-only replicas), in process one by one."""

from __future__ import annotations

import swarmlog
from tests.agents import Tools, triage_agent
from tests.helpers import assert_store_sound

RUNS = 6


def _record_runs(ns) -> list[str]:
    ids = []
    for i in range(RUNS):
        run = ns.begin_run(run_id=f"sim-{i}", agent="triager")
        triage_agent(Tools())(run)
        run.end(status="ok")
        ids.append(run.run_id)
    return ids


def test_replay_many_refolds_every_run_in_ray_tasks_like_one_by_one(ray_mem):
    ns = ray_mem.namespace("sims")
    ids = _record_runs(ns)
    head, digest = ns.head(), ns.digest()

    reports = ray_mem.replay_many("sims", workers=2, runs_per_task=2, progress=False)

    assert [r.run_id for r in reports] == ids
    singles = [ns.replay(run_id) for run_id in ids]
    assert reports == singles  # the same checks, the same digests, from replicas
    assert all(r.ok and r.mode == "fold" and r.events_checked > 0 for r in reports)
    assert (ns.head(), ns.digest()) == (head, digest)  # nothing written
    assert_store_sound(ns)


def test_replay_many_with_an_agent_reports_the_diverging_run_and_replays_the_rest(ray_mem):
    ns = ray_mem.namespace("agents")
    ids = _record_runs(ns)
    reports = ray_mem.replay_many("agents", ids, agent=triage_agent(Tools()), progress=False)
    assert all(r.ok and r.mode == "agent" for r in reports)
    assert sum(r.calls_replayed for r in reports) > 0

    changed = ray_mem.replay_many(
        "agents", ids[:2], agent=triage_agent(Tools(rank_bonus=100)), progress=False
    )
    assert all(isinstance(item, swarmlog.NonDeterminismError) for item in changed)
    assert all(item.event_type == "kv.put" for item in changed)
    assert_store_sound(ns)


def test_replay_many_in_process_replays_one_run_after_another(ns, mem):
    ids = _record_runs(ns)
    reports = mem.replay_many("acme/support", progress=False)
    assert [r.run_id for r in reports] == ids and all(r.ok for r in reports)
    assert_store_sound(ns)
