"""The ``swarmlog`` command line, run in process through ``main(argv)`` and once as a process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import swarmlog
from swarmlog.cli import main
from tests.agents import cli_agent
from tests.helpers import assert_store_sound

NS = "acme/support"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store with one recorded run ``r1`` and a fork ``f1`` that decided differently."""
    monkeypatch.setenv("COLUMNS", "240")  # rich wraps at the terminal width
    path = str(tmp_path / "data")
    mem = swarmlog.open_local(path)
    ns = mem.namespace(NS)
    run = ns.begin_run(run_id="r1", agent="triager")
    cli_agent(run)
    run.end()
    history = ns.read_events(run_id="r1")
    at = next(e.seq for e in history if e.type == "quota_hit")
    fork = ns.fork("r1", at=at, new_run_id="f1")
    fork.put("triage/decision", {"choice": "escalate"})
    mem.close()
    yield path
    mem = swarmlog.open_local(path)  # whatever the command did, the store is sound
    assert_store_sound(mem.namespace(NS))
    mem.close()


def _history(path, run_id):
    mem = swarmlog.open_local(path)
    try:
        return mem.namespace(NS).read_events(run_id=run_id)
    finally:
        mem.close()


def test_show_prints_every_event_of_the_run_with_traces_nested(store, capsys):
    assert main(["--data", store, "show", NS, "r1"]) == 0
    out = capsys.readouterr().out
    for ev in _history(store, "r1"):
        assert ev.type in out
    assert "└ trace.tool_call" in out
    assert "└ trace.decision" in out


def test_replay_without_an_agent_refolds_and_reports(store, capsys):
    assert main(["--data", store, "replay", NS, "r1"]) == 0
    out = capsys.readouterr().out
    assert "replay of r1 (fold)" in out
    assert f"events checked     │ {len(_history(store, 'r1'))}" in out


def test_replay_with_an_agent_passes_and_with_changed_code_shows_the_divergence(store, capsys):
    assert main(["--data", store, "replay", NS, "r1", "--agent", "tests.agents:cli_agent"]) == 0
    assert "calls replayed" in capsys.readouterr().out
    assert main(["--data", store, "replay", NS, "r1", "--agent", "tests.agents:cli_changed_agent"]) == 1
    out = capsys.readouterr().out
    first_put = next(e for e in _history(store, "r1") if e.type == "kv.put")
    assert "replay diverged" in out and f"event {first_put.seq} (kv.put)" in out


def test_diff_reports_the_first_divergence_and_the_keys(store, capsys):
    assert main(["--data", store, "diff", NS, "r1", "f1"]) == 1
    out = capsys.readouterr().out
    index = [e.type for e in _history(store, "r1")].index("quota_hit") + 1
    assert f"first divergence at #{index}" in out
    assert "triage/decision" in out and "escalate" in out
    assert main(["--data", store, "diff", NS, "r1", "r1"]) == 0
    assert "identical" in capsys.readouterr().out


def test_fork_creates_a_branch_the_store_remembers(store, capsys):
    assert main(["--data", store, "fork", NS, "r1", "--at", "3", "--new-run-id", "f2"]) == 0
    assert "as f2" in capsys.readouterr().out
    mem = swarmlog.open_local(store)
    ns = mem.namespace(NS)
    info = ns.run_info("f2")
    assert (info.parent, info.fork_seq, info.agent) == ("r1", 3, "triager")
    assert_store_sound(ns)
    mem.close()


def test_verify_and_runs(store, capsys):
    assert main(["--data", store, "verify", NS, "--projections"]) == 0
    assert main(["--data", store, "runs", NS]) == 0
    out = capsys.readouterr().out
    assert "r1 @" in out and "f1" in out


def test_errors_exit_with_status_2_and_say_why(store, tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nowhere"), "show", NS, "r1"]) == 2
    assert "no swarmlog store" in capsys.readouterr().err
    assert main(["--data", store, "show", "other/ns", "r1"]) == 2
    assert "no namespace 'other/ns'" in capsys.readouterr().err
    assert main(["--data", store, "show", NS, "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
    assert main(["--data", store, "replay", NS, "r1", "--agent", "tests.agents:missing"]) == 2
    assert "cannot load agent" in capsys.readouterr().err


def test_the_installed_command_runs_as_a_process(store):
    script = os.path.join(os.path.dirname(sys.executable), "swarmlog")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "swarmlog.cli"]
    done = subprocess.run(
        [*command, "show", NS, "f1", "--data", store],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "240"},
    )
    assert done.returncode == 0, done.stderr
    assert "fork of r1" in done.stdout and "triage/decision" in done.stdout


def test_a_store_served_by_ray_actors_is_reached_with_address(ray_mem, store_path, capsys):
    ns = ray_mem.namespace(NS)
    run = ns.begin_run(run_id="live", agent="a")
    run.put("k", 1)
    # The actors hold the store's lock: opening it in process is refused, with a hint.
    assert main(["--data", store_path, "verify", NS]) == 2
    assert "--address auto" in capsys.readouterr().err
    assert main(["--data", store_path, "--address", "auto", "verify", NS]) == 0
    assert "ok" in capsys.readouterr().out.lower()
    assert main(["--data", store_path, "--address", "auto", "show", NS, "live"]) == 0
    assert "kv.put" in capsys.readouterr().out
    assert_store_sound(ns)
