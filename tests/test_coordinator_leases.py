"""Leases: grants, expiry by the coordinator's clock, renewals, releases and fencing tokens."""

from __future__ import annotations

import math

import pytest

from coordination import CoordinatorEngine, Lease, election_name, lock_name
from coordination.state import GRANT, CoordinatorState
from journal.errors import CorruptionError, LeaseError, ValidationError
from tests.coord_helpers import FakeClock, assert_coordinator_sound


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def coord_path(tmp_path) -> str:
    return str(tmp_path / "coordinator")


@pytest.fixture
def coord(coord_path, clock):
    engine = CoordinatorEngine(coord_path, clock=clock)
    yield engine
    engine.close()


def test_a_free_lease_is_granted_until_now_plus_ttl(coord, clock):
    lease = coord.acquire_lease("lock/db", "agent-7", 10.0)
    assert lease == Lease(name="lock/db", holder="agent-7", token=1, expires_at=clock.t + 10.0, ttl=10.0)
    status = coord.lease_status("lock/db")
    assert (status.holder, status.token, status.expires_at) == ("agent-7", 1, clock.t + 10.0)
    assert status.held
    assert_coordinator_sound(coord)


def test_a_held_lease_is_refused_to_others_until_it_expires(coord, clock):
    first = coord.acquire_lease("lock/db", "a", 10.0)
    head = coord.head()
    clock.advance(9.999)
    assert coord.acquire_lease("lock/db", "b", 10.0) is None
    assert coord.head() == head  # a refusal writes nothing
    clock.advance(0.001)  # exactly at expires_at the lease is over
    assert not coord.lease_status("lock/db").held
    second = coord.acquire_lease("lock/db", "b", 10.0)
    assert second is not None and second.holder == "b"
    assert second.token > first.token
    assert_coordinator_sound(coord)


def test_the_holder_re_acquiring_extends_the_lease_under_a_new_token(coord, clock):
    first = coord.acquire_lease("lock/db", "a", 10.0)
    clock.advance(5)
    again = coord.acquire_lease("lock/db", "a", 10.0)
    assert again.expires_at == clock.t + 10.0
    assert again.token > first.token
    # The old grant is fenced off: it can no longer be renewed or released.
    with pytest.raises(LeaseError, match="granted since"):
        coord.renew_lease(first)
    assert coord.release_lease(first) is False
    assert coord.lease_status("lock/db").holder == "a"
    assert_coordinator_sound(coord)


def test_renewal_keeps_the_token_and_moves_the_expiry(coord, clock):
    lease = coord.acquire_lease("lock/db", "a", 10.0)
    clock.advance(8)
    renewed = coord.renew_lease(lease)
    assert renewed.token == lease.token
    assert renewed.expires_at == clock.t + 10.0
    clock.advance(8)  # past the first expiry, inside the renewed one
    assert coord.acquire_lease("lock/db", "b", 10.0) is None
    longer = coord.renew_lease(renewed, ttl=30)
    assert (longer.ttl, longer.expires_at) == (30.0, clock.t + 30.0)
    assert_coordinator_sound(coord)


def test_renewing_an_expired_lease_is_refused_even_when_nobody_took_it(coord, clock):
    lease = coord.acquire_lease("lock/db", "a", 10.0)
    clock.advance(10)
    head = coord.head()
    with pytest.raises(LeaseError, match="expired at"):
        coord.renew_lease(lease)
    assert coord.head() == head
    assert_coordinator_sound(coord)


def test_renewing_a_lease_granted_since_to_someone_else_is_refused(coord, clock):
    lease = coord.acquire_lease("lock/db", "a", 10.0)
    clock.advance(11)
    coord.acquire_lease("lock/db", "b", 10.0)
    with pytest.raises(LeaseError, match="granted since to 'b'"):
        coord.renew_lease(lease)
    assert_coordinator_sound(coord)


def test_release_frees_the_lease_once_and_only_for_its_own_grant(coord, clock):
    lease = coord.acquire_lease("lock/db", "a", 10.0)
    assert coord.release_lease(lease) is True
    assert not coord.lease_status("lock/db").held
    head = coord.head()
    assert coord.release_lease(lease) is False
    assert coord.head() == head
    with pytest.raises(LeaseError, match="released or expired"):
        coord.renew_lease(lease)
    other = coord.acquire_lease("lock/db", "b", 10.0)
    assert coord.release_lease(lease) is False  # a stale grant cannot free the new holder's lease
    assert coord.lease_status("lock/db").holder == "b"
    clock.advance(10)
    assert coord.release_lease(other) is False  # expired: nothing to give up
    assert_coordinator_sound(coord)


def test_tokens_grow_strictly_over_every_grant_of_every_lease_and_across_reopens(coord_path, clock):
    tokens = []
    for _round in range(3):
        engine = CoordinatorEngine(coord_path, clock=clock)
        for i in range(12):
            lease = engine.acquire_lease(f"lease/{i % 3}", f"holder-{i}", 1.0)
            if lease is None:
                clock.advance(1.0)
                lease = engine.acquire_lease(f"lease/{i % 3}", f"holder-{i}", 1.0)
            tokens.append(lease.token)
        assert_coordinator_sound(engine)
        engine.close(snapshot=_round % 2 == 0)  # recover from a snapshot and from the journal
    assert tokens == sorted(set(tokens))
    assert len(tokens) == 36


