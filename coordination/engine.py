"""``CoordinatorEngine``: CAS records, leases and watches over one journal, thread-safe, no Ray.

Every change is decided against the current state under one lock, journaled (concurrent calls
share one ``WriteBatch``, synced once with ``durability="fsync"``; see ``coordination.core``),
folded into the state and only then answered; a call that changes nothing (a CAS that fails, a lease held by someone else) writes
nothing. Recovery folds the newest sound snapshot plus the journal tail, so records, versions and
the fencing-token counter come back exactly as they were acknowledged — and a grant that was
journaled but never answered still counts: the next token is above it.

Time. The engine reads its clock (``clock``, seconds, ``time.time`` by default) only when it
decides, never while folding: ``now()`` is ``max(clock(), time of the newest event)`` so the
coordinator's time never goes back, even across a restart on a clock that stepped back, and
every event records the time it was decided at. Leases lapse by this time; lease expiry becomes
an event (``lease.expire``) when ``expire_due()`` runs, which ``wait_changed`` does by itself and
an asyncio host does from a timer set to ``next_expiry()``. A lease is free once its time is
up whether or not the expiry event was written yet.

Idempotency. Every changing call takes an optional ``write_id``; a call repeated with the same
id (a client retrying after a lost answer or a restart) gets the original answer and writes
nothing. Calls that changed nothing record nothing and are simply decided again.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from coordination.core import MISSING, ChangeHook, CoordinatorCore, fingerprint
from coordination.records import Lease, LeaseStatus, Record
from coordination.state import (
    DELETE,
    EXPIRE,
    GRANT,
    L_EXPIRES,
    L_HOLDER,
    L_REVISION,
    L_TOKEN,
    PUT,
    R_REVISION,
    RELEASE,
    RENEW,
)
from coordination.validate import check_name, check_ttl, check_version, pack_record_value
from coordination.views import lease_refusal, lease_view, record_view
from journal.codec import packed, unpack_value
from journal.errors import ValidationError

Kind = Literal["record", "lease"]


class CoordinatorEngine(CoordinatorCore):
    """The coordinator's state machine: open it on a directory, call it from any thread.

    ``CoordinatorEngine(path, settings=None, *, clock=time.time)``; ``clock`` returns seconds.
    """

    # -- CAS records -----------------------------------------------------------------------------

    def read_state(self, name: str) -> Record:
        """The record ``name`` now; ``version`` 0 and ``value`` None when it is absent."""
        check_name(name)
        with self._lock:
            self._check_open()
            return record_view(self.state, name)

    def cas(
        self,
        name: str,
        expected_version: int,
        value: Any,
        *,
        agent: str | None = None,
        write_id: str | None = None,
    ) -> tuple[bool, Record]:
        """Set ``name`` to ``value`` if its version is ``expected_version`` (0: only if absent).

        Returns ``(True, new record)`` once the write is durable, or ``(False, current record)``
        having written nothing. Raises ``ValidationError`` for a bad name, version or value.
        """
        check_name(name)
        check_version(expected_version)
        data = pack_record_value(value, name, self.settings)
        self._check_identity(agent, write_id)
        fp = fingerprint("cas", name, expected_version, data, agent)
        return self._mutate(self._cas, name, expected_version, data, agent, write_id, fp)

    def put(self, name: str, value: Any, *, agent: str | None = None, write_id: str | None = None) -> Record:
        """Set ``name`` to ``value`` whatever its version; returns the new record."""
        check_name(name)
        data = pack_record_value(value, name, self.settings)
        self._check_identity(agent, write_id)
        fp = fingerprint("put", name, None, data, agent)
        return self._mutate(self._cas, name, None, data, agent, write_id, fp)[1]

    def delete(
        self,
        name: str,
        expected_version: int | None = None,
        *,
        agent: str | None = None,
        write_id: str | None = None,
    ) -> tuple[bool, Record]:
        """Delete ``name`` if it exists (and has ``expected_version``, when given).

        Returns ``(True, absent record)`` or ``(False, current record)`` having written nothing.
        A later create starts above the deleted version, so versions of a name never repeat.
        """
        check_name(name)
        if expected_version is not None:
            check_version(expected_version)
        self._check_identity(agent, write_id)
        fp = fingerprint("delete", name, expected_version, None, agent)
        return self._mutate(self._delete, name, expected_version, agent, write_id, fp)

    def _cas(self, name, expected, data, agent, write_id, fp):
        known = self._idempotent(write_id, fp)
        if known is not MISSING:
            return (True, known), []
        state = self.state
        current = state.record_version(name)
        if expected is not None and current != expected:
            return (False, record_view(self.state, name)), []
        version = state.next_version(name)
        at = self.now()
        payload = {"name": name, "value": packed(data), "version": version, "prev": current, "at": at}
        changes = self._commit([(PUT, payload)], agent, write_id, fp)
        return (
            True,
            Record(name=name, value=unpack_value(data), version=version, revision=changes[0][2]),
        ), changes

    def _delete(self, name, expected, agent, write_id, fp):
        known = self._idempotent(write_id, fp)
        if known is not MISSING:
            return (True, known), []
        current = self.state.record_version(name)
        if current == 0 or (expected is not None and current != expected):
            return (False, record_view(self.state, name)), []
        payload = {"name": name, "version": current, "at": self.now()}
        changes = self._commit([(DELETE, payload)], agent, write_id, fp)
        return (True, record_view(self.state, name)), changes

    # -- leases ----------------------------------------------------------------------------------

    def acquire_lease(
        self,
        name: str,
        holder: str,
        ttl: float,
        *,
        agent: str | None = None,
        write_id: str | None = None,
    ) -> Lease | None:
        """Grant ``name`` to ``holder`` for ``ttl`` seconds, or None when someone else holds it.

        Every grant carries a new fencing token, above every token granted before (for any
        lease, across restarts), and is journaled before it is returned. Acquiring a lease one
        already holds extends it under a new token, which fences that holder's older writes;
        use ``renew_lease`` to extend it and keep the token.
        """
        check_name(name)
        check_name(holder, "holder")
        ttl = check_ttl(ttl)
        self._check_identity(agent, write_id)
        fp = fingerprint("acquire", name, holder, ttl, agent)
        return self._mutate(self._acquire, name, holder, ttl, agent or holder, write_id, fp)

    def renew_lease(self, lease: Lease, ttl: float | None = None, *, write_id: str | None = None) -> Lease:
        """Extend ``lease`` to ``ttl`` seconds from now (its own ttl by default), same token.

        Raises ``LeaseError`` when it expired, was released or was granted to someone since.
        """
        _check_lease(lease)
        ttl = lease.ttl if ttl is None else check_ttl(ttl)
        self._check_identity(None, write_id)
        fp = fingerprint("renew", lease.name, [lease.holder, lease.token], ttl, None)
        return self._mutate(self._renew, lease, ttl, write_id, fp)

    def release_lease(self, lease: Lease, *, write_id: str | None = None) -> bool:
        """Give ``lease`` up. True when it was still held under this grant (now free), False
        when it had expired, been released or been granted to someone since (nothing written)."""
        _check_lease(lease)
        self._check_identity(None, write_id)
        fp = fingerprint("release", lease.name, [lease.holder, lease.token], None, None)
        return self._mutate(self._release, lease, write_id, fp)

    def lease_status(self, name: str) -> LeaseStatus:
        """Who holds ``name`` now (by the coordinator's time), if anyone."""
        check_name(name)
        with self._lock:
            self._check_open()
            return lease_view(self.state, name, self.now())

    def expire_due(self) -> list[str]:
        """Journal the expiry of every lease whose time is up; returns their names.

        Leases are free once their time is up anyway; the event makes the change visible to
        watchers (and to the history). Call it from a timer set to ``next_expiry()``.
        """
        return self._mutate(self._expire_due)

    def next_expiry(self) -> float | None:
        """The earliest expiry among held leases (coordinator time), or None when none is held."""
        with self._lock:
            self._check_open()
            times = [e[L_EXPIRES] for e in self.state.leases.values() if e[L_HOLDER] is not None]
            return min(times) if times else None

    def _acquire(self, name, holder, ttl, agent, write_id, fp):
        known = self._idempotent(write_id, fp)
        if known is not MISSING:
            return known, []
        at = self.now()
        live = self.state.live_lease(name, at)
        if live is not None and live[L_HOLDER] != holder:
            return None, []
        token = self.state.last_token + 1
        lease = Lease(name=name, holder=holder, token=token, expires_at=at + ttl, ttl=ttl)
        payload = {
            "name": name,
            "holder": holder,
            "token": token,
            "ttl": ttl,
            "expires_at": lease.expires_at,
            "at": at,
        }
        return lease, self._commit([(GRANT, payload)], agent, write_id, fp)

    def _renew(self, lease, ttl, write_id, fp):
        known = self._idempotent(write_id, fp)
        if known is not MISSING:
            return known, []
        at = self.now()
        refusal = lease_refusal(self.state, lease, at, "renew")
        if refusal is not None:
            raise refusal
        renewed = Lease(name=lease.name, holder=lease.holder, token=lease.token, expires_at=at + ttl, ttl=ttl)
        payload = {
            "name": lease.name,
            "holder": lease.holder,
            "token": lease.token,
            "ttl": ttl,
            "expires_at": renewed.expires_at,
            "at": at,
        }
        return renewed, self._commit([(RENEW, payload)], lease.holder, write_id, fp)

    def _release(self, lease, write_id, fp):
        known = self._idempotent(write_id, fp)
        if known is not MISSING:
            return True, []
        at = self.now()
        live = self.state.live_lease(lease.name, at)
        if live is None or live[L_TOKEN] != lease.token or live[L_HOLDER] != lease.holder:
            return False, []
        payload = {"name": lease.name, "holder": lease.holder, "token": lease.token, "at": at}
        return True, self._commit([(RELEASE, payload)], lease.holder, write_id, fp)

    def _expire_due(self):
        at = self.now()
        events = [
            (EXPIRE, {"name": name, "holder": e[L_HOLDER], "token": e[L_TOKEN], "at": at})
            for name, e in self.state.leases.items()
            if e[L_HOLDER] is not None and at >= e[L_EXPIRES]
        ]
        if not events:
            return [], []
        return [p["name"] for _, p in events], self._commit(events, None, None, None)

    # -- watches ---------------------------------------------------------------------------------

    def revision(self, name: str, *, kind: Kind = "record") -> int:
        """The change counter of a record or lease name (0: never changed)."""
        check_name(name)
        with self._lock:
            self._check_open()
            return self._revision(name, kind)

    def changed_since(
        self, name: str, revision: int, *, kind: Kind = "record"
    ) -> Record | LeaseStatus | None:
        """The record (or lease status) if it changed after ``revision``, else None. Never blocks."""
        check_name(name)
        check_version(revision, "revision")
        _check_kind(kind)
        with self._lock:
            self._check_open()
            return self._changed_since(name, revision, kind)

    def wait_changed(
        self, name: str, revision: int, timeout: float, *, kind: Kind = "record"
    ) -> Record | LeaseStatus | None:
        """Block until the record (or lease) ``name`` changes after ``revision``; returns it, or
        None when ``timeout`` seconds pass first. A held lease that runs out counts as a change
        (its expiry is journaled then). Raises ``NamespaceUnavailable`` if the engine closes."""
        check_name(name)
        check_version(revision, "revision")
        _check_kind(kind)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout >= 0:
            raise ValidationError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        deadline = time.monotonic() + timeout
        while True:
            expire = False
            with self._changed:
                self._check_open()
                found = self._changed_since(name, revision, kind)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait = remaining
                entry = self.state.leases.get(name) if kind == "lease" else None
                if entry is not None and entry[L_HOLDER] is not None:
                    due = entry[L_EXPIRES] - self.now()
                    expire = due <= 0
                    wait = min(wait, max(due, 0.0))
                if not expire:
                    self._changed.wait(wait)
            if expire:
                self.expire_due()

    def _revision(self, name: str, kind: Kind) -> int:
        if kind == "lease":
            entry = self.state.leases.get(name)
            return 0 if entry is None else entry[L_REVISION]
        entry = self.state.records.get(name)
        return 0 if entry is None else entry[R_REVISION]

    def _changed_since(self, name: str, revision: int, kind: Kind) -> Record | LeaseStatus | None:
        if self._revision(name, kind) <= revision:
            return None
        return lease_view(self.state, name, self.now()) if kind == "lease" else record_view(self.state, name)


def _check_lease(lease: Any) -> None:
    if not isinstance(lease, Lease):
        raise ValidationError(f"expected a Lease from acquire_lease, got {type(lease).__name__}")
    check_name(lease.name)
    check_name(lease.holder, "holder")


def _check_kind(kind: Any) -> None:
    if kind not in ("record", "lease"):
        raise ValidationError(f"kind must be 'record' or 'lease', got {kind!r}")


__all__ = ["ChangeHook", "CoordinatorEngine", "Kind"]
