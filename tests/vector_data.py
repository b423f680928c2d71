"""Test data and references for vector search: clustered vectors, exact search, and an hnswlib
index built straight from the journal (the independent peer the store must agree with)."""

from __future__ import annotations

import hnswlib
import numpy as np


def clustered(
    n: int, dim: int, *, clusters: int, seed: int, spread: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 vectors around ``clusters`` random centres (like real embeddings, unlike
    uniform noise, which no ANN index handles) and the cluster of each."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), labels


def exact_top(x: np.ndarray, q: np.ndarray, k: int, metric: str) -> list[int]:
    """Row numbers of the ``k`` best rows of ``x`` for ``q``, best first (numpy, exact)."""
    if metric == "cosine":
        s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        order = np.argsort(-s, kind="stable")
    elif metric == "ip":
        order = np.argsort(-(x @ q), kind="stable")
    else:
        order = np.argsort(((x - q) ** 2).sum(axis=1), kind="stable")
    return order[:k].tolist()


def index_from_journal(ns, name: str) -> tuple[hnswlib.Index, dict[int, object]]:
    """Replay the ``vec.*`` events of collection ``name`` into a fresh hnswlib index, as the
    store defines its index: labels are upsert seqs, births and deaths in journal order,
    one thread, the parameters of the ``vec.create`` event. Returns it and label -> id."""
    events = [
        e
        for e in ns.read_events(types=["vec.create", "vec.upsert", "vec.delete", "vec.compact"])
        if e.payload["c"] == name
    ]
    create = events[0]
    assert create.type == "vec.create"
    m, ef_construction, seed = create.payload["params"]
    dim = create.payload["dim"]

    def fresh() -> hnswlib.Index:
        p = hnswlib.Index(space=create.payload["metric"], dim=dim)
        p.init_index(max_elements=len(events) + 16, M=m, ef_construction=ef_construction, random_seed=seed)
        return p

    index = fresh()
    live: dict[object, tuple[int, bytes]] = {}
    for e in events[1:]:
        item = e.payload.get("id")
        if e.type == "vec.upsert":
            if item in live:
                index.mark_deleted(live[item][0])
            vec = np.frombuffer(e.payload["vec"], dtype="<f4").reshape(1, dim)
            index.add_items(vec, np.array([e.seq], dtype=np.uint64), num_threads=1)
            live[item] = (e.seq, e.payload["vec"])
        elif e.type == "vec.delete":
            index.mark_deleted(live.pop(item)[0])
        else:  # compaction: the live vectors in seq order, nothing else
            index = fresh()
            for label, vec in sorted(live.values()):
                index.add_items(
                    np.frombuffer(vec, dtype="<f4").reshape(1, dim), np.array([label]), num_threads=1
                )
    return index, {label: item for item, (label, _) in live.items()}
