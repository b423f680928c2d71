"""Document and index operations, checked and packed on the caller's side.

Like ``projections.commands``: each ``*_op`` factory refuses malformed input with a
``ValidationError`` (it compiles filters and updates to find mistakes before anything is sent)
and packs the caller's values into msgpack bytes once. The engine re-checks what depends on
the documents themselves.
"""

from __future__ import annotations

from typing import Any

from journal.codec import pack_value
from journal.errors import ValidationError
from journal.settings import Settings
from projections.commands import Op, check_name, check_size
from projections.query import compile_filter, parse_path
from projections.updates import check_document, check_id, compile_update, replacement

_DEFAULTS = Settings()


class DocInsert(Op):
    coll: str
    docs: list  # packed documents


class DocUpdate(Op):
    coll: str
    filter: bytes  # packed
    update: bytes  # packed
    many: bool = False
    upsert: bool = False


class DocReplace(Op):
    coll: str
    filter: bytes  # packed
    doc: bytes  # packed, without _rev
    upsert: bool = False


class DocDelete(Op):
    coll: str
    filter: bytes  # packed
    many: bool = False


class IndexCreate(Op):
    coll: str
    field: str


class IndexDrop(Op):
    coll: str
    field: str


def check_collection(name: Any, what: str = "collection name") -> None:
    """Collection names: 1-200 characters, no NUL, not starting with ``$``."""
    check_name(name, what)
    if name.startswith("$"):
        raise ValidationError(f"{what} {name!r} may not start with '$'")


def pack_filter(spec: Any) -> bytes:
    """Check a filter (``ValidationError`` naming the operator and the path) and pack it."""
    compile_filter(spec)
    return pack_value({} if spec is None else spec, what="the filter")


def _pack_doc(doc: dict, what: str, limits: Settings) -> bytes:
    return check_size(pack_value(doc, what=what), what, limits)


def insert_op(coll, docs, *, tool=None, limits=_DEFAULTS) -> DocInsert:
    """Insert ``docs`` (a list of dicts); ``_id`` is generated for those without one."""
    check_collection(coll)
    check_name(tool, "tool", optional=True)
    if not isinstance(docs, list | tuple) or not docs:
        raise ValidationError("insert needs a non-empty list of documents")
    packed = []
    seen = set()
    for i, doc in enumerate(docs):
        what = f"document {i} of the insert into {coll!r}"
        check_document(doc, what)
        if "_id" in doc:
            check_id(doc["_id"], f"{what}: _id")
            key = (type(doc["_id"]) is str, doc["_id"])
            if key in seen:
                raise ValidationError(f"{what}: _id {doc['_id']!r} appears twice in one insert")
            seen.add(key)
        body = {k: v for k, v in doc.items() if k != "_rev"}
        packed.append(_pack_doc(body, what, limits))
    return DocInsert(coll=coll, docs=packed, tool=tool)


def update_op(coll, filter, update, *, many=False, upsert=False, tool=None, limits=_DEFAULTS) -> DocUpdate:
    check_collection(coll)
    check_name(tool, "tool", optional=True)
    compile_update(update)
    return DocUpdate(
        coll=coll,
        filter=pack_filter(filter),
        update=check_size(pack_value(update, what="the update"), "the update", limits),
        many=bool(many),
        upsert=bool(upsert),
        tool=tool,
    )


def replace_op(coll, filter, doc, *, upsert=False, tool=None, limits=_DEFAULTS) -> DocReplace:
    check_collection(coll)
    check_name(tool, "tool", optional=True)
    body = replacement(doc)
    if "_id" in body:
        check_id(body["_id"], "the replacement's _id")
    return DocReplace(
        coll=coll,
        filter=pack_filter(filter),
        doc=_pack_doc(body, "the replacement document", limits),
        upsert=bool(upsert),
        tool=tool,
    )


def delete_docs_op(coll, filter, *, many=False, tool=None) -> DocDelete:
    check_collection(coll)
    check_name(tool, "tool", optional=True)
    return DocDelete(coll=coll, filter=pack_filter(filter), many=bool(many), tool=tool)


def create_index_op(coll, field, *, tool=None) -> IndexCreate:
    check_collection(coll)
    parse_path(field, "index field")
    check_name(tool, "tool", optional=True)
    return IndexCreate(coll=coll, field=field, tool=tool)


def drop_index_op(coll, field, *, tool=None) -> IndexDrop:
    check_collection(coll)
    parse_path(field, "index field")
    check_name(tool, "tool", optional=True)
    return IndexDrop(coll=coll, field=field, tool=tool)
