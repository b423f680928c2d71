"""Property: a query answered through secondary indexes returns exactly what a full scan returns.

Documents hold mixed types (null, bools, ints, floats with NaN and -0.0, strings, arrays,
nested documents and arrays of documents) and fields that are sometimes missing; filters mix
every operator. Each example writes the same documents (and the same later updates and
deletes) into an indexed and an unindexed collection of one real store and compares answers.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmlog
from tests.helpers import assert_store_sound

PATHS = ["a", "b", "c.x", "c"]
INDEXED = ["a", "b", "c.x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -0.0, 2.0, float("nan"), float("inf")]),
    st.sampled_from(["", "a", "b", "ab"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
inner = st.one_of(
    st.fixed_dictionaries({}, optional={"x": values}),
    st.lists(st.fixed_dictionaries({}, optional={"x": values}), max_size=3),
    scalars,
)
documents = st.fixed_dictionaries({}, optional={"a": values, "b": values, "c": inner})


def field_filters(path: str):
    return st.one_of(
        values.map(lambda v: {path: v}),
        st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), values).map(
            lambda t: {path: {t[0]: t[1]}}
        ),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(scalars, max_size=3)).map(
            lambda t: {path: {t[0]: t[1]}}
        ),
        st.booleans().map(lambda b: {path: {"$exists": b}}),
        st.tuples(st.sampled_from(["$gt", "$lte"]), scalars).map(lambda t: {path: {"$not": {t[0]: t[1]}}}),
        st.tuples(scalars, scalars).map(lambda t: {path: {"$gte": t[0], "$lt": t[1]}}),
    )


leaf = st.sampled_from(PATHS).flatmap(field_filters)
filters = st.recursive(
    leaf,
    lambda inner_f: st.one_of(
        st.lists(inner_f, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(inner_f, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        st.tuples(inner_f, inner_f).map(lambda t: {**t[0], **t[1]}),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    mem = swarmlog.open_local(str(tmp_path_factory.mktemp("equiv") / "store"))
    ns = mem.namespace("equiv")
    run = ns.begin_run(agent="hypothesis")
    yield ns, run, itertools.count()
    assert_store_sound(ns)
    mem.close()


updates = st.one_of(
    st.tuples(st.sampled_from(["a", "b", "c.x"]), values).map(lambda t: {"$set": {t[0]: t[1]}}),
    st.tuples(st.sampled_from(["a", "b"]), scalars).map(lambda t: {"$push": {t[0]: t[1]}}),
    st.just({"$unset": {"c": ""}}),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    docs=st.lists(documents, min_size=1, max_size=25),
    queries=st.lists(filters, min_size=1, max_size=6),
    index_first=st.booleans(),
    changes=st.lists(st.tuples(leaf, updates), max_size=3),
    sort=st.sampled_from([None, "a", {"c.x": -1}, [("b", 1), ("a", -1)]]),
)
def test_an_indexed_query_returns_exactly_what_a_scan_returns(
    store, docs, queries, index_first, changes, sort
):
    _ns, run, counter = store
    n = next(counter)
    plain = run.collection(f"plain{n}")
    indexed = run.collection(f"indexed{n}")
    if index_first:
        for path in INDEXED:
            indexed.create_index(path)
    docs = [{"_id": i, **d} for i, d in enumerate(docs)]
    plain.insert_many(docs)
    indexed.insert_many(docs)
    if not index_first:
        for path in INDEXED:
            indexed.create_index(path)
    # Later writes maintain the indexes: the same updates and deletes on both collections
    # (an update the documents refuse, like $push onto a string, is refused by both).
    for flt, update in changes:
        outcomes = []
        for coll in (plain, indexed):
            try:
                res = coll.update_many(flt, update)
                outcomes.append((res.matched, res.modified))
            except swarmlog.ValidationError as exc:
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1]
    assert plain.delete_one({"a": {"$exists": False}}) == indexed.delete_one({"a": {"$exists": False}})

    for flt in queries:
        expected = [d["_id"] for d in plain.find_many(flt, sort=sort)]
        assert [d["_id"] for d in indexed.find_many(flt, sort=sort)] == expected, indexed.explain(flt)
        assert indexed.count(flt) == len(expected)
        assert [d["_id"] for d in indexed.find_many(flt, sort=sort, limit=2, skip=1)] == expected[1:3]
    probe = {"a": docs[0].get("a")}
    assert indexed.explain(probe)["strategy"] == "index"
    assert [d["_id"] for d in indexed.find_many(probe)] == [d["_id"] for d in plain.find_many(probe)]
