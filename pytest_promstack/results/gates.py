"""Quality and budget gates: checked on the run's records at the end; a failed gate sets a
distinct exit status (6). Warnings at 80% and 90% of cost and token budgets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .metrics import percentile, quality

GATE_FAILED = 6
Gates = Mapping[str, float] | Iterable[tuple[str, float]]
KEYS = ("min_quality_score", "min_pass_rate", "max_p95_latency_ms", "max_error_rate", "max_cost_usd", "max_tokens")
PRICE_HINT = ("add input_cost_per_token and output_cost_per_token (USD) to that model's params in "
              "promstack.yaml, or pick a model litellm prices")


@dataclass(frozen=True)
class Verdict:
    scope: str  # "overall" or "suite NAME"
    key: str
    value: float | None
    limit: float
    passed: bool
    note: str = ""

    def line(self) -> str:
        shown = "n/a" if self.value is None else _fmt(self.key, self.value)
        verdict = "passed" if self.passed else "FAILED"
        note = f" ({self.note})" if self.note else ""
        limit = _fmt(self.key, self.limit)
        return f"promstack: gate {self.key} [{self.scope}]: {shown}, limit {limit}: {verdict}{note}"


def _fmt(key: str, v: float) -> str:
    if key.endswith("_usd"):
        return f"${v:.6f}" if v < 0.01 else f"${v:.2f}"
    if key.endswith(("_rate", "quality_score")):
        return f"{v:.1f}" + ("%" if key.endswith("_rate") else "")
    return f"{v:.0f}"


def parse_option(value: str) -> tuple[str, float]:
    """``--promstack-gate KEY=VALUE``."""
    import argparse

    key, sep, raw = value.partition("=")
    if not sep or key not in KEYS:
        raise argparse.ArgumentTypeError(f"{value!r}: write KEY=VALUE with KEY one of {', '.join(KEYS)}")
    try:
        limit = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: {raw!r} is not a number") from None
    from pydantic import ValidationError

    from ..config.settings import GateSpec

    try:  # the same bounds as a gate in promstack.yaml
        GateSpec.model_validate({key: limit})
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc.errors()[0]['msg'].lower()}") from None
    return key, limit


def check(records: list[dict[str, Any]], gates: Gates, scope: str) -> tuple[list[Verdict], list[str]]:
    """Verdicts for one scope, and budget warnings (80% / 90%). ``gates``: a mapping or (key,
    limit) pairs; a key may come twice (the config's and the command line's): both must pass."""
    verdicts, warnings = [], []
    for key, limit in (gates.items() if isinstance(gates, Mapping) else gates):
        value, note = measure(records, key)
        if value is None:  # nothing to measure passes, except what must be known: cost and quality
            verdicts.append(Verdict(scope, key, None, limit, key not in ("max_cost_usd", "min_quality_score"), note))
            continue
        passed = value >= limit if key.startswith("min_") else value <= limit
        verdicts.append(Verdict(scope, key, value, limit, passed, note))
        if key in ("max_cost_usd", "max_tokens") and passed and limit > 0:
            used = value / limit
            for mark in (0.9, 0.8):
                if used >= mark:
                    warnings.append(f"promstack: warning: {key} [{scope}] at {used:.0%} of its budget "
                                    f"({_fmt(key, value)} of {_fmt(key, limit)}; warns at {mark:.0%})")
                    break
    return verdicts, warnings


def judge(records: list[dict[str, Any]], overall: Gates,
          suites: Mapping[str, Gates]) -> tuple[list[Verdict], list[str]]:
    """The run's gates: ``overall`` on every case, each suite's own on its cases."""
    verdicts: list[Verdict] = []
    warnings: list[str] = []
    scopes = [("overall", records, overall)]
    scopes += [(f"suite {name}", [r for r in records if r.get("suite") == name], gates)
               for name, gates in suites.items()]
    for scope, rows, gates in scopes:
        if gates:
            found, said = check(rows, gates, scope)
            verdicts += found
            warnings += said
    return verdicts, warnings


def measure(records: list[dict[str, Any]], key: str) -> tuple[float | None, str]:
    counted = [r for r in records if r.get("outcome") != "skipped"]
    if key == "min_quality_score":
        q = quality(records)
        return q, "" if q is not None else "no judged cases"
    if key == "min_pass_rate":
        n = len(counted)
        return (100.0 * sum(r.get("outcome") == "passed" for r in counted) / n if n else None), "passed / cases"
    if key == "max_error_rate":
        called = [r for r in records if r.get("called")]
        if not called:
            return None, "no model calls"
        return 100.0 * sum(r.get("error") is not None for r in called) / len(called), "failed calls / calls"
    if key == "max_p95_latency_ms":
        lat = [float(v) for r in records for v in r.get("latencies") or []]
        return percentile(lat, 0.95), ""
    if key == "max_tokens":
        tokens = [(r.get("input_tokens") or 0) + (r.get("output_tokens") or 0) for r in records]
        return float(sum(tokens)), "input + output"
    if key == "max_cost_usd":
        unpriced = sorted({r.get("litellm_model") or r["model"] for r in records
                           if r.get("called") and r.get("error") is None and r.get("cost_usd") is None})
        if unpriced or any(r.get("eval_cost_usd") is None for r in records):
            models = ", ".join(unpriced) or "a judge model"
            return None, f"no price for model {models}: {PRICE_HINT}"
        return float(sum((r.get("cost_usd") or 0) + (r.get("eval_cost_usd") or 0) for r in records)), "app + eval"
    raise KeyError(key)


def cheapest(records: list[dict[str, Any]], overall: Gates,
             suites: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Per suite that runs several models: which models pass every gate that applies to the
    suite (the overall gates and the suite's own), their cost per 1,000 cases (app + eval), and
    the cheapest that passes. With no gate configured, passing means no failed or errored case."""
    out = []
    for suite in sorted({str(r.get("suite")) for r in records}):
        rows = [r for r in records if str(r.get("suite")) == suite and r.get("model") not in (None, "-")]
        models = sorted({str(r["model"]) for r in rows})
        if len(models) < 2:
            continue
        gates = [*(overall.items() if isinstance(overall, Mapping) else overall), *suites.get(suite, {}).items()]
        entries = []
        for model in models:
            mine = [r for r in rows if str(r["model"]) == model]
            if gates:
                failed = [v.key for v in check(mine, gates, f"suite {suite}")[0] if not v.passed]
            else:
                bad = sum(r.get("outcome") in ("failed", "error") for r in mine)
                failed = [f"{bad} case{'s' if bad != 1 else ''}"] if bad else []
            spent = measure(mine, "max_cost_usd")[0]  # app + eval; None when a model has no price
            per_1000 = None if spent is None else 1000.0 * spent / len(mine)
            entries.append({"model": model, "passed": not failed, "failed": failed, "cost_per_1000": per_1000})
        ranked = sorted((e for e in entries if e["passed"] and e["cost_per_1000"] is not None),
                        key=lambda e: (e["cost_per_1000"], e["model"]))
        out.append({"suite": suite, "models": entries, "cheapest": ranked[0]["model"] if ranked else None,
                    "criterion": "every gate" if gates else "every case"})
    return out


def cheapest_line(sel: dict[str, Any]) -> str:
    def cost(e: dict[str, Any]) -> str:
        if e["cost_per_1000"] is None:
            return "cost n/a (no price)"
        return f"{_fmt('_usd', e['cost_per_1000'])} per 1,000 cases"

    others = "; ".join(f"{e['model']} {cost(e)}" if e["passed"] else f"{e['model']} failed {', '.join(e['failed'])}"
                       for e in sel["models"] if e["model"] != sel["cheapest"])
    if sel["cheapest"] is None:
        passing = [e["model"] for e in sel["models"] if e["passed"]]
        if passing:
            return (f"promstack: suite {sel['suite']}: passing {sel['criterion']}: {', '.join(passing)}; no cheapest "
                    f"without prices: {PRICE_HINT}")
        return f"promstack: suite {sel['suite']}: no model passes {sel['criterion']} ({others})"
    best = next(e for e in sel["models"] if e["model"] == sel["cheapest"])
    return (f"promstack: suite {sel['suite']}: cheapest model passing {sel['criterion']}: {best['model']}, "
            f"{cost(best)} ({others})")
