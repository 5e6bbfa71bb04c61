"""Aggregation of per-case records with pandas: pass rate, latency percentiles, tokens, cost."""

from __future__ import annotations

from typing import Any

GROUP = ["suite", "model", "prompt_id", "prompt_version"]
OUTCOMES = ("passed", "failed", "error", "xfailed", "xpassed", "skipped")


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per suite x model x prompt version, in a stable order."""
    if not records:
        return []
    import pandas as pd

    df = pd.DataFrame.from_records(records)
    for col in ("latency_ms", "input_tokens", "output_tokens", "cost_usd"):
        df[col] = pd.to_numeric(df.get(col), errors="coerce")
    rows = []
    for key, g in df.groupby(GROUP, sort=True, dropna=False):
        rows.append({**dict(zip(GROUP, key, strict=True)), **_figures(g)})
    return rows


def _figures(g: Any) -> dict[str, Any]:
    counts = g["outcome"].value_counts()
    n = len(g)
    called = g[g["called"].astype(bool) & g["error"].isna()]
    lat = g["latency_ms"].dropna()
    priced = called["cost_usd"]
    return {
        "cases": n,
        **{o: int(counts.get(o, 0)) for o in OUTCOMES},
        "pass_pct": 100.0 * int(counts.get("passed", 0)) / n if n else 0.0,
        "p50_ms": float(lat.quantile(0.5)) if len(lat) else None,
        "p95_ms": float(lat.quantile(0.95)) if len(lat) else None,
        "input_tokens": _sum(g["input_tokens"]),
        "output_tokens": _sum(g["output_tokens"]),
        "cost_usd": None if priced.empty or priced.isna().any() else float(priced.sum()),
        "cache_hits": int(g["cached"].astype(bool).sum()),
        "calls": int(g["called"].astype(bool).sum()),
    }


def _sum(col: Any) -> int | None:
    values = col.dropna()
    return int(values.sum()) if len(values) else None


def unpriced(records: list[dict[str, Any]]) -> list[str]:
    """Models that answered but have no price in litellm's map."""
    return sorted({r.get("litellm_model") or r["model"] for r in records
                   if r.get("called") and r.get("error") is None and r.get("cost_usd") is None})
