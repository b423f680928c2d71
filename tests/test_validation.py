"""Bad input is refused with an error that names the problem, and nothing is written."""

from __future__ import annotations

import contextlib

import pytest

import swarmlog
from journal.settings import Settings
from tests.helpers import assert_store_sound, unchanged


class Opaque:
    """An object msgpack has no encoding for."""


@pytest.fixture
def run(store):
    ns = store.ns
    r = ns.begin_run("r", agent="planner")
    r.put("existing", 1)
    return r


@contextlib.contextmanager
def refused(ns, match: str, error: type = swarmlog.ValidationError, case: object = None):
    """``pytest.raises`` that also checks that nothing was written meanwhile; ``case`` names
    the bad input in a failure (the tests loop over many, on one store)."""
    try:
        with unchanged(ns), pytest.raises(error, match=match) as info:
            yield info
    except (AssertionError, pytest.fail.Exception) as exc:
        if case is None:
            raise
        raise AssertionError(f"for {case!r}: {exc}") from None


# -- values --------------------------------------------------------------------------------------

UNENCODABLE = [{1, 2}, Opaque(), 2**64, -(2**63) - 1, {"nested": [1, {"deep": Opaque()}]}, frozenset(), 1j]


def test_a_value_msgpack_cannot_encode_is_refused_everywhere_a_value_goes(store, run):
    ns = store.ns
    for value in UNENCODABLE:
        writes = [
            lambda value=value: run.put("k", value),
            lambda value=value: run.append_event("note", value),
            lambda value=value: run.trace("decision", {"choice": value}),
            lambda value=value: run.end(summary=value),
            lambda value=value: run.put("k", 1, source={"msg": value}),
            lambda value=value: ns.begin_run(agent="a", metadata={"m": value}),
        ]
        for write in writes:
            with refused(ns, "cannot be stored", case=value):
                write()
        with refused(ns, "cannot be stored", case=value), run.batch() as b:
            b.put("fine", 1)
            b.put("k", value)
    assert ns.get("k") is None and ns.get("fine") is None
    assert_store_sound(ns)


def test_the_biggest_and_smallest_64_bit_ints_are_stored(store, run):
    ns = store.ns
    run.put("max", 2**64 - 1)
    run.put("min", -(2**63))
    assert (ns.get("max"), ns.get("min")) == (2**64 - 1, -(2**63))
    assert_store_sound(ns)


# -- keys ----------------------------------------------------------------------------------------

BAD_KEYS = [
    ("", "non-empty string"),
    (None, "non-empty string"),
    (7, "non-empty string"),
    (b"bytes", "non-empty string"),
    (("a",), "non-empty string"),
    ("k" * 1025, "limit is 1024"),
    ("é" * 513, "1026 bytes; the limit is 1024"),
]


def test_a_key_that_is_not_a_short_non_empty_string_is_refused(store, run):
    ns = store.ns
    for key, match in BAD_KEYS:
        for call in (
            lambda key=key: run.put(key, 1),
            lambda key=key: run.delete(key),
            lambda key=key: ns.get(key),
            lambda key=key: ns.entry(key),
            lambda key=key: ns.why(key),
        ):
            with refused(ns, match, case=key):
                call()
        with refused(ns, match, case=key), run.batch() as b:
            b.put("ok", 1)
            b.put(key, 1)
    assert_store_sound(ns)


def test_a_key_of_exactly_the_limit_is_accepted(store, run):
    ns = store.ns
    run.put("k" * 1024, 1)
    run.put("é" * 512, 2)
    assert ns.get("k" * 1024) == 1 and ns.get("é" * 512) == 2
    assert_store_sound(ns)


def test_a_key_beyond_the_stores_max_key_bytes_is_refused(store):
    ns = store.reopen(Settings(max_key_bytes=16))
    run = ns.begin_run("r", agent="planner")
    run.put("k" * 16, 1)
    for write in (lambda: run.put("k" * 17, 1), lambda: run.delete("é" * 9)):
        with refused(ns, "is 1[78] bytes; the limit is 16"):
            write()
    with refused(ns, "the limit is 16"), run.batch() as b:
        b.put("ok", 1)
        b.put("k" * 17, 1)
    assert ns.list() == ["k" * 16]
    assert_store_sound(ns)


