"""Coordination for callers: CAS records, leases, locks, leader election and watches.

The coordinator serialises these for the whole deployment (see ``coordination``). Locks and
elections are leases with well-known names (``lock/<name>``, ``election/<name>``): waiting for one
is a small protocol (try to acquire; if someone holds it, watch the lease until it changes; try
again) written once as a generator of coordinator calls and driven either synchronously or with
``await``, so the blocking and the async client share one implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Generator
from typing import Any

from coordination import election_name, lock_name
from coordination.records import Lease
from coordination.validate import check_name, check_ttl, check_version
from journal.errors import LeaseError, NamespaceUnavailable, ValidationError

Protocol = Generator[tuple[str, tuple, dict], Any, Any]
MAX_WAIT_S = 5.0  # a waiter re-checks at least this often, so a missed wake-up costs little


def drive(backend: Any, protocol: Protocol) -> Any:
    """Run a protocol of coordinator calls on ``backend``: the result, or an awaitable of it."""
    if backend.is_async:
        return _drive_async(backend, protocol)
    try:
        call = next(protocol)
        while True:
            call = protocol.send(backend.coord(*call))
    except StopIteration as stop:
        return stop.value


async def _drive_async(backend: Any, protocol: Protocol) -> Any:
    try:
        call = next(protocol)
        while True:
            call = protocol.send(await backend.coord(*call))
    except StopIteration as stop:
        return stop.value


def acquire_protocol(name: str, holder: str, ttl: float, timeout: float | None) -> Protocol:
    """Acquire lease ``name``, waiting while someone else holds it; None when ``timeout`` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = yield ("lease_status", (name,), {})
        lease = yield ("acquire_lease", (name, holder, ttl), {})
        if lease is not None:
            return lease
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        wait = min(MAX_WAIT_S, ttl if remaining is None else min(ttl, remaining))
        yield ("wait_changed", (name, status.revision, wait), {"kind": "lease"})


def watch_protocol(name: str, revision: int | None, timeout: float, kind: str) -> Protocol:
    if revision is None:
        revision = yield ("revision", (name,), {"kind": kind})
    return (yield ("wait_changed", (name, revision, timeout), {"kind": kind}))


def _check_timeout(timeout: Any, *, optional: bool = True) -> None:
    if timeout is None and optional:
        return
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout >= 0:
        raise ValidationError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")


