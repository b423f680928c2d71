"""Reads of a namespace: the live state, or a view as of a past event (``at``).

A ``Reader`` answers from a ``ProjectionSet`` and the journal, never beyond event ``upto``. The
live namespace reads with the caller's clock for TTL; a past view reads with the time of its
last event, so it shows what was visible then.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from journal.codec import unpack_value
from journal.errors import NotFoundError, ValidationError
from journal.hlc import wall_ms
from journal.records import Event, event_from_fields
from journal.store import Journal
from projections.doc_reads import READ_METHODS as DOC_READ_METHODS
from projections.doc_reads import DocumentReads
from projections.kv import Entry, entry_from_tuple
from projections.lineage import history, history_seqs
from projections.runs import RunInfo, run_info
from projections.state import ProjectionSet
from projections.traces import TRACE_KINDS, Trace
from projections.user import UserProjection

_MISSING = object()


# The methods of a Reader that callers may reach remotely: on a past view (``view_call``) and on
# a run's branch or past state (``run_read``).
READ_METHODS = (
    frozenset(
        {
            "get",
            "entry",
            "list",
            "items",
            "head",
            "event",
            "read_events",
            "traces",
            "run_info",
            "runs",
            "why",
            "digest",
            "projection",
        }
    )
    | DOC_READ_METHODS
)


class Reader(DocumentReads):
    """Read-only access to a projection set and the journal up to ``upto``."""

    def __init__(
        self,
        state: ProjectionSet,
        journal: Journal,
        *,
        upto: int | None = None,
        clock: Callable[[], int] = wall_ms,
        user: dict[str, UserProjection] | None = None,
    ):
        self.state = state
        self.journal = journal
        self._upto = upto
        self._clock = clock
        self.user = user if user is not None else {}

    @property
    def upto(self) -> int:
        return self.journal.head_seq if self._upto is None else self._upto

    def head(self) -> int:
        """Seq of the newest event visible here (0 when empty)."""
        return self.state.seq

    # -- key/value -----------------------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        t = self.state.kv.live(key, self._clock())
        return None if t is None else entry_from_tuple(key, t)

    def get(self, key: str, default: Any = None) -> Any:
        t = self.state.kv.live(key, self._clock())
        return default if t is None else unpack_value(t[0])

    def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        if not isinstance(prefix, str):
            raise ValidationError(f"prefix must be a string, got {prefix!r}")
        if start_after is not None and not isinstance(start_after, str):
            raise ValidationError(f"start_after must be None or a string (a key), got {start_after!r}")
        _check_limit(limit)
        return self.state.kv.list(prefix, self._clock(), start_after, limit)

    def items(
        self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> list[Entry]:
        keys = self.list(prefix, start_after=start_after, limit=limit)
        entries = self.state.kv.entries
        return [entry_from_tuple(k, entries[k]) for k in keys]

    def why(self, key: str, *, limit: int | None = 100) -> list[Event]:
        """The events behind the current value of ``key``, newest first: the write that set it,
        then the writes it replaced, back to the one that created it (at most ``limit``)."""
        _check_limit(limit)
        t = self.state.kv.live(key, self._clock())
        out: list[Event] = []
        version = 0 if t is None else t[1]
        while version and (limit is None or len(out) < limit):
            ev = self.event(version)
            out.append(ev)
            version = ev.payload.get("prev", 0) if isinstance(ev.payload, dict) else 0
        return out

    # -- runs and traces -----------------------------------------------------------------------

    def run_info(self, run_id: str) -> RunInfo:
        r = self.state.runs.runs.get(run_id)
        if r is None:
            raise NotFoundError(f"run {run_id!r} does not exist in this namespace; begin it with begin_run")
        return run_info(run_id, r)

    def runs(self, *, status: str | None = None, agent: str | None = None) -> list[RunInfo]:
        out = []
        for run_id, r in self.state.runs.runs.items():
            info = run_info(run_id, r)
            if (status is None or info.status == status) and (agent is None or info.agent == agent):
                out.append(info)
        out.sort(key=lambda i: i.began_seq)
        return out

    def traces(
        self, run_id: str | None = None, *, kind: str | None = None, event: int | None = None
    ) -> list[Trace]:
        if kind is not None and kind not in TRACE_KINDS:
            raise ValidationError(f"trace kind {kind!r} is unknown; use one of {', '.join(TRACE_KINDS)}")
        _check_seq(event, "event")
        if run_id is not None:
            self.run_info(run_id)
            segments = history(self.state.runs.runs, run_id)
            if len(segments) > 1:  # a fork: its parent's traces up to the fork point, then its own
                return [t for rid, cut in segments for t in self.state.traces.query(rid, kind, event, cut)]
        return self.state.traces.query(run_id, kind, event, None)

    # -- events --------------------------------------------------------------------------------

    def event(self, seq: int) -> Event:
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= self.upto:
            raise NotFoundError(f"event {seq!r} does not exist here (1..{self.upto})")
        digest, canonical = self.journal.canonical(seq)
        return event_from_fields(unpack_value(canonical), digest)

    def read_events(
        self,
        run_id: str | None = None,
        *,
        after: int | None = None,
        upto: int | None = None,
        types: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events in seq order: of one run's history (through the run index; a fork's history
        starts with its parent's events up to the fork point), of some types (through the type
        index), or all; only those with ``after < seq <= upto``."""
        _check_limit(limit)
        after = _check_seq(after, "after") or 0
        hi = self.upto if upto is None else min(_check_seq(upto, "upto"), self.upto)
        type_set = _check_types(types)
        if run_id is not None:
            self.run_info(run_id)
            # A fork's history is its parent's events up to the fork point, then its own.
            seqs: Iterator[int] = history_seqs(self.journal, self.state.runs.runs, run_id, after, hi)
        elif type_set is not None:
            seqs = heapq.merge(*(self.journal.type_seqs(t, after, hi) for t in sorted(type_set)))
        else:
            seqs = iter(range(after + 1, hi + 1))
        out: list[Event] = []
        if limit == 0:
            return out
        for seq in seqs:
            ev = self.event(seq)
            if type_set is not None and ev.type not in type_set:
                continue
            out.append(ev)
            if limit is not None and len(out) >= limit:
                break
        return out

    # -- user projections ----------------------------------------------------------------------

    def projection(self, name: str) -> Any:
        proj = self.user.get(name)
        if proj is None:
            raise NotFoundError(f"no projection named {name!r} is registered; call register_projection")
        return proj.read()

    def digest(self) -> str:
        return self.state.digest()


def _check_limit(limit: Any) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValidationError(f"limit must be None or an int >= 0, got {limit!r}")


def _check_seq(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{what} must be None or a seq (int >= 0), got {value!r}")
    return value


def _check_types(types: Any) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = (types,)
    try:
        out = frozenset(types)
    except TypeError:
        raise ValidationError(f"types must be a string or an iterable of strings, got {types!r}") from None
    if not all(isinstance(t, str) and t for t in out):
        raise ValidationError(f"types must be non-empty strings, got {types!r}")
    return out
