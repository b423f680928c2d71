"""Append throughput of swarmlog in process against raw rocksdict loops of lz4(msgpack(event)).

swarmlog: ``run.append_event`` one event per call, and ``run.batch()`` of 100 events, through
``swarmlog.open_local`` (default durability ``"process"``: the RocksDB WAL is written before the
ack, not synced). Peer: the same payloads wrapped in a small event dict, msgpack-packed,
lz4-compressed and put into a rocksdict ``Rdict`` (raw mode, lz4 tables, the same memtable size,
default write options, so also unsynced WAL) — one ``put`` per event, or one ``WriteBatch`` per
100 events. The peer does no validation, hashing, indexing, idempotency or projection work: it
is the floor under any journal on RocksDB in Python. For context a third loop, the *floor*
(``floor``), does only what a record of swarmlog's shape needs at the least (pack, hash,
chain, chunk + run index + type index + head in one WriteBatch) and shows how close to the
targets any engine of this design in Python can get.

The contenders run side by side on the same payloads, taking turns segment by segment (see
``bench.common.interleave``), so that load from other processes falls on all of them alike.

Targets (issue 2): single ≥ 0.35× the raw loop, batch ≥ 0.5×.
"""

from __future__ import annotations

import hashlib
import struct
from itertools import accumulate

import lz4.block
import msgpack
import msgspec
from rocksdict import DBCompressionType, Options, Rdict, WriteBatch

import swarmlog
from bench.common import Config, interleave, report_interleaved
from bench.workload import AGENT, EVENT_TYPE, chunks, payloads

_Q = struct.Struct(">Q")


# -- swarmlog ---------------------------------------------------------------------------------


def swarmlog_single(path: str, durability: str = "process") -> tuple:
    """Contender: one ``run.append_event`` call per event."""
    mem = swarmlog.open_local(path, durability=durability)
    run = mem.namespace("bench").begin_run(agent=AGENT)
    append_event = run.append_event

    def append(items: list[dict]) -> None:
        for p in items:
            append_event(EVENT_TYPE, p)

    return append, mem.close


def swarmlog_batch(path: str, durability: str = "process") -> tuple:
    """Contender: ``run.batch()`` blocks of 100 events."""
    mem = swarmlog.open_local(path, durability=durability)
    run = mem.namespace("bench").begin_run(agent=AGENT)

    def append(items: list[dict]) -> None:
        for group in chunks(items):
            with run.batch() as b:
                for p in group:
                    b.append_event(EVENT_TYPE, p)

    return append, mem.close


# -- raw rocksdict ----------------------------------------------------------------------------


def _raw_db(path: str) -> Rdict:
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.set_compression_type(DBCompressionType.lz4())
    opt.set_write_buffer_size(64 * 1024 * 1024)
    return Rdict(path, opt)


def _event(seq: int, payload: dict) -> dict:
    return {"seq": seq, "type": EVENT_TYPE, "agent": AGENT, "run_id": "run-1", "payload": payload}


def raw_single(path: str) -> tuple:
    """Peer: ``Rdict.put`` of lz4(msgpack(event)), one per event."""
    db = _raw_db(path)
    put, pack, compress, key = db.put, msgpack.packb, lz4.block.compress, _Q.pack
    seq = 0

    def append(items: list[dict]) -> None:
        nonlocal seq
        for p in items:
            seq += 1
            put(key(seq), compress(pack(_event(seq, p))))

    return append, db.close


def raw_batch(path: str) -> tuple:
    """Peer: one ``WriteBatch`` of lz4(msgpack(event)) per 100 events."""
    db = _raw_db(path)
    pack, compress, key = msgpack.packb, lz4.block.compress, _Q.pack
    seq = 0

    def append(items: list[dict]) -> None:
        nonlocal seq
        for group in chunks(items):
            wb = WriteBatch(raw_mode=True)
            for p in group:
                seq += 1
                wb.put(key(seq), compress(pack(_event(seq, p))))
            db.write(wb)

    return append, db.close


# -- the floor: what a hash-chained, indexed record costs before any engine work ---------------


def floor(path: str, batch: int) -> tuple:
    """Contender for context: the least work a journal record of swarmlog's shape needs in
    Python. Pack the value and the 12-field record, hash it, chain it, and write the chunk,
    run-index and type-index entries and the head pointer in one WriteBatch per ``batch``
    events (four column families). No validation, projections, undo, idempotency or result
    objects: swarmlog can only approach this."""
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.create_missing_column_families(True)
    opt.set_compression_type(DBCompressionType.lz4())
    opt.set_write_buffer_size(64 * 1024 * 1024)
    names = ("events", "runs", "types", "meta")
    db = Rdict(path, opt, column_families={n: Options(raw_mode=True) for n in names})
    h = [db.get_column_family_handle(n) for n in names]
    encode, ext, pack = msgspec.msgpack.encode, msgspec.msgpack.Ext, msgpack.packb
    state = {"seq": 0, "prev": b"\0" * 32}

    def append(items: list[dict]) -> None:
        seq, prev = state["seq"], state["prev"]
        for group in chunks(items, batch):
            first = seq + 1
            stored = []
            for p in group:
                seq += 1
                record = [seq, f"ns-{seq}", seq << 16, "run-1", AGENT, None, EVENT_TYPE]
                record += [ext(1, pack(p)), None, None, prev, None]
                canonical = encode(record)
                prev = hashlib.blake2b(canonical, digest_size=32).digest()
                stored.append(b"\x10" + prev + canonical)
            key = _Q.pack(first)
            ends = list(accumulate(map(len, stored)))
            wb = WriteBatch(raw_mode=True)
            wb.put(key, struct.pack(f">BI{len(ends)}I", 1, len(ends), *ends) + b"".join(stored), h[0])
            seqs = encode(list(range(first, seq + 1)))
            wb.put(b"run-1\0" + key, seqs, h[1])
            wb.put(EVENT_TYPE.encode() + b"\0" + key, seqs, h[2])
            wb.put(b"head", encode([seq, prev, seq << 16]), h[3])
            db.write(wb)
        state["seq"], state["prev"] = seq, prev

    def close() -> None:
        h.clear()
        db.close()

    return append, close


# -- the benchmark ----------------------------------------------------------------------------


def main(config: Config | None = None) -> None:
    config = config or Config()
    n = config.size(10_000, 1_000)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog append_event": swarmlog_single,
            "raw rocksdict put": raw_single,
            "floor, one event per batch": lambda path: floor(path, 1),
        },
        segment=500,
    )
    report_interleaved("single appends", n, results, "swarmlog append_event", "raw rocksdict put", 0.35)
    n = config.size(100_000, 5_000)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog batch of 100": swarmlog_batch,
            "raw rocksdict WriteBatch of 100": raw_batch,
            "floor, 100 events per batch": lambda path: floor(path, 100),
        },
        segment=2_000,
    )
    report_interleaved(
        "batches of 100", n, results, "swarmlog batch of 100", "raw rocksdict WriteBatch of 100", 0.5
    )
