"""The handles callers hold: ``Memory`` → ``Namespace`` → ``Run`` (→ ``Batch``), and ``View``.

Handles are written once for every backend. Each method checks its arguments locally, builds a
request and makes exactly one backend call; ``then`` post-processes the answer. A synchronous
backend (``open_local``) returns the answer; an asynchronous one returns an awaitable of it, so
the same classes serve ``await`` callers without a twin class per mode.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from journal.errors import ValidationError
from projections.commands import (
    OpRef,
    append_op,
    begin_op,
    check_key,
    check_name,
    delete_op,
    end_op,
    make_request,
    put_op,
    trace_op,
)
from projections.vec_commands import check_metric, vec_create_op
from swarmlog.batch_ops import BatchCollection, BatchVectors
from swarmlog.collections import Collection, CollectionView
from swarmlog.leases import Coordination
from swarmlog.recorder import Recorder
from swarmlog.transactions import Transaction, run_txn
from swarmlog.vectors import Vectors, VectorsView, info_from_wire

if TYPE_CHECKING:
    from journal.records import Event
    from journal.verify import VerifyReport
    from projections.kv import Entry
    from projections.refold import ReplayReport
    from projections.runs import RunInfo
    from projections.traces import Trace
    from swarmlog.diff import RunDiff


def new_run_id() -> str:
    """A fresh run id that sorts by creation time: ``run-<ms hex>-<random hex>``."""
    return f"run-{time.time_ns() // 1_000_000:011x}-{os.urandom(5).hex()}"


_fresh_run_id = new_run_id  # ``Namespace.fork`` has a parameter of that name


def run_id_for(write_id: str) -> str:
    """The run id ``begin_run`` uses for a write id when it is given none: always the same."""
    return f"run-w{hashlib.blake2b(write_id.encode(), digest_size=10).hexdigest()}"


def _first(results: list) -> Any:
    return results[0]


class Memory(Coordination):
    """Entry point: a set of namespaces on one backend (in-process store or Ray cluster), and
    the deployment's coordinator (CAS records, leases, locks, elections, watches)."""

    def __init__(self, backend: Any):
        self._backend = backend

    def namespace(self, name: str) -> Namespace:
        """The namespace called ``name`` (created on first write). Names are 1–200 characters of
        letters, digits and ``. _ - /``, like ``"acme/support"``."""
        check_namespace_name(name)
        return Namespace(self._backend, name)

    def namespaces(self) -> Any:
        """Names of the namespaces that exist."""
        return self._backend.namespaces()

    def replay_many(self, namespace: str, run_ids: Any = None, **kwargs: Any) -> list:
        """Replay many runs of ``namespace`` in parallel (Ray tasks; in process: one by one) and
        return a ``ReplayReport`` (or the run's error) per run. See ``swarmlog.replay_many``."""
        from swarmlog.replay_many import replay_many

        return replay_many(self, namespace, run_ids, **kwargs)

    def close(self) -> Any:
        """Let go of the store. In process: close every namespace (each writes a snapshot of
        what is new). On Ray: forget the actor handles; the actors keep serving others."""
        return self._backend.close()

    def shutdown(self) -> Any:
        """Close every namespace of this store for everyone (on Ray: stop its actors)."""
        return getattr(self._backend, "shutdown", self._backend.close)()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        result = self.close()
        if hasattr(result, "__await__"):
            await result

    def __repr__(self) -> str:
        return f"<swarmlog.Memory {self._backend!r}>"


def check_namespace_name(name: Any) -> None:
    check_name(name, "namespace name")
    # "." would name the directory that holds every namespace.
    if (
        not all(c.isalnum() or c in "._-/" for c in name)
        or name.startswith("/")
        or ".." in name
        or name == "."
    ):
        raise ValidationError(
            f"namespace name {name!r} may hold only letters, digits and . _ - / "
            "(not starting with /, not '.' and without ..)"
        )


