"""Issue 11 point 7's figures: the bounded inputs, each in a fresh process.

For each input: the wall time of the operation alone, and the process's peak RSS before it
(imports done, input built) and after it, so the increase is what the operation cost.

    python benchmarks/bench_bounds.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT

PRELUDE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from pytest_promstack import assertions, cases, strict
    from pytest_promstack.model.errors import CaseError
    from pytest_promstack.model.types import AssertionSpec
    def rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def loader(tmp):
        return cases.Loader(Path(tmp), lambda name: name in assertions.BUILTINS, lambda name: "")
    def score(type_, value, output, threshold=None):
        spec = AssertionSpec(type_, value, threshold)
        return assertions.evaluate(spec, assertions.BUILTINS[type_], output, assertions.Context())
""")

CASES = {
    "csv 100k columns rejected": """
        import tempfile
        tmp = tempfile.mkdtemp()
        path = Path(tmp, "wide.csv")
        path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\\n" + ",".join("x" * 100_000) + "\\n")
        before, t = rss(), time.perf_counter()
        try:
            loader(tmp).load(path)
            what = "loaded"
        except CaseError as exc:
            what = str(exc)
    """,
    "yaml alias bomb rejected": """
        import tempfile
        tmp = tempfile.mkdtemp()
        path = Path(tmp, "bomb.yaml")
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]" for p, x in zip("abcdefgh", "bcdefghi")]
        path.write_text("\\n".join(lines) + "\\n")
        before, t = rss(), time.perf_counter()
        try:
            loader(tmp).load(path)
            what = "loaded"
        except CaseError as exc:
            what = str(exc)
    """,
    "levenshtein on 10 MB output": """
        output = "Paris, " * 1_500_000  # 10.5 MB
        before, t = rss(), time.perf_counter()
        what = score("levenshtein", "Paris", output, 5).reason
    """,
    "levenshtein 10 MB vs 10 MB, one edit": """
        output = "Paris, " * 1_500_000
        value = output[:-1] + "!"
        before, t = rss(), time.perf_counter()
        what = score("levenshtein", value, output, 5).reason[:60]
    """,
    "regex (a+)+b on 10 MB output": """
        output = "a" * 10_000_000
        before, t = rss(), time.perf_counter()
        what = score("regex", "(a+)+b", output).reason[:90]
    """,
}

EPILOGUE = """
elapsed = time.perf_counter() - t
print(json.dumps({"s": elapsed, "rss_before": before, "rss_after": rss(), "what": what}))
"""


def run(body: str) -> dict:
    code = PRELUDE + textwrap.dedent(body) + EPILOGUE
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'input':40} {'median s':>9} {'peak MiB':>9} {'+MiB':>7}  result")
    for name, body in CASES.items():
        runs = [run(body) for _ in range(args.repeat)]
        s = statistics.median(r["s"] for r in runs)
        peak = statistics.median(r["rss_after"] for r in runs)
        grew = statistics.median(r["rss_after"] - r["rss_before"] for r in runs)
        print(f"{name:40} {s:9.3f} {peak:9.0f} {grew:7.0f}  {runs[0]['what'][:110]}")


if __name__ == "__main__":
    main()
