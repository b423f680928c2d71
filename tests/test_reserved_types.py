"""Reserved event types (``kv.``, ``call.`` …) are written by swarmlog only."""

from __future__ import annotations

import pytest

import swarmlog
from journal.codec import pack_value
from projections.commands import Append, make_request
from tests.helpers import assert_store_sound


@pytest.mark.parametrize("type_", ["kv.put", "call.tool", "trace.decision"])
def test_a_hand_built_append_of_a_reserved_type_is_refused_by_the_engine(mem, ns, type_):
    run = ns.begin_run(agent="planner")
    engine = mem._backend.engine(ns.name)
    request = make_request(run.run_id, "planner", [Append(type=type_, payload=pack_value({"key": "k"}))])
    with pytest.raises(swarmlog.ValidationError, match="reserved prefix"):
        engine.submit(request)
    assert ns.head() == 1
    assert_store_sound(ns)


def test_append_event_refuses_the_call_prefix_before_sending(ns):
    run = ns.begin_run(agent="planner")
    with pytest.raises(swarmlog.ValidationError, match="reserved prefix"):
        run.append_event("call.tool", {"name": "x"})
    assert ns.head() == 1
    assert_store_sound(ns)
