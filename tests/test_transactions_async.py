"""Optimistic transactions with the async client: ``async for attempt in run.transaction()`` /
``async with attempt as tx``, the callable form with an ``async def`` body, a single ``async
with`` attempt, and the replay of an async agent that used them."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

import swarmlog
from tests.helpers import assert_store_sound


@pytest_asyncio.fixture
async def amem(ray_session, store_path):
    m = await swarmlog.connect_async(store_path)
    yield m
    await m.shutdown()  # again, if the test failed before it did


async def _check_store(amem, store_path: str, name: str) -> None:
    await amem.shutdown()  # stop the actors, then check the store in process
    local = swarmlog.open_local(store_path)
    try:
        assert_store_sound(local.namespace(name))
    finally:
        local.close()


@pytest.mark.asyncio
async def test_concurrent_async_clients_lose_no_increment(amem, store_path):
    clients = 8
    increments_each = 3
    ns = amem.namespace("txn/async")
    setup = await ns.begin_run("setup", agent="setup")
    await setup.put("counter", 0)
    await setup.collection("stats").insert_one({"_id": "hits", "n": 0})
    # Every client's first attempt reads, then waits for all the others to have read too: at
    # least clients - 1 of those first commits must conflict and be retried.
    all_read = asyncio.Barrier(clients)

    async def client(i: int) -> list[int]:
        run = await ns.begin_run(agent=f"client-{i}")
        attempts = []
        for round_ in range(increments_each):
            txn = run.transaction(retries=100)
            async for attempt in txn:
                async with attempt as tx:
                    n = await tx.get("counter")
                    doc = await tx.get(("stats", "hits"))
                    if round_ == 0 and attempt.number == 0:
                        await asyncio.wait_for(all_read.wait(), timeout=60)
                    tx.put("counter", n + 1)
                    tx.put(("stats", "hits"), {"n": doc["n"] + 1})
            attempts.append(txn.attempts)
        return attempts

    attempts = await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(clients))), timeout=120)

    total = clients * increments_each
    assert await ns.get("counter") == total
    assert (await ns.collection("stats").find_one("hits"))["n"] == total
    assert sum(map(sum, attempts)) - total >= clients - 1  # the retries that saved the increments
    await _check_store(amem, store_path, "txn/async")


@pytest.mark.asyncio
async def test_the_callable_and_single_attempt_forms_work_with_the_async_client(amem, store_path):
    ns = amem.namespace("txn/forms")
    run = await ns.begin_run(agent="a")
    other = await ns.begin_run(agent="intruder")
    await run.put("n", 1)

    async def body(tx):
        n = await tx.get("n")
        if n == 1:
            await other.put("n", 10)  # the first attempt conflicts at its commit
        tx.put("n", n + 1)
        return n

    txn = run.transaction(retries=2)
    assert await txn(body) == 10 and txn.attempts == 2
    assert await run.transaction()(lambda tx: tx.put("plain", "sync body")) is None
    assert await ns.get("n") == 11 and await ns.get("plain") == "sync body"

    with pytest.raises(swarmlog.ConflictError) as err:
        async with run.transaction(retries=5) as tx:
            n = await tx.get("n")
            await other.put("n", 0)
            tx.put("n", n + 1)
    assert err.value.key == "n"
    assert "async for attempt in run.transaction" in str(err.value)
    assert "`retries` does not apply" in str(err.value)
    assert await ns.get("n") == 0

    head = await ns.head()
    with pytest.raises(swarmlog.ValidationError, match="async with attempt as tx"):
        for attempt in run.transaction():
            with attempt as tx:
                tx.put("never", 1)
    assert await ns.head() == head
    await _check_store(amem, store_path, "txn/forms")


@pytest.mark.asyncio
async def test_an_async_agent_with_transactions_replays_through_the_async_client(amem, store_path):
    ns = amem.namespace("txn/replay")
    setup = await ns.begin_run(agent="setup")
    await setup.put("counter", 0)
    intruder = await ns.begin_run(agent="intruder")

    def make_agent(step: int, interfere: bool):
        async def agent(run):
            seen = []
            async for attempt in run.transaction(retries=3):
                async with attempt as tx:
                    n = await tx.get("counter")
                    if interfere and attempt.number == 0:
                        await intruder.put("counter", 100)
                    seen.append(n)
                    tx.put("counter", n + step)
                    assert await tx.get("counter") == n + step  # its own write, awaited all the same
                    tx.put(("log", "last"), {"from": n})
            await run.collection("log").insert_one({"seen": seen[-1]})
            return attempt.tx.results

        return agent

    run = await ns.begin_run(run_id="async-txn", agent="counter")
    recorded = await make_agent(1, True)(run)

    report = await ns.replay("async-txn", make_agent(1, False))
    assert report.ok and report.writes_checked == 3
    with pytest.raises(swarmlog.NonDeterminismError) as caught:
        await ns.replay("async-txn", make_agent(2, False))
    assert caught.value.event_type == "kv.put"
    assert (await ns.replay("async-txn")).ok
    assert recorded == {"counter": caught.value.seq, ("log", "last"): caught.value.seq + 1}
    await _check_store(amem, store_path, "txn/replay")
