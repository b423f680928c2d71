"""Document collections through the public API: writes, updates, indexes, history, refusals."""

from __future__ import annotations

import threading

import pytest

import swarmlog
from tests.helpers import assert_store_sound


@pytest.fixture
def run(ns):
    return ns.begin_run(agent="writer")


def test_insert_generates_sortable_unique_ids_and_documents_carry_their_rev(ns, run):
    docs = run.collection("notes")
    first = docs.insert_one({"text": "one"})
    more = docs.insert_many([{"text": "two"}, {"_id": "mine", "text": "three"}, {"text": "four"}])
    assert more[1] == "mine"
    generated = [first, more[0], more[2]]
    assert generated == sorted(generated)
    assert len(set(generated)) == 3
    for doc_id in [first, *more]:
        doc = docs.find_one(doc_id)
        assert doc["_id"] == doc_id
        assert ns.event(doc["_rev"]).type == "doc.insert"
        assert ns.event(doc["_rev"]).payload["id"] == doc_id
    assert [d["text"] for d in ns.collection("notes").find_many()] == ["one", "two", "four", "three"]
    assert_store_sound(ns)


def test_a_duplicate_id_refuses_the_whole_insert(ns, run):
    docs = run.collection("notes")
    docs.insert_one({"_id": 7, "v": 1})
    head = ns.head()
    with pytest.raises(swarmlog.ConflictError, match="already exists"):
        docs.insert_many([{"_id": 8}, {"_id": 7}])
    assert ns.head() == head
    assert docs.find_one(8) is None
    assert_store_sound(ns)


UPDATES = [
    ({}, {"$set": {"a.b.c": 1}}, {"a": {"b": {"c": 1}}}),
    ({"a": {"b": 1}}, {"$set": {"a.c": 2, "z": [1]}}, {"a": {"b": 1, "c": 2}, "z": [1]}),
    ({"arr": [0]}, {"$set": {"arr.2": "x"}}, {"arr": [0, None, "x"]}),
    ({"items": [{"q": 1}, {"q": 2}]}, {"$set": {"items.1.q": 7}}, {"items": [{"q": 1}, {"q": 7}]}),
    ({"a": {"b": 1, "c": 2}}, {"$unset": {"a.b": ""}}, {"a": {"c": 2}}),
    ({"arr": [1, 2, 3]}, {"$unset": {"arr.1": 1}}, {"arr": [1, None, 3]}),
    ({"n": 1}, {"$inc": {"n": 2, "m": 1.5}}, {"n": 3, "m": 1.5}),
    ({"n": 1.5}, {"$inc": {"n": -1}}, {"n": 0.5}),
    ({}, {"$push": {"log": "a"}}, {"log": ["a"]}),
    ({"log": ["a"]}, {"$push": {"log": {"$each": ["b", "c"]}}}, {"log": ["a", "b", "c"]}),
    ({"log": ["a"]}, {"$push": {"log": ["x"]}}, {"log": ["a", ["x"]]}),
    ({"v": [1, 2, 1, 3]}, {"$pull": {"v": 1}}, {"v": [2, 3]}),
    ({"v": [1, 5, 3, 8]}, {"$pull": {"v": {"$gte": 5}}}, {"v": [1, 3]}),
    (
        {"items": [{"sku": "a", "q": 1}, {"sku": "b", "q": 1}, 4]},
        {"$pull": {"items": {"sku": "a"}}},
        {"items": [{"sku": "b", "q": 1}, 4]},
    ),
    ({"n": 1}, {"$set": {"n": 1}, "$unset": {"gone": ""}}, {"n": 1}),  # changes nothing
]


@pytest.mark.parametrize(("before", "update", "after"), UPDATES, ids=[repr(u[1]) for u in UPDATES])
def test_update_operators_produce_the_expected_document(ns, run, before, update, after):
    docs = run.collection("u")
    docs.insert_one({"_id": "x", **before})
    result = docs.update_one({"_id": "x"}, update)
    got = docs.find_one("x")
    rev = got.pop("_rev")
    assert got == {"_id": "x", **after}
    assert result.matched == 1
    assert result.modified == int(after != before)
    assert result.rev == rev
    if result.modified:
        # The event holds the resulting document, so replay never re-runs the operator.
        assert ns.event(rev).payload["doc"] == {"_id": "x", **after}
    assert_store_sound(ns)


def test_an_update_that_changes_nothing_writes_no_event(ns, run):
    docs = run.collection("u")
    docs.insert_one({"_id": 1, "n": 5})
    head = ns.head()
    result = docs.update_one({"_id": 1}, {"$set": {"n": 5}})
    assert (result.matched, result.modified) == (1, 0)
    assert ns.head() == head
    assert_store_sound(ns)


