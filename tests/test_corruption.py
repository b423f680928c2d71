"""Damaged bytes surface as CorruptionError, a refused open or a failed verify — never as other data."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

import swarmlog
from journal.codec import HASH_BYTES, build_chunk
from journal.snapshots import open_snapshot, seal_snapshot
from journal.store import Journal
from journal.verify import verify_journal
from swarmlog.local import namespace_dir
from tests.helpers import NAMESPACE, assert_store_sound, chunk_of, flip_record_byte

# -- helpers -------------------------------------------------------------------------------------


def ns_dir(root: str | Path, name: str = NAMESPACE) -> str:
    return namespace_dir(os.path.abspath(root), name)


@contextlib.contextmanager
def raw_journal(root: str | Path, name: str = NAMESPACE):
    """The journal of a closed store, opened without the engine (for tampering)."""
    journal = Journal(ns_dir(root, name))
    try:
        yield journal
    finally:
        journal.close()


def write_workload(ns) -> dict:
    """A bit of everything: two runs, small and compressed values, deletes, events, traces,
    write ids. Returns what is needed to read it all back."""
    a = ns.begin_run("run-a", agent="planner")
    b = ns.begin_run("run-b", agent="critic")
    for i in range(60):
        run = a if i % 3 else b
        run.put(
            f"k/{i:03d}", {"i": i, "text": ("lorem ipsum " * (60 if i % 7 == 0 else 1))}, write_id=f"p{i}"
        )
        if i % 5 == 0:
            ev = run.append_event("obs", {"i": i}, write_id=f"e{i}")
            run.trace("decision", {"choice": f"c{i}", "confidence": 0.5}, event=ev)
        if i % 11 == 0 and i:
            run.delete(f"k/{i - 1:03d}")
    return {"runs": ["run-a", "run-b"], "types": ["obs", "kv.put", "kv.delete", "trace.decision"]}


READS = {
    "head": lambda ns, shape: ns.head(),
    "digest": lambda ns, shape: ns.digest(),
    "items": lambda ns, shape: [(e.key, e.value, e.version, e.run_id) for e in ns.items()],
    "values": lambda ns, shape: {k: ns.get(k) for k in ns.list()},
    "events": lambda ns, shape: [(e.seq, e.type, e.payload, e.hash) for e in ns.read_events()],
    "each": lambda ns, shape: [ns.event(s).hash for s in range(1, ns.head() + 1)],
    "by_run": lambda ns, shape: {r: [e.seq for e in ns.read_events(r)] for r in shape["runs"]},
    "by_type": lambda ns, shape: {t: [e.seq for e in ns.read_events(types=t)] for t in shape["types"]},
    "traces": lambda ns, shape: [(t.seq, t.kind, t.data, t.event) for t in ns.traces()],
    "runs": lambda ns, shape: [(r.run_id, r.status, r.events) for r in ns.runs()],
    "why": lambda ns, shape: [e.seq for e in ns.why("k/030")],
    # Sending a journaled write again must find its write id (and append nothing).
    "resend": lambda ns, shape: (
        ns.run("run-a").put("k/001", {"i": 1, "text": "lorem ipsum "}, write_id="p1"),
        ns.head(),
    ),
}


def read_everything(ns, shape: dict) -> dict:
    """Every read the API offers over the workload."""
    return {name: read(ns, shape) for name, read in READS.items()}


def outcome(root: str, shape: dict, expected: dict) -> str:
    """Open a (damaged) store and make every read: how the damage showed itself. Each read must
    give what the sound store gave or raise ``CorruptionError``."""
    try:
        mem = swarmlog.open_local(root)
        ns = mem.namespace(NAMESPACE)
        ns.head()
    except (swarmlog.CorruptionError, swarmlog.NamespaceUnavailable):
        return "refused on open"
    try:
        noticed = False
        for name, read in READS.items():
            try:
                got = read(ns, shape)
            except swarmlog.CorruptionError:
                noticed = True
                continue
            assert got == expected[name], f"{name} silently reads other data"
        report = ns.verify(projections=True)
        if noticed:
            return "CorruptionError on read"
        return "same data" if report.ok else "verify failed"
    finally:
        mem.close()


def flip_file_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))


# -- (a) a flipped byte inside one stored event --------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "lz4"])
def test_a_flipped_byte_in_a_stored_event_is_reported_by_verify_and_on_read(store, compressed):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    other = ns.begin_run("other", agent="b")
    for i in range(20):
        (run if i % 2 else other).put(f"k{i}", "v" * (2000 if compressed else 5) + str(i))
    target = 12
    original = ns.event(target)
    assert original.run_id == "r"
    assert_store_sound(ns)
    store.close()
    with raw_journal(store.path) as journal:
        stored = journal.stored(target)
        assert bool(stored[0] & 0x01) == compressed  # the format byte's lz4 flag
        flip_record_byte(journal, target, offset=7)

    ns = store.reopen()
    report = ns.verify()
    assert not report.ok
    assert report.first_bad == target
    assert report.checked == target - 1
    assert f"record {target}" in report.reason
    with pytest.raises(swarmlog.CorruptionError, match=f"record {target}"):
        ns.event(target)
    with pytest.raises(swarmlog.CorruptionError):
        ns.read_events()
    with pytest.raises(swarmlog.CorruptionError):
        ns.read_events("r")
    with pytest.raises(swarmlog.CorruptionError):
        ns.at(target)
    # Events of another run are read through the run index, without touching the damaged one.
    assert [e.run_id for e in ns.read_events("other")] == ["other"] * 11
    assert ns.event(target - 1).seq == target - 1 and ns.event(target + 1).seq == target + 1


def test_a_byte_flipped_through_the_live_journal_never_reads_as_other_data(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    for i in range(10):
        run.append_event("note", {"i": i})
    original = ns.event(5)
    flip_record_byte(store.engine().journal, 5, offset=3)
    report = ns.verify()
    assert (report.ok, report.first_bad) == (False, 5)
    try:
        assert ns.event(5) == original  # a cached copy of the sound bytes is fine …
    except swarmlog.CorruptionError:
        pass  # … and so is the error; other data is not


def test_a_damaged_newest_event_refuses_to_open(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    for i in range(5):
        run.put(f"k{i}", i)
    store.close()
    with raw_journal(store.path) as journal:
        flip_record_byte(journal, 6, offset=2)
    with pytest.raises(swarmlog.CorruptionError, match="record 6"):
        store.reopen().head()  # namespaces open on first use


def test_a_damaged_event_in_the_replayed_tail_refuses_to_open(store):
    ns = store.reopen(swarmlog.Settings(snapshot_every_events=4))
    run = ns.begin_run("r", agent="a")
    for i in range(9):
        run.put(f"k{i}", i)
    store.close()
    with raw_journal(store.path) as journal:
        # Keep only the snapshot at 8, so that opening replays 9 and 10.
        snaps = journal.raw_column("snapshots")
        for key in list(snaps.keys()):
            if int.from_bytes(key, "big") != 8:
                del snaps[key]
        flip_record_byte(journal, 9, offset=1)
    with pytest.raises(swarmlog.CorruptionError, match="record 9"):
        store.reopen().head()


# -- (b) flipped bytes in RocksDB's own files ----------------------------------------------------


@pytest.fixture(scope="module")
def flushed_store(tmp_path_factory):
    """A closed store whose data sits in SST files (closing flushes the memtables)."""
    root = tmp_path_factory.mktemp("sst") / "store"
    with swarmlog.open_local(str(root)) as mem:
        ns = mem.namespace(NAMESPACE)
        shape = write_workload(ns)
        expected = read_everything(ns, shape)
        assert_store_sound(ns)
    # The idempotent resend in ``read_everything`` appended nothing; the store is as written.
    return str(root), shape, expected


def _sst_trials(root: str) -> list[tuple[str, float]]:
    files = sorted(f for f in os.listdir(ns_dir(root)) if f.endswith(".sst"))
    return [(f, frac) for f in files for frac in (0.03, 0.3, 0.6, 0.97)]


@pytest.mark.parametrize("replay", [False, True], ids=["snapshot", "full-replay"])
def test_flipped_bytes_in_sst_files_never_read_as_other_data(flushed_store, tmp_path, replay):
    root, shape, expected = flushed_store
    base = str(tmp_path / "base")
    shutil.copytree(root, base)
    if replay:  # without snapshots, opening folds every event from the SST files
        with raw_journal(base) as journal:
            snaps = journal.raw_column("snapshots")
            for key in list(snaps.keys()):
                del snaps[key]
    trials = _sst_trials(base)
    assert len(trials) >= 4 * 4, "expected the column families in several SST files"
    seen: dict[str, int] = {}
    for i, (name, frac) in enumerate(trials):
        copy = str(tmp_path / f"t{i}")
        shutil.copytree(base, copy)
        path = os.path.join(ns_dir(copy), name)
        flip_file_byte(path, int(os.path.getsize(path) * frac))
        label = outcome(copy, shape, expected)
        seen[label] = seen.get(label, 0) + 1
        shutil.rmtree(copy)
    # Damage was noticed (not every flip can land in bytes that are read back).
    assert seen.get("same data", 0) < len(trials), seen


@pytest.fixture(scope="module")
def crash_image(tmp_path_factory):
    """A copy of a store taken while it was open: its data sits in the write-ahead log only."""
    root = tmp_path_factory.mktemp("wal") / "store"
    image = tmp_path_factory.mktemp("wal") / "image"
    mem = swarmlog.open_local(str(root))
    try:
        ns = mem.namespace(NAMESPACE)
        shape = write_workload(ns)
        expected = read_everything(ns, shape)
        shutil.copytree(root, image)
    finally:
        mem.close()
    files = os.listdir(ns_dir(image))
    assert not [f for f in files if f.endswith(".sst")] and [f for f in files if f.endswith(".log")]
    return str(image), shape, expected


def test_a_crash_image_without_damage_recovers_everything(crash_image, tmp_path):
    image, shape, expected = crash_image
    copy = str(tmp_path / "copy")
    shutil.copytree(image, copy)
    assert outcome(copy, shape, expected) == "same data"


@pytest.mark.parametrize("frac", [0.05, 0.25, 0.5, 0.75, 0.97])
def test_a_flipped_byte_in_the_write_ahead_log_is_not_silently_dropped(crash_image, tmp_path, frac):
    image, shape, expected = crash_image
    copy = str(tmp_path / "copy")
    shutil.copytree(image, copy)
    (wal,) = [f for f in os.listdir(ns_dir(copy)) if f.endswith(".log")]
    path = os.path.join(ns_dir(copy), wal)
    flip_file_byte(path, int(os.path.getsize(path) * frac))
    # Recovering only the events before the damage would lose acknowledged writes unnoticed.
    assert outcome(copy, shape, expected) in ("refused on open", "CorruptionError on read", "same data")


@pytest.mark.parametrize("cut", [1, 7, 100, 1000])
def test_a_write_ahead_log_cut_short_by_a_crash_loses_only_its_last_commits(crash_image, tmp_path, cut):
    image, shape, expected = crash_image
    copy = str(tmp_path / "copy")
    shutil.copytree(image, copy)
    (wal,) = [f for f in os.listdir(ns_dir(copy)) if f.endswith(".log")]
    path = os.path.join(ns_dir(copy), wal)
    os.truncate(path, os.path.getsize(path) - cut)  # a crash cut the last write short
    with swarmlog.open_local(copy) as mem:
        ns = mem.namespace(NAMESPACE)
        head = ns.head()
        assert 0 < head < expected["head"]
        assert READS["events"](ns, shape) == expected["events"][:head]
        assert_store_sound(ns)


# -- (c) damaged snapshots -----------------------------------------------------------------------


def _snapshot_workload(store) -> tuple[str, dict]:
    ns = store.reopen(swarmlog.Settings(snapshot_every_events=10, snapshots_kept=3))
    shape = write_workload(ns)
    expected = read_everything(ns, shape)
    store.close()
    return shape, expected


def _full_replay_digest(store) -> str:
    copy = store.path + "-replay"
    shutil.copytree(store.path, copy)
    with raw_journal(copy) as journal:
        snaps = journal.raw_column("snapshots")
        for key in list(snaps.keys()):
            del snaps[key]
    with swarmlog.open_local(copy) as mem:
        ns = mem.namespace(NAMESPACE)
        assert mem._backend.engine(NAMESPACE)._newest_snapshot_seq() == 0
        return ns.digest()


def test_a_damaged_newest_snapshot_is_skipped_and_the_state_equals_a_full_replay(store):
    shape, expected = _snapshot_workload(store)
    replayed = _full_replay_digest(store)
    assert replayed == expected["digest"]
    with raw_journal(store.path) as journal:
        snaps = journal.raw_column("snapshots")
        newest = max(snaps.keys())
        blob = bytearray(snaps[newest])
        blob[len(blob) // 2] ^= 0x01
        snaps[newest] = bytes(blob)
        newest_seq = int.from_bytes(newest, "big")
    ns = store.reopen()
    notes = store.engine().recovery_notes
    assert any(f"skipped snapshot at {newest_seq}" in n for n in notes), notes
    assert ns.digest() == replayed
    assert read_everything(ns, shape) == expected
    assert_store_sound(ns)


def test_every_snapshot_damaged_means_a_full_replay_with_the_same_state(store):
    shape, expected = _snapshot_workload(store)
    with raw_journal(store.path) as journal:
        snaps = journal.raw_column("snapshots")
        keys = list(snaps.keys())
        assert len(keys) == 3
        for key in keys:
            snaps[key] = b"\x01" + bytes(snaps[key])[1:40]  # truncated
    ns = store.reopen()
    notes = store.engine().recovery_notes
    assert len([n for n in notes if n.startswith("skipped snapshot")]) == 3, notes
    assert read_everything(ns, shape) == expected
    assert_store_sound(ns)


def test_a_sound_snapshot_that_does_not_match_the_journal_is_skipped(store):
    shape, expected = _snapshot_workload(store)
    with raw_journal(store.path) as journal:
        snaps = journal.raw_column("snapshots")
        newest = max(snaps.keys())
        seq = int.from_bytes(newest, "big")
        snap = open_snapshot(snaps[newest], seq)
        # Well-formed, but its state says a key holds a value no event ever wrote.
        kv = snap["state"]["parts"]["kv"]
        kv[0][1] = b"\xa5forge"
        snap["hash"] = b"\0" * 32
        snaps[newest] = seal_snapshot(snap)
    ns = store.reopen()
    assert any(f"skipped snapshot at {seq}" in n for n in store.engine().recovery_notes)
    assert read_everything(ns, shape) == expected
    assert_store_sound(ns)


def test_time_travel_skips_a_damaged_snapshot_too(store):
    ns = store.reopen(swarmlog.Settings(snapshot_every_events=5))
    run = ns.begin_run("r", agent="a")
    digests = {}
    for i in range(12):
        run.put(f"k{i % 3}", i)
        digests[ns.head()] = ns.digest()
    store.close()
    with raw_journal(store.path) as journal:
        snaps = journal.raw_column("snapshots")
        for key in list(snaps.keys()):
            blob = bytearray(snaps[key])
            blob[-1] ^= 0xFF
            snaps[key] = bytes(blob)
    ns = store.reopen(swarmlog.Settings(snapshot_every_events=5))
    for seq, digest in digests.items():
        assert ns.at(seq).digest() == digest
    assert_store_sound(ns)


def test_a_damaged_size_header_of_a_compressed_record_is_a_corruption_error(store):
    ns = store.ns
    run = ns.begin_run("r", agent="a")
    run.put("big", "x" * 5000)  # well above compress_min_bytes: stored lz4-compressed
    run.put("small", 1)
    store.close()
    with raw_journal(store.path) as journal:
        # lz4 keeps the uncompressed size in the body's first 4 bytes (little-endian); a set
        # sign bit makes the size negative, which lz4 refuses with a ValueError, not its own error.
        key, first, records = chunk_of(journal, 2)
        record = bytearray(records[2 - first])
        record[1 + HASH_BYTES + 3] |= 0x80
        records[2 - first] = bytes(record)
        journal.raw_column("events")[key] = build_chunk(records)
        report = verify_journal(journal)
        assert not report.ok and report.first_bad == 2
        with pytest.raises(swarmlog.CorruptionError, match="record 2"):
            journal.canonical(2)
        with pytest.raises(swarmlog.CorruptionError, match="record 2"):
            list(journal.iter_canonical())


def test_an_event_the_state_cannot_take_is_a_corruption_error_not_a_key_error():
    from projections.state import ProjectionSet

    state = ProjectionSet()
    begin = [1, "x-1", 1 << 16, "r", "a", None, "run.begin", {"metadata": b"\x80"}, None, None, b"", None]
    state.apply(begin)
    # An idx.drop of a collection that never existed: a journal the engine could not have written.
    drop = [2, "x-2", 2 << 16, "r", "a", None, "idx.drop", {"c": "nope", "field": "f"}, None, None, b"", None]
    with pytest.raises(swarmlog.CorruptionError, match="event 2"):
        state.apply(drop)
