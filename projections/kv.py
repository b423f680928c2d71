"""Versioned key/value entries with TTL and ordered prefix listing.

Each entry remembers the event that wrote it (its ``version`` is that event's seq), who wrote it
and when it expires. Values are kept as their msgpack bytes: compact, and nobody can mutate the
projection through a value they were handed. Keys are kept in a ``SortedList`` so prefix
listing stays fast with millions of keys.

Expiry uses event time only: ``expires_at`` is the writing event's HLC time plus the TTL, and
entries are purged when a later event's time passes it. Readers pass their own clock to hide
entries that expired since the last event.
"""

from __future__ import annotations

import heapq
from typing import Any

import msgspec
from sortedcontainers import SortedList

from journal.codec import unpack_value
from journal.records import AGENT, PAYLOAD, RUN_ID, SEQ, TOOL, TS
from projections.undo import UndoLog

# Positions in an entry tuple.
E_VALUE, E_VERSION, E_RUN, E_AGENT, E_TOOL, E_EXPIRES = range(6)


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """The current value of a key and where it came from."""

    key: str
    """The key."""
    value: Any
    """The stored value (a fresh copy for every read)."""
    version: int
    """Seq of the event that wrote this value; ``expected_version`` compares against it."""
    run_id: str
    """The run that wrote it."""
    agent: str
    """The agent that wrote it."""
    tool: str | None
    """The tool that wrote it, if any."""
    expires_at: float | None
    """Expiry as seconds since the epoch (from the writing event's time), or None."""

    @property
    def seq(self) -> int:
        """Seq of the event that wrote this value (same as ``version``)."""
        return self.version


def entry_from_tuple(key: str, t: tuple) -> Entry:
    expires = t[E_EXPIRES]
    return Entry(
        key=key,
        value=unpack_value(t[E_VALUE]),
        version=t[E_VERSION],
        run_id=t[E_RUN],
        agent=t[E_AGENT],
        tool=t[E_TOOL],
        expires_at=None if expires is None else expires / 1000.0,
    )


class KVProjection:
    """Fold of ``kv.put`` / ``kv.delete`` events."""

    __slots__ = ("entries", "keys", "_expiry")
    HANDLES = {"kv.put": "put", "kv.delete": "delete"}

    def __init__(self) -> None:
        self.entries: dict[str, tuple] = {}
        self.keys: SortedList = SortedList()
        self._expiry: list[tuple[int, str, int]] = []  # heap of (expires_ms, key, version)

    # -- folding -------------------------------------------------------------------------------

    def put(self, f: list, undo: UndoLog | None) -> None:
        p = f[PAYLOAD]
        key = p["key"]
        ttl_ms = p.get("ttl_ms")
        expires = None if ttl_ms is None else (f[TS] >> 16) + ttl_ms
        new = (p["value"], f[SEQ], f[RUN_ID], f[AGENT], f[TOOL], expires)
        # ``_set`` inlined: this runs for every put, in replay a million times.
        entries = self.entries
        old = entries.get(key)
        if undo is not None:
            undo.push(self._restore, key, old)
        if old is None:
            self.keys.add(key)
        entries[key] = new
        if expires is not None:
            heapq.heappush(self._expiry, (expires, key, f[SEQ]))
            if undo is not None:
                # A rolled-back entry's heap item is harmless (its version never matches), but
                # dropping it keeps the heap equal to what a replay builds.
                undo.push(self._unpush_expiry, (expires, key, f[SEQ]))

    def delete(self, f: list, undo: UndoLog | None) -> None:
        self._set(f[PAYLOAD]["key"], None, undo)

    def _set(self, key: str, new: tuple | None, undo: UndoLog | None) -> None:
        old = self.entries.get(key)
        if undo is not None:
            undo.push(self._restore, key, old)
        self._store(key, old, new)

    def _store(self, key: str, old: tuple | None, new: tuple | None) -> None:
        if new is None:
            if old is not None:
                del self.entries[key]
                self.keys.remove(key)
        else:
            if old is None:
                self.keys.add(key)
            self.entries[key] = new

    def _restore(self, key: str, old: tuple | None) -> None:
        self._store(key, self.entries.get(key), old)

    def _unpush_expiry(self, item: tuple) -> None:
        try:
            self._expiry.remove(item)
        except ValueError:
            return
        heapq.heapify(self._expiry)

    def next_expiry(self) -> int | None:
        return self._expiry[0][0] if self._expiry else None

    def purge(self, now_ms: int, undo: UndoLog | None) -> None:
        """Drop entries that expired at or before ``now_ms`` (event time)."""
        heap = self._expiry
        while heap and heap[0][0] <= now_ms:
            item = heapq.heappop(heap)
            if undo is not None:
                undo.push(heapq.heappush, heap, item)
            _expires, key, version = item
            current = self.entries.get(key)
            if current is not None and current[E_VERSION] == version:
                self._set(key, None, undo)

    # -- reading -------------------------------------------------------------------------------

    def live(self, key: str, now_ms: int) -> tuple | None:
        """The entry tuple for ``key`` unless absent or expired at ``now_ms``."""
        t = self.entries.get(key)
        if t is None:
            return None
        expires = t[E_EXPIRES]
        if expires is not None and expires <= now_ms:
            return None
        return t

    def version(self, key: str, now_ms: int) -> int:
        """Version of the live entry, 0 when absent or expired."""
        t = self.live(key, now_ms)
        return 0 if t is None else t[E_VERSION]

    def list(self, prefix: str, now_ms: int, start_after: str | None, limit: int | None) -> list[str]:
        keys = self.keys
        lo = prefix if start_after is None or start_after < prefix else start_after
        out: list[str] = []
        if limit == 0:  # the loop checks the limit only after taking a key
            return out
        for key in keys.irange(lo, inclusive=(True, True)):
            if not key.startswith(prefix):
                break
            if start_after is not None and key <= start_after:
                continue
            if self.live(key, now_ms) is None:
                continue
            out.append(key)
            if limit is not None and len(out) >= limit:
                break
        return out

    # -- snapshots -----------------------------------------------------------------------------

    def dump(self) -> list:
        entries = self.entries
        return [[key, *entries[key]] for key in self.keys]

    @classmethod
    def load(cls, state: list) -> KVProjection:
        self = cls()
        entries = self.entries
        heap = self._expiry
        for key, value, version, run_id, agent, tool, expires in state:
            entries[key] = (value, version, run_id, agent, tool, expires)
            if expires is not None:
                heap.append((expires, key, version))
        heapq.heapify(heap)
        self.keys = SortedList(entries)
        return self
