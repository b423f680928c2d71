"""The coordinator's compare-and-swap through Ray, against a bare actor and a local Redis (issue 3).

Contenders, measured in the same run and taking turns (rotating order) in every repetition:
- swarmlog: ``mem.cas(name, expected_version, value)`` on a few records, through the
  ``CoordinatorActor`` of ``swarmlog.connect`` (durability ``"process"``: the journal's WAL is
  written before the answer);
- a bare Ray actor (threaded, the same ``max_concurrency``) whose method returns its bytes
  argument: the round trip every actor call pays, with nothing done inside;
- Redis: the same CAS as a Lua script (one round trip) and as WATCH/MULTI/EXEC, against a
  ``redis-server`` started here on a free port in a temporary directory, with an append-only file
  written before each answer (``appendfsync no``: the counterpart of durability ``"process"``).

Each contender runs the workload sequentially (one caller) and from ``THREADS`` threads at once;
the threads work on ``RECORDS`` records, so some of their CAS fail on a stale version and retry
with the version the failure returned (every attempt counts as an op).
Target: swarmlog's CAS ops/s >= 0.7x the bare actor's round trips per second (sequential and
concurrent alike). Redis has no target; it is shown beside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import msgpack
import ray

import swarmlog
from bench.common import Config, median, report_ratio, runs_line

RECORDS = 4
THREADS = 8
MAX_CONCURRENCY = 32  # the coordinator actor's default

# Redis CAS: set the hash's value and bump its version when the version is as expected.
CAS_LUA = """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return {0, v} end
redis.call('HSET', KEYS[1], 'v', v + 1, 'd', ARGV[2])
return {1, v + 1}
"""


def _value(i: int) -> dict:
    return {"holder": f"agent-{i % 7}", "step": i}


class BareActor:
    """The peer: a threaded actor whose call does nothing but return its argument."""

    def rt(self, payload: bytes) -> bytes:
        return payload


# A CAS client: ``cas(record index, expected version, op number) -> (ok, current version)``.
Cas = Callable[[int, int, int], tuple[bool, int]]


def swarmlog_cas(mem) -> Cas:
    names = [f"bench/cas/{i}" for i in range(RECORDS)]

    def cas(r: int, expected: int, i: int) -> tuple[bool, int]:
        ok, record = mem.cas(names[r], expected, _value(i))
        return ok, record.version

    return cas


def bare_cas(actor) -> Cas:
    # As big as a coordinator call's pickled arguments; the "version" simply moves on.
    payload = b"x" * 120

    def cas(r: int, expected: int, i: int) -> tuple[bool, int]:
        ray.get(actor.rt.remote(payload))
        return True, expected + 1

    return cas


def redis_lua_cas(client, prefix: str) -> Cas:
    script = client.register_script(CAS_LUA)
    keys = [f"{prefix}/{i}" for i in range(RECORDS)]

    def cas(r: int, expected: int, i: int) -> tuple[bool, int]:
        ok, version = script(keys=[keys[r]], args=[expected, msgpack.packb(_value(i))])
        return bool(ok), int(version)

    return cas


def redis_watch_cas(client, prefix: str) -> Cas:
    import redis

    keys = [f"{prefix}/{i}" for i in range(RECORDS)]

    def cas(r: int, expected: int, i: int) -> tuple[bool, int]:
        key = keys[r]
        with client.pipeline() as pipe:
            pipe.watch(key)
            current = int(pipe.hget(key, "v") or 0)
            if current != expected:
                pipe.unwatch()
                return False, current
            pipe.multi()
            pipe.hset(key, mapping={"v": current + 1, "d": msgpack.packb(_value(i))})
            try:
                pipe.execute()
            except redis.WatchError:  # someone else changed it since WATCH: read it again
                return False, int(client.hget(key, "v") or 0)
            return True, current + 1

    return cas


def sequential(cas: Cas, ops: int) -> float:
    """Ops per second of one caller doing ``ops`` CAS round-robin over the records."""
    versions = [_current(cas, r) for r in range(RECORDS)]
    t0 = time.perf_counter()
    for i in range(ops):
        r = i % RECORDS
        ok, versions[r] = cas(r, versions[r], i)
        if not ok:  # pragma: no cover - nobody else writes these records here
            raise RuntimeError(f"a sequential CAS failed on record {r}")
    return ops / (time.perf_counter() - t0)


def concurrent(cas: Cas, ops_per_thread: int, threads: int) -> tuple[float, float]:
    """Ops per second of ``threads`` callers at once, and the share of CAS that succeeded."""
    start = threading.Barrier(threads + 1)
    wins = [0] * threads

    def worker(t: int) -> None:
        versions = [_current(cas, r) for r in range(RECORDS)]
        start.wait(timeout=60)
        for i in range(ops_per_thread):
            r = (t + i) % RECORDS
            ok, versions[r] = cas(r, versions[r], i)
            wins[t] += ok

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    start.wait(timeout=60)
    t0 = time.perf_counter()
    for th in pool:
        th.join(timeout=300)
    seconds = time.perf_counter() - t0
    total = ops_per_thread * threads
    return total / seconds, sum(wins) / total


def _current(cas: Cas, r: int) -> int:
    """The record's version, learnt from a CAS that expects an impossible one (writes nothing)."""
    return cas(r, 1 << 40, 0)[1]  # (the bare peer "succeeds"; its version means nothing)


