"""A writer process is SIGKILLed mid-stream: nothing it was told is durable may be missing."""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import swarmlog
from tests.crash_child import NAMESPACE, RUN_ID, plan, send, write_id
from tests.helpers import assert_store_sound

REPO = Path(__file__).resolve().parent.parent
READ_TIMEOUT_S = 30

# seed, durability, most operations per write, writer threads, snapshot every N events
CASES = [
    (1, "process", 1, 1, 50_000),
    (2, "process", 8, 3, 7),
    (3, "fsync", 4, 2, 5),
    (4, "process", 40, 1, 3),
    (5, "fsync", 1, 3, 11),
    (6, "process", 12, 4, 2),
]


def run_and_kill(
    path: str,
    seed: int,
    durability: str,
    max_batch: int,
    threads: int,
    snap: int,
    start: int,
    kill_after: int,
):
    """Start a writer, wait until it acknowledged ``kill_after`` writes, SIGKILL it; returns the
    acknowledged ``{i: result}`` (complete lines only, also those printed before the kill landed)."""
    cmd = [sys.executable, "-m", "tests.crash_child", path, str(seed), durability]
    cmd += [str(max_batch), str(threads), str(snap), str(start)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""
    acked: dict[int, list[int]] = {}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while len(acked) < kill_after:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the writer acknowledged only {len(acked)} writes in {READ_TIMEOUT_S}s"
            if not sel.select(timeout=remaining):
                continue
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                proc.wait(timeout=READ_TIMEOUT_S)
                raise AssertionError(f"the writer exited early: {proc.stderr.read().decode()[-2000:]}")
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                acked[msg["i"]] = msg["result"]
    finally:
        sel.close()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=READ_TIMEOUT_S)
    # Lines printed before the kill landed were acknowledged too; a torn last line was not.
    rest = buf + proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    for line in rest.split(b"\n")[:-1]:
        msg = json.loads(line)
        acked[msg["i"]] = msg["result"]
    assert proc.returncode == -signal.SIGKILL
    return acked


def check_recovered(ns, seed: int, max_batch: int, acked: dict[int, list[int]]) -> None:
    """Every acknowledged write is there with its content; every journaled write is whole."""
    for i, result in acked.items():
        ops = plan(seed, i, max_batch)
        assert len(result) == len(ops)
        for op, got in zip(ops, result, strict=True):
            if op[0] == "put":
                entry = ns.entry(op[1])
                assert entry is not None, f"acknowledged put {op[1]} of write {i} is missing"
                assert (entry.version, entry.value) == (got, op[2])
            else:
                ev = ns.event(got)
                assert (ev.type, ev.payload, ev.write_id) == (op[1], op[2], write_id(seed, i))
    events = ns.read_events(RUN_ID)
    per_write = Counter(e.write_id for e in events if e.write_id not in (None, "begin"))
    for wid, count in per_write.items():
        i = int(wid.rsplit("w", 1)[1])
        assert count == len(plan(seed, i, max_batch)), f"write {wid} is journaled in part"
    assert {write_id(seed, i) for i in acked} <= set(per_write)


@pytest.mark.parametrize(("seed", "durability", "max_batch", "threads", "snap"), CASES)
def test_a_killed_writer_loses_no_acknowledged_write(tmp_path, seed, durability, max_batch, threads, snap):
    path = str(tmp_path / "store")
    rnd = random.Random(seed)
    settings = swarmlog.Settings(durability=durability, snapshot_every_events=snap)
    acked: dict[int, list[int]] = {}
    start = 0
    for _life in range(2):
        kill_after = rnd.randint(3, 60)
        new = run_and_kill(path, seed, durability, max_batch, threads, snap, start, kill_after)
        # A write acknowledged in both lives (sent again after the crash) got the same answer.
        assert {i: acked[i] for i in new if i in acked} == {i: new[i] for i in new if i in acked}
        acked.update(new)
        with swarmlog.open_local(path, settings=settings) as mem:
            ns = mem.namespace(NAMESPACE)
            check_recovered(ns, seed, max_batch, acked)
            assert_store_sound(ns)
            # Sending the newest acknowledged writes again returns their results and appends nothing.
            head = ns.head()
            run = ns.run(RUN_ID)
            for i in sorted(acked)[-5:]:
                assert send(run, seed, i, max_batch) == acked[i]
            assert ns.head() == head
            assert_store_sound(ns)
        # The next life starts past every acknowledged write; writes journaled but never
        # acknowledged are sent again with the same write ids and must not be duplicated.
        start = max(acked) + 1 - threads if acked else 0
        start = max(start, 0)
