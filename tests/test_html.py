"""``swarmlog show --html`` writes one self-contained page that a real browser renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

import swarmlog
from swarmlog.cli import main
from tests.agents import cli_agent
from tests.helpers import assert_store_sound

NS = "acme/support"
CHROMIUM_TIMEOUT_S = 120


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _store(path: str) -> tuple[list, list]:
    mem = swarmlog.open_local(path)
    ns = mem.namespace(NS)
    run = ns.begin_run(run_id="r1", agent="triager")
    cli_agent(run)
    run.end()
    at = next(e.seq for e in ns.read_events(run_id="r1") if e.type == "quota_hit")
    fork = ns.fork("r1", at=at, new_run_id="f1")
    fork.put("triage/decision", {"choice": "escalate"})
    histories = (ns.read_events(run_id="r1"), ns.read_events(run_id="f1"))
    assert_store_sound(ns)
    mem.close()
    return histories


def _top_level_rows(events: list) -> int:
    """Rows a timeline shows at the top level: every event but the traces of an event shown."""
    seqs = {e.seq for e in events}
    nested = [e for e in events if e.type.startswith("trace.") and e.payload.get("event") in seqs]
    return len(events) - len(nested)


def test_the_html_page_of_two_runs_renders_in_headless_chromium(tmp_path, monkeypatch):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`, which .ci/run installs)")
    monkeypatch.setenv("COLUMNS", "200")
    data = str(tmp_path / "data")
    r1, f1 = _store(data)
    page = tmp_path / "runs.html"

    assert main(["--data", data, "show", NS, "r1", "f1", "--html", str(page)]) == 0

    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # no external assets
    assert "<link" not in text
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # The page's script ran over the parsed rows and counted them.
    rows = _top_level_rows(r1) + _top_level_rows(f1)
    assert f'data-rendered-events="{rows}"' in dom
    assert re.search(rf">{rows} events and \d+ nested traces rendered<", dom)
    for ev in r1 + f1:
        assert f'data-seq="{ev.seq}" data-type="{ev.type}"' in dom
    # The diff is there, its first divergence highlighted: r1's next step vs f1's own decision.
    divergence = re.search(r'<tr class="row (\w+) divergence" id="first-divergence">(.*?)</tr>', dom, re.S)
    assert divergence is not None
    at = next(e for e in f1 if e.run_id == "f1").payload["fork_seq"]
    first_after_fork = next(e for e in r1 if e.seq > at)
    assert f"{first_after_fork.seq} {first_after_fork.type}" in divergence.group(2)
    assert "triage/decision" in divergence.group(2)
