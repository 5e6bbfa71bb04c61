"""Realistic call logs with known aggregates, for `promstack monitor`'s tests and benchmark.

``generate()`` yields the lines an application's call log gets over some days (fixed seed):
several prompts (one Korean id, one prompt changing version halfway), several models (one logged
without a cost but priceable, one nobody prices, the offline one at 0), diurnal load, an error
burst of rate limits with their retry lines, cache hits (logging the replayed latency and cost,
as the engine does), guard lines, old lines without ``kind``, cancelled calls and masked error
texts. ``write()`` spreads them over a live file (ending in a torn line), a rotated file and a
gzipped rotated file.

``expected()`` and ``expected_top_errors()`` compute every figure in plain Python, independently
of DuckDB, with the definitions of docs/monitoring.md.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 16
START = datetime(2025, 3, 1, tzinfo=UTC)
# alias -> (median latency ms, USD per input token, USD per output token, logs its cost)
MODELS = {"gpt-4o-mini": (700.0, 0.15e-6, 0.6e-6, True), "claude-haiku": (900.0, 0.8e-6, 4e-6, True),
          "local-gemma": (250.0, 0.0, 0.0, True), "acme-llm": (1200.0, 1e-6, 2e-6, False),
          "mystery-llm": (1500.0, 0.0, 0.0, False)}
PRICES = {"acme-llm": (1e-6, 2e-6)}  # what a config's params say; mystery-llm has no price anywhere
# prompt id -> (versions (the second from halfway on), models it runs on, weight)
PROMPTS = {"support": (("a1b2c3d4", "e5f6a7b8"), ("gpt-4o-mini", "claude-haiku"), 5),
           "요약": (("9c8d7e6f",), ("gpt-4o-mini", "local-gemma"), 3),
           "classify": (("1f2e3d4c",), ("acme-llm", "mystery-llm"), 2)}
EMAIL = "kim.minji@example.co.kr"
ERRORS = ("RateLimitError: 429 Too Many Requests", "APIError: 500 upstream failed for <EMAIL_1>",
          "Timeout: deadline of 30 s passed")
TORN = '{"timestamp":"2025-03-0'


def generate(hours: int = 72, per_hour: int = 40, seed: int = SEED, start: datetime = START) -> Iterator[dict]:
    """Every line of the log, in time order."""
    rng = random.Random(seed)
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        load = per_hour * (1 + 0.8 * math.sin((moment.hour - 8) / 24 * 2 * math.pi))  # peak at 14:00 UTC
        n = max(1, round(load * rng.uniform(0.8, 1.2)))
        burst = hours // 2 <= hour < hours // 2 + 2  # two hours of rate limits on gpt-4o-mini
        offsets = sorted(rng.uniform(0, 3600) for _ in range(n))
        for i, offset in enumerate(offsets):
            yield from _call(rng, moment + timedelta(seconds=offset), hour / hours, burst, f"r{hour}", i)


def _call(rng: random.Random, when: datetime, progress: float, burst: bool, run: str, i: int) -> Iterator[dict]:
    prompt = rng.choices(list(PROMPTS), weights=[p[2] for p in PROMPTS.values()])[0]
    versions, models, _ = PROMPTS[prompt]
    model = rng.choice(models)
    median, cin, cout, logs_cost = MODELS[model]
    base = {"run_id": run, "kind": "model", "suite": None, "case_id": f"c{i}", "prompt_id": prompt,
            "prompt_version": versions[-1] if progress >= 0.5 else versions[0], "model": model, "user_id": "svc"}
    if rng.random() < 0.03:  # a guard looked at the request first
        yield _line(when, base, kind="guard", status=rng.choice(["warn", "block"]), guard="pii",
                    detail="input has an email address <EMAIL_1>")
        when += timedelta(milliseconds=3)
    latency = round(median * math.exp(rng.gauss(0, 0.5)), 3)
    failing = rng.random() < (0.45 if burst and model == "gpt-4o-mini" else 0.015)
    if (failing and burst) or rng.random() < 0.02:  # attempts that failed first
        yield _line(when, base, latency_ms=round(latency / 3, 3), cached=False, attempt=1, status="retry",
                    status_code=429, error=ERRORS[0])
        when += timedelta(milliseconds=latency / 3 + 500)
    if rng.random() < 0.005:
        yield _line(when, base, cached=False, status="cancelled", error="interrupted")
        return
    if failing:
        error = ERRORS[0] if burst else rng.choice(ERRORS)
        code = 429 if error == ERRORS[0] else 500
        slow = 30000.0 if error == ERRORS[2] else latency
        yield _line(when, base, latency_ms=slow, cached=False, attempts=2, status="error", status_code=code,
                    error=error, old=rng.random() < 0.1)
        return
    tin, tout = rng.randint(200, 1500), rng.randint(20, 400)
    cost = tin * cin + tout * cout if logs_cost else None
    yield _line(when, base, input_tokens=tin, output_tokens=tout, cost_usd=cost, latency_ms=latency,
                cached=rng.random() < 0.25, attempts=1, status="ok", status_code=200, old=rng.random() < 0.1)


def _line(when: datetime, base: dict, old: bool = False, **fields: Any) -> dict:
    record = {"timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **base, **fields}
    if old:
        del record["kind"]  # a line from before kind was logged
    return record


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write(folder: Path, records: Sequence[dict], name: str = "calls") -> list[Path]:
    """The first third to ``NAME.<day>.jsonl.gz``, the second to ``NAME.<day>.jsonl``, the rest to
    ``NAME.jsonl`` ending in a torn line (a writer killed mid-line)."""
    folder.mkdir(parents=True, exist_ok=True)
    third = len(records) // 3
    parts = [records[:third], records[third:2 * third], records[2 * third:]]
    gz, rotated, live = (folder / f"{name}.2025-03-01.jsonl.gz", folder / f"{name}.2025-03-02.jsonl",
                         folder / f"{name}.jsonl")
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.writelines(dumps(r) + "\n" for r in parts[0])
    rotated.write_text("".join(dumps(r) + "\n" for r in parts[1]), encoding="utf-8")
    live.write_text("".join(dumps(r) + "\n" for r in parts[2]) + TORN, encoding="utf-8")
    return [gz, rotated, live]


ACME = {"name": "acme-llm", "model": "openai/acme-llm", "api_base": "http://127.0.0.1:9/v1",
        "params": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}  # priced by its params
MYSTERY = {"name": "mystery-llm", "model": "openai/mystery-llm", "api_base": "http://127.0.0.1:9/v1"}  # no price


def project(root: Path, models: Sequence[dict] = (ACME,), **config: Any) -> Path:
    """A project at ``root`` whose promstack.yaml configures ``models`` and logs to
    logs/calls.jsonl (``config``: more top-level keys, such as ``alerts``)."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    doc = {"models": list(models), "log": "logs/calls.jsonl", **config, "suites": {"s": {"tests": ["t.csv"]}}}
    (root / "promstack.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    (root / "t.csv").write_text("input\nx\n", encoding="utf-8")
    return root


def cut_gzip(path: Path) -> int:
    """Cut a gzipped log in the middle (a copy killed half-way); the number of whole lines left
    before the cut, counted by inflating what remains with zlib."""
    import zlib

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n")


# -- the expected figures, in plain Python ------------------------------------------------------


def is_call(r: dict) -> bool:
    return r.get("kind", "model") in ("model", None) and r.get("status") in ("ok", "error")


def when(r: dict) -> datetime:
    return datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks: rank (n - 1) * q."""
    if not values:
        return None
    xs = sorted(values)
    rank = (len(xs) - 1) * q
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (rank - lo) * (xs[hi] - xs[lo])


def _bucket(moment: datetime, window: str | None) -> tuple[str | None, str | None]:
    if window is None:
        return None, None
    start = moment.replace(minute=0, second=0, microsecond=0)
    if window == "day":
        start = start.replace(hour=0)
    end = start + (timedelta(hours=1) if window == "hour" else timedelta(days=1))
    return tuple(t.isoformat().replace("+00:00", "Z") for t in (start, end))  # type: ignore[return-value]


def calls(records: Sequence[dict], since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    return [r for r in records if is_call(r) and (since is None or when(r) >= since)
            and (until is None or when(r) < until)]


def expected(records: Sequence[dict], window: str | None = None, by: Sequence[str] = ("prompt_id", "prompt_version",
             "model"), since: datetime | None = None, until: datetime | None = None,
             prices: Mapping[str, tuple[float, float]] = PRICES) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in calls(records, since, until):
        groups.setdefault((*_bucket(when(r), window), *(r.get(k) for k in by)), []).append(r)
    rows = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k)):
        rows.append({"window_start": key[0], "window_end": key[1], **dict(zip(by, key[2:], strict=True)),
                     **_figures(groups[key], prices)})
    return rows


def _figures(group: list[dict], prices: Mapping[str, tuple[float, float]]) -> dict:
    fresh = [r for r in group if not r.get("cached")]
    latencies = [r["latency_ms"] for r in fresh if r.get("latency_ms") is not None]
    costs = [_cost(r, prices) for r in fresh]
    errors = sum(r["status"] == "error" for r in group)
    tin = sum(r.get("input_tokens") or 0 for r in fresh)
    tout = sum(r.get("output_tokens") or 0 for r in fresh)
    cached = len(group) - len(fresh)
    unpriced = sum(c is None for c in costs)
    return {"calls": len(group), "errors": errors, "error_rate": 100 * errors / len(group),
            "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99), "input_tokens": tin, "output_tokens": tout, "tokens": tin + tout,
            "cost_usd": None if unpriced else float(sum(costs)), "unpriced": unpriced,
            "priced_cost_usd": float(sum(c for c in costs if c is not None)), "cached": cached,
            "cache_hit_rate": 100 * cached / len(group)}


def _cost(r: dict, prices: Mapping[str, tuple[float, float]]) -> float | None:
    if r.get("cost_usd") is not None:
        return r["cost_usd"]
    if r["status"] == "error" and r.get("input_tokens") is None:
        return 0.0
    if r["model"] in prices and r.get("input_tokens") is not None:
        cin, cout = prices[r["model"]]
        return r["input_tokens"] * cin + (r.get("output_tokens") or 0) * cout
    return None


def expected_top_errors(records: Sequence[dict], since: datetime | None = None, until: datetime | None = None,
                        limit: int = 5) -> list[dict]:
    seen: dict[str, list[datetime]] = {}
    for r in calls(records, since, until):
        if r["status"] == "error":
            seen.setdefault(r.get("error") or "(no error text)", []).append(when(r))
    order = sorted(seen.items(), key=lambda kv: (-len(kv[1]), -max(kv[1]).timestamp(), kv[0]))
    return [{"error": e, "count": len(ts), "last_seen": max(ts).replace(microsecond=0).isoformat()
             .replace("+00:00", "Z")} for e, ts in order[:limit]]
