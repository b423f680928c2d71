"""Vector collections: the fold of ``vec.*`` events into canonical vectors and metadata.

The canonical state of a collection is its configuration (dimension, metric, index
parameters), its live items ``id -> [float32 bytes, packed metadata, rev, metadata]`` and the
tombstones of vectors that were deleted or replaced (``rev -> [float32 bytes, seq of their
death]``). ``rev`` is the seq of the ``vec.upsert`` event that wrote a vector; it is also its
label in the approximate index.

The hnswlib index (``projections.vector_index``) is derived from this state and never
snapshotted: it is defined as "every vector born, in seq order, with every death marked at its
seq", replayed into a fresh index with fixed parameters and one thread. An HNSW graph depends
on that interleaving (deleted nodes stay in the graph and shape it), so the tombstones are
kept until a ``vec.compact`` event drops them; after compaction the index is rebuilt from the
live vectors in rev order. Either way the index is a pure function of the canonical state:
the live namespace, a namespace recovered from a snapshot and an ``at(seq)`` view build the
same graph and give the same answers.

``log`` lists those births and deaths in order; the derived index applies it incrementally
(lazily, at the next search), so the fold itself stays cheap and trivially undoable.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from journal.codec import unpack_value
from journal.records import PAYLOAD, SEQ
from projections.ordering import sort_key
from projections.undo import UndoLog

METRICS = ("cosine", "l2", "ip")
# hnswlib parameters written into each collection's vec.create event (so a later change of
# these defaults never changes the graph of an existing collection).
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 100
DEFAULT_SEED = 100

# Positions in an item record and a tombstone.
V_VEC, V_META, V_REV, V_META_DOC = range(4)
T_VEC, T_DEATH = range(2)
# Log entries: (seq, kind, rev, vector bytes or None); deaths sort before births of one seq.
DEATH, BIRTH = 0, 1


class VectorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A vector collection's configuration and size."""

    name: str
    """The collection name."""
    dim: int
    """Number of dimensions of every vector."""
    metric: str
    """``"cosine"``, ``"l2"`` (squared Euclidean) or ``"ip"`` (inner product)."""
    count: int
    """How many vectors it holds now."""


class VectorItem(msgspec.Struct, frozen=True, kw_only=True):
    """One stored vector."""

    id: str | int
    """Its id."""
    embedding: Any
    """The vector as stored (a float32 numpy array, a fresh copy)."""
    metadata: Any
    """Its metadata (a dict or None)."""
    rev: int
    """Seq of the event that wrote it."""


class Hit(NamedTuple):
    """One search result; unpacks as ``(id, score, metadata)``."""

    id: str | int
    """Id of the vector."""
    score: float
    """Cosine similarity (``"cosine"``), inner product (``"ip"``), both higher-is-better; or
    squared Euclidean distance (``"l2"``), lower-is-better. Results come best first."""
    metadata: Any
    """The vector's metadata."""


class VecCollection:
    """Canonical state of one vector collection (plus its lazily derived index)."""

    __slots__ = (
        "name",
        "dim",
        "metric",
        "params",
        "items",
        "by_rev",
        "dead",
        "log",
        "epoch",
        "index",
        "changes",
        "filters",
    )

    def __init__(self, name: str, dim: int, metric: str, params: list):
        self.name = name
        self.dim = dim
        self.metric = metric
        self.params = params  # [M, ef_construction, seed]
        self.items: dict[Any, list] = {}
        self.by_rev: dict[int, tuple] = {}  # rev -> (id, packed metadata) of live vectors
        self.dead: dict[int, list] = {}
        self.log: list[tuple] = []
        self.epoch = 0  # bumped when the log is rewritten; the derived index then rebuilds
        self.index: Any = None  # projections.vector_index.VectorIndex, built on first search
        # Read-side cache of metadata filters: (packed filter, changes) -> allowed revs.
        self.changes = 0  # bumped by every fold and undo, so a cached answer is never stale
        self.filters: dict = {}

    def info(self) -> VectorInfo:
        return VectorInfo(name=self.name, dim=self.dim, metric=self.metric, count=len(self.items))


