"""The vector store: validation, exact and approximate search, filters, deletes, history."""

from __future__ import annotations

import numpy as np
import pytest

import swarmlog
from projections.vector_index import DEFAULT_EF, EXACT_MAX_CANDIDATES
from tests.helpers import assert_store_sound
from tests.vector_data import clustered, exact_top, index_from_journal


@pytest.fixture
def run(ns):
    return ns.begin_run(agent="embedder")


def test_bad_embeddings_and_collections_are_refused_and_nothing_is_written(ns, run):
    vecs = run.vectors("v", dim=4, metric="cosine")
    vecs.upsert("ok", [1, 0, 0, 0])
    head = ns.head()
    for bad in (
        lambda: vecs.upsert("a", [1, 2, 3]),  # wrong dimension
        lambda: vecs.upsert("a", [1, 2, 3, float("nan")]),
        lambda: vecs.upsert("a", [1, 2, float("inf"), 0]),
        lambda: vecs.upsert("a", [1e39, 0, 0, 0]),  # infinite once rounded to float32
        lambda: vecs.upsert("a", [0, 0, 0, 0]),  # no direction for cosine
        lambda: vecs.upsert("a", ["x", "y", "z", "w"]),
        lambda: vecs.upsert("a", np.ones((2, 4))),
        lambda: vecs.upsert(None, [1, 0, 0, 0]),
        lambda: vecs.upsert("a", [1, 0, 0, 0], {"bad.key": 1}),
        lambda: vecs.upsert("a", [1, 0, 0, 0], "not a dict"),
        lambda: vecs.upsert_many([("b", [1, 0, 0, 0]), ("c", [1, 0, float("nan"), 0])]),  # atomic
        lambda: vecs.search([1, 0, 0]),
        lambda: vecs.search([1, 0, 0, 0], k=0),
        lambda: vecs.search([1, 0, 0, 0], filter={"a": {"$nope": 1}}),
        lambda: run.vectors("v", dim=5),
        lambda: run.vectors("v", dim=4, metric="l2"),
        lambda: run.vectors("w", dim=0),
        lambda: run.vectors("w", dim=4, metric="hamming"),
    ):
        with pytest.raises(swarmlog.ValidationError):
            bad()
    with pytest.raises(swarmlog.NotFoundError):
        ns.vectors("absent")
    assert ns.head() == head
    assert vecs.count() == 1
    assert_store_sound(ns)


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_small_collections_are_searched_exactly_with_documented_scores(ns, run, metric):
    x, _ = clustered(300, 8, clusters=6, seed=1)
    vecs = run.vectors(f"small-{metric}", dim=8, metric=metric)
    vecs.upsert_many([(i, x[i], {"i": i}) for i in range(len(x))])
    q = x[7] + 0.05
    hits = vecs.search(q, k=10)
    assert [h.id for h in hits] == exact_top(x, q, 10, metric)
    best = x[hits[0].id]
    if metric == "cosine":
        expected = float(best @ q / np.linalg.norm(best) / np.linalg.norm(q))
    elif metric == "ip":
        expected = float(best @ q)
    else:
        expected = float(((best - q) ** 2).sum())
    item_id, score, meta = hits[0]
    assert score == pytest.approx(expected, rel=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=metric != "l2")
    assert meta == {"i": item_id}
    assert vecs.get(item_id).embedding.tolist() == x[item_id].tolist()
    assert len(vecs.search(q, k=1000)) == 300
    assert_store_sound(ns)


def recall(found: list, truth: list) -> float:
    return len(set(found) & set(truth)) / len(truth)