def test_update_many_upsert_replace_and_deletes(ns, run):
    docs = run.collection("tasks")
    docs.insert_many([{"_id": i, "state": "open", "n": i} for i in range(6)])
    res = docs.update_many({"n": {"$gte": 3}}, {"$set": {"state": "done"}})
    assert (res.matched, res.modified) == (3, 3)
    assert docs.count({"state": "done"}) == 3

    res = docs.update_one({"owner": "ann", "kind": "review"}, {"$inc": {"count": 1}}, upsert=True)
    assert res.matched == 0 and res.upserted_id is not None
    assert docs.find_one(res.upserted_id) == {
        "_id": res.upserted_id,
        "owner": "ann",
        "kind": "review",
        "count": 1,
        "_rev": res.rev,
    }
    res = docs.update_one({"_id": "fixed", "a.b": 2}, {"$set": {"c": 3}}, upsert=True)
    assert res.upserted_id == "fixed"
    assert docs.find_one("fixed") == {"_id": "fixed", "a": {"b": 2}, "c": 3, "_rev": res.rev}

    old = docs.find_one(0)
    res = docs.replace_one({"_id": 0}, {"title": "new", "_rev": 12345})
    assert docs.find_one(0) == {"_id": 0, "title": "new", "_rev": res.rev}
    assert res.rev > old["_rev"]
    res = docs.replace_one({"_id": "r"}, {"title": "fresh"}, upsert=True)
    assert res.upserted_id == "r"

    assert docs.delete_one({"state": "done"}) == 1
    assert docs.delete_many({"state": {"$in": ["open", "done"]}}) == 4
    assert docs.delete_many({"state": "nothing"}) == 0
    ann = docs.find_one({"owner": "ann"})["_id"]
    assert [d["_id"] for d in docs.find_many()] == [0, ann, "fixed", "r"]
    assert_store_sound(ns)


def test_indexes_are_built_from_existing_documents_kept_in_snapshots_and_dropped(store_path):
    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("idx")
    run = ns.begin_run(agent="writer")
    docs = run.collection("people")
    docs.insert_many([{"name": f"p{i}", "age": i % 50, "tags": [i % 3, i % 5]} for i in range(300)])
    assert docs.create_index("age") is True
    assert docs.create_index("age") is False
    assert docs.create_index("tags") is True
    assert docs.list_indexes() == ["_id", "age", "tags"]
    expected_age = [d["_id"] for d in docs.find_many() if 10 <= d["age"] < 13]
    assert docs.explain({"age": {"$gte": 10, "$lt": 13}})["index"] == "age"
    assert [d["_id"] for d in docs.find_many({"age": {"$gte": 10, "$lt": 13}})] == expected_age
    ns.snapshot()
    docs.update_many({"age": 10}, {"$set": {"age": 99}})
    expected_after = [d["_id"] for d in docs.find_many({"age": {"$gte": 10, "$lt": 13}})]
    digest = ns.digest()
    assert_store_sound(ns)
    mem.close()

    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("idx")
    coll = ns.collection("people")
    assert ns.digest() == digest  # snapshot + tail folds to the same state
    assert coll.list_indexes() == ["_id", "age", "tags"]
    assert coll.explain({"tags": 4})["strategy"] == "index"
    assert [d["_id"] for d in coll.find_many({"age": {"$gte": 10, "$lt": 13}})] == expected_after
    run = ns.run(run.run_id)
    assert run.collection("people").drop_index("age") is True
    assert run.collection("people").drop_index("age") is False
    assert coll.explain({"age": 3})["strategy"] == "scan"
    assert_store_sound(ns)
    mem.close()


def test_at_seq_shows_documents_and_indexes_as_they_were(ns, run):
    docs = run.collection("hist")
    docs.insert_one({"_id": "k", "v": 1})
    seq_v1 = ns.head()
    docs.update_one({"_id": "k"}, {"$set": {"v": 2}})
    docs.create_index("v")
    docs.delete_one({"_id": "k"})
    past = ns.at(seq_v1).collection("hist")
    assert past.find_one("k") == {"_id": "k", "v": 1, "_rev": seq_v1}
    assert past.list_indexes() == ["_id"]
    assert ns.at(seq_v1 + 2).collection("hist").explain({"v": 2})["strategy"] == "index"
    assert ns.at(seq_v1 + 2).collection("hist").find_many({"v": 2})[0]["_rev"] == seq_v1 + 1
    assert ns.collection("hist").find_one("k") is None
    assert_store_sound(ns)


def test_a_retried_write_id_returns_the_original_result_and_writes_nothing(ns, run):
    docs = run.collection("idem")
    first = docs.insert_one({"x": 1}, write_id="w-1")
    head = ns.head()
    assert docs.insert_one({"x": 1}, write_id="w-1") == first
    res = docs.update_many({}, {"$inc": {"x": 1}}, write_id="w-2")
    assert docs.update_many({}, {"$inc": {"x": 1}}, write_id="w-2") == res
    assert ns.head() == head + 1
    assert docs.find_one(first)["x"] == 2
    assert_store_sound(ns)


