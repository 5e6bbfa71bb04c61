"""Issue 16's figures: `promstack monitor --window day` over 1 million (and 10 million) call-log
lines, beside jq and pandas computing the same per-day P95 by hand.

The log is tests/support/calllogs.py's generator (prompts, versions, models, diurnal load, error
bursts, cache hits, retries, guard lines) over 30 days, one rotated file per day and a torn line
at the end of the live file. Each program runs in a fresh process under a small Python parent
that reports the child's peak RSS (ru_maxrss of RUSAGE_CHILDREN: tracemalloc does not see
DuckDB's or jq's memory). The per-day P95s of all three are compared.

    python benchmarks/bench_monitor.py --lines 1000000
    python benchmarks/bench_monitor.py --lines 1000000 --lines 10000000 --repeat 3

pandas is not a dependency of promstack: `pip install pandas` for this script (without it, the
pandas row is skipped). jq is /usr/bin/jq.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import calllogs  # noqa: E402

DAYS = 30
LINES_PER_CALL = 1.07  # retries and guard lines besides the calls (measured on the generator)

# runs argv[1:] and prints "<seconds> <peak RSS MiB of the child>" on stderr
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=sys.stdout).returncode
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{took} {peak}", file=sys.stderr)
sys.exit(rc)
"""

JQ = r"""
[inputs | fromjson? | select(type == "object" and ((.kind // "model") == "model")
   and (.status == "ok" or .status == "error") and (.cached | not) and .latency_ms != null)
   | {day: .timestamp[:10], ms: .latency_ms}]
| group_by(.day)
| map((map(.ms) | sort) as $x | ((($x | length) - 1) * 0.95) as $r | ($r | floor) as $lo
      | {day: .[0].day, p95: ($x[$lo] + ($r - $lo) * ($x[[$lo + 1, ($x | length) - 1] | min] - $x[$lo]))})
| .[] | "\(.day) \(.p95)"
"""

PANDAS = r"""
import io, sys, pandas as pd
frames = []
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    if not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]  # a torn last line: pandas refuses the whole file otherwise
    frames.append(pd.read_json(io.StringIO(text), lines=True, dtype=False))
df = pd.concat(frames, ignore_index=True)
kind = df["kind"].fillna("model") if "kind" in df else "model"
calls = df[(kind == "model") & df["status"].isin(["ok", "error"]) & ~df["cached"].fillna(False).astype(bool)]
p95 = calls.groupby(calls["timestamp"].str[:10])["latency_ms"].quantile(0.95)
for day, value in p95.items():
    print(day, value)
"""


def generate(folder: Path, lines: int) -> int:
    """One file per day (the last one live, ending in a torn line); the number of lines written."""
    per_hour = max(1, round(lines / (DAYS * 24 * LINES_PER_CALL)))
    written, day, out = 0, None, None
    for record in calllogs.generate(hours=DAYS * 24, per_hour=per_hour):
        stamp = record["timestamp"][:10]
        if stamp != day:
            if out is not None:
                out.close()
            day, out = stamp, (folder / f"calls.{stamp}.jsonl").open("w", encoding="utf-8")
        out.write(calllogs.dumps(record) + "\n")
        written += 1
    assert out is not None
    out.write(calllogs.TORN)
    out.close()
    last = folder / f"calls.{day}.jsonl"
    last.rename(folder / "calls.jsonl")
    return written


def measure(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", MEASURE, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    took, peak = done.stderr.strip().splitlines()[-1].split()
    return float(took), float(peak), done.stdout


def p95_of(stdout: str, tool: str) -> dict[str, float]:
    if tool == "monitor":
        return {r["window_start"][:10]: r["p95_ms"] for r in json.loads(stdout)["figures"]}
    return {day: float(v) for day, v in (line.split() for line in stdout.strip().splitlines())}


def tools(folder: Path) -> dict[str, list[str]]:
    files = sorted(str(p) for p in folder.glob("calls*.jsonl"))
    monitor = [sys.executable, "-c", "import sys; from pytest_promstack.cli import main; sys.exit(main())"]
    out = {"promstack monitor --window day": [*monitor, "monitor", str(folder), "--window", "day", "--by", "none",
                                              "--format", "json", "--top-errors", "5"],
           "jq (per-day P95 by hand)": ["sh", "-c", f"cat {' '.join(files)} | /usr/bin/jq -n -R -r '{JQ}'"]}
    if find_spec("pandas") is not None:  # not a dependency: only its script, in a child process, imports it
        out["pandas (per-day P95 by hand)"] = [sys.executable, "-c", PANDAS, *files]
    else:
        print("pandas is not installed: its row is skipped (pip install pandas)")
    return out


def bench(lines: int, repeat: int, skip: list[str]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    try:
        start = time.perf_counter()
        written = generate(folder, lines)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(f"\n{written:,} lines in {DAYS} daily files, {size:,.0f} MiB (generated in "
              f"{timedelta(seconds=round(time.perf_counter() - start))})")
        results: dict[str, list[tuple[float, float]]] = {}
        p95s: dict[str, dict[str, float]] = {}
        for _ in range(repeat):
            for name, argv in tools(folder).items():
                if name.split()[0] in skip:
                    continue
                took, peak, out = measure(argv, folder)
                results.setdefault(name, []).append((took, peak))
                p95s[name] = p95_of(out, "monitor" if "monitor" in name else "other")
        print(f"  {'program':32s} {'median s':>9s} {'peak MiB':>9s}   runs (s)")
        for name, runs in results.items():
            med = statistics.median(t for t, _ in runs)
            print(f"  {name:32s} {med:9.2f} {max(p for _, p in runs):9.0f}   "
                  f"{', '.join(f'{t:.2f}' for t, _ in runs)}")
        _agree(p95s)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _agree(p95s: dict[str, dict[str, float]]) -> None:
    names = list(p95s)
    first = p95s[names[0]]
    for name in names[1:]:
        other = p95s[name]
        assert set(other) == set(first), (name, sorted(set(other) ^ set(first)))
        worst = max(abs(other[d] - first[d]) for d in first)
        print(f"  per-day P95, {name} vs monitor: {len(first)} days, largest difference {worst:.3g} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, action="append", help="log lines (repeatable; default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], choices=["jq", "pandas"],
                        help="leave a program out (on 10 million lines pandas needs about 14 GiB, jq minutes)")
    args = parser.parse_args()
    for lines in args.lines or [1_000_000]:
        bench(lines, args.repeat, args.skip)


if __name__ == "__main__":
    main()
