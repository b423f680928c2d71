"""The linearizability checker itself, on histories whose verdict is known by hand."""

from __future__ import annotations

import pytest

from tests.linearizability import CAS, DELETE, READ, WRITE, Op, SearchTooLarge, check


def op(process, kind, invoke, ret, arg=None, result=None, key="x") -> Op:
    return Op(process=process, key=key, kind=kind, invoke=invoke, ret=ret, arg=arg, result=result)


def test_a_sequential_history_that_follows_the_model_is_linearizable():
    history = [
        op("a", READ, 0, 1, result=(None, 0)),
        op("a", CAS, 2, 3, arg=(0, "v1"), result=(True, "v1", 1)),
        op("b", CAS, 4, 5, arg=(0, "v2"), result=(False, "v1", 1)),
        op("b", WRITE, 6, 7, arg="v2", result=2),
        op("a", DELETE, 8, 9, arg=2, result=(True, None, 0)),
        op("a", READ, 10, 11, result=(None, 0)),
        op("b", CAS, 12, 13, arg=(0, "v3"), result=(True, "v3", 3)),  # versions do not repeat
    ]
    assert check(history).ok


@pytest.mark.parametrize("seen", [(None, 0), ("new", 1)])
def test_a_read_overlapping_a_write_may_see_the_old_or_the_new_value(seen):
    history = [
        op("w", WRITE, 0, 10, arg="new", result=1),
        op("r", READ, 2, 5, result=seen),
        op("r", READ, 11, 12, result=("new", 1)),
    ]
    assert check(history).ok


def test_a_stale_read_after_a_completed_write_is_caught():
    history = [
        op("w", WRITE, 0, 1, arg="new", result=1),
        op("r", READ, 2, 3, result=(None, 0)),
    ]
    verdict = check(history)
    assert not verdict.ok
    assert verdict.key == "x"
    assert "read" in verdict.reason


def test_two_successful_cas_from_the_same_version_are_caught():
    overlapping = [
        op("a", CAS, 0, 10, arg=(0, "a"), result=(True, "a", 1)),
        op("b", CAS, 1, 9, arg=(0, "b"), result=(True, "b", 1)),
    ]
    sequential = [
        op("a", CAS, 0, 1, arg=(0, "a"), result=(True, "a", 1)),
        op("b", CAS, 2, 3, arg=(0, "b"), result=(True, "b", 2)),
    ]
    assert not check(overlapping).ok
    assert not check(sequential).ok


def test_a_lost_write_is_caught():
    history = [
        op("a", CAS, 0, 1, arg=(0, "a"), result=(True, "a", 1)),
        op("b", WRITE, 2, 3, arg="b", result=2),
        op("c", READ, 4, 5, result=("a", 1)),
    ]
    assert not check(history).ok


def test_a_value_that_was_never_written_is_caught():
    history = [
        op("a", WRITE, 0, 1, arg="a", result=1),
        op("b", READ, 2, 3, result=("ghost", 1)),
    ]
    assert not check(history).ok


def test_a_read_cannot_see_a_write_invoked_after_it_returned():
    history = [
        op("r", READ, 0, 1, result=("later", 1)),
        op("w", WRITE, 2, 3, arg="later", result=1),
    ]
    assert not check(history).ok


def test_a_failed_cas_must_report_the_current_record():
    history = [
        op("a", WRITE, 0, 1, arg="a", result=1),
        op("b", CAS, 2, 3, arg=(0, "b"), result=(False, "a", 2)),
    ]
    assert not check(history).ok


def test_an_unanswered_write_may_have_happened():
    history = [
        op("a", WRITE, 0, None, arg="maybe"),
        op("b", READ, 5, 6, result=("maybe", 1)),
        op("b", CAS, 7, 8, arg=(1, "next"), result=(True, "next", 2)),
    ]
    assert check(history).ok


def test_an_unanswered_write_may_also_never_have_happened():
    history = [
        op("a", WRITE, 0, None, arg="maybe"),
        op("b", WRITE, 5, 6, arg="sure", result=1),
        op("b", READ, 7, 8, result=("sure", 1)),
    ]
    assert check(history).ok


def test_an_unanswered_cas_explains_a_version_jump_only_once():
    explained = [
        op("a", CAS, 0, None, arg=(0, "maybe")),
        op("b", WRITE, 5, 6, arg="sure", result=2),
    ]
    twice = [
        op("a", CAS, 0, None, arg=(0, "maybe")),
        op("b", WRITE, 5, 6, arg="sure", result=3),
    ]
    assert check(explained).ok
    assert not check(twice).ok


def test_an_unanswered_write_cannot_take_effect_before_it_was_invoked():
    history = [
        op("b", READ, 0, 1, result=("maybe", 1)),
        op("a", WRITE, 2, None, arg="maybe"),
    ]
    assert not check(history).ok


def test_keys_are_checked_apart_and_the_failing_one_is_named():
    history = [
        op("a", WRITE, 0, 1, arg="a", result=1, key="good"),
        op("b", READ, 2, 3, result=("a", 1), key="good"),
        op("a", WRITE, 0, 1, arg="a", result=1, key="bad"),
        op("b", READ, 2, 3, result=(None, 0), key="bad"),
    ]
    verdict = check(history)
    assert (verdict.ok, verdict.key) == (False, "bad")


def test_structured_values_compare_by_content():
    history = [
        op("a", CAS, 0, 1, arg=(0, {"n": [1, 2]}), result=(True, {"n": [1, 2]}, 1)),
        op("b", READ, 2, 3, result=({"n": [1, 2]}, 1)),
    ]
    assert check(history).ok


def test_many_concurrent_operations_are_checked_without_blowing_up():
    processes = 8
    rounds = 40
    history = []
    # Each round: every process invokes at once; one write wins, the rest read the new value.
    for r in range(rounds):
        t = r * 10
        version = r + 1
        history.append(op(0, WRITE, t, t + 5, arg=f"v{r}", result=version))
        for p in range(1, processes):
            history.append(op(p, READ, t + 6, t + 9, result=(f"v{r}", version)))
    verdict = check(history)
    assert verdict.ok
    assert verdict.explored < 50 * len(history)


def test_the_search_stops_at_its_budget_instead_of_hanging():
    # Twenty writes that may or may not have happened, then a read no subset of them explains.
    history = [op(p, WRITE, 0, None, arg=p) for p in range(20)] + [op("r", READ, 1, 2, result=("x", 99))]
    with pytest.raises(SearchTooLarge):
        check(history, max_states=1000)
