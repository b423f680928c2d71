"""``CoordinatorActor``: the deployment's one ``CoordinatorEngine`` in a restartable Ray actor.

Threaded like ``NamespaceActor``: concurrent CAS and lease calls share the engine's group commit.
Watches (``wait_changed``) block a thread for up to their timeout, so they run in their own
concurrency group and never starve CAS and lease calls. Created with ``max_restarts=-1`` and
``max_task_retries=-1``; clients send a write id with every changing call, so a call re-executed
after a restart gets its original answer (a CAS is not applied twice, a grant is not repeated).
"""

from __future__ import annotations

import os

import ray

from actors.wire import dumps, loads
from coordination.engine import CoordinatorEngine
from journal.errors import SwarmlogError, ValidationError
from journal.settings import Settings

CALLABLE = frozenset(
    {
        "read_state",
        "cas",
        "put",
        "delete",
        "acquire_lease",
        "renew_lease",
        "release_lease",
        "lease_status",
        "revision",
        "changed_since",
        "head",
        "digest",
        "verify",
        "now",
    }
)
WATCH_THREADS = 64


class CoordinatorActor:
    """Hosts one ``CoordinatorEngine``. Use it through ``swarmlog.connect``'s ``Memory``."""

    def __init__(self, path: str, settings: Settings):
        self._engine = CoordinatorEngine(path, settings)

    def call(self, payload: bytes) -> bytes:
        """Call a coordinator method with pickled ``(method, args, kwargs)`` (one argument:
        each further argument of a Ray call costs ~0.06 ms): pickled ``("ok", result)`` or
        ``("err", exc)``."""
        method, args, kwargs = loads(payload)
        if method not in CALLABLE:
            return dumps(("err", ValidationError(f"{method!r} is not a coordinator method")))
        try:
            return dumps(("ok", getattr(self._engine, method)(*args, **kwargs)))
        except SwarmlogError as exc:
            return dumps(("err", exc))

    @ray.method(concurrency_group="watch")
    def wait_changed(self, payload: bytes) -> bytes:
        """``wait_changed(name, revision, timeout, kind=...)`` in the watch threads."""
        args, kwargs = loads(payload)
        try:
            return dumps(("ok", self._engine.wait_changed(*args, **kwargs)))
        except SwarmlogError as exc:
            return dumps(("err", exc))

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> bool:
        self._engine.close()
        return True


RemoteCoordinator = ray.remote(concurrency_groups={"watch": WATCH_THREADS})(CoordinatorActor)


def coordinator_actor(
    name: str, ray_namespace: str, path: str, settings: Settings, *, max_concurrency: int = 32
):
    """The deployment's coordinator actor, created on first use (get-if-exists)."""
    return RemoteCoordinator.options(
        name=name,
        namespace=ray_namespace,
        get_if_exists=True,
        lifetime="detached",
        num_cpus=0,
        max_restarts=-1,
        max_task_retries=-1,
        max_concurrency=max_concurrency,
    ).remote(path, settings)