@contextlib.contextmanager
def redis_server() -> Iterator[object | None]:
    """A ``redis.Redis`` client of a ``redis-server`` started on a free port in a temporary
    directory (stopped afterwards), or None when no server or client library is installed."""
    binary = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        redis = None
    if binary is None or redis is None:
        missing = "redis-server is not installed (Debian: apt-get install redis-server)"
        if redis is None:
            missing = "the redis Python client is not installed (pip install -e '.[bench]')"
        print(f"  Redis: skipped, {missing}")
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="swarmlog-bench-redis-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "no", "--daemonize", "no", "--logfile", ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        version = client.info("server")["redis_version"]
        print(f"  Redis: redis-server {version} on 127.0.0.1:{port} (appendonly, appendfsync no)")
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def main(config: Config | None = None) -> None:
    config = config or Config()
    seq_ops = config.size(2000, 300)
    thread_ops = config.size(500, 60)
    started_ray = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started_ray = True
    tmp = tempfile.mkdtemp(prefix="swarmlog-bench-coord-")
    bare = None
    mem = None
    try:
        print(
            f"bench_coordinator: CAS on {RECORDS} records, {seq_ops:,} sequential ops, "
            f"{THREADS} threads x {thread_ops:,} ops; {config.repeat} repetition(s), contenders take turns"
        )
        bare = ray.remote(num_cpus=0, max_concurrency=MAX_CONCURRENCY)(BareActor).remote()
        mem = swarmlog.connect(os.path.join(tmp, "store"))
        with redis_server() as client:
            contenders: dict[str, Cas] = {
                "swarmlog mem.cas (Ray)": swarmlog_cas(mem),
                "bare actor round trip": bare_cas(bare),
            }
            if client is not None:
                contenders["Redis Lua CAS"] = redis_lua_cas(client, "bench/lua")
                contenders["Redis WATCH/MULTI/EXEC"] = redis_watch_cas(client, "bench/watch")
            for cas in contenders.values():  # warm up: actors started, scripts loaded
                sequential(cas, 50)
            names = list(contenders)
            seq: dict[str, list[float]] = {n: [] for n in names}
            conc: dict[str, list[float]] = {n: [] for n in names}
            wins: dict[str, list[float]] = {n: [] for n in names}
            for k in range(config.repeat):
                order = names[k % len(names) :] + names[: k % len(names)]
                for name in order:
                    seq[name].append(sequential(contenders[name], seq_ops))
                for name in order:
                    rate, won = concurrent(contenders[name], thread_ops, THREADS)
                    conc[name].append(rate)
                    wins[name].append(won)
        _print(seq, conc, wins, names)
    finally:
        if mem is not None:
            mem.shutdown()
        if bare is not None:
            ray.kill(bare)
        if started_ray:
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def _fmt(v: float) -> str:
    return f"{v:>10,.0f} ops/s"


def _print(seq: dict, conc: dict, wins: dict, names: list[str]) -> None:
    print("  sequential (one caller):")
    for name in names:
        print(f"    {name:<28} {_fmt(median(seq[name]))}   {runs_line(seq[name], _fmt)}")
    print(f"  concurrent ({THREADS} threads, {RECORDS} records; CAS that succeeded in brackets):")
    for name in names:
        share = "" if name.startswith("bare") else f"  ({median(wins[name]):.0%} succeeded)"
        print(f"    {name:<28} {_fmt(median(conc[name]))}   {runs_line(conc[name], _fmt)}{share}")
    ours, peer = "swarmlog mem.cas (Ray)", "bare actor round trip"
    report_ratio("CAS / bare round trip, sequential", median(seq[ours]), median(seq[peer]), 0.7)
    report_ratio("CAS / bare round trip, concurrent", median(conc[ours]), median(conc[peer]), 0.7)
    for name in names[2:]:
        report_ratio(f"{name} / swarmlog CAS, sequential", median(seq[name]), median(seq[ours]), None)
        report_ratio(f"{name} / swarmlog CAS, concurrent", median(conc[name]), median(conc[ours]), None)


if __name__ == "__main__":
    main(Config(quick="--quick" in sys.argv))
