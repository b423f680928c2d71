"""Run the benchmarks: every ``bench/bench_*.py`` module's ``main()``, in name order.

    python -m bench                    # all of them
    python -m bench append recovery    # a subset (``bench_`` prefix optional)
    python -m bench --quick            # smaller sizes: a smoke run, figures not meaningful

Figures are printed, never asserted: each benchmark measures its peer in the same run and
prints the ratio, so the machine's speed and noise cancel out as far as they can.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time

import bench
from bench.common import Config, machine_lines


def discover() -> list[str]:
    """Names (without the ``bench_`` prefix) of every benchmark module, in name order."""
    return sorted(
        m.name[len("bench_") :] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all): " + " ".join(discover()))
    parser.add_argument("--quick", action="store_true", help="shrink sizes for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median)")
    args = parser.parse_args(argv)

    available = discover()
    wanted = [n.removeprefix("bench_").removesuffix(".py") for n in args.names] or available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    config = Config(quick=args.quick, repeat=args.repeat or (1 if args.quick else 3))

    print("swarmlog benchmarks" + (" (--quick: sizes shrunk, figures not meaningful)" if args.quick else ""))
    for line in machine_lines():
        print("  " + line)
    started = time.perf_counter()
    for name in wanted:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n== {name} " + "=" * max(0, 86 - len(name)))
        t0 = time.perf_counter()
        # Benchmarks may take the run's Config or nothing (then they size themselves).
        if inspect.signature(module.main).parameters:
            module.main(config)
        else:
            module.main()
        print(f"-- {name} took {time.perf_counter() - t0:.1f} s")
    print(f"\nall benchmarks took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
