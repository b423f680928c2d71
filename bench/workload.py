"""The append workload the benchmarks share: the same event payloads for swarmlog and its peers."""

from __future__ import annotations

EVENT_TYPE = "tool_call"
AGENT = "bench-agent"
BATCH = 100


def payloads(n: int) -> list[dict]:
    """``n`` small, distinct event bodies, like a tool call an agent records (~70 bytes packed)."""
    return [{"tool": "search", "args": {"q": f"refund policy {i}", "k": 5}, "step": i} for i in range(n)]


def chunks(items: list, size: int = BATCH) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]
