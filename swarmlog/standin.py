"""The stand-in a replayed agent gets instead of its run (``swarmlog.replay``).

``ReplayRun`` is a ``Run`` whose backend is the replay session: its writes are matched with the
record, its reads answered as of the replayed point, and ``call``/``random``/``now``/``uuid``
answered from the record. Its ``namespace`` reads the main line as of the same point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from journal.codec import pack_value
from journal.errors import ValidationError
from projections.branches import READ_METHODS
from projections.commands import check_name
from swarmlog.handles import Namespace, Run

if TYPE_CHECKING:
    from swarmlog.replay import ReplaySession


class ReplayRun(Run):
    """The stand-in a replayed agent gets instead of its run: the same methods, answered from
    the record (see the module docstring). ``run_id`` and ``agent`` are those of the run that
    recorded the next event (a fork's history starts with its parent's)."""

    def __init__(self, session: ReplaySession, tool: str | None = None):  # not Run.__init__: no run_id to set
        self._session = session
        self._backend = _RunFacade(session)
        self._ns = session.namespace.name
        self.namespace = _ReplayNamespace(session)
        self.tool = tool

    @property
    def run_id(self) -> str:  # type: ignore[override]
        return self._session.run_id

    @property
    def agent(self) -> str:  # type: ignore[override]
        return self._session.agent

    def __repr__(self) -> str:
        return f"<swarmlog.ReplayRun of {self._session.info.run_id!r} at {self._session.position}>"

    def with_tool(self, tool: str | None) -> ReplayRun:
        return ReplayRun(self._session, tool)

    def call(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        session = self._session
        if not session.live:
            session.peek()  # with resume, an exhausted record turns the session live
        if session.live:
            return super().call(name, fn, *args, **kwargs)
        check_name(name, "call name", max_chars=128)
        if not callable(fn):
            raise ValidationError(f"call {name!r}: fn must be callable, got {type(fn).__name__}")
        pack_value(
            {"name": name, "args": list(args), "kwargs": kwargs}, what=f"the arguments of call {name!r}"
        )
        return session.recorded_call(name, args, kwargs)

    def _value(self, kind: str, live: Callable[[], Any]) -> Any:
        session = self._session
        if not session.live:
            session.peek()
        if session.live:
            return live()
        return session.recorded_value(kind)

    def random(self) -> float:
        return self._value("random", super().random)

    def now(self) -> float:
        return self._value("now", super().now)

    def uuid(self) -> str:
        return self._value("uuid", super().uuid)


class _RunFacade:
    """The stand-in's backend: writes are matched with the record, reads answered as of the
    replayed point, both for the run being replayed (a fork reads its branch)."""

    def __init__(self, session: ReplaySession):
        self._session = session

    @property
    def is_async(self) -> bool:
        return self._session.asynchronous

    def call(self, ns: str, method: str, args: tuple, kwargs: dict, then_: Callable | None) -> Any:
        session = self._session
        if method == "submit":
            return session.submit(args[0], then_)
        if method == "txn_read":  # a transaction reads the state its commit was decided against
            return session.read(session.info.run_id, method, args, kwargs, then_, latest=True)
        if method in READ_METHODS:
            return session.read(session.info.run_id, method, args, kwargs, then_)
        raise ValidationError(f"a replayed run cannot call {method!r}")


class _NamespaceFacade(_RunFacade):
    """Backend of the stand-in's ``namespace``: main-line reads as of the replayed point."""

    def call(self, ns: str, method: str, args: tuple, kwargs: dict, then_: Callable | None) -> Any:
        if method in READ_METHODS:
            return self._session.read(None, method, args, kwargs, then_)
        raise ValidationError(f"a replayed agent cannot call namespace method {method!r}; it only reads")


class _ReplayNamespace(Namespace):
    """``run.namespace`` inside a replay: reads the main line as of the replayed point."""

    def __init__(self, session: ReplaySession):
        super().__init__(_NamespaceFacade(session), session.namespace.name)
