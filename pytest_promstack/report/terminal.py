"""The terminal summary: one tabulate table per run, built from ``metrics.summarise``."""

from __future__ import annotations

from typing import Any

HEADERS = ["suite", "model", "prompt", "cases", "passed", "failed", "errors", "xfail", "pass %",
           "P50 ms", "P95 ms", "tokens in", "tokens out", "cost USD", "cache hits"]


def summary_lines(rows: list[dict[str, Any]], unpriced: list[str]) -> list[str]:
    from tabulate import tabulate

    table = [[r["suite"], r["model"], f"{r['prompt_id']}@{r['prompt_version']}", r["cases"], r["passed"],
              r["failed"], r["error"], r["xfailed"], f"{r['pass_pct']:.1f}", _ms(r["p50_ms"]),
              _ms(r["p95_ms"]), _int(r["input_tokens"]), _int(r["output_tokens"]), _cost(r["cost_usd"]),
              f"{r['cache_hits']}/{r['calls']}"] for r in rows]
    lines = tabulate(table, headers=HEADERS, tablefmt="simple", disable_numparse=True).splitlines()
    for model in unpriced:
        lines.append(f"promstack: warning: litellm has no price for {model}; its cost shows as n/a")
    return lines


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _int(v: int | None) -> str:
    return "n/a" if v is None else str(v)


def _cost(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.6f}" if v == 0 or v >= 0.001 else f"{v:.3g}"
