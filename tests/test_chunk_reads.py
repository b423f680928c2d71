"""Replay's chunk-at-a-time reader agrees with the record-by-record one, damaged or not."""

from __future__ import annotations

import random

import pytest

import swarmlog
from journal.codec import RecordCodec, blake, build_chunk, open_chunk, split_chunk
from journal.errors import CorruptionError
from journal.settings import Settings
from tests.helpers import assert_store_sound

CODEC = RecordCodec(compress_min_bytes=64)
FIRST_SEQ = 100


def _chunk(rng: random.Random, records: int) -> bytes:
    stored = []
    for _ in range(records):
        if rng.random() < 0.5:
            canonical = rng.randbytes(rng.choice([1, 40, 63, 64, 300]))
        else:
            canonical = b"a" * rng.choice([10, 100, 400])  # compressible: stored lz4'd
        stored.append(CODEC.seal(canonical, blake(canonical)))
    return build_chunk(stored)


def _record_by_record(chunk: bytes, start: int, stop: int) -> tuple[list, str | None]:
    """What reading the chunk with ``split_chunk`` and ``RecordCodec.open`` gives."""
    out = []
    try:
        for i, stored in enumerate(split_chunk(chunk, FIRST_SEQ)):
            if start <= i < stop:
                out.append(RecordCodec.open(stored, FIRST_SEQ + i))
    except (CorruptionError, ValueError) as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


def _chunk_at_a_time(chunk: bytes, start: int, stop: int) -> tuple[list, str | None]:
    try:
        pairs, error = open_chunk(chunk, FIRST_SEQ, start, stop)
    except (CorruptionError, ValueError) as exc:
        return [], f"{type(exc).__name__}: {exc}"
    return pairs, None if error is None else f"{type(error).__name__}: {error}"


def test_open_chunk_returns_every_record_of_a_sound_chunk_checked_against_its_hash():
    rng = random.Random(7)
    trials = 200
    for _ in range(trials):
        records = rng.randint(1, 8)
        chunk = _chunk(rng, records)
        start = rng.randrange(records)
        stop = rng.randint(start, records)
        expected, error = _record_by_record(chunk, start, stop)
        assert error is None
        assert _chunk_at_a_time(chunk, start, stop) == (expected, None)


def test_a_damaged_chunk_fails_with_the_same_error_as_reading_it_record_by_record():
    rng = random.Random(11)
    trials = 1500
    damaged = 0
    for trial in range(trials):
        records = rng.randint(1, 6)
        chunk = bytearray(_chunk(rng, records))
        chunk[rng.randrange(len(chunk))] ^= 1 << rng.randrange(8)
        if trial % 7 == 0:
            chunk = chunk[: rng.randrange(len(chunk))]
        start = rng.randrange(records)
        stop = rng.randint(start, records)
        expected, expected_error = _record_by_record(bytes(chunk), start, stop)
        got, error = _chunk_at_a_time(bytes(chunk), start, stop)
        assert error == expected_error
        # Record by record stops at the first bad record; chunk at a time returns the records
        # before it (so replay can stop exactly there), which must be the same ones.
        assert got[: len(expected)] == expected
        assert len(got) == len(expected)
        damaged += error is not None
    assert damaged > trials // 4  # flips outside the range read go unnoticed, as they should


@pytest.mark.parametrize("chunk_max_records", [1, 3, 1024])
def test_reading_ranges_of_the_journal_gives_each_event_once_in_order(store_path, chunk_max_records):
    settings = Settings(chunk_max_records=chunk_max_records, compress_min_bytes=64)
    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/chunks")
    run = ns.begin_run(agent="reader")
    for i in range(12):
        with run.batch() as b:
            for j in range(i % 4 + 1):
                b.append_event("note", {"i": i, "j": j, "pad": "x" * (i * 20)})
    head = ns.head()
    engine = mem._backend.engine("acme/chunks")
    every = [(seq, digest) for seq, digest, _ in engine.journal.iter_canonical()]
    assert [seq for seq, _ in every] == list(range(1, head + 1))
    for after in range(0, head + 1, 3):
        for upto in (after, after + 1, after + 5, head, head + 10):
            got = [(seq, digest) for seq, digest, _ in engine.journal.iter_canonical(after, upto)]
            assert got == [(seq, digest) for seq, digest in every if after < seq <= upto]
    assert_store_sound(ns)
    mem.close()
