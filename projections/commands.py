"""Write requests: what a caller asks a namespace to do, checked before anything is journaled.

A ``Request`` is one atomic unit from one caller: a run, the identity of the writer, an optional
idempotency key and fencing token, and a list of operations. The ``*_op`` factories check
everything that does not depend on namespace state (types, sizes, encodability) and pack the
caller's values into msgpack bytes once, on the caller's side; the engine checks the rest
(the run is open, expected versions, referenced events) against the state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from journal.codec import pack_value
from journal.errors import ValidationError
from journal.settings import Settings
from projections.traces import TRACE_KINDS

RESERVED_TYPE_PREFIXES = (
    "run.",
    "kv.",
    "doc.",
    "vec.",
    "idx.",
    "trace.",
    "txn.",
    "sys.",
    "swarmlog.",
    "call.",
)
MAX_NAME_CHARS = 200
MAX_TTL_S = 10**10  # about 300 years; expiry times must fit a 64-bit record field
MAX_FENCE_TOKEN = 2**63 - 1
_DEFAULTS = Settings()


class OpRef(msgspec.Struct, frozen=True):
    """Refers to the event written by an earlier operation of the same request."""

    index: int
    """Position of that operation in the request."""


class Op(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="op"):
    """Fields every operation may carry."""

    tool: str | None = None
    """The tool making this write, overriding the request's."""
    source: bytes | None = None
    """Packed provenance (channel, conversation, message …), overriding the request's."""


class Put(Op):
    key: str
    value: bytes  # packed
    ttl_ms: int | None = None
    expected_version: int | None = None


class Delete(Op):
    key: str
    expected_version: int | None = None


class Append(Op):
    type: str
    payload: bytes  # packed


class AddTrace(Op):
    kind: str
    data: bytes  # packed dict
    event: int | OpRef | None = None


class BeginRun(Op):
    metadata: bytes  # packed
    parent: str | None = None
    fork_seq: int | None = None


class EndRun(Op):
    status: str
    summary: bytes | None = None  # packed


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One atomic write: all of ``ops`` are journaled in one commit, or none."""

    run_id: str
    """The run every event of this request belongs to."""
    agent: str
    """Who writes."""
    ops: list
    """The operations, applied in order."""
    tool: str | None = None
    """The tool writing on the agent's behalf, if any."""
    write_id: str | None = None
    """Idempotency key: a request with a known write id returns the original result."""
    source: bytes | None = None
    """Packed provenance for every event of the request (operations may override it)."""
    fence: tuple[str, int] | None = None
    """``(lease name, fencing token)``: refused when a newer token for that lease was seen."""


# -- checks ------------------------------------------------------------------------------------


def check_name(value: Any, what: str, *, optional: bool = False, max_chars: int = MAX_NAME_CHARS) -> None:
    """Identifiers (run ids, agents, tools, types, write ids): non-empty strings without NUL."""
    if type(value) is str and 0 < len(value) <= max_chars and "\0" not in value and value.isascii():
        return  # the usual case, checked in one expression (this runs several times per write)
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > max_chars:
        raise ValidationError(f"{what} is {len(value)} characters long; the limit is {max_chars}")
    if "\0" in value:
        raise ValidationError(f"{what} must not contain NUL characters: {value!r}")
    _check_unicode(value, what)


