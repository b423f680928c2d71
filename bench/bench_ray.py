"""swarmlog on Ray against a bare Ray actor that owns a rocksdict DB (issue 3 targets).

Peers, measured in the same run on the same local Ray:
- a bare actor that appends msgpack+lz4 records to its own rocksdict (no hash chain, no indexes,
  no projections), batched (one WriteBatch of 100 per call) and single (one put per call);
- for the coroutine swarm: the same single puts awaited one after another.

Batched appends: both sides append the same batches of 100 distinct events, taking turns. For
context the bare actor is also sent one dict object 100 times, as this benchmark did at first:
pickle then sends that dict once, so the call carries ~0.3 KB instead of ~20 KB and the driver
has nothing to serialise — a cheaper workload than any real batch of events.

Targets: batched appends >= 0.7x the bare actor's events/s; single-put p50 latency <= 1.3x the
bare actor's round trip; 64 coroutines doing single puts through the async client >= 10x the
events/s of the same puts awaited one by one.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import struct
import sys
import tempfile
import time

import lz4.block
import msgpack
import ray

import swarmlog
from bench.common import Config

EVENT = {"tool": "search", "args": {"query": "refund policy", "k": 5}, "note": "x" * 120}


class BareAppender:
    """The peer: appends records to a rocksdict DB, nothing else."""

    def __init__(self, path: str):
        from rocksdict import Options, Rdict

        opt = Options(raw_mode=True)
        opt.create_if_missing(True)
        self.db = Rdict(path, opt)
        self.seq = 0

    def append(self, record: dict) -> int:
        self.seq += 1
        self.db[struct.pack(">Q", self.seq)] = lz4.block.compress(msgpack.packb(record))
        return self.seq

    def append_many(self, records: list) -> int:
        from rocksdict import WriteBatch

        wb = WriteBatch(raw_mode=True)
        for record in records:
            self.seq += 1
            wb.put(struct.pack(">Q", self.seq), lz4.block.compress(msgpack.packb(record)))
        self.db.write(wb)
        return self.seq


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _report(label: str, ours: float, peer: float, target: float, higher_is_better: bool = True) -> None:
    ratio = ours / peer if peer else float("nan")
    met = ratio >= target if higher_is_better else ratio <= target
    sign = ">=" if higher_is_better else "<="
    print(f"  {label}: ratio {ratio:.2f} (target {sign} {target}) -> {'met' if met else 'MISSED'}")


def _batches(count: int) -> list[list[dict]]:
    """``count`` batches of 100 distinct events (the same list objects go to every contender)."""
    return [[{**EVENT, "step": b * 100 + i} for i in range(100)] for b in range(count)]


def batched(bare, run, batches: list[list[dict]], repeat: int, segment: int = 20) -> dict[str, list[float]]:
    """Events/s of each contender appending the same batches of 100; the contenders take turns
    (rotating order) every ``segment`` batches, so load from other processes falls on all alike."""
    same = [EVENT] * 100  # one dict object 100 times: pickle sends it once

    def ours(part: list[list[dict]]) -> None:
        for records in part:
            with run.batch() as b:
                for record in records:
                    b.append_event("tool_call", record)

    def peer(part: list[list[dict]]) -> None:
        for records in part:
            ray.get(bare.append_many.remote(records))

    def peer_same(part: list[list[dict]]) -> None:
        for _ in part:
            ray.get(bare.append_many.remote(same))

    contenders = {"swarmlog run.batch()": ours, "bare actor": peer, "bare actor, one dict x100": peer_same}
    names = list(contenders)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeat):
        seconds = dict.fromkeys(names, 0.0)
        for k, start in enumerate(range(0, len(batches), segment)):
            part = batches[start : start + segment]
            for j in range(len(names)):
                name = names[(k + j) % len(names)]
                t = time.perf_counter()
                contenders[name](part)
                seconds[name] += time.perf_counter() - t
        for name in names:
            rates[name].append(_rate(len(batches) * 100, seconds[name]))
    return rates


def main(config: Config | None = None) -> None:
    config = config or Config()
    quick = config.quick
    batches = 100 if quick else 400
    singles = 300 if quick else 2000
    started_ray = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    tmp = tempfile.mkdtemp(prefix="swarmlog-bench-ray-")
    bare = None
    try:
        bare = ray.remote(num_cpus=0)(BareAppender).remote(os.path.join(tmp, "bare"))
        ray.get(bare.append.remote(EVENT))
        mem = swarmlog.connect(os.path.join(tmp, "store"))
        run = mem.namespace("bench").begin_run(agent="bench")
        run.append_event("warmup", EVENT)

        print("bench_ray: swarmlog on a local Ray vs a bare rocksdict actor")
        # Batched appends: 100 distinct events per actor call on every side.
        rates = batched(bare, run, _batches(batches), config.repeat)
        print(f"  batched appends, {batches} batches of 100 x {config.repeat} (median, all runs):")
        for name, values in rates.items():
            runs = ", ".join(f"{v:,.0f}" for v in values)
            print(f"    {name:<28} {statistics.median(values):>9,.0f} events/s   runs: {runs}")
        ours_batch = statistics.median(rates["swarmlog run.batch()"])
        _report("batched", ours_batch, statistics.median(rates["bare actor"]), 0.7)
        same = statistics.median(rates["bare actor, one dict x100"])
        print(
            f"  (against the bare actor sent one dict 100 times, as this benchmark did before: {ours_batch / same:.2f})"
        )

        # Single appends: latency of one call, p50.
        bare_lat, ours_lat = [], []
        for _ in range(singles):
            t = time.perf_counter()
            ray.get(bare.append.remote(EVENT))
            bare_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            run.put("single", EVENT)
            ours_lat.append(time.perf_counter() - t)
        bare_p50 = statistics.median(bare_lat) * 1e3
        ours_p50 = statistics.median(ours_lat) * 1e3
        print(f"  single put p50: swarmlog {ours_p50:.3f} ms, bare actor round trip {bare_p50:.3f} ms")
        _report("single p50", ours_p50, bare_p50, 1.3, higher_is_better=False)
        mem.close()

        # 64 coroutines doing single puts, coalesced by the async client.
        async def swarm() -> tuple[float, float]:
            amem = await swarmlog.connect_async(os.path.join(tmp, "store"))
            ns = amem.namespace("bench")
            arun = await ns.run(run.run_id)
            n = 200 if quick else 1000
            t = time.perf_counter()
            for i in range(n):
                await arun.put(f"seq/{i}", i)
            sequential = _rate(n, time.perf_counter() - t)
            coroutines, each = 64, (20 if quick else 100)

            async def agent(c: int) -> None:
                for i in range(each):
                    await arun.put(f"swarm/{c}/{i}", i)

            t = time.perf_counter()
            await asyncio.gather(*(agent(c) for c in range(coroutines)))
            coalesced = _rate(coroutines * each, time.perf_counter() - t)
            await amem.shutdown()
            return sequential, coalesced

        sequential, coalesced = asyncio.run(swarm())
        print(
            f"  async single puts: 64 coroutines {coalesced:,.0f} puts/s, awaited one by one {sequential:,.0f} puts/s"
        )
        _report("coalescing", coalesced, sequential, 10.0)
    finally:
        if bare is not None:
            ray.kill(bare)
        if started_ray:
            ray.shutdown()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(Config(quick="--quick" in sys.argv))
