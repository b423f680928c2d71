"""Replaying agents that use documents, indexes, vectors and transactions, and re-folding their runs."""

from __future__ import annotations

import pytest

import swarmlog
from projections.documents import D_REV
from projections.ordering import sort_key
from tests.agents import Neighbour, memory_agent
from tests.helpers import assert_store_sound

NOT_WRITES = ("run.begin", "run.end", "trace.tool_call")


def _record(ns, **kw):
    neighbour = Neighbour(ns)
    run = ns.begin_run(run_id="memory-1", agent="librarian")
    out = memory_agent(neighbour, **kw)(run)
    return run, neighbour, out


def _replayed(ns, run_id, agent):
    out = []
    report = ns.replay(run_id, lambda r: out.append(agent(r)))
    return report, out[0]


def test_an_agent_using_documents_vectors_and_transactions_replays_byte_for_byte(ns):
    run, neighbour, recorded = _record(ns)
    history = ns.read_events(run_id=run.run_id)
    head, digest = ns.head(), ns.digest()
    assert neighbour.calls == 1 and recorded["bumped"].matched == 3  # it matched the neighbour's fact

    report, replayed = _replayed(ns, run.run_id, memory_agent(neighbour))

    assert report.ok and neighbour.calls == 1  # the neighbour was not called again
    assert replayed == recorded  # generated _ids, UpdateResults, revs, versions: as recorded
    assert report.events_checked == len(history)
    writes = [e for e in history if e.type not in NOT_WRITES and not e.type.startswith("call.")]
    assert {e.type.split(".")[0] for e in writes} >= {"doc", "idx", "vec", "kv", "txn_refused"}
    assert report.writes_checked == len(writes)
    assert report.state_digest == ns.at(history[-1].seq).digest()
    assert (ns.head(), ns.digest()) == (head, digest)  # nothing was written
    assert_store_sound(ns)


@pytest.mark.parametrize(
    ("change", "event_type", "field"),
    [
        ({"bump": 11}, "doc.update", "payload"),
        ({"embedding": (1.0, 0.5, 0.0, 0.0)}, "vec.upsert", "payload"),
    ],
)
def test_changed_code_diverges_at_the_first_document_or_vector_event_it_changes(
    ns, change, event_type, field
):
    run, neighbour, _ = _record(ns)
    first = next(e for e in ns.read_events(run_id=run.run_id) if e.type == event_type)

    with pytest.raises(swarmlog.NonDeterminismError, match=f"differs in {field}") as caught:
        ns.replay(run.run_id, memory_agent(neighbour, **change))

    err = caught.value
    assert (err.seq, err.event_type) == (first.seq, event_type)
    assert err.expected["payload"] == first.payload
    assert err.got["payload"] != first.payload
    assert err.got["payload"]["id"] == first.payload["id"]
    assert_store_sound(ns)


def test_a_filter_that_matches_fewer_documents_diverges_where_the_record_holds_the_missing_event(ns):
    run = ns.begin_run(agent="a")

    def agent(limit):
        def go(r):
            r.collection("notes").insert_many([{"n": 1}, {"n": 2}, {"n": 3}])
            r.collection("notes").update_many({"n": {"$lte": limit}}, {"$set": {"seen": True}})
            r.put("done", True)

        return go

    agent(3)(run)
    updates = [e for e in ns.read_events(run_id=run.run_id) if e.type == "doc.update"]
    assert len(updates) == 3
    assert ns.replay(run.run_id, agent(3)).ok

    with pytest.raises(
        swarmlog.NonDeterminismError, match=r"writes a kv\.put event where the record holds a doc\.update"
    ) as caught:
        ns.replay(run.run_id, agent(2))
    assert caught.value.seq == updates[2].seq
    assert_store_sound(ns)


def test_a_transaction_retried_in_the_recording_replays_in_one_attempt_with_what_its_commit_saw(ns):
    setup = ns.begin_run(agent="setup")
    setup.put("counter", 0)
    setup.collection("stats").insert_one({"_id": "hits", "n": 0})
    intruder = ns.begin_run(agent="intruder")

    def agent(interfere):
        def go(run):
            seen = []
            for attempt in run.transaction(retries=5):
                with attempt as tx:
                    n = tx.get("counter")
                    doc = tx.get(("stats", "hits"))
                    if interfere and attempt.number < 2:  # another agent commits meanwhile
                        intruder.put("counter", 100 + attempt.number)
                    seen.append(n)
                    tx.put("counter", n + 1)
                    tx.put(("stats", "hits"), {"n": doc["n"] + 1})
            return seen, attempt.tx.results

        return go

    run = ns.begin_run(agent="counter")
    recorded_seen, recorded_results = agent(True)(run)
    assert recorded_seen == [0, 100, 101]  # two attempts conflicted

    report, (seen, results) = _replayed(ns, run.run_id, agent(False))

    assert report.ok and report.writes_checked == 2
    assert seen == [101]  # the state the successful commit was decided against
    assert results == recorded_results
    assert_store_sound(ns)


