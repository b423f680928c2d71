"""``connect`` / ``connect_async``: swarmlog on Ray, on one machine or a cluster.

With no ``address`` and no Ray running in this process, a local Ray instance is started (the
embedded default). ``address="auto"`` joins the cluster this machine belongs to, and
``address="ray://head:10001"`` connects through Ray Client. The data root must be a path every
node can reach (a shared filesystem on a cluster; see the README and ``cluster.yaml``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from journal.settings import Settings
from swarmlog.handles import Memory

DEFAULT_ROOT = "swarmlog-data"


def default_root() -> str:
    """``$SWARMLOG_DATA`` (set on cluster nodes by cluster.yaml), else ``./swarmlog-data``."""
    return os.environ.get("SWARMLOG_DATA") or DEFAULT_ROOT


def _root(path: str | None) -> str:
    return os.path.abspath(path or default_root())


def _settings(durability: str | None, settings: Settings | None) -> Settings:
    if settings is None:
        return Settings(durability=durability or "process")
    return settings if durability is None else settings.replace(durability=durability)


def ensure_ray(address: str | None = None, *, ray_init: dict | None = None) -> None:
    """Start or join Ray unless this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    kwargs.update(ray_init or {})
    # "local" always starts a fresh instance, never an unrelated cluster found on this host.
    ray.init(address=address or "local", **kwargs)


def connect(
    path: str | None = None,
    *,
    address: str | None = None,
    durability: str | None = None,
    settings: Settings | None = None,
    timeout_s: float | None = 60.0,
    ray_init: dict | None = None,
) -> Memory:
    """A swarmlog store served by Ray actors, rooted at ``path`` (default ``$SWARMLOG_DATA`` or
    ``./swarmlog-data``).

    Every namespace is a named, detached, restartable ``NamespaceActor`` shared by all drivers
    and jobs of the cluster; opening the same namespace twice gives the same actor.
    ``timeout_s`` bounds every call (``NamespaceUnavailable`` after it); ``ray_init`` is passed
    to ``ray.init`` when Ray has to be started.
    """
    from swarmlog.ray_backend import RayBackend

    ensure_ray(address, ray_init=ray_init)
    return Memory(RayBackend(_root(path), _settings(durability, settings), timeout_s=timeout_s))


async def connect_async(
    path: str | None = None,
    *,
    address: str | None = None,
    durability: str | None = None,
    settings: Settings | None = None,
    timeout_s: float | None = 60.0,
    ray_init: dict | None = None,
    max_batch: int = 1000,
) -> Memory:
    """Like ``connect``, but every method returns an awaitable, and concurrent single writes from
    many coroutines are coalesced into one actor call per namespace (up to ``max_batch``)."""
    from swarmlog.ray_backend import AsyncRayBackend

    await asyncio.to_thread(ensure_ray, address, ray_init=ray_init)
    settings = _settings(durability, settings)
    return Memory(AsyncRayBackend(_root(path), settings, timeout_s=timeout_s, max_batch=max_batch))
