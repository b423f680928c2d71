"""Optimistic transactions over KV entries and documents."""

from __future__ import annotations

import threading

import pytest

import swarmlog
from tests.helpers import assert_store_sound


@pytest.fixture
def run(ns):
    return ns.begin_run(agent="txn")


def test_txn_commits_every_write_in_one_commit_when_the_reads_are_current(ns, run):
    v_a = run.put("a", 1)
    run.put("gone", "x")
    docs = run.collection("docs")
    docs.insert_one({"_id": "d1", "n": 1})
    rev = docs.find_one("d1")["_rev"]
    head = ns.head()
    out = run.txn(
        reads={"a": v_a, ("docs", "d1"): rev, "absent": 0},
        writes={"a": 2, "gone": swarmlog.DELETE, ("docs", "d1"): {"n": 2}, ("docs", "d2"): {"n": 0}},
    )
    assert ns.head() == head + 4
    events = ns.read_events(after=head)
    assert [e.type for e in events] == ["kv.put", "kv.delete", "doc.replace", "doc.insert"]
    assert out == {"a": head + 1, "gone": 0, ("docs", "d1"): head + 3, ("docs", "d2"): head + 4}
    assert ns.get("a") == 2 and ns.get("gone") is None
    assert docs.find_one("d1") == {"_id": "d1", "n": 2, "_rev": head + 3}
    assert docs.find_one("d2")["n"] == 0
    assert_store_sound(ns)


def test_txn_refuses_everything_and_names_the_key_when_a_read_is_stale(ns, run):
    v1 = run.put("a", 1)
    run.put("a", 2)
    head = ns.head()
    with pytest.raises(swarmlog.ConflictError) as err:
        run.txn(reads={"a": v1}, writes={"b": 1, "a": 3})
    assert err.value.key == "a"
    assert (err.value.expected, err.value.actual) == (v1, v1 + 1)
    docs = run.collection("docs")
    docs.insert_one({"_id": 5})
    with pytest.raises(swarmlog.ConflictError) as err:
        run.txn(reads={("docs", 5): 0}, writes={"b": 1})
    assert err.value.key == "docs/5"
    assert ns.head() == head + 1
    assert ns.get("b") is None and ns.get("a") == 2
    assert_store_sound(ns)


PRECONDITIONS = [
    ({"key": "k", "exists": True}, True),
    ({"key": "k", "exists": False}, False),
    ({"key": "missing", "exists": False}, True),
    ({"key": "k", "equals": {"v": [1, 2]}}, True),
    ({"key": "k", "equals": {"v": [1]}}, False),
    ({"collection": "c", "id": "x", "exists": True}, True),
    ({"collection": "c", "id": "y", "exists": True}, False),
    ({"collection": "c", "filter": {"tag": "hot"}, "exists": True}, True),
    ({"collection": "c", "filter": {"tag": "cold"}, "exists": True}, False),
    ({"collection": "c", "filter": {"tag": "cold"}, "exists": False}, True),
]


@pytest.mark.parametrize(("pre", "holds"), PRECONDITIONS, ids=[repr(p[0]) for p in PRECONDITIONS])
def test_preconditions_gate_the_writes(ns, run, pre, holds):
    run.put("k", {"v": [1, 2]})
    run.collection("c").insert_one({"_id": "x", "tag": "hot"})
    head = ns.head()
    if holds:
        run.txn(writes={"out": 1}, preconditions=[pre])
        assert ns.get("out") == 1
    else:
        with pytest.raises(swarmlog.ConflictError) as err:
            run.txn(writes={"out": 1}, preconditions=[pre])
        assert err.value.key is not None
        assert ns.head() == head
    assert_store_sound(ns)


def test_malformed_transactions_are_refused_before_anything_is_written(ns, run):
    head = ns.head()
    for bad in (
        lambda: run.txn(),
        lambda: run.txn(reads={"a": -1}),
        lambda: run.txn(reads={1: 0}),
        lambda: run.txn(writes={("c",): 1}),
        lambda: run.txn(writes={("c", "x"): "not a document"}),
        lambda: run.txn(writes={("c", "x"): {"_id": "y"}}),
        lambda: run.txn(writes={"a": object()}),
        lambda: run.txn(preconditions=[{"key": "a", "colour": "red"}]),
        lambda: run.txn(preconditions=[{"collection": "c", "filter": {"a": {"$bad": 1}}, "exists": True}]),
        lambda: run.transaction(retries=-1),
    ):
        with pytest.raises(swarmlog.ValidationError):
            bad()
    assert ns.head() == head
    assert_store_sound(ns)


