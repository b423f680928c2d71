"""Child process of the vector crash test: bulk upserts (and some deletes) until killed.

Prints ``ack <batch>`` after each acknowledged batch; every batch carries a write id, so the
parent can check that acknowledged batches survived and that re-sending them appends nothing.
"""

from __future__ import annotations

import sys

import numpy as np

import swarmlog
from tests.vector_data import clustered

BATCH = 100
BATCHES = 200
DIM = 16


def plan(seed: int):
    """The batches the child writes, in order: ``(write id, kind, items)``; the same for the parent."""
    x, labels = clustered(BATCH * BATCHES, DIM, clusters=30, seed=seed)
    rng = np.random.default_rng(seed)
    for b in range(BATCHES):
        ids = range(b * BATCH, (b + 1) * BATCH)
        yield f"up-{b}", "upsert", [(f"v{i}", x[i], {"c": int(labels[i]), "b": b}) for i in ids]
        if b % 5 == 4:
            victims = sorted({f"v{i}" for i in rng.integers(0, (b + 1) * BATCH, 30)})
            yield f"del-{b}", "delete", victims


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    mem = swarmlog.open_local(path, settings=swarmlog.Settings(snapshot_every_events=400))
    run = mem.namespace("crash").begin_run("bulk", agent="loader")
    vecs = run.vectors("emb", dim=DIM, metric="cosine")
    for n, (write_id, kind, items) in enumerate(plan(seed)):
        if kind == "upsert":
            vecs.upsert_many(items, write_id=write_id)
        else:
            vecs.delete_many(items, write_id=write_id)
        print(f"ack {n}", flush=True)
    mem.close()


if __name__ == "__main__":
    main()
