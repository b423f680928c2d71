"""Where two runs part: ``ns.diff(run_a, run_b)``.

Two runs are compared by what their agents *did*, not by where and when it landed: each event of
a run's history (a fork's starts with its parent's) is reduced to its behaviour — type, tool,
source and the payload without what the environment decided (the seq and time, the version a
write replaced, a tool call's duration); a trace's link becomes the position of the linked
event in the run's own history. Equal behaviour, equal event.

A fork's own ``run.begin`` is left out: it marks the branch point, it is nothing the agent did,
so a fork that changed one decision first differs from its parent at that decision.

The result holds the first divergence (the index in both histories and both events), an
aligned event-by-event comparison (``difflib`` over the behaviours, so an inserted event shows
as one row, not as a shifted tail) and the differences in the final state each run wrote: per
key, whether and to what each run last set it; per trace, those only one run recorded.
(Documents and vectors join here once their events exist.)
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import TYPE_CHECKING, Any

import msgpack
import msgspec

from journal.records import Event
from swarmlog.flow import then

if TYPE_CHECKING:
    from swarmlog.handles import Namespace

ALIGN_MAX_EVENTS = 20_000
"""Above this many events per run the rows pair events by index after the common prefix
(``difflib`` is quadratic in the worst case)."""


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """The first place two runs' histories differ."""

    index: int
    """Position (from 0) in both compared histories."""
    a: Event | None
    """Run A's event there, or None when A's history ends first."""
    b: Event | None
    """Run B's event there, or None when B's history ends first."""


class DiffRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the aligned comparison."""

    op: str
    """``"equal"``, ``"changed"``, ``"only_a"`` or ``"only_b"``."""
    index_a: int | None
    """Position in A's history, or None."""
    index_b: int | None
    """Position in B's history, or None."""
    a: Event | None
    """A's event, or None."""
    b: Event | None
    """B's event, or None."""


class KeyDiff(msgspec.Struct, frozen=True, kw_only=True):
    """A key the two runs left differently."""

    key: str
    """The key."""
    a: str
    """What run A last did to it: ``"set"``, ``"deleted"`` or ``"untouched"``."""
    b: str
    """What run B last did to it."""
    a_value: Any = None
    """The value A last set (when ``a == "set"``)."""
    b_value: Any = None
    """The value B last set (when ``b == "set"``)."""


class RunDiff(msgspec.Struct, frozen=True, kw_only=True):
    """How two runs differ (``Namespace.diff``)."""

    run_a: str
    """The first run."""
    run_b: str
    """The second run."""
    identical: bool
    """True when both histories hold the same behaviour, event for event."""
    events_a: int
    """Events compared of A's history."""
    events_b: int
    """Events compared of B's history."""
    first_divergence: Divergence | None
    """Where they first differ, or None when identical."""
    rows: list[DiffRow]
    """The aligned comparison, in order."""
    keys: list[KeyDiff]
    """Keys whose final state differs between the runs, sorted."""
    traces_only_a: list[Event]
    """Trace events of A with no equal trace in B."""
    traces_only_b: list[Event]
    """Trace events of B with no equal trace in A."""


def diff_runs(namespace: Namespace, run_a: str, run_b: str) -> Any:
    """``RunDiff`` of two runs of ``namespace`` (an awaitable of it with an async backend)."""
    return then(
        namespace.read_events(run_a),
        lambda a: then(namespace.read_events(run_b), lambda b: diff_events(run_a, a, run_b, b)),
    )


def diff_events(run_a: str, events_a: list[Event], run_b: str, events_b: list[Event]) -> RunDiff:
    """``RunDiff`` of two histories (as ``read_events(run_id=…)`` returns them)."""
    events_a = [ev for ev in events_a if not _fork_begin(ev)]
    events_b = [ev for ev in events_b if not _fork_begin(ev)]
    keys_a = behaviours(events_a)
    keys_b = behaviours(events_b)
    prefix = 0
    for ka, kb in zip(keys_a, keys_b, strict=False):
        if ka != kb:
            break
        prefix += 1
    identical = prefix == len(keys_a) == len(keys_b)
    first = None
    if not identical:
        first = Divergence(
            index=prefix,
            a=events_a[prefix] if prefix < len(events_a) else None,
            b=events_b[prefix] if prefix < len(events_b) else None,
        )
    return RunDiff(
        run_a=run_a,
        run_b=run_b,
        identical=identical,
        events_a=len(events_a),
        events_b=len(events_b),
        first_divergence=first,
        rows=_align(events_a, keys_a, events_b, keys_b, prefix),
        keys=_key_diffs(events_a, events_b),
        traces_only_a=_traces_only(events_a, keys_a, events_b, keys_b),
        traces_only_b=_traces_only(events_b, keys_b, events_a, keys_a),
    )