def test_a_transaction_reads_its_own_writes_and_commits_kv_and_documents_together(ns, run):
    run.put("balance/a", 10)
    run.collection("ledger").insert_one({"_id": "acct-b", "balance": 5})
    for attempt in run.transaction(retries=3):
        with attempt as tx:
            a = tx.get("balance/a")
            b = tx.get(("ledger", "acct-b"))
            tx.put("balance/a", a - 4)
            tx.put(("ledger", "acct-b"), {**b, "balance": b["balance"] + 4})
            assert tx.get("balance/a") == 6
            tx.delete("tmp")
            assert tx.get("tmp", "none") == "none"
    assert ns.get("balance/a") == 6
    assert ns.collection("ledger").find_one("acct-b")["balance"] == 9
    assert set(tx.results) == {"balance/a", ("ledger", "acct-b"), "tmp"}
    assert attempt.number == 0
    assert_store_sound(ns)


def test_a_conflicting_attempt_is_retried_and_a_single_with_block_raises(ns, run):
    run.put("n", 0)
    other = ns.begin_run(agent="intruder")
    txn = run.transaction(retries=5)
    for attempt in txn:
        with attempt as tx:
            n = tx.get("n")
            if attempt.number < 2:
                other.put("n", 100 + attempt.number)  # invalidates this attempt's read
            tx.put("n", n + 1)
    assert txn.attempts == 3
    assert ns.get("n") == 102

    with pytest.raises(swarmlog.ConflictError) as err, run.transaction() as tx:
        n = tx.get("n")
        other.put("n", 0)
        tx.put("n", n + 1)
    assert err.value.key == "n"
    assert "for attempt in run.transaction" in str(err.value)
    assert ns.get("n") == 0

    assert run.transaction(retries=2)(lambda tx: tx.put("n", tx.get("n") + 5) or "done") == "done"
    assert ns.get("n") == 5
    assert_store_sound(ns)


def test_a_read_after_the_snapshot_changed_ends_the_attempt_early(ns, run):
    run.put("x", 1)
    run.put("y", 1)
    other = ns.begin_run(agent="intruder")
    seen = []
    for attempt in run.transaction(retries=1):
        with attempt as tx:
            tx.get("x")
            if attempt.number == 0:
                other.put("y", 2)
            seen.append(tx.get("y"))  # first attempt: y changed after the snapshot
            tx.put("z", seen[-1])
    assert seen == [2]
    assert ns.get("z") == 2
    assert_store_sound(ns)


def test_an_exception_in_the_block_writes_nothing(ns, run):
    head = ns.head()
    with pytest.raises(RuntimeError):
        for attempt in run.transaction():
            with attempt as tx:
                tx.put("k", 1)
                raise RuntimeError("boom")
    assert ns.head() == head
    assert_store_sound(ns)


def test_sixteen_concurrent_clients_lose_no_increment(ns):
    clients = 16
    increments_per_client = 8
    setup = ns.begin_run(agent="setup")
    setup.put("counter", 0)
    setup.collection("stats").insert_one({"_id": "hits", "n": 0})
    attempts: list[int] = []
    errors: list[BaseException] = []
    # Every client's first attempt reads, then waits for all the others to have read too:
    # at least 15 of those 16 commits must conflict and be retried.
    all_read = threading.Barrier(clients)

    def client(i: int) -> None:
        run = ns.begin_run(agent=f"client-{i}")
        try:
            for round_ in range(increments_per_client):
                txn = run.transaction(retries=1000)
                for attempt in txn:
                    with attempt as tx:
                        count = tx.get("counter")
                        doc = tx.get(("stats", "hits"))
                        if round_ == 0 and attempt.number == 0:
                            all_read.wait(timeout=60)
                        tx.put("counter", count + 1)
                        tx.put(("stats", "hits"), {"n": doc["n"] + 1})
                attempts.append(txn.attempts)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert ns.get("counter") == clients * increments_per_client
    assert ns.collection("stats").find_one("hits")["n"] == clients * increments_per_client
    assert len(attempts) == clients * increments_per_client
    assert sum(attempts) - len(attempts) >= clients - 1  # the retries that saved the increments
    assert_store_sound(ns)
