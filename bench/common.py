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
