"""Compare-and-swap records: semantics, durability across reopen, validation, write ids."""

from __future__ import annotations

import math
import threading
import time

import pytest

from coordination import CoordinatorEngine, Record
from journal.errors import ConflictError, NamespaceUnavailable, ValidationError
from journal.settings import Settings
from tests.coord_helpers import assert_coordinator_sound


@pytest.fixture
def coord_path(tmp_path) -> str:
    return str(tmp_path / "coordinator")


@pytest.fixture
def coord(coord_path):
    engine = CoordinatorEngine(coord_path)
    yield engine
    engine.close()


def test_an_absent_record_reads_as_version_zero_with_no_value(coord):
    assert coord.read_state("leader/planner") == Record(
        name="leader/planner", value=None, version=0, revision=0
    )
    assert not coord.read_state("leader/planner").exists
    assert coord.head() == 0


def test_expected_version_zero_creates_only_when_absent(coord):
    ok, rec = coord.cas("leader/planner", 0, "agent-7")
    assert ok
    assert (rec.value, rec.version) == ("agent-7", 1)
    ok, current = coord.cas("leader/planner", 0, "agent-8")
    assert not ok
    assert current == rec
    assert coord.read_state("leader/planner") == rec
    assert_coordinator_sound(coord)


def test_a_cas_succeeds_only_from_the_current_version_and_bumps_it(coord):
    _, v1 = coord.cas("config", 0, {"replicas": 1})
    ok, v2 = coord.cas("config", v1.version, {"replicas": 2})
    assert ok and v2.version == v1.version + 1
    assert v2.revision > v1.revision
    ok, stale = coord.cas("config", v1.version, {"replicas": 3})
    assert not ok
    assert stale == v2
    assert coord.read_state("config").value == {"replicas": 2}
    assert_coordinator_sound(coord)


def test_a_failed_cas_writes_nothing(coord):
    coord.cas("k", 0, 1)
    head = coord.head()
    for expected in (0, 2, 7):
        ok, _ = coord.cas("k", expected, "nope")
        assert not ok
    assert coord.head() == head
    assert_coordinator_sound(coord)


def test_put_writes_whatever_the_version(coord):
    first = coord.put("k", "a")
    second = coord.put("k", "b")
    assert (first.version, second.version) == (1, 2)
    assert coord.read_state("k").value == "b"
    assert_coordinator_sound(coord)


def test_versions_never_repeat_across_a_delete_and_a_re_create(coord):
    _, v1 = coord.cas("k", 0, "first")
    coord.put("k", "second")
    ok, gone = coord.delete("k", expected_version=2)
    assert ok and gone.version == 0 and gone.value is None and not gone.exists
    ok, again = coord.cas("k", 0, "third")
    assert ok
    assert again.version == 3  # above every version the name had before: no ABA
    ok, _ = coord.cas("k", v1.version, "stale")
    assert not ok
    assert_coordinator_sound(coord)


def test_delete_refuses_an_absent_record_or_a_wrong_version_and_writes_nothing(coord):
    ok, rec = coord.delete("missing")
    assert not ok and rec.version == 0
    coord.put("k", 1)
    head = coord.head()
    ok, rec = coord.delete("k", expected_version=5)
    assert not ok and rec.version == 1
    assert coord.head() == head
    assert_coordinator_sound(coord)


def test_values_come_back_as_msgpack_gives_them_and_callers_cannot_mutate_the_store(coord):
    value = {"list": [1, 2, {"x": None}], "bytes": b"\x00\x01", "float": 1.5, "tuple": (1, 2)}
    _, rec = coord.cas("v", 0, value)
    rec.value["list"].append("mutated")
    stored = coord.read_state("v").value
    assert stored == {"list": [1, 2, {"x": None}], "bytes": b"\x00\x01", "float": 1.5, "tuple": [1, 2]}
    assert_coordinator_sound(coord)


