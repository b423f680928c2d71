"""Query planning: which index (if any) narrows a filter, how to run it, and ``explain``.

A plan only chooses the *candidates*: the documents an index (or the ``_id`` order) says
might match. Every candidate is then checked with the complete filter, so a plan can be too
wide but never too narrow, and an indexed query returns exactly what a full scan returns.

Usable predicates, at the top level of a filter or inside ``$and``:
- equality (``{"a": 5}``, ``{"a": {"$eq": 5}}``) and ``$in``: point lookups;
- ``$gt $gte $lt $lte``: a range inside the operand's type bracket (two bounds on one path are
  combined unless some document holds an array there, since different elements may satisfy
  each bound);
- ``$or`` whose every branch is usable: the union of the branches.
Among the usable predicates the one with the fewest index entries wins (counted by bisection,
not by scanning). ``_id`` is always indexed (the collection is kept in ``_id`` order).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from projections.documents import D_DOC, CollectionState
from projections.ordering import TOP, bracket_bounds
from projections.query import And, Eq, Field, In, MatchAll, Node, Or, Range
from projections.shaping import sort_docs

# (lo key, hi key, lo inclusive, hi inclusive); None bounds are open.
Interval = tuple[Any, Any, bool, bool]


class Access:
    """How to find the candidate documents of a query."""

    __slots__ = ("kind", "path", "op", "points", "interval", "children", "estimate")

    def __init__(
        self,
        kind: str,
        path: str | None = None,
        op: str | None = None,
        points: list | None = None,
        interval: Interval | None = None,
        children: list[Access] | None = None,
        estimate: int = 0,
    ):
        self.kind = kind  # "id", "index" or "union"
        self.path = path
        self.op = op
        self.points = points
        self.interval = interval
        self.children = children
        self.estimate = estimate

    def describe(self) -> dict:
        if self.kind == "union":
            return {
                "strategy": "union",
                "candidates": self.estimate,
                "branches": [c.describe() for c in self.children or ()],
            }
        return {
            "strategy": self.kind,
            "index": self.path,
            "operator": self.op,
            "candidates": self.estimate,
        }


# -- choosing ----------------------------------------------------------------------------------


def plan(coll: CollectionState, node: Node) -> Access | None:
    """The cheapest access for ``node``, or None for a full scan."""
    if isinstance(node, Field):
        return _plan_field(coll, node)
    if isinstance(node, And):
        best = None
        for child in node.children:
            a = plan(coll, child)
            if a is not None and (best is None or a.estimate < best.estimate):
                best = a
        return best
    if isinstance(node, Or):
        if type(node) is not Or:  # $nor: cannot be narrowed
            return None
        children = []
        for child in node.children:
            a = plan(coll, child)
            if a is None:
                return None
            children.append(a)
        return Access("union", children=children, estimate=sum(c.estimate for c in children))
    return None


def _plan_field(coll: CollectionState, node: Field) -> Access | None:
    path = node.path
    if path == "_id":
        kind = "id"
        multikey = False
    else:
        index = coll.indexes.get(path)
        if index is None:
            return None
        kind = "index"
        multikey = index.multikey > 0
    options: list[Access] = []
    ranges: list[Range] = []
    for p in node.preds:
        t = type(p)
        if t is Eq:
            options.append(Access(kind, path, "$eq", points=[p.key]))
        elif t is In:
            options.append(Access(kind, path, "$in", points=sorted(p.keys)))
        elif t is Range:
            ranges.append(p)
    for r in ranges:
        options.append(Access(kind, path, r.op, interval=_half(r)))
    if len(ranges) > 1 and not multikey:
        combined = _intersect(ranges)
        if combined is not None:
            options.append(Access(kind, path, " ".join(r.op for r in ranges), interval=combined))
    best = None
    for a in options:
        a.estimate = _count(coll, a)
        if best is None or a.estimate < best.estimate:
            best = a
    return best


def _half(r: Range) -> Interval:
    lo_b, hi_b = bracket_bounds(r.key)
    if r.key == (2, 0):  # NaN: only itself, for the inclusive operators
        return (r.key, r.key, True, True) if r.inclusive else (r.key, r.key, False, False)
    if r.lower:
        return (r.key, hi_b, r.inclusive, False)
    return (lo_b, r.key, True, r.inclusive)


def _intersect(ranges: list[Range]) -> Interval | None:
    brackets = {r.key[0] for r in ranges}
    if len(brackets) != 1:
        return None
    lo, hi, lo_inc, hi_inc = _half(ranges[0])
    for r in ranges[1:]:
        l2, h2, li2, hi2 = _half(r)
        if l2 > lo or (l2 == lo and not li2):
            lo, lo_inc = l2, li2
        if h2 < hi or (h2 == hi and not hi2):
            hi, hi_inc = h2, hi2
    return (lo, hi, lo_inc, hi_inc)


# -- counting and fetching ---------------------------------------------------------------------


def _bounds(interval: Interval) -> tuple[tuple, tuple]:
    """Bisection keys over ``(value key, id key)`` pairs for an interval of value keys."""
    lo, hi, lo_inc, hi_inc = interval
    return ((lo,) if lo_inc else (lo, TOP)), ((hi, TOP) if hi_inc else (hi,))


def _count(coll: CollectionState, a: Access) -> int:
    if a.kind == "id":
        docs = coll.docs
        if a.points is not None:
            return sum(1 for k in a.points if k in docs)
        lo, hi, lo_inc, hi_inc = a.interval
        start = docs.bisect_left(lo) if lo_inc else docs.bisect_right(lo)
        end = docs.bisect_right(hi) if hi_inc else docs.bisect_left(hi)
        return max(0, end - start)
    entries = coll.indexes[a.path].entries
    if a.points is not None:
        return sum(entries.bisect_left((k, TOP)) - entries.bisect_left((k,)) for k in a.points)
    lo, hi = _bounds(a.interval)
    return max(0, entries.bisect_left(hi) - entries.bisect_left(lo))


def _collect(coll: CollectionState, a: Access, out: set) -> None:
    if a.kind == "union":
        for c in a.children or ():
            _collect(coll, c, out)
        return
    if a.kind == "id":
        docs = coll.docs
        if a.points is not None:
            out.update(k for k in a.points if k in docs)
        else:
            lo, hi, lo_inc, hi_inc = a.interval
            out.update(docs.irange(lo, hi, inclusive=(lo_inc, hi_inc)))
        return
    entries = coll.indexes[a.path].entries
    if a.points is not None:
        for k in a.points:
            out.update(pair[1] for pair in entries.irange((k,), (k, TOP)))
    else:
        lo, hi = _bounds(a.interval)
        out.update(pair[1] for pair in entries.irange(lo, hi, inclusive=(True, False)))


# -- running -----------------------------------------------------------------------------------


def candidates(coll: CollectionState, node: Node, access: Access | None) -> Iterator[list]:
    """Records that might match, in ``_id`` order."""
    docs = coll.docs
    if access is None:
        return iter(docs.values())
    ids: set = set()
    _collect(coll, access, ids)
    return (docs[k] for k in sorted(ids))


def find(
    coll: CollectionState | None,
    node: Node,
    *,
    sort: list[tuple[str, int]] | None = None,
    skip: int = 0,
    limit: int | None = None,
) -> list[list]:
    """The records matching ``node``: in ``_id`` order, or by ``sort`` (ties by ``_id``)."""
    if coll is None or limit == 0:
        return []
    access = plan(coll, node)
    match = node.match
    matched = (r for r in candidates(coll, node, access) if match(r[D_DOC]))
    if not sort:
        return list(islice(matched, skip, None if limit is None else skip + limit))
    records = sort_docs(list(matched), sort, lambda r: r[D_DOC])
    return records[skip : None if limit is None else skip + limit]


def count(coll: CollectionState | None, node: Node) -> int:
    if coll is None:
        return 0
    if isinstance(node, MatchAll):
        return len(coll.docs)
    access = plan(coll, node)
    match = node.match
    return sum(1 for r in candidates(coll, node, access) if match(r[D_DOC]))


def explain(coll: CollectionState | None, name: str, node: Node) -> dict:
    """How a query on collection ``name`` would run: ``strategy`` is ``"id"`` (the ``_id``
    order), ``"index"`` (a secondary index, named in ``index``), ``"union"`` (an ``$or`` over
    several) or ``"scan"`` (every document); ``candidates`` is how many index entries it visits."""
    docs = 0 if coll is None else len(coll.docs)
    indexes = [] if coll is None else sorted(coll.indexes)
    access = None if coll is None else plan(coll, node)
    if access is None:
        out: dict = {"strategy": "scan", "index": None, "operator": None, "candidates": docs}
    else:
        out = access.describe()
    return {"collection": name, **out, "documents": docs, "indexes": indexes}
