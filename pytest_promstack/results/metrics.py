"""Aggregation of per-case records: pass rate, latency percentiles, tokens, cost.

Plain Python (statistics.quantiles, the same linear interpolation as pandas' default):
the terminal summary runs on every warm rerun, where importing pandas would cost more
than the whole aggregation.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

GROUP = ("suite", "model", "prompt_id", "prompt_version")
OUTCOMES = ("passed", "failed", "error", "xfailed", "xpassed", "skipped")


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per suite x model x prompt version, in a stable order."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(str(r.get(k)) for k in GROUP), []).append(r)
    return [{**dict(zip(GROUP, key, strict=True)), **_figures(rows)} for key, rows in sorted(groups.items())]


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (pandas' and numpy's default)."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return float(cuts[round(q * 100) - 1])


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(r.get("outcome") for r in rows)
    n = len(rows)
    latencies = [float(v) for r in rows for v in (r.get("latencies") or [])]
    priced = [r.get("cost_usd") for r in rows if r.get("called") and r.get("error") is None]
    return {
        "cases": n,
        **{o: counts.get(o, 0) for o in OUTCOMES},
        "pass_pct": 100.0 * counts.get("passed", 0) / n if n else 0.0,
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
        "input_tokens": _sum(r.get("input_tokens") for r in rows),
        "output_tokens": _sum(r.get("output_tokens") for r in rows),
        "cost_usd": None if not priced or any(c is None for c in priced) else float(sum(priced)),
        "cache_hits": sum(bool(r.get("cached")) for r in rows),
        "truncated": sum(bool(r.get("truncated")) for r in rows),
        "calls": sum(bool(r.get("called")) for r in rows),
        "flaky": len(flaky(rows)),
        "quality": quality(rows),
        "judged": sum(r.get("quality") is not None for r in rows),
        "eval_cost_usd": _eval_cost(rows),
        "judge_calls": sum(r.get("judge_calls") or 0 for r in rows),
        "model_calls": sum(r.get("model_calls") or 0 for r in rows),  # every turn's and agent step's
        "tool_calls": sum(len(r.get("steps") or ()) for r in rows),
    }


def quality(records: list[dict[str, Any]]) -> float | None:
    """0..100: the mean of the judged cases' normalised judge scores."""
    values = [r["quality"] for r in records if r.get("quality") is not None]
    return sum(values) / len(values) if values else None


def _eval_cost(rows: list[dict[str, Any]]) -> float | None:
    costs = [r.get("eval_cost_usd", 0.0) for r in rows]
    return None if any(c is None for c in costs) else float(sum(costs))


def calibrations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Judge vs human labels, per judge, over cases that carry a human score."""
    from ..score.judges import calibration

    pairs: dict[str, list[tuple[float, float]]] = {}
    cases: dict[str, list[str]] = {}
    scales: dict[str, tuple[int, int]] = {}
    for r in records:
        if r.get("human_score") is None:
            continue
        for v in r.get("judges") or []:
            pairs.setdefault(v["judge"], []).append((v["mean"], r["human_score"]))
            cases.setdefault(v["judge"], []).append(str(r.get("case_id")))
            scales[v["judge"]] = tuple(v["scale"])
    return [{"judge": name, **calibration(p, scales[name], cases[name])} for name, p in sorted(pairs.items())]


def _sum(values: Any) -> int | None:
    present = [v for v in values if v is not None]
    return int(sum(present)) if present else None


def unpriced(records: list[dict[str, Any]]) -> list[str]:
    """Models that answered without a cost: no price (litellm's map or the model's params),
    or a Python target that reports none."""
    return sorted({r.get("litellm_model") or r["model"] for r in records
                   if r.get("called") and r.get("error") is None and r.get("cost_usd") is None})


def is_flaky(r: dict[str, Any]) -> bool:
    """A repeated case that passed some repeats and failed others, or whose judges disagreed."""
    return bool(((r.get("repeats") or 0) > 1 and r.get("passes") is not None and 0 < r["passes"] < r["repeats"])
                or r.get("judge_flaky"))


def flaky(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if is_flaky(r)]


def trajectories(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: its cases, model calls, tool calls (by tool name, most used first) and
    conversations (turns, failed turns). Empty when no case called a tool or had turns, so a
    one-shot run's summary stays as it was."""
    if not any(r.get("steps") or r.get("turns") for r in records):
        return []
    models: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("model") in (None, "-"):  # an unreadable file: no model
            continue
        m = models.setdefault(str(r["model"]), {"model": str(r["model"]), "cases": 0, "model_calls": 0,
                                                "tool_calls": 0, "tools": Counter(), "conversations": 0,
                                                "turns": 0, "failed_turns": 0})
        steps, turns = r.get("steps") or [], r.get("turns") or []
        m["cases"] += 1
        m["model_calls"] += r.get("model_calls") or 0
        m["tool_calls"] += len(steps)
        m["tools"].update(str(s.get("name")) for s in steps)
        m["conversations"] += bool(turns)
        m["turns"] += len(turns)
        m["failed_turns"] += sum(t.get("passed") is False for t in turns)
    return [{**m, "tools": sorted(m["tools"].items(), key=lambda kv: (-kv[1], kv[0]))}
            for _, m in sorted(models.items())]
