"""What travels between clients and actors: pickled bytes, not objects.

Ray serialises arguments and results of actor calls with cloudpickle, a pure-Python pickler: a
batch of 100 operations and its 100 results cost about 2 ms of a ~4 ms call that way, and under
0.2 ms as the C pickler's bytes, which Ray then moves as an opaque blob. Callers and actors trust
each other (one cluster, one code base), so plain pickle is the wire format; what the C pickler
cannot handle (a lambda registered as a projection fold) falls back to cloudpickle, whose output
``pickle.loads`` reads.

Write results travel compact (``compact_results`` / ``expand_results``): an appended ``Event``
or a ``Trace`` mostly repeats what the client sent (run, agent, tool, type, the packed payload),
so the actor sends only what it decided — seq, id, time, hashes, extra — and the client builds
the same objects from its own request. For a batch of 100 appends that is ~5 KB instead of
~29 KB, and a fraction of the pickling on both sides.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from journal.codec import unpack_value
from journal.records import EXTRA, ID, PREV, TS, Event
from projections.commands import AddTrace, Append, Request
from projections.engine import EventFields
from projections.traces import Trace


def dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return pickle.loads(data)


# Tags of compact write results: one character per operation of the request.
_EVENT, _TRACE, _AS_IS = "e", "t", "-"


def compact_results(request: Request, results: list) -> tuple[str, list]:
    """The results of ``request`` as ``(tags, items)``: an ``EventFields`` of an append (what the
    actor's engine answers), or an ``Event`` of an append whose identity fields are the
    request's (a retried write's answer, read back from the journal) becomes ``(seq, id, ts, prev, hash, extra)``, a ``Trace`` of a trace
    operation ``(seq, event, ts)``; anything else travels as it is. Payload, data and source are
    the client's own packed bytes, which the engine decoded to build these objects."""
    tags: list[str] = []
    items: list[Any] = []
    run_id, agent, write_id, tool = request.run_id, request.agent, request.write_id, request.tool
    for op, r in zip(request.ops, results, strict=True):
        cls = type(r)
        if cls is EventFields:  # an append the engine answered without building the Event
            f = r.fields
            tags.append(_EVENT)
            items.append((r.seq, f[ID], f[TS], f[PREV], r.hash, f[EXTRA]))
        elif (
            cls is Event
            and type(op) is Append
            and r.type == op.type
            and r.run_id == run_id
            and r.agent == agent
            and r.write_id == write_id
            and r.tool == (tool if op.tool is None else op.tool)
        ):
            tags.append(_EVENT)
            items.append((r.seq, r.id, r.ts, r.prev, r.hash, r.extra))
        elif (
            cls is Trace
            and type(op) is AddTrace
            and r.kind == op.kind
            and r.run_id == run_id
            and r.agent == agent
            and r.tool == (tool if op.tool is None else op.tool)
        ):
            tags.append(_TRACE)
            items.append((r.seq, r.event, r.ts))
        else:
            tags.append(_AS_IS)
            items.append(r)
    return "".join(tags), items


def expand_results(request: Request, packed: tuple[str, list]) -> list:
    """The results ``compact_results`` packed, rebuilt from ``request`` (the one that was sent)."""
    tags, items = packed
    if _EVENT not in tags and _TRACE not in tags:
        return items
    run_id, agent, write_id, tool = request.run_id, request.agent, request.write_id, request.tool
    req_source = request.source
    out: list[Any] = []
    for tag, op, item in zip(tags, request.ops, items, strict=True):
        if tag == _EVENT:
            seq, id_, ts, prev, digest, extra = item
            source = req_source if op.source is None else op.source
            out.append(
                Event(
                    seq=seq,
                    id=id_,
                    ts=ts,
                    run_id=run_id,
                    agent=agent,
                    tool=tool if op.tool is None else op.tool,
                    type=op.type,
                    payload=unpack_value(op.payload),
                    source=None if source is None else unpack_value(source),
                    write_id=write_id,
                    prev=prev,
                    hash=digest,
                    extra=extra,
                )
            )
        elif tag == _TRACE:
            seq, event, ts = item
            out.append(
                Trace(
                    seq=seq,
                    run_id=run_id,
                    kind=op.kind,
                    data=unpack_value(op.data),
                    event=event,
                    ts=ts,
                    agent=agent,
                    tool=tool if op.tool is None else op.tool,
                )
            )
        else:
            out.append(item)
    return out
