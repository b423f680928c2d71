"""The Ray backends: the same handle calls, answered by ``NamespaceActor``s on a Ray cluster.

``RayBackend`` blocks on each call (``ray.get``); ``AsyncRayBackend`` returns awaitables and
coalesces concurrent writes of many coroutines into one actor call per namespace — while one
call is in flight, later writes wait and go together in the next, like a Kafka producer with
an adaptive linger — so a swarm of coroutines doing single puts gets close to batch throughput,
and a lone writer never waits for a timer.

Every write gets a write id before it leaves the client, so that when Ray re-executes a call on
a restarted actor the journal's idempotency index answers it and nothing is appended twice.
Ray errors are translated here, at the boundary, into ``NamespaceUnavailable``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import uuid
from typing import Any
from urllib.parse import unquote

import msgspec
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from actors.coordinator_actor import coordinator_actor
from actors.namespace_actor import namespace_actor
from actors.naming import RAY_NAMESPACE, coordinator_actor_name, is_deployment_actor, namespace_actor_name
from actors.wire import dumps, expand_results, loads
from journal import errors as journal_errors
from journal.errors import NamespaceUnavailable, SwarmlogError
from journal.settings import Settings
from swarmlog.local import COORDINATOR, COORDINATOR_MUTATIONS, coordinator_dir, namespace_dir


def translate_error(namespace: str, exc: BaseException, timeout_s: float | None = None) -> BaseException:
    """The swarmlog error a caller should see for a Ray (or asyncio) failure of a call."""
    namespace = "the coordinator" if namespace == COORDINATOR else namespace
    if isinstance(exc, SwarmlogError):
        return exc
    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SwarmlogError):
            return cause
        return SwarmlogError(f"namespace {namespace!r}: the actor failed unexpectedly: {cause or exc!r}")
    if isinstance(exc, GetTimeoutError | asyncio.TimeoutError | TimeoutError):
        return NamespaceUnavailable(
            f"namespace {namespace!r} did not answer within {timeout_s} s; its actor may be restarting "
            "or overloaded. Retry (writes are idempotent), or raise timeout_s in connect()."
        )
    if isinstance(exc, RayActorError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = _creation_error(exc, lines)
        if cause is not None:
            return cause
        return NamespaceUnavailable(
            f"namespace {namespace!r} is unavailable: its actor died and could not be restarted "
            f"({type(exc).__name__}: {lines[-1] if lines else 'no detail'}). Check that its data "
            "directory is sound and reachable from the cluster (`ray status`, the actor logs, "
            "`swarmlog verify`), then call again: a new actor is started on the next call."
        )
    return exc


def _creation_error(exc: BaseException, lines: list[str]) -> SwarmlogError | None:
    """The swarmlog error that made an actor's constructor fail (a damaged journal raises
    ``CorruptionError`` while recovering), rebuilt from the text Ray reports, or None."""
    if not getattr(exc, "_actor_init_failed", False) or not lines:
        return None
    name, sep, message = lines[-1].partition(": ")
    cls = (
        getattr(journal_errors, name.rpartition(".")[2], None) if name.startswith("journal.errors.") else None
    )
    if not sep or not isinstance(cls, type) or not issubclass(cls, SwarmlogError):
        return None
    return cls(message)


class RayBackend:
    """Blocking transport: one actor call per handle call."""

    is_async = False

    def __init__(
        self,
        root: str,
        settings: Settings,
        *,
        ray_namespace: str = RAY_NAMESPACE,
        timeout_s: float | None = 60.0,
        max_concurrency: int = 32,
    ):
        self.max_concurrency = max_concurrency
        self.root = os.path.abspath(root)
        self.settings = settings
        self.ray_namespace = ray_namespace
        self.timeout_s = timeout_s
        self._actors: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._client = uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        return f"ray {self.root!r} (Ray namespace {self.ray_namespace!r})"

    # -- actors --------------------------------------------------------------------------------

    def actor(self, namespace: str) -> Any:
        """The namespace's actor handle, creating the actor if no one has (get-if-exists)."""
        if self._closed:
            raise NamespaceUnavailable(
                f"this client of {self.root} is closed; call swarmlog.connect() again "
                "(the namespaces themselves keep serving other clients)"
            )
        handle = self._actors.get(namespace)
        if handle is None:
            with self._lock:
                handle = self._actors.get(namespace)
                if handle is None:
                    if namespace == COORDINATOR:
                        handle = coordinator_actor(
                            coordinator_actor_name(self.root),
                            self.ray_namespace,
                            coordinator_dir(self.root),
                            self.settings,
                            max_concurrency=self.max_concurrency,
                        )
                    else:
                        handle = namespace_actor(
                            namespace_actor_name(self.root, namespace),
                            self.ray_namespace,
                            namespace,
                            namespace_dir(self.root, namespace),
                            self.settings,
                            max_concurrency=self.max_concurrency,
                        )
                    self._actors[namespace] = handle
        return handle

    def _forget(self, namespace: str, exc: BaseException) -> None:
        # A dead actor's name is free again; the next call starts a new one.
        if isinstance(exc, RayActorError):
            self._actors.pop(namespace, None)

    def _with_write_id(self, request: Any) -> Any:
        if request.write_id is not None:
            return request
        return msgspec.structs.replace(request, write_id=self._auto_write_id())

    def _auto_write_id(self) -> str:
        return f"~{self._client}-{next(self._counter)}"

    def _ref(self, namespace: str, method: str, args: tuple, kwargs: dict) -> Any:
        actor = self.actor(namespace)
        if namespace == COORDINATOR:
            if method == "wait_changed":
                return actor.wait_changed.remote(dumps((args, kwargs)))
            if method in COORDINATOR_MUTATIONS and kwargs.get("write_id") is None:
                kwargs = {**kwargs, "write_id": self._auto_write_id()}
        return actor.call.remote(dumps((method, args, kwargs)))

    def _timeout(self, method: str, args: tuple) -> float | None:
        # A watch legitimately blocks for its own timeout; allow for it on top of the deadline.
        if method == "wait_changed" and self.timeout_s is not None:
            return self.timeout_s + float(args[2])
        return self.timeout_s

    # -- calls ---------------------------------------------------------------------------------

    def call(self, namespace: str, method: str, args: tuple, kwargs: dict, then: Any = None) -> Any:
        request = None
        try:
            if method == "submit":
                request = self._with_write_id(args[0])
                ref = self.actor(namespace).submit.remote(dumps(request))
            else:
                ref = self._ref(namespace, method, args, kwargs)
            status, value = loads(ray.get(ref, timeout=self._timeout(method, args)))
        except Exception as exc:
            self._forget(namespace, exc)
            raise translate_error(namespace, exc, self.timeout_s) from None
        if status == "err":
            raise value
        if request is not None:
            value = expand_results(request, value)
        return value if then is None else then(value)

    def coord(self, method: str, args: tuple, kwargs: dict, then: Any = None) -> Any:
        """Call the deployment's coordinator (created on first use)."""
        return self.call(COORDINATOR, method, args, kwargs, then)

    def namespaces(self) -> list[str]:
        base = os.path.join(self.root, "namespaces")
        if not os.path.isdir(base):
            return []
        return sorted(unquote(d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))

    def actor_names(self) -> list[str]:
        """Names of this deployment's live actors on the cluster."""
        return sorted(
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == self.ray_namespace and is_deployment_actor(self.root, a["name"])
        )

    def close(self) -> None:
        """Close this client: forget the actor handles (the actors keep serving other clients)."""
        self._closed = True
        self._forget_all()

    def _forget_all(self) -> None:
        with self._lock:
            self._actors.clear()

    def shutdown(self) -> None:
        """Close every actor of this deployment (each snapshots and releases its data)."""
        handles = []
        for name in self.actor_names():
            try:
                handles.append(ray.get_actor(name, namespace=self.ray_namespace))
            except ValueError:
                continue
        refs = [h.close.remote() for h in handles]
        for h, ref in zip(handles, refs, strict=True):
            try:
                ray.get(ref, timeout=self.timeout_s)
            except Exception:
                pass  # killed below either way; its journal recovers on the next start
            ray.kill(h, no_restart=True)
        self._closed = True
        self._forget_all()


