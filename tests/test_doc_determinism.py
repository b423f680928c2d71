"""Documents and vectors fold to the same state whatever the path and the hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import swarmlog
from tests.helpers import assert_store_sound

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys, swarmlog
mem = swarmlog.open_local(sys.argv[1])
ns = mem.namespace("det")
report = ns.verify(projections=True)   # the loaded snapshot equals a full fold in this process
assert report.ok, report
print(ns.digest())
"""


def test_digests_match_across_snapshot_full_replay_and_hash_seeds(store_path):
    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("det")
    run = ns.begin_run(agent="a")
    docs = run.collection("d")
    docs.create_index("tags")
    docs.insert_many([{"tags": [i % 3, f"t{i % 4}"], "n": i, "sub": {"x": i}} for i in range(200)])
    docs.update_many({"n": {"$lt": 50}}, {"$set": {"tags": ["moved"]}, "$unset": {"sub": ""}})
    docs.delete_many({"n": {"$gte": 190}})
    vecs = run.vectors("v", dim=6, metric="l2")
    rng = np.random.default_rng(0)
    vecs.upsert_many([(f"k{i}", rng.standard_normal(6), {"i": i}) for i in range(300)])
    vecs.delete_many([f"k{i}" for i in range(0, 300, 7)])
    vecs.upsert_many([(f"k{i}", rng.standard_normal(6)) for i in range(0, 300, 11)])
    digest = ns.digest()
    assert_store_sound(ns)
    mem.close()
    for seed in ("1", "4242"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, store_path],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert out.stdout.strip() == digest
