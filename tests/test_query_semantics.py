"""Query semantics, table-driven: filters, sorts and projections over mixed, nested documents.

Every filter runs against two collections holding the same documents through a real store:
one without secondary indexes (a scan) and one with an index on every path the table uses,
so each row also checks that the planner never changes an answer.
"""

from __future__ import annotations

import math

import pytest

import swarmlog
from tests.helpers import assert_store_sound

NAN = float("nan")

DOCS = [
    {
        "_id": "a",
        "n": 1,
        "s": "x",
        "tags": ["red", "blue"],
        "sub": {"k": 1, "m": [1, 2]},
        "items": [{"sku": "p1", "q": 2}, {"sku": "p2", "q": 5}],
    },
    {"_id": "b", "n": 2.5, "s": "y", "tags": ["green"], "sub": {"k": 2}, "items": [{"sku": "p3", "q": 1}]},
    {"_id": "c", "n": "3", "s": None, "tags": [], "sub": {"k": None}},
    {"_id": "d", "n": None, "tags": "red", "sub": {}, "items": [{"sku": "p1"}, {"q": 9}]},
    {"_id": "e", "n": True, "s": "z", "tags": [["red"], "x"]},
    {"_id": "f", "n": [3, 10], "s": b"bin", "sub": {"k": [1, 5]}},
    {"_id": "g", "n": NAN, "s": {"x": 1, "y": 2}},
    {"_id": "h", "n": 0, "s": {"y": 2, "x": 1}, "flag": False},
]
ALL = [d["_id"] for d in DOCS]
INDEXED = ["n", "s", "tags", "sub.k", "sub.m.1", "items.sku", "items.q", "items.0.sku", "flag"]


def but(*ids: str) -> list[str]:
    return [i for i in ALL if i not in ids]


