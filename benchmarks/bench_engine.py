"""The engine benchmarks of issue 3, each side by side with its reference in the same run.

  stress     N=1000, L=0.2 s, C=64, cache off: promstack (an unpriced openai/ model on a
             self-hosted server), promstack -n 2, the priced openai/gpt-4o-mini and
             anthropic/claude-haiku-4-5 on the same server (direct, and openai's through litellm),
             a bare litellm script, and promptfoo -j 64 when `npx promptfoo` is installed
  realistic  N=500, L=1 s, C=32: the server-side span (first request to last answer)
             beside N*L/C
  warm       N=1000 from cache: promstack beside plain pytest running 1000 trivial
             parametrized tests; litellm must not be imported, the server sees 0 requests
  big        25k/50k/100k rows from cache: time and peak RSS (should grow linearly), beside
             plain pytest running as many trivial parametrized tests
  cpu        N=1000 from cache with a ~5 ms python assertion each: with and without -n 2
  importtime `import pytest_promstack.plugin` in a fresh interpreter, compiling the package
             (as every run here does: PYTHONDONTWRITEBYTECODE=1) and from cached bytecode,
             beside `import pytest`

    python benchmarks/bench_engine.py [stress realistic warm big importtime] [--repeat 3]

With --source DIR (repeatable), stress, warm and importtime measure each checkout of the
package side by side: within every repeat each row runs once per source (the order reversed
on odd repeats), and the table gives each source's median and its ratio to the first
source's. benchmarks/sources.py makes each run load that checkout (entry points included)
and checks it did:

    git worktree add --detach /tmp/before-657d7da 657d7da
    python benchmarks/bench_engine.py stress warm importtime --source /tmp/before-657d7da --source .
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BARE, PYTEST, ROOT, Server, bytecode, make_project, report, report_sources, run
from benchmarks.sources import Source, order, prepare

FLAGS = PYTEST[3:]  # PYTEST's options after `python -m pytest`
PLAIN = "import pytest\n\n@pytest.mark.parametrize('i', range({n}))\ndef test_x(i):\n    assert i >= 0\n"

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
    names = ("promstack", "promstack -n 2", "promstack transport: litellm", "priced gpt-4o-mini",
             "priced claude-haiku-4-5", "priced gpt-4o-mini transport: litellm", "bare litellm script",
             "promptfoo -j 64")
    res: dict[str, list[float]] = {name: [] for name in names}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, server.url, n, c)
            via = p / "via-litellm"
            make_project(via, server.url, n, c, transport="litellm")
            priced = {"priced gpt-4o-mini": p / "gpt", "priced claude-haiku-4-5": p / "claude",
                      "priced gpt-4o-mini transport: litellm": p / "gpt-litellm"}
            make_project(priced["priced gpt-4o-mini"], server.url, n, c, model="openai/gpt-4o-mini")
            make_project(priced["priced claude-haiku-4-5"], server.url.removesuffix("/v1"), n, c,
                         model="anthropic/claude-haiku-4-5")
            make_project(priced["priced gpt-4o-mini transport: litellm"], server.url, n, c,
                         model="openai/gpt-4o-mini", transport="litellm")
            pf = promptfoo_config(p, server.url, n)
            for _ in range(repeat):
                res["bare litellm script"].append(run([sys.executable, "-c", BARE, str(n), str(c), server.url], p)[0])
                res["promstack"].append(run([*PYTEST, "--promstack", "--promstack-cache=off"], p)[0])
                res["promstack -n 2"].append(run([*PYTEST, "--promstack", "--promstack-cache=off", "-n", "2"], p)[0])
                cold = [*PYTEST, "--promstack", "--promstack-cache=off"]
                res["promstack transport: litellm"].append(run(cold, via)[0])
                for name, folder in priced.items():
                    res[name].append(run(cold, folder)[0])
                if pf:
                    before = server.stats()["count"]
                    wall, _, out = run(pf, p, check=False)  # its failed assertions exit non-zero
                    if server.stats()["count"] - before < n:  # npx with no registry to fetch it from
                        print(f"promptfoo did not run (its output ends: {out.strip()[-200:]!r}); left out "
                              "(npm install promptfoo into /tmp/pf)")
                        pf = None
                        res.pop("promptfoo -j 64", None)
                    else:
                        res["promptfoo -j 64"].append(wall)
    finally:
        server.stop()
    med = report(f"stress: N={n} L={lat}s C={c} cache off; limit N*L/C = {n * lat / c:.2f} s", res)
    base = med["bare litellm script"]
    for k in ("promstack", "promstack -n 2", "promstack transport: litellm", "promptfoo -j 64"):
        if k in med:
            print(f"  {k} / bare litellm = {med[k] / base:.2f}x")
    for k in ("priced gpt-4o-mini", "priced claude-haiku-4-5", "priced gpt-4o-mini transport: litellm"):
        print(f"  {k} / promstack (unpriced, direct) = {med[k] / med['promstack']:.2f}x")
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
            p, plain = Path(tmp) / "project", plain_project(Path(tmp) / "plain")
            env = bytecode(Path(tmp) / "pyc")
            make_project(p, server.url, n, 64)
            run([*PYTEST, "--promstack"], p, env=env)  # fills the cache, and both sides' bytecode
            run(PYTEST, plain, env=env)
            before = server.stats()["count"]
            for _ in range(repeat):
                wall, _, out = run([sys.executable, "-c", WARM, "-q", "-p", "no:cacheprovider", "--promstack"], p,
                                   env=env)
                assert "LITELLM_IMPORTED False" in out, out[-500:]
                passed(out, n)
                res["promstack warm"].append(wall)
                res["plain pytest, 1000 trivial tests"].append(run(PYTEST, plain, env=env)[0])
            after = server.stats()["count"]
    finally:
        server.stop()
    med = report(f"warm: N={n} from cache (litellm not imported; requests during warm runs: {after - before})", res)
    print(f"  promstack warm / plain pytest = {med['promstack warm'] / med['plain pytest, 1000 trivial tests']:.2f}x")


def plain_project(folder: Path, n: int = 1000) -> Path:
    """``n`` trivial tests, in a folder of their own: a promstack project's run must not collect them."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "test_plain.py").write_text(PLAIN.format(n=n), encoding="utf-8")
    return folder


