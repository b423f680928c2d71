"""Replay throughput against Ray workers (issue 5): ``mem.replay_many`` with 1 and 2 workers.

Each task re-folds its runs on its own read-only replica of the namespace, so the work spreads
over workers instead of funnelling through the namespace actor. Printed: runs/s and events/s per
worker count, and the speed-up of 2 workers over 1 (on this 2-core machine the ceiling is 2x).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time

import ray

import swarmlog
from bench.common import Config


def main(config: Config | None = None) -> None:
    quick = config is not None and config.quick
    runs, events_per_run = (8, 500) if quick else (24, 2500)
    started_ray = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    tmp = tempfile.mkdtemp(prefix="swarmlog-bench-replay-")
    try:
        mem = swarmlog.connect(tmp)
        ns = mem.namespace("sim")
        t = time.perf_counter()
        for r in range(runs):
            run = ns.begin_run(agent=f"sim-{r}")
            for chunk in range(0, events_per_run, 250):
                with run.batch() as b:
                    for i in range(chunk, min(chunk + 250, events_per_run)):
                        b.put(f"sim-{r}/k{i % 50}", {"step": i, "r": r})
            run.end()
        total_events = ns.head()
        print(
            f"bench_replay_scaling: {runs} runs, {total_events:,} events (written in {time.perf_counter() - t:.1f} s)"
        )
        rates = {}
        for workers in (1, 2):
            mem.replay_many("sim", workers=workers, progress=False)  # warm the workers
            t = time.perf_counter()
            reports = mem.replay_many("sim", workers=workers, progress=False)
            seconds = time.perf_counter() - t
            assert all(r.ok for r in reports), [r for r in reports if not r.ok][:1]
            folded = sum(r.events_folded for r in reports)
            rates[workers] = folded / seconds
            print(
                f"  {workers} worker(s): {runs / seconds:,.1f} runs/s, {folded / seconds:,.0f} events/s re-folded"
            )
        print(f"  speed-up with 2 workers: {rates[2] / rates[1]:.2f}x (ceiling on 2 cores: 2x)")
        mem.shutdown()
    finally:
        if started_ray:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Config(quick="--quick" in sys.argv))
