"""Benchmark: document reads in process — ``find_one`` by ``_id`` and ``find_many`` of 1k out of
100k documents through a full scan and through a secondary index.

Run with ``python -m bench.bench_documents`` (or through ``make bench``). Every figure is
measured in this run and printed; the indexed query should be at least 10x faster than the
scan. Times are CPU seconds of this process (one thread). Options: ``--docs N`` (default 100000), ``--path DIR`` (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

import swarmlog
from bench.common import Config

GROUPS = 100  # each group value selects 1% of the documents: 1k of 100k


def timed(fn: Callable[[], object], *, min_time_s: float = 1.0, min_runs: int = 3) -> tuple[float, object]:
    """Median CPU seconds (of this process) per call of ``fn``, over at least ``min_runs`` calls
    and ``min_time_s``: CPU time, so that other processes on a shared machine do not count."""
    times = []
    result = None
    start = time.process_time()
    while len(times) < min_runs or time.process_time() - start < min_time_s:
        t0 = time.process_time()
        result = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), result


def load(run: swarmlog.Run, n: int) -> tuple[list, float]:
    docs = run.collection("bench")
    rng = random.Random(42)
    ids: list = []
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        batch = [
            {
                "group": i % GROUPS,
                "n": i,
                "kind": rng.choice(["fact", "plan", "note", "obs"]),
                "text": f"document {i} about topic {i % 977}",
                "tags": [f"t{i % 7}", f"t{i % 11}"],
                "meta": {"score": rng.random(), "agent": f"agent-{i % 16}"},
            }
            for i in range(start, min(n, start + 1000))
        ]
        ids.extend(docs.insert_many(batch))
    return ids, time.perf_counter() - t0


def main(argv: list[str] | Config | None = None) -> dict:
    if isinstance(argv, Config):  # called by ``python -m bench``: sizes from its config
        argv = ["--docs", "10000"] if argv.quick else []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--path", default=None)
    args, _ = parser.parse_known_args(argv)  # tolerate a runner's own arguments
    n = args.docs
    root = args.path or tempfile.mkdtemp(prefix="swarmlog-bench-docs-")
    results: dict = {"docs": n}
    try:
        mem = swarmlog.open_local(os.path.join(root, "store"))
        ns = mem.namespace("bench")
        run = ns.begin_run(agent="bench")
        ids, load_s = load(run, n)
        results["insert_docs_per_s"] = n / load_s
        print(f"documents: {n:,}   insert_many (1000 per call): {n / load_s:,.0f} docs/s")
        coll = ns.collection("bench")

        rng = random.Random(1)
        probe = [rng.choice(ids) for _ in range(20_000)]
        t0 = time.process_time()
        for doc_id in probe:
            coll.find_one(doc_id)
        per = (time.process_time() - t0) / len(probe)
        results["find_one_us"] = per * 1e6
        print(f"find_one by _id:            {per * 1e6:8.1f} us/call   {1 / per:10,.0f} calls/s")

        queries = {
            "equality": {"group": 7},
            "range": {"n": {"$gte": n // 2, "$lt": n // 2 + n // GROUPS}},
        }
        for label, flt in queries.items():
            scan_s, found = timed(lambda flt=flt: coll.find_many(flt))
            assert coll.explain(flt)["strategy"] == "scan"
            results[f"{label}_scan_ms"] = scan_s * 1e3
            results[f"{label}_matches"] = len(found)
            print(f"find_many {label:<9} {len(found):,} of {n:,}, scan:  {scan_s * 1e3:8.2f} ms/query")
        run.collection("bench").create_index("group")
        run.collection("bench").create_index("n")
        for label, flt in queries.items():
            plan = coll.explain(flt)
            assert plan["strategy"] == "index", plan
            idx_s, found = timed(lambda flt=flt: coll.find_many(flt))
            assert len(found) == results[f"{label}_matches"]
            ratio = results[f"{label}_scan_ms"] / (idx_s * 1e3)
            results[f"{label}_index_ms"] = idx_s * 1e3
            results[f"{label}_speedup"] = ratio
            print(
                f"find_many {label:<9} {len(found):,} of {n:,}, index: {idx_s * 1e3:8.2f} ms/query"
                f"   ({plan['index']!r}) -> {ratio:.1f}x faster than the scan (target >= 10x)"
            )
        count_s, _ = timed(lambda: coll.count({"group": 7}))
        results["count_index_ms"] = count_s * 1e3
        print(f"count {{'group': 7}} with the index: {count_s * 1e3:.2f} ms")
        mem.close()
    finally:
        if args.path is None:
            shutil.rmtree(root, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
