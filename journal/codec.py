"""Record and chunk codec: msgpack records, lz4 above a size, a leading format byte, a hash.

A *record* is the canonical msgpack array of one journal event (see ``journal.records``). It is
stored as::

    format byte | blake2b-256 of the canonical bytes | body

where the body is the canonical bytes, lz4-block-compressed when they exceed
``compress_min_bytes``. The format byte holds the codec version in its high nibble and flags
(compressed, encrypted) in its low nibble, so encryption and new fields need no migration.
The hash covers the canonical bytes, never the compressed ones, so the chain verifies the same
whatever codec options a store used.

A *chunk* is several records in one RocksDB value (one group commit writes one chunk, or a few
for very large commits): a header with the record count and the end offset of every record,
then the records. Offsets make any record of a chunk reachable without parsing the others.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from hashlib import blake2b as _blake2b
from itertools import accumulate
from typing import Any

import lz4.block
import msgpack
import msgspec

from journal.errors import CorruptionError, ValidationError

RECORD_VERSION = 0x10
FLAG_LZ4 = 0x01
FLAG_ENCRYPTED = 0x02  # reserved for encryption at rest
HASH_BYTES = 32
ZERO_HASH = b"\0" * HASH_BYTES
CHUNK_VERSION = 1
_CHUNK_HEAD = struct.Struct(">BI")
_HEAD_PLAIN = bytes((RECORD_VERSION,))
_HEAD_LZ4 = bytes((RECORD_VERSION | FLAG_LZ4,))
_CHUNK_ONE = struct.Struct(">BII")  # the header of a one-record chunk, with its end offset

# msgpack extension code for a value embedded as its own msgpack bytes. Projections keep user
# values as these bytes (compact, immune to callers mutating what they got back), and folding a
# record then never decodes the values it only stores.
EXT_PACKED = 1


# Copying a ready BLAKE2b-256 state is cheaper than building one with keyword arguments, and
# every record is hashed when written and again when read.
BLAKE_EMPTY = _blake2b(digest_size=HASH_BYTES)


def blake(data: bytes) -> bytes:
    """The 32-byte BLAKE2b digest swarmlog uses for records, chains and snapshots."""
    h = BLAKE_EMPTY.copy()
    h.update(data)
    return h.digest()


def packed(value_bytes: bytes) -> msgspec.msgpack.Ext:
    """Wrap already-packed msgpack bytes so they embed as one value inside a record.

    Records are encoded with msgspec (``encode_record``), which writes its own ``Ext`` as a
    msgpack extension but would write a ``msgpack.ExtType`` (a named tuple) as a plain array:
    build embedded values only with this function."""
    return msgspec.msgpack.Ext(EXT_PACKED, value_bytes)


# The canonical encoder of records: msgspec writes the same msgpack as msgpack-python for the
# types a record holds (ints, floats, str, bytes, None, lists, str-keyed dicts, ``packed``),
# faster. The module function is safe to call from any thread; hot paths keep an Encoder.
encode_record: Callable[[Any], bytes] = msgspec.msgpack.encode


def _ext_raw(code: int, data: bytes) -> Any:
    return data if code == EXT_PACKED else msgpack.ExtType(code, data)


def _ext_value(code: int, data: bytes) -> Any:
    if code == EXT_PACKED:
        return unpack_value(data)
    return msgpack.ExtType(code, data)


def _ext_raw_view(code: int, data: memoryview) -> Any:
    return bytes(data) if code == EXT_PACKED else msgpack.ExtType(code, bytes(data))


# Records are decoded for folding with msgspec: for the envelope types a record holds it builds
# the same objects as msgpack-python, in about two thirds of the time (recovery decodes every
# record). Caller values stay packed bytes here; ``unpack_value`` decodes those with msgpack.
_raw_decoder = msgspec.msgpack.Decoder(ext_hook=_ext_raw_view)


# ``unpack_raw(data)``: decode msgpack, leaving embedded values as their packed bytes (the fold's
# view). The decoder's own method, without a wrapper: replay calls it for every record.
unpack_raw: Callable[[bytes], Any] = _raw_decoder.decode


def unpack_value(data: bytes) -> Any:
    """Decode msgpack, decoding embedded values too (what callers see)."""
    try:
        return msgpack.unpackb(data, ext_hook=_ext_value, strict_map_key=False)
    except TypeError:
        # A dict keyed by tuples packs its keys as arrays, which decode as unhashable lists:
        # decode such maps again with the array keys as tuples, as they were written.
        return msgpack.unpackb(
            data, ext_hook=_ext_value, strict_map_key=False, object_pairs_hook=_dict_with_tuple_keys
        )


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def _dict_with_tuple_keys(pairs: list[tuple[Any, Any]]) -> dict:
    return {_hashable(k): v for k, v in pairs}


# One msgpack Packer per thread: ``msgpack.packb`` builds a new Packer on every call, which costs
# more than packing a small value. A Packer is not safe to share between threads (it packs into
# its own buffer), hence one each; it empties its buffer when a pack fails.
_packers = threading.local()


def pack_value(value: Any, *, what: str | Callable[[], str] = "value") -> bytes:
    """Encode a caller's value; anything msgpack cannot encode raises ``ValidationError``.
    ``what`` names the value in that error; a callable is called only then (so callers on a
    hot path need not format a name for every value they pack)."""
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    try:
        return packer.pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        if callable(what):
            what = what()
        raise ValidationError(
            f"{what} cannot be stored: {exc}. Use None, bool, int (64-bit), float, str, bytes, "
            "and lists/tuples/dicts of those."
        ) from None


class RecordCodec:
    """Turns canonical record bytes into stored bytes and back. One per journal."""

    __slots__ = ("compress_min_bytes",)

    def __init__(self, compress_min_bytes: int = 512):
        self.compress_min_bytes = compress_min_bytes

    def seal(self, canonical: bytes, digest: bytes) -> bytes:
        """Stored form of one record whose canonical bytes hash to ``digest``."""
        if len(canonical) >= self.compress_min_bytes:
            return _HEAD_LZ4 + digest + lz4.block.compress(canonical)
        return _HEAD_PLAIN + digest + canonical

    @staticmethod
    def open(stored: bytes | memoryview, seq: int) -> tuple[bytes, bytes]:
        """``(digest, canonical)`` of a stored record; raises ``CorruptionError`` when its bytes
        do not decompress or do not hash to the digest stored beside them."""
        if len(stored) < 1 + HASH_BYTES:
            raise CorruptionError(f"record {seq} is truncated ({len(stored)} bytes)")
        head = stored[0]
        digest = bytes(stored[1 : 1 + HASH_BYTES])
        body = stored[1 + HASH_BYTES :]
        if head & 0xF0 != RECORD_VERSION or head & ~(0xF0 | FLAG_LZ4) & 0xFF:
            raise CorruptionError(f"record {seq} has an unknown format byte 0x{head:02x}")
        if head & FLAG_LZ4:
            try:
                canonical = lz4.block.decompress(body)
            except (lz4.block.LZ4BlockError, ValueError):  # a damaged size header is a ValueError
                raise CorruptionError(f"record {seq} does not decompress") from None
        else:
            canonical = bytes(body)
        if blake(canonical) != digest:
            raise CorruptionError(f"record {seq} does not match its hash")
        return digest, canonical


def build_chunk(stored_records: list[bytes]) -> bytes:
    """One RocksDB value holding ``stored_records`` in order."""
    n = len(stored_records)
    if n == 1:  # a single write: skip the offset loop
        record = stored_records[0]
        return _CHUNK_ONE.pack(CHUNK_VERSION, 1, len(record)) + record
    ends = accumulate(map(len, stored_records))
    return b"".join((struct.pack(f">BI{n}I", CHUNK_VERSION, n, *ends), *stored_records))


def chunk_length(chunk: bytes | memoryview, first_seq: int) -> int:
    """How many records a chunk holds (from its header); ``CorruptionError`` when it is broken."""
    if len(chunk) < _CHUNK_HEAD.size:
        raise CorruptionError(f"chunk at {first_seq} is truncated")
    version, n = _CHUNK_HEAD.unpack_from(chunk)
    if version != CHUNK_VERSION:
        raise CorruptionError(f"chunk at {first_seq} has a broken header")
    return n


def _chunk_frame(chunk: bytes | memoryview, first_seq: int) -> tuple[int, tuple[int, ...]]:
    """``(body start, end offsets)`` of a chunk; ``CorruptionError`` when its header is broken."""
    if len(chunk) < _CHUNK_HEAD.size:
        raise CorruptionError(f"chunk at {first_seq} is truncated")
    version, n = _CHUNK_HEAD.unpack_from(chunk)
    body_start = _CHUNK_HEAD.size + 4 * n
    if version != CHUNK_VERSION or body_start > len(chunk):
        raise CorruptionError(f"chunk at {first_seq} has a broken header")
    ends = struct.unpack_from(f">{n}I", chunk, _CHUNK_HEAD.size)
    if n and body_start + ends[-1] != len(chunk):
        raise CorruptionError(f"chunk at {first_seq} has a broken frame")
    if list(ends) != sorted(ends):  # every record must end at or after the one before it
        i = next(i for i in range(1, n) if ends[i] < ends[i - 1])
        raise CorruptionError(f"record {first_seq + i} has a broken frame")
    return body_start, ends


_PLAIN = RECORD_VERSION
_LZ4 = RECORD_VERSION | FLAG_LZ4


def open_chunk(
    chunk: bytes, first_seq: int, start: int = 0, stop: int | None = None
) -> tuple[list[tuple[bytes, bytes]], CorruptionError | None]:
    """``(digest, canonical)`` of records ``start <= i < stop`` of a chunk, each checked against
    its hash like ``RecordCodec.open``, and the error of the first record that fails (the
    records before it are returned, so a reader can stop exactly there), or None.

    Replay reads every record through here: one call per chunk, slicing the chunk's bytes
    directly, instead of a memoryview per record and a call per record."""
    body_start, ends = _chunk_frame(chunk, first_seq)
    n = len(ends)
    stop = n if stop is None else min(stop, n)
    out: list[tuple[bytes, bytes]] = []
    append = out.append
    begin = body_start + (ends[start - 1] if start else 0)
    for i in range(start, stop):
        end = body_start + ends[i]
        try:
            if end - begin < 1 + HASH_BYTES:
                raise _Unusual
            head = chunk[begin]
            digest = chunk[begin + 1 : begin + 1 + HASH_BYTES]
            if head == _PLAIN:
                canonical = chunk[begin + 1 + HASH_BYTES : end]
            elif head == _LZ4:
                canonical = lz4.block.decompress(chunk[begin + 1 + HASH_BYTES : end])
            else:
                raise _Unusual
            h = BLAKE_EMPTY.copy()
            h.update(canonical)
            if h.digest() != digest:
                raise _Unusual
        except (_Unusual, lz4.block.LZ4BlockError, ValueError):  # lz4: a bad size header is a ValueError
            # Let the one-record opener say precisely what is wrong.
            try:
                digest, canonical = RecordCodec.open(memoryview(chunk)[begin:end], first_seq + i)
            except CorruptionError as exc:
                return out, exc
        append((digest, canonical))
        begin = end
    return out, None


class _Unusual(Exception):
    """A record the fast path of ``open_chunk`` leaves to ``RecordCodec.open``."""


def split_chunk(chunk: bytes, first_seq: int) -> list[memoryview]:
    """The stored records of a chunk, in order; ``CorruptionError`` when its frame is broken."""
    view = memoryview(chunk)
    body_start, ends = _chunk_frame(view, first_seq)
    out = []
    start = 0
    for end in ends:
        out.append(view[body_start + start : body_start + end])
        start = end
    return out
