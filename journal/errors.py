"""The one error hierarchy of swarmlog.

It lives in the lowest layer so that every layer can raise these errors without importing the
layers above; ``swarmlog`` re-exports all of them. The names tell a caller what to do: retry
(``ConflictError``), take a new lease (``StaleFencingToken``), fix the input (``ValidationError``),
restore from a copy (``CorruptionError``), wait or reconnect (``NamespaceUnavailable``).
"""

from __future__ import annotations


class SwarmlogError(Exception):
    """Root of every error swarmlog raises on purpose."""


class ValidationError(SwarmlogError, ValueError):
    """The request was malformed (bad key, value, type, size, unknown run …); nothing was written."""


class NotFoundError(SwarmlogError, LookupError):
    """A named thing (run, namespace, projection, event) does not exist."""


class ConflictError(SwarmlogError):
    """An expected version or precondition did not hold; nothing was written. Re-read and retry.

    ``key`` names what conflicted, ``expected`` and ``actual`` are the versions compared.
    """

    def __init__(self, message: str, *, key: str | None = None, expected=None, actual=None):
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.actual = actual

    def __reduce__(self):  # keep the fields when the error crosses a process boundary
        return (_rebuild_conflict, (str(self), self.key, self.expected, self.actual))


def _rebuild_conflict(message, key, expected, actual):
    return ConflictError(message, key=key, expected=expected, actual=actual)


class LeaseError(SwarmlogError):
    """A lease could not be granted, renewed or released (expired, held by someone else)."""


class StaleFencingToken(LeaseError):
    """A write carried a fencing token older than one this namespace has already seen."""


class PermissionDenied(SwarmlogError):
    """A write barrier refused the write for this agent or tool."""


class CorruptionError(SwarmlogError):
    """Stored bytes failed a checksum, a hash or a structural check. Restore from a copy."""


class NamespaceUnavailable(SwarmlogError):
    """The namespace cannot be reached now (closed, locked by another process, actor dead)."""


class NonDeterminismError(SwarmlogError):
    """A replayed run diverged from its recording (different call, arguments or order).

    ``seq`` and ``event_type`` name the first recorded event that did not match (None when the
    agent did more than the record holds), ``expected`` and ``got`` show both sides.
    """

    def __init__(self, message: str, *, seq=None, event_type=None, expected=None, got=None):
        super().__init__(message)
        self.seq = seq
        self.event_type = event_type
        self.expected = expected
        self.got = got

    def __reduce__(self):  # keep the fields when the error crosses a process boundary
        return (_rebuild_nondeterminism, (str(self), self.seq, self.event_type, self.expected, self.got))


def _rebuild_nondeterminism(message, seq, event_type, expected, got):
    return NonDeterminismError(message, seq=seq, event_type=event_type, expected=expected, got=got)


class RecordedError(SwarmlogError):
    """A replayed tool call raises this when the recorded error's class cannot be rebuilt
    (its module is not imported, or it cannot be constructed from its recorded args).
    ``type_name`` is the original ``module.QualName``, ``message`` its ``str()``."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self):
        return (RecordedError, (self.type_name, self.message))


class ProjectionError(SwarmlogError):
    """A user projection's fold raised; the projection is unavailable until it is re-registered."""


__all__ = [
    "ConflictError",
    "CorruptionError",
    "LeaseError",
    "NamespaceUnavailable",
    "NonDeterminismError",
    "NotFoundError",
    "PermissionDenied",
    "ProjectionError",
    "RecordedError",
    "StaleFencingToken",
    "SwarmlogError",
    "ValidationError",
]
