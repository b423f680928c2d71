"""Shared helpers of the benchmarks: configuration, machine description, timing, reporting.

Benchmarks print what they measured and never assert numbers: figures depend on the machine
and on what else runs on it. What matters is the ratio to a peer measured in the same run, so
measurements of swarmlog and its peer are interleaved and each is repeated (median reported).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DATA_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data")


@dataclass(frozen=True)
class Config:
    """How the benchmarks of one ``python -m bench`` run are sized."""

    quick: bool = False
    """Shrink every size for a smoke run (the figures then mean little)."""
    repeat: int = 3
    """How many times each measurement is taken; the median is reported."""

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def machine_lines() -> list[str]:
    """What the figures were measured on."""
    libs = ", ".join(
        f"{d} {_version(d)}" for d in ("swarmlog", "rocksdict", "msgpack", "msgspec", "lz4", "eventsourcing")
    )
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.system()} {platform.release()}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"libraries: {libs}, sqlite {sqlite3.sqlite_version}",
    ]


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A fresh directory under ``bench/.data`` (on the same disk as the repo, unlike a tmpfs
    ``/tmp`` might be), removed afterwards."""
    os.makedirs(DATA_ROOT, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix + "-", dir=DATA_ROOT)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(DATA_ROOT)  # only when empty


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(values: list[float]) -> float:
    return statistics.median(values)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def fmt_rate(per_s: float) -> str:
    return f"{per_s:>12,.0f} ev/s"


def report_ratio(
    label: str, ours: float, peer: float, target: float | None, *, higher_is_better: bool = True
) -> bool:
    """Print ``ours / peer`` against a target ratio (None: no target); returns whether it was met."""
    ratio = ours / peer if peer else float("inf")
    if len(label) > 52:  # long names: the label on its own line, the figures under it
        print(f"  {label}")
        label = ""
    if target is None:
        print(f"  {label:<52} ratio {ratio:6.2f}×  (no target)")
        return True
    met = ratio >= target if higher_is_better else ratio <= target
    sign = "≥" if higher_is_better else "≤"
    print(f"  {label:<52} ratio {ratio:6.2f}×  target {sign} {target}×  {'MET' if met else 'MISSED'}")
    return met


def report_limit(label: str, value: float, limit: float, unit: str, *, at_most: bool = True) -> bool:
    """Print an absolute figure against a target; returns whether the target was met."""
    met = value <= limit if at_most else value >= limit
    sign = "≤" if at_most else "≥"
    shown = f"{value:,.3f}" if value < 1000 else f"{value:,.0f}"
    print(f"  {label:<52} {shown} {unit}  target {sign} {limit:,} {unit}  {'MET' if met else 'MISSED'}")
    return met


def runs_line(values: list[float], fmt: Callable[[float], str]) -> str:
    return "runs: " + ", ".join(fmt(v).strip() for v in values)


# -- interleaved comparisons ------------------------------------------------------------------

# A contender opens its store in a directory and returns ``(append, close)``: ``append(items)``
# appends a slice of the workload (one call per event, or per batch, as that contender does).
Contender = Callable[[str], tuple[Callable[[list], None], Callable[[], None]]]


def interleave(
    config: Config, n: int, items: list, contenders: dict[str, Contender], segment: int
) -> dict[str, list[tuple[float, float]]]:
    """Run every contender over the same ``n`` items, ``config.repeat`` times, each time in fresh
    stores opened side by side; the items are fed in segments of ``segment``, the contenders
    taking turns (in rotating order) on each segment. Load from other processes on a shared
    machine then falls on all of them alike. Returns, per contender and repetition,
    ``(wall seconds, this thread's CPU seconds)`` summed over the segments."""
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    names = list(contenders)
    for _ in range(config.repeat):
        with scratch_dir("cmp") as d:
            opened = {}
            try:
                for i, name in enumerate(names):
                    opened[name] = contenders[name](os.path.join(d, f"c{i}"))
                wall = dict.fromkeys(names, 0.0)
                cpu = dict.fromkeys(names, 0.0)
                for k, start in enumerate(range(0, n, segment)):
                    part = items[start : start + segment]
                    for j in range(len(names)):
                        name = names[(k + j) % len(names)]
                        w0, c0 = time.perf_counter(), time.thread_time()
                        opened[name][0](part)
                        cpu[name] += time.thread_time() - c0
                        wall[name] += time.perf_counter() - w0
                for name in names:
                    out[name].append((wall[name], cpu[name]))
            finally:
                for append_close in opened.values():
                    append_close[1]()
    return out


def report_interleaved(
    label: str,
    n: int,
    results: dict[str, list[tuple[float, float]]],
    ours: str,
    peer: str,
    target: float | None,
    *,
    cpu: bool = True,
) -> bool:
    """Print events/s (wall clock) per contender, the median of the per-repetition ratios of
    ``ours`` to ``peer`` against ``target``, and for context every other contender's ratio and,
    with ``cpu``, the same ratios from this thread's CPU time (immune to waiting for the CPU,
    blind to waiting for the disk: not meaningful for fsync'd writes)."""
    reps = len(results[ours])
    print(f"{label} ({n:,} events, {reps} repetition{'s' * (reps > 1)}, contenders interleaved)")
    for name, runs in results.items():
        rates = [rate(n, w) for w, _ in runs]
        line = f"  {name:<32} {fmt_rate(median(rates))}   {runs_line(rates, fmt_rate)}"
        if cpu:
            line += f"   cpu: {fmt_rate(median([rate(n, c) for _, c in runs])).strip()}"
        print(line)
    met = True
    for name, runs in results.items():
        if name == peer:
            continue
        wall_ratio = median([p[0] / o[0] for o, p in zip(runs, results[peer], strict=True)])
        what = f"{name} / {peer}"
        ok = report_ratio(what, wall_ratio, 1.0, target if name == ours else None)
        if name == ours:
            met = ok
        if cpu:
            cpu_ratio = median([p[1] / o[1] for o, p in zip(runs, results[peer], strict=True)])
            print(f"  {'  … from CPU time':<52} ratio {cpu_ratio:6.2f}×")
    return met