def test_records_versions_and_revisions_survive_a_reopen(coord_path):
    engine = CoordinatorEngine(coord_path)
    written = {}
    for i in range(20):
        name = f"rec/{i % 4}"
        written[name] = engine.put(name, {"i": i})
    engine.delete("rec/3")
    digest = engine.digest()
    engine.close()

    engine = CoordinatorEngine(coord_path)
    assert engine.digest() == digest
    for name, rec in written.items():
        if name == "rec/3":
            assert engine.read_state(name).version == 0
        else:
            assert engine.read_state(name) == rec
    ok, rec = engine.cas("rec/0", written["rec/0"].version, "after")
    assert ok and rec.version == written["rec/0"].version + 1
    assert_coordinator_sound(engine)
    engine.close()


def test_recovery_replays_the_tail_after_the_newest_snapshot(coord_path):
    settings = Settings(snapshot_every_events=7)
    engine = CoordinatorEngine(coord_path, settings)
    for i in range(30):
        engine.put(f"k{i % 3}", i)
    snapshots = [seq for seq, _ in engine.journal.snapshots()]
    assert snapshots and max(snapshots) < engine.head()
    digest = engine.digest()
    engine.close(snapshot=False)  # the tail after the last snapshot must replay

    engine = CoordinatorEngine(coord_path, settings)
    assert engine.digest() == digest
    assert engine.read_state("k2").value == 29
    assert engine.recovery_notes == []
    assert_coordinator_sound(engine)
    engine.close()


def test_a_damaged_snapshot_is_skipped_and_the_journal_folded_instead(coord_path):
    engine = CoordinatorEngine(coord_path)
    for i in range(10):
        engine.put("k", i)
    digest = engine.digest()
    engine.close()  # takes a snapshot at the head
    engine = CoordinatorEngine(coord_path)
    column = engine.journal.raw_column("snapshots")
    for key in list(column.keys()):
        blob = bytearray(column[key])
        blob[-1] ^= 0xFF
        column[key] = bytes(blob)
    engine.close(snapshot=False)

    engine = CoordinatorEngine(coord_path)
    assert engine.digest() == digest
    assert any("skipped coordinator snapshot" in note for note in engine.recovery_notes)
    assert_coordinator_sound(engine)
    engine.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.cas("", 0, 1), "name must be a non-empty string"),
        (lambda c: c.cas(7, 0, 1), "name must be a non-empty string"),
        (lambda c: c.cas("a\0b", 0, 1), "NUL"),
        (lambda c: c.cas("k", -1, 1), "expected_version must be an int >= 0"),
        (lambda c: c.cas("k", True, 1), "expected_version must be an int >= 0"),
        (lambda c: c.cas("k", 1.0, 1), "expected_version must be an int >= 0"),
        (lambda c: c.cas("k", 0, object()), "cannot be stored"),
        (lambda c: c.cas("k", 0, {1, 2}), "cannot be stored"),
        (lambda c: c.cas("k", 0, 2**70), "cannot be stored"),
        (lambda c: c.put("k", lambda: None), "cannot be stored"),
        (lambda c: c.cas("k", 0, 1, agent=""), "agent must be a non-empty string"),
        (lambda c: c.cas("k", 0, 1, write_id=5), "write_id must be a non-empty string"),
        (lambda c: c.delete("k", expected_version="1"), "expected_version must be an int >= 0"),
        (lambda c: c.read_state(None), "name must be a non-empty string"),
        (lambda c: c.cas("k", 0, "x" * (4 * 1024 * 1024 + 1)), "Settings.max_record_bytes"),
        (lambda c: c.wait_changed("k", 0, math.nan), "timeout must be"),
        (lambda c: c.changed_since("k", 0, kind="doc"), "kind must be"),
    ],
)
def test_bad_input_is_refused_with_a_validation_error_and_nothing_is_written(coord, call, message):
    coord.put("k", "before")
    head = coord.head()
    with pytest.raises(ValidationError, match=message):
        call(coord)
    assert coord.head() == head
    assert coord.read_state("k").value == "before"
    assert_coordinator_sound(coord)


