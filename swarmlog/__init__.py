"""swarmlog: an event-sourced memory substrate for AI agent swarms.

Every change an agent makes is appended to a durable, hash-chained journal; every read is
answered from projections folded from that journal. Start with ``swarmlog.open_local(path)``
(in process) — the handles it returns are documented in ``swarmlog.handles``.
"""

from __future__ import annotations

from coordination.records import Lease, LeaseStatus, Record
from journal.errors import (
    ConflictError,
    CorruptionError,
    LeaseError,
    NamespaceUnavailable,
    NonDeterminismError,
    NotFoundError,
    PermissionDenied,
    ProjectionError,
    RecordedError,
    StaleFencingToken,
    SwarmlogError,
    ValidationError,
)
from journal.hlc import to_datetime
from journal.records import Event
from journal.settings import Settings
from journal.verify import VerifyReport
from projections.kv import Entry
from projections.refold import ReplayReport
from projections.runs import RunInfo
from projections.traces import TRACE_KINDS, Trace
from projections.txn_commands import DELETE
from projections.vectors import Hit, VectorInfo, VectorItem
from swarmlog.collections import Collection, CollectionView, UpdateResult
from swarmlog.connect import connect, connect_async
from swarmlog.diff import DiffRow, Divergence, KeyDiff, RunDiff
from swarmlog.handles import Batch, BranchRun, Memory, Namespace, Pending, Run, View
from swarmlog.leases import Lock
from swarmlog.local import open_local
from swarmlog.standin import ReplayRun
from swarmlog.transactions import Transaction, Tx
from swarmlog.vectors import Vectors, VectorsView

__version__ = "0.1.0"

__all__ = [
    "DELETE",
    "TRACE_KINDS",
    "Batch",
    "BranchRun",
    "Collection",
    "CollectionView",
    "ConflictError",
    "CorruptionError",
    "DiffRow",
    "Divergence",
    "Entry",
    "Event",
    "Hit",
    "KeyDiff",
    "Lease",
    "LeaseError",
    "LeaseStatus",
    "Lock",
    "Memory",
    "Namespace",
    "NamespaceUnavailable",
    "NonDeterminismError",
    "NotFoundError",
    "Pending",
    "PermissionDenied",
    "ProjectionError",
    "Record",
    "RecordedError",
    "ReplayReport",
    "ReplayRun",
    "Run",
    "RunDiff",
    "RunInfo",
    "Settings",
    "StaleFencingToken",
    "SwarmlogError",
    "Trace",
    "Transaction",
    "Tx",
    "UpdateResult",
    "ValidationError",
    "VectorInfo",
    "VectorItem",
    "Vectors",
    "VectorsView",
    "VerifyReport",
    "View",
    "connect",
    "connect_async",
    "open_local",
    "to_datetime",
]