BAD_FILTERS = [
    ({"a": {"$foo": 1}}, "$foo", "'a'"),
    ({"a.b": {"$in": 5}}, "$in", "'a.b'"),
    ({"a": {"$gt": 1, "b": 2}}, "mixes operators", "'a'"),
    ({"a": {"$exists": "yes"}}, "$exists", "'a'"),
    ({"a": {"$not": 5}}, "$not", "'a'"),
    ({"$where": "1"}, "$where", "top-level"),
    ({"$and": []}, "$and", "non-empty"),
    ({"a..b": 1}, "a..b", "empty component"),
    ({"x.$y": 1}, "x.$y", "reserved"),
]


@pytest.mark.parametrize(("flt", "op", "where"), BAD_FILTERS, ids=[repr(b[0]) for b in BAD_FILTERS])
def test_a_malformed_filter_names_the_operator_and_path_and_writes_nothing(ns, run, flt, op, where):
    docs = run.collection("v")
    docs.insert_one({"a": 1})
    head = ns.head()
    for call in (
        lambda: docs.find_many(flt),
        lambda: ns.collection("v").count(flt),
        lambda: docs.update_many(flt, {"$set": {"z": 1}}),
        lambda: docs.delete_many(flt),
    ):
        with pytest.raises(swarmlog.ValidationError) as err:
            call()
        assert op in str(err.value) and where in str(err.value)
    assert ns.head() == head
    assert_store_sound(ns)


BAD_UPDATES = [
    ({"$inc": {"name": 1}}, "$inc", "'name'"),  # $inc on a string (found on the engine)
    ({"$push": {"name": 1}}, "$push", "'name'"),
    ({"$pull": {"n": 1}}, "$pull", "'n'"),
    ({"$set": {"n.x": 1}}, "$set", "'n.x'"),  # n holds a number
    ({"$set": {"list.x": 1}}, "$set", "'list.x'"),  # an array needs a numeric position
    ({"$rename": {"a": "b"}}, "$rename", "unknown"),
    ({"$set": {"a": 1}, "$inc": {"a.b": 1}}, "'a.b'", "conflicts"),
    ({"$set": {"_id": 2}}, "$set", "'_id'"),
    ({"$inc": {"n": "1"}}, "$inc", "'n'"),
    ({"$set": {"a": {"b.c": 1}}}, "$set", "'a'"),
    ({"$set": {}}, "$set", "non-empty"),
    ({"name": "x"}, "replace_one", "field"),
    ({}, "update", "non-empty"),
    ({"$inc": {"n": 2**63}}, "cannot be stored", "updated document"),  # overflows 64 bits
]


@pytest.mark.parametrize(("update", "op", "where"), BAD_UPDATES, ids=[repr(b[0]) for b in BAD_UPDATES])
def test_a_malformed_update_names_the_operator_and_path_and_writes_nothing(ns, run, update, op, where):
    docs = run.collection("v")
    docs.insert_many([{"_id": 1, "name": "a", "n": 2**63, "list": [1]}, {"_id": 2, "name": "b", "n": 0}])
    head = ns.head()
    before = docs.find_many()
    with pytest.raises(swarmlog.ValidationError) as err:
        docs.update_many({}, update)
    assert op in str(err.value) and where in str(err.value), str(err.value)
    assert ns.head() == head
    assert docs.find_many() == before
    assert_store_sound(ns)


def test_bad_documents_and_names_are_refused_before_anything_is_written(ns, run):
    docs = run.collection("v")
    head = ns.head()
    for bad in (
        lambda: docs.insert_one({"$x": 1}),
        lambda: docs.insert_one({"a.b": 1}),
        lambda: docs.insert_one({"a": {1: 2}}),
        lambda: docs.insert_one({"a": object()}),
        lambda: docs.insert_one({"_id": [1]}),
        lambda: docs.insert_one({"_id": True}),
        lambda: docs.insert_one("not a dict"),
        lambda: docs.insert_many([]),
        lambda: docs.insert_many([{"_id": 1}, {"_id": 1}]),
        lambda: docs.replace_one({}, {"$set": {"a": 1}}),
        lambda: docs.find_many(sort={"a": 2}),
        lambda: docs.find_many(projection={"a": 1, "b": 0}),
        lambda: docs.find_many(limit=-1),
        lambda: docs.create_index("a..b"),
        lambda: run.collection(""),
        lambda: run.collection("$sys"),
    ):
        with pytest.raises(swarmlog.ValidationError):
            bad()
    assert ns.head() == head
    assert_store_sound(ns)


def test_a_failed_request_in_a_batch_of_concurrent_writers_is_rolled_back_alone(ns, run):
    docs = run.collection("race")
    docs.insert_one({"_id": "taken"})
    writers = 8
    errors: list = []

    def write(i: int) -> None:
        try:
            # Odd writers collide with the existing _id on their second document.
            docs.insert_many([{"_id": f"w{i}"}, {"_id": "taken" if i % 2 else f"w{i}b"}])
        except swarmlog.ConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == writers // 2
    assert sorted(d["_id"] for d in docs.find_many({"_id": {"$ne": "taken"}})) == sorted(
        x for i in range(0, writers, 2) for x in (f"w{i}", f"w{i}b")
    )
    assert_store_sound(ns)
