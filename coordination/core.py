"""``CoordinatorCore``: the event-sourced write path the coordinator's operations run on.

It owns the coordinator's journal and state, one re-entrant lock, and the order of every change.
Changing calls go through a group commit: the calls queued meanwhile are decided one after
another under the lock (each folded at once, so the next sees it), their events are written in
one ``WriteBatch`` (one sync with ``durability="fsync"``), waiters are woken, and only then are
the callers answered. Readers take the same lock, so no one sees a change before it is durable;
if the write fails the state is rebuilt from the journal and no call of the group is answered.
Recovery folds the newest sound snapshot plus the journal tail (``coordination.recovery``).

Hooks registered with ``on_change`` run after the write, outside the lock, on the thread that
led the group; they are how an asyncio host learns of changes without polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgpack

from coordination.recovery import fold_all, newest_snapshot_seq, recover, write_snapshot
from coordination.validate import check_name
from coordination.views import answer_from_event
from journal.appender import Appender
from journal.codec import blake, unpack_raw, unpack_value
from journal.errors import ConflictError, CorruptionError, NamespaceUnavailable, SwarmlogError
from journal.hlc import HybridClock
from journal.settings import Settings
from journal.store import CommitBuilder, Journal
from journal.verify import VerifyReport, verify_journal

log = logging.getLogger("swarmlog.coordinator")

RUN_ID = "coordinator"
"""The run every coordinator event belongs to (the coordinator journal has no other runs)."""

ChangeHook = Callable[[str, str, int], None]
"""``hook(kind, name, revision)``: called after a change is durable and visible."""

MISSING = object()
"""What ``_idempotent`` returns for a write id it has not seen."""


class _Slot:
    """A call waiting in the group-commit queue."""

    __slots__ = ("args", "decide", "done", "error", "result")

    def __init__(self, decide: Callable, args: tuple):
        self.decide = decide
        self.args = args
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class CoordinatorCore:
    """Journal, state, lock and hooks of one coordinator. ``CoordinatorEngine`` adds the calls."""

    def __init__(
        self,
        path: str,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.path = path
        self.settings = settings or Settings()
        self._clock = clock
        self.journal = Journal(path, self.settings)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._queue_cv = threading.Condition(threading.Lock())
        self._queue: deque[_Slot] = deque()
        self._builder: CommitBuilder | None = None  # the commit of the group being decided
        self._group_idem: dict[str, tuple[bytes, bytes]] = {}  # write ids decided in that group
        self._hooks: list[ChangeHook] = []
        self._closed = False
        self.recovery_notes: list[str] = []
        try:
            self.state = recover(self.journal, self.recovery_notes)
        except BaseException:
            self.journal.close()
            raise
        self._last_snapshot_seq = newest_snapshot_seq(self.journal)
        self._last_snapshot_at = time.monotonic()
        self._appender = Appender(self.journal)
        self._hlc = HybridClock(lambda: int(self._clock() * 1000))
        self._hlc.observe(self.journal.head_ts)

    # -- time ------------------------------------------------------------------------------------

    def now(self) -> float:
        """The coordinator's time in seconds: its clock, but never before its newest event."""
        return max(self._clock(), self.state.now)

    def on_change(self, hook: ChangeHook) -> Callable[[], None]:
        """Call ``hook(kind, name, revision)`` after every change (kind is ``"record"`` or
        ``"lease"``), once it is durable and visible, outside the engine's lock, on the thread
        that led its group commit (before that thread's own call returns; other callers of the
        group may get their answers first). Hooks must be quick and must not block; one that
        raises is logged. Returns a function that removes the hook."""
        with self._lock:
            self._hooks.append(hook)

        def remove() -> None:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    # -- the write path --------------------------------------------------------------------------

    def _mutate(self, decide: Callable, *args: Any) -> Any:
        """Run ``decide(*args) -> (answer, changes)`` in a group commit and return its answer.

        Calls that arrive while a commit is in flight queue up; the first of them leads the
        next group (as in LevelDB): it decides every queued call in order under the lock —
        each sees the effects of those before it — writes all their events in one
        ``WriteBatch`` (one fsync), and only then hands out the answers.
        """
        slot = _Slot(decide, args)
        cv = self._queue_cv
        with cv:
            self._queue.append(slot)
            while not slot.done and self._queue[0] is not slot:
                cv.wait()
            group = None if slot.done else list(self._queue)
        if group is not None:
            changes: list = []
            try:
                changes = self._run_group(group)
            except BaseException as exc:  # never leave followers waiting
                for s in group:
                    s.error = exc
                raise
            finally:
                with cv:
                    for s in group:
                        self._queue.popleft()
                        s.done = True
                    cv.notify_all()
            self._fire(changes)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run_group(self, group: list[_Slot]) -> list[tuple[str, str, int]]:
        """Decide every call of ``group``, write their events at once, and set each slot's
        answer or error. Returns what changed, for the hooks."""
        with self._lock:
            if self._closed:
                err = NamespaceUnavailable(f"coordinator {self.path} is closed; open it again")
                for s in group:
                    s.error = err
                return []
            app = self._appender
            builder = self._builder = self.journal.builder()
            self._group_idem = {}
            changes: list[tuple[str, str, int]] = []
            try:
                for s in group:
                    mark = builder.mark()
                    try:
                        s.result, slot_changes = s.decide(*s.args)
                    except Exception as exc:
                        if builder.mark() != mark:
                            raise  # events were folded, then something broke: see below
                        s.error = exc
                        continue
                    changes += slot_changes
                if builder.records:
                    app.write(builder)
            except BaseException as exc:
                # The state holds events of this group that are not durable: rebuild it from
                # the journal, and answer no one (answers were decided against that state).
                # When even that fails, close: better unavailable than answering from a state
                # the journal does not hold.
                try:
                    self.state = recover(self.journal, self.recovery_notes)
                    app.reset()
                except Exception:
                    log.exception("coordinator %s: cannot rebuild the state; closing", self.path)
                    self._closed = True
                    self._changed.notify_all()
                    try:
                        self.journal.close()
                    except Exception:
                        log.exception("coordinator %s: closing the journal failed", self.path)
                err = (
                    exc
                    if isinstance(exc, SwarmlogError)
                    else NamespaceUnavailable(
                        f"coordinator {self.path}: the journal write failed ({exc}); nothing was "
                        "acknowledged. Check the disk and retry (with the same write id)."
                    )
                )
                for s in group:
                    s.error = err
                if not isinstance(exc, Exception):
                    raise
                return []
            finally:
                self._builder = None
                self._group_idem = {}
            if changes:
                self._changed.notify_all()
                self._maybe_snapshot()
            return changes

    def _fire(self, changes: list[tuple[str, str, int]]) -> None:
        if not changes:
            return
        with self._lock:
            hooks = list(self._hooks)
        for kind, name, revision in changes:
            for hook in hooks:
                try:
                    hook(kind, name, revision)
                except Exception:
                    log.exception("coordinator change hook %r failed", hook)

    def _commit(
        self, events: list[tuple[str, dict]], agent: str | None, write_id: str | None, fp: bytes | None
    ) -> list[tuple[str, str, int]]:
        """Add ``events`` to the group's commit and fold them, so the next call of the group
        sees them. Returns ``(kind, name, seq)`` per event. Called by a decide function, last,
        under the lock; the group writes (and only then answers) once every call is decided."""
        app = self._appender
        builder = self._builder
        mark = (builder.mark(), app.mark())
        staged = []
        try:
            for type_, payload in events:
                seq, _, canonical = app.emit(
                    builder,
                    ts=self._hlc.now(),
                    run_id=RUN_ID,
                    agent=agent,
                    tool=None,
                    type_=type_,
                    payload=payload,
                    write_id=write_id,
                )
                staged.append((seq, canonical))
        except BaseException:
            builder.rollback(mark[0])
            app.rollback(mark[1])
            raise
        if write_id is not None:
            first, last = staged[0][0], staged[-1][0]
            builder.add_idem(write_id, msgpack.packb([first, last, fp, None], use_bin_type=True))
            self._group_idem[write_id] = (fp, staged[0][1])
        changes = []
        for seq, canonical in staged:
            kind, name = self.state.apply(unpack_raw(canonical))
            changes.append((kind, name, seq))
        return changes

    def _idempotent(self, write_id: str | None, fp: bytes) -> Any:
        """The original answer of a call already made with ``write_id``, else ``MISSING``."""
        if write_id is None:
            return MISSING
        pending = self._group_idem.get(write_id)
        if pending is not None:
            stored_fp, canonical = pending
        else:
            known = self.journal.idem_get(write_id)
            if known is None:
                return MISSING
            first, _last, stored_fp, _ = msgpack.unpackb(known)
            canonical = None
        if stored_fp != fp:
            raise ConflictError(
                f"write id {write_id!r} was already used for a different coordinator call; "
                "use a fresh write id for every distinct call",
                key=write_id,
            )
        if canonical is None:
            _, canonical = self.journal.canonical(first)
        return answer_from_event(unpack_value(canonical))

    def _check_identity(self, agent: str | None, write_id: str | None) -> None:
        check_name(agent, "agent", optional=True)
        check_name(write_id, "write_id", optional=True)

    # -- recovery and snapshots ------------------------------------------------------------------

    def _maybe_snapshot(self) -> None:
        since = self.state.seq - self._last_snapshot_seq
        if since >= self.settings.snapshot_every_events or (
            since and time.monotonic() - self._last_snapshot_at >= self.settings.snapshot_every_s
        ):
            try:
                self.snapshot()
            except Exception:  # a snapshot is an optimisation; the journal stays the truth
                log.exception("coordinator %s: snapshot failed", self.path)

    def snapshot(self) -> int:
        """Store the state now (recovery then replays only what follows). Returns its seq."""
        with self._lock:
            self._check_open()
            seq = self.state.seq
            if seq:
                write_snapshot(self.journal, self.state, self._appender.prev, self.settings.snapshots_kept)
            self._last_snapshot_seq = seq
            self._last_snapshot_at = time.monotonic()
            return seq

    # -- checks and lifecycle --------------------------------------------------------------------

    def head(self) -> int:
        """Seq of the newest coordinator event (0 when none)."""
        with self._lock:
            self._check_open()
            return self.state.seq

    def digest(self) -> str:
        """Hex digest of the state (equal for equal journals)."""
        with self._lock:
            self._check_open()
            return self.state.digest()

    def verify(self) -> VerifyReport:
        """Walk the journal's hash chain and indexes, and check that the live state equals a
        fresh fold of the whole journal."""
        with self._lock:
            self._check_open()
            report = verify_journal(self.journal)
            if not report.ok:
                return report
            try:
                fresh = fold_all(self.journal)
            except CorruptionError as exc:
                return VerifyReport(ok=False, checked=report.checked, reason=str(exc))
            if fresh.digest() != self.state.digest():
                return VerifyReport(
                    ok=False, checked=report.checked, reason="the live state differs from a fresh fold"
                )
            return report

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise NamespaceUnavailable(f"coordinator {self.path} is closed; open it again")

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot what is new (unless ``snapshot=False``: the next open then replays the tail),
        release the directory and wake every waiter, who get ``NamespaceUnavailable``. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                if snapshot and self.state.seq != self._last_snapshot_seq:
                    self.snapshot()
            except Exception:
                log.exception("coordinator %s: snapshot on close failed", self.path)
            finally:
                self._closed = True
                self.journal.close()
                self._changed.notify_all()

    def __enter__(self) -> CoordinatorCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fingerprint(op: str, name: str, a: Any, b: Any, agent: str | None) -> bytes:
    """What a call asked for, so a write id reused for a different call is caught."""
    return blake(msgpack.packb([op, name, a, b, agent], use_bin_type=True))[:16]
