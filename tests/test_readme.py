"""Every python code block in README.md runs as written (STYLE #17)."""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blocks() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def test_the_readme_has_the_two_commands_first_and_runnable_examples():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
    assert len(_blocks()) >= 2


def test_every_python_block_of_the_readme_runs(ray_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write ./swarmlog-data
    for block in _blocks():
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
