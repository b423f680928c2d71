"""Undo log for projections: how a failed request in a group commit is taken back.

The engine applies each request's events to the projections as it decides them, so that the
next operation of the same request sees their effect. When a later operation fails validation
(or the RocksDB write fails), the log restores every projection to the mark taken before the
request. During recovery nothing can fail that way, so replay runs without a log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class UndoLog:
    """A stack of ``(function, args)`` that restore earlier projection state."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[tuple[Callable[..., Any], tuple]] = []

    def push(self, fn: Callable[..., Any], *args: Any) -> None:
        self._entries.append((fn, args))

    def mark(self) -> int:
        return len(self._entries)

    def rollback(self, mark: int = 0) -> None:
        entries = self._entries
        while len(entries) > mark:
            fn, args = entries.pop()
            fn(*args)

    def clear(self) -> None:
        self._entries.clear()