class _Reads:
    """Read methods shared by namespaces and runs (read-your-writes on the same backend)."""

    _backend: Any
    _ns: str

    def _call(self, method: str, *args: Any, then: Callable | None = None, **kwargs: Any) -> Any:
        return self._backend.call(self._ns, method, args, kwargs, then)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when absent or expired."""
        check_key(key)
        return self._call("get", key, default)

    def entry(self, key: str) -> Entry | None:
        """The ``Entry`` of ``key`` (value, version, run, writer, expiry) or None."""
        check_key(key)
        return self._call("entry", key)

    def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Live keys starting with ``prefix`` in order; page with ``start_after`` and ``limit``."""
        return self._call("list", prefix, start_after=start_after, limit=limit)

    def items(
        self, prefix: str = "", *, start_after: str | None = None, limit: int | None = None
    ) -> list[Entry]:
        """Like ``list``, but the entries."""
        return self._call("items", prefix, start_after=start_after, limit=limit)

    def collection(self, name: str) -> CollectionView:
        """Read-only handle to the document collection ``name`` (see ``swarmlog.collections``)."""
        return CollectionView(self, name)

    def vectors(self, name: str) -> VectorsView:
        """Search handle to the vector collection ``name``; ``NotFoundError`` when absent."""
        return self._call("vec_info", name, then=lambda info: VectorsView(self, info))


