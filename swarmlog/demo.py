"""``make demo``: a small swarm of agents sharing memory on a local Ray, then what happened.

Four agents run as Ray tasks. Each begins a run in one namespace, campaigns to lead through the
coordinator, does some (simulated) tool work it records as events and traces, and appends its
section to a shared report under a lock, with writes fenced by the lock's token. The leader also
writes the plan. The driver then prints the runs, the events, the leader and ``verify()``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from collections import Counter

import ray
from rich.console import Console
from rich.table import Table

import swarmlog

NAMESPACE = "demo/research-swarm"
AGENTS = ("planner", "researcher", "critic", "writer")
TOPICS = {
    "planner": "scope the refund-policy question",
    "researcher": "collect the three policy documents",
    "critic": "check the claims against the sources",
    "writer": "draft the answer for the customer",
}


@ray.remote(num_cpus=0)
def agent(root: str, name: str, seed: int) -> dict:
    """One agent: a run, a campaign, tool calls, and a fenced write under a lock."""
    rng = random.Random(seed)
    mem = swarmlog.connect(root)
    ns = mem.namespace(NAMESPACE)
    run = ns.begin_run(agent=name, metadata={"topic": TOPICS[name]})

    term = mem.campaign("swarm", name, ttl=30.0, timeout=0.5)
    leader = mem.leader("swarm")
    run.append_event("election", {"leader": leader, "me": name, "term": term.token if term else None})
    if term is not None:
        run.put("plan", {"leader": name, "steps": [TOPICS[a] for a in AGENTS]}, source={"channel": "demo"})
        run.trace("decision", {"choice": f"{name} leads", "confidence": 1.0})

    for step in range(3):
        query = f"{TOPICS[name]} (step {step + 1})"
        with run.batch() as b:
            call = b.append_event("tool_call", {"tool": "search", "query": query})
            b.trace(
                "tool_call",
                {"tool": "search", "args": {"query": query}, "hits": rng.randint(1, 9)},
                event=call,
            )
            b.trace("confidence", {"value": round(rng.uniform(0.5, 0.99), 2), "about": query}, event=call)
        time.sleep(rng.uniform(0.01, 0.05))
    run.trace("assumption", {"text": f"{name} assumes the documents are current"})

    with mem.lock("report", holder=name, ttl=10.0) as lock:
        report = ns.entry("report")
        sections = list(report.value) if report else []
        sections.append({"by": name, "text": f"{name}: {TOPICS[name]} — done"})
        run.put("report", sections, expected_version=report.version if report else 0, fence=lock)
        run.append_event("report.section", {"by": name, "fence": lock.token})
    if term is not None:
        mem.resign(term)
    info = run.end(status="ok", summary={"steps": 3})
    return {"agent": name, "run_id": run.run_id, "led": term is not None, "events": info.events}


def summarize(root: str, results: list[dict], console: Console) -> None:
    mem = swarmlog.connect(root)
    ns = mem.namespace(NAMESPACE)
    runs = Table(title=f"Runs in {NAMESPACE!r}")
    for col in ("agent", "run", "status", "events", "led"):
        runs.add_column(col)
    for info in ns.runs():
        led = next(r["led"] for r in results if r["run_id"] == info.run_id)
        runs.add_row(info.agent, info.run_id, info.status, str(info.events), "yes" if led else "")
    console.print(runs)

    events = ns.read_events()
    kinds = Counter(e.type for e in events)
    table = Table(title=f"{len(events)} events, by type")
    table.add_column("type")
    table.add_column("count", justify="right")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    console.print(table)

    plan = ns.entry("plan")
    console.print(f"[bold]Leader:[/bold] {plan.value['leader']} (wrote the plan at seq {plan.version})")
    console.print("[bold]Report[/bold] (appended under a lock, fenced writes):")
    for section in ns.get("report"):
        console.print(f"  - {section['text']}")
    why = ns.why("report")
    console.print(f"[bold]why('report'):[/bold] {len(why)} writes, by " + ", ".join(e.agent for e in why))
    decisions = ns.traces(kind="decision")
    console.print(
        f"[bold]Traces:[/bold] {len(ns.traces())} in all, decisions: {[t.data['choice'] for t in decisions]}"
    )
    report = ns.verify(projections=True)
    colour = "green" if report.ok else "red"
    console.print(
        f"[bold]verify():[/bold] [{colour}]ok={report.ok}[/{colour}], {report.checked} events checked"
    )
    mem.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="demo-data", help="data directory (wiped first)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.data)
    shutil.rmtree(root, ignore_errors=True)
    console = Console()
    console.print(f"[bold]swarmlog demo[/bold]: {len(AGENTS)} agents on a local Ray, data in {root}")
    started = time.monotonic()
    swarmlog.connect(root)  # starts the local Ray instance
    console.print(f"Ray is up ({time.monotonic() - started:.1f} s); running the swarm…")
    results = ray.get([agent.remote(root, name, seed) for seed, name in enumerate(AGENTS)], timeout=300)
    console.print(f"The swarm finished in {time.monotonic() - started:.1f} s.\n")
    summarize(root, results, console)


if __name__ == "__main__":
    main()
