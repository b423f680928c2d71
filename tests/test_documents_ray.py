"""Documents, vectors and transactions through ``swarmlog.connect`` (namespace actors on Ray)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import swarmlog
from tests.helpers import assert_store_sound


def test_collections_query_index_and_explain_through_ray(ray_mem):
    ns = ray_mem.namespace("docs")
    run = ns.begin_run(agent="writer")
    notes = run.collection("notes")
    first = notes.insert_one({"kind": "fact", "text": "refunds take 5 days", "tags": ["billing"], "n": 1})
    ids = notes.insert_many([{"kind": "fact", "n": i, "tags": ["x"]} for i in range(2, 12)])
    assert notes.find_one(first)["text"] == "refunds take 5 days"
    assert notes.update_many({"n": {"$gte": 10}}, {"$inc": {"n": 100}}).modified == 2
    assert notes.create_index("n") is True
    assert ns.collection("notes").explain({"n": {"$gt": 100}})["index"] == "n"
    found = ns.collection("notes").find_many({"n": {"$gt": 100}}, sort={"n": -1}, projection={"n": 1})
    assert [d["n"] for d in found] == [111, 110]
    assert ns.collection("notes").count({"tags": "x"}) == len(ids)
    seq = ns.head()
    assert notes.delete_many({"tags": "x"}) == len(ids)
    assert ns.at(seq).collection("notes").count() == 1 + len(ids)  # as it was before the delete
    head = ns.head()
    with pytest.raises(swarmlog.ValidationError, match=r"\$bogus"):
        notes.update_one({"_id": first}, {"$bogus": {"n": 1}})
    assert ns.head() == head
    assert_store_sound(ns)


def test_vectors_upsert_search_filter_and_delete_through_ray(ray_mem):
    ns = ray_mem.namespace("vecs")
    run = ns.begin_run(agent="writer")
    rng = np.random.default_rng(7)
    vecs = run.vectors("memories", dim=16, metric="cosine")
    data = rng.standard_normal((60, 16)).astype(np.float32)
    vecs.upsert_many([(f"m-{i}", data[i], {"agent": "a" if i % 2 else "b"}) for i in range(60)])
    assert vecs.delete("m-3") is True
    hits = ns.vectors("memories").search(data[5], k=5, filter={"agent": "a"})
    assert hits[0].id == "m-5" and len(hits) == 5
    assert all(h.metadata["agent"] == "a" and h.id != "m-3" for h in hits)
    assert ns.vectors("memories").get("m-3") is None
    head = ns.head()
    with pytest.raises(swarmlog.ValidationError):
        vecs.upsert("bad", np.full(16, np.nan))
    assert ns.head() == head
    assert_store_sound(ns)


def test_sixteen_clients_increment_one_counter_through_ray_transactions_without_a_lost_update(
    ray_mem, store_path
):
    clients = 16
    increments_each = 4
    ns = ray_mem.namespace("txn")
    ns.begin_run("counter-run", agent="setup").put("counter", 0)
    start = threading.Barrier(clients, timeout=60)
    failures: list[BaseException] = []

    def client(i: int) -> None:
        mem = swarmlog.connect(store_path)  # one client per agent, as separate processes would
        run = mem.namespace("txn").run("counter-run", agent=f"agent-{i}")
        start.wait()
        try:
            for _ in range(increments_each):
                for attempt in run.transaction(retries=200):
                    with attempt as tx:
                        tx.put("counter", tx.get("counter") + 1)
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            mem.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
        assert not t.is_alive()
    assert not failures, failures
    assert ns.get("counter") == clients * increments_each
    puts = [e for e in ns.read_events(types="kv.put") if e.payload["key"] == "counter"]
    assert len(puts) == 1 + clients * increments_each  # every commit added exactly one
    assert_store_sound(ns)
