"""The coordinator's state: a pure fold of its journal's events.

``CoordinatorState.apply`` takes one record as decoded by ``journal.codec.unpack_raw`` and
changes the state. It reads nothing else — no clock, no randomness — so a journal always folds
to the same state. Each event carries the coordinator time (``at``) its decision used, and the
fold re-checks every decision against the state it is applied to (a grant only when the lease
was free at ``at``, a put only with the next version, a token only above all earlier ones), so a
journal that breaks a rule is reported as corrupt instead of being folded into a wrong state.

Event types and payloads (values are embedded packed, see ``journal.codec.packed``)::

    coord.put      {name, value, version, prev, at}     version = highest version of name + 1
    coord.delete   {name, version, at}                  version = the deleted version
    lease.grant    {name, holder, token, ttl, expires_at, at}
    lease.renew    {name, holder, token, ttl, expires_at, at}
    lease.release  {name, holder, token, at}
    lease.expire   {name, holder, token, at}
"""

from __future__ import annotations

from typing import Any

import msgpack

from journal.codec import blake
from journal.errors import CorruptionError
from journal.records import PAYLOAD, SEQ, TYPE

PUT = "coord.put"
DELETE = "coord.delete"
GRANT = "lease.grant"
RENEW = "lease.renew"
RELEASE = "lease.release"
EXPIRE = "lease.expire"
RECORD_TYPES = frozenset({PUT, DELETE})
LEASE_TYPES = frozenset({GRANT, RENEW, RELEASE, EXPIRE})

# Positions in a record entry: packed value (None while absent), version (0 while absent),
# revision (seq of the last change), highest version ever (so versions never repeat).
R_VALUE, R_VERSION, R_REVISION, R_HIGH = range(4)
# Positions in a lease entry: holder (None while free), token of the last grant, expiry
# (None while free), ttl of the last grant or renewal, revision (seq of the last event).
L_HOLDER, L_TOKEN, L_EXPIRES, L_TTL, L_REVISION = range(5)

SNAPSHOT_FORMAT = 1