# -- runs ----------------------------------------------------------------------------------------


def test_a_write_to_an_unknown_run_is_refused(store, run):
    ns = store.ns
    ghost = swarmlog.Run(ns, "ghost", "planner")
    for write in (
        lambda: ghost.put("k", 1),
        lambda: ghost.delete("existing"),
        lambda: ghost.append_event("note", 1),
        lambda: ghost.trace("assumption", {"text": "t"}),
        lambda: ghost.end(),
    ):
        with refused(ns, "run 'ghost' does not exist.*begin_run"):
            write()
    with pytest.raises(swarmlog.NotFoundError, match="ghost"):
        ns.run("ghost")
    with pytest.raises(swarmlog.NotFoundError, match="ghost"):
        ns.run_info("ghost")
    assert_store_sound(ns)


def test_a_write_to_an_ended_run_is_refused(store, run):
    ns = store.ns
    run.end("cancelled")
    for write in (
        lambda: run.put("k", 1),
        lambda: run.delete("existing"),
        lambda: run.append_event("note", 1),
        lambda: run.trace("assumption", {"text": "t"}),
        lambda: run.end("ok"),
    ):
        with refused(ns, "run 'r' has ended with status 'cancelled'; begin a new run"):
            write()
    assert ns.get("existing") == 1
    assert_store_sound(ns)


BAD_IDENTITIES = [
    ({"run_id": ""}, "run_id must be a non-empty string"),
    ({"run_id": 5}, "run_id must be a non-empty string"),
    ({"run_id": "a\0b"}, "run_id must not contain NUL"),
    ({"run_id": "r" * 201}, "run_id is 201 characters long; the limit is 200"),
    ({"agent": ""}, "agent must be a non-empty string"),
    ({"agent": None}, "agent must be a non-empty string"),
    ({"agent": "a" * 129}, "agent is 129 characters long"),
    ({"tool": ""}, "tool must be a non-empty string"),
    ({"metadata": [1, 2]}, "run metadata must be a dict"),
    ({"write_id": ""}, "write_id must be a non-empty string"),
]


def test_begin_run_refuses_bad_identity(store, run):
    ns = store.ns
    for kwargs, match in BAD_IDENTITIES:
        args = {"run_id": None, "agent": "planner", **kwargs}
        with refused(ns, match, case=kwargs):
            ns.begin_run(args.pop("run_id"), **args)
    assert_store_sound(ns)


def test_end_refuses_a_status_that_is_not_final(store, run):
    ns = store.ns
    with refused(ns, "'running' is not a final status"):
        run.end("running")
    with refused(ns, "status must be a non-empty string"):
        run.end("")
    with refused(ns, "status is 65 characters long"):
        run.end("s" * 65)
    assert ns.run_info("r").running
    assert_store_sound(ns)


def test_a_run_handle_needs_a_real_agent(store, run):
    with pytest.raises(swarmlog.ValidationError, match="agent must be a non-empty string"):
        swarmlog.Run(store.ns, "r", "")
    with pytest.raises(swarmlog.ValidationError, match="run_id must be a non-empty string"):
        store.ns.run("")
    assert_store_sound(store.ns)


# -- sizes ---------------------------------------------------------------------------------------


def test_a_record_beyond_max_record_bytes_is_refused(store):
    ns = store.reopen(Settings(max_record_bytes=2000))
    run = ns.begin_run("r", agent="planner")
    big = "x" * 3000
    for write in (
        lambda: run.put("k", big),
        lambda: run.append_event("note", {"blob": big}),
        lambda: run.trace("model_output", {"text": big}),
        lambda: run.put("k", 1, source={"blob": big}),
    ):
        with refused(ns, r"limit is 2000 \(Settings.max_record_bytes\)"):
            write()
    with refused(ns, "limit is 2000"), run.batch() as b:
        b.put("small", 1)
        b.put("k", big)
    assert ns.get("small") is None
    assert_store_sound(ns)


