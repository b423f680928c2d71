"""What callers see of the state: records, lease status, and why a lease call is refused.

Pure functions of a ``CoordinatorState`` and a coordinator time; the engine calls them under
its lock.
"""

from __future__ import annotations

from typing import Any

from coordination.records import Lease, LeaseStatus, Record
from coordination.state import (
    DELETE,
    GRANT,
    L_EXPIRES,
    L_HOLDER,
    L_REVISION,
    L_TOKEN,
    PUT,
    R_REVISION,
    R_VALUE,
    R_VERSION,
    RELEASE,
    RENEW,
    CoordinatorState,
)
from journal.codec import unpack_value
from journal.errors import CorruptionError, LeaseError
from journal.records import PAYLOAD, SEQ, TYPE


def record_view(state: CoordinatorState, name: str) -> Record:
    """The record ``name`` as a caller sees it (absent: version 0, value None)."""
    entry = state.records.get(name)
    if entry is None:
        return Record(name=name, value=None, version=0, revision=0)
    data = entry[R_VALUE]
    return Record(
        name=name,
        value=None if data is None else unpack_value(data),
        version=entry[R_VERSION],
        revision=entry[R_REVISION],
    )


def lease_view(state: CoordinatorState, name: str, now: float) -> LeaseStatus:
    """Who holds lease ``name`` at coordinator time ``now``."""
    entry = state.leases.get(name)
    if entry is None:
        return LeaseStatus(name=name, holder=None, token=0, expires_at=None, revision=0)
    live = entry[L_HOLDER] is not None and now < entry[L_EXPIRES]
    return LeaseStatus(
        name=name,
        holder=entry[L_HOLDER] if live else None,
        token=entry[L_TOKEN],
        expires_at=entry[L_EXPIRES] if live else None,
        revision=entry[L_REVISION],
    )


def lease_refusal(state: CoordinatorState, lease: Lease, at: float, what: str) -> LeaseError | None:
    """None when ``lease`` is held under its grant at time ``at``, else the error that says why
    it is not (expired, released, granted to someone since) and what to do."""
    entry = state.leases.get(lease.name)
    if entry is not None and entry[L_TOKEN] == lease.token and entry[L_HOLDER] == lease.holder:
        if at < entry[L_EXPIRES]:
            return None
        return LeaseError(
            f"cannot {what} lease {lease.name!r} (token {lease.token}): it expired at "
            f"{entry[L_EXPIRES]:.3f} and it is now {at:.3f} on the coordinator's clock. "
            "Acquire it again (you get a new token)."
        )
    if entry is None or entry[L_TOKEN] < lease.token:
        why = "the coordinator never granted it"
    elif entry[L_TOKEN] == lease.token:
        why = "it was released or expired"
    elif entry[L_HOLDER] is not None and at < entry[L_EXPIRES]:
        why = f"it was granted since to {entry[L_HOLDER]!r} with token {entry[L_TOKEN]}"
    else:
        why = f"it was granted since with token {entry[L_TOKEN]}"
    return LeaseError(
        f"cannot {what} lease {lease.name!r} held by {lease.holder!r} with token {lease.token}: "
        f"{why}. Acquire it again."
    )


def answer_from_event(f: list) -> Any:
    """The answer a call gave, rebuilt from the event it journaled (for a retried write id).
    ``f`` is a record decoded with ``unpack_value``."""
    p = f[PAYLOAD]
    type_ = f[TYPE]
    if type_ == PUT:
        return Record(name=p["name"], value=p["value"], version=p["version"], revision=f[SEQ])
    if type_ == DELETE:
        return Record(name=p["name"], value=None, version=0, revision=f[SEQ])
    if type_ in (GRANT, RENEW):
        return Lease(
            name=p["name"], holder=p["holder"], token=p["token"], expires_at=p["expires_at"], ttl=p["ttl"]
        )
    if type_ == RELEASE:
        return True
    raise CorruptionError(f"coordinator event {f[SEQ]} of type {type_!r} answers no call")
