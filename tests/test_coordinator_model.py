"""Property test: the coordinator against a plain in-memory model, with crash-and-reopen steps."""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from coordination import CoordinatorEngine, Lease
from journal.errors import LeaseError
from tests.coord_helpers import FakeClock, assert_coordinator_sound

NAMES = st.sampled_from(["a", "b", "c"])
HOLDERS = st.sampled_from(["h1", "h2"])
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
TTLS = st.sampled_from([1.0, 2.5, 10.0])


class CoordinatorModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="coord-model-")
        self.clock = FakeClock()
        self.engine = CoordinatorEngine(self.dir + "/c", clock=self.clock)
        self.records: dict[str, tuple] = {}  # name -> (value, version); absent when missing
        self.high: dict[str, int] = {}  # name -> highest version ever
        self.leases: dict[str, tuple] = {}  # name -> (holder, token, expires_at)
        self.grants: list[Lease] = []
        self.last_token = 0

    def teardown(self):
        try:
            if not self.engine.closed:
                assert_coordinator_sound(self.engine)
        finally:
            self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _version(self, name):
        return self.records[name][1] if name in self.records else 0

    def _held(self, name):
        lease = self.leases.get(name)
        return lease if lease is not None and self.clock.t < lease[2] else None

    @initialize(name=NAMES, holder=HOLDERS, ttl=TTLS)
    def first_grant(self, name, holder, ttl):
        # Start with a lease out, so renewals and releases have something to work on early.
        self.acquire(name, holder, ttl)

    # -- records -------------------------------------------------------------------------------

    @rule(name=NAMES, value=VALUES, offset=st.sampled_from([0, 0, 0, 1, -1]), absent=st.booleans())
    def cas(self, name, value, offset, absent):
        expected = 0 if absent else max(self._version(name) + offset, 0)
        ok, rec = self.engine.cas(name, expected, value)
        assert ok == (expected == self._version(name))
        if ok:
            version = self.high.get(name, 0) + 1
            self.high[name] = version
            self.records[name] = (value, version)
        assert (rec.value, rec.version) == self.records.get(name, (None, 0))

    @rule(name=NAMES, value=VALUES)
    def put(self, name, value):
        version = self.high.get(name, 0) + 1
        self.high[name] = version
        self.records[name] = (value, version)
        assert self.engine.put(name, value).version == version

    @rule(name=NAMES, exact=st.booleans())
    def delete(self, name, exact):
        expected = self._version(name) if exact else None
        ok, _ = self.engine.delete(name, expected)
        assert ok == (name in self.records)
        self.records.pop(name, None)

    # -- leases --------------------------------------------------------------------------------

    @rule(name=NAMES, holder=HOLDERS, ttl=TTLS)
    def acquire(self, name, holder, ttl):
        held = self._held(name)
        lease = self.engine.acquire_lease(name, holder, ttl)
        if held is not None and held[0] != holder:
            assert lease is None
            return
        assert lease is not None and lease.token > self.last_token
        self.last_token = lease.token
        self.leases[name] = (holder, lease.token, self.clock.t + ttl)
        self.grants.append(lease)

    @rule(data=st.data())
    def renew(self, data):
        if not self.grants:
            return
        lease = data.draw(st.sampled_from(self.grants))
        held = self._held(lease.name)
        if held is not None and held[1] == lease.token:
            renewed = self.engine.renew_lease(lease)
            assert renewed.token == lease.token
            self.leases[lease.name] = (lease.holder, lease.token, self.clock.t + lease.ttl)
        else:
            try:
                self.engine.renew_lease(lease)
            except LeaseError:
                pass
            else:
                raise AssertionError("renewed a lease that is not held")

    @rule(data=st.data())
    def release(self, data):
        if not self.grants:
            return
        lease = data.draw(st.sampled_from(self.grants))
        held = self._held(lease.name)
        expect = held is not None and held[1] == lease.token
        assert self.engine.release_lease(lease) is expect
        if expect:
            del self.leases[lease.name]

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def expire_due(self):
        due = sorted(n for n, lease in self.leases.items() if self.clock.t >= lease[2])
        assert sorted(self.engine.expire_due()) == due
        for name in due:
            del self.leases[name]

    # -- restarts ------------------------------------------------------------------------------

    @rule(snapshot=st.booleans())
    def reopen(self, snapshot):
        self.engine.close(snapshot=snapshot)
        self.engine = CoordinatorEngine(self.dir + "/c", clock=self.clock)

    @invariant()
    def matches_the_model(self):
        for name in ("a", "b", "c"):
            rec = self.engine.read_state(name)
            assert (rec.value, rec.version) == self.records.get(name, (None, 0))
            held = self._held(name)
            assert self.engine.lease_status(name).holder == (held[0] if held else None)


CoordinatorModel.TestCase.settings = settings(max_examples=20, stateful_step_count=30, deadline=None)
TestCoordinatorModel = CoordinatorModel.TestCase
