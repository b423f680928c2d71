"""Child process of the coordinator crash tests: ``python -m tests.coord_crash_child PATH MODE``.

``work``: grants leases and CAS-writes records in a loop with ``durability="fsync"``, printing
one line per acknowledged call (``G name token`` / ``C name version value``) until it is killed.
``die-after-grant``: prints a few grants, then kills itself (SIGKILL) from the change hook, i.e.
after a grant is journaled but before it is answered.
"""

from __future__ import annotations

import os
import signal
import sys

from coordination import CoordinatorEngine
from journal.settings import Settings

NAMES = 4


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    engine = CoordinatorEngine(path, Settings(durability="fsync"))
    out = sys.stdout
    if mode == "die-after-grant":
        for i in range(3):
            lease = engine.acquire_lease(f"lease/{i}", "child", 30.0)
            out.write(f"G {lease.name} {lease.token}\n")
            out.flush()
        engine.on_change(lambda kind, name, revision: os.kill(os.getpid(), signal.SIGKILL))
        lease = engine.acquire_lease("lease/last", "child", 30.0)
        out.write(f"G {lease.name} {lease.token}\n")  # never reached
        out.flush()
        return
    versions = {f"rec/{i}": engine.read_state(f"rec/{i}").version for i in range(NAMES)}
    i = 0
    while True:
        name = f"rec/{i % NAMES}"
        ok, rec = engine.cas(name, versions[name], i)
        assert ok, rec  # this process is the only writer
        versions[name] = rec.version
        out.write(f"C {name} {rec.version} {i}\n")
        lease = engine.acquire_lease(f"lease/{i % NAMES}", "child", 30.0)
        out.write(f"G {lease.name} {lease.token}\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    main()