def passed(out: str, n: int) -> None:
    if f"{n} passed" not in out:
        text = "\n".join(line for line in out.splitlines() if not line.startswith("PROMSTACK_PROBE "))
        raise SystemExit(f"expected {n} passed:\n{text[-1500:]}")


def stress_sources(repeat: int, sources: list[Source]) -> None:
    n, lat, c = 1000, 0.2, 64
    server = Server(lat)
    rows = {"promstack": ["--promstack", "--promstack-cache=off"],
            "promstack -n 2": ["--promstack", "--promstack-cache=off", "-n", "2"]}
    res = {row: {s.label: [] for s in sources} for row in rows}
    bare: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, server.url, n, c)
            for i in range(repeat):
                bare.append(run([sys.executable, "-c", BARE, str(n), str(c), server.url], p)[0])
                for row, args in rows.items():
                    for s in order(sources, i):
                        wall, _, out = run(s.pytest(*FLAGS, *args), p, env=s.env())
                        s.check(out)
                        passed(out, n)
                        res[row][s.label].append(wall)
    finally:
        server.stop()
    report_sources(f"stress: N={n} L={lat}s C={c} cache off; limit N*L/C = {n * lat / c:.2f} s", res,
                   [s.label for s in sources])
    report("", {"bare litellm script (reference)": bare})


def warm_sources(repeat: int, sources: list[Source]) -> None:
    n = 1000
    server = Server(0.0)
    rows = ("promstack warm", "plain pytest, 1000 trivial tests")
    res = {row: {s.label: [] for s in sources} for row in rows}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folders, plain = {}, plain_project(Path(tmp) / "plain")
            env = {s.label: {**s.env(), **bytecode(Path(tmp) / f"pyc{k}")} for k, s in enumerate(sources)}
            for k, s in enumerate(sources):  # a project per source: each fills its own cache and bytecode
                folders[s.label] = p = Path(tmp) / f"src{k}"
                make_project(p, server.url, n, 64)
                s.check(run(s.pytest(*FLAGS, "--promstack"), p, env=env[s.label])[2])
                run(s.pytest(*FLAGS), plain, env=env[s.label])
            before = server.stats()["count"]
            for i in range(repeat):
                for s in order(sources, i):
                    p = folders[s.label]
                    wall, _, out = run(s.pytest(*FLAGS, "--promstack"), p, env=env[s.label])
                    if s.check(out)["litellm"]:
                        raise SystemExit(f"{s.label}: a warm run imported litellm")
                    passed(out, n)
                    res["promstack warm"][s.label].append(wall)
                    wall, _, out = run(s.pytest(*FLAGS), plain, env=env[s.label])
                    s.check(out)
                    passed(out, 1000)
                    res["plain pytest, 1000 trivial tests"][s.label].append(wall)
            after = server.stats()["count"]
    finally:
        server.stop()
    if after != before:
        raise SystemExit(f"warm: the server saw {after - before} requests during the warm runs")
    report_sources(f"warm: N={n} from cache (litellm not imported, no request); plain pytest loads the plugin too",
                   res, [s.label for s in sources])
    for s in sources:
        warm_s, plain_s = (statistics.median(res[row][s.label]) for row in rows)
        print(f"  {s.label}: promstack warm / plain pytest = {warm_s / plain_s:.2f}x")


def importtime(repeat: int, sources: list[Source]) -> None:
    rows = ("import plugin, compiling", "import plugin, bytecode")
    res = {row: {s.label: [] for s in sources} for row in rows}
    ref: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        cached = {s.label: {**s.env(), "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": f"{tmp}/pyc{k}"}
                  for k, s in enumerate(sources)}
        for s in sources:  # fills each source's bytecode cache (its own, so the checkout is not written)
            s.check(run(s.importer(), cwd, env=cached[s.label])[2])
        for i in range(repeat):
            ref.append(run([sys.executable, "-c", "import pytest"], cwd)[0])
            for s in order(sources, i):
                for row, env in (("import plugin, compiling", s.env()), ("import plugin, bytecode", cached[s.label])):
                    wall, _, out = run(s.importer(), cwd, env=env)
                    s.check(out)
                    res[row][s.label].append(wall)
    report_sources("importtime: `import pytest_promstack.plugin` in a fresh interpreter", res,
                   [s.label for s in sources])
    report("", {"import pytest (reference)": ref})


