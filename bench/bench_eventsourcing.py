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
from bench.common import Config, interleave, report_interleaved, scratch_dir
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


def es_single(path: str, db: str | None = None) -> tuple:
    """Contender: one event per ``save``."""
    app = _app(db or path + ".sqlite")
    log = AgentLog()
    app.save(log)
    save, record = app.save, log.record

    def append(items: list[dict]) -> None:
        for p in items:
            record(p)
            save(log)

    return append, app.close


def es_batch(path: str, db: str | None = None) -> tuple:
    """Contender: 100 events per ``save``."""
    app = _app(db or path + ".sqlite")
    log = AgentLog()
    app.save(log)
    save, record = app.save, log.record

    def append(items: list[dict]) -> None:
        for group in chunks(items):
            for p in group:
                record(p)
            save(log)

    return append, app.close


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


def main(config: Config | None = None) -> None:
    config = config or Config()
    if Application is None:
        print("eventsourcing is not installed (pip install -e '.[bench]'); skipped")
        return
    with scratch_dir("es-settings") as d:
        print("eventsourcing SQLite file settings: " + sqlite_settings(d + "/probe"))

    def memory(contender):
        return lambda path: contender(path, db=_memory_db(path))

    n = config.size(50_000, 2_000)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog fsync, batch of 100": lambda path: swarmlog_batch(path, durability="fsync"),
            "eventsourcing sqlite file, 100/save": es_batch,
        },
        segment=1_000,
    )
    report_interleaved(
        "batches of 100, fsync'd on both sides",
        n,
        results,
        "swarmlog fsync, batch of 100",
        "eventsourcing sqlite file, 100/save",
        2.0,
        cpu=False,
    )
    n = config.size(2_000, 200)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog fsync, append_event": lambda path: swarmlog_single(path, durability="fsync"),
            "eventsourcing sqlite file, 1/save": es_single,
        },
        segment=100,
    )
    report_interleaved(
        "single appends, fsync'd on both sides",
        n,
        results,
        "swarmlog fsync, append_event",
        "eventsourcing sqlite file, 1/save",
        1.0,
        cpu=False,
    )
    print("\ncontext (no target): swarmlog's default durability vs the peer with no durability at all")
    n = config.size(50_000, 2_000)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog process, batch of 100": swarmlog_batch,
            "eventsourcing sqlite memory, 100/save": memory(es_batch),
        },
        segment=1_000,
    )
    report_interleaved(
        "batches of 100",
        n,
        results,
        "swarmlog process, batch of 100",
        "eventsourcing sqlite memory, 100/save",
        None,
    )
    n = config.size(10_000, 500)
    results = interleave(
        config,
        n,
        payloads(n),
        {
            "swarmlog process, append_event": swarmlog_single,
            "eventsourcing sqlite memory, 1/save": memory(es_single),
        },
        segment=500,
    )
    report_interleaved(
        "single appends",
        n,
        results,
        "swarmlog process, append_event",
        "eventsourcing sqlite memory, 1/save",
        None,
    )
