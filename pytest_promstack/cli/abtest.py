"""A/B of two prompt versions (or branches) on the same cases and models: paired
differences with significance tests, and the verdict in one line.

- pass/fail: McNemar's exact test (a two-sided binomial test on the discordant pairs);
- judge scores: a paired permutation test (sign flips of the per-case differences; exact up
  to 16 pairs, else 20,000 seeded random flips).
The verdict uses the pass/fail test when any pair is discordant, else the score test."""

from __future__ import annotations

import random
from itertools import product
from math import comb
from typing import Any

ALPHA = 0.05


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact p for b pairs A-pass/B-fail against c pairs A-fail/B-pass."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_permutation(diffs: list[float], seed: int = 0, rounds: int = 20_000) -> float:
    """Two-sided p of the mean difference under random sign flips."""
    diffs = [d for d in diffs if d != 0]
    n = len(diffs)
    if n == 0:
        return 1.0
    observed = abs(sum(diffs))
    if n <= 16:
        hits = sum(abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - 1e-12
                   for signs in product((1, -1), repeat=n))
        return hits / 2 ** n
    rng = random.Random(seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed - 1e-12 for _ in range(rounds))
    return (hits + 1) / (rounds + 1)


def compare(a_cases: list[dict[str, Any]], b_cases: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Pair cases by suite, file, row and model (not by prompt: the prompt is what differs)."""
    a = {pair_key(c): c for c in a_cases}
    b = {pair_key(c): c for c in b_cases}
    keys = sorted(set(a) & set(b))
    ok = ("passed", "xpassed")
    both = sum(a[k]["outcome"] in ok and b[k]["outcome"] in ok for k in keys)
    only_a = sum(a[k]["outcome"] in ok and b[k]["outcome"] not in ok for k in keys)
    only_b = sum(a[k]["outcome"] not in ok and b[k]["outcome"] in ok for k in keys)
    scored = [k for k in keys if a[k].get("quality") is not None and b[k].get("quality") is not None]
    diffs = [b[k]["quality"] - a[k]["quality"] for k in scored]
    n = len(keys)
    result = {
        "n": n, "both_pass": both, "only_a": only_a, "only_b": only_b,
        "pass_rate_a": 100 * (both + only_a) / n if n else None,
        "pass_rate_b": 100 * (both + only_b) / n if n else None,
        "p_pass": mcnemar_exact(only_a, only_b),
        "scored": len(scored),
        "quality_a": sum(a[k]["quality"] for k in scored) / len(scored) if scored else None,
        "quality_b": sum(b[k]["quality"] for k in scored) / len(scored) if scored else None,
        "p_quality": paired_permutation(diffs, seed) if scored else None,
        "latency_a": _mean_latency([a[k] for k in keys]), "latency_b": _mean_latency([b[k] for k in keys]),
        "cost_a": _cost([a[k] for k in keys]), "cost_b": _cost([b[k] for k in keys]),
    }
    result["verdict"] = verdict(result)
    return result


def pair_key(c: dict[str, Any]) -> tuple[str, ...]:
    return (str(c.get("suite")), str(c.get("file")), str(c.get("row")), str(c.get("model")))


def verdict(r: dict[str, Any]) -> str:
    if r["only_a"] + r["only_b"] > 0:
        p, better = r["p_pass"], ("B" if r["only_b"] > r["only_a"] else "A")
    elif r["p_quality"] is not None and r["quality_a"] != r["quality_b"]:
        p, better = r["p_quality"], ("B" if r["quality_b"] > r["quality_a"] else "A")
    else:
        return f"no significant difference (n = {r['n']})"
    if p < ALPHA:
        return f"{better} better (p = {p:.2g})"
    return f"no significant difference (n = {r['n']}, p = {p:.2g})"


def _mean_latency(cases: list[dict[str, Any]]) -> float | None:
    values = [v for c in cases for v in c.get("latencies") or []]
    return sum(values) / len(values) if values else None


def _cost(cases: list[dict[str, Any]]) -> float | None:
    costs = [c.get("cost_usd") for c in cases if c.get("called")]
    return None if any(x is None for x in costs) else float(sum(costs))
