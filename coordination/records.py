"""What the coordinator answers with: CAS records, lease grants and lease status.

These cross the actor boundary, so they are frozen msgspec Structs (picklable, cheap to copy).
Times are seconds on the *coordinator's* clock (``CoordinatorEngine.now()``), never the caller's.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Record(msgspec.Struct, frozen=True, kw_only=True):
    """A compare-and-swap record as of one moment."""

    name: str
    """The record's name."""
    value: Any
    """The stored value (decoded), or None when the record is absent."""
    version: int
    """Version of the value: 1 on the first write, +1 on every later one; 0 while absent. Versions
    of one name never repeat, even across a delete and a re-create."""
    revision: int
    """Coordinator journal seq of the last change to this name (0: never written). Only grows;
    it is what ``wait_changed`` and ``changed_since`` compare."""

    @property
    def exists(self) -> bool:
        """True when the record holds a value (``version > 0``)."""
        return self.version > 0


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """One grant of a lease; pass it back to ``renew_lease`` and ``release_lease``."""

    name: str
    """The lease's name (``lock/<x>``, ``election/<x>`` …)."""
    holder: str
    """Who holds it."""
    token: int
    """Fencing token of this grant: greater than every token granted before it, for any lease,
    across restarts. Renewals keep it; every acquire (even by the same holder) gets a new one."""
    expires_at: float
    """When the lease lapses unless renewed, in seconds on the coordinator's clock."""
    ttl: float
    """The time to live this grant (or its last renewal) asked for, in seconds."""


class LeaseStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What an observer sees of a lease name: who holds it now, if anyone."""

    name: str
    """The lease's name."""
    holder: str | None
    """The current holder, or None when the lease is free (never granted, released or expired)."""
    token: int
    """Token of the current grant, or of the last grant when free (0: never granted)."""
    expires_at: float | None
    """When the current grant lapses (coordinator clock), or None when free."""
    revision: int
    """Coordinator journal seq of the last event on this lease (grant, renewal, release or
    expiry); 0 when it was never granted. Only grows; ``wait_changed`` compares it."""

    @property
    def held(self) -> bool:
        """True when someone holds the lease."""
        return self.holder is not None