def _fork_begin(ev: Event) -> bool:
    return ev.type == "run.begin" and ev.payload.get("fork_seq") is not None


def behaviours(events: list[Event]) -> list[bytes]:
    """Each event reduced to what its agent did, as comparable bytes (see the module doc)."""
    position = {ev.seq: i for i, ev in enumerate(events)}
    return [msgpack.packb(_behaviour(ev, position), use_bin_type=True) for ev in events]


def _behaviour(ev: Event, position: dict[int, int]) -> list:
    t, p = ev.type, ev.payload
    if t == "run.begin":
        body: Any = p.get("metadata")
    elif t == "kv.put":
        body = [p["key"], p["value"], p.get("ttl_ms")]
    elif t == "kv.delete":
        body = p["key"]
    elif t.startswith("trace."):
        data = p["data"]
        if t == "trace.tool_call" and isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "duration_ms"}
        link = p.get("event")
        body = [data, None if link is None else ["at", position[link]] if link in position else ["seq", link]]
    else:
        body = p
    return [t, ev.tool, ev.source, body]


def _align(events_a, keys_a, events_b, keys_b, prefix: int) -> list[DiffRow]:
    rows = [DiffRow(op="equal", index_a=i, index_b=i, a=events_a[i], b=events_b[i]) for i in range(prefix)]
    rest_a, rest_b = keys_a[prefix:], keys_b[prefix:]
    if max(len(rest_a), len(rest_b)) > ALIGN_MAX_EVENTS:
        n = max(len(rest_a), len(rest_b))
        opcodes = [("replace", 0, len(rest_a), 0, len(rest_b))] if n else []
    else:
        opcodes = difflib.SequenceMatcher(None, rest_a, rest_b, autojunk=False).get_opcodes()
    for tag, a0, a1, b0, b1 in opcodes:
        if tag == "equal":
            rows.extend(
                _row("equal", prefix + a0 + k, prefix + b0 + k, events_a, events_b) for k in range(a1 - a0)
            )
            continue
        paired = min(a1 - a0, b1 - b0) if tag == "replace" else 0
        rows.extend(
            _row("changed", prefix + a0 + k, prefix + b0 + k, events_a, events_b) for k in range(paired)
        )
        rows.extend(_row("only_a", prefix + i, None, events_a, events_b) for i in range(a0 + paired, a1))
        rows.extend(_row("only_b", None, prefix + j, events_a, events_b) for j in range(b0 + paired, b1))
    return rows


def _row(op: str, ia: int | None, ib: int | None, events_a, events_b) -> DiffRow:
    return DiffRow(
        op=op,
        index_a=ia,
        index_b=ib,
        a=None if ia is None else events_a[ia],
        b=None if ib is None else events_b[ib],
    )


def _final_keys(events: list[Event]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for ev in events:
        if ev.type == "kv.put":
            out[ev.payload["key"]] = ("set", ev.payload["value"])
        elif ev.type == "kv.delete":
            out[ev.payload["key"]] = ("deleted", None)
    return out


def _key_diffs(events_a: list[Event], events_b: list[Event]) -> list[KeyDiff]:
    a, b = _final_keys(events_a), _final_keys(events_b)
    out = []
    untouched = ("untouched", None)
    for key in sorted(a.keys() | b.keys()):
        ea, eb = a.get(key, untouched), b.get(key, untouched)
        if _packed(ea) != _packed(eb):
            out.append(KeyDiff(key=key, a=ea[0], b=eb[0], a_value=ea[1], b_value=eb[1]))
    return out


def _traces_only(events, keys, other_events, other_keys) -> list[Event]:
    remaining = Counter(
        k for ev, k in zip(other_events, other_keys, strict=True) if ev.type.startswith("trace.")
    )
    out = []
    for ev, k in zip(events, keys, strict=True):
        if not ev.type.startswith("trace."):
            continue
        if remaining[k]:
            remaining[k] -= 1
        else:
            out.append(ev)
    return out


def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)
