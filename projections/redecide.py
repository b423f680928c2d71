"""Deciding a replayed request again, against the state its recorded events were decided against.

An agent replay (``swarmlog.replay``) checks a write by comparing what the engine would journal
for it with the recorded events, byte for byte. For ``put`` or ``append_event`` the client can
re-encode the event by itself (``projections.reencode``). Document, index, vector and
transaction operations are different: which documents an ``update_many`` touches, what they
become, which ``_id`` an insert generates, whether a vector existed, whether a transaction's
read versions still hold — all of that depends on the namespace state. So such requests are
decided *here*, by the engine's own decide handlers (the same code as the live write path, so
the events cannot drift from it), against the state the recorded run saw:

* the state is the run's view right after event ``upto`` (a fork: its branch), which the
  replay sets to just before the run's next recorded event: a request's events are journaled
  consecutively, so that is the exact state the recorded request was decided against;
* each event the handlers emit takes its environment — seq, id, time, the previous hash — from
  the recorded event at that seq, and its hash must equal the recorded hash: equal hashes,
  byte-identical records. The first one that differs (or that lies beyond the recorded
  request) stops the decision and is returned, so the replay can report it;
* the events are folded with an undo log, so later operations of the request see the earlier
  ones' effects, and rolled back at the end: the view is as before, nothing is written.

What the handlers return (generated ``_id`` values, update counts, revs, version maps) is what
the live write returned, because it was decided from the same state with the same seqs. A
request the engine refuses (``ConflictError`` for a stale transaction read, ``ValidationError``
…) raises the same error here.
"""

from __future__ import annotations

from types import MethodType
from typing import TYPE_CHECKING

import msgspec

from journal.codec import BLAKE_EMPTY, unpack_raw, unpack_value
from journal.errors import NotFoundError, ValidationError
from journal.records import ID, PREV, TS, WRITE_ID, Event, event_from_fields
from projections.lineage import is_branch
from projections.undo import UndoLog

if TYPE_CHECKING:
    from projections.commands import Request
    from projections.engine import NamespaceEngine
    from projections.state import ProjectionSet

_PACKED = 1  # journal.codec.EXT_PACKED
_Ext = msgspec.msgpack.Ext


class Redecision(msgspec.Struct, frozen=True, kw_only=True):
    """What deciding a replayed request again gave."""

    matched: int
    """Recorded events, from ``upto + 1`` on, that the request re-encoded to byte for byte."""
    results: list | None = None
    """The request's results, as the live write returned them (None when it diverged)."""
    diverged: Event | None = None
    """The first event the request would have journaled that the record does not hold (its
    environment — seq, id, time, previous hash — is the recorded event's at that seq)."""


class _Diverged(Exception):
    def __init__(self, event: Event):
        self.event = event


class _Redecider:
    """Stands in for ``NamespaceEngine`` while its decide handlers run: same attributes, but
    ``state`` is the replayed run's past view and ``_emit`` compares with the record instead of
    journaling."""

    def __init__(self, engine: NamespaceEngine, state: ProjectionSet, first_seq: int):
        self.state = state
        self.settings = engine.settings
        self.name = engine.name
        self.journal = engine.journal
        self._handlers = engine._handlers
        # The engine's own checks (run open, fence, branch marker) and dispatch, unchanged.
        self._decide = MethodType(type(engine)._decide, self)
        self._check_new_run = MethodType(type(engine)._check_new_run, self)
        self._next_seq = first_seq
        self._clock = self
        self._encode = msgspec.msgpack.Encoder().encode
        self._recorded: dict[int, tuple[bytes, list] | None] = {}
        self.matched = 0

    def _record(self, seq: int) -> tuple[bytes, list] | None:
        """``(digest, fields with packed values as bytes)`` of recorded event ``seq``, or None."""
        if seq not in self._recorded:
            if seq > self.journal.head_seq:
                self._recorded[seq] = None
            else:
                digest, canonical = self.journal.canonical(seq)
                self._recorded[seq] = (digest, unpack_raw(canonical))
        return self._recorded[seq]

    def now(self) -> int:
        """The handlers' clock: the time of the recorded event this decision is at."""
        recorded = self._record(self._next_seq)
        return self.state.ts if recorded is None else recorded[1][TS]

    def _emit(self, req, op, type_, payload, fold_payload, ts, extra, builder, undo):
        """``NamespaceEngine._emit`` with the recorded event's environment, compared by hash."""
        seq = self._next_seq
        recorded = self._record(seq)
        tool = op.tool if op.tool is not None else req.tool
        source = op.source if op.source is not None else req.source
        # A write the agent gave no write id may have got one from its transport (the Ray
        # clients add one so retries stay idempotent): that id is environment, like the seq.
        write_id = req.write_id
        if write_id is None and recorded is not None and recorded[1][WRITE_ID] is not None:
            write_id = recorded[1][WRITE_ID]
        fields = [
            seq,
            recorded[1][ID] if recorded is not None else "",
            ts,
            req.run_id,
            req.agent,
            tool,
            type_,
            payload,
            None if source is None else _Ext(_PACKED, source),
            write_id,
            recorded[1][PREV] if recorded is not None else b"",
            extra,
        ]
        canonical = self._encode(fields)
        if len(canonical) > self.settings.max_record_bytes:
            raise ValidationError(
                f"the {type_} event is {len(canonical)} bytes; the limit is "
                f"{self.settings.max_record_bytes} (Settings.max_record_bytes)"
            )
        h = BLAKE_EMPTY.copy()
        h.update(canonical)
        digest = h.digest()
        if recorded is None or recorded[0] != digest:
            raise _Diverged(event_from_fields(unpack_value(canonical), digest))
        fields[7] = fold_payload
        fields[8] = source
        self.state.apply(fields, undo)
        self._next_seq = seq + 1
        self.matched += 1
        return seq, digest, fields


def replay_decide(engine: NamespaceEngine, run_id: str, request: Request, upto: int) -> Redecision:
    """Decide ``request`` of run ``run_id`` against that run's view after event ``upto``, with
    the environment of the recorded events from ``upto + 1`` on (module docstring)."""
    with engine._lock:
        engine._check_open()
        runs = engine.state.runs.runs
        if run_id not in runs:
            raise NotFoundError(f"run {run_id!r} does not exist in namespace {engine.name!r}")
        head = engine.state.seq
        if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto <= head:
            raise ValidationError(f"upto must be a seq between 0 and the head ({head}), got {upto!r}")
        branches = engine.branches
        view = branches._past_view(run_id if is_branch(runs, run_id) else None, upto)
        stand_in = _Redecider(engine, view.ps, upto + 1)
        undo = UndoLog()
        try:
            out, _ = stand_in._decide(request, None, undo)
        except _Diverged as diverged:
            return Redecision(matched=stand_in.matched, diverged=diverged.event)
        finally:
            undo.rollback(0)
        return Redecision(matched=stand_in.matched, results=out)


__all__ = ["Redecision", "replay_decide"]
