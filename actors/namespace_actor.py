"""``NamespaceActor``: one namespace engine in a Ray actor, with group commit across callers.

The actor is an asyncio actor. Every write call puts its requests in a queue and awaits them; a
single committer drains the queue into ``NamespaceEngine.commit`` — one RocksDB ``WriteBatch``
(and one sync with ``durability="fsync"``) for everything that arrived meanwhile. Calls that
arrive while a commit runs wait in Ray's queue and join the next group, so a busy namespace
commits in large groups and an idle one answers at once.

Ordering: calls from one caller that are awaited one after another are applied in that order;
concurrent calls (pipelined from one caller, or from several) have no order between them.

Restarts: created with ``max_restarts=-1`` and ``max_task_retries=-1``, Ray restarts a crashed
actor and re-executes the calls that were in flight. ``__init__`` reopens the RocksDB directory
and recovers (snapshot + tail) before the actor answers, and every client write carries a write
id, so a re-executed write is answered from the idempotency index and appends nothing.

Errors are returned as values (``("err", exc)``), not raised, so callers get the original
``SwarmlogError`` with its message instead of a Ray traceback wrapper.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray

from journal.errors import SwarmlogError, ValidationError
from journal.settings import Settings
from projections.engine import NamespaceEngine

# Engine methods a client may call through ``call`` (reads, inspection, projections).
CALLABLE = frozenset(
    {
        "get",
        "entry",
        "list",
        "items",
        "why",
        "run_info",
        "runs",
        "traces",
        "event",
        "read_events",
        "head",
        "verify",
        "digest",
        "snapshot",
        "register_projection",
        "projection",
        "drop_projection",
        "open_view",
        "view_call",
    }
)


class NamespaceActor:
    """Hosts one ``NamespaceEngine``. Use it through ``swarmlog.connect``, not directly."""

    def __init__(self, name: str, path: str, settings: Settings):
        self.name = name
        self._engine = NamespaceEngine(path, settings, name=name)
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._draining = False
        self._commits = 0
        self._requests = 0

    # -- writes --------------------------------------------------------------------------------

    async def submit(self, request: Any) -> tuple[str, Any]:
        """Commit one request (grouped with concurrent ones). ``("ok", results)`` or ``("err", exc)``."""
        return (await self._enqueue([request]))[0]

    async def submit_many(self, requests: list) -> list[tuple[str, Any]]:
        """Commit several requests (a client's coalesced writes); one outcome per request."""
        return await self._enqueue(requests)

    async def _enqueue(self, requests: list) -> list[tuple[str, Any]]:
        loop = asyncio.get_running_loop()
        futures = []
        for request in requests:
            fut = loop.create_future()
            self._pending.append((request, fut))
            futures.append(fut)
        if not self._draining:
            self._draining = True
            try:
                await self._drain()
            finally:
                self._draining = False
        return list(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        while self._pending:
            # Let calls already delivered to this actor join the group before it commits.
            await asyncio.sleep(0)
            group, self._pending = self._pending, []
            self._commits += 1
            self._requests += len(group)
            try:
                outcomes = self._engine.commit([r for r, _ in group])
            except BaseException as exc:  # the engine rolled back; tell every caller
                outcomes = [exc] * len(group)
            for (_, fut), out in zip(group, outcomes, strict=True):
                if not fut.done():
                    fut.set_result(("err", out) if isinstance(out, BaseException) else ("ok", out))

    # -- reads and the rest --------------------------------------------------------------------

    async def call(self, method: str, args: tuple = (), kwargs: dict | None = None) -> tuple[str, Any]:
        """Call an engine read/inspection method. ``("ok", result)`` or ``("err", exc)``."""
        if method not in CALLABLE:
            return ("err", ValidationError(f"{method!r} is not a namespace method"))
        try:
            return ("ok", getattr(self._engine, method)(*args, **(kwargs or {})))
        except SwarmlogError as exc:
            return ("err", exc)

    def stats(self) -> dict:
        """Group-commit counters since this actor (re)started."""
        return {"commits": self._commits, "requests": self._requests, "head": self._engine.head()}

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    async def close(self) -> bool:
        """Snapshot and release the RocksDB directory. The caller then kills this actor (without
        restart); calls that arrive in between get ``NamespaceUnavailable``."""
        self._engine.close()
        return True
