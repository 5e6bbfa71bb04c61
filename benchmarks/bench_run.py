"""Benchmark of `pytest --promstack` against the loopback server (issue 2's figures).

Measures, side by side in one run and repeated (medians printed):
  * cold: N cases at latency L, concurrency C, cache off, beside the limit N*L/C and beside
    a bare script that awaits litellm.acompletion under a semaphore on the same server;
  * warm: the same run again with the cache on and filled (no request is made);
  * import: `import pytest_promstack.plugin` in a fresh interpreter.

    python benchmarks/bench_run.py --cases 1000 --latency 0.2 --concurrency 64 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE = textwrap.dedent("""
    import asyncio, os, sys, time
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    start = time.perf_counter()
    import litellm
    n, c, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    async def main():
        sem = asyncio.Semaphore(c)
        async def one(i):
            async with sem:
                r = await litellm.acompletion(model="openai/bench", api_base=url, api_key="x",
                    messages=[{"role": "user", "content": f"question {i}"}], temperature=0, max_tokens=64)
                return r.choices[0].message.content
        return await asyncio.gather(*(one(i) for i in range(n)))
    out = asyncio.run(main())
    assert len(out) == n
""")


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def make_project(root: Path, url: str, n: int, concurrency: int) -> None:
    (root / "cases").mkdir()
    rows = ["input,__expected"] + [f"question {i},contains:question {i}" for i in range(n)]
    (root / "cases/bench.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "promstack.yaml").write_text(json.dumps({
        "models": [{"name": "bench", "model": "openai/bench", "api_base": url, "api_key_env": "BENCH_KEY"}],
        "defaults": {"temperature": 0, "max_tokens": 64},
        "concurrency": concurrency,
        "suites": {"bench": {"tests": ["cases/*.csv"]}},
    }), encoding="utf-8")


def timed(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "BENCH_KEY": "x", "OPENAI_API_KEY": "x"}
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server, url = start_server(args.latency)
    results: dict[str, list[float]] = {"promstack cold": [], "bare litellm": [], "promstack warm": [],
                                       "import plugin": [], "import pytest": []}
    pytest_cmd = [sys.executable, "-m", "pytest", "--promstack", "-q", "-p", "no:cacheprovider",
                  "-p", "no:randomly", "--no-header"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            make_project(project, url, args.cases, args.concurrency)
            for _ in range(args.repeat):
                results["bare litellm"].append(timed([sys.executable, "-c", BARE, str(args.cases),
                                                      str(args.concurrency), url], project))
                results["promstack cold"].append(timed([*pytest_cmd, "--promstack-cache=off"], project))
                timed([*pytest_cmd, "--promstack-cache=refresh"], project)  # fill the cache
                results["promstack warm"].append(timed(pytest_cmd, project))
                results["import plugin"].append(timed([sys.executable, "-c", "import pytest_promstack.plugin"],
                                                      project))
                results["import pytest"].append(timed([sys.executable, "-c", "import pytest"], project))
    finally:
        server.terminate()
    limit = args.cases * args.latency / args.concurrency
    print(f"N={args.cases} L={args.latency}s C={args.concurrency} repeat={args.repeat}  limit N*L/C = {limit:.2f} s")
    med = {k: statistics.median(v) for k, v in results.items()}
    for name, values in results.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:15s} median {med[name]:6.2f} s   runs: {runs}")
    print(f"  cold / limit        = {med['promstack cold'] / limit:.2f}x")
    print(f"  cold / bare litellm = {med['promstack cold'] / med['bare litellm']:.2f}x")
    print(f"  warm / cold         = {med['promstack warm'] / med['promstack cold']:.2f}x")
    print(f"  plugin import beyond pytest's = {1000 * (med['import plugin'] - med['import pytest']):.0f} ms")


if __name__ == "__main__":
    main()
