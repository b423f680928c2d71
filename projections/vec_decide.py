"""Deciding vector operations: state checks, then ``vec.*`` events (engine handlers).

The checks here repeat the caller-side ones that depend on the collection (its dimension,
finiteness, zero vectors under cosine), so a request that reaches the engine by another path
cannot store a vector the index would choke on.
"""

from __future__ import annotations

import numpy as np

from journal.codec import packed as packed_value
from journal.errors import NotFoundError, ValidationError
from projections.vec_commands import VecCompact, VecCreate, VecDelete, VecUpsert
from projections.vectors import DEFAULT_EF_CONSTRUCTION, DEFAULT_M, DEFAULT_SEED, VecCollection

_PACKED = 1  # journal.codec.EXT_PACKED


def _collection(engine, name: str) -> VecCollection:
    coll = engine.state.parts["vectors"].collection(name)
    if coll is None:
        raise NotFoundError(
            f"vector collection {name!r} does not exist; create it with run.vectors({name!r}, dim=..., metric=...)"
        )
    return coll


def _info_wire(coll: VecCollection) -> list:
    return [coll.name, coll.dim, coll.metric, len(coll.items)]


def op_create(engine, req, op: VecCreate, builder, undo, extra, out):
    coll = engine.state.parts["vectors"].collection(op.coll)
    if coll is not None:
        if coll.dim != op.dim or (op.metric is not None and coll.metric != op.metric):
            raise ValidationError(
                f"vector collection {op.coll!r} exists with dim={coll.dim}, metric={coll.metric!r}; "
                f"it cannot be reopened with dim={op.dim}, metric={op.metric!r}"
            )
        wire = _info_wire(coll)
        return wire, ["v", wire]
    payload = {
        "c": op.coll,
        "dim": op.dim,
        "metric": op.metric or "cosine",
        "params": [DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_SEED],
    }
    engine._emit(req, op, "vec.create", payload, payload, engine._clock.now(), extra, builder, undo)
    wire = _info_wire(engine.state.parts["vectors"].collection(op.coll))
    return wire, ["v", wire]


def op_upsert(engine, req, op: VecUpsert, builder, undo, extra, out):
    coll = _collection(engine, op.coll)
    size = 4 * coll.dim
    revs = []
    for item_id, vec, meta in zip(op.ids, op.vectors, op.metas, strict=True):
        if len(vec) != size:
            raise ValidationError(
                f"the embedding of {item_id!r} has {len(vec) // 4} dimensions; {op.coll!r} needs {coll.dim}"
            )
        arr = np.frombuffer(vec, dtype="<f4")
        if not np.isfinite(arr).all() or (coll.metric == "cosine" and not arr.any()):
            raise ValidationError(f"the embedding of {item_id!r} holds NaN/infinite values or is all zeros")
        payload = {
            "c": op.coll,
            "id": item_id,
            "vec": vec,
            "meta": None if meta is None else packed_value(meta),
        }
        fold = {"c": op.coll, "id": item_id, "vec": vec, "meta": meta}
        seq, _, _ = engine._emit(
            req, op, "vec.upsert", payload, fold, engine._clock.now(), extra, builder, undo
        )
        revs.append(seq)
    return revs, ["v", revs]


def op_delete(engine, req, op: VecDelete, builder, undo, extra, out):
    coll = _collection(engine, op.coll)
    deleted = 0
    for item_id in op.ids:
        if item_id not in coll.items:
            continue
        payload = {"c": op.coll, "id": item_id}
        engine._emit(req, op, "vec.delete", payload, payload, engine._clock.now(), extra, builder, undo)
        deleted += 1
    return deleted, ["v", deleted]


def op_compact(engine, req, op: VecCompact, builder, undo, extra, out):
    coll = _collection(engine, op.coll)
    if not coll.dead:
        return False, ["v", False]
    payload = {"c": op.coll}
    engine._emit(req, op, "vec.compact", payload, payload, engine._clock.now(), extra, builder, undo)
    return True, ["v", True]


HANDLERS = {
    VecCreate: op_create,
    VecUpsert: op_upsert,
    VecDelete: op_delete,
    VecCompact: op_compact,
}
