"""The trace store: typed reasoning records linked to a run and an event.

A trace is written as a ``trace.<kind>`` event whose payload holds the trace data and the seq of
the event it explains (a tool call's result event, the ``kv.put`` a decision led to …).
"""

from __future__ import annotations

from typing import Any

import msgspec

from journal.codec import unpack_value
from journal.records import AGENT, PAYLOAD, RUN_ID, SEQ, TOOL, TS, TYPE
from projections.undo import UndoLog

TRACE_KINDS: dict[str, tuple[str, ...]] = {
    # kind -> fields its data must contain
    "tool_call": ("tool",),
    "model_input": (),
    "model_output": (),
    "citation": ("source",),
    "decision": ("choice",),
    "confidence": ("value",),
    "assumption": ("text",),
}

# Positions in a trace tuple.
T_SEQ, T_KIND, T_DATA, T_EVENT, T_TS, T_AGENT, T_TOOL = range(7)


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    """One typed reasoning record."""

    seq: int
    """Seq of the ``trace.<kind>`` event that recorded it."""
    run_id: str
    """The run it belongs to."""
    kind: str
    """One of ``tool_call model_input model_output citation decision confidence assumption``."""
    data: Any
    """The trace body (a dict)."""
    event: int | None
    """Seq of the event it is linked to, or None."""
    ts: int
    """HLC time it was recorded."""
    agent: str
    """The agent that recorded it."""
    tool: str | None
    """The tool that recorded it, if any."""


class TracesProjection:
    """Fold of ``trace.*`` events, grouped by run in seq order."""

    __slots__ = ("by_run",)
    HANDLES = {"trace." + kind: "apply" for kind in TRACE_KINDS}
    RUN_SCOPED = True  # kept per run, so a fork's traces fold on the main line too

    def __init__(self) -> None:
        self.by_run: dict[str, list[tuple]] = {}

    def apply(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        t = (f[SEQ], f[TYPE][6:], p["data"], p.get("event"), f[TS], f[AGENT], f[TOOL])
        run_list = self.by_run.get(f[RUN_ID])
        if run_list is None:
            run_list = self.by_run[f[RUN_ID]] = []
            if undo is not None:
                undo.push(self.by_run.pop, f[RUN_ID])
        elif undo is not None:
            undo.push(run_list.pop)
        run_list.append(t)

    def query(self, run_id: str | None, kind: str | None, event: int | None, upto: int | None) -> list[Trace]:
        if run_id is not None:
            groups = [(run_id, self.by_run.get(run_id, ()))]
        else:
            groups = list(self.by_run.items())
        out = []
        for rid, items in groups:
            for t in items:
                if kind is not None and t[T_KIND] != kind:
                    continue
                if event is not None and t[T_EVENT] != event:
                    continue
                if upto is not None and t[T_SEQ] > upto:
                    continue
                out.append((t[T_SEQ], rid, t))
        out.sort(key=lambda x: x[0])
        return [trace_from_tuple(rid, t) for _, rid, t in out]

    def dump(self) -> list:
        return [[run_id, [list(t) for t in self.by_run[run_id]]] for run_id in sorted(self.by_run)]

    @classmethod
    def load(cls, state: list) -> TracesProjection:
        self = cls()
        self.by_run = {run_id: [tuple(t) for t in items] for run_id, items in state}
        return self


def trace_from_tuple(run_id: str, t: tuple) -> Trace:
    return Trace(
        seq=t[T_SEQ],
        run_id=run_id,
        kind=t[T_KIND],
        data=unpack_value(t[T_DATA]),
        event=t[T_EVENT],
        ts=t[T_TS],
        agent=t[T_AGENT],
        tool=t[T_TOOL],
    )
