"""Journal records: the canonical field layout and the ``Event`` callers read.

A record's canonical form is a msgpack array whose positions are fixed forever; new fields are
appended at the end, so old records stay valid. Identity fields (``agent``, ``tool``,
``run_id``, ``write_id``, ``source``) are in every record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from journal.hlc import physical_ms, to_datetime

# Positions in the canonical record array.
SEQ, ID, TS, RUN_ID, AGENT, TOOL, TYPE, PAYLOAD, SOURCE, WRITE_ID, PREV, EXTRA = range(12)
FIELD_COUNT = 12


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One journal record as callers see it."""

    seq: int
    """Position in the namespace journal: starts at 1, no gaps."""
    id: str
    """Globally unique event id (``<namespace uid>-<seq>``)."""
    ts: int
    """Hybrid logical clock timestamp (``physical_ms << 16 | logical``); see ``time``."""
    run_id: str
    """The run this event belongs to."""
    agent: str
    """The agent that wrote it."""
    tool: str | None
    """The tool that wrote it on the agent's behalf, if any."""
    type: str
    """Event type: a user type, or a system type such as ``kv.put`` or ``trace.decision``."""
    payload: Any
    """The event body."""
    source: Any
    """Provenance supplied by the writer (channel, conversation, message …), or None."""
    write_id: str | None
    """Idempotency key of the write that produced it, or None."""
    prev: bytes
    """Hash of the previous record (32 zero bytes for seq 1)."""
    hash: bytes
    """BLAKE2b-256 of this record's canonical msgpack bytes."""
    extra: dict | None = None
    """Further fields (fencing token …), or None."""

    @property
    def time(self) -> datetime:
        """``ts`` as an aware UTC datetime."""
        return to_datetime(self.ts)

    @property
    def time_ms(self) -> int:
        """The wall-clock part of ``ts`` in milliseconds since the epoch."""
        return physical_ms(self.ts)


def event_from_fields(fields: list, digest: bytes) -> Event:
    """Build an ``Event`` from a decoded canonical array."""
    extra = fields[EXTRA] if len(fields) > EXTRA else None
    return Event(
        seq=fields[SEQ],
        id=fields[ID],
        ts=fields[TS],
        run_id=fields[RUN_ID],
        agent=fields[AGENT],
        tool=fields[TOOL],
        type=fields[TYPE],
        payload=fields[PAYLOAD],
        source=fields[SOURCE],
        write_id=fields[WRITE_ID],
        prev=fields[PREV],
        hash=digest,
        extra=extra,
    )