class Coordination:
    """The coordinator methods of ``Memory`` (mixed in; ``self._backend`` is the transport)."""

    _backend: Any

    def _coord(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._backend.coord(method, args, kwargs)

    # -- compare-and-swap records --------------------------------------------------------------

    def read_state(self, name: str) -> Any:
        """The record ``name``: ``Record(name, value, version, revision)``; version 0 when absent."""
        check_name(name)
        return self._coord("read_state", name)

    def cas(self, name: str, expected_version: int, value: Any, *, write_id: str | None = None) -> Any:
        """Set ``name`` to ``value`` if its version is ``expected_version`` (0: create if absent).
        Returns ``(True, new record)``, or ``(False, current record)`` having written nothing."""
        check_name(name)
        check_version(expected_version)
        return self._coord("cas", name, expected_version, value, write_id=write_id)

    def put_state(self, name: str, value: Any, *, write_id: str | None = None) -> Any:
        """Set record ``name`` to ``value`` whatever its version; returns the new record."""
        check_name(name)
        return self._coord("put", name, value, write_id=write_id)

    def delete_state(
        self, name: str, *, expected_version: int | None = None, write_id: str | None = None
    ) -> Any:
        """Delete record ``name`` (if at ``expected_version``): ``(deleted, record)``."""
        check_name(name)
        if expected_version is not None:
            check_version(expected_version)
        return self._coord("delete", name, expected_version, write_id=write_id)

    # -- leases --------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float, *, write_id: str | None = None) -> Any:
        """``Lease(name, holder, token, expires_at, ttl)``, or None while someone else holds it.
        Every grant carries a fencing token greater than any granted before."""
        check_name(name)
        check_name(holder, "holder")
        check_ttl(ttl)
        return self._coord("acquire_lease", name, holder, ttl, write_id=write_id)

    def renew_lease(self, lease: Lease, ttl: float | None = None) -> Any:
        """Extend a lease (same token); ``LeaseError`` once it expired or passed to someone else."""
        if ttl is not None:
            check_ttl(ttl)
        return self._coord("renew_lease", lease, ttl)

    def release_lease(self, lease: Lease) -> Any:
        """Give a lease up; False when it was no longer held under that grant."""
        return self._coord("release_lease", lease)

    def lease_status(self, name: str) -> Any:
        """``LeaseStatus(name, holder, token, expires_at, revision)``; holder None when free."""
        check_name(name)
        return self._coord("lease_status", name)

    def watch(
        self, name: str, revision: int | None = None, *, timeout: float = 10.0, kind: str = "record"
    ) -> Any:
        """Wait until record (or lease, ``kind="lease"``) ``name`` changes after ``revision`` (now
        when None); the changed ``Record``/``LeaseStatus``, or None after ``timeout`` seconds."""
        check_name(name)
        _check_timeout(timeout, optional=False)
        if kind not in ("record", "lease"):
            raise ValidationError(f"kind must be 'record' or 'lease', got {kind!r}")
        return drive(self._backend, watch_protocol(name, revision, timeout, kind))

    # -- locks and leader election -------------------------------------------------------------

    def lock(self, name: str, holder: str, *, ttl: float = 10.0, timeout: float | None = None) -> Lock:
        """A lock held as a lease that is renewed while the block runs: ``with mem.lock("db",
        holder="agent-7") as lock: run.put(k, v, fence=lock)``. Raises ``LeaseError`` when not
        acquired within ``timeout`` seconds (None: wait as long as it takes)."""
        check_name(name)
        check_name(holder, "holder")
        check_ttl(ttl)
        _check_timeout(timeout)
        return Lock(self._backend, lock_name(name), holder, ttl, timeout)

    def campaign(self, name: str, candidate: str, *, ttl: float = 10.0, timeout: float | None = None) -> Any:
        """Become leader of election ``name``: waits until elected and returns the ``Lease``
        (its token is the leader's term), or None after ``timeout``. Renew it with
        ``renew_lease`` (or hold ``lock``-style) and ``resign`` to step down."""
        check_name(name)
        check_name(candidate, "candidate")
        check_ttl(ttl)
        _check_timeout(timeout)
        return drive(self._backend, acquire_protocol(election_name(name), candidate, ttl, timeout))

    def leader(self, name: str) -> Any:
        """The current leader of election ``name``, or None."""
        check_name(name)
        return self._backend.coord("lease_status", (election_name(name),), {}, _holder)

    def resign(self, lease: Lease) -> Any:
        """Step down as leader (release the election lease)."""
        return self.release_lease(lease)


def _holder(status: Any) -> str | None:
    return status.holder


class Lock:
    """A held lease, renewed in the background every ttl/3 until the block exits.

    Pass it as ``fence=`` to namespace writes: they are refused (``StaleFencingToken``) once
    someone acquired the lock after it. ``lost`` turns True if a renewal was refused.
    """

    def __init__(self, backend: Any, name: str, holder: str, ttl: float, timeout: float | None):
        self._backend = backend
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.timeout = timeout
        self.lease: Lease | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None

    @property
    def token(self) -> int:
        """The fencing token of this grant."""
        if self.lease is None:
            raise LeaseError(f"lock {self.name!r} is not held")
        return self.lease.token

    def _granted(self, lease: Lease | None) -> None:
        if lease is None:
            raise LeaseError(
                f"lock {self.name!r} was not acquired within {self.timeout} s; someone else holds it"
            )
        self.lease = lease

    def _renewed(self, lease: Lease) -> None:
        self.lease = lease

    # -- blocking ------------------------------------------------------------------------------

    def __enter__(self) -> Lock:
        self._granted(drive(self._backend, acquire_protocol(self.name, self.holder, self.ttl, self.timeout)))
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"swarmlog-renew-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._renewed(self._backend.coord("renew_lease", (self.lease,), {}))
            except LeaseError:
                self.lost = True
                return
            except NamespaceUnavailable:
                continue  # the coordinator is restarting; the next attempt tells

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl)
        if self.lease is not None and not self.lost:
            with contextlib.suppress(LeaseError, NamespaceUnavailable):
                self._backend.coord("release_lease", (self.lease,), {})

    # -- async ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Lock:
        self._granted(
            await drive(self._backend, acquire_protocol(self.name, self.holder, self.ttl, self.timeout))
        )
        self._task = asyncio.get_running_loop().create_task(self._renew_task())
        return self

    async def _renew_task(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                self._renewed(await self._backend.coord("renew_lease", (self.lease,), {}))
            except LeaseError:
                self.lost = True
                return
            except NamespaceUnavailable:
                continue

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lease is not None and not self.lost:
            with contextlib.suppress(LeaseError, NamespaceUnavailable):
                await self._backend.coord("release_lease", (self.lease,), {})
