"""The recorder: how a run journals what an agent cannot compute by itself.

``Run`` inherits these methods, so the run handle *is* the recorder: agent code calls
``run.call(name, fn, *args, **kwargs)`` for tools and models and ``run.random()``,
``run.now()``, ``run.uuid()`` for randomness and the clock, and every answer goes into the
journal (see ``projections.recorded`` for the event types). A replay hands the same answers
back without calling anything (``swarmlog.replay``).

One implementation serves synchronous and asynchronous use: a tool that returns an awaitable
(an ``async def``) makes ``call`` return an awaitable, and with an asynchronous backend the
journal write is itself awaited before the answer is handed over.
"""

from __future__ import annotations

import inspect
import random as _random
import sys
import time
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from journal.codec import pack_value
from journal.errors import RecordedError, ValidationError
from projections.commands import OpRef, check_name, trace_op
from projections.recorded import record_op


class Recorder:
    """Recording methods of ``Run`` (a mixin: it relies on ``Run._write``)."""

    run_id: str
    _write: Callable[..., Any]

    def call(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` and journal the call: ``name``, the arguments and the
        output — or the error it raised, which is then re-raised — as a ``call.tool`` event
        with a ``tool_call`` trace linked to it. Returns ``fn``'s output (an awaitable of it
        when ``fn`` returns one). Arguments and output must be msgpack-encodable:
        ``ValidationError`` otherwise, raised before ``fn`` runs for the arguments and before
        anything is journaled for the output."""
        check_name(name, "call name", max_chars=128)
        if not callable(fn):
            raise ValidationError(f"call {name!r}: fn must be callable, got {type(fn).__name__}")
        head = {"name": name, "args": list(args), "kwargs": kwargs}
        pack_value(head, what=f"the arguments of call {name!r}")
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            return self._journal_call(head, started, error=exc)
        if inspect.isawaitable(result):
            return self._await_call(head, started, result)
        return self._journal_call(head, started, output=result)

    async def _await_call(self, head: dict, started: float, awaitable: Any) -> Any:
        error = None
        output = None
        try:
            output = await awaitable
        except Exception as exc:
            error = exc
        done = self._journal_call(head, started, output=output, error=error, is_async=True)
        return (await done) if inspect.isawaitable(done) else done

    def _journal_call(
        self,
        head: dict,
        started: float,
        *,
        output: Any = None,
        error: Exception | None = None,
        is_async=False,
    ) -> Any:
        elapsed_ms = round((time.perf_counter() - started) * 1000.0, 3)
        payload = dict(head)
        if error is None:
            payload["output"] = output
        else:
            payload["error"] = describe_error(error)
        if is_async:
            payload["async"] = True
        name = head["name"]
        if error is None:
            pack_value(output, what=f"the output of call {name!r}")
        ops = [
            record_op("tool", payload),
            trace_op(
                "tool_call", {"tool": name, "ok": error is None, "duration_ms": elapsed_ms}, event=OpRef(0)
            ),
        ]
        if error is None:
            return self._write(ops, then=lambda _: output)

        def reraise(_: Any) -> Any:
            raise error

        return self._write(ops, then=reraise)

    def random(self) -> float:
        """A random float in [0, 1), journaled (``call.random``) so a replay gets it back."""
        value = _random.random()
        return self._write([record_op("random", {"value": value})], then=lambda _: value)

    def now(self) -> float:
        """The wall clock in seconds since the epoch, journaled (``call.now``)."""
        value = time.time()
        return self._write([record_op("now", {"value": value})], then=lambda _: value)

    def uuid(self) -> str:
        """A fresh random UUID as 32 hex digits, journaled (``call.uuid``)."""
        value = _uuid.uuid4().hex
        return self._write([record_op("uuid", {"value": value})], then=lambda _: value)


def describe_error(exc: BaseException) -> dict:
    """What a replay needs to raise ``exc`` again: its class path, message and (when they can be
    stored) its constructor args."""
    cls = type(exc)
    out: dict[str, Any] = {"type": f"{cls.__module__}.{cls.__qualname__}", "message": str(exc)}
    try:
        pack_value(list(exc.args))
    except ValidationError:
        return out
    out["args"] = list(exc.args)
    return out


def rebuild_error(described: dict) -> Exception:
    """The recorded error as an instance of its original class when that class is importable
    from a module that is already loaded and accepts the recorded args; ``RecordedError``
    otherwise. Nothing is imported: a replay only runs code the agent already loaded."""
    type_name = described.get("type", "")
    message = described.get("message", "")
    parts = type_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: Any = module
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        if isinstance(obj, type) and issubclass(obj, Exception):
            try:
                exc = obj(*described.get("args", [message]))
            except Exception:
                break
            return exc
        break
    return RecordedError(type_name, message)