class VectorsProjection:
    """Fold of ``vec.create`` / ``vec.upsert`` / ``vec.delete`` / ``vec.compact`` events."""

    __slots__ = ("collections",)
    HANDLES = {
        "vec.create": "create",
        "vec.upsert": "upsert",
        "vec.delete": "delete",
        "vec.compact": "compact",
    }

    def __init__(self) -> None:
        self.collections: dict[str, VecCollection] = {}

    def collection(self, name: str) -> VecCollection | None:
        return self.collections.get(name)

    # -- folding -------------------------------------------------------------------------------

    def create(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        name = p["c"]
        self.collections[name] = VecCollection(name, p["dim"], p["metric"], list(p["params"]))
        if undo is not None:
            undo.push(self.collections.pop, name)

    def upsert(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        coll = self.collections[p["c"]]
        seq = f[SEQ]
        item_id = p["id"]
        old = coll.items.get(item_id)
        mark = len(coll.log)
        if old is not None:
            self._kill(coll, old, seq)
        meta = p["meta"]
        coll.items[item_id] = [p["vec"], meta, seq, None if meta is None else unpack_value(meta)]
        coll.by_rev[seq] = (item_id, meta)
        coll.log.append((seq, BIRTH, seq, p["vec"]))
        coll.changes += 1
        if undo is not None:
            undo.push(self._undo_write, coll, item_id, old, seq, mark)

    def delete(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        coll = self.collections[p["c"]]
        item_id = p["id"]
        old = coll.items.pop(item_id)
        mark = len(coll.log)
        self._kill(coll, old, f[SEQ])
        coll.changes += 1
        if undo is not None:
            undo.push(self._undo_write, coll, item_id, old, None, mark)

    @staticmethod
    def _kill(coll: VecCollection, old: list, seq: int) -> None:
        rev = old[V_REV]
        del coll.by_rev[rev]
        coll.dead[rev] = [old[V_VEC], seq]
        coll.log.append((seq, DEATH, rev, None))

    @staticmethod
    def _undo_write(
        coll: VecCollection, item_id: Any, old: list | None, new_rev: int | None, mark: int
    ) -> None:
        if new_rev is not None:
            del coll.items[item_id]
            del coll.by_rev[new_rev]
        if old is not None:
            coll.items[item_id] = old
            coll.by_rev[old[V_REV]] = (item_id, old[V_META])
            del coll.dead[old[V_REV]]
        del coll.log[mark:]
        coll.changes += 1
        index = coll.index
        if index is not None and index.applied > mark:
            coll.epoch += 1  # the index saw what is being taken back: rebuild it

    def compact(self, f: list, undo: UndoLog | None) -> None:
        coll = self.collections[f[PAYLOAD]["c"]]
        if undo is not None:
            undo.push(self._undo_compact, coll, coll.dead, coll.log)
        coll.dead = {}
        coll.log = births(coll.items)
        coll.epoch += 1
        coll.changes += 1

    @staticmethod
    def _undo_compact(coll: VecCollection, dead: dict, log: list) -> None:
        coll.dead = dead
        coll.log = log
        coll.epoch += 1
        coll.changes += 1

    # -- snapshots -----------------------------------------------------------------------------

    def dump(self) -> list:
        out = []
        for name in sorted(self.collections):
            c = self.collections[name]
            items = sorted(c.items.items(), key=lambda kv: sort_key(kv[0]))
            out.append(
                [
                    name,
                    c.dim,
                    c.metric,
                    c.params,
                    [[item_id, r[V_VEC], r[V_META], r[V_REV]] for item_id, r in items],
                    [[rev, t[T_VEC], t[T_DEATH]] for rev, t in sorted(c.dead.items())],
                ]
            )
        return out

    @classmethod
    def load(cls, state: list) -> VectorsProjection:
        self = cls()
        for name, dim, metric, params, items, dead in state:
            c = VecCollection(name, dim, metric, list(params))
            for item_id, vec, meta, rev in items:
                c.items[item_id] = [vec, meta, rev, None if meta is None else unpack_value(meta)]
                c.by_rev[rev] = (item_id, meta)
            for rev, vec, death in dead:
                c.dead[rev] = [vec, death]
            log = births(c.items)
            log.extend((rev, BIRTH, rev, t[T_VEC]) for rev, t in c.dead.items())
            log.extend((t[T_DEATH], DEATH, rev, None) for rev, t in c.dead.items())
            log.sort(key=lambda e: (e[0], e[1]))
            c.log = log
            self.collections[name] = c
        return self


def births(items: dict) -> list[tuple]:
    """Log entries adding the live ``items`` in rev order."""
    return sorted(((r[V_REV], BIRTH, r[V_REV], r[V_VEC]) for r in items.values()), key=lambda e: e[0])
