"""How swarmlog's actors are named and found on a Ray cluster.

All swarmlog actors live in one Ray namespace (``swarmlog`` by default), so every driver and job
sees the same ones. A deployment is identified by its data root: actor names carry a short hash
of it, so two stores on one cluster never share an actor by accident.
"""

from __future__ import annotations

import hashlib
import os

RAY_NAMESPACE = "swarmlog"


def deployment_id(root: str) -> str:
    """A short, stable id for the data root (absolute path)."""
    return hashlib.blake2b(os.path.abspath(root).encode(), digest_size=5).hexdigest()


def namespace_actor_name(root: str, namespace: str) -> str:
    return f"swarmlog:{deployment_id(root)}:ns:{namespace}"


def coordinator_actor_name(root: str) -> str:
    return f"swarmlog:{deployment_id(root)}:coordinator"


def is_deployment_actor(root: str, actor_name: str) -> bool:
    return actor_name.startswith(f"swarmlog:{deployment_id(root)}:")
