"""Recovery: reopening a namespace of 1,000,000 events over 100,000 keys, and full replay.

The store is built once per run: one run writing ``kv.put``s of small dict values, in
``run.batch()``es of 1,000, cycling over 100,000 keys, with default settings (a snapshot every
50,000 events, and one on close). Then:

- reopen after a clean close: the newest snapshot is at the head, nothing to replay;
- reopen with the longest tail default settings leave: the snapshot taken on close is deleted,
  so recovery loads the previous automatic snapshot and replays the ~50,000 events after it
  (what a crash just before the next automatic snapshot costs);
- full replay: every snapshot deleted, so recovery folds the whole journal from nothing
  (reading, hash-checking and chain-checking every record, and folding it into every
  projection). Its rate is events / reopen time.

A reopen is timed from ``open_local`` to the first answer (``ns.head()``), which is when the
engine has recovered. Targets (issue 2): reopen (snapshot + tail) ≤ 2 s; full replay
≥ 200,000 events/s. Peer, for scale: a raw rocksdict scan of the same number of
lz4(msgpack(put event)) records, folded into a dict (no hashes, no chain, no indexes).
"""

from __future__ import annotations

import struct
import time

import lz4.block
import msgpack
from rocksdict import Rdict, WriteBatch

import swarmlog
from bench.bench_append import _raw_db
from bench.common import Config, fmt_rate, median, rate, report_limit, report_ratio, scratch_dir
from journal.store import Journal
from swarmlog.local import namespace_dir

NAMESPACE = "bench/recovery"
_Q = struct.Struct(">Q")


def _value(i: int) -> dict:
    return {"n": i, "status": "open", "owner": f"agent-{i % 7}"}


def build(path: str, events: int, keys: int, batch: int = 1000) -> None:
    mem = swarmlog.open_local(path)
    try:
        run = mem.namespace(NAMESPACE).begin_run(agent="bench-builder")
        i = 0
        while i < events - 1:  # the run.begin event counts too
            with run.batch() as b:
                for j in range(i, min(i + batch, events - 1)):
                    b.put(f"item/{j % keys:07d}", _value(j))
            i += batch
    finally:
        mem.close()


def reopen(path: str) -> tuple[float, int, float]:
    """Seconds from ``open_local`` until the namespace answers, its head, and the CPU seconds
    this thread spent meanwhile (recovery runs in the opening thread)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    mem = swarmlog.open_local(path)
    try:
        head = mem.namespace(NAMESPACE).head()
        return time.perf_counter() - t0, head, time.thread_time() - c0
    finally:
        mem.close()


def snapshot_seqs(path: str) -> list[int]:
    j = Journal(namespace_dir(path, NAMESPACE))
    try:
        return [seq for seq, _ in j.snapshots()]
    finally:
        j.close()


def drop_snapshots(path: str, *, keep_older_than: int | None = None) -> None:
    """Delete snapshots (all, or those at or after ``keep_older_than``)."""
    j = Journal(namespace_dir(path, NAMESPACE))
    try:
        cf = j.raw_column("snapshots")
        for seq, _ in list(j.snapshots()):
            if keep_older_than is None or seq >= keep_older_than:
                del cf[_Q.pack(seq)]
    finally:
        j.close()


def raw_build(path: str, events: int, keys: int) -> None:
    db = _raw_db(path)
    try:
        for start in range(1, events + 1, 1000):
            wb = WriteBatch(raw_mode=True)
            for seq in range(start, min(start + 1000, events + 1)):
                event = {"seq": seq, "type": "kv.put", "key": f"item/{seq % keys:07d}", "value": _value(seq)}
                wb.put(_Q.pack(seq), lz4.block.compress(msgpack.packb(event)))
            db.write(wb)
    finally:
        db.close()


def raw_replay(path: str) -> tuple[float, int, float]:
    db: Rdict = _raw_db(path)
    try:
        t0, c0 = time.perf_counter(), time.thread_time()
        state: dict = {}
        n = 0
        unpack, decompress = msgpack.unpackb, lz4.block.decompress
        for _key, value in db.items():
            e = unpack(decompress(value))
            state[e["key"]] = (e["value"], e["seq"])
            n += 1
        return time.perf_counter() - t0, n, time.thread_time() - c0
    finally:
        db.close()


def main(config: Config | None = None) -> None:
    config = config or Config()
    events = config.size(1_000_000, 120_000)
    keys = config.size(100_000, 12_000)
    with scratch_dir("recovery") as d:
        path = d + "/store"
        t0 = time.perf_counter()
        build(path, events, keys)
        took = time.perf_counter() - t0
        print(
            f"built {events:,} events over {keys:,} keys in {took:.1f} s "
            f"({rate(events, took):,.0f} ev/s, batches of 1,000 puts); snapshots at {snapshot_seqs(path)}"
        )

        clean = [reopen(path) for _ in range(config.repeat)]
        head = clean[0][1]
        t_clean = median([t for t, _, _ in clean])
        print(
            f"reopen after a clean close (snapshot at head {head:,}): {t_clean:.3f} s "
            f"(median; runs {', '.join(f'{t:.3f} s' for t, _, _ in clean)})"
        )
        report_limit("reopen, snapshot at head", t_clean, 2.0, "s")

        if len(snapshot_seqs(path)) < 2:
            print("only one snapshot (store too small): the snapshot + tail reopen is skipped")
        else:
            tails = []
            tail_len = 0
            for _ in range(config.repeat):
                seqs = snapshot_seqs(path)
                drop_snapshots(path, keep_older_than=seqs[0])
                tail_len = head - snapshot_seqs(path)[0]
                tails.append(reopen(path)[0])  # its close writes a snapshot at the head again
            t_tail = median(tails)
            print(
                f"reopen with the longest default tail ({tail_len:,} events after the snapshot): "
                f"{t_tail:.3f} s (median; runs {', '.join(f'{t:.3f} s' for t in tails)})"
            )
            report_limit("reopen, snapshot + longest default tail", t_tail, 2.0, "s")

        # Full replay and the raw scan take turns, so that both see the same load.
        raw_path = d + "/raw"
        t0 = time.perf_counter()
        raw_build(raw_path, events, keys)
        print(f"peer store built in {time.perf_counter() - t0:.1f} s")
        replays, raws = [], []
        for _ in range(config.repeat):
            drop_snapshots(path)
            replays.append(reopen(path))
            raws.append(raw_replay(raw_path))
        full_rate = median([rate(head, t) for t, _, _ in replays])
        full_cpu = median([rate(head, c) for _, _, c in replays])
        raw_rate = median([rate(n, t) for t, n, _ in raws])
        raw_cpu = median([rate(n, c) for _, n, c in raws])
        print(
            f"full replay of {head:,} events: {fmt_rate(full_rate).strip()} (median; runs "
            f"{', '.join(f'{t:.2f} s' for t, _, _ in replays)}); from CPU time {fmt_rate(full_cpu).strip()}"
        )
        report_limit("full replay rate", full_rate, 200_000, "ev/s", at_most=False)
        print(
            f"peer: raw rocksdict scan + lz4 + msgpack + dict fold: {fmt_rate(raw_rate).strip()}; "
            f"from CPU time {fmt_rate(raw_cpu).strip()}"
        )
        ratios = [rate(head, o[0]) / rate(p[1], p[0]) for o, p in zip(replays, raws, strict=True)]
        report_ratio("swarmlog full replay / raw scan", median(ratios), 1.0, None)
