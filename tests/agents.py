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


class Neighbour:
    """Another agent of the namespace that writes while the recorded agent works: it is called
    through ``run.call``, so a replay does not call it, yet its writes stay in the journal."""

    def __init__(self, ns):
        self.ns = ns
        self.calls = 0

    def sync(self) -> str:
        self.calls += 1
        run = self.ns.begin_run(agent="neighbour")
        run.collection("notes").insert_one({"kind": "fact", "n": 7, "by": "neighbour"})
        run.put("counter", "the neighbour's")
        return "synced"


def memory_agent(neighbour: Neighbour, *, bump: int = 10, embedding=(1.0, 0.0, 0.0, 0.0)):
    """Documents, indexes, vectors, transactions and a mixed batch, with a neighbour writing in
    between; returns everything the writes returned. ``bump`` and ``embedding`` are "code"."""

    def agent(run):
        notes = run.collection("notes")
        out = {"first": notes.insert_one({"kind": "fact", "n": 1})}  # a generated _id
        out["many"] = notes.insert_many([{"kind": "fact", "n": 2}, {"_id": "todo-1", "kind": "todo"}])
        run.call("sync", neighbour.sync)
        out["bumped"] = notes.update_many({"kind": "fact"}, {"$inc": {"n": bump}})  # the neighbour's too
        out["upserted"] = notes.update_one({"kind": "idea"}, {"$set": {"n": 0}}, upsert=True)
        out["replaced"] = notes.replace_one({"_id": "todo-1"}, {"kind": "done"})
        out["unchanged"] = notes.update_one({"_id": "todo-1"}, {"$set": {"kind": "done"}})  # no event
        out["indexes"] = [
            notes.create_index("kind"),
            notes.create_index("kind"),  # already there: no event
            notes.drop_index("kind"),
            notes.drop_index("kind"),
        ]
        out["deleted"] = [notes.delete_one({"_id": out["first"]}), notes.delete_many({"kind": "fact"})]
        vecs = run.vectors("memories", dim=4, metric="l2")
        out["revs"] = [
            vecs.upsert("m-1", list(embedding), {"kind": "fact"}),
            vecs.upsert_many([("m-2", [0, 1, 0, 0], None), ("m-3", [0, 0, 1, 0], {"kind": "idea"})]),
        ]
        out["gone"] = [vecs.delete("m-2"), vecs.delete_many(["m-3", "m-404"]), vecs.compact(), vecs.compact()]
        out["hits"] = [hit.id for hit in vecs.search([1, 0, 0, 0], k=1)]
        run.put("counter", 0)
        out["txn"] = run.txn(
            reads={"counter": run.entry("counter").version},
            writes={"counter": 1, ("notes", "cfg"): {"mode": "safe"}},
        )
        try:
            run.txn(reads={"counter": 1}, writes={"counter": 99})  # a stale read: refused
        except swarmlog.ConflictError as exc:
            run.append_event("txn_refused", {"key": exc.key})
        for attempt in run.transaction(retries=3):
            with attempt as tx:
                n = tx.get("counter")
                cfg = tx.get(("notes", "cfg"))
                tx.put("counter", n + 1)
                tx.put(("notes", "cfg"), {**cfg, "seen": n + 1})
        out["transaction"] = attempt.tx.results
        with run.batch() as b:
            b.put("summary", {"facts": out["bumped"].matched})
            b.collection("notes").insert_one({"kind": "summary"})
            b.vectors(vecs).upsert("m-4", [0, 0, 0, 1])
        out["batch"] = b.results
        return out

    return agent
