"""The coordinator actor on a real local Ray: linearizable CAS across kills, fencing, locks."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time

import ray

import swarmlog
from swarmlog.local import COORDINATOR
from tests.helpers import assert_store_sound
from tests.linearizability import CAS, READ, WRITE, Op, check

THREADS = 6
OPS_PER_THREAD = 60
KEYS = ("r0", "r1", "r2")
KILLS = 2
WAIT_S = 60.0


def _coordinator_pid(mem) -> int:
    return ray.get(mem._backend.actor(COORDINATOR).pid.remote(), timeout=WAIT_S)


def _kill_coordinator(mem) -> int:
    pid = _coordinator_pid(mem)
    os.kill(pid, signal.SIGKILL)
    return pid


def test_cas_through_the_coordinator_actor_is_linearizable_across_coordinator_kills(ray_mem):
    mem = ray_mem
    mem.read_state("r0")  # start the coordinator actor
    history: list[Op] = []
    done = [0]
    cv = threading.Condition()

    def worker(tid: int) -> None:
        rng = random.Random(tid)
        last_seen: dict[str, int] = {}
        for i in range(OPS_PER_THREAD):
            key = rng.choice(KEYS)
            kind = rng.choices((READ, WRITE, CAS), weights=(40, 20, 40))[0]
            value = f"t{tid}-{i}"
            arg = (last_seen.get(key, 0), value) if kind == CAS else (value if kind == WRITE else None)
            invoke = time.monotonic_ns()
            try:
                if kind == READ:
                    rec = mem.read_state(key)
                    result = (rec.value, rec.version)
                elif kind == WRITE:
                    rec = mem.put_state(key, value)
                    result = rec.version
                else:
                    ok, rec = mem.cas(key, arg[0], value)
                    result = (ok, rec.value, rec.version)
                ret = time.monotonic_ns()
                last_seen[key] = rec.version
            except swarmlog.NamespaceUnavailable:
                ret, result = None, None  # no answer: it may or may not have happened
            history.append(
                Op(process=tid, key=key, kind=kind, invoke=invoke, ret=ret, arg=arg, result=result)
            )
            with cv:
                done[0] += 1
                cv.notify_all()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    total = THREADS * OPS_PER_THREAD
    pids = set()
    for k in range(1, KILLS + 1):
        with cv:
            assert cv.wait_for(lambda k=k: done[0] >= k * total // (KILLS + 1), WAIT_S)
        pids.add(_kill_coordinator(mem))
    for t in threads:
        t.join(WAIT_S)
        assert not t.is_alive()
    assert _coordinator_pid(mem) not in pids  # the history spans restarted processes
    for key in KEYS:
        invoke = time.monotonic_ns()
        rec = mem.read_state(key)
        history.append(Op("final", key, READ, invoke, time.monotonic_ns(), None, (rec.value, rec.version)))

    assert len(history) == total + len(KEYS)
    assert any(op.kind == CAS and op.ret and op.result[0] for op in history)
    verdict = check(history)
    assert verdict.ok, verdict


def test_a_paused_holders_old_lease_is_refused_every_time_and_tokens_grow_across_restarts(ray_mem):
    mem = ray_mem
    ns = mem.namespace("fenced")
    run_a = ns.begin_run(agent="agent-a")
    run_b = ns.run(run_a.run_id, agent="agent-b")

    lease_a = mem.acquire_lease("lock/report", "agent-a", ttl=1.0)
    run_a.put("report", "from a", fence=lease_a)
    time.sleep(1.3)  # agent A pauses (a GC pause, a slow tool) past its lease
    lease_b = mem.acquire_lease("lock/report", "agent-b", ttl=30.0)
    assert lease_b is not None and lease_b.token > lease_a.token
    run_b.put("report", "from b", fence=lease_b)

    head = ns.head()
    for attempt in range(3):  # A wakes up and keeps trying with its old lease
        try:
            run_a.put("report", f"late a {attempt}", fence=lease_a)
            raise AssertionError("a stale lease was accepted")
        except swarmlog.StaleFencingToken as exc:
            assert "lock/report" in str(exc)
    assert ns.head() == head and ns.get("report") == "from b"

    tokens = [lease_b.token]
    for _ in range(2):
        _kill_coordinator(mem)
        lease = mem.acquire_lease(f"lock/other-{len(tokens)}", "agent-c", ttl=5.0)
        assert lease.token > tokens[-1]
        tokens.append(lease.token)
    assert mem.lease_status("lock/report").holder == "agent-b"
    assert_store_sound(ns)


def test_locks_and_elections_work_through_the_sync_and_async_clients(ray_mem, store_path):
    mem = ray_mem
    lease = mem.campaign("planner", "agent-1", ttl=5.0)
    assert mem.leader("planner") == "agent-1"
    assert mem.campaign("planner", "agent-2", ttl=5.0, timeout=0.2) is None
    elected = {}

    def contender():
        elected["lease"] = mem.campaign("planner", "agent-2", ttl=5.0, timeout=30)

    t = threading.Thread(target=contender)
    t.start()
    time.sleep(0.3)
    assert mem.resign(lease) is True
    t.join(30)
    assert elected["lease"].holder == "agent-2" and elected["lease"].token > lease.token
    assert mem.leader("planner") == "agent-2"

    async def scenario():
        amem = await swarmlog.connect_async(store_path)
        async with amem.lock("db", holder="async-agent", ttl=2.0) as lock:
            status = await amem.lease_status("lock/db")
            await asyncio.sleep(1.0)  # renewed in the background meanwhile
            renewed = await amem.lease_status("lock/db")
            changed = await amem.watch("shared", timeout=0.2)
        return lock, status, renewed, changed, await amem.lease_status("lock/db")

    lock, status, renewed, changed, after = asyncio.run(scenario())
    assert status.holder == "async-agent" and not lock.lost
    assert renewed.expires_at > status.expires_at
    assert changed is None  # nothing changed "shared" within the timeout
    assert after.holder is None  # released on exit
