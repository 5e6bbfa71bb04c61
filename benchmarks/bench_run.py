"""Issue 2's figures for `pytest --promstack` against the loopback server, side by side in
one run and repeated (medians printed):

  * cold: N cases at latency L, concurrency C, cache off, beside the limit N*L/C and beside
    a bare script that awaits litellm.acompletion under a semaphore on the same server;
  * warm: the same run again with the cache on and filled (no request is made);
  * import: `import pytest_promstack.plugin` in a fresh interpreter, beside `import pytest`.

    python benchmarks/bench_run.py --cases 1000 --latency 0.2 --concurrency 64 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BARE, PYTEST, Server, make_project, report, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = Server(args.latency)
    results: dict[str, list[float]] = {"promstack cold": [], "bare litellm": [], "promstack warm": [],
                                       "import plugin": [], "import pytest": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            make_project(project, server.url, args.cases, args.concurrency)
            for _ in range(args.repeat):
                bare = [sys.executable, "-c", BARE, str(args.cases), str(args.concurrency), server.url]
                results["bare litellm"].append(run(bare, project)[0])
                results["promstack cold"].append(run([*PYTEST, "--promstack", "--promstack-cache=off"], project)[0])
                run([*PYTEST, "--promstack", "--promstack-cache=refresh"], project)  # fill the cache
                results["promstack warm"].append(run([*PYTEST, "--promstack"], project)[0])
                plugin = [sys.executable, "-c", "import pytest_promstack.plugin"]
                results["import plugin"].append(run(plugin, project)[0])
                results["import pytest"].append(run([sys.executable, "-c", "import pytest"], project)[0])
    finally:
        server.stop()
    limit = args.cases * args.latency / args.concurrency
    med = report(f"N={args.cases} L={args.latency}s C={args.concurrency}; limit N*L/C = {limit:.2f} s", results)
    print(f"  cold / limit        = {med['promstack cold'] / limit:.2f}x")
    print(f"  cold / bare litellm = {med['promstack cold'] / med['bare litellm']:.2f}x")
    print(f"  warm / cold         = {med['promstack warm'] / med['promstack cold']:.2f}x")
    print(f"  plugin import beyond pytest's = {1000 * (med['import plugin'] - med['import pytest']):.0f} ms")


if __name__ == "__main__":
    main()