def _check_unicode(value: str, what: str) -> None:
    """A str with a lone surrogate has no UTF-8 form: it would fail deep in the engine."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValidationError(f"{what} {value!r} is not valid Unicode text (a lone surrogate)") from None


def check_key(key: Any, limits: Settings = _DEFAULTS) -> None:
    if not isinstance(key, str) or not key:
        raise ValidationError(f"a key must be a non-empty string, got {key!r}")
    _check_unicode(key, "key")
    if len(key) * 4 > limits.max_key_bytes and len(key.encode()) > limits.max_key_bytes:
        raise ValidationError(
            f"key {key[:40]!r}… is {len(key.encode())} bytes; the limit is {limits.max_key_bytes}"
        )


def check_size(data: bytes, what: str, limits: Settings) -> bytes:
    if len(data) > limits.max_record_bytes:
        raise ValidationError(
            f"{what} is {len(data)} bytes packed; the limit is {limits.max_record_bytes} "
            "(Settings.max_record_bytes). Store large blobs elsewhere and keep a reference."
        )
    return data


def check_version(expected: Any) -> None:
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool) or expected < 0):
        raise ValidationError(
            f"expected_version must be None or an int >= 0 (0 means absent), got {expected!r}"
        )


def pack_checked(value: Any, what: Callable[[], str], limits: Settings) -> bytes:
    """``check_size(pack_value(value))``, naming the value (``what()``) only when refusing it:
    the factories below run once per operation, and formatting a name costs more than packing."""
    data = pack_value(value, what=what)
    if len(data) > limits.max_record_bytes:
        check_size(data, what(), limits)
    return data


def pack_source(source: Any, limits: Settings = _DEFAULTS) -> bytes | None:
    if source is None:
        return None
    if not isinstance(source, dict):
        raise ValidationError(f"source must be a dict (channel, conversation …) or None, got {source!r}")
    return check_size(pack_value(source, what="source"), "source", limits)


def ttl_to_ms(ttl: Any) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise ValidationError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    if ttl > MAX_TTL_S:
        raise ValidationError(
            f"ttl {ttl!r} is too long; the limit is {MAX_TTL_S} seconds (use None for no expiry)"
        )
    return max(1, math.ceil(ttl * 1000))


# -- factories ---------------------------------------------------------------------------------


def put_op(key, value, *, ttl=None, expected_version=None, tool=None, source=None, limits=_DEFAULTS) -> Put:
    check_key(key, limits)
    check_version(expected_version)
    if tool is not None:
        check_name(tool, "tool")
    return Put(
        key=key,
        value=pack_checked(value, lambda: f"the value of {key!r}", limits),
        ttl_ms=None if ttl is None else ttl_to_ms(ttl),
        expected_version=expected_version,
        tool=tool,
        source=None if source is None else pack_source(source, limits),
    )


def delete_op(key, *, expected_version=None, tool=None, source=None, limits=_DEFAULTS) -> Delete:
    check_key(key, limits)
    check_version(expected_version)
    check_name(tool, "tool", optional=True)
    return Delete(key=key, expected_version=expected_version, tool=tool, source=pack_source(source, limits))


def append_op(type, payload, *, tool=None, source=None, limits=_DEFAULTS) -> Append:
    check_name(type, "event type", max_chars=128)
    if type.startswith(RESERVED_TYPE_PREFIXES):
        raise ValidationError(
            f"event type {type!r} uses a reserved prefix ({', '.join(RESERVED_TYPE_PREFIXES)}); "
            "those are written by swarmlog itself. Pick another type name."
        )
    if tool is not None:
        check_name(tool, "tool")
    data = pack_value(payload, what=lambda: f"the payload of {type!r}")
    return Append(
        type=type,
        payload=data if len(data) <= limits.max_record_bytes else check_size(data, "payload", limits),
        tool=tool,
        source=None if source is None else pack_source(source, limits),
    )


def trace_op(kind, data, *, event=None, tool=None, source=None, limits=_DEFAULTS) -> AddTrace:
    if kind not in TRACE_KINDS:
        raise ValidationError(f"trace kind {kind!r} is unknown; use one of {', '.join(TRACE_KINDS)}")
    if not isinstance(data, dict):
        raise ValidationError(f"trace data must be a dict, got {type(data).__name__}")
    missing = [f for f in TRACE_KINDS[kind] if f not in data]
    if missing:
        raise ValidationError(
            f"a {kind!r} trace needs the field(s) {', '.join(missing)}; got {sorted(map(str, data))}"
        )
    for field in ("confidence", "value") if kind == "confidence" else ("confidence",):
        if field in data:
            c = data[field]
            if isinstance(c, bool) or not isinstance(c, int | float) or not 0.0 <= c <= 1.0:
                raise ValidationError(f"{kind} trace field {field!r} must be a number in [0, 1], got {c!r}")
    if (
        event is not None
        and not isinstance(event, OpRef)
        and (not isinstance(event, int) or isinstance(event, bool) or event < 1)
    ):
        raise ValidationError(
            f"event must be the seq (an int >= 1) of the event this trace explains, got {event!r}"
        )
    check_name(tool, "tool", optional=True)
    return AddTrace(
        kind=kind,
        data=check_size(pack_value(data, what=f"the {kind} trace"), "trace data", limits),
        event=event,
        tool=tool,
        source=pack_source(source, limits),
    )


def begin_op(
    *, metadata=None, parent=None, fork_seq=None, tool=None, source=None, limits=_DEFAULTS
) -> BeginRun:
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"run metadata must be a dict or None, got {type(metadata).__name__}")
    return BeginRun(
        metadata=check_size(pack_value(metadata or {}, what="run metadata"), "run metadata", limits),
        parent=parent,
        fork_seq=fork_seq,
        tool=tool,
        source=pack_source(source, limits),
    )


def end_op(status="ok", *, summary=None, tool=None, source=None, limits=_DEFAULTS) -> EndRun:
    check_name(status, "status", max_chars=64)
    if status == "running":
        raise ValidationError("status 'running' is not a final status; use 'ok', 'error', 'cancelled' …")
    return EndRun(
        status=status,
        summary=None
        if summary is None
        else check_size(pack_value(summary, what="run summary"), "summary", limits),
        tool=tool,
        source=pack_source(source, limits),
    )


def make_request(
    run_id, agent, ops, *, tool=None, write_id=None, source=None, fence=None, limits=_DEFAULTS
) -> Request:
    check_name(run_id, "run_id")
    check_name(agent, "agent", max_chars=128)
    check_name(tool, "tool", optional=True, max_chars=128)
    check_name(write_id, "write_id", optional=True, max_chars=256)
    if not ops:
        raise ValidationError("a write needs at least one operation")
    if len(ops) > limits.max_ops_per_write:
        raise ValidationError(f"{len(ops)} operations in one write; the limit is {limits.max_ops_per_write}")
    if fence is not None:
        fence = _check_fence(fence)
    return Request(
        run_id=run_id,
        agent=agent,
        ops=list(ops),
        tool=tool,
        write_id=write_id,
        source=source if source is None or isinstance(source, bytes) else pack_source(source, limits),
        fence=fence,
    )


def check_limits(req: Request, limits: Settings) -> None:
    """Check a request against the limits of the store it reached: the factories run on the
    caller's side and know only the default ``Settings``."""
    if len(req.ops) > limits.max_ops_per_write:
        raise ValidationError(
            f"{len(req.ops)} operations in one write; the limit is {limits.max_ops_per_write}"
        )
    for op in req.ops:
        key = getattr(op, "key", None)
        if key is not None:
            check_key(key, limits)


def _check_fence(fence: Any) -> tuple[str, int]:
    name = getattr(fence, "name", None)
    token = getattr(fence, "token", None)
    if name is None and isinstance(fence, tuple | list) and len(fence) == 2:
        name, token = fence
    if (
        not isinstance(name, str)
        or not name
        or not isinstance(token, int)
        or isinstance(token, bool)
        or not 1 <= token <= MAX_FENCE_TOKEN
    ):
        raise ValidationError(
            f"fence must be a Lease or a (lease name, 1 <= token < 2**63) pair, got {fence!r}"
        )
    return (name, token)
