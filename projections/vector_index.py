"""Search over a vector collection: a derived hnswlib index plus exact numpy search.

``VectorIndex`` follows a collection's birth/death log (``projections.vectors``): it adds the
vectors born since it last looked, in order, with one thread and the collection's fixed seed,
and marks the dead ones deleted, so the graph is a pure function of the canonical state and
is the same after a restart, from a snapshot, or in an ``at(seq)`` view. It grows by doubling
(``resize_index``), without a preset maximum.

hnswlib is not safe for adding and querying at the same time, so every use of an index holds
its lock. Searches choose between:
- exact numpy search over the candidates when there are few of them (a small collection, or a
  metadata filter that leaves ``EXACT_MAX_CANDIDATES`` or fewer);
- the hnswlib index otherwise, with the filter as a label predicate. hnswlib raises instead of
  returning fewer than ``k`` results when its search runs out of reachable candidates; then
  the search is repeated with a wider ``ef`` and finally answered exactly, so a search returns
  exactly ``min(k, matching)`` results.
Scores are the same quantity on both paths (float32 arithmetic): cosine similarity, inner
product, or squared Euclidean distance.
"""

from __future__ import annotations

import threading
from typing import Any

import hnswlib
import numpy as np

from projections.vectors import BIRTH, VecCollection

EXACT_MAX_CANDIDATES = 2048
DEFAULT_EF = 64
_MIN_CAPACITY = 1024


class VectorIndex:
    """The hnswlib graph and a float32 matrix of every vector the graph holds."""

    def __init__(self, coll: VecCollection):
        self.lock = threading.RLock()
        self.dim = coll.dim
        self.metric = coll.metric
        self.params = list(coll.params)
        self._reset(coll)

    def _reset(self, coll: VecCollection) -> None:
        self.epoch = coll.epoch
        self.applied = 0  # how many log entries the graph reflects
        self.hnsw: Any = None
        self.matrix = np.empty((0, self.dim), dtype=np.float32)  # rows normalised for cosine
        self.rows: dict[int, int] = {}  # rev -> row of ``matrix``
        self.count = 0

    # -- keeping up with the log ---------------------------------------------------------------

    def sync(self, coll: VecCollection) -> None:
        """Apply the collection's log entries that the graph does not reflect yet."""
        if coll.epoch != self.epoch or self.applied > len(coll.log):
            self._reset(coll)
        log = coll.log
        end = len(log)
        i = self.applied
        while i < end:
            if log[i][1] == BIRTH:
                j = i
                while j < end and log[j][1] == BIRTH:
                    j += 1
                self._add([e[2] for e in log[i:j]], [e[3] for e in log[i:j]])
                i = j
            else:
                self.hnsw.mark_deleted(log[i][2])
                i += 1
        self.applied = end

    def _add(self, revs: list[int], vectors: list[bytes]) -> None:
        block = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(vectors), self.dim)
        need = self.count + len(revs)
        if self.hnsw is None:
            m, ef_construction, seed = self.params
            self.hnsw = hnswlib.Index(space=self.metric, dim=self.dim)
            self.hnsw.init_index(
                max_elements=max(_MIN_CAPACITY, need), M=m, ef_construction=ef_construction, random_seed=seed
            )
        capacity = self.hnsw.get_max_elements()
        if need > capacity:
            self.hnsw.resize_index(max(need, capacity * 2))
        if need > len(self.matrix):
            grown = np.empty((max(need, 2 * len(self.matrix), _MIN_CAPACITY), self.dim), dtype=np.float32)
            grown[: self.count] = self.matrix[: self.count]
            self.matrix = grown
        # One thread: insertion order (and so the graph) is the log's order.
        self.hnsw.add_items(block, np.asarray(revs, dtype=np.uint64), num_threads=1)
        rows = self.matrix[self.count : need]
        rows[:] = block
        if self.metric == "cosine":
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        for k, rev in enumerate(revs):
            self.rows[rev] = self.count + k
        self.count = need

    # -- searching -----------------------------------------------------------------------------

    def scores(self, revs: list[int], q: np.ndarray) -> np.ndarray:
        m = self.matrix[[self.rows[r] for r in revs]]
        if self.metric == "l2":
            d = m - q
            return np.einsum("ij,ij->i", d, d)
        return m @ q

    def exact(self, revs: list[int], q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The best ``k`` of ``revs`` by exact score: ``[(rev, score)]`` best first (ties by rev)."""
        if not revs or k <= 0:
            return []
        s = self.scores(revs, q)
        labels = np.asarray(revs, dtype=np.int64)
        # Ties go to the older vector, whatever order the candidates came in (it differs
        # between a live namespace and one loaded from a snapshot).
        order = np.lexsort((labels, s if self.metric == "l2" else -s))[:k]
        return list(zip(labels[order].tolist(), s[order].tolist(), strict=True))

    def approximate(
        self, q: np.ndarray, k: int, ef: int, allowed: set | None
    ) -> list[tuple[int, float]] | None:
        """``[(rev, score)]`` of the best ``k`` by the graph, or None when hnswlib cannot return
        ``k`` (it raises rather than return fewer)."""
        hnsw = self.hnsw
        flt = None if allowed is None else allowed.__contains__
        widths = [max(k, min(ef, self.count))]  # an ef beyond the graph's size buys nothing
        if widths[0] < self.count:  # a wider search can only help while it is narrower than the graph
            widths.append(min(self.count, max(ef * 4, k * 8)))
        for width in widths:
            hnsw.set_ef(width)
            try:
                labels, dists = hnsw.knn_query(q, k=k, num_threads=1, filter=flt)
            except RuntimeError:
                continue
            d = dists[0].tolist()
            # hnswlib's distances: squared L2, or 1 - similarity for cosine and ip.
            scores = d if self.metric == "l2" else [1.0 - x for x in d]
            return list(zip(labels[0].tolist(), scores, strict=True))
        return None


def search(
    coll: VecCollection,
    q: np.ndarray,
    k: int,
    *,
    allowed: list[int] | None = None,
    allowed_set: set[int] | None = None,
    ef: int | None = None,
) -> list[tuple[int, float]]:
    """``[(rev, score)]`` best first: exactly ``min(k, candidates)`` of them. ``allowed`` are
    the revs a metadata filter left (None: every live vector), ``allowed_set`` the same as a set
    when the caller has one."""
    index = coll.index
    if index is None:
        index = coll.index = VectorIndex(coll)
    with index.lock:
        index.sync(coll)
        live = len(coll.items)
        n = live if allowed is None else len(allowed)
        k = min(k, n)
        if k == 0:
            return []
        if n > EXACT_MAX_CANDIDATES:
            ef = ef or DEFAULT_EF
            if allowed is not None:
                if allowed_set is None:
                    allowed_set = set(allowed)
                # A filter hides part of the graph's neighbours: widen the search in proportion
                # (up to 8x), so a filtered search keeps the recall of an unfiltered one.
                ef = min(8 * ef, -(-ef * live // n))
            found = index.approximate(q, k, ef, allowed_set)  # hnswlib normalises for cosine
            if found is not None:
                return found
        if coll.metric == "cosine":
            q = q / np.linalg.norm(q)
        return index.exact(list(coll.by_rev) if allowed is None else allowed, q, k)


__all__ = ["DEFAULT_EF", "EXACT_MAX_CANDIDATES", "VectorIndex", "search"]
