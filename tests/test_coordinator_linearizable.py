"""CAS records are linearizable under concurrency, across restarts and lost answers.

Threads read, write, CAS and delete a few records while the engine is closed and reopened under
them; every call is recorded with its invoke and return time. Calls cut off by a close, and a
few answers thrown away on purpose (a reply lost on the wire), count as "may have happened".
The history is then checked with the WGL search in ``tests.linearizability``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time

from coordination import CoordinatorEngine
from journal.errors import NamespaceUnavailable
from tests.coord_helpers import assert_coordinator_sound
from tests.linearizability import CAS, DELETE, READ, WRITE, Op, check

THREADS = 6
OPS_PER_THREAD = 150
KEYS = ("r0", "r1", "r2")
RESTARTS = 3
LOST_ANSWER_RATE = 0.05
WAIT_S = 30.0


class Restartable:
    """The engine the workers share, closed and reopened by the test under them."""

    def __init__(self, path: str):
        self.path = path
        self.engine = CoordinatorEngine(path)
        self.generation = 0
        self.cv = threading.Condition()

    def current(self) -> tuple[CoordinatorEngine, int]:
        with self.cv:
            return self.engine, self.generation

    def restart(self) -> None:
        self.engine.close(snapshot=self.generation % 2 == 0)
        engine = CoordinatorEngine(self.path)
        with self.cv:
            self.engine = engine
            self.generation += 1
            self.cv.notify_all()

    def wait_reopened(self, generation: int) -> None:
        with self.cv:
            assert self.cv.wait_for(lambda: self.generation > generation, WAIT_S), "no reopen came"


def _worker(box: Restartable, tid: int, history: list, progress: list, progress_cv) -> None:
    rng = random.Random(1000 + tid)
    last_seen: dict[str, int] = {}
    for i in range(OPS_PER_THREAD):
        key = rng.choice(KEYS)
        kind = rng.choices((READ, WRITE, CAS, DELETE), weights=(40, 20, 32, 8))[0]
        value = f"t{tid}-{i}"
        if kind == CAS:
            arg = (last_seen.get(key, 0) if rng.random() < 0.8 else rng.randint(0, 3), value)
        elif kind == DELETE:
            arg = last_seen.get(key) if rng.random() < 0.7 else None
        else:
            arg = value if kind == WRITE else None
        engine, generation = box.current()
        invoke = time.monotonic_ns()
        try:
            if kind == READ:
                rec = engine.read_state(key)
                result = (rec.value, rec.version)
            elif kind == WRITE:
                rec = engine.put(key, value)
                result = rec.version
            elif kind == CAS:
                ok, rec = engine.cas(key, arg[0], value)
                result = (ok, rec.value, rec.version)
            else:
                ok, rec = engine.delete(key, arg)
                result = (ok, rec.value, rec.version)
            ret = time.monotonic_ns()
            last_seen[key] = rec.version
            if kind != READ and rng.random() < LOST_ANSWER_RATE:
                ret, result = None, None  # the answer was lost on its way back
        except NamespaceUnavailable:
            ret, result = None, None
            box.wait_reopened(generation)
        history.append(Op(process=tid, key=key, kind=kind, invoke=invoke, ret=ret, arg=arg, result=result))
        with progress_cv:
            progress[0] += 1
            progress_cv.notify_all()


def _record_history(path: str) -> tuple[list[Op], Restartable]:
    box = Restartable(path)
    history: list[Op] = []  # list.append is atomic under the GIL
    progress = [0]
    progress_cv = threading.Condition()
    workers = [
        threading.Thread(target=_worker, args=(box, tid, history, progress, progress_cv), daemon=True)
        for tid in range(THREADS)
    ]
    for w in workers:
        w.start()
    total = THREADS * OPS_PER_THREAD
    for k in range(1, RESTARTS + 1):
        with progress_cv:
            assert progress_cv.wait_for(lambda k=k: progress[0] >= k * total // (RESTARTS + 1), WAIT_S)
        box.restart()
    for w in workers:
        w.join(WAIT_S)
        assert not w.is_alive()
    engine, _ = box.current()
    for key in KEYS:  # final reads pin down which unanswered writes happened
        invoke = time.monotonic_ns()
        rec = engine.read_state(key)
        history.append(Op("final", key, READ, invoke, time.monotonic_ns(), None, (rec.value, rec.version)))
    return history, box


def test_concurrent_cas_across_restarts_and_lost_answers_is_linearizable(tmp_path):
    history, box = _record_history(str(tmp_path / "coordinator"))
    assert box.generation == RESTARTS
    assert len(history) == THREADS * OPS_PER_THREAD + len(KEYS)
    unknown = [op for op in history if op.ret is None]
    assert unknown, "the history should hold calls with unknown outcomes"
    for key in KEYS:
        assert any(op.key == key and op.kind == CAS and op.ret and op.result[0] for op in history)

    verdict = check(history)
    assert verdict.ok, verdict

    # The same history with one read made stale must be refused: the check has teeth here too.
    stale = _make_one_read_stale(history)
    assert stale is not None, "the history should hold a read after two completed writes"
    assert not check(stale).ok

    engine, _ = box.current()
    assert_coordinator_sound(engine)
    engine.close()


def _make_one_read_stale(history: list[Op]) -> list[Op] | None:
    """Replace the answer of one read with version 1's value, after a later version was
    acknowledged before the read began (impossible: versions only grow until a delete, and a
    delete reads as version 0)."""
    writes = [
        op
        for op in history
        if op.ret is not None and ((op.kind == WRITE) or (op.kind == CAS and op.result[0]))
    ]
    for i, read in enumerate(history):
        if read.kind != READ or read.ret is None:
            continue
        before = [w for w in writes if w.key == read.key and w.ret < read.invoke]
        first = [w for w in before if _version(w) == 1]
        if first and max(_version(w) for w in before) >= 2:
            value = first[0].arg if first[0].kind == WRITE else first[0].arg[1]
            changed = list(history)
            changed[i] = dataclasses.replace(read, result=(value, 1))
            return changed
    return None


def _version(op: Op) -> int:
    return op.result if op.kind == WRITE else op.result[2]
