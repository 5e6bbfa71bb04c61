"""Shared pieces of the benchmarks: the loopback server, projects, timing, medians."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The reference: litellm.acompletion under a semaphore, nothing else (argv: n, concurrency, url).
BARE = textwrap.dedent("""
    import asyncio, os, sys
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
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
    assert len(asyncio.run(main())) == n
""")



class Server:
    """tests/support/fake_openai.py in its own process."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/stats") as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_project(root: Path, url: str, n: int, concurrency: int, model: str = "openai/bench",
                 **extra: object) -> None:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    rows = ["input,__expected"] + [f"question {i},contains:question {i}" for i in range(n)]
    (root / "cases/bench.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "promstack.yaml").write_text(json.dumps({
        "models": [{"name": "bench", "model": model, "api_base": url, "api_key_env": "BENCH_KEY"}],
        "defaults": {"temperature": 0, "max_tokens": 64},
        "concurrency": concurrency,
        "log": None,
        "suites": {"bench": {"tests": ["cases/*.csv"]}},
        **extra,
    }), encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def run(cmd: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the child, stdout); ``env`` is added to this process's."""
    env = {**os.environ, "BENCH_KEY": "x", "OPENAI_API_KEY": "x", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if check and out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return elapsed, max(peak, before) / 1024, out.stdout


def bytecode(folder: Path) -> dict[str, str]:
    """Runs that load bytecode, as a user's do: written on the first run into ``folder`` (the
    checkouts stay clean), read on the next. The machines set PYTHONDONTWRITEBYTECODE=1, under
    which our modules compile from source every run while pytest's installed ones have
    bytecode: a start-up comparison of the two would measure the compiler, not the code."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(folder)}


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header"]


def report(title: str, results: dict[str, list[float]], unit: str = "s") -> dict[str, float]:
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(title)
    for name, values in results.items():
        if values:
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name:34s} median {med[name]:8.2f} {unit}   runs: {runs}")
    return med


def report_sources(title: str, results: dict[str, dict[str, list[float]]], labels: list[str]) -> None:
    """One row per (measure, source): median, ratio to the first source's median, the runs."""
    print(title)
    width, rows = max(len(label) for label in labels), max(len(name) for name in results)
    for name, by_source in results.items():
        first = statistics.median(by_source[labels[0]])
        for label in labels:
            values = by_source[label]
            med = statistics.median(values)
            runs = ", ".join(f"{v:.3f}" for v in values)
            print(f"  {name:{rows}s}  {label:{width}s}  median {med:7.3f} s  x{med / first:5.2f}   runs: {runs}")
