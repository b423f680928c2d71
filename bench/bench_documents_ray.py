"""Benchmark: the document reads of ``bench_documents`` through Ray (``swarmlog.connect``).

``find_one`` by ``_id`` and ``find_many`` of 1k out of 100k documents, full scan against a
secondary index, each query one actor call. Wall-clock time (the work happens in the namespace
actor's process, so the driver's CPU time would not see it); the target is the same as in
process: the indexed query at least 10x faster than the scan.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import ray

import swarmlog
from bench.bench_documents import load
from bench.common import Config


def wall(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(config: Config | None = None) -> None:
    config = config or Config()
    n = config.size(100_000, 10_000)
    started_ray = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    root = tempfile.mkdtemp(prefix="swarmlog-bench-docs-ray-")
    try:
        mem = swarmlog.connect(os.path.join(root, "store"))
        ns = mem.namespace("bench")
        run = ns.begin_run(agent="bench")
        ids, load_s = load(run, n)
        print(f"documents through Ray: {n:,}   insert_many (1000 per call): {n / load_s:,.0f} docs/s")
        coll = ns.collection("bench")
        rng = random.Random(1)
        probe = [rng.choice(ids) for _ in range(2000)]
        t0 = time.perf_counter()
        for doc_id in probe:
            coll.find_one(doc_id)
        per = (time.perf_counter() - t0) / len(probe)
        print(f"  find_one by _id: {per * 1e6:,.0f} µs per call (one actor round trip each)")
        query = {"group": 7}
        expected = n // 100
        scan = wall(lambda: coll.find_many(query), config.size(5, 3))
        run.collection("bench").create_index("group")
        indexed = wall(lambda: coll.find_many(query), config.size(20, 5))
        assert len(coll.find_many(query)) == expected
        ratio = scan / indexed
        print(
            f"  find_many({query}) of {expected:,}: scan {scan * 1e3:,.1f} ms, indexed {indexed * 1e3:,.1f} ms"
        )
        print(f"  indexed speed-up: {ratio:.1f}x (target >= 10x) -> {'met' if ratio >= 10 else 'MISSED'}")
        mem.shutdown()
    finally:
        if started_ray:
            ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(Config(quick="--quick" in sys.argv))
