"""The lineage of a run: which events make up its history when it is a fork (of a fork …).

A fork ``F`` of run ``P`` at seq ``s`` starts with the namespace as it was after event ``s`` and
continues with its own events. Its history (``read_events(run_id=F)``) is ``P``'s events up to
``s`` followed by ``F``'s own; its state is the main line after ``s`` plus ``F``'s own events.
Forks of forks nest: each step down the chain cuts its parent's history at its fork point.

Everything here is computed from the runs projection (``parent`` and ``fork_seq`` of each run)
and the journal's run index: nothing is copied when a run is forked.
"""

from __future__ import annotations

from collections.abc import Iterator

from journal.errors import NotFoundError
from journal.store import Journal
from projections.runs import R_BEGIN_SEQ, R_FORK_SEQ, R_PARENT

Segment = tuple[str, int | None]  # (run id, last seq of its events that belong, or None: all)


def is_branch(runs: dict, run_id: str) -> bool:
    """Whether ``run_id`` is a fork (its events live on a branch, not on the main line)."""
    r = runs.get(run_id)
    return r is not None and r[R_FORK_SEQ] is not None


def lineage(runs: dict, run_id: str, upto: int | None = None) -> tuple[int | None, list[Segment]]:
    """``(base, segments)``: the state of ``run_id`` (after event ``upto``, or now) is the main
    line after event ``base`` (None: the live main line) plus, in order, the own events of each
    branch run in ``segments`` up to its cutoff. A main-line run has no segments."""
    segments: list[Segment] = []
    current, cutoff = run_id, upto
    while True:
        r = runs.get(current)
        if r is None:
            raise NotFoundError(f"run {current!r} does not exist in this namespace")
        fork_seq = r[R_FORK_SEQ]
        if fork_seq is None:
            segments.reverse()
            return cutoff, segments
        segments.append((current, cutoff))
        cutoff = fork_seq if cutoff is None else min(cutoff, fork_seq)
        current = r[R_PARENT]


def history(runs: dict, run_id: str) -> list[Segment]:
    """The runs whose events make up ``run_id``'s history, oldest first, each with the last seq
    that belongs (None: all of them): the main-line ancestor, then each fork down to the run."""
    base, segments = lineage(runs, run_id)
    if not segments:
        return [(run_id, None)]
    return [(runs[segments[0][0]][R_PARENT], base), *segments]


def history_seqs(journal: Journal, runs: dict, run_id: str, after: int, upto: int | None) -> Iterator[int]:
    """Seqs of ``run_id``'s history (see ``history``) with ``after < seq <= upto``, in order,
    through the run index."""
    for rid, cut in history(runs, run_id):
        hi = upto if cut is None else cut if upto is None else min(cut, upto)
        if hi is not None and hi <= after:
            continue
        yield from journal.run_seqs(rid, after, hi)


def first_seq(runs: dict, run_id: str) -> int:
    """Seq of the first event of ``run_id``'s history (the ``run.begin`` of its oldest ancestor)."""
    root = history(runs, run_id)[0][0]
    return runs[root][R_BEGIN_SEQ]
