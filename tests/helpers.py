"""Checks every test that writes ends with (STYLE #13), and the store handle the suites share."""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Iterator

import pytest

import swarmlog
from journal.codec import split_chunk
from journal.hlc import wall_ms
from journal.settings import Settings
from projections.engine import NamespaceEngine
from swarmlog.local import LocalBackend, namespace_dir

NAMESPACE = "acme/support"
# A fixed start for test clocks: far from 0, so HLC arithmetic is realistic.
EPOCH_MS = 1_750_000_000_000


def assert_store_sound(ns) -> None:
    """Gapless seqs from 1, a valid hash chain and indexes, projections equal to a fresh fold."""
    head = ns.head()
    events = ns.read_events()
    assert [e.seq for e in events] == list(range(1, head + 1))
    for before, after in itertools.pairwise(events):
        assert after.prev == before.hash
        assert after.ts > before.ts
    report = ns.verify(projections=True)
    assert report.ok, report
    assert report.checked == head


class TestClock:
    """A wall clock in milliseconds that only the test moves."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, start_ms: int = EPOCH_MS):
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += round(seconds * 1000)


def open_local_clocked(path: str, clock, settings: Settings | None = None, names=(NAMESPACE,)):
    """``open_local`` whose namespaces ``names`` read time from ``clock`` (``wall=`` injection)."""
    settings = settings or Settings()
    backend = LocalBackend(path, settings)
    for name in names:
        backend._engines[name] = NamespaceEngine(
            namespace_dir(backend.root, name), settings, name=name, wall=clock
        )
    return swarmlog.Memory(backend)


class Store:
    """An open store of one backend that a test can close, reopen and (locally) drive in time."""

    def __init__(self, backend: str, path: str):
        self.backend = backend
        self.path = path
        self.clock: TestClock | None = None
        self.mem = None
        self.open()

    def open(self, settings: Settings | None = None, *, clock: TestClock | None = None) -> swarmlog.Memory:
        self.close()
        if self.backend == "local":
            self.clock = clock
            if clock is not None:
                self.mem = open_local_clocked(self.path, clock, settings)
            else:
                self.mem = swarmlog.open_local(self.path, settings=settings)
        elif self.backend == "ray":
            if clock is not None:
                pytest.skip("a test clock can be injected only into the in-process engine")
            ensure_ray_session()
            self.mem = swarmlog.connect(self.path, settings=settings)
        else:  # pragma: no cover - one branch per backend
            raise AssertionError(f"unknown backend {self.backend}")
        return self.mem

    def reopen(self, settings: Settings | None = None) -> swarmlog.Namespace:
        """Close and open again (same clock, if any); returns the namespace."""
        self.open(settings, clock=self.clock)
        return self.ns

    def with_clock(self, settings: Settings | None = None) -> TestClock:
        """Reopen with a test clock; returns it."""
        clock = TestClock(max(EPOCH_MS, wall_ms() + 1))
        self.open(settings, clock=clock)
        return clock

    @property
    def ns(self) -> swarmlog.Namespace:
        return self.mem.namespace(NAMESPACE)

    def engine(self, name: str = NAMESPACE) -> NamespaceEngine:
        if self.backend != "local":
            pytest.skip("this test reaches into the in-process engine")
        return self.mem._backend.engine(name)

    def close(self) -> None:
        if self.mem is not None:
            mem, self.mem = self.mem, None
            # On Ray, closing a client leaves the actors serving; a reopen must really reopen.
            mem.shutdown() if self.backend == "ray" else mem.close()


def engine_of(ns) -> NamespaceEngine:
    """The in-process engine behind a namespace handle of a local store."""
    return ns._backend.engine(ns.name)


@contextlib.contextmanager
def unchanged(ns) -> Iterator[None]:
    """Asserts that the block changes neither the journal head nor the projection digest."""
    head, digest = ns.head(), ns.digest()
    yield
    assert ns.head() == head
    assert ns.digest() == digest


# -- Ray ---------------------------------------------------------------------------------------
# One local Ray instance for the whole session (starting one takes seconds). Tests that need
# their own multi-node cluster shut it down and the next Ray test starts it again.

RAY_INIT = {
    "address": "local",
    "num_cpus": 2,
    "include_dashboard": False,
    "log_to_driver": False,
    "object_store_memory": 150 * 1024 * 1024,
}


def ensure_ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(**RAY_INIT)
    return ray


# -- tampering -----------------------------------------------------------------------------------

_Q = struct.Struct(">Q")


def chunk_of(journal, seq: int) -> tuple[bytes, int, list]:
    """``(chunk key, first seq, stored records)`` of the chunk that holds ``seq``."""
    events = journal.raw_column("events")
    for key, value in events.items():
        first = _Q.unpack(bytes(key))[0]
        records = split_chunk(value, first)
        if first <= seq < first + len(records):
            return bytes(key), first, [bytes(r) for r in records]
    raise AssertionError(f"event {seq} is in no chunk")


def flip_record_byte(journal, seq: int, offset: int = 0) -> None:
    """Rewrite the chunk of ``seq`` with one byte of that record's body flipped (``offset`` counts
    from the start of the body, after the format byte and the stored hash)."""
    from journal.codec import HASH_BYTES, build_chunk

    key, first, records = chunk_of(journal, seq)
    record = bytearray(records[seq - first])
    body_start = 1 + HASH_BYTES
    pos = body_start + offset % (len(record) - body_start)
    record[pos] ^= 0x40
    records[seq - first] = bytes(record)
    journal.raw_column("events")[key] = build_chunk(records)
