"""Vector store handles: ``ns.vectors(name)`` (search) and ``run.vectors(name, dim=, metric=)``.

Embeddings are checked here (dimension, NaN, infinities, zero vectors under cosine) and sent
as float32 bytes; nothing malformed is written. Search returns ``Hit(id, score, metadata)``
tuples best first; ``filter`` is a query on the metadata in the collections' filter language.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from journal.errors import ValidationError
from projections.query import compile_filter
from projections.updates import check_id
from projections.vec_commands import (
    encode_vector,
    vec_compact_op,
    vec_delete_op,
    vec_upsert_op,
)
from projections.vectors import Hit, VectorInfo, VectorItem

if TYPE_CHECKING:
    from swarmlog.handles import Run


def info_from_wire(wire: Any) -> VectorInfo:
    """``VectorInfo`` from what a create answers (``[name, dim, metric, count]``) or itself."""
    if isinstance(wire, VectorInfo):
        return wire
    name, dim, metric, count = wire
    return VectorInfo(name=name, dim=dim, metric=metric, count=count)


def _first(results: list) -> Any:
    return results[0]


class VectorsView:
    """Search and reads of a vector collection (of a namespace, a run, or a past view)."""

    def __init__(self, parent: Any, info: VectorInfo):
        self._parent = parent
        self.name = info.name
        self.dim = info.dim
        self.metric = info.metric

    def __repr__(self) -> str:
        return f"<swarmlog.Vectors {self.name!r} dim={self.dim} metric={self.metric!r}>"

    def _call(self, method: str, *args: Any, then: Any = None, **kwargs: Any) -> Any:
        return self._parent._call(method, self.name, *args, then=then, **kwargs)

    def search(self, query: Any, k: int = 10, *, filter: Any = None, ef: int | None = None) -> list[Hit]:
        """The ``k`` vectors nearest to ``query`` whose metadata matches ``filter``, best first:
        exactly ``k`` when at least ``k`` match. ``ef`` widens the approximate search (default
        64; higher is slower and more exact)."""
        q = encode_vector(query, self.dim, self.metric, "the query")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValidationError(f"k must be an int >= 1, got {k!r}")
        if filter is not None:
            compile_filter(filter)
        return self._call("vec_search", q, k, filter=filter, ef=ef)

    def get(self, item_id: Any) -> VectorItem | None:
        """The stored vector, metadata and rev of ``item_id``, or None."""
        check_id(item_id, "vector id")
        return self._call("vec_get", item_id)

    def info(self) -> VectorInfo:
        """Dimension, metric and current count."""
        return self._call("vec_info")

    def count(self) -> int:
        """How many vectors the collection holds."""
        return self._call("vec_info", then=lambda info: info.count)


class Vectors(VectorsView):
    """A vector collection written by a run."""

    def __init__(self, run: Run, info: VectorInfo):
        super().__init__(run, info)
        self._run = run

    def _write(self, op: Any, write_id: str | None, then: Any = _first) -> Any:
        return self._run._write([op], write_id=write_id, then=then)

    def upsert(
        self, item_id: Any, embedding: Any, metadata: dict | None = None, *, write_id: str | None = None
    ) -> int:
        """Insert or replace one vector; returns its rev (the seq of its event)."""
        op = vec_upsert_op(
            self.name, [(item_id, embedding, metadata)], dim=self.dim, metric=self.metric, tool=self._run.tool
        )
        return self._write(op, write_id, lambda r: r[0][0])

    def upsert_many(self, items: Iterable, *, write_id: str | None = None) -> list[int]:
        """Insert or replace ``(id, embedding, metadata)`` triples atomically; returns their revs."""
        op = vec_upsert_op(self.name, list(items), dim=self.dim, metric=self.metric, tool=self._run.tool)
        return self._write(op, write_id)

    def delete(self, item_id: Any, *, write_id: str | None = None) -> bool:
        """Delete one vector; returns whether it existed."""
        return self._write(
            vec_delete_op(self.name, [item_id], tool=self._run.tool), write_id, lambda r: r[0] > 0
        )

    def delete_many(self, ids: Iterable, *, write_id: str | None = None) -> int:
        """Delete vectors atomically; returns how many existed."""
        return self._write(vec_delete_op(self.name, list(ids), tool=self._run.tool), write_id)

    def compact(self, *, write_id: str | None = None) -> bool:
        """Drop the tombstones of deleted and replaced vectors from the state and rebuild the
        index from the live vectors (at the next search). Returns False when there were none."""
        return self._write(vec_compact_op(self.name, tool=self._run.tool), write_id)
