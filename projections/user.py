"""User projections: named folds ``(state, event) -> state`` that swarmlog keeps up to date.

A user projection sees every event after it is durable (decoded, as ``read_events`` returns
it), is rebuilt on recovery, and is kept in snapshots like the built-in projections when its
state is msgpack-encodable. Its state is handed out as a copy, so callers cannot corrupt it. A
fold that raises marks the projection failed (``ProjectionError`` on read) without affecting
anything else: the events are already in the journal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgpack

from journal.codec import pack_value, unpack_value
from journal.errors import ProjectionError, ValidationError
from journal.records import Event

Fold = Callable[[Any, Event], Any]


class UserProjection:
    """One registered fold and its state after event ``seq``."""

    __slots__ = ("name", "fold", "version", "initial", "state", "seq", "error")

    def __init__(self, name: str, fold: Fold, initial: Any, version: int):
        if not callable(fold):
            raise ValidationError(f"projection {name!r}: fold must be callable (state, event) -> state")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValidationError(f"projection {name!r}: version must be an int >= 1, got {version!r}")
        self.name = name
        self.fold = fold
        self.version = version
        self.initial = pack_value(initial, what=f"the initial state of projection {name!r}")
        self.state: Any = unpack_value(self.initial)
        self.seq = 0
        self.error: ProjectionError | None = None

    def reset(self, state_bytes: bytes | None = None, seq: int = 0) -> None:
        self.state = unpack_value(state_bytes if state_bytes is not None else self.initial)
        self.seq = seq
        self.error = None

    def apply(self, event: Event) -> None:
        if self.error is not None or event.seq <= self.seq:
            return
        try:
            self.state = self.fold(self.state, event)
        except Exception as exc:
            self.error = ProjectionError(
                f"projection {self.name!r} failed at event {event.seq} ({event.type}): {exc!r}. "
                "Fix the fold and register it again with a higher version."
            )
        self.seq = event.seq

    def snapshot_state(self) -> bytes | None:
        """The packed state, or None when it cannot be packed (then it is rebuilt on recovery)."""
        if self.error is not None:
            return None
        try:
            return msgpack.packb(self.state, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return None

    def read(self) -> Any:
        """A copy of the current state; ``ProjectionError`` when the fold failed."""
        if self.error is not None:
            raise self.error
        try:
            return unpack_value(msgpack.packb(self.state, use_bin_type=True))
        except (TypeError, ValueError, OverflowError):
            return copy.deepcopy(self.state)