def test_recall_at_10_on_clustered_data_with_filters_and_deletes(ns, run):
    n, dim, k = 6000, 32, 10
    assert n > 2 * EXACT_MAX_CANDIDATES  # the approximate index answers, not the exact path
    x, labels = clustered(n, dim, clusters=40, seed=7)
    vecs = run.vectors("mem", dim=dim, metric="cosine")
    for start in range(0, n, 1000):
        vecs.upsert_many(
            [
                (i, x[i], {"cluster": int(labels[i]), "even": i % 2 == 0})
                for i in range(start, min(n, start + 1000))
            ]
        )
    rng = np.random.default_rng(3)
    queries = x[rng.choice(n, 60, replace=False)] + 0.05 * rng.standard_normal((60, dim)).astype(np.float32)

    def mean_recall(live: np.ndarray, flt=None) -> float:
        rows = np.flatnonzero(live)
        scores = []
        for q in queries:
            truth = rows[exact_top(x[rows], q, k, "cosine")].tolist()
            hits = vecs.search(q, k=k, filter=flt)
            assert len(hits) == k  # exactly k whenever at least k match
            assert all(live[h.id] for h in hits)
            scores.append(recall([h.id for h in hits], truth))
        return float(np.mean(scores))

    live = np.ones(n, dtype=bool)
    assert mean_recall(live) >= 0.95

    even = live & (np.arange(n) % 2 == 0)  # 3000 candidates: a filtered index search
    assert mean_recall(even, {"even": True}) >= 0.95

    few = live & (labels == labels[0])  # about 150 candidates: searched exactly
    rows = np.flatnonzero(few)
    q = queries[0]
    hits = vecs.search(q, k=k, filter={"cluster": int(labels[0])})
    assert [h.id for h in hits] == rows[exact_top(x[rows], q, k, "cosine")].tolist()

    # Delete a third (including every query's current best hits) and replace some vectors.
    gone = set(rng.choice(n, n // 3, replace=False).tolist())
    for q in queries[:10]:
        gone.update(h.id for h in vecs.search(q, k=3))
    gone_sorted = sorted(gone)
    for start in range(0, len(gone_sorted), 1000):
        vecs.delete_many(gone_sorted[start : start + 1000])
    live[gone_sorted] = False
    moved = [i for i in range(0, n, 97) if live[i]]
    x[moved] = -x[moved]
    vecs.upsert_many([(i, x[i], {"cluster": int(labels[i]), "even": i % 2 == 0}) for i in moved])
    assert vecs.count() == int(live.sum())
    assert mean_recall(live) >= 0.95
    assert mean_recall(live & even, {"even": True}) >= 0.95
    for i in moved[:20]:  # a replaced vector is found where it is now, never where it was
        assert vecs.search(x[i], k=1)[0].id == i
        assert i not in [h.id for h in vecs.search(-x[i], k=10)]
    assert_store_sound(ns)


def test_search_returns_every_match_when_fewer_than_k_remain(ns, run):
    n, dim = 2600, 16
    x, _ = clustered(n, dim, clusters=10, seed=11)
    vecs = run.vectors("tail", dim=dim, metric="l2")
    vecs.upsert_many([(i, x[i], {"bucket": i % 100}) for i in range(n)])
    wanted = EXACT_MAX_CANDIDATES + 1
    flt = {"bucket": {"$lt": 100 * wanted // n + 1}}
    matching = [i for i in range(n) if i % 100 < 100 * wanted // n + 1]
    assert len(matching) > EXACT_MAX_CANDIDATES  # the index path, asked for every match
    hits = vecs.search(x[0], k=len(matching), filter=flt)
    assert sorted(h.id for h in hits) == matching
    assert len(vecs.search(x[0], k=n + 50)) == n
    vecs.delete_many(range(100, n))
    assert sorted(h.id for h in vecs.search(x[0], k=150)) == list(range(100))
    assert_store_sound(ns)


def build_history(run, n: int = 3000, dim: int = 16):
    """Upserts, replacements and deletes, interleaved, past the exact-search size."""
    x, _ = clustered(n, dim, clusters=20, seed=5)
    vecs = run.vectors("hist", dim=dim, metric="cosine")
    for start in range(0, n, 500):
        vecs.upsert_many([(f"v{i}", x[i], {"n": i}) for i in range(start, start + 500)])
        vecs.delete_many([f"v{i}" for i in range(start, start + 500, 7)])
        vecs.upsert_many([(f"v{i}", -x[i], {"n": -i}) for i in range(start + 3, start + 500, 11)])
    return vecs, x


def answers(vecs, queries) -> list:
    return [[(h.id, round(h.score, 5)) for h in vecs.search(q, k=10)] for q in queries]


def test_the_index_gives_the_same_answers_after_a_restart_and_equals_one_built_from_the_journal(store_path):
    settings = swarmlog.Settings(snapshot_every_events=700)
    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("vec")
    vecs, x = build_history(ns.begin_run(agent="a"))
    queries = x[::97] + 0.01
    before = answers(vecs, queries)
    raw, label_ids = index_from_journal(ns, "hist")
    raw.set_ef(DEFAULT_EF)
    labels, _ = raw.knn_query(queries, k=10, num_threads=1)
    assert [sorted(label_ids[int(label)] for label in row) for row in labels] == [
        sorted(i for i, _ in a) for a in before
    ]
    digest = ns.digest()
    assert_store_sound(ns)
    mem.close()

    mem = swarmlog.open_local(store_path, settings=settings)  # snapshot + tail
    assert mem.namespace("vec").digest() == digest
    assert answers(mem.namespace("vec").vectors("hist"), queries) == before
    mem.close()


def test_compaction_drops_tombstones_and_keeps_answers_reproducible(store_path):
    mem = swarmlog.open_local(store_path)
    ns = mem.namespace("vec")
    run = ns.begin_run(agent="a")
    vecs, x = build_history(run)
    queries = x[::131] + 0.01
    assert vecs.compact() is True
    assert vecs.compact() is False
    after = answers(vecs, queries)
    raw, label_ids = index_from_journal(ns, "hist")
    raw.set_ef(DEFAULT_EF)
    labels, _ = raw.knn_query(queries, k=10, num_threads=1)
    assert [sorted(label_ids[int(label)] for label in row) for row in labels] == [
        sorted(i for i, _ in a) for a in after
    ]
    vecs.upsert("late", x[0])
    later = answers(vecs, queries)
    assert_store_sound(ns)
    mem.close()
    mem = swarmlog.open_local(store_path)
    assert answers(mem.namespace("vec").vectors("hist"), queries) == later
    mem.close()


def test_at_seq_shows_vectors_as_they_were(ns, run):
    vecs = run.vectors("past", dim=3, metric="l2")
    vecs.upsert("a", [1, 0, 0], {"v": 1})
    vecs.upsert("b", [0, 1, 0], {"v": 1})
    seq = ns.head()
    vecs.upsert("a", [0, 0, 1], {"v": 2})
    vecs.delete("b")
    past = ns.at(seq).vectors("past")
    assert past.get("a").embedding.tolist() == [1, 0, 0]
    assert past.get("a").rev == seq - 1
    assert [(h.id, h.metadata) for h in past.search([0, 1, 0], k=5)] == [("b", {"v": 1}), ("a", {"v": 1})]
    assert [h.id for h in ns.vectors("past").search([0, 1, 0], k=5)] == ["a"]
    assert ns.vectors("past").get("b") is None
    with pytest.raises(swarmlog.NotFoundError):
        ns.at(1).vectors("past")
    assert_store_sound(ns)


def test_a_retried_upsert_write_id_appends_nothing(ns, run):
    vecs = run.vectors("idem", dim=2, metric="ip")
    revs = vecs.upsert_many([("a", [1, 2]), ("b", [3, 4])], write_id="batch-1")
    head = ns.head()
    assert vecs.upsert_many([("a", [1, 2]), ("b", [3, 4])], write_id="batch-1") == revs
    assert ns.head() == head
    with pytest.raises(swarmlog.ConflictError):
        vecs.upsert_many([("a", [9, 9])], write_id="batch-1")
    assert_store_sound(ns)


def test_identical_vectors_that_hnswlib_cannot_return_are_still_all_found(ns, run):
    # Many copies of one embedding (the same text embedded again and again) leave hnswlib's
    # graph unable to reach them all: it raises "Cannot return the results in a contiguous 2D
    # array" rather than answer. The search then answers exactly, with every match.
    n = 2 * EXACT_MAX_CANDIDATES + 300
    vecs = run.vectors("dupes", dim=8, metric="l2")
    vecs.upsert_many([(i, np.ones(8), {"odd": i % 2 == 1}) for i in range(n)])
    assert sorted(h.id for h in vecs.search(np.ones(8), k=n)) == list(range(n))
    vecs.delete_many(range(0, n, 4))
    odd = list(range(1, n, 2))
    assert len(odd) > EXACT_MAX_CANDIDATES  # a filtered index search, not the exact path
    hits = vecs.search(np.ones(8), k=n, filter={"odd": True})
    assert sorted(h.id for h in hits) == odd
    assert all(h.score == 0.0 for h in hits)
    assert sorted(h.id for h in vecs.search(np.ones(8), k=n)) == [i for i in range(n) if i % 4]
    assert_store_sound(ns)
