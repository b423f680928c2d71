"""The writer that ``test_crash`` kills: writes with write ids and prints every acknowledged write.

Run as ``python -m tests.crash_child PATH SEED DURABILITY MAX_BATCH THREADS SNAPSHOT_EVERY START``.
What write ``i`` does depends only on ``(seed, i)`` (``plan``), so the parent can check it and
send it again. Each acknowledgement is one JSON line, flushed before the next write starts.
"""

from __future__ import annotations

import json
import random
import sys
import threading

import swarmlog

NAMESPACE = "crash/ns"
RUN_ID = "crash-run"


def plan(seed: int, i: int, max_batch: int) -> list[tuple]:
    """The operations of write ``i``: ``("put", key, value, ttl)`` or ``("event", type, payload)``."""
    rnd = random.Random(seed * 1_000_003 + i)
    size = rnd.randint(1, max_batch)
    ops: list[tuple] = []
    for n in range(size):
        if rnd.random() < 0.6:
            value = {"i": i, "n": n, "blob": "x" * rnd.choice([0, 10, 600]), "f": rnd.random()}
            ops.append(("put", f"k/{i:06d}/{n}", value, rnd.choice([None, None, 3600])))
        else:
            ops.append(("event", rnd.choice(["obs", "act"]), {"i": i, "n": n, "r": rnd.randint(0, 10**9)}))
    return ops


def write_id(seed: int, i: int) -> str:
    return f"s{seed}-w{i}"


def send(run: swarmlog.Run, seed: int, i: int, max_batch: int) -> list[int]:
    """Perform write ``i``; returns the version or seq of each operation."""
    ops = plan(seed, i, max_batch)
    wid = write_id(seed, i)
    if len(ops) == 1:
        op = ops[0]
        if op[0] == "put":
            return [run.put(op[1], op[2], ttl=op[3], write_id=wid)]
        return [run.append_event(op[1], op[2], write_id=wid).seq]
    with run.batch(write_id=wid) as b:
        for op in ops:
            if op[0] == "put":
                b.put(op[1], op[2], ttl=op[3])
            else:
                b.append_event(op[1], op[2])
    return [r if isinstance(r, int) else r.seq for r in b.results]


def main(argv: list[str]) -> None:
    path, seed, durability, max_batch, threads, snapshot_every, start = argv
    seed, max_batch, threads, start = int(seed), int(max_batch), int(threads), int(start)
    settings = swarmlog.Settings(durability=durability, snapshot_every_events=int(snapshot_every))
    mem = swarmlog.open_local(path, settings=settings)
    ns = mem.namespace(NAMESPACE)
    ns.begin_run(RUN_ID, agent="crasher", write_id="begin")
    out_lock = threading.Lock()

    def writer(t: int) -> None:
        run = ns.run(RUN_ID)
        i = start + t
        while True:
            result = send(run, seed, i, max_batch)
            line = json.dumps({"i": i, "result": result})
            with out_lock:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            i += threads

    workers = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()  # never returns: the parent kills this process


if __name__ == "__main__":
    main(sys.argv[1:])
