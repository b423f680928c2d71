"""SIGKILL a process that grants leases and CAS-writes records with fsync durability: every
acknowledged call is in the journal after a reopen, and fencing tokens keep growing."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

from coordination import CoordinatorEngine
from coordination.state import GRANT, PUT
from journal.codec import unpack_value
from journal.records import PAYLOAD, TYPE
from tests.coord_helpers import assert_coordinator_sound

ROUNDS = 3
ACKS_BEFORE_KILL = 120  # acknowledged calls read from the child before it is killed
WAIT_S = 60.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_child(path: str, mode: str, kill_after: int | None) -> list[str]:
    """Run the child; kill it with SIGKILL after ``kill_after`` acknowledgement lines (or let it
    kill itself). Returns the lines it printed: the calls it had answered."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.coord_crash_child", path, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(child.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + WAIT_S
    try:
        while kill_after is None or len(lines) < kill_after:
            assert time.monotonic() < deadline, f"the child printed only {len(lines)} lines"
            if not sel.select(timeout=1.0):
                continue
            line = child.stdout.readline()
            if not line:
                break  # the child is gone
            lines.append(line.strip())
        if kill_after is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(WAIT_S)
        assert child.returncode == -signal.SIGKILL
    finally:
        sel.close()
        if child.poll() is None:
            child.kill()
            child.wait(WAIT_S)
        child.stdout.close()
    return lines


def _journaled(engine: CoordinatorEngine) -> tuple[set, dict]:
    """``{(name, version, value)}`` of every journaled put, ``{token: name}`` of every grant."""
    puts, grants = set(), {}
    for _seq, _digest, canonical in engine.journal.iter_canonical():
        f = unpack_value(canonical)
        p = f[PAYLOAD]
        if f[TYPE] == PUT:
            puts.add((p["name"], p["version"], p["value"]))
        elif f[TYPE] == GRANT:
            grants[p["token"]] = p["name"]
    return puts, grants


def _acks(lines: list[str]) -> tuple[list, list]:
    cas, grants = [], []
    for line in lines:
        kind, *rest = line.split()
        if kind == "C":
            cas.append((rest[0], int(rest[1]), int(rest[2])))
        else:
            grants.append((rest[0], int(rest[1])))
    return cas, grants


def test_every_acknowledged_grant_and_cas_survives_sigkill_and_tokens_keep_growing(tmp_path):
    path = str(tmp_path / "coordinator")
    acked_tokens: list[int] = []
    for _round in range(ROUNDS):
        lines = _run_child(path, "work", kill_after=ACKS_BEFORE_KILL)
        cas, grants = _acks(lines)
        assert cas and grants
        acked_tokens += [token for _, token in grants]
        with CoordinatorEngine(path) as engine:
            puts, journaled_grants = _journaled(engine)
            assert set(cas) <= puts, "an acknowledged CAS is missing after the crash"
            for name, token in grants:
                assert journaled_grants.get(token) == name, f"acknowledged grant {token} is missing"
            for name, version, _ in cas:
                assert engine.read_state(name).version >= version
            after = engine.acquire_lease("lease/after-crash", "parent", 30.0)
            assert after.token > max(journaled_grants)
            acked_tokens.append(after.token)
            assert_coordinator_sound(engine)
    assert acked_tokens == sorted(set(acked_tokens)), "tokens must only grow across crashes"


def test_a_grant_journaled_but_never_answered_still_raises_the_next_token(tmp_path):
    path = str(tmp_path / "coordinator")
    lines = _run_child(path, "die-after-grant", kill_after=None)
    _, grants = _acks(lines)
    assert [name for name, _ in grants] == ["lease/0", "lease/1", "lease/2"]
    with CoordinatorEngine(path) as engine:
        _, journaled = _journaled(engine)
        unanswered = max(journaled)
        assert journaled[unanswered] == "lease/last"
        assert unanswered > max(token for _, token in grants)
        # The grant the child never answered still holds its lease, and its token is spent.
        assert engine.lease_status("lease/last").token == unanswered
        nxt = engine.acquire_lease("lease/next", "parent", 30.0)
        assert nxt.token > unanswered
        assert_coordinator_sound(engine)
