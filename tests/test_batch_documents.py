"""Document and vector writes inside ``run.batch()``: one atomic commit with the KV writes."""

from __future__ import annotations

import pytest

import swarmlog
from swarmlog.collections import UpdateResult
from tests.helpers import assert_store_sound


def test_a_batch_commits_kv_document_and_vector_writes_in_one_commit_with_their_usual_results(ns):
    run = ns.begin_run(agent="a")
    vecs = run.vectors("memories", dim=3, metric="l2")
    run.collection("notes").insert_one({"_id": "old", "kind": "fact"})
    head = ns.head()

    with run.batch() as b:
        put = b.put("summary", "draft")
        notes = b.collection("notes")
        new_id = notes.insert_one({"kind": "fact"})
        ids = notes.insert_many([{"_id": "x", "kind": "todo"}, {"kind": "idea"}])
        bumped = notes.update_many({"kind": "fact"}, {"$set": {"seen": True}})
        replaced = notes.replace_one("x", {"kind": "done"})
        indexed = notes.create_index("kind")
        upserted = b.vectors(vecs).upsert("m-1", [1, 2, 3], {"kind": "fact"})
        more = b.vectors("memories", dim=3, metric="l2").upsert_many([("m-2", [0, 1, 0]), ("m-3", [0, 0, 1])])
        existed = b.vectors(vecs).delete("m-404")
        deleted = notes.delete_one("old")

    events = ns.read_events(after=head)
    assert len({e.write_id for e in events}) == 1  # one request
    assert [e.type for e in events] == [
        "kv.put",
        "doc.insert",
        "doc.insert",
        "doc.insert",
        "doc.update",
        "doc.update",
        "doc.replace",
        "idx.create",
        "vec.upsert",
        "vec.upsert",
        "vec.upsert",
        "doc.delete",
    ]
    assert put.result == events[0].seq
    assert new_id.result == f"{events[1].seq:016x}"
    assert ids.result == ["x", f"{events[3].seq:016x}"]
    assert bumped.result == UpdateResult(matched=2, modified=2, rev=events[5].seq)
    assert replaced.result == UpdateResult(matched=1, modified=1, rev=events[6].seq)
    assert (indexed.result, existed.result, deleted.result) == (True, False, 1)
    assert upserted.result == events[8].seq and more.result == [events[9].seq, events[10].seq]
    assert b.results == [
        p.result for p in (put, new_id, ids, bumped, replaced, indexed, upserted, more, existed, deleted)
    ]
    assert ns.collection("notes").find_one("x")["kind"] == "done"
    assert ns.vectors("memories").count() == 3
    assert_store_sound(ns)


def test_a_batch_whose_document_write_is_refused_writes_nothing(ns):
    run = ns.begin_run(agent="a")
    run.collection("notes").insert_one({"_id": "a", "n": "text"})
    head = ns.head()

    for refused in (
        lambda b: b.collection("notes").insert_one({"_id": "a"}),  # the _id exists: ConflictError
        lambda b: b.collection("notes").update_one("a", {"$inc": {"n": 1}}),  # $inc on a string
        lambda b: b.vectors("nowhere", dim=2).upsert("x", [1, 2]),  # no such collection
    ):
        with pytest.raises(swarmlog.SwarmlogError), run.batch() as b:
            b.put("k", 1)
            b.collection("notes").insert_one({"kind": "fine"})
            refused(b)
    assert ns.head() == head and ns.get("k") is None
    assert_store_sound(ns)


def test_bad_batch_document_and_vector_writes_are_refused_before_anything_is_sent(ns):
    run = ns.begin_run(agent="a")
    head = ns.head()
    with run.batch() as b:
        with pytest.raises(swarmlog.ValidationError, match=r"\$regex"):
            b.collection("notes").update_one({"a": {"$regex": "x"}}, {"$set": {"b": 1}})
        with pytest.raises(swarmlog.ValidationError, match="needs dim"):
            b.vectors("memories")
        with pytest.raises(swarmlog.ValidationError, match="NaN"):
            b.vectors("memories", dim=2).upsert("x", [float("nan"), 1.0])
    assert b.results == [] and ns.head() == head
    assert_store_sound(ns)


def test_a_retried_batch_with_documents_returns_the_original_results(ns):
    run = ns.begin_run(agent="a")

    def send():
        with run.batch(write_id="batch-1") as b:
            b.collection("notes").insert_one({"kind": "fact"})
            b.collection("notes").update_many({}, {"$inc": {"n": 1}})
        return b.results

    first = send()
    head = ns.head()
    assert send() == first and ns.head() == head
    assert ns.collection("notes").count() == 1
    assert_store_sound(ns)
