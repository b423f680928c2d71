"""All built-in projections of a namespace, folded together from one journal.

``ProjectionSet.apply`` is the single fold: it takes a record as decoded by
``journal.codec.unpack_raw`` and updates every projection it concerns. It reads nothing but the
record — no clock, no randomness, no environment — so the same journal always gives the same
state, which ``digest`` makes checkable.

A projection ("part") is a class with ``HANDLES`` (event type -> method name; each method is
``(record, undo) -> None``), ``dump()`` (canonical msgpack-ready state) and ``load(state)``.
``runs`` sees every event; the others only the types they handle. New parts are listed in
``PARTS``.

Events of a forked run carry ``{"branch": True}`` in their EXTRA field: they belong to the
fork's branch, not to the shared main line. The main line folds them only into parts marked
``RUN_SCOPED = True`` (state kept per run, such as traces), never into shared state (keys,
documents …). A branch's own state is a ``ProjectionSet`` whose ``lineage`` names the runs
whose branch events it folds fully (see ``projections.branches``).
"""

from __future__ import annotations

import msgpack

from journal.codec import blake
from journal.errors import CorruptionError
from journal.records import EXTRA, RUN_ID, SEQ, TS, TYPE
from projections.documents import DocumentsProjection
from projections.kv import KVProjection
from projections.runs import RunsProjection
from projections.traces import TracesProjection
from projections.undo import UndoLog
from projections.vectors import VectorsProjection

SNAPSHOT_FORMAT = 1

# name -> projection class, in fold order (after ``runs``, which folds every event first).
PARTS: dict[str, type] = {
    "kv": KVProjection,
    "traces": TracesProjection,
    "docs": DocumentsProjection,
    "vectors": VectorsProjection,
}


class ProjectionSet:
    """The namespace state after event ``seq``."""

    __slots__ = (
        "seq",
        "ts",
        "runs",
        "parts",
        "kv",
        "traces",
        "fences",
        "lineage",
        "_handlers",
        "_run_handlers",
    )

    def __init__(self, parts: dict | None = None, runs: RunsProjection | None = None) -> None:
        self.seq = 0
        self.ts = 0
        self.runs = runs or RunsProjection()
        self.parts = parts if parts is not None else {name: cls() for name, cls in PARTS.items()}
        self.kv: KVProjection = self.parts["kv"]
        self.traces: TracesProjection = self.parts["traces"]
        self.fences: dict[str, int] = {}  # lease name -> newest fencing token seen
        # None on the main line; on a branch's state, the runs whose branch events it folds fully.
        self.lineage: frozenset[str] | None = None
        self._handlers = {
            type_: getattr(part, method)
            for part in self.parts.values()
            for type_, method in part.HANDLES.items()
        }
        self._run_handlers = {
            type_: getattr(part, method)
            for part in self.parts.values()
            if getattr(part, "RUN_SCOPED", False)
            for type_, method in part.HANDLES.items()
        }

    def apply(self, f: list, undo: UndoLog | None = None) -> None:
        """Fold one record. Records must arrive in seq order with no gaps (a branch's state
        sees only its lineage's events: in order, with gaps)."""
        seq = f[SEQ]
        if seq != self.seq + 1 and (self.lineage is None or seq <= self.seq):
            raise CorruptionError(f"fold expected event {self.seq + 1} but got {seq}")
        ts = f[TS]
        expiry = self.kv._expiry  # heap of (expires_ms, …): read inline, this runs per event
        if expiry and expiry[0][0] <= ts >> 16:
            self.kv.purge(ts >> 16, undo)
        self.runs.apply(f, undo)
        extra = f[EXTRA]
        handlers = self._handlers
        if (
            extra is not None
            and "branch" in extra
            and (self.lineage is None or f[RUN_ID] not in self.lineage)
        ):
            handlers = self._run_handlers  # another branch's event: it changes no shared state here
        handler = handlers.get(f[TYPE])
        if handler is not None:
            try:
                handler(f, undo)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                # The engine never writes such an event (it decides against the same state); one
                # found in a journal was damaged or forged: say so instead of a bare KeyError.
                raise CorruptionError(
                    f"event {seq} ({f[TYPE]}) cannot be folded into the state before it: {exc!r}"
                ) from None
        if extra is not None and "fence" in extra:
            name, token = extra["fence"]
            if token > self.fences.get(name, 0):
                if undo is not None:
                    undo.push(self._set_fence, name, self.fences.get(name))
                self.fences[name] = token
        if undo is not None:
            undo.push(self._set_head, self.seq, self.ts)
        self.seq = seq
        self.ts = ts

    def _set_fence(self, name: str, token: int | None) -> None:
        if token is None:
            del self.fences[name]
        else:
            self.fences[name] = token

    def _set_head(self, seq: int, ts: int) -> None:
        self.seq = seq
        self.ts = ts

    # -- snapshots and digests -----------------------------------------------------------------

    def dump(self) -> dict:
        """Canonical, msgpack-ready state (sorted, so equal states dump to equal bytes)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "seq": self.seq,
            "ts": self.ts,
            "runs": self.runs.dump(),
            "fences": sorted([name, token] for name, token in self.fences.items()),
            "parts": {name: part.dump() for name, part in self.parts.items()},
        }

    @classmethod
    def load(cls, state: dict) -> ProjectionSet:
        if state.get("format") != SNAPSHOT_FORMAT:
            raise CorruptionError(f"snapshot format {state.get('format')!r} is not supported")
        saved = state["parts"]
        # A part added after the snapshot was taken cannot be loaded from it.
        missing = [name for name in PARTS if name not in saved]
        if missing:
            raise CorruptionError(f"snapshot lacks the projections {missing}; it will be rebuilt")
        self = cls(
            parts={name: klass.load(saved[name]) for name, klass in PARTS.items()},
            runs=RunsProjection.load(state["runs"]),
        )
        self.seq = state["seq"]
        self.ts = state["ts"]
        self.fences = {name: token for name, token in state["fences"]}
        return self

    def digest(self) -> str:
        """Hex BLAKE2b of the canonical state: equal for equal journals, whatever the path."""
        return blake(msgpack.packb(self.dump(), use_bin_type=True)).hex()
