"""Optimistic transactions over KV entries and documents: ``run.txn`` and ``run.transaction``.

``run.txn(reads=, writes=, preconditions=)`` is one request: the versions read and the
preconditions are checked against the current state and all the writes are committed in one
commit, or none are and ``ConflictError`` names the key. Keys are strings (KV entries) or
``(collection, _id)`` pairs (documents); versions are ``Entry.version`` / ``_rev``, 0 for absent.

``run.transaction(retries=...)`` builds that request from a block of code. ``tx.get`` reads
through to the namespace and records the version it saw; the first read fixes the snapshot
(the head seq at that moment), and a later read of something written after the snapshot ends
the attempt early with ``ConflictError``, so the block only ever sees one consistent state.
``tx.put`` / ``tx.delete`` are buffered (and read back by ``tx.get``); leaving the block commits
them with the recorded versions as the read set. A transaction that only read writes nothing.

A ``with`` block cannot run itself again (its context manager gets no say over its body), so
retrying needs the block inside a loop or a function. Three forms, the first being the usual one:

    for attempt in run.transaction(retries=10):     # retried: up to 1 + 10 attempts
        with attempt as tx:
            tx.put("counter", (tx.get("counter") or 0) + 1)

    run.transaction(retries=10)(lambda tx: tx.put("n", (tx.get("n") or 0) + 1))   # same, as a call

    with run.transaction() as tx:                   # one attempt: a conflict raises ConflictError,
                                                    # whose message says how to retry
        tx.put("counter", (tx.get("counter") or 0) + 1)

In the loop, a conflict (at a read or at the commit) ends that attempt quietly and the next one
starts after a short random pause; the last attempt's ``ConflictError`` propagates. Any other
exception leaves the loop at once and writes nothing. ``tx.results`` holds ``{key: new
version}`` (0 for deletes) after the commit.

With the async client the same objects work with ``async for`` / ``async with`` (``tx.get``
and the commit are then awaited; ``tx.put`` and ``tx.delete`` only buffer, so they are not):

    async for attempt in run.transaction(retries=10):
        async with attempt as tx:
            tx.put("counter", (await tx.get("counter") or 0) + 1)

    await run.transaction(retries=10)(body)         # body(tx) may be an ``async def``

The retry loop is written once (``Transaction._steps`` yields the attempts and the pauses
between them) and driven by ``for`` with ``time.sleep`` or by ``async for`` with
``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

from journal.errors import ConflictError, ValidationError
from projections.txn_commands import DELETE, TxnCheck, key_label, txn_key, txn_ops, user_key, write_op
from swarmlog.flow import ready

if TYPE_CHECKING:
    from swarmlog.handles import Run


def txn_results(keys: list[tuple], deletes: list[bool], results: list) -> dict:
    """``{key: new version}`` from a transaction request's results (0 for deletes)."""
    out = {}
    for k, is_delete, r in zip(keys, deletes, results[1:], strict=True):
        if is_delete:
            out[user_key(k)] = 0
        elif k[0] == "k":
            out[user_key(k)] = r
        else:
            out[user_key(k)] = r[3]  # [matched, modified, upserted_id, rev]
    return out


def run_txn(run: Run, reads: Any, writes: Any, preconditions: Any, write_id: str | None) -> dict:
    ops, keys = txn_ops(reads, writes, preconditions)
    deletes = [v is DELETE for v in (writes or {}).values()]
    return run._write(ops, write_id=write_id, then=lambda r: txn_results(keys, deletes, r))


