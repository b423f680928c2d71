"""Document collection handles: ``ns.collection(name)`` (reads) and ``run.collection(name)``.

Filters, sorts, projections and updates use MongoDB's language (see ``projections.query``
and ``projections.updates``); every method checks its arguments here and makes one backend
call, so a malformed filter or update fails before anything is sent and nothing is written.
Documents come back as fresh dicts with ``_id`` and ``_rev`` (the seq of their last write).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from projections.doc_commands import (
    check_collection,
    create_index_op,
    delete_docs_op,
    drop_index_op,
    insert_op,
    replace_op,
    update_op,
)
from projections.query import compile_filter, parse_path
from projections.shaping import compile_projection, normalize_sort

if TYPE_CHECKING:
    from swarmlog.handles import Run


class UpdateResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an update or replace did."""

    matched: int
    """How many documents the filter matched (at most 1 for ``*_one``)."""
    modified: int
    """How many of them changed (an update that changes nothing writes no event)."""
    upserted_id: Any = None
    """The ``_id`` of the document an upsert inserted, or None."""
    rev: int | None = None
    """The ``_rev`` of the last document matched or inserted, after the write; None if none."""


def _update_result(results: list) -> UpdateResult:
    matched, modified, upserted, rev = results[0]
    return UpdateResult(matched=matched, modified=modified, upserted_id=upserted, rev=rev)


def _first(results: list) -> Any:
    return results[0]


def _one(docs: list) -> dict | None:
    return docs[0] if docs else None


def _filter(spec: Any) -> Any:
    """A filter, or an ``_id`` given alone (``find_one("abc")``)."""
    if spec is None or isinstance(spec, dict):
        compile_filter(spec)
        return spec
    return {"_id": spec}


class CollectionView:
    """Read-only access to a collection (of a namespace, a run, or a past view)."""

    def __init__(self, parent: Any, name: str):
        check_collection(name)
        self._parent = parent
        self.name = name

    def __repr__(self) -> str:
        return f"<swarmlog.Collection {self.name!r}>"

    def _call(self, method: str, *args: Any, then: Any = None, **kwargs: Any) -> Any:
        return self._parent._call(method, self.name, *args, then=then, **kwargs)

    def find_one(self, filter: Any = None, *, sort: Any = None, projection: Any = None) -> dict | None:
        """The first matching document (by ``sort``, else by ``_id``), or None. ``filter`` may
        be an ``_id`` on its own."""
        filter = _filter(filter)
        sort = normalize_sort(sort)
        compile_projection(projection)
        return self._call("doc_find", filter, sort=sort, limit=1, projection=projection, then=_one)

    def find_many(
        self,
        filter: Any = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        skip: int = 0,
        projection: Any = None,
    ) -> list[dict]:
        """Matching documents in ``_id`` order, or by ``sort`` (``{"path": 1 | -1}`` or a list
        of pairs; ties keep ``_id`` order), after ``skip``, at most ``limit``."""
        filter = _filter(filter)
        sort = normalize_sort(sort)
        compile_projection(projection)
        return self._call("doc_find", filter, sort=sort, skip=skip, limit=limit, projection=projection)

    def find(self, filter: Any = None, **kw: Any) -> list[dict]:
        """Same as ``find_many``."""
        return self.find_many(filter, **kw)

    def count(self, filter: Any = None) -> int:
        """How many documents match."""
        return self._call("doc_count", _filter(filter))

    def explain(self, filter: Any = None) -> dict:
        """How a query would run: ``strategy`` (``"id"``, ``"index"``, ``"union"`` or
        ``"scan"``), the ``index`` it uses, the ``operator`` that drives it and how many
        ``candidates`` it visits, beside ``documents`` and ``indexes``."""
        return self._call("doc_explain", _filter(filter))

    def list_indexes(self) -> list[str]:
        """Indexed paths: always ``"_id"``, then the secondary indexes."""
        return self._call("doc_indexes")


class Collection(CollectionView):
    """A collection written by a run (reads see the run's writes at once)."""

    def __init__(self, run: Run, name: str):
        super().__init__(run, name)
        self._run = run

    def _write(self, op: Any, ident: tuple, then: Any) -> Any:
        write_id, fence, source = ident
        return self._run._write([op], write_id=write_id, fence=fence, source=source, then=then)

    def insert_one(
        self, doc: dict, *, write_id: str | None = None, fence: Any = None, source: dict | None = None
    ) -> Any:
        """Insert ``doc``; returns its ``_id`` (generated when absent). ``ConflictError`` when
        the ``_id`` exists."""
        op = insert_op(self.name, [doc], tool=self._run.tool)
        return self._write(op, (write_id, fence, source), lambda r: r[0][0])

    def insert_many(
        self, docs: list[dict], *, write_id: str | None = None, fence: Any = None, source: dict | None = None
    ) -> list:
        """Insert ``docs`` atomically (all or none); returns their ``_id`` values in order."""
        op = insert_op(self.name, list(docs), tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _first)

    def update_one(
        self,
        filter: Any,
        update: dict,
        *,
        upsert: bool = False,
        write_id: str | None = None,
        fence: Any = None,
        source: dict | None = None,
    ) -> UpdateResult:
        """Apply ``update`` (``$set $unset $inc $push $pull``) to the first match (by ``_id``);
        with ``upsert`` insert one built from the filter's equalities when none matches."""
        op = update_op(self.name, _filter(filter), update, upsert=upsert, tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _update_result)

    def update_many(
        self,
        filter: Any,
        update: dict,
        *,
        upsert: bool = False,
        write_id: str | None = None,
        fence: Any = None,
        source: dict | None = None,
    ) -> UpdateResult:
        """Apply ``update`` to every match, atomically."""
        op = update_op(self.name, _filter(filter), update, many=True, upsert=upsert, tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _update_result)

    def replace_one(
        self,
        filter: Any,
        doc: dict,
        *,
        upsert: bool = False,
        write_id: str | None = None,
        fence: Any = None,
        source: dict | None = None,
    ) -> UpdateResult:
        """Replace the first match by ``doc`` (its ``_id`` stays; ``_rev`` in ``doc`` is ignored)."""
        op = replace_op(self.name, _filter(filter), doc, upsert=upsert, tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _update_result)

    def delete_one(
        self, filter: Any, *, write_id: str | None = None, fence: Any = None, source: dict | None = None
    ) -> int:
        """Delete the first match (by ``_id``); returns 1 or 0."""
        op = delete_docs_op(self.name, _filter(filter), tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _first)

    def delete_many(
        self, filter: Any, *, write_id: str | None = None, fence: Any = None, source: dict | None = None
    ) -> int:
        """Delete every match, atomically; returns how many."""
        op = delete_docs_op(self.name, _filter(filter), many=True, tool=self._run.tool)
        return self._write(op, (write_id, fence, source), _first)

    def create_index(self, field: str, *, write_id: str | None = None) -> bool:
        """Index ``field`` (a dotted path), built from the documents present; returns False if
        it already was indexed."""
        parse_path(field, "index field")
        return self._write(
            create_index_op(self.name, field, tool=self._run.tool), (write_id, None, None), _first
        )

    def drop_index(self, field: str, *, write_id: str | None = None) -> bool:
        """Drop the index on ``field``; returns False if there was none."""
        parse_path(field, "index field")
        return self._write(
            drop_index_op(self.name, field, tool=self._run.tool), (write_id, None, None), _first
        )
