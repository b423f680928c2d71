"""How ``mem.replay_many`` splits a namespace's runs over workers (pure; no Ray, no I/O).

A re-fold is a chain: checking an event needs the state right before it, so a worker can start
a stretch of the journal only from a state it has — a stored snapshot, or the empty state at
seq 0 — and must fold (unchecked) from there to the stretch's first event. Cutting the runs into
many small tasks therefore multiplies that prefix work: with four tasks per worker, two workers
folded ~1.75x the events one worker did, and were no faster. The plan instead gives each worker
one contiguous stretch of runs (in the order they began, so consecutive runs carry the state
from one to the next), and places the cuts where the stretches cost about the same, counting
the prefix each one folds from its nearest snapshot. Snapshots are what makes a replay
parallel: without one inside the history, a stretch starting at event ``s`` costs ``s``
unchecked folds before it checks anything, and two workers gain at most ``2 - u/c`` (``u``/``c``
the cost of an unchecked/checked event); with snapshots spread over the history they approach
one stretch per worker at full speed.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec

# Cost of folding an event without checks, relative to re-folding it with every check (measured:
# ~0.7 on this machine's 60k-event benchmark namespace; the plan is not sensitive to it).
UNCHECKED_COST = 0.7
# Fixed cost of a task (worker start, opening the replica and recovering it), in events.
TASK_COST = 5_000


class RunSpan(msgspec.Struct, frozen=True):
    """Where one main-line run lies in the journal."""

    run_id: str
    """The run."""
    first: int
    """Seq of its first event (its ``run.begin``)."""
    last: int
    """Seq of its last event so far."""


def sweep_cost(spans: Sequence[RunSpan], snapshots: Sequence[int]) -> float:
    """Events' worth of work to re-fold ``spans`` (sorted by ``first``) in one forward sweep, as
    ``projections.refold.refold_runs`` does it: each run is checked from its first to its last
    event; the state comes from the previous run when that ended before this one began, else
    from the nearest snapshot (unchecked folds up to the run's first event)."""
    cost = 0.0
    carry: int | None = None
    for span in spans:
        cost += _step(span, carry, snapshots)
        carry = span.last
    return cost


def _step(span: RunSpan, carry: int | None, snapshots: Sequence[int]) -> float:
    start = span.first - 1
    base = carry if carry is not None and carry <= start else nearest_snapshot(snapshots, start)
    return UNCHECKED_COST * (start - base) + (span.last - start)


def nearest_snapshot(snapshots: Sequence[int], seq: int) -> int:
    """The newest snapshot at or before ``seq`` (``snapshots`` sorted), or 0 (the empty state)."""
    i = bisect.bisect_right(snapshots, seq)
    return snapshots[i - 1] if i else 0


def plan_stretches(spans: Sequence[RunSpan], snapshots: Sequence[int], workers: int) -> list[list[str]]:
    """At most ``workers`` contiguous groups of ``spans`` (taken in the order they began) whose
    largest sweep cost is as small as it can be; run ids per group, in that order."""
    ordered = sorted(spans, key=lambda s: s.first)
    snaps = sorted(snapshots)
    if not ordered:
        return []
    if workers <= 1 or len(ordered) == 1:
        return [[s.run_id for s in ordered]]

    def cut(limit: float) -> list[list[RunSpan]] | None:
        """Groups of at most ``limit`` cost each, filled greedily; None when more than
        ``workers`` groups would be needed."""
        groups: list[list[RunSpan]] = []
        cost = 0.0
        carry: int | None = None
        for span in ordered:
            if groups:
                more = _step(span, carry, snaps)
                if cost + more <= limit:
                    groups[-1].append(span)
                    cost, carry = cost + more, span.last
                    continue
                if len(groups) == workers:
                    return None
            groups.append([span])
            cost, carry = TASK_COST + _step(span, None, snaps), span.last
        return groups

    low, high = 0.0, TASK_COST + sweep_cost(ordered, snaps)
    best = [ordered]
    for _ in range(40):  # bisect the makespan
        mid = (low + high) / 2
        groups = cut(mid)
        if groups is None:
            low = mid
        else:
            high, best = mid, groups
        if high - low < 1:
            break
    return [[s.run_id for s in group] for group in best]
