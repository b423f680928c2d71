"""Composing backend calls that may answer now (in-process, Ray) or later (async clients).

Handles make one backend call per method and return whatever the backend returns. Client-side
logic that needs several calls (replay, diff) is written once with these helpers: ``then``
chains a step after a value or an awaitable, and ``drive`` runs a generator that yields the
reads it needs, so the same code returns a value with a synchronous backend and an awaitable
with an asynchronous one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any


def then(value: Any, step: Callable[[Any], Any]) -> Any:
    """``step(value)``, or an awaitable of it when ``value`` (or what ``step`` returns) is one."""
    if inspect.isawaitable(value):
        return _then_later(value, step)
    return step(value)


async def _then_later(awaitable: Any, step: Callable[[Any], Any]) -> Any:
    result = step(await awaitable)
    while inspect.isawaitable(result):
        result = await result
    return result


async def ready(value: Any) -> Any:
    """An awaitable that gives ``value`` (for callers that must always hand out awaitables)."""
    return value


def drive(gen: Generator[Any, Any, Any], read: Callable[[Any], Any]) -> Any:
    """Run ``gen``: every value it yields is passed to ``read`` and the answer is sent back.
    Returns what ``gen`` returns — or an awaitable of it once ``read`` answers with one."""
    value = None
    while True:
        try:
            want = gen.send(value)
        except StopIteration as stop:
            return stop.value
        value = read(want)
        if inspect.isawaitable(value):
            return _drive_later(gen, read, value)


async def _drive_later(gen: Generator[Any, Any, Any], read: Callable[[Any], Any], pending: Any) -> Any:
    value = await pending
    while True:
        try:
            want = gen.send(value)
        except StopIteration as stop:
            return stop.value
        value = read(want)
        if inspect.isawaitable(value):
            value = await value
