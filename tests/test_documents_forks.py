"""Documents, vectors and transactions on forked runs: a fork reads and writes its branch, the
main line never sees its writes, and past views of a fork show its documents."""

from __future__ import annotations

import numpy as np

from tests.helpers import assert_store_sound


def test_a_fork_writes_documents_and_vectors_on_its_branch_only(ns):
    main = ns.begin_run(agent="main")
    docs = main.collection("notes")
    docs.insert_many([{"_id": i, "n": i} for i in range(5)])
    docs.create_index("n")
    vecs = main.vectors("emb", dim=3, metric="l2")
    vecs.upsert_many([(i, [i, 0, 0]) for i in range(5)])
    fork_at = ns.head()
    docs.update_one({"_id": 0}, {"$set": {"n": 100}})  # after the fork point: not on the branch

    fork = ns.fork(main.run_id, at=fork_at)
    fdocs = fork.collection("notes")
    assert fdocs.find_one(0)["n"] == 0  # the branch sees the namespace as of the fork point
    fdocs.update_many({"n": {"$gte": 3}}, {"$inc": {"n": 10}})
    fdocs.insert_one({"_id": "branch-only"})
    fork.vectors("emb").delete(4)
    assert [d["n"] for d in fdocs.find_many({"n": {"$gte": 10}})] == [13, 14]
    assert fdocs.explain({"n": 13})["strategy"] == "index"
    assert [h.id for h in fork.vectors("emb").search(np.array([4.0, 0, 0]), k=2)] == [3, 2]

    # The main line is untouched by the fork's writes.
    notes = ns.collection("notes")
    assert notes.find_one("branch-only") is None
    assert [d["n"] for d in notes.find_many(sort="_id")] == [100, 1, 2, 3, 4]
    assert ns.vectors("emb").search(np.array([4.0, 0, 0]), k=1)[0].id == 4

    # A transaction on the fork reads and writes its branch.
    for attempt in fork.transaction(retries=3):
        with attempt as tx:
            doc = tx.get(("notes", 1))
            tx.put(("notes", 1), {**doc, "n": doc["n"] + 1})
    assert fdocs.find_one(1)["n"] == 2
    assert notes.find_one(1)["n"] == 1

    past = ns.at(ns.head() - 1, run=fork.run_id).collection("notes")
    assert past.find_one("branch-only") == fdocs.find_one("branch-only")
    assert past.find_one(1)["n"] == 1
    assert_store_sound(ns)
