"""``mem.replay_many``: replay many runs of a namespace in parallel, as Ray tasks.

A re-fold is a pure function of the journal, so it does not need the namespace actor: each task
opens the namespace *read-only* beside the live actor (a RocksDB read-only instance sees the
journal as of its opening), recovers the projections once (snapshot + tail) and re-folds its
share of the runs. Nothing funnels through one actor, so throughput grows with the workers the
cluster gives the tasks. With an ``agent`` function the tasks instead re-run the agent against
each run's record through a client (``ns.replay(run_id, agent)``). A progress bar counts runs.

In process (``open_local``) the same call replays one run after another, on the open engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from journal.errors import ValidationError
from projections.commands import check_name


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices, so each task sweeps one stretch of the journal."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def replay_chunk(
    root: str, namespace: str, run_ids: list[str], settings: Any, agent: Callable | None
) -> list:
    """Replay ``run_ids`` (the body of one Ray task). Reports, or the error of a run, in order."""
    out: list[Any] = []
    if agent is None:
        from projections.engine import NamespaceEngine
        from projections.refold import refold_runs
        from swarmlog.local import namespace_dir

        engine = NamespaceEngine(namespace_dir(root, namespace), settings, name=namespace, read_only=True)
        try:
            return refold_runs(engine, run_ids)  # a forward sweep: each stretch folded once
        finally:
            engine.close()
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

    ``workers`` caps how many tasks run at once (default: as many as the cluster schedules);
    ``runs_per_task`` sets how many runs one task replays (default: an even split, four tasks
    per worker, so the progress bar moves). ``raise_on_divergence`` raises the first error
    instead of returning it.
    """
    backend = memory._backend
    check_name(namespace, "namespace")
    if run_ids is None:
        run_ids = [info.run_id for info in memory.namespace(namespace).runs()]
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
            results = _on_ray(backend, namespace, run_ids, agent, workers, runs_per_task, bar)
    finally:
        bar.close()
    if raise_on_divergence:
        for item in results:
            if isinstance(item, BaseException):
                raise item
    return results


def _on_ray(backend, namespace, run_ids, agent, workers, runs_per_task, bar) -> list:
    import ray

    if backend.is_async:
        raise ValidationError("replay_many runs on the blocking client; use swarmlog.connect()")
    cluster_cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    width = workers or cluster_cpus
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
