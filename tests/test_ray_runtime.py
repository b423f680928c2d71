"""The namespace actors on a real local Ray: sharing, restarts, group commit, error mapping."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter

import pytest

import swarmlog
from actors.naming import namespace_actor_name
from swarmlog.local import namespace_dir
from tests.helpers import assert_store_sound


def _actor(mem, name):
    return mem._backend.actor(name)


def test_two_connections_to_one_namespace_share_one_actor_and_its_writes(ray_session, store_path):
    first = swarmlog.connect(store_path)
    second = swarmlog.connect(store_path)
    try:
        a = _actor(first, "shared")
        b = _actor(second, "shared")
        assert a._actor_id == b._actor_id
        run = first.namespace("shared").begin_run(agent="writer")
        run.put("k", "from the first client")
        assert second.namespace("shared").get("k") == "from the first client"
        names = [x["name"] for x in ray_session.util.list_named_actors(all_namespaces=True)]
        assert namespace_actor_name(store_path, "shared") in names
        assert_store_sound(second.namespace("shared"))
    finally:
        first.shutdown()


def test_sigkilling_the_namespace_actor_under_16_writers_loses_and_duplicates_nothing(ray_mem):
    writers = 16
    writes_per_writer = 40
    ns = ray_mem.namespace("crashy")
    run = ns.begin_run(agent="swarm")
    acked: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    started = threading.Barrier(writers + 1, timeout=60)

    def writer(w: int) -> None:
        started.wait()
        for i in range(writes_per_writer):
            key = f"w{w:02d}/{i:03d}"
            for _attempt in range(20):  # retried with the same write id until answered
                try:
                    version = run.put(key, {"w": w, "i": i}, write_id=f"write-{key}")
                    break
                except swarmlog.NamespaceUnavailable:
                    time.sleep(0.2)
            else:
                errors.append(AssertionError(f"{key} never acknowledged"))
                return
            with lock:
                acked[key] = version

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + 30
    while len(acked) < writers * writes_per_writer // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = _ray_get(_actor(ray_mem, "crashy").pid.remote())
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()
    assert not errors, errors

    assert _ray_get(_actor(ray_mem, "crashy").pid.remote()) != pid  # a new process answered
    assert len(acked) == writers * writes_per_writer
    for key, version in acked.items():
        entry = ns.entry(key)
        assert entry is not None and entry.value == {"w": int(key[1:3]), "i": int(key[4:])}
        assert entry.version == version
    puts = Counter(e.payload["key"] for e in ns.read_events(types="kv.put"))
    assert set(puts) == set(acked) and set(puts.values()) == {1}  # each write journaled once
    assert_store_sound(ns)


def test_a_restarted_actor_recovers_from_snapshot_and_tail(ray_session, store_path):
    settings = swarmlog.Settings(snapshot_every_events=50)
    mem = swarmlog.connect(store_path, settings=settings)
    try:
        ns = mem.namespace("recovering")
        run = ns.begin_run(agent="a")
        for i in range(120):
            run.put(f"k{i % 30}", i)
        digest = ns.digest()
        pid = _ray_get(_actor(mem, "recovering").pid.remote())
        os.kill(pid, signal.SIGKILL)
        assert ns.digest() == digest  # answered by the restarted actor after recovery
        assert ns.get("k29") == 119
        assert _ray_get(_actor(mem, "recovering").pid.remote()) != pid
        assert_store_sound(ns)
    finally:
        mem.shutdown()


def test_callers_of_a_namespace_that_cannot_restart_fail_fast_with_the_reason(ray_session, store_path):
    mem = swarmlog.connect(store_path, timeout_s=60)
    try:
        ns = mem.namespace("doomed")
        ns.begin_run(agent="a")
        actor = _actor(mem, "doomed")
        pid = _ray_get(actor.pid.remote())
        # Damage the store so that the restarted actor's recovery refuses to open it.
        path = namespace_dir(store_path, "doomed")
        for name in os.listdir(path):
            if name.startswith("MANIFEST") or name == "CURRENT":
                with open(os.path.join(path, name), "wb") as f:
                    f.write(b"garbage, not a rocksdb manifest")
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        # The restarted actor's recovery raised CorruptionError: callers get that error, at once.
        with pytest.raises(swarmlog.CorruptionError) as info:
            ns.head()
        assert time.monotonic() - started < 30  # well before timeout_s: it failed, not hung
        assert "doomed" in str(info.value)
    finally:
        mem.shutdown()


def test_a_call_that_outlives_timeout_s_raises_namespace_unavailable(ray_session, store_path):
    mem = swarmlog.connect(store_path)
    try:
        ns = mem.namespace("slow")
        run = ns.begin_run(agent="a")  # the actor is up; now shorten the deadline
        mem._backend.timeout_s = 0.5

        def slow_fold(state, event):
            time.sleep(3)
            return (state or 0) + 1

        with pytest.raises(swarmlog.NamespaceUnavailable, match=r"did not answer within 0\.5 s"):
            ns.register_projection("slow", slow_fold, 0)
        assert isinstance(run, swarmlog.Run)
    finally:
        mem._backend.timeout_s = 60
        mem.shutdown()


def test_errors_raised_in_the_actor_reach_the_caller_as_the_same_swarmlog_errors(ray_mem):
    ns = ray_mem.namespace("errors")
    run = ns.begin_run(agent="a")
    run.put("k", 1)
    with pytest.raises(swarmlog.ConflictError) as info:
        run.put("k", 2, expected_version=7)
    assert (info.value.key, info.value.expected, info.value.actual) == ("k", 7, 2)
    with pytest.raises(swarmlog.NotFoundError):
        ns.run_info("no-such-run")
    with pytest.raises(swarmlog.ValidationError, match="has ended"):
        run.end()
        run.put("k", 3)
    assert_store_sound(ns)


def test_the_async_client_coalesces_concurrent_single_puts_into_few_actor_calls(ray_session, store_path):
    coroutines = 64
    puts_per_coroutine = 20

    async def scenario():
        amem = await swarmlog.connect_async(store_path)
        try:
            ns = amem.namespace("swarm")
            run = await ns.begin_run(agent="swarm")

            async def agent(c: int) -> list[int]:
                return [await run.put(f"c{c}/{i}", i) for i in range(puts_per_coroutine)]

            versions = await asyncio.gather(*(agent(c) for c in range(coroutines)))
            stats = await _await(amem._backend.actor("swarm").stats.remote())
            keys = await ns.list("c")
            async with run.batch() as b:
                b.put("batched", 1)
                ev = b.append_event("observation", {"n": 1})
                b.trace("assumption", {"text": "coalescing works"}, event=ev)
            return versions, stats, keys, b.results, await ns.head()
        finally:
            await amem.shutdown()

    versions, stats, keys, batch_results, head = asyncio.run(scenario())
    flat = [v for vs in versions for v in vs]
    assert len(set(flat)) == coroutines * puts_per_coroutine
    assert len(keys) == coroutines * puts_per_coroutine
    # Far fewer commits than requests: concurrent puts travelled and committed together.
    assert stats["requests"] >= coroutines * puts_per_coroutine
    assert stats["commits"] < stats["requests"] / 4
    assert batch_results[2].event == batch_results[1].seq
    assert head == batch_results[2].seq


def _ray_get(ref, timeout=60):
    import ray

    return ray.get(ref, timeout=timeout)


async def _await(ref):
    return await ref
