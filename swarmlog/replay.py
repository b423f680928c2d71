"""Replaying an agent against its recorded run: ``ns.replay(run_id, agent)``.

The agent runs again, given a *stand-in* for its run (``ReplayRun``) with the same methods as a
``Run``. Nothing is written and no tool is called:

* ``call``, ``random``, ``now``, ``uuid`` hand back the recorded answers after checking that the
  agent asks for the same thing in the same order (name and arguments); a recorded error is
  raised again as its original class where that can be rebuilt (``recorder.rebuild_error``),
  else as ``RecordedError``;
* writes (``put``, ``delete``, ``append_event``, ``trace``, ``end``, batches) are re-encoded and
  compared byte for byte with the recorded events (``projections.reencode``); a write that
  failed with ``ConflictError`` when recorded fails the same way again;
* writes whose events depend on the namespace state (documents, indexes, vectors,
  transactions, and batches holding any of them) are decided again by the namespace, with the
  engine's own code, against the run's state right before its next recorded event — the state
  the recorded request was decided against, since a request's events are consecutive — and
  each event is compared with the recorded one by hash (``projections.redecide``, one call per
  request). Their results (generated ``_id`` values, ``UpdateResult``, revs) are the recorded
  write's;
* reads answer as the run saw the namespace at that point of its history: the state right after
  the last recorded event replayed (through ``run_read(…, upto=seq)`` — a fork reads its branch).
  Exact for a run's own writes and for namespaces nobody else wrote to meanwhile; reads of keys
  that other agents changed concurrently are exact only when the agent made them through
  ``run.call`` (then they are recorded like any outside input). A transaction's reads
  (``tx.get``) are answered right before the run's next recorded event instead: the state its
  commit was checked against, so a transaction that was retried when recorded replays in one
  attempt with what its successful attempt read.

The first difference raises ``NonDeterminismError`` naming the recorded event (seq, type) and
showing expected vs got — also when the agent caught it, since the error is remembered and
raised again when the agent returns. With ``resume=True`` the agent goes on live once the record
is exhausted (calls really run and are recorded, writes are journaled): that is how a fork is
continued with changed code.

Everything goes through the backend (one call per read, two to start), so the same code runs on
the in-process store and through ``swarmlog.connect``; with an asynchronous backend the
stand-in's methods return awaitables like a live run's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NoReturn

from journal.codec import pack_value, unpack_value
from journal.errors import ConflictError, NonDeterminismError, ValidationError
from projections.commands import AddTrace, BeginRun, Delete, EndRun, OpRef, Put, check_name
from projections.reencode import ENCODED_HERE, difference, event_difference, op_type, same_record
from projections.refold import ReplayReport
from projections.traces import Trace
from swarmlog.flow import drive, ready, then
from swarmlog.recorder import rebuild_error
from swarmlog.standin import ReplayRun

if TYPE_CHECKING:
    from journal.records import Event
    from projections.commands import Request
    from swarmlog.handles import Namespace


def replay_agent(
    namespace: Namespace, run_id: str, agent: Callable[[Any], Any], *, resume: bool = False
) -> Any:
    """Re-run ``agent(stand_in)`` against the record of ``run_id``; returns a ``ReplayReport``
    (an awaitable of it when the agent is async or the backend is). Raises
    ``NonDeterminismError`` at the first divergence."""
    check_name(run_id, "run_id")
    if not callable(agent):
        raise ValidationError("agent must be callable as agent(run)")
    return then(
        namespace.run_info(run_id),
        lambda info: then(
            namespace.read_events(run_id),
            lambda events: ReplaySession(namespace, info, events, resume).run(agent),
        ),
    )


class ReplaySession:
    """The state of one agent replay, shared by the stand-ins it hands out."""

    def __init__(self, namespace: Namespace, info: Any, events: list[Event], resume: bool):
        if resume and not info.running:
            raise ValidationError(
                f"run {info.run_id!r} has ended ({info.status}); fork it to continue it differently"
            )
        self.namespace = namespace
        self.backend = namespace._backend
        self.asynchronous = bool(getattr(self.backend, "is_async", False))
        self.info = info
        self.events = events
        self.index = 0
        self.position = 0
        self.resume = resume
        self.live = False
        self.resumed_at: int | None = None
        self.divergence: NonDeterminismError | None = None
        self.calls = self.writes = self.reads = 0
        self.by_write_id: dict[str, list] = {}
        self._skip_begins()

    # -- the record ------------------------------------------------------------------------------

    def _skip_begins(self) -> None:
        events = self.events
        while self.index < len(events) and events[self.index].type == "run.begin":
            self.position = events[self.index].seq
            self.index += 1

    def peek(self) -> Event | None:
        """The next recorded event the agent must match, or None when the record is exhausted
        (then, with ``resume``, the session goes live)."""
        self._skip_begins()
        if self.index < len(self.events):
            return self.events[self.index]
        if self.resume and not self.live:
            self.live = True
            self.resumed_at = self.position
        return None

    def take(self) -> Event:
        ev = self.events[self.index]
        self.index += 1
        self.position = ev.seq
        return ev

    @property
    def run_id(self) -> str:
        """The run that recorded the next event: a fork replays its parent's part as the parent."""
        if self.index < len(self.events):
            return self.events[self.index].run_id
        return self.info.run_id

    @property
    def agent(self) -> str:
        if self.index < len(self.events):
            return self.events[self.index].agent
        return self.info.agent

    def diverge(self, message: str, ev: Event | None, expected: Any, got: Any) -> NonDeterminismError:
        where = (
            f"at event {ev.seq} ({ev.type}), number {self.index + 1} of its history"
            if ev is not None
            else f"after its last recorded event ({self.position})"
        )
        err = NonDeterminismError(
            f"replay of run {self.info.run_id!r} diverged {where}: {message}\n"
            f"  expected: {expected!r}\n  got:      {got!r}",
            seq=None if ev is None else ev.seq,
            event_type=None if ev is None else ev.type,
            expected=expected,
            got=got,
        )
        if self.divergence is None:
            self.divergence = err
        return err

    # -- running the agent -----------------------------------------------------------------------

    def run(self, agent: Callable[[Any], Any]) -> Any:
        stand_in = ReplayRun(self)
        try:
            result = agent(stand_in)
        except Exception as exc:
            self._reraise(exc)
        if inspect.isawaitable(result):
            return self._run_later(result)
        return self.finish(result)

    async def _run_later(self, awaitable: Any) -> Any:
        try:
            result = await awaitable
        except Exception as exc:
            self._reraise(exc)
        done = self.finish(result)
        return (await done) if inspect.isawaitable(done) else done

    def _reraise(self, exc: Exception) -> NoReturn:
        """An agent that fails after its replay diverged (say, on a value it did not expect)
        failed because of the divergence: that is what the caller needs to see."""
        if self.divergence is None or exc is self.divergence:
            raise exc
        raise self.divergence from exc

    def finish(self, _result: Any) -> Any:
        if self.divergence is not None:
            raise self.divergence
        if not self.live:
            self._skip_begins()
            left = self.events[self.index :]
            if left and not (len(left) == 1 and left[0].type == "run.end"):
                raise self.diverge(
                    f"the agent returned, but the record holds {len(left)} more event(s)",
                    left[0],
                    {"type": left[0].type, "payload": left[0].payload},
                    "the agent returned",
                )
            self.index = len(self.events)
        last = self.events[-1].seq if self.events else 0

        def report(digest: str) -> ReplayReport:
            return ReplayReport(
                run_id=self.info.run_id,
                mode="agent",
                ok=True,
                events_checked=self.index,
                calls_replayed=self.calls,
                writes_checked=self.writes,
                reads=self.reads,
                state_digest=digest,
                resumed_at=self.resumed_at,
            )

        return then(self.read_at(self.info.run_id, "digest", (), {}, last), report)

    # -- backend calls ---------------------------------------------------------------------------

    def read_at(self, run_id: str | None, method: str, args: tuple, kwargs: dict, upto: int | None) -> Any:
        return self.backend.call(
            self.namespace.name, "run_read", (run_id, method, args, kwargs), {"upto": upto}, None
        )

    def read(
        self,
        run_id: str | None,
        method: str,
        args: tuple,
        kwargs: dict,
        then_: Callable | None,
        *,
        latest: bool = False,
    ) -> Any:
        """A read as the run saw the namespace now in its history (live: now): right after its
        last recorded event, or with ``latest`` (a transaction's reads) right before its next
        one — the state its next write was decided against (see the module docstring)."""
        self.reads += 1
        upto = None if self.live else self.position
        if latest:
            ev = self.peek()
            upto = None if self.live else self.position if ev is None else ev.seq - 1
        return self.backend.call(
            self.namespace.name, "run_read", (run_id, method, args, kwargs), {"upto": upto}, then_
        )

    def answer(self, value: Any, *, awaitable: bool = False) -> Any:
        """Hand ``value`` over the way a live run would: an awaitable with an async backend."""
        if awaitable or self.asynchronous:
            return ready(value)
        return value

    def fail(self, exc: BaseException, *, awaitable: bool = False) -> Any:
        if awaitable or self.asynchronous:
            return _raise_later(exc)
        raise exc

    # -- calls -----------------------------------------------------------------------------------

    def recorded_call(self, name: str, args: tuple, kwargs: dict) -> Any:
        ev = self.peek()
        got = {"name": name, "args": list(args), "kwargs": kwargs}
        if ev is None:
            return self.fail(
                self.diverge(f"the agent calls {name!r}, which was not recorded", None, None, got)
            )
        p = ev.payload if isinstance(ev.payload, dict) else {}
        expected = {k: p.get(k) for k in ("name", "args", "kwargs")}
        if ev.type != "call.tool":
            return self.fail(
                self.diverge(
                    f"the agent calls {name!r} where the record holds a {ev.type} event",
                    ev,
                    {"type": ev.type, "payload": ev.payload},
                    {"type": "call.tool", **got},
                )
            )
        if p.get("name") != name:
            message = f"the agent calls {name!r} where the record holds a call of {p.get('name')!r}"
            return self.fail(self.diverge(message, ev, expected, got))
        if _normal(got["args"]) != _normal(p.get("args")):
            message = f"the agent calls {name!r} with different arguments"
            return self.fail(self.diverge(message, ev, expected, got))
        if _normal(got["kwargs"]) != _normal(p.get("kwargs")):
            message = f"the agent calls {name!r} with different keyword arguments"
            return self.fail(self.diverge(message, ev, expected, got))
        self.take()
        nxt = self.events[self.index] if self.index < len(self.events) else None
        if nxt is not None and nxt.type == "trace.tool_call" and (nxt.payload or {}).get("event") == ev.seq:
            self.take()
        self.calls += 1
        is_async = bool(p.get("async"))
        if "error" in p:
            return self.fail(rebuild_error(p["error"]), awaitable=is_async)
        return self.answer(p.get("output"), awaitable=is_async)

    def recorded_value(self, kind: str) -> Any:
        ev = self.peek()
        type_ = "call." + kind
        if ev is None:
            return self.fail(
                self.diverge(f"the agent asks for {kind}(), which was not recorded", None, None, type_)
            )
        if ev.type != type_:
            return self.fail(
                self.diverge(
                    f"the agent asks for {kind}() where the record holds a {ev.type} event",
                    ev,
                    {"type": ev.type, "payload": ev.payload},
                    {"type": type_},
                )
            )
        self.take()
        self.calls += 1
        return self.answer(ev.payload.get("value"))

    # -- writes ----------------------------------------------------------------------------------

    def submit(self, req: Request, then_: Callable | None) -> Any:
        def step(results: list) -> Any:
            return results if then_ is None else then_(results)

        if self.live:
            return self.backend.call(self.namespace.name, "submit", (req,), {}, then_)
        known = None if req.write_id is None else self.by_write_id.get(req.write_id)
        if known is not None:  # a retried write: the original answer, nothing new recorded
            return self.answer(step(known))
        start = (self.index, self.position)
        if self.peek() is None and self.live:  # the record ended right here: go on live (resume)
            return self.backend.call(self.namespace.name, "submit", (req,), {}, then_)
        try:
            results = drive(self._match(req), self._serve)
        except BaseException:  # a refused write consumes nothing of the record
            self.index, self.position = start
            raise
        if inspect.isawaitable(results):
            return self._done_later(results, start, lambda r: self._done(req, r, step))
        return self.answer(self._done(req, results, step))

    async def _done_later(self, results: Any, start: tuple[int, int], step: Callable) -> Any:
        try:
            done = await results
        except BaseException:
            self.index, self.position = start
            raise
        return step(done)

    def _done(self, req: Request, results: list, step: Callable) -> Any:
        if req.write_id is not None:
            self.by_write_id[req.write_id] = results
        return step(results)

    def _serve(self, want: tuple) -> Any:
        method, args, upto = want
        if method == "replay_decide":
            return self.backend.call(
                self.namespace.name, method, (self.info.run_id, *args), {"upto": upto}, None
            )
        return self.read_at(self.info.run_id, method, args, {}, upto)

    def _match(self, req: Request) -> Generator[tuple, Any, list]:
        """Match ``req``'s operations with the next recorded events; yields the reads it needs
        (``(method, args, upto)``) and returns the results a live write would have returned."""
        if any(type(op) is BeginRun for op in req.ops):
            raise ValidationError("a replayed agent cannot begin runs")
        if any(type(op) not in ENCODED_HERE for op in req.ops):
            return (yield from self._match_decided(req))
        results: list = []
        for op in req.ops:
            ev = self.peek()
            if ev is not None and ev.type == op_type(op):
                link = self._link(op, results)
                if same_record(req, op, ev, link):
                    if type(op) is Put and op.expected_version not in (None, ev.payload.get("prev")):
                        pass  # recorded without this precondition: fall through to the checks
                    else:
                        self.take()
                        self.writes += 1
                        result = yield from self._result(op, ev)
                        results.append(result)
                        continue
            cls = type(op)
            if cls is Put or cls is Delete:
                entry = yield ("entry", (op.key,), self.position)
                current = 0 if entry is None else entry.version
                if op.expected_version is not None and op.expected_version != current:
                    raise ConflictError(
                        f"{'put' if cls is Put else 'delete'} {op.key!r}: expected version "
                        f"{op.expected_version} but it is {current} (as recorded); read it again and retry",
                        key=op.key,
                        expected=op.expected_version,
                        actual=current,
                    )
                if cls is Delete and current == 0:
                    results.append(False)  # nothing was journaled for it
                    continue
            raise self._mismatch(req, op, ev, results)
        return results

    def _match_decided(self, req: Request) -> Generator[tuple, Any, list]:
        """Match a request whose events depend on the namespace state (documents, indexes,
        vectors, transactions): the engine decides it again against the state right before the
        run's next recorded event and compares each event with the record byte for byte
        (``projections.redecide``); returns the results the live write returned."""
        ev = self.peek()
        upto = self.position if ev is None else ev.seq - 1
        decision = yield ("replay_decide", (req,), upto)
        for i in range(decision.matched):
            ev = self._next_recorded()
            if ev is None or ev.seq != upto + 1 + i:  # the record of this run stops (a fork point)
                raise self.diverge(
                    f"the agent's write journals event {upto + 1 + i} of its commit, which this run's record lacks",
                    ev,
                    None if ev is None else {"type": ev.type, "payload": ev.payload},
                    {"seq": upto + 1 + i},
                )
            self.take()
            self.writes += 1
        if decision.diverged is not None:
            raise self._decided_mismatch(decision.diverged)
        return decision.results

    def _next_recorded(self) -> Event | None:
        self._skip_begins()
        return self.events[self.index] if self.index < len(self.events) else None

    def _decided_mismatch(self, got: Event) -> NonDeterminismError:
        ev = self._next_recorded()
        if ev is None:
            return self.diverge(
                f"the agent writes a {got.type} event, which was not recorded",
                None,
                None,
                {"type": got.type, "payload": got.payload},
            )
        if ev.seq != got.seq or ev.type != got.type:
            return self.diverge(
                f"the agent writes a {got.type} event where the record holds a {ev.type} event",
                ev,
                {"type": ev.type, "payload": ev.payload},
                {"type": got.type, "payload": got.payload},
            )
        field, expected, got_ = event_difference(ev, got)
        return self.diverge(f"the {ev.type} event differs in {field}", ev, expected, got_)

    def _link(self, op: Any, results: list) -> int | None:
        if type(op) is not AddTrace:
            return None
        event = op.event
        if isinstance(event, OpRef):
            ref = results[event.index] if 0 <= event.index < len(results) else None
            return getattr(ref, "seq", ref if isinstance(ref, int) and not isinstance(ref, bool) else None)
        return event

    def _result(self, op: Any, ev: Event) -> Generator[tuple, Any, Any]:
        cls = type(op)
        if cls is Put:
            return ev.seq
        if cls is Delete:
            return True
        if cls is AddTrace:
            p = ev.payload
            return Trace(
                seq=ev.seq,
                run_id=ev.run_id,
                kind=ev.type[len("trace.") :],
                data=p["data"],
                event=p.get("event"),
                ts=ev.ts,
                agent=ev.agent,
                tool=ev.tool,
            )
        if cls is EndRun:
            info = yield ("run_info", (ev.run_id,), ev.seq)
            return info
        return ev  # append_event and recorded inputs return the event

    def _mismatch(self, req: Request, op: Any, ev: Event | None, results: list) -> NonDeterminismError:
        if ev is None:
            return self.diverge(
                f"the agent writes a {op_type(op)} event, which was not recorded", None, None, op
            )
        if ev.type != op_type(op):
            _, _, got = difference(req, op, ev, self._link(op, results))
            return self.diverge(
                f"the agent writes a {op_type(op)} event where the record holds a {ev.type} event",
                ev,
                {"type": ev.type, "payload": ev.payload},
                {"type": got["type"], "payload": got["payload"]},
            )
        field, expected, got = difference(req, op, ev, self._link(op, results))
        if type(op) is Put and op.expected_version not in (None, ev.payload.get("prev")):
            field = "expected_version"
            expected = {"prev": ev.payload.get("prev")}
            got = {"expected_version": op.expected_version}
        return self.diverge(f"the {ev.type} event differs in {field}", ev, expected, got)


def _normal(value: Any) -> Any:
    """``value`` as the journal gives it back (tuples become lists …), for comparisons."""
    return unpack_value(pack_value(value))


async def _raise_later(exc: BaseException) -> Any:
    raise exc


__all__ = ["ReplaySession", "replay_agent"]
