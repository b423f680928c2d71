"""Forked runs as branches: their state, their write path, and reads as a run saw the namespace.

A fork is a branch. Its events are journaled like any other (one namespace, one seq, one hash
chain) but carry ``{"branch": True}`` in EXTRA, and the main-line projections fold them only
into per-run parts (runs, traces), so a fork never changes what other agents read through
``ns.get``. The fork's own state — the namespace as of the fork point plus the fork's own
writes (see ``projections.lineage``) — is a separate ``ProjectionSet`` kept here:

* built on first use from the nearest snapshot, the main-line tail up to the fork point and the
  lineage's own events (read through the run index: nothing is copied when a run is forked);
* kept up to date by the write path: a fork's write is decided against its branch state
  (expected versions, ``prev``, deletes of absent keys …) and folded into both;
* a few are cached (``LIVE_KEPT``); an evicted one is rebuilt from the journal when needed.

Reads "as run R saw the namespace after event N" (what replay serves a replayed agent) use past
views built the same way and advanced incrementally, since a replay reads forward.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from journal.codec import ZERO_HASH, unpack_raw
from journal.errors import NotFoundError, ValidationError
from journal.hlc import physical_ms
from projections.commands import BeginRun
from projections.lineage import Segment, is_branch, lineage
from projections.reader import READ_METHODS, Reader
from projections.runs import R_BEGIN_SEQ, R_FORK_SEQ
from projections.state import ProjectionSet

if TYPE_CHECKING:
    from projections.commands import Request
    from projections.engine import NamespaceEngine

LIVE_KEPT = 4
"""Branch states kept in memory (each is a full copy of the namespace state at its fork point)."""
PAST_KEPT = 4
"""Past views kept for ``read(…, upto=N)``."""


class _Past:
    """A past view: ``ps`` is the state of ``run_id`` after event ``upto``."""

    __slots__ = ("ps", "upto", "main_done", "prev")

    def __init__(self, ps: ProjectionSet, upto: int, main_done: int, prev: bytes):
        self.ps = ps
        self.upto = upto
        self.main_done = main_done  # last main-line event folded
        self.prev = prev  # its hash, to continue the main-line fold


class _DecideState:
    """What the engine decides a fork's write against: attributes are the branch's state (keys,
    versions, runs …); ``apply`` folds into the branch and into the main line, which keeps only
    the per-run parts of it."""

    __slots__ = ("_branch", "_main")

    def __init__(self, branch: ProjectionSet, main: ProjectionSet):
        self._branch = branch
        self._main = main

    def __getattr__(self, name: str) -> Any:
        return getattr(self._branch, name)

    def apply(self, f: list, undo=None) -> None:
        self._main.apply(f, undo)
        self._branch.apply(f, undo)


class Branches:
    """The branch states of one engine's forked runs. Every method runs under the engine lock."""

    def __init__(self, engine: NamespaceEngine):
        self._engine = engine
        self._live: OrderedDict[str, ProjectionSet] = OrderedDict()
        self._past: OrderedDict[tuple[str | None, int], _Past] = OrderedDict()

    # -- the write path ------------------------------------------------------------------------

    def decide(self, req: Request, builder, undo) -> tuple[list, list]:
        """``engine._decide``, against the branch state when ``req`` writes to a fork."""
        engine = self._engine
        main = engine.state
        branch = self._branch_for(req, main)
        if branch is None:
            return engine._decide(req, builder, undo)
        # Every decide handler reads ``engine.state``; pointing it at the branch for the length
        # of one request makes all of them (present and future) branch-aware at once.
        engine.state = _DecideState(branch, main)
        try:
            return engine._decide(req, builder, undo)
        finally:
            engine.state = main

    def _branch_for(self, req: Request, main: ProjectionSet) -> ProjectionSet | None:
        runs = main.runs.runs
        r = runs.get(req.run_id)
        if r is not None:
            return None if r[R_FORK_SEQ] is None else self._live_state(req.run_id)
        ops = req.ops
        if not ops or type(ops[0]) is not BeginRun or ops[0].fork_seq is None:
            return None
        op = ops[0]
        self._check_fork(op, runs)
        base, segments = lineage(runs, op.parent, op.fork_seq)
        ps = self._build(base, segments, add=req.run_id)
        self._remember(req.run_id, ps)
        return ps

    def _check_fork(self, op: BeginRun, runs: dict) -> None:
        parent, at = op.parent, op.fork_seq
        if not isinstance(parent, str) or parent not in runs:
            raise ValidationError(f"cannot fork run {parent!r}: it does not exist in this namespace")
        head = self._engine.journal.head_seq
        low = runs[parent][R_BEGIN_SEQ]
        if not isinstance(at, int) or isinstance(at, bool) or not low <= at <= head:
            raise ValidationError(
                f"cannot fork run {parent!r} at {at!r}: the fork point must be a seq between its "
                f"run.begin ({low}) and the head ({head}); to branch off earlier, fork its parent"
            )

    # -- states ----------------------------------------------------------------------------------

    def _live_state(self, run_id: str) -> ProjectionSet:
        ps = self._live.get(run_id)
        if ps is not None:
            self._live.move_to_end(run_id)
            return ps
        base, segments = lineage(self._engine.state.runs.runs, run_id)
        ps = self._build(base, segments)
        self._remember(run_id, ps)
        return ps

    def _remember(self, run_id: str, ps: ProjectionSet) -> None:
        live = self._live
        live[run_id] = ps
        head = self._engine.journal.head_seq
        while len(live) > LIVE_KEPT:
            oldest, state = next(iter(live.items()))
            if state.seq > head:  # it holds events of the commit in progress: keep it
                break
            del live[oldest]

    def _build(self, base: int | None, segments: list[Segment], add: str | None = None) -> ProjectionSet:
        """Main line after ``base``, then the segments' own events (``add`` joins the lineage)."""
        ps, _ = self._main_at(base or 0)
        self._enter_branch(ps, segments, add)
        self._fold_segments(ps, segments, base or 0, None)
        return ps

    def _main_at(self, seq: int) -> tuple[ProjectionSet, bytes]:
        engine = self._engine
        ps, prev, _ = engine._load_snapshot(seq)
        engine._fold_range(ps, ps.seq, seq, prev, [])
        return ps, engine.journal.canonical(seq)[0] if seq else ZERO_HASH

    @staticmethod
    def _enter_branch(ps: ProjectionSet, segments: list[Segment], add: str | None = None) -> None:
        names = {rid for rid, _ in segments}
        if add is not None:
            names.add(add)
        if names:
            ps.lineage = frozenset(names)

    def _fold_segments(
        self, ps: ProjectionSet, segments: list[Segment], after: int, upto: int | None
    ) -> None:
        journal = self._engine.journal
        for rid, cut in segments:
            hi = cut if upto is None else upto if cut is None else min(cut, upto)
            if hi is not None and hi <= after:
                continue
            for seq in journal.run_seqs(rid, after, hi):
                _, canonical = journal.canonical(seq)
                ps.apply(unpack_raw(canonical))

    def _past_view(self, run_id: str | None, upto: int) -> _Past:
        """The state of ``run_id`` (None: the main line) after event ``upto``; reuses and advances
        the newest cached view of the same run that is not past ``upto``."""
        key = (run_id, upto)
        past = self._past
        view = past.get(key)
        if view is not None:
            past.move_to_end(key)
            return view
        runs = self._engine.state.runs.runs
        base, segments = (upto, []) if run_id is None else lineage(runs, run_id, upto)
        base = upto if base is None else base
        start = None
        for (rid, u), cand in past.items():
            if rid == run_id and u < upto and cand.main_done <= base and (start is None or u > start.upto):
                start = cand
        if start is not None:
            del past[(run_id, start.upto)]
            ps, main_done, prev, after = start.ps, start.main_done, start.prev, start.upto
            if main_done < base:
                self._engine._fold_range(ps, main_done, base, prev, [])
                prev = self._engine.journal.canonical(base)[0]
        else:
            ps, prev = self._main_at(base)
            after = base
        if segments and upto > base:
            self._enter_branch(ps, segments)
            self._fold_segments(ps, segments, max(after, base), upto)
        view = _Past(ps, upto, base, prev)
        past[key] = view
        while len(past) > PAST_KEPT:
            past.popitem(last=False)
        return view

    # -- reads -----------------------------------------------------------------------------------

    def read(
        self,
        run_id: str | None,
        method: str,
        args: tuple = (),
        kwargs: dict | None = None,
        upto: int | None = None,
    ) -> Any:
        """Call read ``method`` as run ``run_id`` sees the namespace — a fork: its branch; a
        main-line run or None: the main line — now, or right after event ``upto``."""
        if method not in READ_METHODS:
            raise ValidationError(f"{method!r} is not a read method")
        engine = self._engine
        with engine._lock:
            engine._check_open()
            runs = engine.state.runs.runs
            if run_id is not None and run_id not in runs:
                raise NotFoundError(f"run {run_id!r} does not exist in namespace {engine.name!r}")
            branch = run_id is not None and is_branch(runs, run_id)
            if upto is not None:
                head = engine.state.seq
                if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto <= head:
                    raise ValidationError(f"upto must be a seq between 0 and the head ({head}), got {upto!r}")
            if method == "projection":
                if branch:
                    raise ValidationError(
                        "user projections fold the whole namespace; a fork has none of its own"
                    )
                if upto is not None:
                    return engine.view_call(upto, method, args, kwargs)
            if upto is None:
                if not branch:
                    reader = engine.reader
                else:
                    reader = Reader(self._live_state(run_id), engine.journal, clock=engine._wall)
            else:
                ps = self._past_view(run_id if branch else None, upto).ps
                ts_ms = physical_ms(ps.ts)
                reader = Reader(ps, engine.journal, upto=upto, clock=lambda: ts_ms)
            return getattr(reader, method)(*args, **(kwargs or {}))
