"""`make demo` runs: the swarm finishes and its store verifies."""

from __future__ import annotations

import swarmlog
from swarmlog import demo


def test_the_demo_swarm_runs_to_a_verified_store(ray_session, tmp_path, capsys):
    root = tmp_path / "demo"
    demo.main(["--data", str(root)])
    out = capsys.readouterr().out
    assert "verify(): ok=True" in out
    mem = swarmlog.connect(str(root))
    try:
        ns = mem.namespace(demo.NAMESPACE)
        assert {r.agent for r in ns.runs(status="ok")} == set(demo.AGENTS)
        assert len(ns.get("report")) == len(demo.AGENTS)
        assert ns.verify().ok
    finally:
        mem.shutdown()
