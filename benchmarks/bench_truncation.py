"""The rerun of a suite whose answers stop at max_tokens, on the bundled offline model.

A base model almost always stops at ``max_tokens``. Before answers cut at max_tokens were
cached, an identical rerun called the model again for every such case. This runs the same
suite twice (cold, then the rerun) and prints both wall times and the rerun's cache hits, for
this checkout or, with ``--source DIR``, for another checkout of the package (e.g. an older
commit in a git worktree), so the two can be measured side by side:

    git worktree add --detach /tmp/before 2c1355c
    python benchmarks/bench_truncation.py --source /tmp/before --source .

Each checkout runs with its own entry points and is checked to be the one loaded
(benchmarks/sources.py).

Needs the ``local`` extra (llama-cpp-python and the Gemma 3 270M package).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, run
from benchmarks.sources import Source, prepare

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


def suite(folder: Path, source: Source) -> tuple[float, str]:
    seconds, _, out = run(source.pytest("--promstack", "-p", "no:cacheprovider"), folder, check=False,
                          env=source.env())
    source.check(out)
    hits = re.findall(r"calls (\d+/\d+) done, (\d+) from cache", out)
    cut = re.search(r"(\d+) of \d+ cases have an answer cut at max_tokens", out)
    return seconds, f"{hits[-1][1]} of {hits[-1][0].split('/')[1]} from cache" + (
        f", {cut.group(1)} cut at max_tokens" if cut else "") if hits else out[-500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--source", action="append", default=[], help="a checkout of pytest-promstack (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promstack-sources-") as meta:
        sources = prepare([Path(s).resolve() for s in args.source] or [ROOT], Path(meta))
        for source in sources:
            with tempfile.TemporaryDirectory(prefix="promstack-trunc-") as tmp:
                folder = Path(tmp)
                project(folder, args.cases)
                cold, cold_info = suite(folder, source)
                rerun, rerun_info = suite(folder, source)
                print(f"{source.label}: {args.cases} cases, first run {cold:.1f} s ({cold_info}); "
                      f"identical rerun {rerun:.1f} s ({rerun_info})", flush=True)


if __name__ == "__main__":
    main()