def test_coordinator_time_never_goes_back_when_the_clock_steps_back_after_a_restart(coord_path, clock):
    engine = CoordinatorEngine(coord_path, clock=clock)
    lease = engine.acquire_lease("lock/db", "a", 10.0)
    engine.close()
    clock.set(clock.t - 3600)  # the clock stepped back an hour
    engine = CoordinatorEngine(coord_path, clock=clock)
    assert engine.now() == lease.expires_at - 10.0
    assert engine.lease_status("lock/db").holder == "a"
    assert engine.acquire_lease("lock/db", "b", 10.0) is None
    assert engine.renew_lease(lease).expires_at == lease.expires_at
    assert_coordinator_sound(engine)
    engine.close()


def test_expire_due_journals_the_expiry_of_leases_whose_time_is_up(coord, clock):
    a = coord.acquire_lease("lease/a", "x", 5.0)
    coord.acquire_lease("lease/b", "y", 50.0)
    assert coord.next_expiry() == a.expires_at
    assert coord.expire_due() == []
    clock.advance(5)
    before = coord.lease_status("lease/a").revision
    assert coord.expire_due() == ["lease/a"]
    status = coord.lease_status("lease/a")
    assert status.holder is None and status.token == a.token and status.revision > before
    assert coord.expire_due() == []
    assert coord.next_expiry() == clock.t + 45.0
    assert_coordinator_sound(coord)


def test_an_acquire_with_a_write_id_is_answered_once_even_across_a_reopen(coord_path, clock):
    engine = CoordinatorEngine(coord_path, clock=clock)
    lease = engine.acquire_lease("lock/db", "a", 10.0, write_id="grant-1")
    engine.close()
    engine = CoordinatorEngine(coord_path, clock=clock)
    head = engine.head()
    assert engine.acquire_lease("lock/db", "a", 10.0, write_id="grant-1") == lease
    assert engine.head() == head
    renewed = engine.renew_lease(lease, write_id="renew-1")
    clock.advance(1)
    assert engine.renew_lease(lease, write_id="renew-1") == renewed
    assert engine.release_lease(renewed, write_id="release-1") is True
    assert engine.release_lease(renewed, write_id="release-1") is True
    assert_coordinator_sound(engine)
    engine.close()


def test_lock_and_election_names_map_onto_plain_leases(coord, clock):
    leader = coord.acquire_lease(election_name("planner"), "agent-1", 10.0)
    assert coord.lease_status("election/planner").holder == "agent-1"
    assert coord.acquire_lease(election_name("planner"), "agent-2", 10.0) is None
    assert coord.release_lease(leader)  # resign
    successor = coord.acquire_lease(election_name("planner"), "agent-2", 10.0)
    assert successor.token > leader.token  # the new term fences the old leader's writes
    assert coord.acquire_lease(lock_name("db"), "agent-1", 10.0).name == "lock/db"
    assert_coordinator_sound(coord)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.acquire_lease("l", "h", 0), "ttl must be a positive, finite number"),
        (lambda c: c.acquire_lease("l", "h", -1.0), "ttl must be"),
        (lambda c: c.acquire_lease("l", "h", math.inf), "ttl must be"),
        (lambda c: c.acquire_lease("l", "h", math.nan), "ttl must be"),
        (lambda c: c.acquire_lease("l", "h", True), "ttl must be"),
        (lambda c: c.acquire_lease("l", "h", "5"), "ttl must be"),
        (lambda c: c.acquire_lease("l", "", 5), "holder must be a non-empty string"),
        (lambda c: c.acquire_lease("l", None, 5), "holder must be a non-empty string"),
        (lambda c: c.acquire_lease("", "h", 5), "name must be a non-empty string"),
        (lambda c: c.renew_lease({"name": "l", "token": 1}), "expected a Lease"),
        (lambda c: c.release_lease("l"), "expected a Lease"),
        (lambda c: c.renew_lease(c.lease_held, ttl=0), "ttl must be"),
        (lambda c: c.lease_status(""), "name must be"),
    ],
)
def test_bad_lease_input_is_refused_with_a_validation_error_and_nothing_is_written(coord, call, message):
    coord.lease_held = coord.acquire_lease("l", "h", 5.0)
    head = coord.head()
    with pytest.raises(ValidationError, match=message):
        call(coord)
    assert coord.head() == head
    assert coord.lease_status("l").holder == "h"
    assert_coordinator_sound(coord)


def _grant(seq: int, name: str, holder: str, token: int, at: float, ttl: float = 10.0) -> list:
    payload = {"name": name, "holder": holder, "token": token, "ttl": ttl, "expires_at": at + ttl, "at": at}
    return [seq, f"u-{seq}", seq, "coordinator", holder, None, GRANT, payload, None, None, b"", None]


def test_the_fold_refuses_a_journal_that_grants_a_held_lease_or_reuses_a_token():
    state = CoordinatorState()
    state.apply(_grant(1, "l", "a", 1, at=100.0))
    with pytest.raises(CorruptionError, match="while 'a' holds it"):
        state.apply(_grant(2, "l", "b", 2, at=105.0))
    with pytest.raises(CorruptionError, match="not above the last one"):
        state.apply(_grant(2, "other", "b", 1, at=105.0))
    with pytest.raises(CorruptionError, match="back in time"):
        state.apply(_grant(2, "other", "b", 2, at=99.0))
    state.apply(_grant(2, "l", "b", 2, at=110.0))  # expired by then: a valid grant
    assert state.leases["l"][0] == "b" and state.last_token == 2
