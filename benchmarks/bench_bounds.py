"""Issue 11 point 7's figures: the bounded inputs, each in a fresh process.

For each input: the wall time of the operation alone, and the process's peak RSS before it
(imports done, input built) and after it, so the increase is what the operation cost.
Templates render as at collection (compiled in the bounded sandbox, rendered in the main
thread, so under its CPU limit); unbounded, the nested loops never end and the string takes
a gigabyte.

    python benchmarks/bench_bounds.py --repeat 3
    python benchmarks/bench_bounds.py --repeat 1 --only template
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
    from pytest_promstack.model.errors import CaseError
    from pytest_promstack.model.types import AssertionSpec
    from pytest_promstack.plan import cases
    from pytest_promstack.score import assertions
    from pytest_promstack.util.sandbox import TemplateLimitError, compile_template
    def rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def loader(tmp):
        return cases.Loader(Path(tmp), lambda name: name in assertions.BUILTINS, lambda name: "")
    def a_file(name, text):
        import tempfile
        tmp = tempfile.mkdtemp()
        Path(tmp, name).write_text(text)
        return tmp, Path(tmp, name)
    def load(tmp, path):
        try:
            loader(tmp).load(path)
            return "loaded"
        except CaseError as exc:
            return str(exc)
    def score(type_, value, output, threshold=None):
        spec = AssertionSpec(type_, value, threshold)
        return assertions.evaluate(spec, assertions.BUILTINS[type_], output, assertions.Context())
    def render(text, **variables):
        try:
            return "rendered " + repr(compile_template(text).render(**variables)[:40])
        except TemplateLimitError as exc:
            return str(exc)
""")

CASES = {
    "csv 100k columns rejected": """
        header, row = ",".join(f"c{i}" for i in range(100_000)), ",".join("x" * 100_000)
        tmp, path = a_file("wide.csv", header + "\\n" + row + "\\n")
        before, t = rss(), time.perf_counter()
        what = load(tmp, path)
    """,
    "yaml alias bomb rejected": """
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]" for p, x in zip("abcdefgh", "bcdefghi")]
        tmp, path = a_file("bomb.yaml", "\\n".join(lines) + "\\n")
        before, t = rss(), time.perf_counter()
        what = load(tmp, path)
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
    "template: nested range loops": """
        text = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ input }}"
        before, t = rss(), time.perf_counter()
        what = render(text, input="x")
    """,
    "template: 'x' * 1000000000": """
        before, t = rss(), time.perf_counter()
        what = render("{{ ('x' * 1000000000)|length }}")
    """,
    "template: doubling with ~ in a loop": """
        text = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        before, t = rss(), time.perf_counter()
        what = render(text)
    """,
    "template: keeping 4 MB texts in a list": """
        text = "{% set l = [] %}{% for i in range(100000) %}{{ l.append(('x' * 4000000) ~ i) }}{% endfor %}"
        before, t = rss(), time.perf_counter()
        what = render(text)
    """,
    "json-schema ^(a+)+$ on a 50k value": """
        schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": "^(a+)+$"}}}
        output = json.dumps({"v": "a" * 50_000 + "!"})
        before, t = rss(), time.perf_counter()
        what = score("json-schema", schema, output).reason[:90]
    """,
    "contains-json on 1 MB of [": """
        output = "[" * 1_000_000
        before, t = rss(), time.perf_counter()
        what = score("contains-json", "", output).reason[:90]
    """,
    "contains-json on 1 MB of {": """
        output = "{" * 1_000_000
        before, t = rss(), time.perf_counter()
        what = score("contains-json", "", output).reason[:60]
    """,
    "contains-all, 100k values, 150 kB out": """
        value = ",".join(f"value{i}" for i in range(100_000))
        output = " ".join(f"value{i}" for i in range(0, 100_000, 7))
        before, t = rss(), time.perf_counter()
        what = score("contains-all", value, output).reason[:60]
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
    parser.add_argument("--only", default="", help="run the inputs whose name contains this")
    args = parser.parse_args()
    print(f"{'input':40} {'median s':>9} {'peak MiB':>9} {'+MiB':>7}  result")
    for name, body in CASES.items():
        if args.only not in name:
            continue
        runs = [run(body) for _ in range(args.repeat)]
        s = statistics.median(r["s"] for r in runs)
        peak = statistics.median(r["rss_after"] for r in runs)
        grew = statistics.median(r["rss_after"] - r["rss_before"] for r in runs)
        print(f"{name:40} {s:9.3f} {peak:9.0f} {grew:7.0f}  {runs[0]['what'][:110]}")


if __name__ == "__main__":
    main()
