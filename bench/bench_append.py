"""Append throughput of swarmlog in process against raw rocksdict loops of lz4(msgpack(event)).

swarmlog: ``run.append_event`` one event per call, and ``run.batch()`` of 100 events, through
``swarmlog.open_local`` (default durability ``"process"``: the RocksDB WAL is written before the
ack, not synced). Peer: the same payloads wrapped in a small event dict, msgpack-packed,
lz4-compressed and put into a rocksdict ``Rdict`` (raw mode, lz4 tables, the same memtable size,
default write options, so also unsynced WAL) — one ``put`` per event, or one ``WriteBatch`` per
100 events. The peer does no validation, hashing, indexing, idempotency or projection work: it
is the floor under any journal on RocksDB in Python.

Targets (issue 2): single ≥ 0.35× the raw loop, batch ≥ 0.5×.
"""

from __future__ import annotations

import struct

import lz4.block
import msgpack
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


# -- the benchmark ----------------------------------------------------------------------------


def compare(config: Config, label: str, n: int, ours, peer, peer_name: str, target: float | None) -> bool:
    """Measure ``ours`` and ``peer`` in back-to-back pairs, ``config.repeat`` times, alternating
    which goes first; print the median rates and the median of the per-pair ratios (a pair
    shares the machine's momentary load, so its ratio is steadier than either rate)."""
    items = payloads(n)
    ours_rates, peer_rates, ratios = [], [], []
    for i in range(config.repeat):
        with scratch_dir("append") as d:
            if i % 2:
                p = rate(n, peer(d + "/peer", items))
                o = rate(n, ours(d + "/swarmlog", items))
            else:
                o = rate(n, ours(d + "/swarmlog", items))
                p = rate(n, peer(d + "/peer", items))
        ours_rates.append(o)
        peer_rates.append(p)
        ratios.append(o / p)
    print(f"{label} ({n:,} events, {config.repeat} pairs)")
    print(f"  swarmlog            {fmt_rate(median(ours_rates))}   {runs_line(ours_rates, fmt_rate)}")
    print(f"  {peer_name:<19} {fmt_rate(median(peer_rates))}   {runs_line(peer_rates, fmt_rate)}")
    print("  per-pair ratios: " + ", ".join(f"{r:.2f}" for r in ratios))
    return report_ratio(f"swarmlog / {peer_name} (median of pair ratios)", median(ratios), 1.0, target)


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
    )
    compare(
        config,
        "batches of 100: run.batch() vs WriteBatch of 100",
        config.size(100_000, 5_000),
        swarmlog_batch,
        raw_batch,
        "raw rocksdict",
        0.5,
    )