CASES = [
    # equality, across types: numbers compare by value, bools and strings are other types
    ({"n": 1}, ["a"]),
    ({"n": 1.0}, ["a"]),
    ({"n": 2.5}, ["b"]),
    ({"n": "3"}, ["c"]),
    ({"n": 3}, ["f"]),
    ({"n": True}, ["e"]),
    ({"n": 0}, ["h"]),
    ({"flag": False}, ["h"]),
    ({"flag": 0}, []),
    ({"n": NAN}, ["g"]),
    ({"n": {"$eq": None}}, ["d"]),
    ({"s": None}, ["c", "d"]),  # null or missing
    ({"s": b"bin"}, ["f"]),
    # ranges stay inside the operand's type bracket; NaN is outside every range
    ({"n": {"$gt": 1}}, ["b", "f"]),
    ({"n": {"$gte": 1}}, ["a", "b", "f"]),
    ({"n": {"$lt": 1}}, ["h"]),
    ({"n": {"$lte": 0}}, ["h"]),
    ({"n": {"$gte": 2, "$lte": 2.5}}, ["b"]),
    ({"n": {"$gt": 5, "$lt": 4}}, ["f"]),  # different elements of [3, 10] satisfy each bound
    ({"n": {"$gt": "2"}}, ["c"]),
    ({"n": {"$gte": NAN}}, ["g"]),
    ({"n": {"$gt": NAN}}, []),
    ({"n": {"$gte": None}}, ["d"]),
    ({"n": {"$lt": None}}, []),
    ({"n": {"$gt": False}}, ["e"]),
    ({"s": {"$gte": "x", "$lt": "z"}}, ["a", "b"]),
    ({"s": {"$gt": {"x": 1}}}, ["g", "h"]),  # objects compare field by field, in order
    # negations and sets
    ({"n": {"$ne": 1}}, but("a")),
    ({"n": {"$in": [1, "3", None]}}, ["a", "c", "d"]),
    ({"n": {"$nin": [1, "3", None]}}, ["b", "e", "f", "g", "h"]),
    ({"s": {"$in": ["x", "z"]}}, ["a", "e"]),
    ({"s": {"$in": [None]}}, ["c", "d"]),
    ({"n": {"$not": {"$gt": 1}}}, but("b", "f")),
    ({"n": {"$exists": True, "$ne": None}}, but("d")),
    # arrays: the array itself or any element matches
    ({"tags": "red"}, ["a", "d"]),
    ({"tags": ["red"]}, ["e"]),
    ({"tags": ["red", "blue"]}, ["a"]),
    ({"tags": ["blue", "red"]}, []),
    ({"tags": []}, ["c"]),
    ({"tags": {"$in": ["green", "x"]}}, ["b", "e"]),
    ({"tags": {"$exists": False}}, ["f", "g", "h"]),
    ({"tags": {"$exists": True}}, ["a", "b", "c", "d", "e"]),
    ({"tags": {"$ne": "red"}}, but("a", "d")),
    # nested paths, through documents and arrays of documents
    ({"sub.k": 1}, ["a", "f"]),
    ({"sub.k": None}, ["c", "d", "e", "g", "h"]),
    ({"sub.k": {"$gt": 4}}, ["f"]),
    ({"sub.m.1": 2}, ["a"]),
    ({"sub": {}}, ["d"]),
    ({"sub": {"k": 1}}, []),  # whole-document equality needs every field
    ({"items.sku": "p1"}, ["a", "d"]),
    ({"items.q": {"$gt": 4}}, ["a", "d"]),
    ({"items.sku": None}, ["c", "d", "e", "f", "g", "h"]),
    ({"items.0.sku": "p1"}, ["a", "d"]),
    ({"items": {"sku": "p3", "q": 1}}, ["b"]),
    ({"items.sku": {"$exists": True}}, ["a", "b", "d"]),
    # logical operators
    ({}, ALL),
    ({"$or": [{"n": 1}, {"s": "y"}]}, ["a", "b"]),
    ({"$and": [{"n": {"$gte": 0}}, {"n": {"$lt": 2}}]}, ["a", "h"]),
    ({"$nor": [{"n": 1}, {"s": None}]}, ["b", "e", "f", "g", "h"]),
    ({"$or": [{"tags": "red"}, {"$and": [{"n": {"$lt": 1}}, {"flag": False}]}]}, ["a", "d", "h"]),
    ({"n": {"$gte": 0}, "s": "x"}, ["a"]),
    # _id
    ({"_id": "c"}, ["c"]),
    ({"_id": {"$in": ["a", "h", "zz"]}}, ["a", "h"]),
    ({"_id": {"$gt": "f"}}, ["g", "h"]),
    ({"_id": {"$gte": "b", "$lt": "d"}, "n": {"$exists": True}}, ["b", "c"]),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    mem = swarmlog.open_local(str(tmp_path_factory.mktemp("query") / "store"))
    ns = mem.namespace("query")
    run = ns.begin_run(agent="tester")
    run.collection("plain").insert_many(DOCS)
    indexed = run.collection("indexed")
    for path in INDEXED:
        indexed.create_index(path)
    indexed.insert_many(DOCS)
    assert_store_sound(ns)
    yield ns
    mem.close()


def ids(docs: list[dict]) -> list:
    return [d["_id"] for d in docs]


@pytest.mark.parametrize(("flt", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_a_filter_matches_exactly_the_expected_documents_with_and_without_indexes(store, flt, expected):
    assert ids(store.collection("plain").find_many(flt)) == expected
    assert ids(store.collection("indexed").find_many(flt)) == expected
    assert store.collection("indexed").count(flt) == len(expected)


def test_the_planner_uses_an_index_for_equality_in_and_ranges(store):
    coll = store.collection("indexed")
    assert coll.explain({"n": 1})["strategy"] == "index"
    assert coll.explain({"n": 1})["index"] == "n"
    assert coll.explain({"tags": {"$in": ["red", "x"]}})["operator"] == "$in"
    assert coll.explain({"sub.k": {"$gt": 4}})["index"] == "sub.k"
    assert coll.explain({"_id": "a"})["strategy"] == "id"
    assert coll.explain({"$or": [{"n": 1}, {"s": "y"}]})["strategy"] == "union"
    assert coll.explain({"n": {"$ne": 1}})["strategy"] == "scan"
    assert store.collection("plain").explain({"n": 1})["strategy"] == "scan"
    # The narrowest index wins: one entry has s == "y", four have n >= 1 (f holds 3 and 10).
    assert coll.explain({"n": {"$gte": 1}, "s": "y"})["index"] == "s"


SORTS = [
    ("n", ["d", "g", "h", "a", "b", "f", "c", "e"]),  # null < NaN < numbers (arrays by min) < str < bool
    ({"n": -1}, ["e", "c", "f", "b", "a", "h", "g", "d"]),  # arrays by their max when descending
    ("s", ["c", "d", "a", "b", "e", "g", "h", "f"]),  # null/missing < strings < objects < binary
    ([("tags", 1), ("_id", -1)], ["c", "h", "g", "f", "a", "b", "d", "e"]),  # [] sorts before null
    ("items.q", ["c", "d", "e", "f", "g", "h", "b", "a"]),  # d lacks q in one item: null first
]


@pytest.mark.parametrize(("spec", "expected"), SORTS, ids=[repr(s[0]) for s in SORTS])
def test_sorting_follows_the_documented_type_order(store, spec, expected):
    for name in ("plain", "indexed"):
        assert ids(store.collection(name).find_many(sort=spec)) == expected


def test_skip_limit_and_find_one_follow_the_sort(store):
    coll = store.collection("plain")
    assert ids(coll.find_many(sort="n", skip=2, limit=3)) == ["h", "a", "b"]
    assert ids(coll.find_many({"n": {"$gte": 0}}, limit=2)) == ["a", "b"]
    assert coll.find_one({"n": {"$gte": 0}}, sort={"n": -1})["_id"] == "f"
    assert coll.find_one("g")["s"] == {"x": 1, "y": 2}
    assert math.isnan(coll.find_one("g")["n"])
    assert coll.find_one({"n": 42}) is None
    assert coll.find_many({"n": 1}, limit=0) == []


PROJECTIONS = [
    ({"n": 1}, "a", {"_id": "a", "n": 1}),
    ({"items.sku": 1, "_rev": 0}, "a", {"_id": "a", "items": [{"sku": "p1"}, {"sku": "p2"}]}),
    (["s", "sub.k"], "a", {"_id": "a", "s": "x", "sub": {"k": 1}}),
    ({"_id": 0, "_rev": 0, "tags": 1}, "e", {"tags": [["red"], "x"]}),
    ({"items": 0, "sub.m": 0, "tags": 0, "_rev": 0}, "a", {"_id": "a", "n": 1, "s": "x", "sub": {"k": 1}}),
    (
        {"items.q": 0, "_id": 0, "_rev": 0, "n": 0, "s": 0, "sub": 0},
        "d",
        {"tags": "red", "items": [{"sku": "p1"}, {}]},
    ),
]


@pytest.mark.parametrize(("spec", "doc_id", "expected"), PROJECTIONS, ids=[repr(p[0]) for p in PROJECTIONS])
def test_projections_include_or_exclude_dotted_paths(store, spec, doc_id, expected):
    coll = store.collection("plain")
    got = coll.find_one(doc_id, projection=spec)
    if isinstance(spec, list) or spec.get("_rev", 1) == 1:
        assert got.pop("_rev") == coll.find_one(doc_id)["_rev"]
    assert got == expected
