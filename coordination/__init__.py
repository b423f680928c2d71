"""Coordination: compare-and-swap records, leases with fencing tokens, watches — no Ray.

``CoordinatorEngine`` is a pure, event-sourced, thread-safe state machine over its own journal;
``actors.CoordinatorActor`` hosts one per deployment. The pieces:

- ``records``: what callers get (``Record``, ``Lease``, ``LeaseStatus``).
- ``state``: the fold of coordinator events (no clock, no I/O).
- ``views``: state entries turned into answers, and why a lease call is refused.
- ``validate``: argument checks, usable client-side before a remote call.
- ``recovery``: snapshot + journal tail on open.
- ``core`` / ``engine``: the locked write path, and the calls on top of it.

Fencing tokens come from ONE counter shared by all leases (not one per lease): a token then
names a grant uniquely, "newer grant" means "larger token" whatever the lease, and the single
counter is one number to recover. A namespace keeps the newest token it has seen per lease name
and refuses older ones.

Locks and leader election are client-side logic over leases, and map onto them directly:

==========================================  =====================================================
client call                                 coordinator calls
==========================================  =====================================================
``lock(name, holder, ttl)`` (with-block)    ``acquire_lease("lock/" + name, holder, ttl)``; while
                                            None, ``wait_changed(..., kind="lease")`` and retry;
                                            renew every ttl/3 while held; ``release_lease`` on
                                            exit. Fence writes with the lease's token.
``campaign(name, candidate, ttl)``          ``acquire_lease("election/" + name, candidate, ttl)``
                                            until granted (waiting as for a lock); the token is
                                            the leader's term: it grows with every new leader.
``leader(name)``                            ``lease_status("election/" + name).holder`` (None:
                                            no leader now)
``resign(lease)``                           ``release_lease(lease)``
``observe(name)`` (leader changes)          ``wait_changed("election/" + name, revision,
                                            timeout, kind="lease")``
==========================================  =====================================================

``lock_name`` and ``election_name`` build those lease names so every client spells them alike.

Hosting the engine (what ``actors.CoordinatorActor`` relies on):

- Every public method is thread-safe (one re-entrant lock) and short, except ``wait_changed``,
  which blocks its thread: an asyncio host never calls it on the event loop. It waits with
  ``changed_since`` (non-blocking) plus ``on_change`` (hooks run on the writing thread, outside
  the lock; wake futures with ``loop.call_soon_threadsafe``), and keeps one timer at
  ``next_expiry()`` that calls ``expire_due()``, which turns lapsed leases into events (and so
  into hook calls).
- A changing call blocks its thread for one group commit: calls made meanwhile from other
  threads share one ``WriteBatch`` and one fsync, so a threaded host (``max_concurrency > 1``,
  or an asyncio host that runs calls in a thread pool) gets the batching for free.
- Pass a ``write_id`` with every changing call that may be retried (Ray re-executing a call
  after a restart): the retry gets the original answer. Without one, a retried CAS that had
  succeeded would answer ``(False, …)`` and a retried acquire would grant a second token.
- Recovery happens in the constructor; a second engine on an open directory raises
  ``NamespaceUnavailable`` (RocksDB's lock), which a killed process releases.
- Leases keep lapsing while the coordinator is down: holders cannot renew then, so a restart
  that takes longer than a lease's ttl loses that lease (fencing keeps this safe).
"""

from __future__ import annotations

from coordination.engine import ChangeHook, CoordinatorEngine, Kind
from coordination.records import Lease, LeaseStatus, Record

LOCK_PREFIX = "lock/"
ELECTION_PREFIX = "election/"


def lock_name(name: str) -> str:
    """The lease name behind lock ``name``."""
    return LOCK_PREFIX + name


def election_name(name: str) -> str:
    """The lease name behind election ``name``: its holder is the leader."""
    return ELECTION_PREFIX + name


__all__ = [
    "ELECTION_PREFIX",
    "LOCK_PREFIX",
    "ChangeHook",
    "CoordinatorEngine",
    "Kind",
    "Lease",
    "LeaseStatus",
    "Record",
    "election_name",
    "lock_name",
]
