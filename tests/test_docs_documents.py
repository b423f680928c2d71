"""The code blocks of docs/documents.md run, in order, as one program (STYLE #17)."""

from __future__ import annotations

import re
from pathlib import Path

import swarmlog
from tests.helpers import assert_store_sound

DOC = Path(__file__).resolve().parent.parent / "docs" / "documents.md"


def test_the_code_blocks_of_the_documents_guide_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), str(DOC), "exec"), {"__name__": "docs_documents"})
    mem = swarmlog.open_local("./swarmlog-data")
    ns = mem.namespace("acme/support")
    assert ns.get("counter") == 2
    assert_store_sound(ns)
    mem.close()
