"""Deciding document, index and transaction operations: state checks, then events.

These are ``NamespaceEngine`` handlers (``handler(engine, request, op, builder, undo, extra,
out) -> (result, compact result)``). They run under the commit lock against the current
state, evaluate filters and update operators *here*, and journal the outcome: every
``doc.insert`` / ``doc.update`` / ``doc.replace`` event holds the complete new document, so
folding is a plain store. An error raised here rolls the whole request back.

Generated ``_id`` values are made here from the seq of the inserting event, as 16 hex digits
(``"000000000000002a"``): unique in the namespace (one event per document, seqs never repeat)
and sorting in insertion order. In the unlikely case that a caller already used that string
as an ``_id`` in the collection, a ``-1``, ``-2`` … suffix is appended.
"""

from __future__ import annotations

from typing import Any

from journal.codec import pack_value, unpack_value
from journal.codec import packed as packed_value
from journal.errors import ConflictError, ValidationError
from projections.doc_commands import DocDelete, DocInsert, DocReplace, DocUpdate, IndexCreate, IndexDrop
from projections.documents import D_ID, D_PACKED, D_REV, CollectionState
from projections.ordering import sort_key
from projections.planner import find
from projections.query import compile_filter, equality_fields, parse_path
from projections.txn_commands import TxnCheck
from projections.updates import Update, check_document, check_id, compile_update

_PACKED = 1  # journal.codec.EXT_PACKED


def _docs(engine: Any):
    return engine.state.parts["docs"]


def _pack(doc: dict, what: str) -> bytes:
    return pack_value(doc, what=what)


def _new_id(engine: Any, coll: CollectionState | None) -> str:
    base = f"{engine._next_seq:016x}"
    doc_id = base
    n = 0
    while coll is not None and coll.get(doc_id) is not None:
        n += 1
        doc_id = f"{base}-{n}"
    return doc_id


def _emit_doc(
    engine, req, op, type_: str, coll: str, doc_id: Any, packed: bytes | None, prev, builder, undo, extra
):
    ts = engine._clock.now()
    payload: dict = {"c": coll, "id": doc_id}
    fold: dict = {"c": coll, "id": doc_id}
    if packed is not None:
        payload["doc"] = packed_value(packed)
        fold["doc"] = packed
    if prev is not None:
        payload["prev"] = fold["prev"] = prev
    seq, _, _ = engine._emit(req, op, type_, payload, fold, ts, extra, builder, undo)
    return seq


def _insert(engine, req, op, name: str, body: dict, builder, undo, extra) -> tuple[Any, int]:
    """Insert ``body`` (its ``_id`` generated when absent); returns ``(_id, rev)``."""
    coll = _docs(engine).collection(name)
    if "_id" in body:
        doc_id = body["_id"]
        check_id(doc_id)
        if coll is not None and coll.get(doc_id) is not None:
            raise ConflictError(
                f"insert into {name!r}: a document with _id {doc_id!r} already exists; "
                "use update_one/replace_one to change it",
                key=f"{name}/{doc_id}",
            )
    else:
        doc_id = _new_id(engine, coll)
    doc = {"_id": doc_id, **{k: v for k, v in body.items() if k != "_id"}}
    packed = _pack(doc, f"the document inserted into {name!r}")
    return doc_id, _emit_doc(engine, req, op, "doc.insert", name, doc_id, packed, None, builder, undo, extra)


def op_insert(engine, req, op: DocInsert, builder, undo, extra, out):
    ids = []
    for packed in op.docs:
        doc_id, _ = _insert(engine, req, op, op.coll, unpack_value(packed), builder, undo, extra)
        ids.append(doc_id)
    return ids, ["v", ids]


def _seed(node: Any, what: str) -> dict:
    """The document an upsert starts from: the filter's top-level equalities."""
    doc: dict = {}
    fields = equality_fields(node)
    if fields:
        steps = []
        for path, value in fields.items():
            steps.append(("$set", path, parse_path(path), value))
        for a in steps:
            for b in steps:
                if a is not b and a[2][: len(b[2])] == b[2]:
                    raise ValidationError(f"{what}: the filter's paths {a[1]!r} and {b[1]!r} overlap")
        Update(steps).apply(doc)
    check_document(doc, f"{what}: the document built from the filter")
    return doc


def op_update(engine, req, op: DocUpdate, builder, undo, extra, out):
    node = compile_filter(unpack_value(op.filter))
    update = compile_update(unpack_value(op.update))
    coll = _docs(engine).collection(op.coll)
    records = find(coll, node, limit=None if op.many else 1)
    modified = 0
    rev = None
    for r in records:
        doc = update.apply(unpack_value(r[D_PACKED]))
        packed = _pack(doc, f"the updated document {r[D_ID]!r}")
        if packed == r[D_PACKED]:
            rev = r[D_REV] if rev is None else rev
            continue
        rev = _emit_doc(
            engine, req, op, "doc.update", op.coll, r[D_ID], packed, r[D_REV], builder, undo, extra
        )
        modified += 1
    upserted = None
    if not records and op.upsert:
        doc = update.apply(_seed(node, f"upsert into {op.coll!r}"))
        if "_id" in doc:
            check_id(doc["_id"], "the upserted document's _id")
        upserted, rev = _insert(engine, req, op, op.coll, doc, builder, undo, extra)
    result = [len(records), modified, upserted, rev]
    return result, ["v", result]


