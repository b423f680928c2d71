"""Settings of a namespace store, in one typed table with units in the names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from journal.errors import ValidationError

Durability = Literal["process", "fsync"]


@dataclass(frozen=True)
class Settings:
    """How a namespace stores and recovers its journal. Every field has a safe default."""

    durability: Durability = "process"
    """``"process"``: the RocksDB WAL is written before a write is acknowledged, so a killed
    process loses nothing acknowledged. ``"fsync"``: the WAL is also synced (once per group
    commit), so acknowledged writes survive power loss."""
    snapshot_every_events: int = 50_000
    """Take a projection snapshot once this many events were committed since the last one."""
    snapshot_every_s: float = 300.0
    """…or once this many seconds passed since the last one and something was committed."""
    snapshots_kept: int = 3
    """How many snapshots to keep; older ones are deleted after a new one is written."""
    compress_min_bytes: int = 512
    """Records whose canonical bytes reach this size are lz4-compressed."""
    max_record_bytes: int = 4 * 1024 * 1024
    """Largest canonical record accepted (value plus envelope), in bytes."""
    max_key_bytes: int = 1024
    """Largest key accepted, in UTF-8 bytes."""
    max_ops_per_write: int = 100_000
    """Most operations accepted in one batch or transaction."""
    chunk_max_records: int = 1024
    """Most records stored in one RocksDB value; bigger commits use several (same WriteBatch)."""
    chunk_max_bytes: int = 1024 * 1024
    """A chunk is closed once it holds this many stored bytes."""
    write_buffer_bytes: int = 64 * 1024 * 1024
    """RocksDB memtable size."""

    def __post_init__(self) -> None:
        if self.durability not in ("process", "fsync"):
            raise ValidationError(f"durability must be 'process' or 'fsync', got {self.durability!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name != "durability" and (
                not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
            ):
                raise ValidationError(f"setting {field.name} must be a positive number, got {value!r}")

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)
