"""Optimistic transactions over KV entries and documents: the check operation and the builder.

A transaction is one request: a ``TxnCheck`` operation first (every read version and
precondition, compared against the state before any write), then the writes as ordinary
``kv.*`` / ``doc.*`` operations. The engine commits a request all-or-nothing, so either every
check holds and every write lands in one commit, or a ``ConflictError`` names the key that
changed and nothing is written.

Keys: a string is a KV key; a ``(collection, _id)`` pair is a document. A version is the seq
of the last write (``Entry.version`` for KV, ``_rev`` for documents); 0 means absent.
"""

from __future__ import annotations

from typing import Any

from journal.codec import pack_value
from journal.errors import ValidationError
from journal.settings import Settings
from projections.commands import Op, check_key, check_version, delete_op, put_op
from projections.doc_commands import DocDelete, DocReplace, check_collection, pack_filter
from projections.updates import check_document, check_id

_DEFAULTS = Settings()


class _Delete:
    """``swarmlog.DELETE``: as a value in a transaction's writes, deletes the key."""

    __slots__ = ()
    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "swarmlog.DELETE"

    def __reduce__(self) -> str:
        return "DELETE"  # pickles as this module's global, so it stays the one sentinel


DELETE = _Delete()


class TxnCheck(Op):
    reads: list  # ["k", key, version] | ["d", collection, _id, rev]
    preconditions: list  # see txn_ops


def txn_key(key: Any) -> tuple:
    """``("k", key)`` for a KV key, ``("d", collection, _id)`` for a document."""
    if isinstance(key, str):
        check_key(key)
        return ("k", key)
    if isinstance(key, tuple | list) and len(key) == 2:
        check_collection(key[0])
        check_id(key[1], f"the _id of document key {tuple(key)!r}")
        return ("d", key[0], key[1])
    raise ValidationError(
        f"a transaction key is a string (KV) or a (collection, _id) pair (document), got {key!r}"
    )


def key_label(k: tuple) -> str:
    """How a ``ConflictError`` names a key: the KV key, or ``collection/_id``."""
    return k[1] if k[0] == "k" else f"{k[1]}/{k[2]}"


def user_key(k: tuple) -> Any:
    return k[1] if k[0] == "k" else (k[1], k[2])


def _precondition(pre: Any, i: int) -> list:
    if not isinstance(pre, dict):
        raise ValidationError(f"precondition {i} must be a dict, got {pre!r}")
    what = f"precondition {i} ({pre!r})"
    if "key" in pre:
        k = txn_key(pre["key"])
        rest = set(pre) - {"key"}
        if k[0] == "d":
            raise ValidationError(f"{what}: name a document with 'collection' and 'id', not 'key'")
        if rest == {"version"}:
            check_version(pre["version"])
            return ["kv", k[1], pre["version"]]
        if rest == {"exists"} and isinstance(pre["exists"], bool):
            return ["kx", k[1], pre["exists"]]
        if rest == {"equals"}:
            return ["ke", k[1], pack_value(pre["equals"], what=f"{what}: 'equals'")]
    elif "collection" in pre:
        check_collection(pre["collection"])
        rest = set(pre) - {"collection"}
        if "id" in pre:
            check_id(pre["id"], f"{what}: id")
            if rest == {"id", "rev"}:
                check_version(pre["rev"])
                return ["dv", pre["collection"], pre["id"], pre["rev"]]
            if rest == {"id", "exists"} and isinstance(pre["exists"], bool):
                return ["dx", pre["collection"], pre["id"], pre["exists"]]
        elif rest == {"filter", "exists"} and isinstance(pre["exists"], bool):
            return ["q", pre["collection"], pack_filter(pre["filter"]), pre["exists"]]
    raise ValidationError(
        f"{what} is not one of: {{'key': k, 'version': v}}, {{'key': k, 'exists': bool}}, "
        "{'key': k, 'equals': value}, {'collection': c, 'id': x, 'rev': r}, "
        "{'collection': c, 'id': x, 'exists': bool}, {'collection': c, 'filter': f, 'exists': bool}"
    )


def txn_ops(
    reads: Any, writes: Any, preconditions: Any, *, limits: Settings = _DEFAULTS
) -> tuple[list, list]:
    """``(ops, written keys)`` of a transaction: the check, then one operation per write."""
    reads = {} if reads is None else reads
    writes = {} if writes is None else writes
    preconditions = [] if preconditions is None else preconditions
    if not isinstance(reads, dict) or not isinstance(writes, dict):
        raise ValidationError("reads and writes must be dicts: {key: version} and {key: value or DELETE}")
    if not isinstance(preconditions, list | tuple):
        raise ValidationError("preconditions must be a list of dicts")
    checks = []
    for key, version in reads.items():
        k = txn_key(key)
        check_version(version)
        checks.append(["k", k[1], version] if k[0] == "k" else ["d", k[1], k[2], version])
    pres = [_precondition(p, i) for i, p in enumerate(preconditions)]
    ops: list = [TxnCheck(reads=checks, preconditions=pres)]
    keys = []
    for key, value in writes.items():
        k = txn_key(key)
        keys.append(k)
        ops.append(write_op(k, value, limits=limits))
    if len(ops) == 1 and not checks and not pres:
        raise ValidationError("a transaction needs at least one read, write or precondition")
    return ops, keys


def write_op(k: tuple, value: Any, *, limits: Settings = _DEFAULTS) -> Op:
    """The operation writing ``value`` (or deleting, for ``DELETE``) at transaction key ``k``."""
    if k[0] == "k":
        return delete_op(k[1]) if value is DELETE else put_op(k[1], value, limits=limits)
    coll, doc_id = k[1], k[2]
    id_filter = pack_value({"_id": doc_id})
    if value is DELETE:
        return DocDelete(coll=coll, filter=id_filter)
    check_document(value, f"the document written at {coll}/{doc_id}")
    if "_id" in value and value["_id"] != doc_id:
        raise ValidationError(f"the document written at {coll}/{doc_id} has a different _id {value['_id']!r}")
    body = {"_id": doc_id, **{f: v for f, v in value.items() if f not in ("_id", "_rev")}}
    return DocReplace(coll=coll, filter=id_filter, doc=pack_value(body, what="the document"), upsert=True)