def big(repeat: int) -> None:
    from pytest_promstack.execute.cache import DiskCache
    from pytest_promstack.model.types import Response
    from pytest_promstack.plan.requests import cache_key

    params = {"temperature": 0, "max_tokens": 64}
    for n in (25_000, 50_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "project"  # beside the plain project, which it must not collect
            make_project(p, "http://127.0.0.1:9/v1", n, 64)
            cache = DiskCache(p / ".promstack/cache", print)
            for i in range(n):  # fill the cache directly: this measures the warm path, not the calls
                msgs = [{"role": "user", "content": f"question {i}"}]
                cache.set(cache_key("openai/bench", msgs, params, "http://127.0.0.1:9/v1"),
                          Response(text=f"question {i}", input_tokens=2, output_tokens=2, latency_ms=10.0,
                                   finish_reason="stop"))
            cache.close()
            plain = plain_project(Path(tmp) / "plain", n)
            env = bytecode(Path(tmp) / "pyc")
            for folder, extra in ((p, ["--promstack"]), (plain, [])):  # most of both sides' bytecode, written
                run([*PYTEST, *extra, "--collect-only"], folder, env=env)  # (the rest on the first run: ~0.1 s)
            walls: dict[str, list[float]] = {"promstack": [], "plain pytest": []}
            rss: dict[str, list[float]] = {"promstack": [], "plain pytest": []}
            for i in range(repeat):  # alternating, so both see the same machine
                for name in (("promstack", "plain pytest") if i % 2 == 0 else ("plain pytest", "promstack")):
                    folder, extra = (p, ["--promstack", "--promstack-cache=replay"]) if name == "promstack" else (
                        plain, [])
                    wall, _, out = run([sys.executable, str(ROOT / "benchmarks/peak.py"), *PYTEST[1:], *extra], folder,
                                       env=env)
                    passed(out, n)  # each ran its own n tests, no more
                    walls[name].append(wall)
                    rss[name].append(float((folder / "peak.txt").read_text()))
            med = report(f"big: {n} rows from cache, beside plain pytest with {n} trivial tests", walls)
            peak = {k: statistics.median(v) for k, v in rss.items()}
            ours, theirs = peak["promstack"], peak["plain pytest"]
            print(f"  peak RSS median: promstack {ours:.0f} MiB, plain pytest {theirs:.0f} MiB ({ours / theirs:.2f}x);"
                  f" time {med['promstack'] / med['plain pytest']:.2f}x;  promstack per 1k rows: "
                  f"{med['promstack'] / n * 1000:.3f} s, {ours / n * 1000:.2f} MiB")


def cpu(repeat: int) -> None:
    """Scoring is the work: 1,000 cached cases, each with a python assertion costing ~5 ms of CPU,
    with and without ``-n 2`` (when xdist pays on 2 cores)."""
    n = 1000
    server = Server(0.0)
    res: dict[str, list[float]] = {"promstack": [], "promstack -n 2": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp)
            make_project(p, server.url, n, 64)
            check = "python:sum(i * i for i in range(150000)) >= 0 and 'question' in output"
            rows = ["input,__expected"] + [f"question {i},\"{check}\"" for i in range(n)]
            (p / "cases/bench.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
            run([*PYTEST, "--promstack"], p)  # fills the cache
            for i in range(repeat):
                for name in (("promstack", "promstack -n 2") if i % 2 == 0 else ("promstack -n 2", "promstack")):
                    extra = ["-n", "2"] if name.endswith("-n 2") else []
                    wall, _, out = run([*PYTEST, "--promstack", *extra], p)
                    passed(out, n)
                    res[name].append(wall)
    finally:
        server.stop()
    med = report(f"cpu: N={n} from cache, a ~5 ms python assertion each", res)
    print(f"  -n 2 / without = {med['promstack -n 2'] / med['promstack']:.2f}x")


BENCHES = ("stress", "realistic", "warm", "big", "importtime", "cpu")
PER_SOURCE = {"stress": stress_sources, "warm": warm_sources, "importtime": importtime}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=list(BENCHES), choices=BENCHES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", action="append", default=[],
                        help="a checkout of pytest-promstack to measure (repeatable; stress, warm, importtime)")
    args = parser.parse_args()
    if args.source and (other := [w for w in args.which if w not in PER_SOURCE]):
        parser.error(f"--source works with {', '.join(PER_SOURCE)}, not {', '.join(other)}: drop one of them")
    with tempfile.TemporaryDirectory(prefix="promstack-sources-") as tmp:
        sources = prepare([Path(s).resolve() for s in args.source] or [ROOT], Path(tmp))
        for name in args.which:
            if args.source or name == "importtime":
                PER_SOURCE[name](args.repeat, sources)
            else:
                globals()[name](args.repeat)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