def test_a_value_under_the_limit_whose_record_is_over_it_is_refused(store):
    ns = store.reopen(Settings(max_record_bytes=2000))
    run = ns.begin_run("r", agent="planner")
    # The value alone fits, but with the key, identity and chain the record does not.
    with refused(ns, r"kv.put event is \d+ bytes; the limit is 2000"):
        run.put("k" * 900, "v" * 1000)
    run.put("k", "v" * 1000)
    assert len(ns.get("k")) == 1000
    assert_store_sound(ns)


def test_a_batch_with_more_operations_than_allowed_is_refused(store):
    ns = store.reopen(Settings(max_ops_per_write=3))
    run = ns.begin_run("r", agent="planner")
    with refused(ns, "4 operations in one write; the limit is 3"), run.batch() as b:
        for i in range(4):
            b.put(f"k{i}", i)
    assert_store_sound(ns)


# -- event types and traces ----------------------------------------------------------------------


def test_an_event_type_with_a_reserved_prefix_is_refused(store, run):
    ns = store.ns
    for type_ in ["run.begin", "kv.put", "trace.decision", "sys.x", "swarmlog.y", "doc.z"]:
        with refused(ns, f"event type '{type_}' uses a reserved prefix"):
            run.append_event(type_, {})
    assert_store_sound(ns)


def test_an_event_type_that_is_not_a_short_name_is_refused(store, run):
    ns = store.ns
    for type_, match in [
        ("", "event type must be a non-empty string"),
        (3, "event type must be"),
        ("t" * 129, "limit is 128"),
    ]:
        with refused(ns, match, case=type_):
            run.append_event(type_, {})
    assert_store_sound(ns)


BAD_TRACES = [
    ("thought", {"text": "x"}, "trace kind 'thought' is unknown; use one of tool_call"),
    ("decision", {}, "a 'decision' trace needs the field\\(s\\) choice"),
    ("tool_call", {"args": 1}, "needs the field\\(s\\) tool"),
    ("citation", {"quote": "q"}, "needs the field\\(s\\) source"),
    ("confidence", {}, "needs the field\\(s\\) value"),
    ("assumption", {"txt": "typo"}, "needs the field\\(s\\) text"),
    ("decision", ["choice"], "trace data must be a dict, got list"),
    ("decision", {"choice": "x", "confidence": 1.5}, "'confidence' must be a number in \\[0, 1\\], got 1.5"),
    ("decision", {"choice": "x", "confidence": -0.1}, "must be a number in \\[0, 1\\]"),
    ("decision", {"choice": "x", "confidence": "high"}, "must be a number in \\[0, 1\\]"),
    ("decision", {"choice": "x", "confidence": True}, "must be a number in \\[0, 1\\]"),
    ("decision", {"choice": "x", "confidence": float("nan")}, "must be a number in \\[0, 1\\]"),
    ("confidence", {"value": 2}, "'value' must be a number in \\[0, 1\\]"),
]


def test_a_bad_trace_is_refused(store, run):
    ns = store.ns
    for kind, data, match in BAD_TRACES:
        with refused(ns, match, case=(kind, data)):
            run.trace(kind, data)
        with refused(ns, match, case=(kind, data)), run.batch() as b:
            b.put("first", 1)
            b.trace(kind, data)
    assert_store_sound(ns)


def test_a_trace_linked_to_something_that_is_not_a_seq_is_refused(store, run):
    ns = store.ns
    for event in [0, -1, "3", 1.0, True]:
        with refused(ns, "event must be the seq", case=event):
            run.trace("decision", {"choice": "x"}, event=event)
    assert_store_sound(ns)


