"""``mem.replay_many``: replay many runs of a namespace in parallel, as Ray tasks.

A re-fold is a pure function of the journal, so it does not need the namespace actor: each task
opens the namespace *read-only* beside the live actor (a RocksDB read-only instance sees the
journal as of its opening) and re-folds its share of the runs in one forward sweep. Nothing
funnels through one actor. Because a re-fold is a chain (checking an event needs the state
right before it), each worker gets one contiguous stretch of runs, cut where the stretches cost
the same counting the prefix each folds from its nearest stored snapshot
(``swarmlog.replay_plan``); the tasks stream their reports back run by run, for the progress bar.
With an ``agent`` function the tasks instead re-run the agent against each run's record through
a client (``ns.replay(run_id, agent)``). A progress bar counts runs.

In process (``open_local``) the same call replays one run after another, on the open engine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from journal.errors import ValidationError
from projections.commands import check_name
from swarmlog.replay_plan import RunSpan, plan_stretches

# A stretch task sends what it has every this many seconds (and at its end).
STREAM_EVERY_S = 0.2


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices, so each task sweeps one stretch of the journal."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def replay_chunk(
    root: str, namespace: str, run_ids: list[str], settings: Any, agent: Callable | None
) -> list:
    """Replay ``run_ids`` (the body of one Ray task). Reports, or the error of a run, in order."""
    out: list[Any] = []
    if agent is None:
        found = dict(
            pair for batch in replay_stretch(root, namespace, run_ids, [], settings) for pair in batch
        )
        return [found[rid] for rid in run_ids]
    import swarmlog

    mem = swarmlog.connect(root)
    ns = mem.namespace(namespace)
    for run_id in run_ids:
        try:
            out.append(ns.replay(run_id, agent))
        except Exception as exc:
            out.append(exc)
    mem.close()
    return out


def replay_stretch(
    root: str,
    namespace: str,
    mains: list[str],
    others: list[str],
    settings: Any,
    runs: dict[str, list] | None = None,
) -> Iterator[list[tuple[str, Any]]]:
    """Re-fold ``mains`` (main-line runs, one sweep) and then ``others`` (forks, unknown ids) on
    a read-only replica (the body of one streaming Ray task); yields ``(run_id, report or
    error)`` pairs as they are done, a few at a time. With ``runs`` (the namespace's runs table,
    ``run_rows``) the replica skips recovering the head state, which a re-fold never reads."""
    from swarmlog.local import namespace_dir

    engine = _open_replica(namespace_dir(root, namespace), settings, namespace, runs)
    try:
        done: list[tuple[str, Any]] = []
        sent = time.monotonic()
        for ids in (mains, others):
            for item in _sweep(engine, ids):
                done.append(item)
                if time.monotonic() - sent >= STREAM_EVERY_S:
                    yield done
                    done, sent = [], time.monotonic()
        if done:
            yield done
    finally:
        engine.close()


def run_rows(infos: Sequence[Any]) -> dict[str, list]:
    """A runs table (``projections.runs`` rows) with what a re-fold reads of each run — where
    it began, its last event, its parent and fork point — from ``RunInfo``s."""
    from projections import runs as r

    width = 1 + max(
        r.R_AGENT, r.R_STATUS, r.R_BEGIN_SEQ, r.R_BEGIN_TS, r.R_END_SEQ, r.R_END_TS, r.R_EVENTS, r.R_LAST,
        r.R_PARENT, r.R_FORK_SEQ, r.R_SUMMARY, r.R_META,
    )  # fmt: skip
    table = {}
    for info in infos:
        row = [None] * width
        row[r.R_AGENT], row[r.R_STATUS] = info.agent, info.status
        row[r.R_BEGIN_SEQ], row[r.R_BEGIN_TS] = info.began_seq, info.began_ts
        row[r.R_END_SEQ], row[r.R_END_TS] = info.ended_seq, info.ended_ts
        row[r.R_EVENTS], row[r.R_LAST] = info.events, info.last_seq
        row[r.R_PARENT], row[r.R_FORK_SEQ] = info.parent, info.fork_seq
        table[info.run_id] = row
    return table


def _open_replica(path: str, settings: Any, namespace: str, runs: dict[str, list] | None) -> Any:
    """A read-only engine on ``path``: recovered as usual, or — given the runs table — with no
    recovery at all (opening costs a RocksDB open, not a snapshot load and a tail fold)."""
    from projections.engine import NamespaceEngine

    if runs is None:
        return NamespaceEngine(path, settings, name=namespace, read_only=True)

    class RefoldReplica(NamespaceEngine):
        def _recover(self) -> None:
            from projections.state import ProjectionSet

            j = self.journal
            self.state = ProjectionSet()
            self.state.runs.runs = runs
            self._next_seq, self._prev = j.head_seq + 1, j.head_hash
            self._last_snapshot_seq, self._last_snapshot_at = 0, time.monotonic()

    return RefoldReplica(path, settings, name=namespace, read_only=True)


def _sweep(engine: Any, run_ids: list[str]) -> Iterator[tuple[str, Any]]:
    """``projections.refold.refold_runs``, one run at a time: main-line runs in the order they
    began, each starting from the state the previous one ended in (folded on to its start)."""
    from projections.refold import _refold
    from projections.runs import R_BEGIN_SEQ

    with engine._lock:
        runs = engine.state.runs.runs
        begins = {rid: runs[rid][R_BEGIN_SEQ] if rid in runs else 0 for rid in run_ids}
    carry = None
    for run_id in sorted(set(run_ids), key=lambda rid: begins[rid]):
        start = begins[run_id] - 1
        base = None
        if carry is not None and carry[0].seq <= start:
            ps, prev = carry
            with engine._lock:
                engine._fold_range(ps, ps.seq, start, prev, [])
            base = (ps, engine.journal.canonical(start)[0] if start else prev)
        try:
            report, carry = _refold(engine, run_id, base)
        except Exception as exc:  # reported for this run; the sweep goes on from scratch
            report, carry = exc, None
        yield run_id, report


def replay_many(
    memory: Any,
    namespace: str,
    run_ids: Sequence[str] | None = None,
    *,
    agent: Callable | None = None,
    workers: int | None = None,
    runs_per_task: int | None = None,
    progress: bool = True,
    raise_on_divergence: bool = False,
) -> list:
    """Replay ``run_ids`` (default: every run of ``namespace``) and return one item per run, in
    order: a ``ReplayReport``, or the ``NonDeterminismError``/other error that run raised.

    ``workers`` caps how many tasks run at once (default: the cluster's CPUs);
    ``runs_per_task`` sets how many runs one task replays (default: re-folds get one stretch
    per worker, balanced as ``swarmlog.replay_plan`` says; agent replays four tasks per
    worker). ``raise_on_divergence`` raises the first error instead of returning it.
    """
    backend = memory._backend
    check_name(namespace, "namespace")
    infos = None
    if run_ids is None:
        infos = memory.namespace(namespace).runs()
        run_ids = [info.run_id for info in infos]
    run_ids = list(run_ids)
    for run_id in run_ids:
        check_name(run_id, "run_id")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValidationError(f"workers must be an int >= 1 or None, got {workers!r}")
    if not run_ids:
        return []
    bar = _progress(len(run_ids), namespace, progress)
    try:
        if not hasattr(backend, "actor"):  # in process: one after another on the open engine
            results = []
            ns = memory.namespace(namespace)
            for run_id in run_ids:
                try:
                    results.append(ns.replay(run_id) if agent is None else ns.replay(run_id, agent))
                except Exception as exc:
                    results.append(exc)
                bar.update(1)
        else:
            if agent is None and infos is None:
                infos = memory.namespace(namespace).runs()
            results = _on_ray(backend, namespace, run_ids, agent, workers, runs_per_task, bar, infos)
    finally:
        bar.close()
    if raise_on_divergence:
        for item in results:
            if isinstance(item, BaseException):
                raise item
    return results


def _on_ray(backend, namespace, run_ids, agent, workers, runs_per_task, bar, infos) -> list:
    import ray

    if backend.is_async:
        raise ValidationError("replay_many runs on the blocking client; use swarmlog.connect()")
    cluster_cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    width = workers or cluster_cpus
    if agent is not None:
        return _agents_on_ray(backend, namespace, run_ids, agent, width, runs_per_task, bar)
    by_id = {info.run_id: info for info in infos}
    unique = list(dict.fromkeys(run_ids))
    spans = sorted(
        (
            RunSpan(rid, by_id[rid].began_seq, by_id[rid].last_seq)
            for rid in unique
            if rid in by_id and by_id[rid].fork_seq is None
        ),
        key=lambda s: s.first,
    )
    others = [rid for rid in unique if rid not in by_id or by_id[rid].fork_seq is not None]
    if runs_per_task:
        groups = _chunks([s.run_id for s in spans], runs_per_task)
    else:
        snapshots = ray.get(backend.actor(namespace).snapshot_seqs.remote(), timeout=backend.timeout_s)
        groups = plan_stretches(spans, snapshots, width)
    groups = groups or [[]]
    extra: list[list[str]] = [[] for _ in groups]
    for i, rid in enumerate(others):  # forks re-fold from a snapshot each: spread them out
        extra[i % len(extra)].append(rid)
    task = ray.remote(num_cpus=1, max_retries=2)(replay_stretch)
    table = ray.put(run_rows(infos))
    queue = list(zip(groups, extra, strict=True))
    found: dict[str, Any] = {}
    pending: list[Any] = []
    try:
        while queue or pending:
            while queue and len(pending) < width:
                mains, more = queue.pop(0)
                pending.append(task.remote(backend.root, namespace, mains, more, backend.settings, table))
            ready, _ = ray.wait(pending, num_returns=1)
            for gen in ready:
                try:
                    batch = ray.get(next(gen))
                except StopIteration:
                    pending.remove(gen)
                    continue
                found.update(batch)
                bar.update(len(batch))
    except Exception as exc:
        from swarmlog.ray_backend import translate_error

        raise translate_error(namespace, exc) from None
    return [found[rid] for rid in run_ids]


def _agents_on_ray(backend, namespace, run_ids, agent, width, runs_per_task, bar) -> list:
    import ray

    size = runs_per_task or max(1, math.ceil(len(run_ids) / (width * 4)))
    task = ray.remote(num_cpus=1, max_retries=2)(replay_chunk)
    chunks = _chunks(run_ids, size)
    pending: dict[Any, int] = {}
    results: list[list | None] = [None] * len(chunks)
    queue = list(enumerate(chunks))
    while queue or pending:
        while queue and len(pending) < width:
            index, chunk = queue.pop(0)
            ref = task.remote(backend.root, namespace, chunk, backend.settings, agent)
            pending[ref] = index
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            index = pending.pop(ref)
            results[index] = ray.get(ref)
            bar.update(len(chunks[index]))
    return [item for chunk in results for item in chunk]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, namespace: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"replaying {namespace}", unit="run")
