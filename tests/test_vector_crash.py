"""Crash during bulk upserts: a child process is SIGKILLed mid-stream; after recovery every
acknowledged batch is there, re-sending it appends nothing, and search answers equal those of
a fresh hnswlib index built from the journal."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

import swarmlog
from projections.vector_index import DEFAULT_EF, EXACT_MAX_CANDIDATES
from tests.crash_child_vectors import DIM, plan
from tests.helpers import assert_store_sound
from tests.vector_data import index_from_journal

ROOT = Path(__file__).resolve().parent.parent


def run_child_until(path: str, seed: int, kill_after: int) -> int:
    """Start the child, SIGKILL it once ``kill_after`` steps were acknowledged; returns the
    last acknowledged step."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_child_vectors", path, str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    acked = -1
    try:
        while acked < kill_after:
            line = lines.get(timeout=60)
            acked = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    while True:  # acknowledgements printed before the kill landed
        try:
            acked = int(lines.get(timeout=1).split()[1])
        except queue.Empty:
            break
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return acked


@pytest.mark.parametrize(("seed", "kill_after"), [(1, 30), (2, 41)])
def test_search_after_a_crash_during_bulk_upserts_equals_an_index_built_from_the_journal(
    tmp_path, seed, kill_after
):
    path = str(tmp_path / "store")
    acked = run_child_until(path, seed, kill_after)

    settings = swarmlog.Settings(snapshot_every_events=400)
    mem = swarmlog.open_local(path, settings=settings)
    ns = mem.namespace("crash")
    run = ns.run("bulk")
    vecs = run.vectors("emb")
    assert vecs.count() > EXACT_MAX_CANDIDATES  # the approximate index answers
    head = ns.head()
    for write_id, kind, items in islice(plan(seed), acked + 1):
        if kind == "upsert":
            revs = vecs.upsert_many(items, write_id=write_id)
            assert [ns.event(r).payload["id"] for r in revs] == [i[0] for i in items]
        else:
            vecs.delete_many(items, write_id=write_id)
    assert ns.head() == head  # every acknowledged batch was there already
    steps = list(plan(seed))
    assert acked < len(steps) - 1  # the kill landed mid-stream
    per_batch: dict[int, int] = {}
    for e in ns.read_events(types="vec.upsert"):
        b = int(e.payload["meta"]["b"])
        per_batch[b] = per_batch.get(b, 0) + 1
    assert set(per_batch.values()) == {100}  # whole batches only, never part of one

    raw, label_ids = index_from_journal(ns, "emb")
    raw.set_ef(DEFAULT_EF)
    assert len(label_ids) == vecs.count()
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((40, DIM)).astype(np.float32)
    labels, _ = raw.knn_query(queries, k=10, num_threads=1)
    expected = [sorted(label_ids[int(label)] for label in row) for row in labels]
    found = [sorted(h.id for h in vecs.search(q, k=10)) for q in queries]
    assert found == expected
    assert_store_sound(ns)
    mem.close()

    mem = swarmlog.open_local(path, settings=settings)  # and once more, from the new snapshot
    assert [
        sorted(h.id for h in mem.namespace("crash").vectors("emb").search(q, k=10)) for q in queries
    ] == expected
    mem.close()
