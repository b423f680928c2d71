"""What document, index and vector events say about the state they were decided against.

``replay(run_id)`` re-folds a run's history and checks each event's transition
(``projections.refold``). The engine journals a ``doc.*`` / ``idx.*`` / ``vec.*`` event only
when the state allowed it, and the event records what it was decided against:

* ``doc.insert``: no document with that ``_id`` existed (and the stored document carries it);
* ``doc.update`` / ``doc.replace`` / ``doc.delete``: the ``_rev`` it replaced (``prev``);
* ``idx.create``: the path was not indexed yet; ``idx.drop``: it was;
* ``vec.create``: no such collection; ``vec.upsert``: the collection exists with the vector's
  dimension; ``vec.delete``: the vector existed; ``vec.compact``: there were tombstones.

``before`` says why the re-folded state would not have led to the event, ``after`` why the
state after folding it is not what it says; both None when all is well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from journal.codec import unpack_value
from projections.documents import D_REV
from projections.ordering import sort_key
from projections.vectors import V_REV

if TYPE_CHECKING:
    from projections.state import ProjectionSet

PREFIXES = ("doc.", "idx.", "vec.")


def _rev(ps: ProjectionSet, coll: str, doc_id: Any) -> int:
    c = ps.parts["docs"].collection(coll)
    r = None if c is None else c.get(doc_id)
    return 0 if r is None else r[D_REV]


def before(ps: ProjectionSet, type_: str, p: dict) -> str | None:
    """Why the re-folded state ``ps`` would not have produced this event, or None."""
    if type_.startswith("doc."):
        name = f"{p['c']}/{p['id']!r}"
        current = _rev(ps, p["c"], p["id"])
        if type_ == "doc.insert":
            if current:
                return f"doc.insert of {name} was journaled, but the re-folded state already holds it (_rev {current})"
            try:
                stored = unpack_value(p["doc"]).get("_id")
            except Exception as exc:
                return f"the document of doc.insert {name} does not decode: {exc}"
            if sort_key(stored) != sort_key(p["id"]):
                return f"doc.insert of {name} stores a document whose _id is {stored!r}"
            return None
        if p.get("prev") != current:
            held = f"_rev {current}" if current else "no such document"
            return f"{type_} of {name} recorded that it replaced _rev {p.get('prev')}, but the re-folded state holds {held}"
        return None
    if type_.startswith("idx."):
        coll = ps.parts["docs"].collection(p["c"])
        indexed = p["field"] == "_id" or (coll is not None and p["field"] in coll.indexes)
        if type_ == "idx.create" and indexed:
            return f"idx.create of {p['c']}.{p['field']} was journaled, but the re-folded state already has that index"
        if type_ == "idx.drop" and not indexed:
            return (
                f"idx.drop of {p['c']}.{p['field']} was journaled, but the re-folded state has no such index"
            )
        return None
    vc = ps.parts["vectors"].collection(p["c"])
    if type_ == "vec.create":
        if vc is not None:
            return (
                f"vec.create of {p['c']!r} was journaled, but the re-folded state already has that collection"
            )
        return None
    if vc is None:
        return f"{type_} in {p['c']!r} was journaled, but the re-folded state has no such vector collection"
    if type_ == "vec.upsert" and len(p["vec"]) != 4 * vc.dim:
        return f"vec.upsert of {p['id']!r} holds {len(p['vec']) // 4} dimensions; {p['c']!r} has {vc.dim}"
    if type_ == "vec.delete" and p["id"] not in vc.items:
        return (
            f"vec.delete of {p['c']}/{p['id']!r} was journaled, but the re-folded state holds no such vector"
        )
    if type_ == "vec.compact" and not vc.dead:
        return f"vec.compact of {p['c']!r} was journaled, but the re-folded collection has nothing to compact"
    return None


def after(ps: ProjectionSet, seq: int, type_: str, p: dict) -> str | None:
    """Why the state after folding event ``seq`` is not what the event says, or None."""
    if type_.startswith("doc."):
        rev = _rev(ps, p["c"], p["id"])
        if type_ == "doc.delete":
            return None if rev == 0 else f"after doc.delete {seq} the re-folded document still exists"
        return None if rev == seq else f"after {type_} {seq} the re-folded document is not at _rev {seq}"
    if type_.startswith("idx."):
        coll = ps.parts["docs"].collection(p["c"])
        indexed = coll is not None and p["field"] in coll.indexes
        if indexed != (type_ == "idx.create"):
            return f"after {type_} {seq} the re-folded index on {p['c']}.{p['field']} is {'still there' if indexed else 'missing'}"
        return None
    vc = ps.parts["vectors"].collection(p["c"])
    if vc is None:
        return f"after {type_} {seq} the re-folded vector collection {p['c']!r} is missing"
    if type_ == "vec.upsert":
        item = vc.items.get(p["id"])
        if item is None or item[V_REV] != seq:
            return f"after vec.upsert {seq} the re-folded vector {p['id']!r} is not at rev {seq}"
    elif type_ == "vec.delete" and p["id"] in vc.items:
        return f"after vec.delete {seq} the re-folded vector {p['id']!r} still exists"
    elif type_ == "vec.compact" and vc.dead:
        return f"after vec.compact {seq} the re-folded collection still holds tombstones"
    return None
