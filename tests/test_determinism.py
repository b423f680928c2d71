"""The same journal folds to byte-identical projections, whichever way it is folded and wherever."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import swarmlog
from journal.store import Journal
from swarmlog.local import namespace_dir
from tests.helpers import NAMESPACE, TestClock, assert_store_sound, open_local_clocked

REPO = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 60
SNAPSHOT_EVERY = 23
PROBE_SEQS = (1, 50, 137, 300)


def write_workload(ns, clock: TestClock) -> None:
    """Dict payloads, many keys, overwrites, deletes, TTLs that expire, traces, batches, runs."""
    runs = [
        ns.begin_run(f"run-{i}", agent=f"agent-{i}", metadata={"i": i, "tags": {"zeta": 1, "alpha": [i]}})
        for i in range(4)
    ]
    for i in range(400):
        run = runs[i % 4]
        key = f"doc/{(i * 37) % 120:03d}"
        clock.advance(0.003 * (i % 5))
        if i % 11 == 0:
            run.delete(key)
        elif i % 7 == 0:
            run.put(key, {"ttl": True, "i": i}, ttl=0.01 if i % 2 else 3600)
        else:
            run.put(key, {"z": i, "a": [i, str(i), {"k": None}], "m": {"y": 1.5, "x": b"\x00"}})
        if i % 10 == 0:
            ev = run.append_event("observation", {"i": i, "seen": {"b": 1, "a": 2}}, source={"msg": i})
            run.trace("decision", {"choice": f"c{i}", "confidence": (i % 10) / 10}, event=ev)
            run.with_tool("search").trace("tool_call", {"tool": "search", "args": {"q": str(i)}})
        if i % 60 == 0:
            with run.batch() as b:
                b.put(f"batch/{i}", {"n": i})
                p = b.append_event("step", [i, {"nested": True}])
                b.trace("assumption", {"text": "fine"}, event=p)
                b.delete(f"doc/{(i * 7) % 120:03d}")
        if i % 25 == 0:
            # A refused batch is rolled back in the live state (after purging what expired):
            # the live state must still equal a fold of what was journaled.
            clock.advance(0.02)
            with pytest.raises(swarmlog.ConflictError), run.batch() as b:
                b.put(f"doc/{i % 120:03d}", {"never": i}, ttl=0.01)
                b.delete(f"doc/{(i + 1) % 120:03d}")
                b.append_event("observation", {"never": i})
                b.put("doc/000", 0, expected_version=10**9)
    runs[0].end("ok", summary={"done": True})
    runs[1].end("error")


@pytest.fixture(scope="module")
def journal_copy(tmp_path_factory):
    """A closed store written by the workload, its live digests, and a way to copy it."""
    root = tmp_path_factory.mktemp("det") / "store"
    clock = TestClock()
    mem = open_local_clocked(str(root), clock, swarmlog.Settings(snapshot_every_events=SNAPSHOT_EVERY))
    ns = mem.namespace(NAMESPACE)
    write_workload(ns, clock)
    live = {
        "head": ns.head(),
        "digest": ns.digest(),
        "at": {seq: ns.at(seq).digest() for seq in PROBE_SEQS},
        "at_head": ns.at(ns.head()).digest(),
    }
    assert_store_sound(ns)
    mem.close()
    counter = iter(range(1_000_000))

    def copy() -> str:
        dst = tmp_path_factory.mktemp(f"copy{next(counter)}") / "store"
        shutil.copytree(root, dst)
        return str(dst)

    return live, copy


def keep_snapshots(root: str, keep) -> list[int]:
    """Delete every snapshot whose seq ``keep`` rejects; returns the seqs kept."""
    journal = Journal(namespace_dir(os.path.abspath(root), NAMESPACE))
    try:
        snaps = journal.raw_column("snapshots")
        for key in list(snaps.keys()):
            if not keep(int.from_bytes(key, "big")):
                del snaps[key]
        return sorted(int.from_bytes(k, "big") for k in snaps.keys())  # noqa: SIM118 - Rdict iterates items
    finally:
        journal.close()


def reopened_digest(root: str) -> tuple[str, int, list[str]]:
    with swarmlog.open_local(root) as mem:
        ns = mem.namespace(NAMESPACE)
        engine = mem._backend.engine(NAMESPACE)
        return ns.digest(), engine._newest_snapshot_seq(), list(engine.recovery_notes)


def test_the_workload_is_big_enough_to_matter(journal_copy):
    live, _ = journal_copy
    assert live["head"] > max(PROBE_SEQS)
    assert live["at_head"] == live["digest"]
    assert len(set(live["at"].values())) == len(PROBE_SEQS)


def test_a_full_replay_gives_the_live_digest(journal_copy):
    live, copy = journal_copy
    root = copy()
    assert keep_snapshots(root, lambda seq: False) == []
    digest, snapshot_seq, notes = reopened_digest(root)
    assert (snapshot_seq, notes) == (0, [])
    assert digest == live["digest"]


def test_the_snapshot_at_the_head_gives_the_live_digest(journal_copy):
    live, copy = journal_copy
    root = copy()
    digest, snapshot_seq, notes = reopened_digest(root)
    assert (snapshot_seq, notes) == (live["head"], [])
    assert digest == live["digest"]


def test_every_older_snapshot_plus_its_tail_gives_the_live_digest(journal_copy):
    live, copy = journal_copy
    kept = keep_snapshots(copy(), lambda seq: True)
    older = [seq for seq in kept if seq < live["head"]]
    assert older, kept
    for newest in older:
        root = copy()
        assert keep_snapshots(root, lambda seq, newest=newest: seq <= newest)[-1] == newest
        digest, snapshot_seq, notes = reopened_digest(root)
        assert (snapshot_seq, notes) == (newest, [])  # recovery began at it and replayed the tail
        assert digest == live["digest"]


def test_past_views_give_the_digests_they_had_live(journal_copy):
    live, copy = journal_copy
    root = copy()
    keep_snapshots(root, lambda seq: seq % 2 == 0)
    with swarmlog.open_local(root) as mem:
        ns = mem.namespace(NAMESPACE)
        assert {seq: ns.at(seq).digest() for seq in PROBE_SEQS} == live["at"]


_CHILD = """
import json, sys
import swarmlog
with swarmlog.open_local(sys.argv[1]) as mem:
    ns = mem.namespace(sys.argv[2])
    seqs = json.loads(sys.argv[3])
    print(json.dumps({"digest": ns.digest(), "at": {str(s): ns.at(s).digest() for s in seqs},
                      "verify": ns.verify(projections=True).ok}))
"""


def digest_in_subprocess(root: str, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, root, NAMESPACE, json.dumps(PROBE_SEQS)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("snapshots", ["none", "older"])
def test_processes_with_different_hash_seeds_fold_the_same_digest(journal_copy, snapshots):
    live, copy = journal_copy
    results = []
    for hash_seed in ("0", "4242"):
        root = copy()
        if snapshots == "none":
            keep_snapshots(root, lambda seq: False)
        else:
            keep_snapshots(root, lambda seq: seq < live["head"])
        results.append(digest_in_subprocess(root, hash_seed))
    want = {"digest": live["digest"], "at": {str(s): d for s, d in live["at"].items()}, "verify": True}
    assert results == [want, want]