def test_a_trace_can_link_only_to_a_pending_event_of_its_own_batch(store, run):
    ns = store.ns
    with run.batch() as first:
        pending = first.append_event("note", 1)
    with refused(ns, "same batch"), run.batch() as second:
        second.trace("decision", {"choice": "x"}, event=pending)
    with refused(ns, "wrote no event"), run.batch() as third:
        missing = third.delete("absent")
        third.trace("decision", {"choice": "x"}, event=missing)
    assert_store_sound(ns)


# -- TTL and versions ----------------------------------------------------------------------------


def test_a_bad_ttl_is_refused(store, run):
    ns = store.ns
    for ttl in [0, -1, float("inf"), float("nan"), "10", True, [1]]:
        with refused(ns, "ttl must be a positive number of seconds", case=ttl):
            run.put("k", 1, ttl=ttl)
    for ttl in [1e300, 2**70, 10**11]:
        with refused(ns, "ttl .*is too long", case=ttl):
            run.put("k", 1, ttl=ttl)
    assert_store_sound(ns)


def test_a_bad_expected_version_is_refused(store, run):
    ns = store.ns
    for expected in [-1, "1", 1.0, True, [0]]:
        for write in (
            lambda expected=expected: run.put("k", 1, expected_version=expected),
            lambda expected=expected: run.delete("existing", expected_version=expected),
        ):
            with refused(ns, "expected_version must be None or an int >= 0", case=expected):
                write()
    assert_store_sound(ns)


# -- provenance and identity on writes -----------------------------------------------------------


def test_a_source_that_is_not_a_dict_is_refused(store, run):
    ns = store.ns
    for source in ["slack", ["slack"], 3]:
        with refused(ns, "source must be a dict", case=source):
            run.append_event("note", 1, source=source)
    assert_store_sound(ns)


def test_a_bad_write_id_is_refused(store, run):
    ns = store.ns
    for write_id, match in [("", "non-empty"), (5, "non-empty"), ("w" * 257, "limit is 256")]:
        with refused(ns, f"write_id.*{match}", case=write_id):
            run.put("k", 1, write_id=write_id)
    assert_store_sound(ns)


def test_a_bad_tool_is_refused(store, run):
    ns = store.ns
    for tool in ["", 5, "t" * 201]:
        with refused(ns, "tool", case=tool):
            run.put("k", 1, tool=tool)
        with refused(ns, "tool", case=tool):
            run.with_tool(tool).put("k", 1)
    assert_store_sound(ns)


def test_a_bad_fence_is_refused(store, run):
    ns = store.ns
    for fence in ["lease", ("lease", 0), ("", 1), ("lease", "1"), ("lease", True), ("lease", 2**63)]:
        with refused(ns, "fence must be a Lease or a", case=fence):
            run.put("k", 1, fence=fence)
    assert_store_sound(ns)


LONE = "\ud800"  # a lone surrogate: a str that has no UTF-8 encoding


def test_names_and_keys_that_are_not_valid_unicode_are_refused(store, run):
    ns = store.ns
    for call, what in (
        (lambda: run.put("k" + LONE, 1), "key"),
        (lambda: run.delete("k" + LONE), "key"),
        (lambda: ns.get("k" + LONE), "key"),
        (lambda: ns.begin_run("r" + LONE, agent="a"), "run_id"),
        (lambda: ns.begin_run(agent="a" + LONE), "agent"),
        (lambda: run.append_event("t" + LONE, 1), "event type"),
        (lambda: run.put("k", 1, write_id="w" + LONE), "write_id"),
        (lambda: run.put("k", 1, tool="t" + LONE), "tool"),
        (lambda: run.end("s" + LONE), "status"),
        (lambda: ns.register_projection("p" + LONE, lambda state, event: state, 0), "projection name"),
        (lambda: run.put("k", "v" + LONE), "cannot be stored"),
    ):
        with refused(ns, what):
            call()
    with pytest.raises(swarmlog.NotFoundError):
        ns.projection("p" + LONE)
    assert ns.run_info("r").running
    ns = store.reopen()  # closing wrote a snapshot: nothing unencodable got into the state
    assert_store_sound(ns)


# -- namespace names -----------------------------------------------------------------------------


