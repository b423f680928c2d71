"""A Hypothesis state machine drives a store and a plain dict side by side, with close-and-reopen."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import swarmlog
from tests.helpers import NAMESPACE, assert_store_sound

KEYS = ["a", "b", "c", "dir/1", "dir/2", "dir/3"]
keys = st.sampled_from(KEYS)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
NEVER = 10**9  # an expected version no key reaches in these tests: the put fails
# One operation of a batch: (kind, key, value, fails) — a failing put expects a wrong version.
batch_ops = st.lists(
    st.tuples(st.sampled_from(["put", "delete", "event"]), keys, values, st.booleans()),
    min_size=1,
    max_size=5,
)


class StoreAgainstDict(RuleBasedStateMachine):
    """The store must always agree with ``model`` (key -> (value, version)) and ``head``."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="swarmlog-sm-")
        self.path = self.dir + "/store"
        self.mem = None
        self.model: dict[str, tuple] = {}
        self.head = 0
        self.runs = 0
        self.writes = 0
        self.last_put: tuple | None = None

    @initialize(snapshot_every=st.sampled_from([1, 2, 5, 50_000]))
    def open_store(self, snapshot_every: int) -> None:
        self.settings = swarmlog.Settings(snapshot_every_events=snapshot_every)
        self.mem = swarmlog.open_local(self.path, settings=self.settings)
        self.ns = self.mem.namespace(NAMESPACE)
        self._begin()

    def _begin(self) -> None:
        self.runs += 1
        self.run = self.ns.begin_run(f"run-{self.runs}", agent="hypothesis")
        self.head += 1

    def _version(self, key: str) -> int:
        return self.model[key][1] if key in self.model else 0

    # -- rules -----------------------------------------------------------------------------------

    @rule(key=keys, value=values)
    def put(self, key, value):
        self.writes += 1
        write_id = f"w{self.writes}"
        version = self.run.put(key, value, write_id=write_id)
        self.head += 1
        assert version == self.head
        self.model[key] = (value, version)
        self.last_put = (self.run.run_id, key, value, write_id, version)

    @precondition(lambda self: self.last_put is not None)
    @rule()
    def resending_a_put_returns_its_version_and_appends_nothing(self):
        run_id, key, value, write_id, version = self.last_put
        # Through a fresh handle, and even after its run ended or the store was reopened.
        assert self.ns.run(run_id).put(key, value, write_id=write_id) == version

    @rule(key=keys, value=values)
    def put_at_the_right_version(self, key, value):
        version = self.run.put(key, value, expected_version=self._version(key))
        self.head += 1
        assert version == self.head
        self.model[key] = (value, version)

    @rule(key=keys, value=values, off=st.integers(min_value=1, max_value=3), absent=st.booleans())
    def put_at_a_wrong_version_is_refused(self, key, value, off, absent):
        current = self._version(key)
        wrong = 0 if absent and current else current + off
        try:
            self.run.put(key, value, expected_version=wrong)
        except swarmlog.ConflictError as exc:
            assert (exc.key, exc.expected, exc.actual) == (key, wrong, current)
        else:
            raise AssertionError("a put at a wrong version went through")

    @rule(key=keys)
    def delete(self, key):
        existed = self.run.delete(key)
        assert existed == (key in self.model)
        if existed:
            self.head += 1
            del self.model[key]

    @rule(key=keys, off=st.integers(min_value=1, max_value=3))
    def delete_at_a_wrong_version_is_refused(self, key, off):
        current = self._version(key)
        try:
            self.run.delete(key, expected_version=current + off)
        except swarmlog.ConflictError as exc:
            assert (exc.key, exc.expected, exc.actual) == (key, current + off, current)
        else:
            raise AssertionError("a delete at a wrong version went through")

    @rule(payload=values)
    def append_event(self, payload):
        ev = self.run.append_event("note", payload)
        self.head += 1
        assert (ev.seq, ev.payload, ev.run_id) == (self.head, payload, self.run.run_id)

    @rule(ops=batch_ops)
    def batch(self, ops):
        # What the batch should do, worked out on a copy of the model.
        model, head, expected, fails = dict(self.model), self.head, [], False
        for kind, key, value, fail in ops:
            if kind == "put":
                if fail:
                    fails = True
                    break
                head += 1
                model[key] = (value, head)
                expected.append(head)
            elif kind == "delete":
                existed = key in model
                if existed:
                    head += 1
                    del model[key]
                expected.append(existed)
            else:
                head += 1
                expected.append(head)
        try:
            with self.run.batch() as b:
                for kind, key, value, fail in ops:
                    if kind == "put":
                        b.put(key, value, expected_version=NEVER if fail else None)
                    elif kind == "delete":
                        b.delete(key)
                    else:
                        b.append_event("note", value)
        except swarmlog.ConflictError:
            assert fails, "a batch without a failing operation was refused"
            return
        assert not fails, "a batch with a failing operation went through"
        results = [r.seq if isinstance(r, swarmlog.Event) else r for r in b.results]
        assert results == expected
        self.model, self.head = model, head

    @rule()
    def end_the_run_and_begin_another(self):
        info = self.run.end("ok")
        self.head += 1
        assert info.ended_seq == self.head
        self._begin()

    @rule(snapshot_every=st.sampled_from([1, 2, 3, 7, 50_000]))
    def close_and_reopen(self, snapshot_every):
        self.mem.close()
        self.settings = swarmlog.Settings(snapshot_every_events=snapshot_every)
        self.mem = swarmlog.open_local(self.path, settings=self.settings)
        self.ns = self.mem.namespace(NAMESPACE)
        self.run = self.ns.run(self.run.run_id)

    @precondition(lambda self: self.head > 0)
    @rule(data=st.data())
    def a_past_view_is_stable(self, data):
        seq = data.draw(st.integers(min_value=0, max_value=self.head))
        view = self.ns.at(seq)
        assert view.head() == seq
        assert view.read_events() == self.ns.read_events(upto=seq)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_store_equals_the_model(self):
        if self.mem is None:
            return
        assert self.ns.head() == self.head
        assert self.ns.list() == sorted(self.model)
        for key in KEYS:
            entry = self.ns.entry(key)
            if key in self.model:
                value, version = self.model[key]
                assert (entry.value, entry.version) == (value, version)
                assert self.ns.get(key) == value
            else:
                assert entry is None and self.ns.get(key) is None

    def teardown(self):
        try:
            if self.mem is not None:
                assert_store_sound(self.ns)
                self.mem.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


StoreAgainstDict.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_the_store_behaves_like_a_dict_across_reopens = StoreAgainstDict.TestCase
