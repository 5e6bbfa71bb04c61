"""The engine benchmarks of issue 3, each side by side with its reference in the same run.

  stress     N=1000, L=0.2 s, C=64, cache off: promstack, promstack -n 2, a bare litellm
             script, and promptfoo -j 64 when `npx promptfoo` is installed
  realistic  N=500, L=1 s, C=32: the server-side span (first request to last answer)
             beside N*L/C
  warm       N=1000 from cache: promstack beside plain pytest running 1000 trivial
             parametrized tests; litellm must not be imported, the server sees 0 requests
  big        25k/50k/100k rows from cache: time and peak RSS (should grow linearly)

    python benchmarks/bench_engine.py [stress realistic warm big] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BARE, PYTEST, ROOT, Server, make_project, report, run

WARM = textwrap.dedent("""
    import sys, pytest
    rc = pytest.main(sys.argv[1:])
    print("LITELLM_IMPORTED", "litellm" in sys.modules)
    sys.exit(rc)
""")


def promptfoo_config(root: Path, url: str, n: int) -> list[str] | None:
    npx = shutil.which("npx")
    local = Path("/tmp/pf/node_modules/.bin/promptfoo")
    if not local.exists() and npx is None:
        return None
    tests = [{"vars": {"input": f"question {i}"}, "assert": [{"type": "contains", "value": f"question {i}"}]}
             for i in range(n)]
    cfg = {"prompts": ["{{input}}"], "providers": [{"id": "openai:chat:bench", "config": {
        "apiBaseUrl": url, "apiKey": "x", "temperature": 0, "max_tokens": 64}}], "tests": tests}
    (root / "promptfooconfig.json").write_text(json.dumps(cfg), encoding="utf-8")
    exe = [str(local)] if local.exists() else [npx, "promptfoo"]
    return [*exe, "eval", "-c", "promptfooconfig.json", "-j", "64", "--no-cache", "--no-progress-bar",
            "--no-write", "--no-table"]


def stress(repeat: int) -> None:
    n, lat, c = 1000, 0.2, 64
    server = Server(lat)
    names = ("promstack", "promstack -n 2", "promstack transport: litellm", "bare litellm script", "promptfoo -j 64")
    res: dict[str, list[float]] = {name: [] for name in names}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, server.url, n, c)
            via = p / "via-litellm"
            make_project(via, server.url, n, c, transport="litellm")
            pf = promptfoo_config(p, server.url, n)
            for _ in range(repeat):
                res["bare litellm script"].append(run([sys.executable, "-c", BARE, str(n), str(c), server.url], p)[0])
                res["promstack"].append(run([*PYTEST, "--promstack", "--promstack-cache=off"], p)[0])
                res["promstack -n 2"].append(run([*PYTEST, "--promstack", "--promstack-cache=off", "-n", "2"], p)[0])
                cold = [*PYTEST, "--promstack", "--promstack-cache=off"]
                res["promstack transport: litellm"].append(run(cold, via)[0])
                if pf:
                    res["promptfoo -j 64"].append(run(pf, p, check=False)[0])
    finally:
        server.stop()
    med = report(f"stress: N={n} L={lat}s C={c} cache off; limit N*L/C = {n * lat / c:.2f} s", res)
    base = med["bare litellm script"]
    for k in ("promstack", "promstack -n 2", "promstack transport: litellm", "promptfoo -j 64"):
        if k in med:
            print(f"  {k} / bare litellm = {med[k] / base:.2f}x")
    if "promptfoo -j 64" in med:
        best = min(med["promstack"], med["promstack -n 2"])
        print(f"  promptfoo / best promstack = {med['promptfoo -j 64'] / best:.2f}x faster")


def realistic(repeat: int) -> None:
    n, lat, c = 500, 1.0, 32
    spans, walls = [], []
    for _ in range(repeat):
        server = Server(lat)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp)
                make_project(p, server.url, n, c)
                walls.append(run([*PYTEST, "--promstack", "--promstack-cache=off"], p)[0])
                s = server.stats()
                spans.append(s["last"] - s["first"])
        finally:
            server.stop()
    limit = n * lat / c
    med = report(f"realistic: N={n} L={lat}s C={c}; limit N*L/C = {limit:.2f} s",
                 {"span first request..last answer": spans, "wall incl. start-up": walls})
    print(f"  span / limit = {med['span first request..last answer'] / limit:.3f}x")


def warm(repeat: int) -> None:
    n = 1000
    server = Server(0.0)
    res: dict[str, list[float]] = {"promstack warm": [], "plain pytest, 1000 trivial tests": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, server.url, n, 64)
            run([*PYTEST, "--promstack"], p)
            (p / "plain").mkdir()
            (p / "plain/test_plain.py").write_text(
                "import pytest\n\n@pytest.mark.parametrize('i', range(1000))\ndef test_x(i):\n    assert i >= 0\n")
            before = server.stats()["count"]
            for _ in range(repeat):
                wall, _, out = run([sys.executable, "-c", WARM, "-q", "-p", "no:cacheprovider", "--promstack"], p)
                assert "LITELLM_IMPORTED False" in out, out[-500:]
                res["promstack warm"].append(wall)
                res["plain pytest, 1000 trivial tests"].append(run([*PYTEST, "plain"], p)[0])
            after = server.stats()["count"]
    finally:
        server.stop()
    med = report(f"warm: N={n} from cache (litellm not imported; requests during warm runs: {after - before})", res)
    print(f"  promstack warm / plain pytest = {med['promstack warm'] / med['plain pytest, 1000 trivial tests']:.2f}x")


def big(repeat: int) -> None:
    from pytest_promstack.execute.cache import DiskCache
    from pytest_promstack.model.types import Response
    from pytest_promstack.plan.requests import cache_key

    params = {"temperature": 0, "max_tokens": 64}
    for n in (25_000, 50_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, "http://127.0.0.1:9/v1", n, 64)
            cache = DiskCache(p / ".promstack/cache", print)
            for i in range(n):  # fill the cache directly: this measures the warm path, not the calls
                msgs = [{"role": "user", "content": f"question {i}"}]
                cache.set(cache_key("openai/bench", msgs, params, "http://127.0.0.1:9/v1"),
                          Response(text=f"question {i}", input_tokens=2, output_tokens=2, latency_ms=10.0,
                                   finish_reason="stop"))
            cache.close()
            walls, rss = [], []
            for _ in range(repeat):
                wall, _peak, _ = run([sys.executable, str(ROOT / "benchmarks/peak.py"), *PYTEST[1:], "--promstack",
                                     "--promstack-cache=replay"], p)
                walls.append(wall)
                rss.append(float(Path(p / "peak.txt").read_text()))
            med = report(f"big: {n} rows from cache", {"wall": walls})
            print(f"  peak RSS median {sorted(rss)[len(rss) // 2]:.0f} MiB;  per 1k rows: "
                  f"{med['wall'] / n * 1000:.3f} s, {sorted(rss)[len(rss) // 2] / n * 1000:.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["stress", "realistic", "warm", "big"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name in args.which:
        globals()[name](args.repeat)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
