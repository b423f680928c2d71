"""The namespace engine: validate, journal, fold — the write path of one namespace, no Ray.

``NamespaceEngine`` owns one journal and the projections folded from it. A write is a
``Request``; ``commit`` takes a *group* of requests and, under the commit lock:

1. answers requests whose write id is already journaled from the idempotency index;
2. decides each remaining request against the current state: every operation is checked, turned
   into events (encoded, hashed, chained) and applied to the projections with an undo log, so
   the next operation sees its effect; a request that fails is rolled back and gets its error;
3. writes the whole group in one RocksDB ``WriteBatch`` (one sync with ``durability="fsync"``);
4. only then answers: readers take the same lock, so no one sees state the journal lacks.

``submit`` is the thread-safe door for in-process callers: concurrent threads are gathered into
one group commit (a leader commits for everyone queued behind it, as LevelDB does).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import msgpack
import msgspec

from journal.codec import BLAKE_EMPTY, ZERO_HASH, blake, unpack_raw, unpack_value
from journal.errors import (
    ConflictError,
    CorruptionError,
    NamespaceUnavailable,
    StaleFencingToken,
    SwarmlogError,
    ValidationError,
)
from journal.hlc import HybridClock, physical_ms, wall_ms
from journal.records import PREV, Event, event_from_fields
from journal.settings import Settings
from journal.snapshots import open_snapshot, seal_snapshot
from journal.store import CommitBuilder, Journal
from journal.verify import VerifyReport, verify_journal
from projections.branches import Branches
from projections.commands import (
    RESERVED_TYPE_PREFIXES,
    AddTrace,
    Append,
    BeginRun,
    Delete,
    EndRun,
    OpRef,
    Put,
    Request,
    begin_op,
    check_limits,
    check_name,
    make_request,
)
from projections.doc_decide import HANDLERS as DOC_HANDLERS
from projections.doc_reads import EngineReads
from projections.reader import READ_METHODS, Reader
from projections.recorded import RecordInput, decide_record
from projections.redecide import Redecision, replay_decide
from projections.refold import ReplayReport, refold_run
from projections.runs import R_STATUS, RUNNING, run_info
from projections.state import ProjectionSet
from projections.traces import Trace
from projections.undo import UndoLog
from projections.user import Fold, UserProjection
from projections.vec_decide import HANDLERS as VEC_HANDLERS

log = logging.getLogger("swarmlog.engine")

_PACKED = 1  # journal.codec.EXT_PACKED
# Records are encoded with msgspec: for the envelope types a record holds (ints, str, bytes,
# None, dicts and lists of those, and caller values already packed into Ext 1) it writes the
# same msgpack bytes as msgpack-python, about twice as fast. Caller values themselves are packed
# with msgpack-python on the client side (``journal.codec.pack_value``), whose strict type checks
# decide what can be stored.
_Ext = msgspec.msgpack.Ext
_USER_PREFIX = b"proj:"


class _Slot:
    """A request waiting in the group-commit queue."""

    __slots__ = ("request", "done", "result")

    def __init__(self, request: Request):
        self.request = request
        self.done = False
        self.result: Any = None


class NamespaceEngine(EngineReads):
    """One namespace: its journal, its projections, its write path and its reads."""

    # An append answers ``EventFields`` instead of an ``Event`` (whose payload it decodes) when
    # set: for a caller that rebuilds the events from the request it sent (the Ray actor).
    event_fields = False

    def __init__(
        self,
        path: str,
        settings: Settings | None = None,
        *,
        name: str | None = None,
        wall: Callable[[], int] = wall_ms,
        read_only: bool = False,
    ):
        self.settings = settings or Settings()
        self.name = name or path
        self.path = path
        # A read-only engine (a replica for replays) opens beside the writer and never writes.
        self.read_only = read_only
        self.journal = Journal(path, self.settings, read_only=read_only)
        self._id_prefix = self.journal.uid + "-"
        self._seal = self.journal.codec.seal
        self._max_record_bytes = self.settings.max_record_bytes
        self._chunk_max_records = self.settings.chunk_max_records
        self._chunk_max_bytes = self.settings.chunk_max_bytes
        self._lock = threading.RLock()
        self._wall = wall
        self._clock = HybridClock(wall)
        self._encode = msgspec.msgpack.Encoder().encode
        self._undo = UndoLog()
        self._cv = threading.Condition(threading.Lock())
        self._queue: deque[_Slot] = deque()
        self.user: dict[str, UserProjection] = {}
        self._views: OrderedDict = OrderedDict()
        self.stats = {"commits": 0, "requests": 0}
        self.recovery_notes: list[str] = []
        try:
            self._recover()
        except BaseException:
            self.journal.close()
            raise
        self.reader = Reader(self.state, self.journal, clock=self._wall, user=self.user)
        self.branches = Branches(self)
        self._closed = False

    # -- recovery ------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Load the newest sound snapshot, replay the journal tail after it, catch up users."""
        j = self.journal
        state, prev, snap_user = self._load_snapshot(j.head_seq)
        self._load_registrations(snap_user, state.seq)
        t0 = time.perf_counter()
        self._fold_range(state, state.seq, j.head_seq, prev, list(self.user.values()))
        self.state = state
        self._next_seq = j.head_seq + 1
        self._prev = j.head_hash
        self._clock.observe(j.head_ts)
        self._last_snapshot_seq = self._newest_snapshot_seq()
        self._last_snapshot_at = time.monotonic()
        log.debug("recovered %s: head %d in %.3fs", self.name, j.head_seq, time.perf_counter() - t0)

    def _load_snapshot(self, upto: int) -> tuple[ProjectionSet, bytes, dict]:
        """The newest snapshot at or before ``upto`` that decodes and matches the journal."""
        for seq, blob in self.journal.snapshots(upto):
            try:
                snap = open_snapshot(blob, seq)
                state = ProjectionSet.load(snap["state"])
                digest, _ = self.journal.canonical(seq)
                if state.seq != seq or snap["hash"] != digest:
                    raise CorruptionError(f"snapshot at {seq} does not match the journal")
                return state, digest, snap.get("user", {})
            except (CorruptionError, KeyError, TypeError, ValueError) as exc:
                note = f"skipped snapshot at {seq}: {exc}"
                log.warning("%s: %s", self.name, note)
                self.recovery_notes.append(note)
        return ProjectionSet(), ZERO_HASH, {}

    def _newest_snapshot_seq(self) -> int:
        for seq, _ in self.journal.snapshots():
            return seq
        return 0

    def _fold_range(
        self,
        state: ProjectionSet,
        after: int,
        upto: int,
        prev: bytes,
        users: list[UserProjection],
    ) -> None:
        """Replay events ``after < seq <= upto`` into ``state`` (and user projections), checking
        that each record links to the one before it."""
        apply = state.apply
        users = [u for u in users if u.seq < upto]
        # Replay folds every record of the journal: read a chunk at a time, one loop level.
        for first, pairs in self.journal.canonical_chunks(after, upto):
            seq = first
            for digest, canonical in pairs:
                f = unpack_raw(canonical)
                if f[PREV] != prev:
                    raise CorruptionError(f"event {seq} does not link to event {seq - 1}; run verify()")
                apply(f)
                if users:
                    ev = event_from_fields(unpack_value(canonical), digest)
                    for u in users:
                        u.apply(ev)
                prev = digest
                seq += 1

    # -- user projections ----------------------------------------------------------------------

    def _load_registrations(self, snap_user: dict, snap_seq: int) -> None:
        """Re-create user projections registered before a restart (stored in meta)."""
        try:
            import cloudpickle
        except ImportError:  # pragma: no cover - cloudpickle comes with ray
            return
        for key, value in self.journal.meta_items(_USER_PREFIX):
            name = key[len(_USER_PREFIX) :].decode()
            try:
                fold, initial, version = cloudpickle.loads(value)
                proj = UserProjection(name, fold, unpack_value(initial), version)
            except Exception as exc:
                note = f"projection {name!r} could not be restored ({exc!r}); register it again"
                log.warning("%s: %s", self.name, note)
                self.recovery_notes.append(note)
                continue
            saved = snap_user.get(name)
            if saved is not None and saved[0] == version and saved[1] == snap_seq:
                proj.reset(saved[2], snap_seq)
            elif snap_seq:
                # The snapshot lacks this projection: fold it from the start on its own.
                self._fold_user(proj, 0, snap_seq)
            self.user[name] = proj

    def _fold_user(self, proj: UserProjection, after: int, upto: int) -> None:
        for _seq, digest, canonical in self.journal.iter_canonical(after, upto):
            proj.apply(event_from_fields(unpack_value(canonical), digest))

    def register_projection(self, name: str, fold: Fold, initial: Any = None, *, version: int = 1) -> None:
        """Keep ``fold(state, event) -> state`` up to date over every event, from the first.

        Registering the same name and version again replaces the fold but keeps the state
        (from a snapshot where one has it); a new version rebuilds it from the start. The
        registration is stored (with cloudpickle) so a restarted namespace rebuilds it by itself.
        """
        check_name(name, "projection name")
        proj = UserProjection(name, fold, initial, version)
        with self._lock:
            self._check_open()
            base = 0
            for seq, blob in self.journal.snapshots(self.state.seq):
                try:
                    saved = open_snapshot(blob, seq).get("user", {}).get(name)
                except CorruptionError:
                    continue
                if saved is not None and saved[0] == version and saved[1] == seq:
                    proj.reset(saved[2], seq)
                    base = seq
                    break
            self._fold_user(proj, base, self.state.seq)
            self.user[name] = proj
            try:
                import cloudpickle

                blob = cloudpickle.dumps((fold, proj.initial, version))
            except Exception as exc:
                note = f"projection {name!r} is not picklable ({exc!r}); re-register it after a restart"
                log.warning("%s: %s", self.name, note)
                self.journal.meta_put(_USER_PREFIX + name.encode(), None)
            else:
                self.journal.meta_put(_USER_PREFIX + name.encode(), blob)

    def drop_projection(self, name: str) -> None:
        """Forget a user projection (its state and its stored registration)."""
        with self._lock:
            self._check_open()
            self.user.pop(name, None)
            self.journal.meta_put(_USER_PREFIX + name.encode(), None)

    # -- the write path ------------------------------------------------------------------------

    def submit(self, request: Request) -> list:
        """Commit one request, grouped with whatever other threads submit meanwhile.
        Returns one result per operation; raises the request's error."""
        result = self.submit_many([request])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def submit_many(self, requests: list[Request]) -> list:
        """Commit several requests, grouped with other threads' (LevelDB-style group commit):
        the thread whose request heads the queue commits everything queued, the others wait.
        Returns, per request, its results or the exception that refused it."""
        if not requests:
            return []
        # Fast path: when no other thread is committing or queued, commit right here. The queue,
        # the slots and the condition variable cost more than a small commit itself; under
        # contention the lock is busy, so callers queue below and a leader commits for all.
        if not self._queue and self._lock.acquire(blocking=False):
            try:
                if not self._queue:
                    return self.commit(list(requests))
            finally:
                self._lock.release()
        slots = [_Slot(r) for r in requests]
        cv = self._cv
        with cv:
            self._queue.extend(slots)
            while not slots[0].done and self._queue[0] is not slots[0]:
                cv.wait()
            group = None if slots[0].done else list(self._queue)
        if group is not None:
            try:
                results = self.commit([s.request for s in group])
            except BaseException as exc:  # never leave followers waiting
                results = [exc] * len(group)
            with cv:
                for s, r in zip(group, results, strict=True):
                    s.result = r
                    s.done = True
                    self._queue.popleft()
                cv.notify_all()
        return [s.result for s in slots]

    def commit(self, requests: list[Request]) -> list:
        """Commit a group of requests in one WriteBatch. Returns, per request, its list of
        results or the ``SwarmlogError`` that refused it (nothing of that request written)."""
        with self._lock:
            if self._closed:
                self._check_open()
            builder = CommitBuilder(self._chunk_max_records, self._chunk_max_bytes)
            undo = self._undo
            undo.clear()
            start = (self._next_seq, self._prev, self.state.ts)
            results: list[Any] = []
            fresh: list[int] = []  # indexes of results that this group must make durable
            pending: dict[str, tuple[bytes, list]] = {}
            for req in requests:
                wid = req.write_id
                try:
                    if wid is not None:
                        fp = _fingerprint(req)
                        if wid in pending:
                            results.append(self._check_fp(wid, fp, pending[wid][0]) or pending[wid][1])
                            continue
                        known = self.journal.idem_get(wid)
                        if known is not None:
                            results.append(self._idem_result(wid, fp, known))
                            continue
                except SwarmlogError as exc:
                    results.append(exc)
                    continue
                mark = (undo.mark(), builder.mark(), self._next_seq, self._prev)
                try:
                    out, wire = self.branches.decide(req, builder, undo)
                except Exception as exc:  # a SwarmlogError, or bad input a check missed: it fails alone
                    self._rollback(mark, builder)
                    results.append(exc)
                    continue
                except BaseException:
                    # Nothing of this group will be written: take back the requests before it too.
                    undo.rollback(0)
                    self._next_seq, self._prev, _ = start
                    raise
                if wid is not None:
                    first = mark[2] if self._next_seq > mark[2] else 0
                    last = self._next_seq - 1 if first else 0
                    builder.add_idem(wid, msgpack.packb([first, last, fp, wire], use_bin_type=True))
                    pending[wid] = (fp, out)
                fresh.append(len(results))
                results.append(out)
            self.stats["commits"] += 1
            self.stats["requests"] += len(requests)
            if not builder.records and not builder.idem:
                return results
            try:
                self.journal.write(builder, self._prev, self.state.ts)
            except BaseException as exc:
                undo.rollback(0)
                self._next_seq, self._prev, _ = start
                err = (
                    exc
                    if isinstance(exc, SwarmlogError)
                    else NamespaceUnavailable(
                        f"namespace {self.name!r}: the journal write failed ({exc}); nothing of it was "
                        "acknowledged. Check the disk and retry with the same write ids."
                    )
                )
                for i in fresh:
                    results[i] = err
                if not isinstance(exc, Exception):
                    raise
                return results
            undo.clear()
            if self.user:
                self._apply_user(builder)
            self._maybe_snapshot()
            return results

    def _rollback(self, mark: tuple, builder: CommitBuilder) -> None:
        self._undo.rollback(mark[0])
        builder.rollback(mark[1])
        self._next_seq, self._prev = mark[2], mark[3]

    def _apply_user(self, builder: CommitBuilder) -> None:
        users = list(self.user.values())
        open_ = self.journal.codec.open
        for seq, _, _, stored in builder.records:
            digest, canonical = open_(stored, seq)
            ev = event_from_fields(unpack_value(canonical), digest)
            for u in users:
                u.apply(ev)

    # -- deciding ------------------------------------------------------------------------------

    def _decide(self, req: Request, builder: CommitBuilder, undo: UndoLog) -> tuple[list, list]:
        """Turn one request into events, applied as they are made. Returns the results for the
        caller and their compact form for the idempotency index."""
        check_limits(req, self.settings)
        state = self.state
        runs = state.runs.runs
        extra = None
        if req.fence is not None:
            name, token = req.fence
            seen = state.fences.get(name, 0)
            if token < seen:
                raise StaleFencingToken(
                    f"write refused: fencing token {token} for lease {name!r} is older than token "
                    f"{seen} already used in namespace {self.name!r}. Acquire the lease again."
                )
            extra = {"fence": [name, token]}
        if state.lineage is not None:  # a fork's write: mark it so the main line keeps out of it
            extra = {**(extra or {}), "branch": True}
        out: list[Any] = []
        wire: list[Any] = []
        handlers = self._handlers
        # The run's state row is looked up once: folds mutate it in place, so an ``end`` earlier
        # in the same request shows in its status below.
        r = runs.get(req.run_id)
        for i, op in enumerate(req.ops):
            cls = type(op)
            if cls is BeginRun:
                if i != 0:
                    raise ValidationError("begin_run must be the first operation of its write")
                self._check_new_run(req.run_id, op)
            else:
                if r is None:
                    r = runs.get(req.run_id)
                if r is None:
                    raise ValidationError(
                        f"run {req.run_id!r} does not exist in namespace {self.name!r}; begin it with begin_run"
                    )
                if r[R_STATUS] != RUNNING:
                    raise ValidationError(
                        f"run {req.run_id!r} has ended with status {r[R_STATUS]!r}; begin a new run to write more"
                    )
            handler = handlers.get(cls)
            if handler is None:
                raise ValidationError(f"unknown operation {cls.__name__}")
            result, compact = handler(self, req, op, builder, undo, extra, out)
            out.append(result)
            wire.append(compact)
        return out, wire

    def _check_new_run(self, run_id: str, op: BeginRun) -> None:
        if run_id in self.state.runs.runs:
            raise ValidationError(
                f"run {run_id!r} already exists in namespace {self.name!r}; pick a new run_id"
            )
        if op.parent is not None:
            check_name(op.parent, "parent run")
            parent = self.state.runs.runs.get(op.parent)
            if parent is None:
                raise ValidationError(f"parent run {op.parent!r} does not exist")

    def _emit(
        self,
        req: Request,
        op: Any,
        type_: str,
        payload: Any,
        fold_payload: Any,
        ts: int,
        extra: Any,
        builder: CommitBuilder,
        undo: UndoLog,
    ) -> tuple[int, bytes, list]:
        """Encode, hash and chain one event, add it to the commit and fold it."""
        seq = self._next_seq
        tool = op.tool if op.tool is not None else req.tool
        source = op.source if op.source is not None else req.source
        fields = [
            seq,
            f"{self._id_prefix}{seq}",
            ts,
            req.run_id,
            req.agent,
            tool,
            type_,
            payload,
            None if source is None else _Ext(_PACKED, source),
            req.write_id,
            self._prev,
            extra,
        ]
        canonical = self._encode(fields)
        if len(canonical) > self._max_record_bytes:
            raise ValidationError(
                f"the {type_} event is {len(canonical)} bytes; the limit is "
                f"{self.settings.max_record_bytes} (Settings.max_record_bytes)"
            )
        h = BLAKE_EMPTY.copy()
        h.update(canonical)
        digest = h.digest()
        builder.records.append((seq, req.run_id, type_, self._seal(canonical, digest)))
        # The fold sees exactly what a replay decodes: packed values stay bytes.
        fields[7] = fold_payload
        fields[8] = source
        self.state.apply(fields, undo)
        self._next_seq = seq + 1
        self._prev = digest
        return seq, digest, fields

    def _op_put(self, req, op: Put, builder, undo, extra, out):
        ts = self._clock.now()
        now_ms = ts >> 16
        kv = self.state.kv
        current = kv.version(op.key, now_ms)
        if op.expected_version is not None and op.expected_version != current:
            raise ConflictError(
                f"put {op.key!r}: expected version {op.expected_version} but it is {current}"
                + (" (absent)" if current == 0 else "")
                + "; read it again and retry",
                key=op.key,
                expected=op.expected_version,
                actual=current,
            )
        payload = {"key": op.key, "value": _Ext(_PACKED, op.value), "prev": current}
        fold = {"key": op.key, "value": op.value, "prev": current}
        if op.ttl_ms is not None:
            payload["ttl_ms"] = fold["ttl_ms"] = op.ttl_ms
        seq, _, _ = self._emit(req, op, "kv.put", payload, fold, ts, extra, builder, undo)
        return seq, ["v", seq]

    def _op_delete(self, req, op: Delete, builder, undo, extra, out):
        ts = self._clock.now()
        current = self.state.kv.version(op.key, ts >> 16)
        if op.expected_version is not None and op.expected_version != current:
            raise ConflictError(
                f"delete {op.key!r}: expected version {op.expected_version} but it is {current}; "
                "read it again and retry",
                key=op.key,
                expected=op.expected_version,
                actual=current,
            )
        if current == 0:
            return False, ["b", False]
        payload = {"key": op.key, "prev": current}
        self._emit(req, op, "kv.delete", payload, payload, ts, extra, builder, undo)
        return True, ["b", True]

    def _op_append(self, req, op: Append, builder, undo, extra, out):
        if op.type.startswith(RESERVED_TYPE_PREFIXES):  # a hand-built request must not pose as swarmlog
            raise ValidationError(f"event type {op.type!r} uses a reserved prefix; pick another type name")
        ts = self._clock.now()
        seq, digest, fields = self._emit(
            req, op, op.type, _Ext(_PACKED, op.payload), op.payload, ts, extra, builder, undo
        )
        if getattr(self, "event_fields", False):  # (stand-ins for the engine may lack it)
            return EventFields(fields, digest), ["e", seq]
        return _event_from_live(fields, digest, op.payload), ["e", seq]

    def _op_trace(self, req, op: AddTrace, builder, undo, extra, out):
        event = op.event
        if isinstance(event, OpRef):
            if not 0 <= event.index < len(out):
                raise ValidationError(f"trace refers to operation {event.index}, which is not an earlier one")
            ref = out[event.index]
            event = (
                ref.seq
                if hasattr(ref, "seq")
                else ref
                if isinstance(ref, int) and not isinstance(ref, bool)
                else None
            )
            if event is None:
                raise ValidationError(f"operation {op.event.index} wrote no event to link a trace to")
        elif event is not None and event >= self._next_seq:
            raise ValidationError(
                f"trace links to event {event}, which does not exist yet (head {self._next_seq - 1})"
            )
        ts = self._clock.now()
        payload = {"data": _Ext(_PACKED, op.data), "event": event}
        fold = {"data": op.data, "event": event}
        seq, _, fields = self._emit(req, op, "trace." + op.kind, payload, fold, ts, extra, builder, undo)
        trace = Trace(
            seq=seq,
            run_id=req.run_id,
            kind=op.kind,
            data=unpack_value(op.data),
            event=event,
            ts=ts,
            agent=req.agent,
            tool=fields[5],
        )
        return trace, ["t", seq]

    def _op_begin(self, req, op: BeginRun, builder, undo, extra, out):
        ts = self._clock.now()
        payload = {"metadata": _Ext(_PACKED, op.metadata)}
        fold = {"metadata": op.metadata}
        if op.parent is not None:
            payload["parent"] = fold["parent"] = op.parent
            payload["fork_seq"] = fold["fork_seq"] = op.fork_seq
        seq, _, _ = self._emit(req, op, "run.begin", payload, fold, ts, extra, builder, undo)
        return run_info(req.run_id, self.state.runs.runs[req.run_id]), ["r", seq]

    def _op_end(self, req, op: EndRun, builder, undo, extra, out):
        ts = self._clock.now()
        payload = {"status": op.status}
        fold = {"status": op.status}
        if op.summary is not None:
            payload["summary"] = _Ext(_PACKED, op.summary)
            fold["summary"] = op.summary
        seq, _, _ = self._emit(req, op, "run.end", payload, fold, ts, extra, builder, undo)
        return run_info(req.run_id, self.state.runs.runs[req.run_id]), ["r", seq]

    _handlers: dict[type, Callable] = {
        Put: _op_put,
        Delete: _op_delete,
        Append: _op_append,
        AddTrace: _op_trace,
        BeginRun: _op_begin,
        EndRun: _op_end,
        RecordInput: decide_record,
        **DOC_HANDLERS,
        **VEC_HANDLERS,
    }

    # -- idempotency ---------------------------------------------------------------------------

    @staticmethod
    def _check_fp(write_id: str, fp: bytes, stored_fp: bytes) -> None:
        if fp != stored_fp:
            raise ConflictError(
                f"write id {write_id!r} was already used for a different write; "
                "use a fresh write id for every distinct write",
                key=write_id,
            )

    def _idem_result(self, write_id: str, fp: bytes, known: bytes) -> list:
        _first, _last, stored_fp, wire = msgpack.unpackb(known)
        self._check_fp(write_id, fp, stored_fp)
        out = []
        reader = self.reader
        for tag, *rest in wire:
            if tag == "v" or tag == "b":
                out.append(rest[0])
            elif tag == "e":
                out.append(reader.event(rest[0]))
            elif tag == "t":
                ev = reader.event(rest[0])
                out.append(_trace_from_event(ev))
            elif tag == "r":
                ev = reader.event(rest[0])
                out.append(reader.run_info(ev.run_id))
            else:  # pragma: no cover - written by a newer version
                raise CorruptionError(f"idempotency entry {write_id!r} has an unknown result tag {tag!r}")
        return out

    # -- snapshots -----------------------------------------------------------------------------

    def _maybe_snapshot(self) -> None:
        since = self.state.seq - self._last_snapshot_seq
        if since >= self.settings.snapshot_every_events or (
            since > 0 and time.monotonic() - self._last_snapshot_at >= self.settings.snapshot_every_s
        ):
            self.snapshot()

    def snapshot(self) -> int:
        """Write a snapshot of every projection now. Returns its seq (0 when empty)."""
        with self._lock:
            self._check_open()
            return self._snapshot()

    def _snapshot(self) -> int:
        state = self.state
        if state.seq == 0:
            return 0
        if state.seq != self._last_snapshot_seq:
            user = {}
            for name, proj in self.user.items():
                packed = proj.snapshot_state() if proj.seq == state.seq else None
                if packed is not None:
                    user[name] = [proj.version, proj.seq, packed]
            blob = seal_snapshot({"state": state.dump(), "hash": self._prev, "user": user})
            self.journal.put_snapshot(state.seq, blob, self.settings.snapshots_kept)
            self._last_snapshot_seq = state.seq
        self._last_snapshot_at = time.monotonic()
        return state.seq

    # -- reads ---------------------------------------------------------------------------------

    def head(self) -> int:
        """Seq of the newest durable event (0 when empty)."""
        self._check_open()
        return self.journal.head_seq

    def entry(self, key: str):
        with self._lock:
            self._check_open()
            return self.reader.entry(key)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            self._check_open()
            return self.reader.get(key, default)

    def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        with self._lock:
            self._check_open()
            return self.reader.list(prefix, start_after=start_after, limit=limit)

    def items(self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None):
        with self._lock:
            self._check_open()
            return self.reader.items(prefix, start_after=start_after, limit=limit)

    def why(self, key: str, *, limit: int = 100) -> list[Event]:
        with self._lock:
            self._check_open()
            return self.reader.why(key, limit=limit)

    def run_info(self, run_id: str):
        with self._lock:
            self._check_open()
            return self.reader.run_info(run_id)

    def runs(self, *, status: str | None = None, agent: str | None = None):
        with self._lock:
            self._check_open()
            return self.reader.runs(status=status, agent=agent)

    def traces(self, run_id: str | None = None, *, kind: str | None = None, event: int | None = None):
        with self._lock:
            self._check_open()
            return self.reader.traces(run_id, kind=kind, event=event)

    def event(self, seq: int) -> Event:
        self._check_open()
        return self.reader.event(seq)

    def read_events(
        self,
        run_id: str | None = None,
        *,
        after: int | None = None,
        upto: int | None = None,
        types: Any = None,
        limit: int | None = None,
    ) -> list[Event]:
        # Journal reads need no lock: the reader never goes past the journal's durable head.
        self._check_open()
        return self.reader.read_events(run_id, after=after, upto=upto, types=types, limit=limit)

    def projection(self, name: str) -> Any:
        with self._lock:
            self._check_open()
            return self.reader.projection(name)

    def digest(self) -> str:
        """Hex digest of the built-in projection state (equal for equal journals)."""
        with self._lock:
            self._check_open()
            return self.state.digest()

    _VIEW_METHODS = READ_METHODS

    def open_view(self, seq: int) -> int:
        """Build (or reuse) the view after event ``seq``; ``view_call`` then reads from it."""
        self._view(seq)
        return seq

    def view_call(self, seq: int, method: str, args: tuple = (), kwargs: dict | None = None) -> Any:
        """Call a read method of the view after event ``seq``."""
        if method not in self._VIEW_METHODS:
            raise ValidationError(f"{method!r} is not a read method of a past view")
        return getattr(self._view(seq), method)(*args, **(kwargs or {}))

    def _view(self, seq: int) -> Reader:
        key = (seq, tuple((n, p.version, id(p.fold)) for n, p in self.user.items()))
        with self._lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
        view = self.at(seq)
        with self._lock:
            self._views[key] = view
            while len(self._views) > 8:
                self._views.popitem(last=False)
        return view

    def at(self, seq: int) -> Reader:
        """A read-only view of the namespace as it was right after event ``seq``."""
        with self._lock:
            self._check_open()
            head = self.state.seq
            if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= head:
                raise ValidationError(f"at() needs a seq between 0 and the head ({head}), got {seq!r}")
            users = {
                name: UserProjection(name, p.fold, unpack_value(p.initial), p.version)
                for name, p in self.user.items()
            }
            state, prev, snap_user = self._load_snapshot(seq)
            for name, proj in users.items():
                saved = snap_user.get(name)
                if saved is not None and saved[0] == proj.version and saved[1] == state.seq:
                    proj.reset(saved[2], state.seq)
                else:
                    self._fold_user(proj, 0, state.seq)
            self._fold_range(state, state.seq, seq, prev, list(users.values()))
        ts_ms = physical_ms(state.ts)
        return Reader(state, self.journal, upto=seq, clock=lambda: ts_ms, user=users)

    # -- forks and reads as a run saw the namespace (projections/branches.py) --------------------

    def run_read(
        self,
        run_id: str | None,
        method: str,
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        upto: int | None = None,
    ) -> Any:
        """Call read ``method`` as run ``run_id`` sees the namespace (a fork: its branch), now
        or right after event ``upto``."""
        return self.branches.read(run_id, method, args, kwargs, upto)

    def fork(
        self,
        run_id: str,
        new_run_id: str,
        *,
        at: int | None = None,
        agent: str | None = None,
        metadata: dict | None = None,
        write_id: str | None = None,
    ):
        """Begin run ``new_run_id`` as a fork of ``run_id`` after event ``at`` (default: the
        parent's newest event), written by ``agent`` (default: the parent's). Returns its RunInfo."""
        with self._lock:
            self._check_open()
            parent = self.reader.run_info(run_id)
        op = begin_op(metadata=metadata, parent=run_id, fork_seq=parent.last_seq if at is None else at)
        request = make_request(new_run_id, agent or parent.agent, [op], write_id=write_id)
        return self.submit(request)[0]

    def replay_run(self, run_id: str) -> ReplayReport:
        """Re-fold ``run_id``'s history from the state before its first event and check every
        transition against what was recorded (``projections.refold``). Writes nothing."""
        return refold_run(self, run_id)

    def replay_decide(self, run_id: str, request: Request, *, upto: int) -> Redecision:
        """Decide a replayed ``request`` against ``run_id``'s view after event ``upto`` and
        compare its events with the record (``projections.redecide``). Writes nothing."""
        return replay_decide(self, run_id, request, upto)

    def verify(
        self, *, projections: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> VerifyReport:
        """Walk the hash chain and every index; with ``projections=True`` also check that the
        live projections equal a fresh fold of the whole journal. Blocks writers meanwhile."""
        with self._lock:
            self._check_open()
            report = verify_journal(self.journal, progress)
            if report.ok and projections:
                fresh = ProjectionSet()
                self._fold_range(fresh, 0, self.state.seq, ZERO_HASH, [])
                if fresh.digest() != self.state.digest():
                    return VerifyReport(
                        ok=False,
                        checked=report.checked,
                        reason="the live projections differ from a fresh fold of the journal",
                    )
            return report

    # -- lifecycle -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise NamespaceUnavailable(f"namespace {self.name!r} is closed; open it again")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Snapshot what is new and release the RocksDB directory. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if self.state.seq != self._last_snapshot_seq and not self.read_only:
                    self._snapshot()
            finally:
                self._closed = True
                self.journal.close()

    def __enter__(self) -> NamespaceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fingerprint(req: Request) -> bytes:
    """What a write asked for, so a reused write id with different content is caught."""
    body = msgspec.msgpack.encode([req.run_id, req.agent, req.tool, req.ops, req.source, req.fence])
    return blake(body)[:16]


class EventFields:
    """An appended event as the engine encoded it: ``fields`` (canonical positions, the payload
    still packed) and its ``hash``; ``seq`` lets a trace in the same write link to it."""

    __slots__ = ("fields", "hash", "seq")

    def __init__(self, fields: list, digest: bytes):
        self.seq = fields[0]
        self.fields = fields
        self.hash = digest


def _event_from_live(fields: list, digest: bytes, payload: bytes) -> Event:
    source = fields[8]
    return Event(
        seq=fields[0],
        id=fields[1],
        ts=fields[2],
        run_id=fields[3],
        agent=fields[4],
        tool=fields[5],
        type=fields[6],
        payload=unpack_value(payload),
        source=None if source is None else unpack_value(source),
        write_id=fields[9],
        prev=fields[10],
        hash=digest,
        extra=fields[11],
    )


def _trace_from_event(ev: Event) -> Trace:
    return Trace(
        seq=ev.seq,
        run_id=ev.run_id,
        kind=ev.type[len("trace.") :],
        data=ev.payload["data"],
        event=ev.payload.get("event"),
        ts=ev.ts,
        agent=ev.agent,
        tool=ev.tool,
    )
