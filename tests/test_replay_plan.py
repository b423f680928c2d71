"""How replay_many splits runs over workers, and that the planned fan-out reports like ns.replay."""

from __future__ import annotations

import itertools

import swarmlog
from swarmlog.replay_plan import TASK_COST, RunSpan, plan_stretches, sweep_cost
from tests.agents import Tools, triage_agent
from tests.helpers import assert_store_sound


def _spans(count: int, size: int) -> list[RunSpan]:
    return [RunSpan(f"r{i}", i * size + 1, (i + 1) * size) for i in range(count)]


def _flat(groups: list[list[str]]) -> list[str]:
    return list(itertools.chain.from_iterable(groups))


def test_each_run_goes_to_one_worker_in_the_order_the_runs_began():
    spans = _spans(10, 1000)
    shuffled = spans[5:] + spans[:5]
    for workers in (1, 2, 3, 4):
        groups = plan_stretches(shuffled, [], workers)
        assert _flat(groups) == [s.run_id for s in spans]
        assert 1 <= len(groups) <= workers and all(groups)


def test_stretches_are_cut_at_a_snapshot_when_one_splits_the_work_evenly():
    spans = _spans(8, 10_000)
    groups = plan_stretches(spans, [40_000], 2)
    assert groups == [[s.run_id for s in spans[:4]], [s.run_id for s in spans[4:]]]


def test_without_snapshots_the_later_stretch_is_shorter_by_the_prefix_it_must_fold():
    spans = _spans(40, 10_000)
    first, second = plan_stretches(spans, [], 2)
    assert len(first) > len(second)
    costs = [TASK_COST + sweep_cost([s for s in spans if s.run_id in set(g)], []) for g in (first, second)]
    # Balanced: moving one run across the cut would make the larger side larger still.
    moved = [first[:-1], [first[-1], *second]]
    worse = [TASK_COST + sweep_cost([s for s in spans if s.run_id in set(g)], []) for g in moved]
    assert max(worse) >= max(costs)


def test_planned_replay_many_reports_forks_unknown_and_repeated_runs_like_replay(ray_mem):
    ns = ray_mem.namespace("plan")
    ids = []
    for i in range(5):
        run = ns.begin_run(run_id=f"p-{i}", agent="triager")
        triage_agent(Tools())(run)
        run.end(status="ok")
        ids.append(run.run_id)
    ns.snapshot()
    a, b = ns.begin_run(run_id="p-a", agent="x"), ns.begin_run(run_id="p-b", agent="y")
    for i in range(6):  # two runs whose events interleave: the sweep cannot carry one to the other
        (a if i % 2 else b).put(f"shared/{i % 3}", i)
    fork = ns.fork("p-2", at=ns.run("p-2").info().last_seq - 1, new_run_id="p-2b")
    fork.append_event("note", {"branch": True})
    asked = ["p-4", "p-2b", "p-b", *ids, "p-a", "missing", "p-1"]

    reports = ray_mem.replay_many("plan", asked, workers=2, progress=False)

    assert [getattr(r, "run_id", None) for r in reports[:-2]] == asked[:-2]
    assert reports[:-2] == [ns.replay(rid) for rid in asked[:-2]]
    assert isinstance(reports[-2], swarmlog.NotFoundError) and reports[-1] == ns.replay("p-1")
    assert all(r.ok for r in reports if not isinstance(r, Exception))
    assert_store_sound(ns)