class AsyncRayBackend(RayBackend):
    """Awaitable transport with write coalescing per namespace."""

    is_async = True

    def __init__(self, *args: Any, max_batch: int = 1000, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_batch = max_batch
        self._coalescers: dict[tuple[int, str], _Coalescer] = {}

    def call(self, namespace: str, method: str, args: tuple, kwargs: dict, then: Any = None) -> Any:
        if method == "submit":
            return self._submit(namespace, args[0], then)
        return self._call(namespace, method, args, kwargs, then)

    async def _call(self, namespace: str, method: str, args: tuple, kwargs: dict, then: Any) -> Any:
        ref = self._ref(namespace, method, args, kwargs)
        try:
            status, value = loads(await asyncio.wait_for(_await_ref(ref), self._timeout(method, args)))
        except Exception as exc:
            self._forget(namespace, exc)
            raise translate_error(namespace, exc, self.timeout_s) from None
        if status == "err":
            raise value
        return value if then is None else then(value)

    async def _submit(self, namespace: str, request: Any, then: Any) -> Any:
        loop = asyncio.get_running_loop()
        key = (id(loop), namespace)
        coalescer = self._coalescers.get(key)
        if coalescer is None:
            coalescer = self._coalescers[key] = _Coalescer(self, namespace)
        status, value = await coalescer.submit(self._with_write_id(request))
        if status == "err":
            raise value
        return value if then is None else then(value)

    def shutdown(self) -> Any:
        return asyncio.to_thread(super().shutdown)

    def close(self) -> Any:
        self._closed = True
        self._forget_all()
        return _done()

    def _forget_all(self) -> None:
        super()._forget_all()
        self._coalescers.clear()


async def _done() -> None:
    return None


async def _await_ref(ref: Any) -> Any:
    return await ref


class _Coalescer:
    """Gathers concurrent writes to one namespace into ``submit_many`` calls, one in flight."""

    def __init__(self, backend: AsyncRayBackend, namespace: str):
        self.backend = backend
        self.namespace = namespace
        self.pending: list[tuple[Any, asyncio.Future]] = []
        self.flushing = False

    async def submit(self, request: Any) -> tuple[str, Any]:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((request, fut))
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        backend = self.backend
        try:
            while self.pending:
                group = self.pending[: backend.max_batch]
                del self.pending[: backend.max_batch]
                try:
                    actor = backend.actor(self.namespace)
                    ref = actor.submit_many.remote(dumps([r for r, _ in group]))
                    outcomes = loads(await asyncio.wait_for(_await_ref(ref), backend.timeout_s))
                except Exception as exc:
                    backend._forget(self.namespace, exc)
                    err = translate_error(self.namespace, exc, backend.timeout_s)
                    outcomes = [("err", err)] * len(group)
                for (request, fut), out in zip(group, outcomes, strict=True):
                    if out[0] == "ok":
                        try:
                            out = ("ok", expand_results(request, out[1]))
                        except Exception as exc:  # never leave a writer waiting
                            out = ("err", exc)
                    if not fut.done():
                        fut.set_result(out)
        finally:
            self.flushing = False
