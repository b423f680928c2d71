"""How a replayed write would be journaled, to compare it with the recorded event byte for byte.

A replay does not write. For each operation the replayed agent asks for, this module builds the
canonical record the engine would have journaled — the operation's content (type, payload,
agent, tool, source, write id) inside the recorded event's environment (seq, id, time, previous
hash, the version it replaced, EXTRA, a write id the transport assigned) — and compares its BLAKE2b with the recorded hash. Equal
hashes mean byte-identical records, hence the same state after them. The payload layouts mirror
``NamespaceEngine._op_*`` and ``projections.recorded``. Those are the operations in
``ENCODED_HERE``: their events follow from the operation alone. Requests with any other
operation (documents, indexes, vectors, transactions, whose events depend on the namespace
state) are decided again by the engine instead (``projections.redecide``).
"""

from __future__ import annotations

from typing import Any

import msgpack

from journal.codec import blake, encode_record, packed, unpack_value
from journal.errors import ValidationError
from journal.records import Event
from projections.commands import AddTrace, Append, Delete, EndRun, Put, Request
from projections.recorded import CALL_PREFIX, RecordInput

CONTENT_FIELDS = ("run_id", "agent", "tool", "type", "payload", "source", "write_id")
ENCODED_HERE = frozenset({Put, Delete, Append, AddTrace, EndRun, RecordInput})
"""Operations whose events this module re-encodes without the namespace state."""


def op_type(op: Any) -> str:
    """The event type ``op`` is journaled as."""
    cls = type(op)
    if cls is Put:
        return "kv.put"
    if cls is Delete:
        return "kv.delete"
    if cls is Append:
        return op.type
    if cls is AddTrace:
        return "trace." + op.kind
    if cls is EndRun:
        return "run.end"
    if cls is RecordInput:
        return CALL_PREFIX + op.kind
    raise ValidationError(f"replay cannot check {cls.__name__} operations yet")


def _payload(op: Any, recorded: Event, link: int | None, raw: bool) -> Any:
    """The payload the engine would journal for ``op`` where ``recorded`` was journaled (raw:
    values embedded as packed bytes; else decoded, for messages)."""
    value = packed if raw else unpack_value
    cls = type(op)
    rp = recorded.payload if isinstance(recorded.payload, dict) else {}
    if cls is Put:
        out = {"key": op.key, "value": value(op.value), "prev": rp.get("prev")}
        if op.ttl_ms is not None:
            out["ttl_ms"] = op.ttl_ms
        return out
    if cls is Delete:
        return {"key": op.key, "prev": rp.get("prev")}
    if cls is Append or cls is RecordInput:
        return value(op.payload)
    if cls is AddTrace:
        return {"data": value(op.data), "event": link}
    if cls is EndRun:
        out = {"status": op.status}
        if op.summary is not None:
            out["summary"] = value(op.summary)
        return out
    raise ValidationError(f"replay cannot check {cls.__name__} operations yet")


def _content(req: Request, op: Any, recorded: Event, link: int | None, raw: bool) -> dict:
    source = op.source if op.source is not None else req.source
    # A write the agent gave no write id may have got one from its transport (the Ray clients
    # add one so retries stay idempotent): that id is environment, like the seq.
    write_id = recorded.write_id if req.write_id is None else req.write_id
    return {
        "run_id": req.run_id,
        "agent": req.agent,
        "tool": op.tool if op.tool is not None else req.tool,
        "type": op_type(op),
        "payload": _payload(op, recorded, link, raw),
        "source": None if source is None else (packed(source) if raw else unpack_value(source)),
        "write_id": write_id,
    }


def same_record(req: Request, op: Any, recorded: Event, link: int | None = None) -> bool:
    """Whether ``op`` (of request ``req``) re-encodes to exactly the recorded event."""
    c = _content(req, op, recorded, link, raw=True)
    fields = [
        recorded.seq,
        recorded.id,
        recorded.ts,
        c["run_id"],
        c["agent"],
        c["tool"],
        c["type"],
        c["payload"],
        c["source"],
        c["write_id"],
        recorded.prev,
        recorded.extra,
    ]
    fence = None if req.fence is None else list(req.fence)
    if (recorded.extra or {}).get("fence") != fence:
        return False
    return blake(encode_record(fields)) == recorded.hash


def difference(req: Request, op: Any, recorded: Event, link: int | None = None) -> tuple[str, dict, dict]:
    """``(first differing field, expected, got)`` between the recorded event and ``op``."""
    got = _content(req, op, recorded, link, raw=False)
    expected = {name: getattr(recorded, name) for name in CONTENT_FIELDS}
    got["fence"] = None if req.fence is None else list(req.fence)
    expected["fence"] = (recorded.extra or {}).get("fence")
    for name in (*CONTENT_FIELDS, "fence"):
        if _canonical(expected[name]) != _canonical(got[name]):
            return name, expected, got
    return "encoding", expected, got  # equal when decoded, different bytes (e.g. key order)


def event_difference(recorded: Event, got: Event) -> tuple[str, dict, dict]:
    """``(first differing field, expected, got)`` between a recorded event and the event a
    replayed write would have journaled in its place."""
    expected = {name: getattr(recorded, name) for name in CONTENT_FIELDS}
    out = {name: getattr(got, name) for name in CONTENT_FIELDS}
    expected["fence"] = (recorded.extra or {}).get("fence")
    out["fence"] = (got.extra or {}).get("fence")
    for name in (*CONTENT_FIELDS, "fence"):
        if _canonical(expected[name]) != _canonical(out[name]):
            return name, expected, out
    return "encoding", expected, out


def _canonical(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)
