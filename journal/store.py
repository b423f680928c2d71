"""The durable journal of one namespace: a RocksDB directory (rocksdict, raw mode).

Column families:

``events``     chunk key ``>Q first_seq`` -> chunk of stored records (see ``journal.codec``)
``idem``       write id -> ``[first_seq, last_seq, fingerprint, results]`` (the idempotency index)
``runs``       ``run_id \\0 >Q seq`` -> packed list of that run's seqs in one chunk (the run index)
``types``      ``type \\0 >Q seq`` -> packed list of that type's seqs in one chunk (the type index)
``snapshots``  ``>Q seq`` -> projection snapshot taken after event ``seq``
``meta``       store identity, the head pointer, registered projections

Everything one commit writes goes into a single ``WriteBatch``, so a crash leaves all of a commit
or none of it. Nothing here knows about projections or Ray.
"""

from __future__ import annotations

import os
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from operator import itemgetter

import msgpack
import msgspec
from rocksdict import (
    AccessType,
    DBCompressionType,
    DBRecoveryMode,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from journal.codec import (
    ZERO_HASH,
    RecordCodec,
    build_chunk,
    chunk_length,
    open_chunk,
    split_chunk,
    unpack_raw,
)
from journal.errors import CorruptionError, NamespaceUnavailable, SwarmlogError, ValidationError
from journal.records import TS
from journal.settings import Settings

COLUMN_FAMILIES = ("events", "idem", "runs", "types", "snapshots", "meta")
FORMAT = b"swarmlog-journal-1"
_Q = struct.Struct(">Q")
_CHUNK_CACHE = 64
_PREFIX_CACHE = 4096
_SEQ, _RUN, _TYPE, _STORED = (itemgetter(i) for i in range(4))  # fields of a builder record
# msgspec encodes lists of ints and bytes to the same msgpack bytes as msgpack-python, faster,
# and is safe to share between threads (index entries and the head pointer only).
_encode = msgspec.msgpack.encode


def seq_key(seq: int) -> bytes:
    """Big-endian key, so that byte order is numeric order."""
    return _Q.pack(seq)


def index_key(name: str, seq: int) -> bytes:
    return name.encode() + b"\0" + _Q.pack(seq)


def _check_iter(it, what: str) -> None:
    """A RocksDB iterator that hits a damaged block just stops, as if at the end; its status
    tells the two apart."""
    try:
        it.status()
    except Exception as exc:  # rocksdict raises plain Exception
        raise CorruptionError(f"{what} cannot be read: {exc}") from None


class CommitBuilder:
    """Collects what one group commit writes, with marks so a failed request can be dropped."""

    __slots__ = ("records", "idem", "chunk_max_records", "chunk_max_bytes")

    def __init__(self, chunk_max_records: int, chunk_max_bytes: int):
        self.records: list[tuple[int, str, str, bytes]] = []  # (seq, run_id, type, stored)
        self.idem: list[tuple[bytes, bytes]] = []
        self.chunk_max_records = chunk_max_records
        self.chunk_max_bytes = chunk_max_bytes

    def add(self, seq: int, run_id: str, type_: str, stored: bytes) -> None:
        self.records.append((seq, run_id, type_, stored))

    def add_idem(self, write_id: str, value: bytes) -> None:
        self.idem.append((write_id.encode(), value))

    def mark(self) -> tuple[int, int]:
        return len(self.records), len(self.idem)

    def rollback(self, mark: tuple[int, int]) -> None:
        del self.records[mark[0] :]
        del self.idem[mark[1] :]

    def chunks(self) -> Iterator[list[tuple[int, str, str, bytes]]]:
        """The records split into chunks by count and size."""
        records = self.records
        n = len(records)
        # Most commits fit one chunk: a chunk closes once it holds chunk_max_records records or
        # chunk_max_bytes bytes, so all records share one chunk when neither limit is reached
        # before the last record. Checked with C-level sums instead of the loop below.
        if n <= self.chunk_max_records and (
            n == 1 or sum(map(len, map(_STORED, records[:-1]))) < self.chunk_max_bytes
        ):
            if n:
                yield records
            return
        current: list[tuple[int, str, str, bytes]] = []
        size = 0
        for rec in self.records:
            current.append(rec)
            size += len(rec[3])
            if len(current) >= self.chunk_max_records or size >= self.chunk_max_bytes:
                yield current
                current, size = [], 0
        if current:
            yield current


def _rocks_options(settings: Settings) -> Options:
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.create_missing_column_families(True)
    opt.set_write_buffer_size(settings.write_buffer_bytes)
    opt.set_compression_type(DBCompressionType.lz4())
    opt.set_paranoid_checks(True)
    # RocksDB's default (point in time) replays the WAL up to the first damaged record and drops
    # the rest without a word, losing acknowledged writes. Tolerate only a torn last record (a
    # write cut off by a crash, never acknowledged); damage before it refuses the open.
    opt.set_wal_recovery_mode(DBRecoveryMode.tolerate_corrupted_tail_records())
    return opt


class Journal:
    """Append-only, hash-chained event journal in one RocksDB directory."""

    def __init__(self, path: str, settings: Settings | None = None, *, read_only: bool = False):
        self.path = path
        self.settings = settings or Settings()
        self.codec = RecordCodec(self.settings.compress_min_bytes)
        self.read_only = read_only
        if read_only and not os.path.isdir(path):
            raise NamespaceUnavailable(f"no journal at {path}")
        os.makedirs(path, exist_ok=True)
        opt = _rocks_options(self.settings)
        cf_opts = {}
        for name in COLUMN_FAMILIES:
            cf_opt = Options(raw_mode=True)
            cf_opt.set_compression_type(DBCompressionType.lz4())
            cf_opts[name] = cf_opt
        try:
            if read_only:
                self._db = Rdict(path, opt, column_families=cf_opts, access_type=AccessType.read_only(False))
            else:
                self._db = Rdict(path, opt, column_families=cf_opts)
        except Exception as exc:  # rocksdict raises plain Exception for everything
            raise _translate_open_error(path, exc) from None
        self._cf = {name: self._db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._h = {name: self._db.get_column_family_handle(name) for name in COLUMN_FAMILIES}
        self._wopt = WriteOptions()
        self._wopt.sync = self.settings.durability == "fsync"
        self._prefixes: dict[str, bytes] = {}
        self._chunk_cache: OrderedDict[int, tuple[int, list]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._closed = False
        # Reading the first records can hit damaged blocks: release the directory and say so.
        try:
            meta = self._cf["meta"]
            fmt = meta.get(b"format")
            if fmt is None:
                if read_only:
                    raise NamespaceUnavailable(f"{path} holds no swarmlog journal")
                self.uid = uuid.uuid4().hex[:12]
                wb = WriteBatch(raw_mode=True)
                wb.put(b"format", FORMAT, self._h["meta"])
                wb.put(b"uid", self.uid.encode(), self._h["meta"])
                self._db.write(wb, self._wopt)
            elif fmt != FORMAT:
                raise CorruptionError(f"{path} has journal format {fmt!r}, expected {FORMAT!r}")
            else:
                self.uid = meta[b"uid"].decode()
            self.head_seq, self.head_hash, self.head_ts = self._load_head()
        except BaseException as exc:
            self.close()
            if isinstance(exc, Exception) and not isinstance(exc, SwarmlogError):
                raise _translate_open_error(path, exc) from None
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the RocksDB directory (column family views first, or the lock stays held)."""
        if self._closed:
            return
        self._closed = True
        for cf in self._cf.values():
            cf.close()
        self._cf = {}
        self._h = {}
        self._db.close()
        del self._db

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise NamespaceUnavailable(f"journal {self.path} is closed; open it again")

    # -- head ----------------------------------------------------------------------------------

    def _load_head(self) -> tuple[int, bytes, int]:
        last = self._last_chunk()
        meta_head = self._cf["meta"].get(b"head")
        if last is None:
            if meta_head is not None:
                raise CorruptionError(f"{self.path}: the head pointer is set but no events exist")
            return 0, ZERO_HASH, 0
        first_seq, records = last
        seq = first_seq + len(records) - 1
        digest, canonical = self.codec.open(records[-1], seq)
        ts = unpack_raw(canonical)[TS]
        if meta_head is not None:
            m_seq, m_hash, _ = msgpack.unpackb(meta_head)
            if (m_seq, m_hash) != (seq, digest):
                raise CorruptionError(
                    f"{self.path}: the head pointer says seq {m_seq} but the journal ends at {seq}"
                )
        return seq, digest, ts

    def _last_chunk(self) -> tuple[int, list] | None:
        it = self._cf["events"].iter(ReadOptions())
        it.seek_to_last()
        if not it.valid():
            _check_iter(it, "the events column family")
            return None
        first_seq = _Q.unpack(it.key())[0]
        return first_seq, split_chunk(it.value(), first_seq)

    # -- writing -------------------------------------------------------------------------------

    def builder(self) -> CommitBuilder:
        return CommitBuilder(self.settings.chunk_max_records, self.settings.chunk_max_bytes)

    def write(self, commit: CommitBuilder, head_hash: bytes, head_ts: int) -> None:
        """Write one group commit atomically and durably (per the durability setting)."""
        if self._closed:
            self._check_open()
        if self.read_only:
            raise ValidationError("this journal is open read-only")
        records = commit.records
        if not records and not commit.idem:
            return
        h = self._h
        wb = WriteBatch(raw_mode=True)
        last_seq = self.head_seq
        for chunk in commit.chunks():
            first = chunk[0][0]
            if first != last_seq + 1:  # a gap here would be a bug in the caller; refuse it
                raise CorruptionError(f"commit would leave a gap: {last_seq} then {first}")
            last_seq = chunk[-1][0]
            wb.put(_Q.pack(first), build_chunk(list(map(_STORED, chunk))), h["events"])
            self._put_index(wb, chunk, h["runs"], h["types"])
        h_idem = h["idem"]
        for key, value in commit.idem:
            wb.put(key, value, h_idem)
        if records:
            wb.put(b"head", _encode([last_seq, head_hash, head_ts]), h["meta"])
        self._db.write(wb, self._wopt)
        self.head_seq, self.head_hash, self.head_ts = last_seq, head_hash, head_ts

    def _put_index(self, wb: WriteBatch, chunk: list, h_runs, h_types) -> None:
        """Add the run and type index entries of one chunk to ``wb``."""
        prefix = self._index_prefix
        run_id, type_ = chunk[0][1], chunk[0][2]
        if len(chunk) == 1 or (len(set(map(_RUN, chunk))) == 1 and len(set(map(_TYPE, chunk))) == 1):
            # The common case (a single write, or a batch of one run and one type): both
            # indexes get the same seq list, packed once.
            seqs = _encode(list(map(_SEQ, chunk)))
            first = _Q.pack(chunk[0][0])
            wb.put(prefix(run_id) + first, seqs, h_runs)
            wb.put(prefix(type_) + first, seqs, h_types)
            return
        by_run: dict[str, list[int]] = {}
        by_type: dict[str, list[int]] = {}
        for seq, run_id, type_, _ in chunk:
            by_run.setdefault(run_id, []).append(seq)
            by_type.setdefault(type_, []).append(seq)
        for run_id, seqs in by_run.items():
            wb.put(prefix(run_id) + _Q.pack(seqs[0]), _encode(seqs), h_runs)
        for type_, seqs in by_type.items():
            wb.put(prefix(type_) + _Q.pack(seqs[0]), _encode(seqs), h_types)

    def _index_prefix(self, name: str) -> bytes:
        """``name \\0`` as bytes; cached because the same runs and types recur in every commit."""
        cache = self._prefixes
        prefix = cache.get(name)
        if prefix is None:
            if len(cache) >= _PREFIX_CACHE:
                cache.clear()
            prefix = cache[name] = name.encode() + b"\0"
        return prefix

    # -- reading -------------------------------------------------------------------------------

    def _chunk_at(self, seq: int) -> tuple[int, list]:
        """``(first_seq, stored records)`` of the chunk holding ``seq``."""
        with self._cache_lock:
            for first, (_, records) in reversed(self._chunk_cache.items()):
                if first <= seq < first + len(records):
                    self._chunk_cache.move_to_end(first)
                    return first, records
        it = self._cf["events"].iter(ReadOptions())
        it.seek_for_prev(_Q.pack(seq))
        if not it.valid():
            _check_iter(it, f"the chunk of event {seq}")
            raise CorruptionError(f"event {seq} is missing from the journal")
        first = _Q.unpack(it.key())[0]
        records = split_chunk(it.value(), first)
        if not first <= seq < first + len(records):
            raise CorruptionError(f"event {seq} is missing from the journal")
        with self._cache_lock:
            self._chunk_cache[first] = (first, records)
            if len(self._chunk_cache) > _CHUNK_CACHE:
                self._chunk_cache.popitem(last=False)
        return first, records

    def stored(self, seq: int) -> bytes | memoryview:
        """The stored bytes of record ``seq``."""
        self._check_open()
        if not 1 <= seq <= self.head_seq:
            raise CorruptionError(f"event {seq} is outside the journal (1..{self.head_seq})")
        first, records = self._chunk_at(seq)
        return records[seq - first]

    def canonical(self, seq: int) -> tuple[bytes, bytes]:
        """``(digest, canonical bytes)`` of record ``seq``, checked against its hash."""
        return self.codec.open(self.stored(seq), seq)

    def _chunk_values(self, after: int, upto: int) -> Iterator[tuple[int, bytes]]:
        """``(first seq, chunk)`` of every chunk holding a seq in ``after < seq <= upto``, in
        order. Raises ``CorruptionError`` on a gap, on a damaged block (a RocksDB iterator just
        stops there, as if at the end: its status tells the two apart) and when the journal ends
        before ``upto`` — stopping short would let a replay end early without a word."""
        it = self._cf["events"].iter(ReadOptions())
        it.seek_for_prev(_Q.pack(after + 1))
        if not it.valid():
            it.seek_to_first()
        expected = None
        while it.valid():
            first = _Q.unpack(it.key())[0]
            if first > upto:
                break
            if expected is not None and first != expected:
                raise CorruptionError(f"the journal has a gap: chunk {first} after {expected - 1}")
            value = it.value()
            expected = first + chunk_length(value, first)
            yield first, value
            if expected > upto:
                return
            it.next()
        else:
            _check_iter(it, "the events column family")
        if expected is None or expected <= upto:
            raise CorruptionError(
                f"the journal ends before event {upto} (last chunk ends at {(expected or 1) - 1})"
            )

    def iter_stored(self, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, memoryview]]:
        """``(seq, stored record)`` for ``after < seq <= upto`` in order, chunk by chunk."""
        self._check_open()
        upto = self.head_seq if upto is None else min(upto, self.head_seq)
        if after >= upto:
            return
        for first, value in self._chunk_values(after, upto):
            for i, stored in enumerate(split_chunk(value, first)):
                seq = first + i
                if seq > upto:
                    return
                if seq > after:
                    yield seq, stored

    def iter_canonical(self, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        """``(seq, digest, canonical)`` for ``after < seq <= upto``, each checked against its hash."""
        for first, pairs in self.canonical_chunks(after, upto):
            for i, (digest, canonical) in enumerate(pairs):
                yield first + i, digest, canonical

    def canonical_chunks(
        self, after: int = 0, upto: int | None = None
    ) -> Iterator[tuple[int, list[tuple[bytes, bytes]]]]:
        """``(seq of the first, [(digest, canonical), …])`` for ``after < seq <= upto``, a chunk at
        a time, each record checked against its hash: the fast way to read many records (replay).
        A bad record raises ``CorruptionError`` after the good records before it are yielded."""
        self._check_open()
        upto = self.head_seq if upto is None else min(upto, self.head_seq)
        if after >= upto:
            return
        for first, value in self._chunk_values(after, upto):
            start = after + 1 - first if after >= first else 0
            pairs, error = open_chunk(value, first, start, upto - first + 1)
            if pairs:
                yield first + start, pairs
            if error is not None:
                raise error

    def _index_seqs(self, cf_name: str, name: str, after: int, upto: int | None) -> Iterator[int]:
        self._check_open()
        prefix = name.encode() + b"\0"
        upto = self.head_seq if upto is None else upto
        cf = self._cf[cf_name]
        # Start at the index entry that may hold ``after + 1``: the last entry at or before it.
        it = cf.iter(ReadOptions())
        it.seek_for_prev(prefix + _Q.pack(after + 1))
        if not it.valid() or not bytes(it.key()).startswith(prefix):
            it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            for seq in msgpack.unpackb(it.value()):
                if seq > upto:
                    return
                if seq > after:
                    yield seq
            it.next()
        _check_iter(it, f"the {cf_name} index")

    def run_seqs(self, run_id: str, after: int = 0, upto: int | None = None) -> Iterator[int]:
        """Seqs of a run's events in order, through the run index."""
        return self._index_seqs("runs", run_id, after, upto)

    def type_seqs(self, type_: str, after: int = 0, upto: int | None = None) -> Iterator[int]:
        """Seqs of one event type in order, through the type index."""
        return self._index_seqs("types", type_, after, upto)

    def iter_index(self, cf_name: str) -> Iterator[tuple[str, int, list[int]]]:
        """Every ``(name, first seq, seqs)`` entry of the run or type index (for verify)."""
        self._check_open()
        for key, value in self._scan(cf_name):
            if len(key) < 10 or key[-9] != 0:
                raise CorruptionError(f"{cf_name} index key {key!r} is malformed")
            yield key[:-9].decode(), _Q.unpack(key[-8:])[0], msgpack.unpackb(value)

    # -- idempotency ---------------------------------------------------------------------------

    def idem_get(self, write_id: str) -> bytes | None:
        self._check_open()
        return self._get("idem", write_id.encode())

    def iter_idem(self) -> Iterator[tuple[str, bytes]]:
        self._check_open()
        for key, value in self._scan("idem"):
            yield key.decode(), value

    # -- snapshots -----------------------------------------------------------------------------

    def put_snapshot(self, seq: int, blob: bytes, keep: int) -> None:
        """Store a snapshot taken after event ``seq`` and drop all but the newest ``keep``."""
        self._check_open()
        cf = self._cf["snapshots"]
        wb = WriteBatch(raw_mode=True)
        h = self._h["snapshots"]
        wb.put(_Q.pack(seq), blob, h)
        existing = sorted({_Q.unpack(k)[0] for k in cf.keys()} | {seq})  # noqa: SIM118 - Rdict iteration is not by key
        for old in existing[:-keep]:
            wb.delete(_Q.pack(old), h)
        self._db.write(wb, self._wopt)

    def snapshot_seqs(self) -> list[int]:
        """Seqs of the stored snapshots, oldest first, without reading them."""
        self._check_open()
        return sorted(_Q.unpack(k)[0] for k in self._cf["snapshots"].keys())  # noqa: SIM118

    def snapshots(self, upto: int | None = None) -> Iterator[tuple[int, bytes]]:
        """``(seq, blob)`` of stored snapshots, newest first, at or before ``upto``."""
        self._check_open()
        cf = self._cf["snapshots"]
        start = _Q.pack(upto if upto is not None else (1 << 64) - 1)
        for key in cf.keys(backwards=True, from_key=start):
            yield _Q.unpack(key)[0], cf[key]

    # -- metadata ------------------------------------------------------------------------------

    def meta_get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._get("meta", key)

    def meta_put(self, key: bytes, value: bytes | None) -> None:
        self._check_open()
        wb = WriteBatch(raw_mode=True)
        if value is None:
            wb.delete(key, self._h["meta"])
        else:
            wb.put(key, value, self._h["meta"])
        self._db.write(wb, self._wopt)

    def meta_items(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        for key, value in self._scan("meta", prefix):
            if not key.startswith(prefix):
                break
            yield key, value

    # -- damage-aware access -------------------------------------------------------------------

    def _get(self, cf_name: str, key: bytes) -> bytes | None:
        try:
            return self._cf[cf_name].get(key)
        except Exception as exc:  # rocksdict raises plain Exception on a damaged block
            raise CorruptionError(f"the {cf_name} column family cannot be read: {exc}") from None

    def _scan(self, cf_name: str, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` from ``start`` on; unlike ``Rdict.items`` it does not end quietly
        at a damaged block."""
        it = self._cf[cf_name].iter(ReadOptions())
        it.seek(start)
        while it.valid():
            yield bytes(it.key()), it.value()
            it.next()
        _check_iter(it, f"the {cf_name} column family")

    # -- raw access for tests and repair tools -------------------------------------------------

    def raw_column(self, name: str):
        """The rocksdict view of one column family (for tests that tamper on purpose)."""
        self._check_open()
        return self._cf[name]


def _translate_open_error(path: str, exc: Exception) -> Exception:
    text = str(exc)
    # Corruption first: its messages say "block checksum", which holds "lock".
    if "corrupt" in text.lower() or "checksum" in text.lower():
        return CorruptionError(f"{path} cannot be opened: {text}")
    if "lock" in text.lower():
        return NamespaceUnavailable(
            f"{path} is open in another process or handle ({text}). Share one store through "
            "swarmlog.connect, or close the other handle first."
        )
    return NamespaceUnavailable(f"{path} cannot be opened: {text}")
