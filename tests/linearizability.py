"""A linearizability checker for versioned registers (Wing & Gong's search, with Lowe's cache).

A history is a list of ``Op``: calls with the time they were invoked and the time their answer
came back. Linearizability is local (Herlihy & Wing), so each key is checked on its own: the
search looks for an order of the key's operations that (1) respects real time — an operation
that returned before another was invoked comes first — and (2) replays on the model below giving
every answer that was observed. It tries, depth first, every operation that may come next,
and caches ``(operations placed, model state)`` pairs already explored, which is what keeps the
search small in practice (Lowe, "Testing for linearizability", 2017).

Operations without an answer (the call raised because the server went away, or the answer was
lost) may have taken effect at any time after their invocation, or never: they get a return
time of +infinity, any outcome, and the search may leave them out. Reads without an answer
say nothing and are dropped.

The model is the coordinator's record: ``(value, version, highest version)`` where version 0 is
"absent", every successful write sets version to highest + 1 (so versions never repeat, even
after a delete), and:

=========  ======================  =================================================
kind       arg                     result
=========  ======================  =================================================
read       None                    ``(value, version)``
write      value                   ``version`` written
cas        ``(expected, value)``   ``(ok, value, version)`` (the current record on failure)
delete     expected or None        ``(ok, value, version)`` (absent on success)
=========  ======================  =================================================
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

READ, WRITE, CAS, DELETE = "read", "write", "cas", "delete"
KINDS = (READ, WRITE, CAS, DELETE)
INITIAL = (None, 0, 0)


@dataclass(frozen=True)
class Op:
    """One call in a history."""

    process: Any
    """Who made the call (a thread, a client)."""
    key: str
    """The record it was about."""
    kind: str
    """``read``, ``write``, ``cas`` or ``delete``."""
    invoke: float
    """When the call was made (any clock that all processes share, e.g. ``monotonic_ns``)."""
    ret: float | None
    """When its answer arrived; None when no answer came (it may or may not have happened)."""
    arg: Any = None
    """What was asked: the value to write, ``(expected_version, value)``, the expected version."""
    result: Any = None
    """What was answered (see the module docstring); ignored when ``ret`` is None."""


@dataclass(frozen=True)
class Verdict:
    """What the checker found."""

    ok: bool
    """True when every key's history is linearizable."""
    key: str | None = None
    """The first key whose history is not, else None."""
    reason: str = ""
    """What could not be explained, in words."""
    explored: int = 0
    """How many search states were visited (all keys)."""


class SearchTooLarge(Exception):
    """The search passed its state budget: shrink the history (fewer unknown outcomes)."""


def freeze(value: Any) -> Any:
    """A hashable stand-in for a value (lists and dicts become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def step(state: tuple, op: Op, known: bool) -> tuple | None:
    """The model state after ``op``, or None when its observed result is impossible in ``state``.
    With ``known=False`` any result is accepted (the op's answer was never seen)."""
    value, version, high = state
    kind = op.kind
    if kind == READ:
        return state if not known or op.result == (value, version) else None
    if kind == WRITE:
        new = (freeze(op.arg), high + 1, high + 1)
        return new if not known or op.result == high + 1 else None
    if kind == CAS:
        expected, new_value = op.arg
        if expected == version:
            new = (freeze(new_value), high + 1, high + 1)
            return new if not known or op.result == (True, new[0], high + 1) else None
        return state if not known or op.result == (False, value, version) else None
    if kind == DELETE:
        expected = op.arg
        if version > 0 and (expected is None or expected == version):
            return (None, 0, high) if not known or op.result == (True, None, 0) else None
        return state if not known or op.result == (False, value, version) else None
    raise ValueError(f"unknown operation kind {kind!r}")


def _normalise(op: Op) -> Op:
    """Freeze values in args and results so that comparisons with model states work."""
    arg = op.arg
    if op.kind == WRITE:
        arg = freeze(arg)
    elif op.kind == CAS:
        arg = (arg[0], freeze(arg[1]))
    result = op.result
    if op.ret is not None and op.kind in (READ, CAS, DELETE):
        result = freeze(result)
    return Op(op.process, op.key, op.kind, op.invoke, op.ret, arg, result)


def check_key(ops: list[Op], *, max_states: int = 2_000_000) -> tuple[bool, str, int]:
    """``(ok, reason, states explored)`` for the operations of one key."""
    ops = sorted(
        (_normalise(op) for op in ops if not (op.ret is None and op.kind == READ)), key=lambda o: o.invoke
    )
    n = len(ops)
    invoke = [op.invoke for op in ops]
    ret = [math.inf if op.ret is None else op.ret for op in ops]
    known = [op.ret is not None for op in ops]
    required = sum(1 << i for i in range(n) if known[i])
    seen: set[tuple[int, tuple]] = set()
    stack: list[tuple[int, tuple]] = [(0, INITIAL)]
    best_mask = 0
    while stack:
        mask, state = stack.pop()
        if mask & required == required:
            return True, "", len(seen)
        if (mask, state) in seen:
            continue
        seen.add((mask, state))
        if len(seen) > max_states:
            raise SearchTooLarge(f"more than {max_states} search states for {n} operations")
        if (mask & required).bit_count() > (best_mask & required).bit_count():
            best_mask = mask
        lo = (~mask & (mask + 1)).bit_length() - 1  # the first operation not placed yet
        # An operation may come next unless another unplaced one returned before it was invoked.
        min_ret = math.inf
        window = []
        for i in range(lo, n):
            if mask >> i & 1:
                continue
            if invoke[i] > min_ret:
                break
            window.append(i)
            if ret[i] < min_ret:
                min_ret = ret[i]
        candidates = [i for i in window if invoke[i] <= min_ret]
        # Try the operation that returned first last onto the stack, so it is explored first.
        for i in sorted(candidates, key=lambda i: ret[i], reverse=True):
            new = step(state, ops[i], known[i])
            if new is not None:
                stack.append((mask | 1 << i, new))
    return False, _explain(ops, best_mask, known), len(seen)


def _explain(ops: list[Op], mask: int, known: list[bool]) -> str:
    placed = (mask & sum(1 << i for i in range(len(ops)) if known[i])).bit_count()
    stuck = [op for i, op in enumerate(ops) if known[i] and not mask >> i & 1]
    first = min(stuck, key=lambda op: op.ret)
    return (
        f"no order of the {len(ops)} operations explains the answers; at best {placed} answered "
        f"ones could be placed, and then {first.kind}({first.arg!r}) -> {first.result!r} by "
        f"{first.process!r} (invoked {first.invoke}, returned {first.ret}) could not be"
    )


def check(history: list[Op], *, max_states: int = 2_000_000) -> Verdict:
    """Check every key of ``history``; the verdict names the first key that fails."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        if op.kind not in KINDS:
            raise ValueError(f"unknown operation kind {op.kind!r}")
        by_key[op.key].append(op)
    explored = 0
    for key in sorted(by_key):
        ok, reason, states = check_key(by_key[key], max_states=max_states)
        explored += states
        if not ok:
            return Verdict(ok=False, key=key, reason=reason, explored=explored)
    return Verdict(ok=True, explored=explored)
