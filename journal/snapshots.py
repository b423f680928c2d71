"""Snapshot blobs: msgpack state, lz4-compressed, with a hash so a damaged one is never loaded."""

from __future__ import annotations

from typing import Any

import lz4.block
import msgpack

from journal.codec import HASH_BYTES, blake
from journal.errors import CorruptionError

SNAPSHOT_BLOB_VERSION = 1


def seal_snapshot(state: Any) -> bytes:
    """Encode projection state for the snapshots column family."""
    raw = msgpack.packb(state, use_bin_type=True)
    return bytes((SNAPSHOT_BLOB_VERSION,)) + blake(raw) + lz4.block.compress(raw)


def open_snapshot(blob: bytes, seq: int) -> Any:
    """Decode a snapshot blob; ``CorruptionError`` when it is damaged."""
    if len(blob) < 1 + HASH_BYTES or blob[0] != SNAPSHOT_BLOB_VERSION:
        raise CorruptionError(f"snapshot at {seq} has an unknown format")
    try:
        raw = lz4.block.decompress(blob[1 + HASH_BYTES :])
    except lz4.block.LZ4BlockError:
        raise CorruptionError(f"snapshot at {seq} does not decompress") from None
    if blake(raw) != blob[1 : 1 + HASH_BYTES]:
        raise CorruptionError(f"snapshot at {seq} does not match its hash")
    return msgpack.unpackb(raw, strict_map_key=False)
