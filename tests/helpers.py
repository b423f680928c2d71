"""Checks every test that writes ends with (STYLE #13)."""

from __future__ import annotations

import itertools


def assert_store_sound(ns) -> None:
    """Gapless seqs from 1, a valid hash chain and indexes, projections equal to a fresh fold."""
    head = ns.head()
    events = ns.read_events()
    assert [e.seq for e in events] == list(range(1, head + 1))
    for before, after in itertools.pairwise(events):
        assert after.prev == before.hash
        assert after.ts > before.ts
    report = ns.verify(projections=True)
    assert report.ok, report
    assert report.checked == head
