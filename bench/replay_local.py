"""Replay throughput in process (no Ray): ``python -m bench.replay_local``.

Figures are printed, never asserted. Measures, on one recorded run of ``STEPS`` agent steps
(a tool call, a random number, a put and a trace per step):

* recording it live (the peer every replay figure is compared with);
* ``ns.replay(run_id)``: re-fold and check every transition (events/s);
* ``ns.replay(run_id, agent)``: the agent re-run against its record (steps/s);
* ``ns.diff`` of the run with itself (events/s);
* reads of a fork (branch state) against main-line reads of the same keys.

The scaling benchmark over Ray workers (``mem.replay_many``) comes with the Ray runtime.
"""

from __future__ import annotations

import tempfile
import time

import swarmlog

STEPS = 5_000
KEYS = 500


def _tool(i: int) -> dict:
    return {"hit": i, "score": (i * 7919) % 1000}


def agent(run) -> None:
    for i in range(STEPS):
        hit = run.call("search", _tool, i)
        r = run.random()
        v = run.put(f"k/{i % KEYS}", {"hit": hit, "r": r})
        run.trace("decision", {"choice": hit["score"]}, event=v)


def main() -> None:
    with tempfile.TemporaryDirectory() as path:
        mem = swarmlog.open_local(path)
        ns = mem.namespace("bench/replay")
        run = ns.begin_run(run_id="r", agent="bench")
        t0 = time.perf_counter()
        agent(run)
        record_s = time.perf_counter() - t0
        run.end()
        events = ns.head()
        print(f"recorded {STEPS} steps ({events} events) in {record_s:.2f}s: {STEPS / record_s:,.0f} steps/s")

        t0 = time.perf_counter()
        report = ns.replay("r")
        fold_s = time.perf_counter() - t0
        assert report.ok, report
        print(f"replay(run_id) re-fold + checks: {report.events_folded / fold_s:,.0f} events/s")

        t0 = time.perf_counter()
        report = ns.replay("r", agent)
        agent_s = time.perf_counter() - t0
        print(
            f"replay(run_id, agent): {STEPS / agent_s:,.0f} steps/s "
            f"({report.events_checked / agent_s:,.0f} events/s), {record_s / agent_s:.2f}x recording"
        )

        t0 = time.perf_counter()
        diff = ns.diff("r", "r")
        diff_s = time.perf_counter() - t0
        assert diff.identical
        print(f"diff(run, run): {2 * diff.events_a / diff_s:,.0f} events/s")

        t0 = time.perf_counter()
        fork = ns.fork("r", at=events // 2, new_run_id="f")  # builds the branch state
        build_s = time.perf_counter() - t0
        reads = 20_000
        t0 = time.perf_counter()
        for i in range(reads):
            fork.get(f"k/{i % KEYS}")
        fork_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(reads):
            ns.get(f"k/{i % KEYS}")
        main_s = time.perf_counter() - t0
        print(
            f"fork at {events // 2}: forked (branch state built) in {build_s * 1000:.0f} ms; reads {reads / fork_s:,.0f}/s vs "
            f"main line {reads / main_s:,.0f}/s ({fork_s / main_s:.2f}x the time)"
        )
        mem.close()


if __name__ == "__main__":
    main()
