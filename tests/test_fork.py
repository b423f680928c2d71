"""Forks are branches: they start from the namespace at the fork point and keep to themselves."""

from __future__ import annotations

import pytest

import swarmlog
from projections import branches
from tests.helpers import assert_store_sound


def _parent(ns):
    run = ns.begin_run(run_id="parent", agent="planner")
    run.put("plan", "draft")
    run.put("shared/count", 1)
    fork_point = run.append_event("checkpoint", {"step": 1}).seq
    run.put("plan", "final")
    run.put("shared/count", 2)
    return run, fork_point


def test_a_fork_reads_the_namespace_as_of_the_fork_point_plus_its_own_writes(ns):
    _, at = _parent(ns)
    other = ns.begin_run(run_id="other", agent="critic")
    other.put("critic/note", "late")

    fork = ns.fork("parent", at=at, new_run_id="fork")

    assert isinstance(fork, swarmlog.BranchRun)
    assert fork.agent == "planner"
    assert fork.get("plan") == "draft"
    assert fork.get("shared/count") == 1
    assert fork.get("critic/note") is None
    fork.put("plan", "alternative")
    assert fork.get("plan") == "alternative"
    assert fork.list() == ["plan", "shared/count"]
    info = ns.run_info("fork")
    assert (info.parent, info.fork_seq, info.status) == ("parent", at, "running")
    assert_store_sound(ns)


def test_fork_writes_are_invisible_to_main_line_reads_and_main_line_writes_to_the_fork(ns):
    parent, at = _parent(ns)
    fork = ns.fork("parent", at=at, new_run_id="fork")
    fork.put("plan", "alternative")
    fork.put("fork/only", True)
    assert fork.delete("shared/count") is True

    assert ns.get("plan") == "final"
    assert ns.get("fork/only") is None
    assert ns.get("shared/count") == 2
    assert ns.entry("plan").run_id == "parent"
    assert "fork/only" not in ns.list()

    parent.put("plan", "revised")
    parent.put("parent/late", 1)
    assert fork.get("plan") == "alternative"
    assert fork.get("parent/late") is None
    assert fork.get("shared/count") is None
    assert_store_sound(ns)


def test_a_fork_decides_expected_versions_against_its_branch(ns):
    _, at = _parent(ns)
    draft_version = ns.at(at).entry("plan").version
    fork = ns.fork("parent", at=at, new_run_id="fork")
    with pytest.raises(swarmlog.ConflictError):
        fork.put("plan", "x", expected_version=ns.entry("plan").version)
    version = fork.put("plan", "x", expected_version=draft_version)
    assert fork.entry("plan").version == version
    assert fork.put("fresh", 1, expected_version=0) > version
    assert fork.delete("never-there") is False
    assert_store_sound(ns)


def test_read_events_of_a_fork_is_the_parents_history_up_to_the_fork_point_then_its_own(ns):
    parent, at = _parent(ns)
    fork = ns.fork("parent", at=at, new_run_id="fork")
    mine = fork.append_event("observation", {"n": 1})
    traced = fork.trace("decision", {"choice": "b"}, event=mine.seq)
    parent.trace("decision", {"choice": "a"})

    history = ns.read_events(run_id="fork")
    parent_part = [e.seq for e in ns.read_events(run_id="parent", upto=at)]
    own = [e.seq for e in ns.read_events() if e.run_id == "fork"]
    assert [e.seq for e in history] == parent_part + own
    assert [e.seq for e in fork.read_events()] == [e.seq for e in history]
    assert [t.seq for t in ns.traces("fork")] == [traced.seq]
    assert ns.read_events(run_id="fork", after=at, types="observation") == [mine]
    assert_store_sound(ns)


def test_a_fork_of_a_fork_nests_its_history_and_state(ns):
    _, at = _parent(ns)
    first = ns.fork("parent", at=at, new_run_id="first")
    first.put("plan", "first-a")
    cut = first.put("first/key", 1)
    first.put("plan", "first-b")
    second = ns.fork("first", at=cut, new_run_id="second")

    assert second.get("plan") == "first-a"
    assert second.get("first/key") == 1
    second.put("plan", "second")
    assert (first.get("plan"), second.get("plan"), ns.get("plan")) == ("first-b", "second", "final")
    seqs = [e.seq for e in ns.read_events(run_id="second")]
    expected = (
        [e.seq for e in ns.read_events(run_id="parent", upto=at)]
        + [e.seq for e in ns.read_events() if e.run_id == "first" and e.seq <= cut]
        + [e.seq for e in ns.read_events() if e.run_id == "second"]
    )
    assert seqs == expected
    assert_store_sound(ns)