class CoordinatorState:
    """CAS records and leases after event ``seq``."""

    __slots__ = ("seq", "now", "last_token", "records", "leases")

    def __init__(self) -> None:
        self.seq = 0
        self.now = 0.0  # coordinator time of the newest event: time never goes back
        self.last_token = 0  # the fencing-token counter (global over all leases)
        self.records: dict[str, list] = {}
        self.leases: dict[str, list] = {}

    # -- reading ---------------------------------------------------------------------------------

    def record_version(self, name: str) -> int:
        entry = self.records.get(name)
        return 0 if entry is None else entry[R_VERSION]

    def next_version(self, name: str) -> int:
        entry = self.records.get(name)
        return 1 if entry is None else entry[R_HIGH] + 1

    def live_lease(self, name: str, now: float) -> list | None:
        """The lease entry when someone holds ``name`` at time ``now``, else None."""
        entry = self.leases.get(name)
        if entry is None or entry[L_HOLDER] is None or now >= entry[L_EXPIRES]:
            return None
        return entry

    # -- the fold --------------------------------------------------------------------------------

    def apply(self, f: list) -> tuple[str, str]:
        """Fold one record; returns ``(kind, name)`` of what changed (kind: record or lease)."""
        seq = f[SEQ]
        if seq != self.seq + 1:
            raise CorruptionError(f"coordinator fold expected event {self.seq + 1} but got {seq}")
        type_ = f[TYPE]
        p = f[PAYLOAD]
        try:
            at = p["at"]
            name = p["name"]
        except (KeyError, TypeError):
            raise CorruptionError(f"coordinator event {seq} ({type_}) has a malformed payload") from None
        if at < self.now:
            raise CorruptionError(f"coordinator event {seq} goes back in time ({at} < {self.now})")
        handler = _HANDLERS.get(type_)
        if handler is None:
            raise CorruptionError(f"coordinator event {seq} has an unknown type {type_!r}")
        kind = handler(self, seq, name, p, at)
        self.seq = seq
        self.now = at
        return kind, name

    def _put(self, seq: int, name: str, p: dict, at: float) -> str:
        version = p["version"]
        if version != self.next_version(name):
            raise CorruptionError(
                f"coordinator event {seq} writes {name!r} at version {version}, "
                f"expected {self.next_version(name)}"
            )
        self.records[name] = [p["value"], version, seq, version]
        return "record"

    def _delete(self, seq: int, name: str, p: dict, at: float) -> str:
        entry = self.records.get(name)
        if entry is None or entry[R_VERSION] == 0 or entry[R_VERSION] != p["version"]:
            raise CorruptionError(f"coordinator event {seq} deletes {name!r} at a version it does not have")
        entry[R_VALUE] = None
        entry[R_VERSION] = 0
        entry[R_REVISION] = seq
        return "record"

    def _grant(self, seq: int, name: str, p: dict, at: float) -> str:
        token = p["token"]
        if token <= self.last_token:
            raise CorruptionError(
                f"coordinator event {seq} grants token {token}, not above the last one ({self.last_token})"
            )
        live = self.live_lease(name, at)
        if live is not None and live[L_HOLDER] != p["holder"]:
            raise CorruptionError(
                f"coordinator event {seq} grants {name!r} to {p['holder']!r} while {live[L_HOLDER]!r} holds it"
            )
        self.leases[name] = [p["holder"], token, p["expires_at"], p["ttl"], seq]
        self.last_token = token
        return "lease"

    def _renew(self, seq: int, name: str, p: dict, at: float) -> str:
        entry = self._held_by(seq, name, p, at)
        entry[L_EXPIRES] = p["expires_at"]
        entry[L_TTL] = p["ttl"]
        entry[L_REVISION] = seq
        return "lease"

    def _release(self, seq: int, name: str, p: dict, at: float) -> str:
        entry = self._held_by(seq, name, p, at)
        entry[L_HOLDER] = None
        entry[L_EXPIRES] = None
        entry[L_REVISION] = seq
        return "lease"

    def _expire(self, seq: int, name: str, p: dict, at: float) -> str:
        entry = self.leases.get(name)
        if entry is None or entry[L_HOLDER] is None or entry[L_TOKEN] != p["token"] or at < entry[L_EXPIRES]:
            raise CorruptionError(f"coordinator event {seq} expires {name!r}, which was not due")
        entry[L_HOLDER] = None
        entry[L_EXPIRES] = None
        entry[L_REVISION] = seq
        return "lease"

    def _held_by(self, seq: int, name: str, p: dict, at: float) -> list:
        entry = self.live_lease(name, at)
        if entry is None or entry[L_TOKEN] != p["token"] or entry[L_HOLDER] != p["holder"]:
            raise CorruptionError(
                f"coordinator event {seq} changes lease {name!r} token {p['token']}, which was not held"
            )
        return entry

    # -- snapshots -------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """Canonical msgpack-ready form of the whole state."""
        return {
            "format": SNAPSHOT_FORMAT,
            "seq": self.seq,
            "now": self.now,
            "last_token": self.last_token,
            "records": {name: self.records[name] for name in sorted(self.records)},
            "leases": {name: self.leases[name] for name in sorted(self.leases)},
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> CoordinatorState:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise CorruptionError(f"coordinator snapshot has format {data.get('format')!r}")
        state = cls()
        state.seq = data["seq"]
        state.now = data["now"]
        state.last_token = data["last_token"]
        state.records = {name: list(entry) for name, entry in data["records"].items()}
        state.leases = {name: list(entry) for name, entry in data["leases"].items()}
        return state

    def digest(self) -> str:
        """Hex digest of the state (equal for states folded from equal journals)."""
        return blake(msgpack.packb(self.dump(), use_bin_type=True)).hex()


_HANDLERS = {
    PUT: CoordinatorState._put,
    DELETE: CoordinatorState._delete,
    GRANT: CoordinatorState._grant,
    RENEW: CoordinatorState._renew,
    RELEASE: CoordinatorState._release,
    EXPIRE: CoordinatorState._expire,
}
