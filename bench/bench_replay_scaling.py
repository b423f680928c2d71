"""Replay throughput against Ray workers (issue 5): ``mem.replay_many`` with 1 and 2 workers.

Each task re-folds its runs on its own read-only replica of the namespace, so the work spreads
over workers instead of funnelling through the namespace actor. A re-fold is a chain, so a
worker can only start from a state it has (a stored snapshot, or nothing): the planned split
(``swarmlog.replay_plan``) gives each worker one stretch of runs, balanced counting the prefix
each folds from its nearest snapshot. For comparison the same run also measures the split the
first version used (four tasks per worker, each folding its own prefix) and one sweep in this
process without Ray (the work itself, no tasks).

Printed: events/s re-folded per worker count and split (medians of ``repeat`` runs, the worker
counts taking turns), the speed-up of 2 workers over 1 (on this 2-core machine at most 2x), the
snapshots the plan could use, and the load average while measuring (other jobs share the host).
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
import tempfile
import time

import ray

import swarmlog
from bench.common import Config
from swarmlog.replay_many import run_rows
from swarmlog.replay_plan import RunSpan, plan_stretches


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def _write(ns, runs: int, events_per_run: int) -> None:
    for r in range(runs):
        run = ns.begin_run(agent=f"sim-{r}")
        for chunk in range(0, events_per_run, 250):
            with run.batch() as b:
                for i in range(chunk, min(chunk + 250, events_per_run)):
                    b.put(f"sim-{r}/k{i % 50}", {"step": i, "r": r})
        run.end()


def _in_process(root: str, settings) -> tuple[float, int]:
    """Seconds for one sweep over every run in this process (no Ray), and events re-folded."""
    from projections.engine import NamespaceEngine
    from projections.refold import refold_runs
    from swarmlog.local import namespace_dir

    engine = NamespaceEngine(namespace_dir(root, "sim"), settings, name="sim", read_only=True)
    try:
        ids = list(engine.state.runs.runs)
        t = time.perf_counter()
        reports = refold_runs(engine, ids)
        return time.perf_counter() - t, sum(r.events_folded for r in reports)
    finally:
        engine.close()


def _cpu_bound(root: str, settings, groups: list[list[str]], rows, workers: int) -> tuple[float, float]:
    """Tasks' work measured in this process's CPU time (immune to other jobs' load): the
    groups' CPU seconds summed, and the makespan when ``workers`` cores take them in order."""
    from swarmlog.replay_many import replay_stretch

    costs = []
    for group in groups:
        c = time.thread_time()
        for _ in replay_stretch(root, "sim", group, [], settings, rows):
            pass
        costs.append(time.thread_time() - c)
    ends = [0.0] * workers
    for cost in costs:  # list scheduling, as the driver hands out tasks
        i = ends.index(min(ends))
        ends[i] += cost
    return sum(costs), max(ends)


def main(config: Config | None = None) -> None:
    config = config or Config()
    runs, events_per_run = (8, 500) if config.quick else (48, 2500)
    started_ray = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    tmp = tempfile.mkdtemp(prefix="swarmlog-bench-replay-")
    try:
        mem = swarmlog.connect(tmp)
        ns = mem.namespace("sim")
        t = time.perf_counter()
        _write(ns, runs, events_per_run)
        total_events = ns.head()
        infos = ns.runs()
        snapshots = ray.get(mem._backend.actor("sim").snapshot_seqs.remote())
        print(
            f"bench_replay_scaling: {runs} runs one after another, {total_events:,} events (written in "
            f"{time.perf_counter() - t:.1f} s); stored snapshots at {snapshots or 'none'}"
        )
        spans = [RunSpan(i.run_id, i.began_seq, i.last_seq) for i in infos]
        plan = plan_stretches(spans, snapshots, 2)
        print(f"  plan for 2 workers: stretches of {', '.join(str(len(g)) for g in plan)} runs")

        splits = {
            "planned (one stretch per worker)": lambda w: None,
            "first version (4 tasks per worker)": lambda w: math.ceil(runs / (w * 4)),
        }
        rates: dict[tuple[str, int], list[float]] = {(s, w): [] for s in splits for w in (1, 2)}
        for per_task in splits.values():  # warm the workers (imports, first open)
            for workers in (1, 2):
                mem.replay_many("sim", workers=workers, runs_per_task=per_task(workers), progress=False)
        loads = [_load()]
        for k in range(config.repeat):
            order = list(rates) if k % 2 == 0 else list(reversed(rates))
            for split, workers in order:
                t = time.perf_counter()
                reports = mem.replay_many(
                    "sim", workers=workers, runs_per_task=splits[split](workers), progress=False
                )
                seconds = time.perf_counter() - t
                assert all(r.ok for r in reports), [r for r in reports if not r.ok][:1]
                rates[(split, workers)].append(sum(r.events_folded for r in reports) / seconds)
            loads.append(_load())
        settings = mem._backend.settings
        local_s, local_events = _in_process(tmp, settings)
        print(f"  load average (1, 5, 15 min) during the runs: {'; '.join(loads)}")
        print(f"  in this process, one sweep, no Ray: {local_events / local_s:>10,.0f} events/s re-folded")
        # The same tasks run one after another here, timed in CPU seconds: what the split
        # would give with a free core per worker, whatever else runs on the machine.
        ids = [i.run_id for i in sorted(infos, key=lambda i: i.began_seq)]
        rows = run_rows(infos)
        one, _ = _cpu_bound(tmp, settings, [ids], rows, 1)
        total, span = _cpu_bound(tmp, settings, plan, rows, 2)
        print(
            f"  CPU time of the tasks, planned: 1 worker {one:.2f} s; 2 workers {total:.2f} s in all, "
            f"{span:.2f} s on the busier core -> at most {one / span:.2f}x with 2 free cores"
        )
        size = math.ceil(runs / 8)
        old = [ids[i : i + size] for i in range(0, len(ids), size)]
        old_one, _ = _cpu_bound(
            tmp, settings, [ids[i : i + 2 * size] for i in range(0, len(ids), 2 * size)], None, 1
        )
        old_total, old_span = _cpu_bound(tmp, settings, old, None, 2)
        print(
            f"  CPU time of the tasks, first version: 1 worker {old_one:.2f} s; 2 workers {old_total:.2f} s "
            f"in all, {old_span:.2f} s on the busier core -> at most {old_one / old_span:.2f}x"
        )
        for split in splits:
            for workers in (1, 2):
                values = rates[(split, workers)]
                runs_text = ", ".join(f"{v:,.0f}" for v in values)
                print(
                    f"  {split}, {workers} worker(s): {statistics.median(values):>10,.0f} events/s"
                    f"   runs: {runs_text}"
                )
            one, two = (statistics.median(rates[(split, w)]) for w in (1, 2))
            print(f"    speed-up with 2 workers: {two / one:.2f}x (ceiling on 2 cores: 2x)")
        mem.shutdown()
    finally:
        if started_ray:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Config(quick="--quick" in sys.argv))
