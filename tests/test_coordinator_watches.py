"""Watches: change counters, blocking waits with timeouts, lease expiry as a change, hooks."""

from __future__ import annotations

import threading

import pytest

from coordination import CoordinatorEngine, LeaseStatus, Record
from journal.errors import NamespaceUnavailable
from tests.coord_helpers import FakeClock, assert_coordinator_sound

WAIT_S = 10.0  # upper bound for every wait that is expected to end early


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def coord(tmp_path, clock):
    engine = CoordinatorEngine(str(tmp_path / "coordinator"), clock=clock)
    yield engine
    engine.close()


class Waiter(threading.Thread):
    """Runs one ``wait_changed`` call in a thread and keeps what it returned or raised."""

    def __init__(self, engine, *args, **kwargs):
        super().__init__(daemon=True)
        self.engine, self.args, self.kwargs = engine, args, kwargs
        self.started_waiting = threading.Event()
        self.result = None
        self.error = None

    def run(self):
        self.started_waiting.set()
        try:
            self.result = self.engine.wait_changed(*self.args, **self.kwargs)
        except Exception as exc:
            self.error = exc

    def finish(self):
        self.join(WAIT_S)
        assert not self.is_alive(), "the waiter did not return"
        return self.result


def test_changed_since_reports_a_change_only_after_the_given_revision(coord):
    assert coord.changed_since("k", 0) is None
    rec = coord.put("k", 1)
    assert coord.revision("k") == rec.revision
    assert coord.changed_since("k", 0) == rec
    assert coord.changed_since("k", rec.revision) is None
    coord.put("other", 2)
    assert coord.changed_since("k", rec.revision) is None  # other names do not count
    assert_coordinator_sound(coord)


def test_wait_changed_returns_at_once_when_the_record_already_changed(coord):
    rec = coord.put("k", 1)
    assert coord.wait_changed("k", 0, timeout=WAIT_S) == rec


def test_wait_changed_returns_none_when_nothing_changes_before_the_timeout(coord):
    rec = coord.put("k", 1)
    assert coord.wait_changed("k", rec.revision, timeout=0.05) is None
    assert coord.wait_changed("k", rec.revision, timeout=0) is None


def test_a_waiter_wakes_with_the_new_record_when_another_thread_writes_it(coord):
    rec = coord.put("k", 1)
    waiter = Waiter(coord, "k", rec.revision, WAIT_S)
    waiter.start()
    waiter.started_waiting.wait(WAIT_S)
    coord.put("unrelated", 0)
    ok, new = coord.cas("k", rec.version, 2)
    assert ok
    got = waiter.finish()
    assert isinstance(got, Record) and got.revision >= new.revision and got.value == 2
    assert_coordinator_sound(coord)


def test_a_lease_waiter_wakes_when_the_lease_is_released(coord):
    lease = coord.acquire_lease("election/planner", "a", 30.0)
    since = coord.lease_status("election/planner").revision
    waiter = Waiter(coord, "election/planner", since, WAIT_S, kind="lease")
    waiter.start()
    waiter.started_waiting.wait(WAIT_S)
    coord.release_lease(lease)
    got = waiter.finish()
    assert isinstance(got, LeaseStatus) and got.holder is None and got.token == lease.token
    assert_coordinator_sound(coord)


def test_a_lease_waiter_wakes_when_the_lease_expires_on_the_injected_clock(coord, clock):
    lease = coord.acquire_lease("lock/db", "a", 30.0)
    waiter = Waiter(coord, "lock/db", coord.revision("lock/db", kind="lease"), WAIT_S, kind="lease")
    waiter.start()
    waiter.started_waiting.wait(WAIT_S)
    clock.advance(30.0)
    # A host with an injected clock tells the engine that time moved (a real host's timer does it).
    assert coord.expire_due() == ["lock/db"]
    got = waiter.finish()
    assert got.holder is None and got.token == lease.token
    assert_coordinator_sound(coord)


def test_a_lease_waiter_notices_the_expiry_by_itself_on_the_real_clock(tmp_path):
    with CoordinatorEngine(str(tmp_path / "coordinator")) as coord:
        lease = coord.acquire_lease("lock/db", "a", 0.05)
        got = coord.wait_changed("lock/db", coord.revision("lock/db", kind="lease"), WAIT_S, kind="lease")
        assert got is not None and got.holder is None and got.token == lease.token
        assert list(coord.journal.type_seqs("lease.expire")) == [got.revision]
        assert_coordinator_sound(coord)


def test_closing_the_engine_wakes_waiters_with_namespace_unavailable(coord):
    waiter = Waiter(coord, "k", 0, WAIT_S)
    waiter.start()
    waiter.started_waiting.wait(WAIT_S)
    coord.close()
    waiter.finish()
    assert isinstance(waiter.error, NamespaceUnavailable)


def test_hooks_hear_of_every_change_after_it_is_visible_and_can_be_removed(coord, clock):
    heard = []

    def hook(kind, name, revision):
        # Called outside the lock: reading the engine here must work and see the change.
        seen = coord.revision(name, kind=kind)
        heard.append((kind, name, revision, seen))

    remove = coord.on_change(hook)
    rec = coord.put("k", 1)
    ok, _ = coord.cas("k", 0, 2)  # fails: nothing changes, nothing heard
    assert not ok
    lease = coord.acquire_lease("l", "a", 5.0)
    clock.advance(5)
    coord.expire_due()
    grant_rev = coord.lease_status("l").revision
    remove()
    coord.put("k", 3)
    assert [(k, n) for k, n, _, _ in heard] == [("record", "k"), ("lease", "l"), ("lease", "l")]
    assert heard[0][2] == rec.revision == heard[0][3]
    assert heard[1][2] < heard[2][2] == grant_rev
    assert lease.token == 1
    assert_coordinator_sound(coord)


def test_a_hook_that_raises_does_not_undo_or_block_the_change(coord):
    def broken(kind, name, revision):
        raise RuntimeError("hook bug")

    coord.on_change(broken)
    rec = coord.put("k", 1)
    assert coord.read_state("k") == rec
    assert_coordinator_sound(coord)
