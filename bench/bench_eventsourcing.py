"""The append workload of ``bench_append`` against the Python ``eventsourcing`` library (SQLite).

Peer: an ``eventsourcing`` ``Application`` configured the documented way, through environment
variables (``PERSISTENCE_MODULE=eventsourcing.sqlite``, ``SQLITE_DBNAME=<file>``), saving an
``Aggregate`` whose ``record(payload)`` method triggers one event per call: one event per
``save`` for single appends, 100 events per ``save`` for batches. eventsourcing's SQLite module
puts a file database in WAL mode and leaves ``synchronous`` at SQLite's default (FULL, printed
below as read from the database), so every commit is fsync'd: it survives power loss.

swarmlog is measured with the same payloads: ``run.append_event`` per event, ``run.batch()`` of
100. The targets (issue 2) compare equal durability:

- batches: swarmlog ``durability="fsync"`` vs eventsourcing on a SQLite file — target ≥ 2×;
- single appends, fsync'd on both sides — target ≥ 1×.

For context it also prints swarmlog's default durability (``"process"``: WAL written, not
synced, survives a killed process) against eventsourcing on an in-memory SQLite database (no
durability at all: the fastest the peer can go).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from bench.bench_append import swarmlog_batch, swarmlog_single
from bench.common import Config, fmt_rate, median, rate, report_ratio, runs_line, scratch_dir, timed
from bench.workload import chunks, payloads

try:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
except ImportError:  # pragma: no cover - the bench extra is not installed
    Application = None


if Application is not None:

    class AgentLog(Aggregate):
        """An agent's log: each ``record`` call triggers one ``Recorded`` event."""

        @event("Recorded")
        def record(self, payload: dict) -> None:
            pass

    class AgentLogs(Application):
        """The eventsourcing application the benchmark saves aggregates through."""


def _app(db: str) -> Any:
    # The documented configuration: environment variables naming the persistence module and the
    # database (passed as ``env``, which eventsourcing merges over ``os.environ``).
    return AgentLogs(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": db})


def es_single(path: str, items: list[dict], db: str | None = None) -> float:
    """Seconds to save one event per ``save``."""
    app = _app(db or path + ".sqlite")
    try:
        log = AgentLog()
        app.save(log)
        save, record = app.save, log.record

        def loop() -> None:
            for p in items:
                record(p)
                save(log)

        return timed(loop)
    finally:
        app.close()


def es_batch(path: str, items: list[dict], db: str | None = None) -> float:
    """Seconds to save 100 events per ``save``."""
    app = _app(db or path + ".sqlite")
    try:
        log = AgentLog()
        app.save(log)
        save, record = app.save, log.record
        groups = chunks(items)

        def loop() -> None:
            for group in groups:
                for p in group:
                    record(p)
                save(log)

        return timed(loop)
    finally:
        app.close()


def _memory_db(path: str) -> str:
    return f"file:{os.path.basename(path)}?mode=memory&cache=shared"


def sqlite_settings(path: str) -> str:
    """The journal mode and synchronous level eventsourcing leaves on a SQLite file."""
    db = path + ".sqlite"
    app = _app(db)
    try:
        log = AgentLog()
        app.save(log)
        with app.recorder.datastore.transaction(commit=False) as curs:
            curs.execute("PRAGMA journal_mode")
            mode = curs.fetchone()[0]
            curs.execute("PRAGMA synchronous")
            level = curs.fetchone()[0]
    finally:
        app.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={mode}, synchronous={names.get(level, level)} (sqlite {sqlite3.sqlite_version})"


def _compare(
    config: Config, label: str, n: int, ours, peer, names: tuple[str, str], target: float | None
) -> None:
    """Like ``bench_append.compare``: back-to-back pairs, alternating order, median pair ratio."""
    items = payloads(n)
    ours_rates, peer_rates, ratios = [], [], []
    for i in range(config.repeat):
        with scratch_dir("es") as d:
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
    print(f"  {names[0]:<30} {fmt_rate(median(ours_rates))}   {runs_line(ours_rates, fmt_rate)}")
    print(f"  {names[1]:<30} {fmt_rate(median(peer_rates))}   {runs_line(peer_rates, fmt_rate)}")
    print("  per-pair ratios: " + ", ".join(f"{r:.2f}" for r in ratios))
    report_ratio(f"{names[0]} / {names[1]}", median(ratios), 1.0, target)


def main(config: Config | None = None) -> None:
    config = config or Config()
    if Application is None:
        print("eventsourcing is not installed (pip install -e '.[bench]'); skipped")
        return
    with scratch_dir("es-settings") as d:
        print("eventsourcing SQLite file settings: " + sqlite_settings(d + "/probe"))

    def sl_fsync_batch(path, items):
        return swarmlog_batch(path, items, durability="fsync")

    def sl_fsync_single(path, items):
        return swarmlog_single(path, items, durability="fsync")

    def es_batch_memory(path, items):
        return es_batch(path, items, db=_memory_db(path))

    def es_single_memory(path, items):
        return es_single(path, items, db=_memory_db(path))

    _compare(
        config,
        "batches of 100, fsync'd on both sides",
        config.size(50_000, 2_000),
        sl_fsync_batch,
        es_batch,
        ("swarmlog fsync", "eventsourcing sqlite file"),
        2.0,
    )
    _compare(
        config,
        "single appends, fsync'd on both sides",
        config.size(2_000, 200),
        sl_fsync_single,
        es_single,
        ("swarmlog fsync", "eventsourcing sqlite file"),
        1.0,
    )
    print("context (no target): swarmlog default durability vs the peer with no durability at all")
    _compare(
        config,
        "batches of 100",
        config.size(50_000, 2_000),
        swarmlog_batch,
        es_batch_memory,
        ("swarmlog process", "eventsourcing sqlite memory"),
        None,
    )
    _compare(
        config,
        "single appends",
        config.size(10_000, 500),
        swarmlog_single,
        es_single_memory,
        ("swarmlog process", "eventsourcing sqlite memory"),
        None,
    )