def test_a_retried_write_id_gets_the_original_answer_and_writes_nothing(coord):
    ok, first = coord.cas("k", 0, "v1", write_id="w-1")
    coord.put("k", "v2")
    head = coord.head()
    # The retry comes after a newer write: it must still answer what the first call got.
    assert coord.cas("k", 0, "v1", write_id="w-1") == (ok, first)
    assert coord.head() == head
    assert coord.read_state("k").value == "v2"
    assert_coordinator_sound(coord)


def test_a_write_id_is_remembered_across_a_reopen(coord_path):
    engine = CoordinatorEngine(coord_path)
    rec = engine.put("k", "once", write_id="w-put")
    engine.close()
    engine = CoordinatorEngine(coord_path)
    head = engine.head()
    assert engine.put("k", "once", write_id="w-put") == rec
    assert engine.head() == head
    assert_coordinator_sound(engine)
    engine.close()


def test_a_write_id_reused_for_a_different_call_is_a_conflict(coord):
    coord.put("k", "a", write_id="w-1")
    head = coord.head()
    with pytest.raises(ConflictError, match="already used for a different coordinator call"):
        coord.put("k", "b", write_id="w-1")
    with pytest.raises(ConflictError):
        coord.cas("k", 0, "a", write_id="w-1")
    assert coord.head() == head
    assert_coordinator_sound(coord)


def test_a_failed_cas_with_a_write_id_is_decided_again_on_retry(coord):
    coord.put("k", "a")
    ok, _ = coord.cas("k", 0, "b", write_id="w-retry")
    assert not ok
    coord.delete("k")
    ok, rec = coord.cas("k", 0, "b", write_id="w-retry")
    assert ok and rec.value == "b"
    assert_coordinator_sound(coord)


def test_a_second_engine_on_the_same_directory_is_refused_while_one_is_open(coord, coord_path):
    with pytest.raises(NamespaceUnavailable):
        CoordinatorEngine(coord_path)


def _start(target, *args, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def _wait_until(predicate) -> None:
    deadline = time.monotonic() + 10.0
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_calls_queued_behind_a_commit_share_one_group_and_a_repeated_write_id_counts_once(coord):
    answers: dict[str, object] = {}

    def call(label, *args, **kwargs):
        answers[label] = coord.cas(*args, **kwargs)

    # Hold the engine's lock so that the first call leads a group and blocks, while the next
    # three queue up behind it; they then form the following group together.
    with coord._lock:
        threads = [_start(call, "lead", "a", 0, "lead")]
        _wait_until(lambda: len(coord._queue) == 1)
        threads += [
            _start(call, "first", "b", 0, "x", write_id="w-same"),
            _start(call, "again", "b", 0, "x", write_id="w-same"),
            _start(call, "other", "c", 0, "y"),
        ]
        _wait_until(lambda: len(coord._queue) == 4)
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive()
    assert answers["first"] == answers["again"]
    assert answers["first"][0] and answers["other"][0] and answers["lead"][0]
    assert coord.head() == 3  # the repeated write id wrote nothing
    commits = list(coord.journal.raw_column("events").keys())
    assert len(commits) == 2  # the lead's group, then one group of the three queued calls
    assert_coordinator_sound(coord)


def test_a_failed_journal_write_answers_no_one_and_leaves_nothing_behind(coord_path):
    engine = CoordinatorEngine(coord_path)
    engine.put("k", "durable")
    engine.journal.close()  # the store fails under the engine
    with pytest.raises(NamespaceUnavailable):
        engine.cas("k", 1, "lost")
    with pytest.raises(NamespaceUnavailable):
        engine.read_state("k")  # no one reads a state the journal does not hold
    engine.close()
    engine = CoordinatorEngine(coord_path)
    assert engine.read_state("k").value == "durable"
    assert_coordinator_sound(engine)
    engine.close()
