"""Issue 17's figure: the latency of ``get_prompt`` by label, cold and cached, from the registry's
files and from ``promstack serve`` (Python; the TypeScript SDK's figures join when it lands).

A registry of the example project's prompts (a copy, so nothing is written there); for each
source, side by side in one run:

- cold: a new ``Client`` and its first ``get_prompt("support", label="production")`` (reads
  the index and the version's file, or two HTTP requests);
- cached: the same call again within the label TTL (no reading at all);
- revalidated: the call after the label's TTL, the version kept (files: the index read again;
  HTTP: one request answered 304 by its ETag).

Medians of R rounds, in microseconds.

    python benchmarks/bench_get_prompt.py --repeat 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(make, repeat: int) -> dict[str, float]:
    cold, cached, revalidated = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        client = make()
        client.get_prompt("support", label="production")
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.get_prompt("support", label="production")
        cached.append(time.perf_counter() - start)
        client.clock = lambda: time.monotonic() + 3600  # past the TTL: the label is read again
        start = time.perf_counter()
        client.get_prompt("support", label="production")
        revalidated.append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e6 for name, values in
            (("cold", cold), ("cached", cached), ("revalidated", revalidated))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = "127.0.0.1"
    from pytest_promstack import Client
    from pytest_promstack.cli.serve import RegistryAPI, Server

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(ROOT / "example_project", root, ignore=shutil.ignore_patterns("cache", "*.jsonl"))
        server = Server(RegistryAPI(root), "127.0.0.1", 0)
        try:
            rows = {"files": measure(lambda: Client(root), args.repeat),
                    "promstack serve": measure(lambda: Client(root, url=server.url), args.repeat)}
        finally:
            server.close()
    print(f"get_prompt('support', label='production'), medians of {args.repeat} rounds (µs)")
    print(f"  {'source':<18}{'cold':>10}{'cached':>10}{'revalidated':>13}")
    for name, r in rows.items():
        print(f"  {name:<18}{r['cold']:>10.0f}{r['cached']:>10.1f}{r['revalidated']:>13.0f}")


if __name__ == "__main__":
    main()
