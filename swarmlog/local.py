"""The in-process backend: namespaces as engines in this process, no Ray (``open_local``).

Each namespace is one RocksDB directory under ``<root>/namespaces/``. Engines are opened on
first use and are safe to share between threads; one process at a time may open a root (use
``swarmlog.connect`` to share a store between processes).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import quote, unquote

from coordination.engine import CoordinatorEngine
from journal.errors import NamespaceUnavailable
from journal.settings import Settings
from projections.engine import NamespaceEngine
from swarmlog.handles import Memory

# The coordinator travels the same call path as namespaces under this reserved name.
COORDINATOR = "\0coordinator"
# Coordinator calls that change state: clients give each a write id so that retries are safe.
COORDINATOR_MUTATIONS = frozenset({"cas", "put", "delete", "acquire_lease", "renew_lease", "release_lease"})


def namespace_dir(root: str, name: str) -> str:
    """Where namespace ``name`` keeps its RocksDB directory under ``root``."""
    return os.path.join(root, "namespaces", quote(name, safe="-_."))


def coordinator_dir(root: str) -> str:
    """Where the deployment's coordinator keeps its journal."""
    return os.path.join(root, "coordinator")


class LocalBackend:
    """Runs every call on an in-process ``NamespaceEngine`` (or ``CoordinatorEngine``)."""

    is_async = False

    def __init__(self, root: str, settings: Settings):
        self.root = os.path.abspath(root)
        self.settings = settings
        self._engines: dict[str, NamespaceEngine | CoordinatorEngine] = {}
        self._lock = threading.Lock()
        self._closed = False
        os.makedirs(os.path.join(self.root, "namespaces"), exist_ok=True)

    def __repr__(self) -> str:
        return f"local {self.root!r}"

    def engine(self, name: str) -> NamespaceEngine:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._lock:
            if self._closed:
                raise NamespaceUnavailable(f"the store at {self.root} is closed; open it again")
            engine = self._engines.get(name)
            if engine is None:
                if name == COORDINATOR:
                    engine = CoordinatorEngine(coordinator_dir(self.root), self.settings)
                else:
                    engine = NamespaceEngine(namespace_dir(self.root, name), self.settings, name=name)
                self._engines[name] = engine
            return engine

    def call(self, ns: str, method: str, args: tuple, kwargs: dict, then: Any = None) -> Any:
        result = getattr(self.engine(ns), method)(*args, **kwargs)
        return result if then is None else then(result)

    def coord(self, method: str, args: tuple, kwargs: dict, then: Any = None) -> Any:
        """Call the store's coordinator (in process)."""
        return self.call(COORDINATOR, method, args, kwargs, then)

    def namespaces(self) -> list[str]:
        base = os.path.join(self.root, "namespaces")
        return sorted(unquote(d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            engines, self._engines = list(self._engines.values()), {}
        errors = []
        for engine in engines:
            try:
                engine.close()
            except Exception as exc:  # close the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]


def open_local(path: str, *, durability: str | None = None, settings: Settings | None = None) -> Memory:
    """Open (or create) a swarmlog store in directory ``path``, in this process, without Ray.

    ``durability="process"`` acknowledges a write once it is in RocksDB's write-ahead log (it
    survives a killed process); ``"fsync"`` also syncs the log, once per group commit (it
    survives power loss); the default is ``"process"``, or what ``settings`` says. ``settings``
    sets everything else (see ``swarmlog.Settings``).
    """
    if settings is None:
        settings = Settings(durability=durability or "process")
    elif durability is not None:
        settings = settings.replace(durability=durability)
    return Memory(LocalBackend(path, settings))