def test_a_bad_namespace_name_is_refused(store):
    for name in ["", None, 5, "/abs", "a/../b", "..", ".", "a b", "a\0b", "tab\t", "semi;colon", "n" * 201]:
        with pytest.raises(swarmlog.ValidationError, match="namespace name"):
            store.mem.namespace(name)
    assert store.mem.namespaces() == []


def test_good_namespace_names_map_to_distinct_directories(store):
    names = ["a", "a/", "a/./b", "acme/support", "acme_support", "acme-support", "acme.support", "v1.2/x_y-z"]
    for i, name in enumerate(names):
        store.mem.namespace(name).begin_run(agent="a").put("i", i)
    assert sorted(store.mem.namespaces()) == sorted(names)
    for i, name in enumerate(names):
        ns = store.mem.namespace(name)
        assert ns.get("i") == i
        assert_store_sound(ns)


# -- reads ---------------------------------------------------------------------------------------


def test_a_bad_limit_is_refused(store, run):
    ns = store.ns
    for limit in [-1, 1.5, "3", True]:
        for read in (
            lambda limit=limit: ns.list(limit=limit),
            lambda limit=limit: ns.items(limit=limit),
            lambda limit=limit: ns.read_events(limit=limit),
            lambda limit=limit: ns.why("existing", limit=limit),
        ):
            with refused(ns, "limit must be None or an int >= 0", case=limit):
                read()
    assert_store_sound(ns)


def test_a_bad_after_or_upto_is_refused(store, run):
    ns = store.ns
    for bound in ["after", "upto"]:
        for value in [-1, 1.5, "3", True]:
            with refused(ns, f"{bound} must be None or a seq", case=value):
                ns.read_events(**{bound: value})
    assert_store_sound(ns)


def test_bad_event_types_to_read_are_refused(store, run):
    ns = store.ns
    for types in [5, [""], ["ok", 3], [None]]:
        with refused(ns, "types must be", case=types):
            ns.read_events(types=types)
    assert_store_sound(ns)


def test_a_prefix_or_start_after_that_is_not_a_string_is_refused(store, run):
    ns = store.ns
    for prefix in [5, None, b"p"]:
        with refused(ns, "prefix must be a string", case=prefix):
            ns.list(prefix)
    for start_after in [5, b"p", ["a"]]:
        with refused(ns, "start_after must be None or a string", case=start_after):
            ns.list(start_after=start_after)
        with refused(ns, "start_after must be None or a string", case=start_after):
            ns.items(start_after=start_after)
    assert_store_sound(ns)


def test_at_refuses_a_seq_outside_the_journal(store, run):
    ns = store.ns
    for seq in [-1, "1", 1.0, True, 10**6]:
        with refused(ns, "at\\(\\) needs a seq", case=seq):
            ns.at(seq)
    assert_store_sound(ns)


def test_reading_an_event_that_does_not_exist_is_not_found(store, run):
    ns = store.ns
    for seq in [0, -1, "1", True, 10**6]:
        with refused(ns, "does not exist", swarmlog.NotFoundError, case=seq):
            ns.event(seq)
    assert_store_sound(ns)


def test_a_bad_trace_filter_is_refused(store, run):
    ns = store.ns
    with refused(ns, "trace kind 'thought' is unknown"):
        ns.traces(kind="thought")
    with refused(ns, "event must be None or a seq"):
        ns.traces(event="3")
    assert_store_sound(ns)


def test_bad_settings_are_refused(store):
    for kwargs, match in [
        ({"durability": "sometimes"}, "durability must be 'process' or 'fsync'"),
        ({"snapshot_every_events": 0}, "snapshot_every_events must be a positive number"),
        ({"max_record_bytes": -5}, "max_record_bytes must be a positive number"),
        ({"compress_min_bytes": "big"}, "compress_min_bytes must be a positive number"),
    ]:
        with pytest.raises(swarmlog.ValidationError, match=match):
            Settings(**kwargs)
    with pytest.raises(swarmlog.ValidationError, match="durability"):
        swarmlog.open_local(store.path + "-other", durability="never")