def test_writes_the_engine_refused_when_recording_are_refused_again(ns):
    def agent(run):
        notes = run.collection("notes")
        notes.insert_one({"_id": "a", "n": "text"})
        first = notes.insert_one({"_id": "b"}, write_id="insert-b")
        assert notes.insert_one({"_id": "b"}, write_id="insert-b") == first  # a retry: same answer
        outcomes = []
        for attempt in (
            lambda: notes.insert_one({"_id": "a"}),  # the _id exists
            lambda: notes.update_one({"_id": "a"}, {"$inc": {"n": 1}}),  # $inc on a string
            lambda: run.txn(preconditions=[{"collection": "notes", "id": "zzz", "exists": True}]),
            lambda: run.vectors("nowhere").upsert("x", [1.0]),  # no such collection
        ):
            try:
                attempt()
            except swarmlog.SwarmlogError as exc:
                outcomes.append(type(exc).__name__)
        run.append_event("outcomes", outcomes)
        return outcomes

    run = ns.begin_run(agent="a")
    recorded = agent(run)
    assert recorded == ["ConflictError", "ValidationError", "ConflictError", "NotFoundError"]

    report, replayed = _replayed(ns, run.run_id, agent)

    assert report.ok and replayed == recorded
    assert_store_sound(ns)


def test_a_fork_continued_with_other_document_writes_replays_and_goes_on_live(ns):
    run, neighbour, recorded = _record(ns)
    history = ns.read_events(run_id=run.run_id)
    cut = next(e.seq for e in history if e.type == "vec.create") - 1  # before the vectors
    fork = ns.fork(run.run_id, at=cut, new_run_id="what-if")
    changed = memory_agent(neighbour, embedding=(0.0, 0.0, 0.0, 2.0))

    report = ns.replay("what-if", changed, resume=True)

    assert report.ok and report.resumed_at == fork.info().began_seq
    assert neighbour.calls == 1  # its call was before the fork point: answered from the record
    assert fork.vectors("memories").get("m-1").embedding.tolist() == [0.0, 0.0, 0.0, 2.0]
    assert ns.vectors("memories").get("m-1").embedding.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert ns.replay("what-if").ok
    report, replayed = _replayed(ns, "what-if", changed)
    assert report.ok
    assert replayed["bumped"] == recorded["bumped"]  # the parent's part
    assert replayed["revs"] != recorded["revs"]  # the fork's own, later events
    assert_store_sound(ns)


def test_refolding_a_run_with_documents_and_vectors_checks_their_transitions(ns):
    run, _, _ = _record(ns)
    history = ns.read_events(run_id=run.run_id)

    report = ns.replay(run.run_id)

    assert report.ok and report.mode == "fold", report
    assert report.events_checked == len(history)
    assert report.state_digest == ns.at(history[-1].seq).digest()
    assert_store_sound(ns)


def _lose_document(state):
    coll = state.parts["docs"].collection("notes")
    coll.store(sort_key("a"), coll.get("a"), None)


def _bump_rev(state):
    state.parts["docs"].collection("notes").get("a")[D_REV] = 999


def _lose_index(state):
    del state.parts["docs"].collection("notes").indexes["kind"]


def _phantom_tombstone(state):
    state.parts["vectors"].collection("v").dead[999] = [b"\0" * 8, 3]


@pytest.mark.parametrize(
    ("bug", "write", "event_type", "reason"),
    [
        (
            _lose_document,
            lambda r: r.collection("notes").insert_one({"_id": "a"}),
            "doc.insert",
            "already holds",
        ),
        (
            _bump_rev,
            lambda r: r.collection("notes").update_one("a", {"$set": {"n": 2}}),
            "doc.update",
            "replaced _rev 999",
        ),
        (_lose_index, lambda r: r.collection("notes").create_index("kind"), "idx.create", "already has"),
        (_phantom_tombstone, lambda r: r.vectors("v").compact(), "vec.compact", "nothing to compact"),
    ],
)
def test_refolding_finds_a_document_or_vector_transition_the_live_state_got_wrong(
    mem, ns, bug, write, event_type, reason
):
    run = ns.begin_run(agent="a")
    run.collection("notes").insert_one({"_id": "a", "n": 1})
    run.collection("notes").create_index("kind")
    run.vectors("v", dim=2).upsert("x", [1.0, 0.0])
    bug(mem._backend.engine(ns.name).state)  # a projection bug in the live state
    write(run)  # decided against the wrong state
    bad = ns.head()
    assert ns.event(bad).type == event_type
    run.put("after", 1)

    report = ns.replay(run.run_id)

    assert not report.ok
    assert (report.first_mismatch, report.mismatch_type) == (bad, event_type)
    assert reason in report.reason
    # The write healed the live state, so only the recorded transition still shows the bug.
    assert_store_sound(ns)


def test_replaying_a_document_run_after_a_restart_from_snapshots_gives_the_same_reports(store_path):
    settings = swarmlog.Settings(snapshot_every_events=5)  # snapshots fall inside the run
    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    run, neighbour, recorded = _record(ns)
    before = (ns.replay(run.run_id), _replayed(ns, run.run_id, memory_agent(neighbour)))
    mem.close()

    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    after = (ns.replay(run.run_id), _replayed(ns, run.run_id, memory_agent(neighbour)))

    assert before[0].ok and after[0].ok and after[0].snapshots_compared >= 1
    assert after[0].state_digest == before[0].state_digest
    assert after[1] == before[1] and after[1][1] == recorded
    assert neighbour.calls == 1
    assert_store_sound(ns)
    mem.close()
