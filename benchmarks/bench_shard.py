"""Issue 18's sharding figure: one job against the same suite split into two jobs running at
once (`--promstack-shard 1/2` and `2/2`, each its own process, as two CI runners would), then
`promstack report` merging their results. N cases at latency L, concurrency C per job, cache
off; the loopback server answers both jobs. Medians of R rounds, alternating the two sides.

    python benchmarks/bench_shard.py --cases 1000 --latency 0.2 --concurrency 16 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import PYTEST, Server, make_project, run  # noqa: E402


def sharded(project: Path, count: int) -> tuple[float, float]:
    """(wall time of the jobs running at once, of the merge after them)."""
    env = {**os.environ, "BENCH_KEY": "x", "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    jobs = [subprocess.Popen([*PYTEST, "--promstack", "--promstack-cache=off", f"--promstack-shard={i}/{count}",
                              f"--promstack-json=shard-{i}.json"], cwd=project, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(1, count + 1)]
    for job in jobs:
        if job.wait() != 0:
            raise SystemExit(f"a shard failed ({job.returncode})")
    jobs_done = time.perf_counter() - start
    merge = run([sys.executable, "-m", "pytest_promstack.cli", "report",
                 *(f"shard-{i}.json" for i in range(1, count + 1)), "--json", "merged.json", "-o", "merged.html"],
                project)[0]
    return jobs_done, merge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = Server(args.latency)
    one, two, merges = [], [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            make_project(project, server.url, args.cases, args.concurrency)
            for i in range(args.repeat):
                for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                    if side == 0:
                        one.append(run([*PYTEST, "--promstack", "--promstack-cache=off"], project)[0])
                    else:
                        jobs, merge = sharded(project, 2)
                        two.append(jobs)
                        merges.append(merge)
    finally:
        server.stop()
    limit = args.cases * args.latency / args.concurrency
    print(f"N={args.cases}, L={args.latency} s, C={args.concurrency} per job, cache off; limit N*L/C = {limit:.1f} s "
          "for one job")
    print(f"  one job                      median {statistics.median(one):6.2f} s   runs: {one}")
    print(f"  two shards at once           median {statistics.median(two):6.2f} s   runs: {two}")
    print(f"  promstack report (merge)     median {statistics.median(merges):6.2f} s")
    print(f"  two shards / one job = {statistics.median(two) / statistics.median(one):.2f}x")


if __name__ == "__main__":
    main()
