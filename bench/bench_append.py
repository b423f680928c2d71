"""Append throughput of swarmlog in process against raw rocksdict loops of lz4(msgpack(event)).

swarmlog: ``run.append_event`` one event per call, and ``run.batch()`` of 100 events, through
``swarmlog.open_local`` (default durability ``"process"``: the RocksDB WAL is written before the
ack, not synced). Peer: the same payloads wrapped in a small event dict, msgpack-packed,
lz4-compressed and put into a rocksdict ``Rdict`` (raw mode, lz4 tables, the same memtable size,
default write options, so also unsynced WAL) — one ``put`` per event, or one ``WriteBatch`` per
100 events. The peer does no validation, hashing, indexing, idempotency or projection work: it
is the floor under any journal on RocksDB in Python. For context a third loop, the *floor*
(``floor_loop``), does only what a record of swarmlog's shape needs at the least (pack, hash,
chain, chunk + run index + type index + head in one WriteBatch) and shows how close to the
targets any engine of this design in Python can get.

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
from bench.common import (
    Config,
    fmt_rate,
    median,
    rate,
    report_ratio,
    runs_line,
    scratch_dir,
    timed,
)
from bench.workload import AGENT, EVENT_TYPE, chunks, payloads

_Q = struct.Struct(">Q")


# -- swarmlog ---------------------------------------------------------------------------------


def swarmlog_single(path: str, items: list[dict], durability: str = "process") -> float:
    """Seconds to append ``items`` one ``append_event`` call each."""
    mem = swarmlog.open_local(path, durability=durability)
    try:
        run = mem.namespace("bench").begin_run(agent=AGENT)
        append = run.append_event

        def loop() -> None:
            for p in items:
                append(EVENT_TYPE, p)

        return timed(loop)
    finally:
        mem.close()


def swarmlog_batch(path: str, items: list[dict], durability: str = "process") -> float:
    """Seconds to append ``items`` in ``run.batch()`` blocks of 100 events."""
    mem = swarmlog.open_local(path, durability=durability)
    try:
        run = mem.namespace("bench").begin_run(agent=AGENT)
        groups = chunks(items)

        def loop() -> None:
            for group in groups:
                with run.batch() as b:
                    for p in group:
                        b.append_event(EVENT_TYPE, p)

        return timed(loop)
    finally:
        mem.close()


# -- raw rocksdict ----------------------------------------------------------------------------


def _raw_db(path: str) -> Rdict:
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.set_compression_type(DBCompressionType.lz4())
    opt.set_write_buffer_size(64 * 1024 * 1024)
    return Rdict(path, opt)


def _event(seq: int, payload: dict) -> dict:
    return {"seq": seq, "type": EVENT_TYPE, "agent": AGENT, "run_id": "run-1", "payload": payload}


def raw_single(path: str, items: list[dict]) -> float:
    """Seconds to put lz4(msgpack(event)) of every item, one ``put`` each."""
    db = _raw_db(path)
    try:
        put, pack, compress, key = db.put, msgpack.packb, lz4.block.compress, _Q.pack

        def loop() -> None:
            for seq, p in enumerate(items, 1):
                put(key(seq), compress(pack(_event(seq, p))))

        return timed(loop)
    finally:
        db.close()


def raw_batch(path: str, items: list[dict]) -> float:
    """Seconds to put lz4(msgpack(event)) of every item, one ``WriteBatch`` per 100."""
    db = _raw_db(path)
    try:
        pack, compress, key = msgpack.packb, lz4.block.compress, _Q.pack
        groups = chunks(list(enumerate(items, 1)))

        def loop() -> None:
            for group in groups:
                wb = WriteBatch(raw_mode=True)
                for seq, p in group:
                    wb.put(key(seq), compress(pack(_event(seq, p))))
                db.write(wb)

        return timed(loop)
    finally:
        db.close()


# -- the floor: what a hash-chained, indexed record costs before any engine work ---------------


def floor_loop(path: str, items: list[dict], batch: int) -> float:
    """Seconds for the least work a journal record of swarmlog's shape needs in Python: pack the
    value and the 12-field record, hash it, chain it, and write the chunk, run-index and
    type-index entries and the head pointer in one WriteBatch per ``batch`` events (four column
    families). No validation, projections, undo, idempotency or result objects. Context for the
    targets, not a target: swarmlog can only approach this."""
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.create_missing_column_families(True)
    opt.set_compression_type(DBCompressionType.lz4())
    opt.set_write_buffer_size(64 * 1024 * 1024)
    names = ("events", "runs", "types", "meta")
    db = Rdict(path, opt, column_families={n: Options(raw_mode=True) for n in names})
    try:
        h = [db.get_column_family_handle(n) for n in names]
        encode, ext, pack = msgspec.msgpack.encode, msgspec.msgpack.Ext, msgpack.packb
        groups = chunks(list(enumerate(items, 1)), batch)
        prev = b"\0" * 32

        def loop() -> None:
            nonlocal prev
            for group in groups:
                wb = WriteBatch(raw_mode=True)
                stored = []
                for seq, p in group:
                    record = [seq, f"ns-{seq}", seq << 16, "run-1", AGENT, None, EVENT_TYPE]
                    record += [ext(1, pack(p)), None, None, prev, None]
                    canonical = encode(record)
                    prev = hashlib.blake2b(canonical, digest_size=32).digest()
                    stored.append(b"\x10" + prev + canonical)
                first = _Q.pack(group[0][0])
                ends = list(accumulate(map(len, stored)))
                chunk = struct.pack(f">BI{len(ends)}I", 1, len(ends), *ends) + b"".join(stored)
                wb.put(first, chunk, h[0])
                seqs = encode([seq for seq, _ in group])
                wb.put(b"run-1\0" + first, seqs, h[1])
                wb.put(EVENT_TYPE.encode() + b"\0" + first, seqs, h[2])
                wb.put(b"head", encode([group[-1][0], prev, group[-1][0] << 16]), h[3])
                db.write(wb)

        return timed(loop)
    finally:
        db.close()


def floor_single(path: str, items: list[dict]) -> float:
    return floor_loop(path, items, 1)


def floor_batch(path: str, items: list[dict]) -> float:
    return floor_loop(path, items, 100)


# -- the benchmark ----------------------------------------------------------------------------


def compare(
    config: Config,
    label: str,
    n: int,
    ours,
    peer,
    peer_name: str,
    target: float | None,
    floor=None,
) -> bool:
    """Measure ``ours`` and ``peer`` (and the ``floor``, for context) back to back,
    ``config.repeat`` times, alternating which goes first; print the median rates and the
    median of the per-pair ratios (a pair shares the machine's momentary load, so its ratio is
    steadier than either rate)."""
    items = payloads(n)
    ours_rates, peer_rates, floor_rates, ratios, floor_ratios = [], [], [], [], []
    for i in range(config.repeat):
        with scratch_dir("append") as d:
            if i % 2:
                p = rate(n, peer(d + "/peer", items))
                o = rate(n, ours(d + "/swarmlog", items))
            else:
                o = rate(n, ours(d + "/swarmlog", items))
                p = rate(n, peer(d + "/peer", items))
            if floor is not None:
                f = rate(n, floor(d + "/floor", items))
                floor_rates.append(f)
                floor_ratios.append(f / p)
        ours_rates.append(o)
        peer_rates.append(p)
        ratios.append(o / p)
    print(f"{label} ({n:,} events, {config.repeat} pairs)")
    print(f"  swarmlog            {fmt_rate(median(ours_rates))}   {runs_line(ours_rates, fmt_rate)}")
    print(f"  {peer_name:<19} {fmt_rate(median(peer_rates))}   {runs_line(peer_rates, fmt_rate)}")
    if floor is not None:
        print(f"  floor (see doc)     {fmt_rate(median(floor_rates))}   {runs_line(floor_rates, fmt_rate)}")
    print("  per-pair ratios: " + ", ".join(f"{r:.2f}" for r in ratios))
    met = report_ratio(f"swarmlog / {peer_name} (median of pair ratios)", median(ratios), 1.0, target)
    if floor is not None:
        report_ratio(
            f"floor / {peer_name} (least work of this record format)", median(floor_ratios), 1.0, None
        )
    return met


def main(config: Config | None = None) -> None:
    config = config or Config()
    compare(
        config,
        "single appends: run.append_event vs Rdict.put",
        config.size(10_000, 2_000),
        swarmlog_single,
        raw_single,
        "raw rocksdict",
        0.35,
        floor_single,
    )
    compare(
        config,
        "batches of 100: run.batch() vs WriteBatch of 100",
        config.size(100_000, 5_000),
        swarmlog_batch,
        raw_batch,
        "raw rocksdict",
        0.5,
        floor_batch,
    )
