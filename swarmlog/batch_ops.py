"""Document and vector writes inside ``run.batch()``: one atomic commit with the KV writes.

``b.collection(name)`` and ``b.vectors(name, dim=...)`` take the same write methods as
``run.collection`` / ``run.vectors`` and build the same operations (``projections.doc_commands``
and ``projections.vec_commands``), checked here, before anything is sent. Each returns a
``Pending`` whose ``result`` — after the batch committed — is what the method returns outside a
batch (an ``_id``, an ``UpdateResult``, a rev …); ``b.results`` holds the same values.

A batch makes no call before it commits, so ``b.vectors`` cannot look a collection up: it needs
``dim`` (and ``metric``, to refuse zero vectors under cosine here already), or the handle that
``run.vectors(...)`` returned. The collection must exist when the batch commits
(``NotFoundError`` otherwise, and nothing of the batch is written).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from journal.errors import ValidationError
from projections.doc_commands import (
    check_collection,
    create_index_op,
    delete_docs_op,
    drop_index_op,
    insert_op,
    replace_op,
    update_op,
)
from projections.vec_commands import (
    check_dim,
    check_metric,
    vec_compact_op,
    vec_delete_op,
    vec_upsert_op,
)
from swarmlog.collections import UpdateResult, _filter
from swarmlog.vectors import VectorsView

if TYPE_CHECKING:
    from swarmlog.handles import Batch, Pending


def _first(result: list) -> Any:
    return result[0]


def _update_result(result: list) -> UpdateResult:
    matched, modified, upserted, rev = result
    return UpdateResult(matched=matched, modified=modified, upserted_id=upserted, rev=rev)


def _existed(deleted: int) -> bool:
    return deleted > 0


class BatchCollection:
    """The writes of a document collection, added to a batch (``b.collection(name)``)."""

    def __init__(self, batch: Batch, name: str):
        check_collection(name)
        self._batch = batch
        self.name = name

    def __repr__(self) -> str:
        return f"<swarmlog.BatchCollection {self.name!r}>"

    def insert_one(self, doc: dict, *, tool: str | None = None) -> Pending:
        """Insert ``doc``; the result is its ``_id``."""
        return self._batch._add(insert_op(self.name, [doc], tool=tool), _first)

    def insert_many(self, docs: list[dict], *, tool: str | None = None) -> Pending:
        """Insert ``docs``; the result is their ``_id`` values in order."""
        return self._batch._add(insert_op(self.name, list(docs), tool=tool))

    def update_one(
        self, filter: Any, update: dict, *, upsert: bool = False, tool: str | None = None
    ) -> Pending:
        """The result is an ``UpdateResult``."""
        op = update_op(self.name, _filter(filter), update, upsert=upsert, tool=tool)
        return self._batch._add(op, _update_result)

    def update_many(
        self, filter: Any, update: dict, *, upsert: bool = False, tool: str | None = None
    ) -> Pending:
        op = update_op(self.name, _filter(filter), update, many=True, upsert=upsert, tool=tool)
        return self._batch._add(op, _update_result)

    def replace_one(
        self, filter: Any, doc: dict, *, upsert: bool = False, tool: str | None = None
    ) -> Pending:
        op = replace_op(self.name, _filter(filter), doc, upsert=upsert, tool=tool)
        return self._batch._add(op, _update_result)

    def delete_one(self, filter: Any, *, tool: str | None = None) -> Pending:
        """The result is 1 or 0."""
        return self._batch._add(delete_docs_op(self.name, _filter(filter), tool=tool))

    def delete_many(self, filter: Any, *, tool: str | None = None) -> Pending:
        """The result is how many were deleted."""
        return self._batch._add(delete_docs_op(self.name, _filter(filter), many=True, tool=tool))

    def create_index(self, field: str, *, tool: str | None = None) -> Pending:
        """The result is False when ``field`` was indexed already."""
        return self._batch._add(create_index_op(self.name, field, tool=tool))

    def drop_index(self, field: str, *, tool: str | None = None) -> Pending:
        return self._batch._add(drop_index_op(self.name, field, tool=tool))


class BatchVectors:
    """The writes of a vector collection, added to a batch (``b.vectors(name, dim=...)``)."""

    def __init__(self, batch: Batch, name: Any, dim: int | None, metric: str | None):
        if isinstance(name, VectorsView):
            name, dim, metric = name.name, name.dim, name.metric
        elif dim is None:
            raise ValidationError(
                f"b.vectors({name!r}) needs dim= (and metric=): a batch sends nothing before it "
                f"commits, so it cannot look the collection up; or pass the handle run.vectors(...) returned"
            )
        check_collection(name, "vector collection name")
        check_dim(dim)
        check_metric(metric, optional=True)
        self._batch = batch
        self.name = name
        self.dim = dim
        self.metric = metric

    def __repr__(self) -> str:
        return f"<swarmlog.BatchVectors {self.name!r} dim={self.dim}>"

    def upsert(
        self, item_id: Any, embedding: Any, metadata: dict | None = None, *, tool: str | None = None
    ) -> Pending:
        """Insert or replace one vector; the result is its rev."""
        op = vec_upsert_op(
            self.name, [(item_id, embedding, metadata)], dim=self.dim, metric=self.metric, tool=tool
        )
        return self._batch._add(op, _first)

    def upsert_many(self, items: Iterable, *, tool: str | None = None) -> Pending:
        """The result is the revs, in order."""
        op = vec_upsert_op(self.name, list(items), dim=self.dim, metric=self.metric, tool=tool)
        return self._batch._add(op)

    def delete(self, item_id: Any, *, tool: str | None = None) -> Pending:
        """The result is whether the vector existed."""
        return self._batch._add(vec_delete_op(self.name, [item_id], tool=tool), _existed)

    def delete_many(self, ids: Iterable, *, tool: str | None = None) -> Pending:
        """The result is how many existed."""
        return self._batch._add(vec_delete_op(self.name, list(ids), tool=tool))

    def compact(self, *, tool: str | None = None) -> Pending:
        """The result is False when there was nothing to compact."""
        return self._batch._add(vec_compact_op(self.name, tool=tool))
