"""A small multi-step agent for the replay tests: tools, a model stub, randomness, the clock.

Every tool counts its calls in ``Tools.calls`` so a test can show that a replay calls none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import swarmlog


class QuotaExceeded(Exception):
    """A tool error the agent handles (its class is importable, so a replay rebuilds it)."""


@dataclass
class Tools:
    calls: list = field(default_factory=list)
    rank_bonus: int = 0  # changing this is "changing a tool's code"

    def search(self, query: str, limit: int = 3) -> list[str]:
        self.calls.append(("search", query))
        return [f"{query}/doc-{i}" for i in range(limit)]

    def model(self, prompt: str, temperature: float = 0.0) -> dict:
        self.calls.append(("model", prompt))
        return {"text": f"summary of {prompt}", "tokens": len(prompt)}

    def quota(self, user: str) -> int:
        self.calls.append(("quota", user))
        raise QuotaExceeded(f"quota exceeded for {user}")

    def rank(self, hits: list[str]) -> list[str]:
        """A deterministic helper the agent calls directly (not recorded)."""
        return sorted(hits, key=lambda h: (len(h) + self.rank_bonus * h.count("1"), h), reverse=True)


def triage_agent(tools: Tools, *, decide=None):
    """An agent: search, rank, ask the model, decide (``decide(summary, roll)``), write."""

    def agent(run):
        hits = run.call("search", tools.search, "refund policy", limit=3)
        roll = run.random()
        started = run.now()
        ticket = run.uuid()
        ranked = tools.rank(hits)
        run.put("triage/hits", ranked)
        try:
            run.call("quota", tools.quota, "alice")
        except QuotaExceeded as exc:
            run.append_event("quota_hit", {"message": str(exc)})
        summary = run.call("model", tools.model, ranked[0], temperature=0.2)
        ev = run.append_event("summary", summary)
        run.trace("model_output", {"text": summary["text"]}, event=ev.seq)
        choice = (decide or _default_decision)(summary, roll)
        with run.batch() as b:
            put = b.put("triage/decision", {"choice": choice, "ticket": ticket, "at": started})
            b.trace("decision", {"choice": choice, "confidence": 0.8}, event=put)
        try:
            run.put("triage/hits", "stale", expected_version=1)
        except swarmlog.ConflictError:
            run.append_event("conflict_seen", {"key": "triage/hits"})
        assert run.get("triage/hits") == ranked
        run.delete("triage/never-written")
        return choice

    return agent


def _default_decision(summary: dict, roll: float) -> str:
    return "refund" if summary["tokens"] > 5 else "escalate"


def cli_agent(run):
    """The triage agent with fresh tools, loadable as ``tests.agents:cli_agent``."""
    return triage_agent(Tools())(run)


def cli_changed_agent(run):
    """The same agent with a changed helper: its replay diverges."""
    return triage_agent(Tools(rank_bonus=100))(run)
