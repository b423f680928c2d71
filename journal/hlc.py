"""Hybrid logical clock: timestamps that follow wall time but never go backwards.

A timestamp is one int, ``physical_ms << 16 | logical``, so it sorts, packs small and compares
cheaply. ``observe`` folds in a timestamp seen elsewhere (the newest journal record on open),
which keeps the clock monotonic across restarts even when the wall clock stepped back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def wall_ms() -> int:
    """The wall clock in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def physical_ms(ts: int) -> int:
    """The wall-clock part of an HLC timestamp, in milliseconds since the epoch."""
    return ts >> LOGICAL_BITS


def to_datetime(ts: int) -> datetime:
    """An HLC timestamp as an aware UTC datetime (millisecond precision)."""
    return datetime.fromtimestamp(physical_ms(ts) / 1000.0, tz=UTC)


class HybridClock:
    """Issues strictly increasing HLC timestamps. Not thread-safe: callers hold the commit lock."""

    __slots__ = ("_last", "_wall")

    def __init__(self, wall: Callable[[], int] = wall_ms, last: int = 0):
        self._wall = wall
        self._last = last

    @property
    def last(self) -> int:
        """The newest timestamp issued or observed."""
        return self._last

    def now(self) -> int:
        """A timestamp greater than every one issued or observed before."""
        candidate = self._wall() << LOGICAL_BITS
        last = self._last
        # When the wall clock has not moved past the last timestamp (same millisecond, or a
        # clock that stepped back), advance the logical counter instead. Overflowing the
        # counter carries into the physical part, which is still strictly increasing.
        ts = candidate if candidate > last else last + 1
        self._last = ts
        return ts

    def observe(self, ts: int) -> None:
        """Fold in a timestamp seen elsewhere so that later ones are greater."""
        if ts > self._last:
            self._last = ts
