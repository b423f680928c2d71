"""The ``swarmlog`` command: look at runs, replay, diff and fork them, verify a namespace.

    swarmlog [--data DIR] show    NAMESPACE RUN [RUN_B] [--html FILE] [--limit N]
    swarmlog [--data DIR] replay  NAMESPACE RUN [--agent MODULE:FUNCTION] [--resume]
    swarmlog [--data DIR] diff    NAMESPACE RUN_A RUN_B [--html FILE] [--rows N]
    swarmlog [--data DIR] fork    NAMESPACE RUN [--at SEQ] [--new-run-id ID] [--agent NAME]
    swarmlog [--data DIR] verify  NAMESPACE [--projections]
    swarmlog [--data DIR] runs    NAMESPACE

``--data`` is the store directory (default ``./swarmlog-data``, or ``$SWARMLOG_DATA``). The store
is opened in process, so a store another process has open must be reached through that process.
Exit status: 0 when all is well, 1 when a replay, diff or verify found a difference, 2 on errors.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

import swarmlog
from swarmlog import render

DEFAULT_DATA = "./swarmlog-data"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    out = Console(soft_wrap=False)
    err = Console(stderr=True)
    data = getattr(args, "data", None) or os.environ.get("SWARMLOG_DATA") or DEFAULT_DATA
    if not os.path.isdir(os.path.join(data, "namespaces")):
        err.print(f"[red]error:[/] no swarmlog store at {data!r} (pass --data DIR)")
        return 2
    address = getattr(args, "address", None)
    # A store served by Ray actors is locked by them: reach it through the cluster instead.
    hint = "" if address else " (if Ray actors serve this store, pass --address auto)"
    try:
        mem = swarmlog.open_local(data) if address is None else swarmlog.connect(data, address=address)
    except swarmlog.SwarmlogError as exc:
        err.print(f"[red]error:[/] {exc}{hint}")
        return 2
    try:
        if args.namespace not in mem.namespaces():
            known = ", ".join(mem.namespaces()) or "none"
            err.print(f"[red]error:[/] no namespace {args.namespace!r} in {data} (namespaces: {known})")
            return 2
        ns = mem.namespace(args.namespace)
        return args.command(ns, args, out)
    except swarmlog.NamespaceUnavailable as exc:
        err.print(f"[red]error:[/] {exc}{hint}")
        return 2
    except swarmlog.SwarmlogError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    finally:
        mem.close()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", default=argparse.SUPPRESS, help=f"store directory (default {DEFAULT_DATA})")
    common.add_argument(
        "--address",
        default=argparse.SUPPRESS,
        help="reach the store through this Ray cluster (e.g. auto) instead of opening it in process",
    )
    parser = argparse.ArgumentParser(prog="swarmlog", description=__doc__.split("\n\n")[0], parents=[common])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("show", parents=[common], help="print a run's timeline (two runs: and their diff)")
    p.add_argument("namespace")
    p.add_argument("run")
    p.add_argument("run_b", nargs="?")
    p.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page")
    p.add_argument("--limit", type=int, default=None, help="show at most N events per run")
    p.set_defaults(command=_show)

    p = sub.add_parser("replay", parents=[common], help="re-fold a run and check it, or re-run its agent")
    p.add_argument("namespace")
    p.add_argument("run")
    p.add_argument("--agent", metavar="MODULE:FUNCTION", help="re-run this agent against the record")
    p.add_argument("--resume", action="store_true", help="with --agent: go on live where the record ends")
    p.set_defaults(command=_replay)

    p = sub.add_parser("diff", parents=[common], help="where two runs part")
    p.add_argument("namespace")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page")
    p.add_argument("--rows", type=int, default=200, help="print at most N aligned rows (default 200)")
    p.set_defaults(command=_diff)

    p = sub.add_parser("fork", parents=[common], help="branch a run after an event")
    p.add_argument("namespace")
    p.add_argument("run")
    p.add_argument("--at", type=int, default=None, help="seq to fork after (default: the run's newest)")
    p.add_argument("--new-run-id", default=None)
    p.add_argument("--agent", default=None, help="agent of the fork (default: the parent's)")
    p.set_defaults(command=_fork)

    p = sub.add_parser("verify", parents=[common], help="check the hash chain and indexes")
    p.add_argument("namespace")
    p.add_argument("--projections", action="store_true", help="also re-fold and compare the projections")
    p.set_defaults(command=_verify)

    p = sub.add_parser("runs", parents=[common], help="list the runs of a namespace")
    p.add_argument("namespace")
    p.set_defaults(command=_runs)
    return parser


def _show(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    runs = [args.run] + ([args.run_b] if args.run_b else [])
    timelines = []
    for run_id in runs:
        events = ns.read_events(run_id=run_id, limit=args.limit)
        timelines.append((run_id, events))
        info = ns.run_info(run_id)
        out.print(render.timeline_table(events, title=_run_title(info, len(events))))
    diff = ns.diff(*runs) if len(runs) == 2 else None
    if diff is not None:
        out.print(render.diff_table(diff))
    if args.html:
        _write(args.html, render.html_page(ns.name, timelines, diff))
        out.print(f"wrote {args.html}")
    return 0


def _run_title(info: swarmlog.RunInfo, shown: int) -> str:
    fork = f", fork of {info.parent} at {info.fork_seq}" if info.parent else ""
    return f"run {info.run_id} · {info.agent} · {info.status}{fork} · {shown} events"


def _replay(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    if args.agent is None:
        if args.resume:
            out.print("[red]error:[/] --resume needs --agent")
            return 2
        report = ns.replay(args.run)
    else:
        agent = _load_agent(args.agent)
        try:
            report = ns.replay(args.run, agent, resume=args.resume)
            if hasattr(report, "__await__"):
                import asyncio

                report = asyncio.run(_awaited(report))
        except swarmlog.NonDeterminismError as exc:
            out.print(render.divergence_panel(exc))
            return 1
    out.print(render.replay_table(report))
    return 0 if report.ok else 1


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _load_agent(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise swarmlog.ValidationError(f"--agent must be MODULE:FUNCTION, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise swarmlog.ValidationError(f"cannot load agent {spec!r}: {exc}") from None
    return obj


def _diff(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    diff = ns.diff(args.run_a, args.run_b)
    out.print(render.diff_table(diff, max_rows=args.rows))
    if diff.keys:
        out.print(render.keys_table(diff))
    if args.html:
        timelines = [(r, ns.read_events(run_id=r)) for r in (args.run_a, args.run_b)]
        _write(args.html, render.html_page(ns.name, timelines, diff))
        out.print(f"wrote {args.html}")
    return 0 if diff.identical else 1


def _fork(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    fork = ns.fork(args.run, at=args.at, new_run_id=args.new_run_id, agent=args.agent)
    info = fork.info()
    out.print(f"forked {args.run} after event {info.fork_seq} as {fork.run_id}")
    return 0


def _verify(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    report = ns.verify(projections=args.projections)
    out.print(render.verify_table(report))
    return 0 if report.ok else 1


def _runs(ns: swarmlog.Namespace, args: Any, out: Console) -> int:
    from rich.table import Table

    table = Table(title=f"runs of {ns.name}", header_style="bold")
    for column in ("run", "agent", "status", "events", "began", "fork of"):
        table.add_column(column)
    for info in ns.runs():
        fork = f"{info.parent} @ {info.fork_seq}" if info.parent else ""
        table.add_row(info.run_id, info.agent, info.status, str(info.events), str(info.began_seq), fork)
    out.print(table)
    return 0


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
