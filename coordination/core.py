"""``CoordinatorCore``: the event-sourced write path the coordinator's operations run on.

It owns the coordinator's journal and state, one re-entrant lock, and the order of every change:
decide under the lock, journal the events in one ``WriteBatch`` (synced with
``durability="fsync"``), fold them, wake waiters, and only then answer — so nothing is answered
that a restart could lose, and a failed write leaves state and chain head untouched. Recovery
folds the newest sound snapshot plus the journal tail (``coordination.recovery``).

Hooks registered with ``on_change`` run after the lock is released, on the thread that made the
change; they are how an asyncio host learns of changes without polling.
"""

from __future__ import annotations

import logging
import threading
import time
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
from journal.store import Journal
from journal.verify import VerifyReport, verify_journal

log = logging.getLogger("swarmlog.coordinator")

RUN_ID = "coordinator"
"""The run every coordinator event belongs to (the coordinator journal has no other runs)."""

ChangeHook = Callable[[str, str, int], None]
"""``hook(kind, name, revision)``: called after a change is durable and visible."""

MISSING = object()
"""What ``_idempotent`` returns for a write id it has not seen."""


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
        ``"lease"``), on the thread that made it, after it is durable and visible and outside
        the engine's lock. Hooks must be quick and must not block; one that raises is logged.
        Returns a function that removes the hook."""
        with self._lock:
            self._hooks.append(hook)

        def remove() -> None:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    # -- the write path --------------------------------------------------------------------------

    def _mutate(self, decide: Callable, *args: Any) -> Any:
        """Run ``decide`` under the lock, then tell the hooks (outside it) what changed."""
        with self._lock:
            self._check_open()
            result, changes = decide(*args)
            hooks = list(self._hooks) if changes else None
        if hooks:
            for kind, name, revision in changes:
                for hook in hooks:
                    try:
                        hook(kind, name, revision)
                    except Exception:
                        log.exception("coordinator change hook %r failed", hook)
        return result

    def _commit(
        self, events: list[tuple[str, dict]], agent: str | None, write_id: str | None, fp: bytes | None
    ) -> list[tuple[str, str, int]]:
        """Journal ``events`` in one commit, then fold them. Returns ``(kind, name, seq)`` per
        event. Lock held. Nothing is folded (or answered) unless the write succeeded."""
        app = self._appender
        builder = self.journal.builder()
        written = []
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
                written.append((seq, canonical))
        except BaseException:
            app.reset()
            raise
        if write_id is not None:
            first, last = written[0][0], written[-1][0]
            builder.add_idem(write_id, msgpack.packb([first, last, fp, None], use_bin_type=True))
        try:
            app.write(builder)
        except SwarmlogError:
            raise
        except Exception as exc:
            raise NamespaceUnavailable(
                f"coordinator {self.path}: the journal write failed ({exc}); nothing was "
                "acknowledged. Check the disk and retry (with the same write id)."
            ) from exc
        changes = []
        for seq, canonical in written:
            kind, name = self.state.apply(unpack_raw(canonical))
            changes.append((kind, name, seq))
        self._changed.notify_all()
        self._maybe_snapshot()
        return changes

    def _idempotent(self, write_id: str | None, fp: bytes) -> Any:
        """The original answer of a call already made with ``write_id``, else ``MISSING``."""
        if write_id is None:
            return MISSING
        known = self.journal.idem_get(write_id)
        if known is None:
            return MISSING
        first, _last, stored_fp, _ = msgpack.unpackb(known)
        if stored_fp != fp:
            raise ConflictError(
                f"write id {write_id!r} was already used for a different coordinator call; "
                "use a fresh write id for every distinct call",
                key=write_id,
            )
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
