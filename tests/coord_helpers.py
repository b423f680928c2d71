"""Shared pieces of the coordinator tests: a settable clock and the end-of-test store check."""

from __future__ import annotations

import threading

from coordination import CoordinatorEngine


class FakeClock:
    """A clock the test moves by hand (seconds), so lease expiry needs no sleeping."""

    def __init__(self, start: float = 1_000_000.0):
        self.t = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds

    def set(self, t: float) -> None:
        with self._lock:
            self.t = t


def assert_coordinator_sound(engine: CoordinatorEngine) -> None:
    """Gapless seqs, a valid hash chain and indexes, and a live state equal to a fresh fold."""
    head = engine.head()
    seqs = [seq for seq, _, _ in engine.journal.iter_canonical()]
    assert seqs == list(range(1, head + 1))
    report = engine.verify()
    assert report.ok, report
    assert report.checked == head
