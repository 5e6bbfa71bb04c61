"""Issue 17's MCP figures: what ``promstack mcp`` adds to a prompt read and to a suite run.

On a copy of the example project (nothing is written there), side by side in one run:

- ``get_prompt("support")`` over MCP, in process (the SDK's direct dispatch) and over stdio
  (JSON-RPC through a pipe to ``promstack mcp``), against ``Client().get_prompt().render()``;
- the ``regression`` suite (11 cases from its cassettes): ``run_suite`` over stdio against
  ``promstack test --suite regression`` started from a shell, alternating, R rounds each.

Medians in milliseconds.

    python benchmarks/bench_mcp.py --repeat 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def reads(client, repeat: int) -> float:
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        await client.get_prompt("support", {"input": "환불하고 싶어요"})
        took.append(time.perf_counter() - start)
    return median_ms(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="suite runs per side")
    parser.add_argument("--reads", type=int, default=200, help="prompt reads per transport")
    args = parser.parse_args()
    import anyio
    from mcp import Client, StdioServerParameters

    from pytest_promstack import Client as SDK
    from pytest_promstack.cli.mcp_server import Project, PromstackMCP

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(ROOT / "example_project", root,
                        ignore=shutil.ignore_patterns("calls.jsonl", "mcp", "__pycache__", ".pytest_cache"))
        cli = [sys.executable, "-m", "pytest_promstack.cli"]
        stdio = StdioServerParameters(command=sys.executable, args=["-m", "pytest_promstack.cli", "mcp"], cwd=str(root))

        async def run() -> dict[str, float]:
            figures = {}
            sdk = SDK(root)
            took = []
            for _ in range(args.reads):
                start = time.perf_counter()
                sdk.get_prompt("support").render(input="환불하고 싶어요")
                took.append(time.perf_counter() - start)
            figures["get_prompt, Python SDK (files, cached)"] = median_ms(took)
            async with Client(PromstackMCP(Project(root, None))) as client:
                figures["get_prompt, MCP in process"] = await reads(client, args.reads)
            start = time.perf_counter()
            async with Client(stdio, mode="legacy") as client:
                figures["MCP stdio: start and handshake"] = (time.perf_counter() - start) * 1000
                figures["get_prompt, MCP over stdio"] = await reads(client, args.reads)
                mcp_runs, cli_runs = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    done = await client.call_tool("run_suite", {"suites": ["regression"]})
                    mcp_runs.append(time.perf_counter() - start)
                    assert done.structured_content["status"] == 0, done
                    start = time.perf_counter()
                    subprocess.run([*cli, "test", "--suite", "regression", "-q"], cwd=root, check=True,
                                   capture_output=True)
                    cli_runs.append(time.perf_counter() - start)
            figures["regression suite, run_suite over stdio"] = median_ms(mcp_runs)
            figures["regression suite, promstack test"] = median_ms(cli_runs)
            return figures

        figures = anyio.run(run)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value:10.2f} ms")
    ratio = figures["regression suite, run_suite over stdio"] / figures["regression suite, promstack test"]
    print(f"run_suite / promstack test: {ratio:.2f}")


if __name__ == "__main__":
    main()
