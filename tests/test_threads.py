"""Several threads share one in-process store: group commit loses, duplicates and reorders nothing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import swarmlog
from journal.codec import pack_value
from projections.commands import Put, Request, make_request, put_op
from tests.helpers import assert_store_sound

JOIN_TIMEOUT_S = 60


def run_threads(n: int, target: Callable[[int], None]) -> None:
    """Start ``n`` threads on ``target(i)`` together, wait for all (with a timeout), re-raise."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def body(i: int) -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT_S)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    if errors:
        raise errors[0]


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store):
    writers = 8
    writes_per_writer = 200
    ns = store.ns
    acked: dict[str, int] = {}  # write id -> version the writer was told
    lock = threading.Lock()

    def writer(i: int) -> None:
        run = ns.begin_run(f"writer-{i}", agent=f"agent-{i}")
        for j in range(writes_per_writer):
            write_id = f"w-{i}-{j}"
            version = run.put(f"w{i}/{j:04d}", {"writer": i, "n": j}, write_id=write_id)
            with lock:
                acked[write_id] = version

    run_threads(writers, writer)

    assert len(acked) == writers * writes_per_writer
    assert len(set(acked.values())) == len(acked)  # no two writes got the same seq
    events = ns.read_events()
    assert [e.seq for e in events] == list(range(1, ns.head() + 1))
    assert ns.head() == writers * (writes_per_writer + 1)
    # The writers' own write ids (the Ray client gives their begin_run an automatic "~" one).
    given = [e for e in events if e.write_id is not None and not e.write_id.startswith("~")]
    by_write_id = Counter(e.write_id for e in given)
    assert set(by_write_id) == set(acked)
    assert set(by_write_id.values()) == {1}  # every acknowledged write exactly once
    for e in given:
        assert acked[e.write_id] == e.seq
    for i in range(writers):
        run_events = ns.read_events(f"writer-{i}")
        # Each writer's own writes are journaled in the order it made them.
        assert [e.payload["value"]["n"] for e in run_events[1:]] == list(range(writes_per_writer))
        assert ns.list(f"w{i}/") == [f"w{i}/{j:04d}" for j in range(writes_per_writer)]
        assert ns.run_info(f"writer-{i}").events == writes_per_writer + 1
    for write_id, version in acked.items():
        _, i, j = write_id.split("-")
        entry = ns.entry(f"w{i}/{int(j):04d}")
        assert entry.version == version and entry.value == {"writer": int(i), "n": int(j)}
    assert_store_sound(ns)


def test_concurrent_retries_of_the_same_write_ids_append_each_once(store):
    threads = 6
    writes = 100
    ns = store.ns
    ns.begin_run("shared", agent="a")
    results: list[dict[str, int]] = [{} for _ in range(threads)]

    def sender(i: int) -> None:
        run = ns.run("shared")
        order = range(writes) if i % 2 == 0 else reversed(range(writes))
        for j in order:
            results[i][f"w{j}"] = run.put(f"k{j}", j, write_id=f"w{j}")

    run_threads(threads, sender)
    assert ns.head() == 1 + writes
    assert all(r == results[0] for r in results)  # everyone got the original result
    assert Counter(e.write_id for e in ns.read_events(types="kv.put")) == {f"w{j}": 1 for j in range(writes)}
    assert_store_sound(ns)


def test_conditional_increments_from_many_threads_lose_no_update(store):
    threads = 6
    increments_per_thread = 40
    ns = store.ns
    ns.begin_run("counter", agent="a").put("counter", 0)
    conflicts = Counter()

    def incrementer(i: int) -> None:
        run = ns.run("counter", agent=f"agent-{i}")
        for _ in range(increments_per_thread):
            for _attempt in range(10_000):
                entry = ns.entry("counter")
                try:
                    run.put("counter", entry.value + 1, expected_version=entry.version)
                    break
                except swarmlog.ConflictError as exc:
                    assert exc.key == "counter" and exc.expected == entry.version
                    assert exc.actual > entry.version
                    conflicts[i] += 1
            else:
                raise AssertionError("an increment never got through")

    run_threads(threads, incrementer)
    assert ns.get("counter") == threads * increments_per_thread
    puts = ns.read_events(types="kv.put")
    assert [e.payload["value"] for e in puts] == list(range(threads * increments_per_thread + 1))
    # Each successful put names the version it replaced: a chain with no forks.
    assert [e.payload["prev"] for e in puts[1:]] == [e.seq for e in puts[:-1]]
    assert_store_sound(ns)


def test_readers_never_see_state_the_journal_lacks(store):
    writers = 4
    writes_per_writer = 100
    ns = store.ns
    runs = [ns.begin_run(f"r{i}", agent="a") for i in range(writers)]
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            head = ns.head()
            for key in ns.list(limit=50):
                entry = ns.entry(key)
                # An entry written after ``head`` was read is fine; one the journal lacks is not.
                if entry is not None and entry.version > ns.head():
                    problems.append(f"{key} at version {entry.version} beyond head")
            tail = ns.read_events(after=max(0, head - 5), upto=head)
            if [e.seq for e in tail] != list(range(max(0, head - 5) + 1, head + 1)):
                problems.append(f"events up to head {head} read as {[e.seq for e in tail]}")

    def writer(i: int) -> None:
        for j in range(writes_per_writer):
            runs[i].put(f"k{i}-{j % 10}", j)

    reader_thread = threading.Thread(target=reader, daemon=True)
    reader_thread.start()
    try:
        run_threads(writers, writer)
    finally:
        stop.set()
        reader_thread.join(timeout=JOIN_TIMEOUT_S)
    assert not reader_thread.is_alive()
    assert problems == []
    assert ns.head() == writers * (writes_per_writer + 1)
    assert_store_sound(ns)


def test_threads_writing_batches_and_events_keep_every_batch_contiguous(store):
    writers = 6
    batches_per_writer = 30
    batch_size = 5
    ns = store.ns

    def writer(i: int) -> None:
        run = ns.begin_run(f"b{i}", agent="a")
        for j in range(batches_per_writer):
            with run.batch(write_id=f"b{i}-{j}") as b:
                for k in range(batch_size):
                    b.append_event("step", {"writer": i, "batch": j, "k": k})

    run_threads(writers, writer)
    events = ns.read_events(types="step")
    assert len(events) == writers * batches_per_writer * batch_size
    by_batch: dict[str, list[int]] = {}
    for e in events:
        by_batch.setdefault(e.write_id, []).append(e.seq)
    for seqs in by_batch.values():
        assert seqs == list(range(seqs[0], seqs[0] + batch_size))  # one commit, no interleaving
    assert_store_sound(ns)


def test_a_request_that_breaks_inside_a_group_commit_fails_alone(store):
    ns = store.ns
    ns.begin_run("r", agent="a")
    engine = store.engine()
    good = [make_request("r", "a", [put_op(f"k{i}", i)]) for i in range(3)]
    # Built by hand, past the checks of the op factories: its TTL does not fit in a record.
    bad = Request(run_id="r", agent="a", ops=[Put(key="bad", value=pack_value(1), ttl_ms=2**70)])
    results = engine.commit([good[0], bad, good[1], good[2]])
    assert results[0] == [2] and results[2] == [3] and results[3] == [4]
    assert isinstance(results[1], Exception)
    assert ns.head() == 4
    assert ns.list() == ["k0", "k1", "k2"]
    ns.run("r").put("after", 1)  # the engine still writes
    assert ns.head() == 5
    assert_store_sound(ns)
