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
    for col in ("input_tokens", "output_tokens", "cost_usd"):
        df[col] = pd.to_numeric(df.get(col), errors="coerce")
    rows = []
    for key, g in df.groupby(GROUP, sort=True, dropna=False):
        rows.append({**dict(zip(GROUP, key, strict=True)), **_figures(pd, g)})
    return rows


def _figures(pd: Any, g: Any) -> dict[str, Any]:
    counts = g["outcome"].value_counts()
    n = len(g)
    called = g[g["called"].astype(bool) & g["error"].isna()]
    lat = pd.Series([v for values in g["latencies"] for v in (values or [])], dtype="float64")
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
        "flaky": len(flaky(g.to_dict("records"))),
    }


def _sum(col: Any) -> int | None:
    values = col.dropna()
    return int(values.sum()) if len(values) else None


def unpriced(records: list[dict[str, Any]]) -> list[str]:
    """Models that answered but have no price in litellm's map (Python targets report their own)."""
    return sorted({r.get("litellm_model") or r["model"] for r in records
                   if r.get("called") and r.get("error") is None and r.get("cost_usd") is None
                   and not str(r.get("litellm_model") or "").startswith("python:")})


def flaky(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Repeated cases that passed some repeats and failed others."""
    return [r for r in records if (r.get("repeats") or 0) > 1 and r.get("passes") is not None
            and 0 < r["passes"] < r["repeats"]]
