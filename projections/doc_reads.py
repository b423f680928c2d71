"""Reads of documents, vectors and transaction snapshots, for ``Reader`` and the engine.

``DocumentReads`` is mixed into ``projections.reader.Reader``, so the live namespace and every
``at(seq)`` view answer the same way from their own projection state. ``EngineReads`` is mixed
into ``NamespaceEngine``: each method takes the engine lock (readers never see a request that
is not durable yet, and hnswlib is never searched while it is being changed) and calls the
reader. ``READ_METHODS`` are also callable on past views.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journal.codec import pack_value, unpack_value
from journal.errors import NotFoundError, ValidationError
from projections.doc_commands import check_collection
from projections.documents import D_PACKED, D_REV
from projections.ordering import sort_key
from projections.planner import count, explain, find
from projections.query import compile_filter
from projections.shaping import compile_projection, normalize_sort
from projections.updates import check_id
from projections.vector_index import search
from projections.vectors import V_META, V_META_DOC, V_REV, V_VEC, Hit, VectorInfo, VectorItem

READ_METHODS = frozenset(
    {
        "doc_find",
        "doc_count",
        "doc_explain",
        "doc_indexes",
        "doc_collections",
        "txn_read",
        "vec_info",
        "vec_get",
        "vec_search",
        "vec_collections",
    }
)


def _check_int(value: Any, what: str, *, optional: bool, minimum: int = 0) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{what} must be an int >= {minimum}, got {value!r}")


def _doc(record: list) -> dict:
    doc = unpack_value(record[D_PACKED])
    doc["_rev"] = record[D_REV]
    return doc


class DocumentReads:
    """Document, vector and transaction reads over ``self.state``."""

    state: Any

    # -- documents -----------------------------------------------------------------------------

    def _docs(self, name: str):
        check_collection(name)
        return self.state.parts["docs"].collection(name)

    def doc_find(
        self,
        coll: str,
        filter: Any = None,
        *,
        sort: Any = None,
        skip: int = 0,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[dict]:
        """Matching documents (fresh copies with ``_rev``), in ``_id`` order or by ``sort``."""
        node = compile_filter(filter)
        spec = normalize_sort(sort)
        proj = compile_projection(projection)
        _check_int(skip, "skip", optional=False)
        _check_int(limit, "limit", optional=True)
        records = find(self._docs(coll), node, sort=spec, skip=skip, limit=limit)
        docs = [_doc(r) for r in records]
        return docs if proj is None else [proj.apply(d) for d in docs]

    def doc_count(self, coll: str, filter: Any = None) -> int:
        return count(self._docs(coll), compile_filter(filter))

    def doc_explain(self, coll: str, filter: Any = None) -> dict:
        return explain(self._docs(coll), coll, compile_filter(filter))

    def doc_indexes(self, coll: str) -> list[str]:
        c = self._docs(coll)
        return ["_id"] + ([] if c is None else sorted(c.indexes))

    def doc_collections(self) -> list[str]:
        return sorted(self.state.parts["docs"].collections)

    # -- transactions --------------------------------------------------------------------------

    def txn_read(self, k: tuple) -> tuple[int, int, Any]:
        """``(head seq, version, value)`` of a transaction key, read atomically: a KV key
        ``("k", key)`` or a document ``("d", collection, _id)``; version 0 when absent."""
        if k[0] == "k":
            entry = self.entry(k[1])  # type: ignore[attr-defined]
            return (
                (self.state.seq, 0, None) if entry is None else (self.state.seq, entry.version, entry.value)
            )
        _, coll, doc_id = k
        check_id(doc_id)
        c = self._docs(coll)
        r = None if c is None else c.docs.get(sort_key(doc_id))
        return (self.state.seq, 0, None) if r is None else (self.state.seq, r[D_REV], _doc(r))

    # -- vectors -------------------------------------------------------------------------------

    def _vectors(self, name: str):
        check_collection(name, "vector collection name")
        coll = self.state.parts["vectors"].collection(name)
        if coll is None:
            raise NotFoundError(
                f"vector collection {name!r} does not exist here; create it with "
                f"run.vectors({name!r}, dim=..., metric=...)"
            )
        return coll

    def vec_info(self, name: str) -> VectorInfo:
        return self._vectors(name).info()

    def vec_collections(self) -> list[str]:
        return sorted(self.state.parts["vectors"].collections)

    def vec_get(self, name: str, item_id: Any) -> VectorItem | None:
        check_id(item_id, "vector id")
        r = self._vectors(name).items.get(item_id)
        if r is None:
            return None
        return VectorItem(
            id=item_id,
            embedding=np.frombuffer(r[V_VEC], dtype="<f4").copy(),
            metadata=None if r[V_META] is None else unpack_value(r[V_META]),
            rev=r[V_REV],
        )

    def vec_search(
        self, name: str, query: bytes, k: int = 10, *, filter: Any = None, ef: int | None = None
    ) -> list[Hit]:
        """The ``k`` nearest vectors to ``query`` (float32 bytes) that match ``filter`` on their
        metadata, best first (see ``projections.vector_index``)."""
        coll = self._vectors(name)
        _check_int(k, "k", optional=False, minimum=1)
        _check_int(ef, "ef", optional=True, minimum=1)
        if not isinstance(query, bytes) or len(query) != 4 * coll.dim:
            raise ValidationError(f"the query must be {coll.dim} float32 values")
        q = np.frombuffer(query, dtype="<f4")
        if not np.isfinite(q).all() or (coll.metric == "cosine" and not q.any()):
            raise ValidationError("the query holds NaN/infinite values or is all zeros")
        allowed, allowed_set = (None, None) if filter is None else _allowed(coll, filter)
        out = []
        by_rev = coll.by_rev
        for rev, score in search(coll, q, k, allowed=allowed, allowed_set=allowed_set, ef=ef):
            item_id, meta = by_rev[rev]
            out.append(Hit(item_id, score, None if meta is None else unpack_value(meta)))
        return out


def _allowed(coll: Any, filter: Any) -> tuple[list[int], set[int]]:
    """Revs of the live vectors whose metadata matches ``filter`` (missing metadata is ``{}``),
    cached per collection until its next change: agents tend to repeat their filters."""
    key = (pack_value(filter, what="the filter"), coll.changes)
    cache = coll.filters
    allowed = cache.get(key)
    if allowed is None:
        match = compile_filter(filter).match
        empty: dict = {}
        revs = [
            r[V_REV] for r in coll.items.values() if match(empty if r[V_META_DOC] is None else r[V_META_DOC])
        ]
        allowed = (revs, set(revs))
        if len(cache) >= 16 or any(k[1] != coll.changes for k in cache):
            cache.clear()
        cache[key] = allowed
    return allowed


def _locked(name: str):
    def method(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._check_open()
            return getattr(self.reader, name)(*args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"EngineReads.{name}"
    method.__doc__ = getattr(DocumentReads, name).__doc__
    return method


class EngineReads:
    """``NamespaceEngine`` methods for the reads above, each under the engine lock."""


for _name in sorted(READ_METHODS):
    setattr(EngineReads, _name, _locked(_name))
del _name
