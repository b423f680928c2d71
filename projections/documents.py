"""Document collections and their secondary indexes: the fold of ``doc.*`` and ``idx.*`` events.

Every ``doc.insert`` / ``doc.update`` / ``doc.replace`` event carries the complete new document
(as its packed bytes) and ``doc.delete`` the id to remove, so folding stores what was decided
and never evaluates a filter or an update operator: replay cannot drift. A document's ``_rev``
is the seq of the event that last wrote it.

A collection keeps its documents in ``_id`` order (a ``SortedDict`` keyed by the total-order
key of the id) as ``[doc, packed, rev, id]`` records: the decoded document (with ``_rev``) for
matching, the packed bytes (without ``_rev``) to hand out fresh copies and to snapshot.

A secondary index on a path is a ``SortedList`` of ``(value key, id key)`` pairs holding, per
document, the key of every value the path reaches, of every element of arrays it reaches, and
the null key when the path is missing somewhere — a superset of what any query can match on,
so an index only narrows the documents a query then checks with the full filter. Indexes are
created and dropped by events, built from the documents present at that point, and rebuilt
from the documents when a snapshot is loaded (a snapshot keeps their definitions).
"""

from __future__ import annotations

from typing import Any

from sortedcontainers import SortedDict, SortedList

from journal.codec import unpack_value
from journal.records import PAYLOAD, SEQ
from projections.ordering import NULL_KEY, sort_key
from projections.query import parse_path, resolve
from projections.undo import UndoLog

# Positions in a document record.
D_DOC, D_PACKED, D_REV, D_ID = range(4)


def index_keys(doc: dict, parts: tuple[str, ...]) -> tuple[set, bool]:
    """The value keys a document contributes to an index on ``parts``, and whether any came
    out of an array (a "multikey" document, whose range predicates cannot be intersected)."""
    values, missing, through = resolve(doc, parts)
    keys = set()
    multi = through
    for v in values:
        keys.add(sort_key(v))
        if type(v) is list:
            multi = True
            for item in v:
                keys.add(sort_key(item))
    if missing or not values:
        keys.add(NULL_KEY)
    return keys, multi


class DocIndex:
    """A secondary index on one path of one collection."""

    __slots__ = ("path", "parts", "entries", "multikey")

    def __init__(self, path: str):
        self.path = path
        self.parts = parse_path(path)
        self.entries: SortedList = SortedList()
        self.multikey = 0  # how many documents hold arrays on the path

    def add(self, idkey: tuple, doc: dict) -> None:
        keys, multi = index_keys(doc, self.parts)
        entries = self.entries
        for k in keys:
            entries.add((k, idkey))
        self.multikey += multi

    def remove(self, idkey: tuple, doc: dict) -> None:
        keys, multi = index_keys(doc, self.parts)
        entries = self.entries
        for k in keys:
            entries.remove((k, idkey))
        self.multikey -= multi

    def build(self, docs: SortedDict) -> None:
        parts = self.parts
        pairs = []
        multikey = 0
        for idkey, record in docs.items():
            keys, multi = index_keys(record[D_DOC], parts)
            pairs.extend((k, idkey) for k in keys)
            multikey += multi
        self.entries = SortedList(pairs)
        self.multikey = multikey


class CollectionState:
    """The documents and indexes of one collection."""

    __slots__ = ("name", "docs", "indexes")

    def __init__(self, name: str):
        self.name = name
        self.docs: SortedDict = SortedDict()  # id key -> [doc, packed, rev, id]
        self.indexes: dict[str, DocIndex] = {}

    def get(self, doc_id: Any) -> list | None:
        return self.docs.get(sort_key(doc_id))

    def store(self, idkey: tuple, old: list | None, new: list | None) -> None:
        """Replace record ``old`` by ``new`` under ``idkey`` (either may be None)."""
        for index in self.indexes.values():
            if old is not None:
                index.remove(idkey, old[D_DOC])
            if new is not None:
                index.add(idkey, new[D_DOC])
        if new is None:
            if old is not None:
                del self.docs[idkey]
        else:
            self.docs[idkey] = new

    def empty(self) -> bool:
        return not self.docs and not self.indexes


def make_record(doc_id: Any, packed: bytes, rev: int) -> list:
    doc = unpack_value(packed)
    doc["_rev"] = rev
    return [doc, packed, rev, doc_id]


class DocumentsProjection:
    """Fold of document and index events into collections."""

    __slots__ = ("collections",)
    HANDLES = {
        "doc.insert": "write",
        "doc.update": "write",
        "doc.replace": "write",
        "doc.delete": "delete",
        "idx.create": "create_index",
        "idx.drop": "drop_index",
    }

    def __init__(self) -> None:
        self.collections: dict[str, CollectionState] = {}

    def collection(self, name: str) -> CollectionState | None:
        return self.collections.get(name)

    def _coll(self, name: str) -> CollectionState:
        coll = self.collections.get(name)
        if coll is None:
            coll = self.collections[name] = CollectionState(name)
        return coll

    # -- folding -------------------------------------------------------------------------------

    def write(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        doc_id = p["id"]
        self._set(p["c"], sort_key(doc_id), make_record(doc_id, p["doc"], f[SEQ]), undo)

    def delete(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        self._set(p["c"], sort_key(p["id"]), None, undo)

    def _set(self, name: str, idkey: tuple, new: list | None, undo: UndoLog | None) -> None:
        coll = self._coll(name)
        old = coll.docs.get(idkey)
        if undo is not None:
            undo.push(self._restore, name, idkey, old)
        coll.store(idkey, old, new)
        if coll.empty():
            del self.collections[name]

    def _restore(self, name: str, idkey: tuple, old: list | None) -> None:
        coll = self._coll(name)
        coll.store(idkey, coll.docs.get(idkey), old)
        if coll.empty():
            del self.collections[name]

    def create_index(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        self._add_index(p["c"], p["field"])
        if undo is not None:
            undo.push(self._drop_index, p["c"], p["field"])

    def drop_index(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        self._drop_index(p["c"], p["field"])
        if undo is not None:
            undo.push(self._add_index, p["c"], p["field"])

    def _add_index(self, name: str, path: str) -> None:
        coll = self._coll(name)
        index = DocIndex(path)
        index.build(coll.docs)
        coll.indexes[path] = index

    def _drop_index(self, name: str, path: str) -> None:
        coll = self.collections[name]
        del coll.indexes[path]
        if coll.empty():
            del self.collections[name]

    # -- snapshots -----------------------------------------------------------------------------

    def dump(self) -> list:
        out = []
        for name in sorted(self.collections):
            coll = self.collections[name]
            docs = [[r[D_ID], r[D_PACKED], r[D_REV]] for r in coll.docs.values()]
            out.append([name, docs, sorted(coll.indexes)])
        return out

    @classmethod
    def load(cls, state: list) -> DocumentsProjection:
        self = cls()
        for name, docs, indexes in state:
            coll = self.collections[name] = CollectionState(name)
            coll.docs = SortedDict(
                (sort_key(doc_id), make_record(doc_id, packed, rev)) for doc_id, packed, rev in docs
            )
            for path in indexes:
                index = DocIndex(path)
                index.build(coll.docs)
                coll.indexes[path] = index
        return self
