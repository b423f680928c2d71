"""Runs: who began them, their status, metadata and event counts.

Every event belongs to a run, so this fold sees all of them. A run is ``running`` from its
``run.begin`` event until its ``run.end`` event sets the final status.
"""

from __future__ import annotations

from typing import Any

import msgspec

from journal.codec import unpack_value
from journal.records import AGENT, PAYLOAD, RUN_ID, SEQ, TS, TYPE
from projections.undo import UndoLog

RUNNING = "running"

# Positions in a run state list (lists, mutated in place, for a cheap per-event count).
R_AGENT, R_STATUS, R_META, R_BEGIN_SEQ, R_BEGIN_TS, R_END_SEQ, R_END_TS, R_EVENTS, R_LAST = range(9)
R_PARENT, R_FORK_SEQ, R_SUMMARY = 9, 10, 11
_WIDTH = 12


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A run and where it stands."""

    run_id: str
    """The run's id."""
    agent: str
    """The agent that began it."""
    status: str
    """``"running"`` until ended, then the status given to ``end`` (``"ok"``, ``"error"`` …)."""
    metadata: Any
    """Metadata given to ``begin_run``."""
    began_seq: int
    """Seq of its ``run.begin`` event."""
    began_ts: int
    """HLC time of its ``run.begin`` event."""
    ended_seq: int | None
    """Seq of its ``run.end`` event, or None while running."""
    ended_ts: int | None
    """HLC time of its ``run.end`` event, or None while running."""
    events: int
    """How many events belong to it (including begin and end)."""
    last_seq: int
    """Seq of its newest event."""
    parent: str | None = None
    """The run it was forked from, if any."""
    fork_seq: int | None = None
    """The parent's seq it was forked at, if any."""
    summary: Any = None
    """What ``end`` was given besides the status, if anything."""

    @property
    def running(self) -> bool:
        return self.status == RUNNING


def run_info(run_id: str, r: list) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        agent=r[R_AGENT],
        status=r[R_STATUS],
        metadata=unpack_value(r[R_META]),
        began_seq=r[R_BEGIN_SEQ],
        began_ts=r[R_BEGIN_TS],
        ended_seq=r[R_END_SEQ],
        ended_ts=r[R_END_TS],
        events=r[R_EVENTS],
        last_seq=r[R_LAST],
        parent=r[R_PARENT],
        fork_seq=r[R_FORK_SEQ],
        summary=None if r[R_SUMMARY] is None else unpack_value(r[R_SUMMARY]),
    )


class RunsProjection:
    """Fold of every event into per-run state."""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: dict[str, list] = {}

    def apply(self, f: list, undo: UndoLog | None) -> None:
        run_id = f[RUN_ID]
        type_ = f[TYPE]
        if type_ == "run.begin":
            p = f[PAYLOAD]
            r = [None] * _WIDTH
            r[R_AGENT] = f[AGENT]
            r[R_STATUS] = RUNNING
            r[R_META] = p["metadata"]
            r[R_BEGIN_SEQ] = r[R_LAST] = f[SEQ]
            r[R_BEGIN_TS] = f[TS]
            r[R_EVENTS] = 1
            r[R_PARENT] = p.get("parent")
            r[R_FORK_SEQ] = p.get("fork_seq")
            self.runs[run_id] = r
            if undo is not None:
                undo.push(self.runs.pop, run_id)
            return
        r = self.runs[run_id]
        if undo is not None:
            if type_ == "run.end":
                undo.push(self._restore, r, r[:])
            else:  # only the count and the last seq change: restore just those (no list copy)
                undo.push(self._uncount, r, r[R_EVENTS], r[R_LAST])
        r[R_EVENTS] += 1
        r[R_LAST] = f[SEQ]
        if type_ == "run.end":
            p = f[PAYLOAD]
            r[R_STATUS] = p["status"]
            r[R_END_SEQ] = f[SEQ]
            r[R_END_TS] = f[TS]
            r[R_SUMMARY] = p.get("summary")

    @staticmethod
    def _restore(r: list, old: list) -> None:
        r[:] = old

    @staticmethod
    def _uncount(r: list, events: int, last: int) -> None:
        r[R_EVENTS] = events
        r[R_LAST] = last

    def dump(self) -> list:
        return [[run_id, *self.runs[run_id]] for run_id in sorted(self.runs)]

    @classmethod
    def load(cls, state: list) -> RunsProjection:
        self = cls()
        self.runs = {row[0]: list(row[1:]) for row in state}
        return self