class Tx:
    """The reads and buffered writes of one transaction attempt."""

    def __init__(self, run: Run):
        self._run = run
        self.snapshot: int | None = None
        """Head seq at the first read: every value read is the one current at this seq."""
        self.reads: dict[tuple, int] = {}
        self._writes: dict[tuple, Any] = {}
        self._ops: dict[tuple, Any] = {}
        self.results: dict | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"<swarmlog.Tx snapshot={self.snapshot} reads={len(self.reads)} writes={len(self._writes)}>"

    def _check(self) -> None:
        if self._done:
            raise ValidationError("this transaction attempt has finished; start a new one")

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of a KV key or the document at ``(collection, _id)`` (``default`` when
        absent), as of the snapshot; your own buffered writes first. An awaitable of it with
        the async client."""
        self._check()
        k = txn_key(key)
        if k in self._writes:
            value = self._writes[k]
            value = default if value is DELETE else value
            return ready(value) if getattr(self._run._backend, "is_async", False) else value
        return self._run._call("txn_read", k, then=lambda r: self._record(k, r, default))

    def _record(self, k: tuple, answer: tuple, default: Any) -> Any:
        head, version, value = answer
        if self.snapshot is None:
            self.snapshot = head
        known = self.reads.get(k)
        if version > self.snapshot or (known is not None and known != version):
            raise ConflictError(
                f"transaction conflict: {key_label(k)!r} changed after this transaction's snapshot "
                f"(seq {self.snapshot}); retry the transaction",
                key=key_label(k),
                expected=known,
                actual=version,
            )
        self.reads[k] = version
        return default if version == 0 else value

    def put(self, key: Any, value: Any) -> None:
        """Buffer a write of ``value`` (a whole document for a ``(collection, _id)`` key);
        ``DELETE`` deletes."""
        self._check()
        k = txn_key(key)
        self._ops[k] = write_op(k, value)
        self._writes[k] = value

    def delete(self, key: Any) -> None:
        """Buffer a delete."""
        self.put(key, DELETE)

    def commit(self) -> dict:
        """Commit the buffered writes if nothing read has changed (``ConflictError`` otherwise);
        returns ``{key: new version}`` (an awaitable of it with the async client). Leaving the
        ``with`` block does this."""
        self._check()
        self._done = True
        if not self._ops:
            self.results = {}
            return self.results
        checks = [["k", k[1], v] if k[0] == "k" else ["d", k[1], k[2], v] for k, v in self.reads.items()]
        keys = list(self._ops)
        deletes = [self._writes[k] is DELETE for k in keys]
        ops = [TxnCheck(reads=checks, preconditions=[]), *self._ops.values()]
        return self._run._write(ops, then=lambda r: self._store(txn_results(keys, deletes, r)))

    def _store(self, results: dict) -> dict:
        self.results = results
        return results


class Attempt:
    """One try of a transaction: ``with attempt as tx:`` (``async with`` with the async
    client) runs the body and commits."""

    def __init__(self, run: Run, number: int, last: bool):
        self.tx = Tx(run)
        self.number = number
        self.last = last
        self.entered = False
        self.committed = False
        self.conflict: ConflictError | None = None

    def _enter(self) -> Tx:
        if self.entered:
            raise ValidationError("a transaction attempt runs once; iterate for the next one")
        self.entered = True
        return self.tx

    def _conflicted(self, err: ConflictError) -> bool:
        """A conflict at the commit: the last attempt raises it, the others are retried."""
        if self.last:
            raise err
        self.conflict = err
        return False

    def _failed(self, exc_type: type, exc: BaseException | None) -> bool:
        """The body raised: a conflict at a read is retried (unless last); anything else leaves."""
        self.tx._done = True
        if issubclass(exc_type, ConflictError) and not self.last:
            self.conflict = exc  # type: ignore[assignment]
            return True  # retried by the loop
        return False

    def __enter__(self) -> Tx:
        return self._enter()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            return self._failed(exc_type, exc)
        if not self.tx._done:
            try:
                done = self.tx.commit()
            except ConflictError as err:
                return self._conflicted(err)
            if inspect.isawaitable(done):  # the async client: the commit was never sent
                getattr(done, "close", lambda: None)()
                raise ValidationError(
                    "this run uses the async client: write `async for attempt in "
                    "run.transaction(...): async with attempt as tx: ...`; nothing was written"
                )
        self.committed = True
        return False

    async def __aenter__(self) -> Tx:
        return self._enter()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            return self._failed(exc_type, exc)
        if not self.tx._done:
            try:
                done = self.tx.commit()
                if inspect.isawaitable(done):
                    await done
            except ConflictError as err:
                return self._conflicted(err)
        self.committed = True
        return False


class Transaction:
    """``run.transaction(retries=...)``: iterate for retried attempts (``for`` or ``async
    for``), call with a function, or use directly in ``with`` / ``async with`` for a single
    attempt (see the module docstring)."""

    def __init__(self, run: Run, *, retries: int = 10, backoff_s: float = 0.002):
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(f"retries must be an int >= 0, got {retries!r}")
        self._run = run
        self.retries = retries
        self.backoff_s = backoff_s
        self.attempts = 0
        self._single: Attempt | None = None

    @property
    def _asynchronous(self) -> bool:
        return bool(getattr(self._run._backend, "is_async", False))

    def _steps(self) -> Generator[Attempt | float, None, None]:
        """The retry protocol: yields each attempt (run by the caller) and, between attempts,
        the seconds to pause — random and growing, so contending writers do not collide in
        lockstep."""
        for n in range(self.retries + 1):
            attempt = Attempt(self._run, n, last=n == self.retries)
            self.attempts = n + 1
            yield attempt
            if attempt.committed:
                return
            if not attempt.entered:
                raise ValidationError(
                    "run each attempt's body in `with attempt as tx:` inside "
                    "`for attempt in run.transaction(...)` (`async for` / `async with` with the "
                    "async client)"
                )
            if attempt.conflict is None:  # the body finished without a conflict
                return
            yield random.uniform(0, min(self.backoff_s * 2**n, 0.05))

    def __iter__(self) -> Iterator[Attempt]:
        for step in self._steps():
            if isinstance(step, Attempt):
                yield step
            else:
                time.sleep(step)

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        for step in self._steps():
            if isinstance(step, Attempt):
                yield step
            else:
                await asyncio.sleep(step)

    def __call__(self, fn: Callable[[Tx], Any]) -> Any:
        """Run ``fn(tx)`` until it commits (at most ``1 + retries`` times); returns its result.
        With the async client, or when ``fn`` is an ``async def``, returns an awaitable."""
        if self._asynchronous or inspect.iscoroutinefunction(fn):
            return self._call_async(fn)
        result = None
        for attempt in self:
            with attempt as tx:
                result = fn(tx)
        return result

    async def _call_async(self, fn: Callable[[Tx], Any]) -> Any:
        result = None
        async for attempt in self:
            async with attempt as tx:
                result = fn(tx)
                if inspect.isawaitable(result):
                    result = await result
        return result

    # -- a single attempt ------------------------------------------------------------------------

    def __enter__(self) -> Tx:
        self._single = Attempt(self._run, 0, last=True)
        self.attempts = 1
        return self._single.__enter__()

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._single is not None
        try:
            handled = self._single.__exit__(exc_type, exc, tb)
        except ConflictError as err:  # at the commit
            raise self._hint(err) from None
        if isinstance(exc, ConflictError):  # at a read inside the block
            raise self._hint(exc) from None
        return handled

    async def __aenter__(self) -> Tx:
        self._single = Attempt(self._run, 0, last=True)
        self.attempts = 1
        return await self._single.__aenter__()

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        assert self._single is not None
        try:
            handled = await self._single.__aexit__(exc_type, exc, tb)
        except ConflictError as err:
            raise self._hint(err) from None
        if isinstance(exc, ConflictError):
            raise self._hint(exc) from None
        return handled

    def _hint(self, err: ConflictError) -> ConflictError:
        """The conflict, saying how to retry: a ``with`` block runs its body once, whatever
        ``retries`` says, because a context manager cannot run its block again."""
        if self._asynchronous:
            loop = "`async for attempt in run.transaction(retries=N): async with attempt as tx: ...`"
            call = "`await run.transaction(retries=N)(fn)`"
        else:
            loop = "`for attempt in run.transaction(retries=N): with attempt as tx: ...`"
            call = "`run.transaction(retries=N)(fn)`"
        return ConflictError(
            f"{err} (nothing was written. A `with run.transaction()` block is a single attempt: "
            "Python cannot run a with-block's body again, so `retries` does not apply to it. "
            f"To retry on conflict write {loop} or {call})",
            key=err.key,
            expected=err.expected,
            actual=err.actual,
        )