def test_forks_survive_a_reopen_and_more_forks_than_the_cache_holds(store_path):
    settings = swarmlog.Settings(snapshot_every_events=7)
    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    _, at = _parent(ns)
    forks = branches.LIVE_KEPT + 3
    for i in range(forks):
        fork = ns.fork("parent", at=at, new_run_id=f"fork-{i}")
        fork.put("plan", f"alt-{i}")
    for i in range(forks):  # the first ones were evicted and rebuild from the journal
        ns.run(f"fork-{i}").put("n", i)
    expected = {f"fork-{i}": (f"alt-{i}", i) for i in range(forks)}
    assert {rid: (ns.run(rid).get("plan"), ns.run(rid).get("n")) for rid in expected} == expected
    digest = ns.digest()
    assert_store_sound(ns)
    mem.close()

    mem = swarmlog.open_local(store_path, settings=settings)
    ns = mem.namespace("acme/support")
    assert ns.digest() == digest
    fork = ns.run("fork-0")
    assert isinstance(fork, swarmlog.BranchRun)
    assert (fork.get("plan"), fork.get("n"), ns.get("plan")) == ("alt-0", 0, "final")
    assert_store_sound(ns)
    mem.close()


def test_a_view_of_a_fork_at_a_past_seq_shows_what_the_fork_saw_then(ns):
    parent, at = _parent(ns)
    fork = ns.fork("parent", at=at, new_run_id="fork")
    first = fork.put("plan", "alt-1")
    fork.put("plan", "alt-2")
    parent.put("plan", "main-3")

    assert ns.at(first, run="fork").get("plan") == "alt-1"
    assert ns.at(at, run="fork").get("plan") == "draft"
    assert ns.at(first).get("plan") == "final"
    assert ns.at(ns.head(), run="fork").get("plan") == "alt-2"
    assert [e.seq for e in ns.at(first, run="fork").read_events("fork")][-1] == first
    assert_store_sound(ns)


def test_bad_forks_are_refused_before_anything_is_written(ns):
    _, at = _parent(ns)
    head = ns.head()
    with pytest.raises(swarmlog.NotFoundError):
        ns.fork("nobody", at=at)
    with pytest.raises(swarmlog.ValidationError, match="fork point"):
        ns.fork("parent", at=head + 5)
    with pytest.raises(swarmlog.ValidationError, match="at must be"):
        ns.fork("parent", at=0)
    with pytest.raises(swarmlog.ValidationError, match="already exists"):
        ns.fork("parent", at=at, new_run_id="parent")
    late = ns.begin_run(run_id="late", agent="x")
    late.put("late", 1)
    with pytest.raises(swarmlog.ValidationError, match="already exists"):
        ns.fork("parent", at=at, new_run_id="late")
    assert ns.head() == head + 2
    assert_store_sound(ns)


def test_a_fork_with_a_write_id_is_idempotent(ns):
    _, at = _parent(ns)
    first = ns.fork("parent", at=at, new_run_id="fork", write_id="fork-once")
    head = ns.head()
    again = ns.fork("parent", at=at, new_run_id="fork", write_id="fork-once")
    assert (again.run_id, ns.head()) == (first.run_id, head)
    assert_store_sound(ns)


def test_a_batch_on_a_fork_is_atomic_and_stays_on_the_branch(ns):
    _, at = _parent(ns)
    fork = ns.fork("parent", at=at, new_run_id="fork")
    with fork.batch() as b:
        b.put("plan", "batched")
        ev = b.append_event("observation", {"x": 1})
        b.trace("decision", {"choice": "batched"}, event=ev)
    assert fork.get("plan") == "batched"
    assert ns.get("plan") == "final"
    with pytest.raises(swarmlog.ConflictError), fork.batch() as b:
        b.put("plan", "lost")
        b.put("plan", "lost-too", expected_version=1)
    assert fork.get("plan") == "batched"
    assert_store_sound(ns)