def op_replace(engine, req, op: DocReplace, builder, undo, extra, out):
    node = compile_filter(unpack_value(op.filter))
    body = unpack_value(op.doc)
    coll = _docs(engine).collection(op.coll)
    records = find(coll, node, limit=1)
    upserted = None
    rev = None
    modified = 0
    if records:
        r = records[0]
        if "_id" in body and sort_key(body["_id"]) != sort_key(r[D_ID]):
            raise ValidationError(
                f"replace in {op.coll!r}: the replacement's _id {body['_id']!r} differs from the "
                f"matched document's {r[D_ID]!r}; _id cannot change"
            )
        doc = {"_id": r[D_ID], **{k: v for k, v in body.items() if k != "_id"}}
        packed = _pack(doc, f"the replacement of {r[D_ID]!r}")
        if packed == r[D_PACKED]:
            rev = r[D_REV]
        else:
            rev = _emit_doc(
                engine, req, op, "doc.replace", op.coll, r[D_ID], packed, r[D_REV], builder, undo, extra
            )
            modified = 1
    elif op.upsert:
        doc = dict(body)
        if "_id" not in doc:
            seed = _seed(node, f"upsert into {op.coll!r}")
            if "_id" in seed:
                check_id(seed["_id"], "the upserted document's _id")
                doc = {"_id": seed["_id"], **doc}
        upserted, rev = _insert(engine, req, op, op.coll, doc, builder, undo, extra)
    result = [len(records), modified, upserted, rev]
    return result, ["v", result]


def op_delete(engine, req, op: DocDelete, builder, undo, extra, out):
    node = compile_filter(unpack_value(op.filter))
    coll = _docs(engine).collection(op.coll)
    records = find(coll, node, limit=None if op.many else 1)
    for r in records:
        _emit_doc(engine, req, op, "doc.delete", op.coll, r[D_ID], None, r[D_REV], builder, undo, extra)
    return len(records), ["v", len(records)]


def op_create_index(engine, req, op: IndexCreate, builder, undo, extra, out):
    coll = _docs(engine).collection(op.coll)
    if op.field == "_id" or (coll is not None and op.field in coll.indexes):
        return False, ["v", False]
    ts = engine._clock.now()
    payload = {"c": op.coll, "field": op.field}
    engine._emit(req, op, "idx.create", payload, payload, ts, extra, builder, undo)
    return True, ["v", True]


def op_drop_index(engine, req, op: IndexDrop, builder, undo, extra, out):
    coll = _docs(engine).collection(op.coll)
    if coll is None or op.field not in coll.indexes:
        return False, ["v", False]
    ts = engine._clock.now()
    payload = {"c": op.coll, "field": op.field}
    engine._emit(req, op, "idx.drop", payload, payload, ts, extra, builder, undo)
    return True, ["v", True]


# -- transactions ------------------------------------------------------------------------------


def _conflict(label: str, expected: Any, actual: Any, what: str) -> ConflictError:
    return ConflictError(
        f"transaction refused: {label!r} {what}; nothing was written. Read it again and retry",
        key=label,
        expected=expected,
        actual=actual,
    )


def op_txn_check(engine, req, op: TxnCheck, builder, undo, extra, out):
    state = engine.state
    now_ms = engine._clock.now() >> 16
    kv = state.kv
    docs = state.parts["docs"]

    def doc_rev(coll: str, doc_id: Any) -> int:
        c = docs.collection(coll)
        r = None if c is None else c.get(doc_id)
        return 0 if r is None else r[D_REV]

    for read in op.reads:
        if read[0] == "k":
            _, key, expected = read
            actual = kv.version(key, now_ms)
            label = key
        else:
            _, coll, doc_id, expected = read
            actual = doc_rev(coll, doc_id)
            label = f"{coll}/{doc_id}"
        if actual != expected:
            raise _conflict(label, expected, actual, f"was read at version {expected} but is now at {actual}")
    for pre in op.preconditions:
        kind = pre[0]
        if kind == "kv":
            actual = kv.version(pre[1], now_ms)
            if actual != pre[2]:
                raise _conflict(pre[1], pre[2], actual, f"must be at version {pre[2]} but is at {actual}")
        elif kind == "kx":
            actual = kv.version(pre[1], now_ms)
            if bool(actual) != pre[2]:
                raise _conflict(pre[1], pre[2], bool(actual), "must exist" if pre[2] else "must not exist")
        elif kind == "ke":
            t = kv.live(pre[1], now_ms)
            value = None if t is None else unpack_value(t[0])
            want = unpack_value(pre[2])
            if t is None or sort_key(value) != sort_key(want):
                raise _conflict(pre[1], want, value, f"must equal {want!r}")
        elif kind == "dv":
            actual = doc_rev(pre[1], pre[2])
            if actual != pre[3]:
                raise _conflict(
                    f"{pre[1]}/{pre[2]}", pre[3], actual, f"must be at _rev {pre[3]} but is at {actual}"
                )
        elif kind == "dx":
            actual = doc_rev(pre[1], pre[2])
            if bool(actual) != pre[3]:
                raise _conflict(
                    f"{pre[1]}/{pre[2]}", pre[3], bool(actual), "must exist" if pre[3] else "must not exist"
                )
        elif kind == "q":
            node = compile_filter(unpack_value(pre[2]))
            found = bool(find(docs.collection(pre[1]), node, limit=1))
            if found != pre[3]:
                raise _conflict(
                    f"{pre[1]}?{unpack_value(pre[2])}",
                    pre[3],
                    found,
                    "must match a document" if pre[3] else "must match no document",
                )
        else:  # pragma: no cover - written by a newer client
            raise ValidationError(f"unknown precondition kind {kind!r}")
    return None, ["v", None]


HANDLERS = {
    DocInsert: op_insert,
    DocUpdate: op_update,
    DocReplace: op_replace,
    DocDelete: op_delete,
    IndexCreate: op_create_index,
    IndexDrop: op_drop_index,
    TxnCheck: op_txn_check,
}