class Namespace(_Reads):
    """Reads, run management and history of one namespace. Writes go through a ``Run``."""

    def __init__(self, backend: Any, name: str):
        self._backend = backend
        self._ns = name

    @property
    def name(self) -> str:
        return self._ns

    def __repr__(self) -> str:
        return f"<swarmlog.Namespace {self._ns!r}>"

    # -- runs ----------------------------------------------------------------------------------

    def begin_run(
        self,
        run_id: str | None = None,
        *,
        agent: str,
        metadata: dict | None = None,
        tool: str | None = None,
        write_id: str | None = None,
    ) -> Run:
        """Begin a run (``run_id`` generated when None) and return its handle."""
        if run_id is None:
            check_name(write_id, "write_id", optional=True, max_chars=256)
            # A begin_run sent again with its write id must name the same run, or the journal
            # would refuse the write id as reused for a different write.
            run_id = new_run_id() if write_id is None else run_id_for(write_id)
        request = make_request(run_id, agent, [begin_op(metadata=metadata)], tool=tool, write_id=write_id)
        return self._call("submit", request, then=lambda _: Run(self, run_id, agent, tool))

    def run(self, run_id: str, *, agent: str | None = None, tool: str | None = None) -> Run:
        """A handle to an existing run; writes carry ``agent`` (default: the run's agent)."""
        check_name(run_id, "run_id")
        return self._call(
            "run_info",
            run_id,
            then=lambda info: (Run if info.fork_seq is None else BranchRun)(
                self, run_id, agent or info.agent, tool
            ),
        )

    def fork(
        self,
        run_id: str,
        *,
        at: int | None = None,
        new_run_id: str | None = None,
        agent: str | None = None,
        metadata: dict | None = None,
        write_id: str | None = None,
    ) -> Run:
        """Begin a new run that branches off ``run_id`` after event ``at`` (default: its newest
        event) and return its handle. The fork's history is the parent's up to ``at`` (nothing is
        copied); its reads see the namespace as of ``at`` plus its own writes, and its writes
        stay on its branch: main-line reads (``ns.get``) never see them. ``agent`` defaults to
        the parent's. Forks of forks work the same way."""
        check_name(run_id, "run_id")
        new_id = _fresh_run_id() if new_run_id is None else new_run_id
        check_name(new_id, "new_run_id")
        check_name(agent, "agent", optional=True, max_chars=128)
        if at is not None and (not isinstance(at, int) or isinstance(at, bool) or at < 1):
            raise ValidationError(f"at must be None or the seq (an int >= 1) to fork after, got {at!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError(f"run metadata must be a dict or None, got {type(metadata).__name__}")
        if write_id is None:  # a fork re-executed by a restarted actor must not fail or fork twice
            write_id = f"~fork-{new_id}"
        return self._call(
            "fork",
            run_id,
            new_id,
            at=at,
            agent=agent,
            metadata=metadata,
            write_id=write_id,
            then=lambda info: BranchRun(self, new_id, info.agent),
        )

    def run_info(self, run_id: str) -> RunInfo:
        """Status, agent, metadata and counts of a run (``NotFoundError`` when unknown)."""
        check_name(run_id, "run_id")
        return self._call("run_info", run_id)

    def runs(self, *, status: str | None = None, agent: str | None = None) -> list[RunInfo]:
        """Every run (optionally of one status or agent), oldest first."""
        return self._call("runs", status=status, agent=agent)

    # -- history -------------------------------------------------------------------------------

    def head(self) -> int:
        """Seq of the newest event (0 when empty)."""
        return self._call("head")

    def read_events(
        self,
        run_id: str | None = None,
        *,
        after: int | None = None,
        upto: int | None = None,
        types: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events with ``after < seq <= upto`` in seq order, of one run and/or some types."""
        if isinstance(types, Iterable) and not isinstance(types, str):
            types = list(types)  # anything else is refused by the backend's check
        return self._call("read_events", run_id, after=after, upto=upto, types=types, limit=limit)

    def event(self, seq: int) -> Event:
        """One event by seq."""
        return self._call("event", seq)

    def traces(
        self, run_id: str | None = None, *, kind: str | None = None, event: int | None = None
    ) -> list[Trace]:
        """Traces in seq order, of one run, one kind and/or linked to one event."""
        return self._call("traces", run_id, kind=kind, event=event)

    def why(self, key: str, *, limit: int = 100) -> list[Event]:
        """The events behind the current value of ``key``, newest first."""
        check_key(key)
        return self._call("why", key, limit=limit)

    def at(self, seq: int, *, run: str | None = None) -> View:
        """A read-only view of this namespace as it was right after event ``seq``; with ``run``,
        as that run saw it then (for a fork: its branch)."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValidationError(f"at() needs a seq (int >= 0), got {seq!r}")
        if run is not None:
            check_name(run, "run")
            return self._call(
                "run_read", run, "head", upto=seq, then=lambda _: View(self._backend, self._ns, seq, run=run)
            )
        return self._call("open_view", seq, then=lambda _: View(self._backend, self._ns, seq))

    # -- replay, diff ---------------------------------------------------------------------------

    def replay(self, run_id: str, agent: Callable | None = None, *, resume: bool = False) -> ReplayReport:
        """Without ``agent``: re-fold the run's history from the state before its first event
        and check every transition against the record (``projections.refold``); the report
        says where the first mismatch is. With ``agent``: run ``agent(stand_in)`` against the
        record — recorded answers in, writes checked byte for byte, nothing written, no tool
        called — and raise ``NonDeterminismError`` at the first divergence (``swarmlog.replay``);
        ``resume=True`` goes on live where the record ends. An async agent (or backend) makes
        this return an awaitable."""
        check_name(run_id, "run_id")
        if agent is None:
            if resume:
                raise ValidationError("resume=True needs the agent to continue with")
            return self._call("replay_run", run_id)
        from swarmlog.replay import replay_agent  # replay builds on these handles

        return replay_agent(self, run_id, agent, resume=resume)

    def diff(self, run_a: str, run_b: str) -> RunDiff:
        """Where two runs part: the first divergence, an aligned event-by-event comparison and
        the differences in the keys and traces each wrote (``swarmlog.diff``)."""
        from swarmlog.diff import diff_runs

        return diff_runs(self, run_a, run_b)

    def verify(self, *, projections: bool = False) -> VerifyReport:
        """Walk the hash chain and the indexes (and, with ``projections``, refold and compare)."""
        return self._call("verify", projections=projections)

    def digest(self) -> str:
        """Hex digest of the projection state: equal for equal journals."""
        return self._call("digest")

    def snapshot(self) -> int:
        """Write a projection snapshot now; returns its seq."""
        return self._call("snapshot")

    # -- user projections ----------------------------------------------------------------------

    def register_projection(
        self, name: str, fold: Callable, initial: Any = None, *, version: int = 1
    ) -> None:
        """Keep ``fold(state, event) -> state`` up to date over all events (see the engine docs)."""
        check_name(name, "projection name")
        if not callable(fold):
            raise ValidationError("fold must be callable as fold(state, event) -> state")
        return self._call("register_projection", name, fold, initial, version=version)

    def projection(self, name: str) -> Any:
        """A copy of a user projection's current state."""
        return self._call("projection", name)

    def drop_projection(self, name: str) -> None:
        return self._call("drop_projection", name)


class View(_Reads):
    """Read-only namespace state right after event ``seq`` (TTL judged at that event's time)."""

    def __init__(self, backend: Any, ns: str, seq: int, *, run: str | None = None):
        self._backend = backend
        self._ns = ns
        self.seq = seq
        self.run = run

    def _call(self, method: str, *args: Any, then: Callable | None = None, **kwargs: Any) -> Any:
        if self.run is not None:
            return self._backend.call(
                self._ns, "run_read", (self.run, method, args, kwargs), {"upto": self.seq}, then
            )
        return self._backend.call(self._ns, "view_call", (self.seq, method, args, kwargs), {}, then)

    def head(self) -> int:
        return self._call("head")

    def read_events(self, run_id: str | None = None, **kw: Any) -> list[Event]:
        return self._call("read_events", run_id, **kw)

    def traces(
        self, run_id: str | None = None, *, kind: str | None = None, event: int | None = None
    ) -> list[Trace]:
        return self._call("traces", run_id, kind=kind, event=event)

    def run_info(self, run_id: str) -> RunInfo:
        return self._call("run_info", run_id)

    def runs(self, *, status: str | None = None, agent: str | None = None) -> list[RunInfo]:
        return self._call("runs", status=status, agent=agent)

    def why(self, key: str, *, limit: int = 100) -> list[Event]:
        return self._call("why", key, limit=limit)

    def projection(self, name: str) -> Any:
        return self._call("projection", name)

    def digest(self) -> str:
        return self._call("digest")

    def __repr__(self) -> str:
        return f"<swarmlog.View {self._ns!r} at {self.seq}>"


class Run(_Reads, Recorder):
    """A run: every write belongs to one. Reads see the run's own writes at once.
    It is also the recorder of its agent: ``call``, ``random``, ``now``, ``uuid``
    (``swarmlog.recorder``)."""

    def __init__(self, namespace: Namespace, run_id: str, agent: str, tool: str | None = None):
        check_name(agent, "agent", max_chars=128)
        self.namespace = namespace
        self._backend = namespace._backend
        self._ns = namespace._ns
        self.run_id = run_id
        self.agent = agent
        self.tool = tool

    def __repr__(self) -> str:
        return f"<swarmlog.Run {self.run_id!r} of {self._ns!r} as {self.agent!r}>"

    def with_tool(self, tool: str | None) -> Run:
        """The same run, writing as ``tool`` on the agent's behalf."""
        return Run(self.namespace, self.run_id, self.agent, tool)

    def _write(self, ops: list, *, write_id=None, fence=None, source=None, then=_first) -> Any:
        request = make_request(
            self.run_id, self.agent, ops, tool=self.tool, write_id=write_id, source=source, fence=fence
        )
        return self._call("submit", request, then=then)

    # -- writes --------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        value: Any,
        *,
        ttl: float | None = None,
        expected_version: int | None = None,
        write_id: str | None = None,
        tool: str | None = None,
        source: dict | None = None,
        fence: Any = None,
    ) -> int:
        """Set ``key`` to ``value``; returns the new version (the seq of its event).
        ``expected_version`` makes it conditional (0: only if absent) and raises
        ``ConflictError`` otherwise; ``ttl`` is in seconds."""
        op = put_op(key, value, ttl=ttl, expected_version=expected_version, tool=tool)
        return self._write([op], write_id=write_id, fence=fence, source=source)

    def delete(
        self,
        key: str,
        *,
        expected_version: int | None = None,
        write_id: str | None = None,
        tool: str | None = None,
        source: dict | None = None,
        fence: Any = None,
    ) -> bool:
        """Delete ``key``; returns whether it existed (nothing is journaled when it did not)."""
        op = delete_op(key, expected_version=expected_version, tool=tool)
        return self._write([op], write_id=write_id, fence=fence, source=source)

    def append_event(
        self,
        type: str,
        payload: Any = None,
        *,
        source: dict | None = None,
        write_id: str | None = None,
        tool: str | None = None,
        fence: Any = None,
    ) -> Event:
        """Append an event of a user ``type`` (not a reserved prefix such as ``kv.``)."""
        op = append_op(type, payload, tool=tool)
        return self._write([op], write_id=write_id, fence=fence, source=source)

    def trace(
        self,
        kind: str,
        data: dict,
        *,
        event: int | None = None,
        write_id: str | None = None,
        tool: str | None = None,
        source: dict | None = None,
    ) -> Trace:
        """Record a typed trace (``tool_call``, ``decision``, ``citation`` …) linked to ``event``."""
        op = trace_op(kind, data, event=getattr(event, "seq", event), tool=tool)
        return self._write([op], write_id=write_id, source=source)

    def end(self, status: str = "ok", *, summary: Any = None, write_id: str | None = None) -> RunInfo:
        """End the run with a final status; later writes to it are refused."""
        return self._write([end_op(status, summary=summary)], write_id=write_id)

    def batch(self, *, write_id: str | None = None, fence: Any = None, source: dict | None = None) -> Batch:
        """Collect writes and commit them atomically in one call when the block exits."""
        return Batch(self, write_id=write_id, fence=fence, source=source)

    def collection(self, name: str) -> Collection:
        """The document collection ``name``, written by this run (see ``swarmlog.collections``)."""
        return Collection(self, name)

    def vectors(self, name: str, *, dim: int | None = None, metric: str | None = None) -> Vectors:
        """The vector collection ``name``, created with ``dim`` and ``metric`` (default
        ``"cosine"``) on first use; ``ValidationError`` if it exists with another dim/metric."""
        if dim is None:
            check_metric(metric, optional=True)
            return self._call("vec_info", name, then=lambda info: Vectors(self, info))
        op = vec_create_op(name, dim, metric, tool=self.tool)
        return self._write([op], then=lambda r: Vectors(self, info_from_wire(r[0])))

    def txn(
        self,
        reads: dict | None = None,
        writes: dict | None = None,
        preconditions: list | None = None,
        *,
        write_id: str | None = None,
    ) -> dict:
        """Commit ``writes`` ({key: value or swarmlog.DELETE}) atomically if every version in
        ``reads`` ({key: version}) is current and every precondition holds; otherwise raise
        ``ConflictError`` naming the key and write nothing. Returns {key: new version}. Keys
        are KV keys or (collection, _id) pairs (see ``swarmlog.transactions``)."""
        return run_txn(self, reads, writes, preconditions, write_id)

    def transaction(self, *, retries: int = 10) -> Transaction:
        """An optimistic transaction: ``for attempt in run.transaction(retries=10): with
        attempt as tx: ...`` retries on conflict (see ``swarmlog.transactions``)."""
        return Transaction(self, retries=retries)

    # -- reads ---------------------------------------------------------------------------------

    def info(self) -> RunInfo:
        """This run's ``RunInfo``."""
        return self._call("run_info", self.run_id)

    def read_events(self, **kw: Any) -> list[Event]:
        """This run's events (same filters as ``Namespace.read_events``)."""
        return self._call("read_events", self.run_id, **kw)

    def traces(self, *, kind: str | None = None, event: int | None = None) -> list[Trace]:
        return self._call("traces", self.run_id, kind=kind, event=event)


class BranchRun(Run):
    """A forked run (``Namespace.fork``): its reads see its branch — the namespace as of the fork
    point plus its own writes — and its writes stay on the branch."""

    def _call(self, method: str, *args: Any, then: Callable | None = None, **kwargs: Any) -> Any:
        if method == "submit":
            return self._backend.call(self._ns, method, args, kwargs, then)
        return self._backend.call(self._ns, "run_read", (self.run_id, method, args, kwargs), {}, then)

    def with_tool(self, tool: str | None) -> BranchRun:
        return BranchRun(self.namespace, self.run_id, self.agent, tool)

    def __repr__(self) -> str:
        return f"<swarmlog.BranchRun {self.run_id!r} of {self._ns!r} as {self.agent!r}>"


class Pending:
    """The future result of one operation in a batch; pass it as ``event=`` to ``trace``."""

    __slots__ = ("index", "_batch")

    def __init__(self, batch: Batch, index: int):
        self._batch = batch
        self.index = index

    @property
    def result(self) -> Any:
        results = self._batch.results
        if results is None:
            raise ValidationError("the batch has not been committed yet")
        return results[self.index]

    def __repr__(self) -> str:
        return f"<Pending op {self.index}>"


class Batch:
    """Writes collected in a ``with run.batch() as b:`` block: one commit, all or nothing.

    Nothing is sent until the block exits; an exception inside the block discards the batch.
    ``b.results`` holds what each operation returned, in order.
    """

    def __init__(self, run: Run, *, write_id=None, fence=None, source=None):
        self._run = run
        self._ops: list = []
        self._shapes: list = []  # per operation: turns its raw result into what callers get
        self._write_id = write_id
        self._fence = fence
        self._source = source
        self.results: list | None = None

    def _add(self, op: Any, shape: Callable | None = None) -> Pending:
        if self.results is not None:
            raise ValidationError("this batch was already committed; start a new one")
        self._ops.append(op)
        self._shapes.append(shape)
        return Pending(self, len(self._ops) - 1)

    def put(
        self, key: str, value: Any, *, ttl=None, expected_version=None, tool=None, source=None
    ) -> Pending:
        return self._add(
            put_op(key, value, ttl=ttl, expected_version=expected_version, tool=tool, source=source)
        )

    def delete(self, key: str, *, expected_version=None, tool=None, source=None) -> Pending:
        return self._add(delete_op(key, expected_version=expected_version, tool=tool, source=source))

    def append_event(self, type: str, payload: Any = None, *, tool=None, source=None) -> Pending:
        return self._add(append_op(type, payload, tool=tool, source=source))

    def trace(self, kind: str, data: dict, *, event: Any = None, tool=None, source=None) -> Pending:
        if isinstance(event, Pending):
            if event._batch is not self:
                raise ValidationError("a trace can link only to a pending event of the same batch")
            event = OpRef(event.index)
        else:
            event = getattr(event, "seq", event)
        return self._add(trace_op(kind, data, event=event, tool=tool, source=source))

    def end(self, status: str = "ok", *, summary: Any = None) -> Pending:
        return self._add(end_op(status, summary=summary))

    def collection(self, name: str) -> BatchCollection:
        """Document writes of collection ``name`` in this batch (see ``swarmlog.batch_ops``)."""
        return BatchCollection(self, name)

    def vectors(self, name: Any, *, dim: int | None = None, metric: str | None = None) -> BatchVectors:
        """Vector writes of collection ``name`` (or of a ``run.vectors`` handle) in this batch;
        ``dim`` is needed with a name (see ``swarmlog.batch_ops``)."""
        return BatchVectors(self, name, dim, metric)

    def __len__(self) -> int:
        return len(self._ops)

    def _request(self):
        return make_request(
            self._run.run_id,
            self._run.agent,
            self._ops,
            tool=self._run.tool,
            write_id=self._write_id,
            source=self._source,
            fence=self._fence,
        )

    def _store(self, results: list) -> list:
        self.results = [r if f is None else f(r) for r, f in zip(results, self._shapes, strict=True)]
        return self.results

    def commit(self) -> Any:
        """Send the batch now (the ``with`` block does this for you)."""
        if not self._ops:
            self.results = []
            return self.results
        return self._run._call("submit", self._request(), then=self._store)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            result = self.commit()
            if hasattr(result, "__await__"):
                await result
