"""Recorded nondeterministic inputs: the ``call.*`` events behind ``run.call``, ``run.random`` …

An agent's run is replayable when everything it could not compute by itself is in the journal.
``Run.call`` journals a tool or model call as a ``call.tool`` event; ``random``, ``now`` and
``uuid`` journal their value as ``call.random``, ``call.now`` and ``call.uuid``. The payloads:

``call.tool``    ``{"name", "args", "kwargs", "output"}`` when the call returned, or
                 ``{"name", "args", "kwargs", "error": {"type", "message", "args"}}`` when it
                 raised (``type`` is ``module.QualName``); ``"async": True`` when the call
                 returned an awaitable, so a replay hands back an awaitable too.
``call.random``  ``{"value": float}``; ``call.now`` ``{"value": float seconds since the epoch}``;
``call.uuid``    ``{"value": str (32 hex digits)}``.

No projection folds these events (the runs fold counts them); replay reads them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from journal.codec import pack_value, packed
from journal.errors import ValidationError
from journal.settings import Settings
from projections.commands import Op, check_name, check_size

if TYPE_CHECKING:
    from projections.commands import Request

RECORD_KINDS = ("tool", "random", "now", "uuid")
CALL_PREFIX = "call."
_DEFAULTS = Settings()


class RecordInput(Op):
    """Journal one recorded input as a ``call.<kind>`` event."""

    kind: str
    """One of ``RECORD_KINDS``."""
    payload: bytes
    """The packed payload (see the module docstring)."""


def record_op(
    kind: str, payload: Any, *, tool: str | None = None, limits: Settings = _DEFAULTS
) -> RecordInput:
    """A ``RecordInput`` operation; ``ValidationError`` when ``payload`` cannot be stored."""
    if kind not in RECORD_KINDS:
        raise ValidationError(f"record kind {kind!r} is unknown; use one of {', '.join(RECORD_KINDS)}")
    check_name(tool, "tool", optional=True)
    what = f"the {payload.get('name', kind)!r} call" if isinstance(payload, dict) else f"the {kind} record"
    return RecordInput(kind=kind, payload=check_size(pack_value(payload, what=what), what, limits), tool=tool)


def decide_record(engine: Any, req: Request, op: RecordInput, builder, undo, extra, out):
    """The engine's handler for ``RecordInput`` (same shape as ``NamespaceEngine._op_append``)."""
    if op.kind not in RECORD_KINDS:
        raise ValidationError(f"record kind {op.kind!r} is unknown")
    from projections.engine import _event_from_live  # the engine imports this module

    ts = engine._clock.now()
    seq, digest, fields = engine._emit(
        req, op, CALL_PREFIX + op.kind, packed(op.payload), op.payload, ts, extra, builder, undo
    )
    return _event_from_live(fields, digest, op.payload), ["e", seq]
