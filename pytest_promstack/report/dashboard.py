"""The monitoring dashboard (``promstack monitor --html PATH``): one self-contained page of live
traffic from the call logs, in the run report's style and with its safety (report/html.py):
Jinja2 with autoescaping, the figures as JSON in a ``<script type="application/json">`` element
with ``<``, ``>`` and ``&`` escaped, a Content-Security-Policy allowing only the page's own
script and style (by hash) and nothing from the network, charts as inline SVG drawn here with
every text escaped, and an atomic write.

``collect()`` reads the logs (results/monitor.py) into a plain dict; ``render()`` turns that dict
into the page. Windows are hours for a range of up to ``HOURLY_UP_TO``, else days (``--window``
chooses). Costs add up the priced calls: a series holding unpriced calls says how many it left
out (its cost is a lower bound), as the terminal shows n/a for them.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

HOURLY_UP_TO = timedelta(days=3)
KEYS = ("prompt_id", "prompt_version", "model")
TOP = 10  # rows of the most-expensive-prompts table
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
Warn = Callable[[str], None]


# -- the figures -----------------------------------------------------------------------------------


def collect(paths: Sequence[str | Path], *, since: datetime | None = None, until: datetime | None = None,
            window: str | None = None, prices: Mapping[str, Any] | None = None, warn: Warn | None = None,
            alerts: Any = None, budget: float | None = None, results: dict[str, Any] | None = None,
            results_path: str | None = None, now: datetime | None = None, top_errors: int = 5) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data. ``now`` (default: ``until``, else the
    clock) is the moment the month-to-date budget and the alerts are judged at."""
    from ..results import monitor

    now = now or until or datetime.now(UTC)
    read = window or "hour"  # an hourly reading rolls up to days when the range turns out longer
    rows, errors = monitor.summary(paths, since=since, until=until, window=read, by=KEYS, warn=warn, prices=prices,
                                   limit=top_errors)
    found = monitor.files(paths)
    data: dict[str, Any] = {"since": _iso(since), "until": _iso(until), "now": _iso(now),
                            "files": [p.name for p in (*found.jsonl, *found.parquet)], "top_errors": errors}
    start = since or (_at(rows[0]["window_start"]) if rows else None)
    end = until or (max(_at(r["window_end"]) for r in rows) if rows else None)
    chosen = window or ("hour" if start is None or end is None or end - start <= HOURLY_UP_TO else "day")
    if chosen != read:
        rows = rollup(rows, chosen)
    axis = _axis(start, end, chosen) if rows else []
    overall = monitor.figures(paths, since=since, until=until, window=chosen, by=(), prices=prices) if rows else []
    data.update(window=chosen, axis=axis, totals=_totals(rows),
                cost_by_model=_series(rows, axis, lambda r: str(r["model"])),
                cost_by_version=_series(rows, axis, lambda r: f"{r['prompt_id']}@{r['prompt_version']}"),
                latency=_latency(overall, axis), error_rate=_error_rate(overall, axis),
                tokens=_tokens(rows if chosen == "day" else rollup(rows, "day"), alerts),
                expensive=_expensive(rows),
                budget=_budget(paths, prices, now, _budget_limit(budget, alerts)),
                alerts=_verdicts(paths, prices, alerts, now),
                ci=beside_production(results, results_path, paths, since, until, prices) if results is not None
                else None)
    return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _floor(moment: datetime, window: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if window == "day" else moment


def _axis(start: datetime, end: datetime, window: str) -> list[str]:
    """Every window from the one holding ``start`` to the one holding the last moment before ``end``."""
    out, t = [], _floor(start, window)
    last = _floor(end - timedelta(microseconds=1), window)
    while t <= last:
        out.append(_iso(t))
        t += STEP[window]
    return out


ADDITIVE = ("calls", "errors", "input_tokens", "output_tokens", "tokens", "unpriced", "cached")


def rollup(rows: Sequence[Mapping[str, Any]], window: str) -> list[dict[str, Any]]:
    """Rows of finer windows added up into ``window`` (day) per key; percentiles cannot be added
    and are left out. A cost is the priced calls' sum, with ``unpriced`` counting the others."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        start = _floor(_at(r["window_start"]), window)
        key = (start, *(r[k] for k in KEYS))
        into = out.setdefault(key, {"window_start": _iso(start), "window_end": _iso(start + STEP[window]),
                                    **{k: r[k] for k in KEYS}, **dict.fromkeys(ADDITIVE, 0), "cost_usd": 0.0})
        for k in ADDITIVE:
            into[k] += r[k]
        into["cost_usd"] += r["cost_usd"] or 0.0
    return list(out.values())


def _cost(r: Mapping[str, Any]) -> float:
    return r["cost_usd"] or 0.0  # None: the row has unpriced calls (counted in "unpriced")


def _totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    calls = sum(r["calls"] for r in rows)
    return {"calls": calls, "errors": sum(r["errors"] for r in rows),
            "error_rate": 100.0 * sum(r["errors"] for r in rows) / calls if calls else None,
            "cost_usd": sum(_cost(r) for r in rows), "unpriced": sum(r["unpriced"] for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "tokens": sum(r["tokens"] for r in rows), "cached": sum(r["cached"] for r in rows),
            "cache_hit_rate": 100.0 * sum(r["cached"] for r in rows) / calls if calls else None}


def _series(rows: Sequence[Mapping[str, Any]], axis: list[str], name: Callable[[Mapping[str, Any]], str]
            ) -> list[dict[str, Any]]:
    """Cost per window of each name, with its total and the unpriced calls it leaves out."""
    index = {w: i for i, w in enumerate(axis)}
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(name(r), {"name": name(r), "values": [0.0] * len(axis), "total": 0.0, "unpriced": 0})
        s["values"][index[r["window_start"]]] += _cost(r)
        s["total"] += _cost(r)
        s["unpriced"] += r["unpriced"]
    return sorted(out.values(), key=lambda s: (-s["total"], s["name"]))


def _by_window(overall: Sequence[Mapping[str, Any]], axis: list[str]) -> list[Mapping[str, Any] | None]:
    found = {r["window_start"]: r for r in overall}
    return [found.get(w) for w in axis]


def _latency(overall: Sequence[Mapping[str, Any]], axis: list[str]) -> list[dict[str, Any]]:
    rows = _by_window(overall, axis)
    return [{"name": name.upper(), "values": [None if r is None else r[f"{name}_ms"] for r in rows]}
            for name in ("p50", "p95", "p99")]


def _error_rate(overall: Sequence[Mapping[str, Any]], axis: list[str]) -> list[dict[str, Any]]:
    rows = _by_window(overall, axis)
    return [{"name": "error rate", "values": [None if r is None else r["error_rate"] for r in rows],
             "errors": [0 if r is None else r["errors"] for r in rows]}]


def _rule_window(alerts: Any, key: str) -> str | None:
    from ..results.alerts import DEFAULT_WINDOW

    rule = None if alerts is None else getattr(alerts, key)
    return None if rule is None else rule.window or alerts.window or DEFAULT_WINDOW[key]


def _tokens(days: Sequence[Mapping[str, Any]], alerts: Any) -> dict[str, Any]:
    """Tokens per UTC day against ``alerts.max_tokens`` (drawn when its window is one day)."""
    per: dict[str, int] = {}
    for r in days:
        per[r["window_start"]] = per.get(r["window_start"], 0) + r["tokens"]
    axis = sorted(per)
    window = _rule_window(alerts, "max_tokens")
    limit = alerts.max_tokens.limit if window is not None else None
    return {"axis": axis, "values": [per[d] for d in axis], "limit": limit if window == "1d" else None,
            "rule_window": window, "over": [d for d in axis if window == "1d" and per[d] > (limit or 0)]}


def _expensive(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Prompt x version by cost (all models, the whole range), the ``TOP`` most expensive."""
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for r in rows:
        e = out.setdefault((r["prompt_id"], r["prompt_version"]),
                           {"prompt_id": r["prompt_id"], "prompt_version": r["prompt_version"], "calls": 0,
                            "cost_usd": 0.0, "unpriced": 0, "tokens": 0, "models": []})
        e["calls"] += r["calls"]
        e["cost_usd"] += _cost(r)
        e["unpriced"] += r["unpriced"]
        e["tokens"] += r["tokens"]
        if r["model"] not in e["models"]:
            e["models"].append(r["model"])
    total = sum(e["cost_usd"] for e in out.values())
    ranked = sorted(out.values(), key=lambda e: (-e["cost_usd"], str(e["prompt_id"]), str(e["prompt_version"])))
    for e in ranked:
        e["per_call"] = e["cost_usd"] / e["calls"] if e["calls"] else None
        e["share"] = 100.0 * e["cost_usd"] / total if total else None
        e["models"] = sorted(str(m) for m in e["models"])
    return ranked[:TOP]


def _budget_limit(budget: float | None, alerts: Any) -> tuple[float, str] | None:
    if budget is not None:
        return budget, "--budget"
    if _rule_window(alerts, "max_cost_usd") == "30d":
        return alerts.max_cost_usd.limit, "alerts.max_cost_usd"
    return None


def _budget(paths: Sequence[str | Path], prices: Mapping[str, Any] | None, now: datetime,
            limit: tuple[float, str] | None) -> dict[str, Any] | None:
    """Month-to-date cost by day (the calendar month, UTC, of ``now``), and its straight-line
    forecast to the month's end: spent so far / time elapsed x the month's length."""
    from ..results import monitor

    if limit is None:
        return None
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(first.year, first.month)[1]
    end = first + timedelta(days=days)
    rows = monitor.figures(paths, since=first, until=now, window="day", by=("model",), prices=prices)
    daily = [0.0] * days
    for r in rows:
        daily[_at(r["window_start"]).day - 1] += _cost(r)
    today = min(days, max(1, math.ceil((now - first) / timedelta(days=1))))
    spent = sum(daily)
    elapsed = (now - first) / (end - first)
    forecast = spent / elapsed if elapsed > 0 else None
    running, cumulative = 0.0, []
    for day in range(days):
        running += daily[day]
        cumulative.append(running if day < today else None)
    return {"limit": limit[0], "source": limit[1], "month": first.strftime("%Y-%m"), "spent": spent,
            "unpriced": sum(r["unpriced"] for r in rows), "forecast": forecast, "days": days, "today": today,
            "used_pct": 100.0 * spent / limit[0] if limit[0] else None,
            "forecast_pct": 100.0 * forecast / limit[0] if limit[0] and forecast is not None else None,
            "cumulative": cumulative, "axis": [_iso(first + timedelta(days=d)) for d in range(days)]}


def _verdicts(paths: Sequence[str | Path], prices: Mapping[str, Any] | None, alerts: Any,
              now: datetime) -> list[dict[str, Any]] | None:
    """The alerts' current verdicts (results/alerts.evaluate), nothing posted."""
    from ..results import monitor
    from ..results.alerts import evaluate

    if alerts is None:
        return None

    def figures_for(span: timedelta) -> dict[str, Any] | None:
        rows = monitor.figures(paths, since=now - span, until=now, by=(), prices=prices)
        return rows[0] if rows else None

    return [v.to_dict() for v in evaluate(alerts, figures_for, now)]


def beside_production(doc: dict[str, Any], path: str | None, paths: Sequence[str | Path], since: datetime | None,
                      until: datetime | None, prices: Mapping[str, Any] | None) -> dict[str, Any]:
    """The test run's figures beside live traffic, per prompt x version x model of the run; live
    traffic is the calls the application made (the SDK's lines, no case_id): the lines of test
    runs and fixture tests in the same log are left out."""
    from ..results import monitor

    live = {tuple(r[k] for k in KEYS): r for r in monitor.figures(paths, since=since, until=until, by=KEYS,
                                                                   prices=prices, application_only=True)}
    rows = []
    for key, cases in sorted(_ci_groups(doc).items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        figures = ci_figures(cases)
        r = live.get(key)
        rows.append({**dict(zip(KEYS, key, strict=True)), **figures,
                     "live_calls": 0 if r is None else r["calls"], "live_p95_ms": None if r is None else r["p95_ms"],
                     "live_error_rate": None if r is None else r["error_rate"],
                     "live_cost_per_call": None if r is None or r["cost_usd"] is None else r["cost_usd"] / r["calls"]})
    run = doc.get("run") or {}
    return {"path": path, "run_id": run.get("id"), "finished": run.get("finished"), "rows": rows}


def _ci_groups(doc: dict[str, Any]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in doc.get("cases") or []:
        if c.get("prompt_id") in (None, "-") or c.get("model") in (None, "-"):
            continue
        groups.setdefault(tuple(c.get(k) for k in KEYS), []).append(c)
    return groups


def ci_figures(cases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A test run's pass rate (of the cases not skipped), P95 of its model latencies (as the run's
    summary) and cost per model call (priced answers; n/a when one is unpriced)."""
    from ..results.metrics import percentile

    counted = [c for c in cases if c.get("outcome") != "skipped"]
    passed = sum(c.get("outcome") in ("passed", "xpassed") for c in counted)
    called = [c for c in cases if c.get("called")]
    costs = [c.get("cost_usd") if c.get("error") is None else (c.get("cost_usd") or 0.0) for c in called]
    return {"cases": len(cases), "pass_pct": 100.0 * passed / len(counted) if counted else None,
            "ci_p95_ms": percentile([float(v) for c in cases for v in c.get("latencies") or []], 0.95),
            "ci_calls": len(called),
            "ci_cost_per_call": (sum(costs) / len(called)) if called and None not in costs else None}


# -- the page --------------------------------------------------------------------------------------


def write(path: Path, data: dict[str, Any]) -> int:
    """Write the page atomically; returns its size in bytes."""
    from ..util.files import atomic_write

    text = render(data)
    atomic_write(path, text)
    return len(text.encode("utf-8"))


def render(data: dict[str, Any]) -> str:
    from .html import json_for_html, page

    return page("dashboard.html.j2", "dashboard.js", "dashboard.css", d=data, json=Markup(json_for_html(data)),
                charts=charts(data), usd=usd, num=num, label=label)


def usd(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"${v:,.6f}" if 0 < abs(v) < 0.01 else f"${v:,.2f}"


def num(v: Any, pattern: str = "{:,.0f}") -> str:
    """``v`` by ``pattern``; the pattern ``plain`` writes a level or a value as a reader does:
    2,000,000, 6,210.5, 0.8 (never 2e+06)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if pattern == "plain":
        return f"{v:,.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else f"{v:,}"
    return pattern.format(v)


def label(window_start: str | None, window: str | None) -> str:
    """``2025-03-01`` for a day, ``03-01 14:00`` for an hour."""
    if not window_start:
        return ""
    return window_start[:10] if window == "day" else window_start[5:16].replace("T", " ")


# -- charts: inline SVG, every text escaped ----------------------------------------------------------

W, H, LEFT, RIGHT, TOP_PAD, BOTTOM = 640, 200, 64, 16, 12, 34
COLOURS = 8  # series classes s0..s7 (dashboard.css)


def charts(data: dict[str, Any]) -> dict[str, Markup]:
    axis, window = data.get("axis") or [], data.get("window")
    out: dict[str, Markup] = {}
    if axis:
        out["cost_model"] = line_chart("cost by model", axis, window, data["cost_by_model"], usd)
        out["cost_version"] = line_chart("cost by prompt version", axis, window, data["cost_by_version"], usd)
        out["latency"] = line_chart("latency P50 / P95 / P99", axis, window, data["latency"],
                                    lambda v: f"{v:,.0f} ms")
        out["errors"] = line_chart("error rate", axis, window, data["error_rate"], lambda v: f"{v:.1f}%")
    tokens = data.get("tokens") or {}
    if tokens.get("axis"):
        out["tokens"] = line_chart("tokens per day", tokens["axis"], "day",
                                   [{"name": "tokens", "values": tokens["values"]}], lambda v: f"{v:,.0f}",
                                   limit=tokens["limit"], limit_name="max_tokens")
    budget = data.get("budget")
    if budget:
        today = budget["today"] - 1
        forecast = [None] * budget["days"]
        if budget["forecast"] is not None:
            forecast[today], forecast[-1] = budget["cumulative"][today], budget["forecast"]
            for d in range(today + 1, budget["days"] - 1):  # a straight line: every day on it
                forecast[d] = forecast[today] + (budget["forecast"] - forecast[today]) * (d - today) / (
                    budget["days"] - 1 - today)
        out["budget"] = line_chart("month-to-date cost", budget["axis"], "day",
                                   [{"name": "spent", "values": budget["cumulative"]},
                                    {"name": "forecast", "values": forecast, "dashed": True}], usd,
                                   limit=budget["limit"], limit_name="budget")
    return out


def line_chart(title: str, axis: Sequence[str], window: str | None, series: Sequence[Mapping[str, Any]],
               fmt: Callable[[float], str], limit: float | None = None, limit_name: str = "") -> Markup:
    """One polyline per series over the windows (a gap where a value is None), an optional
    dashed limit line, the y range from 0, and a ``<title>`` on every point."""
    values = [v for s in series for v in s["values"] if v is not None and math.isfinite(v)]
    top = max([*values, limit or 0.0, 0.0]) * 1.08 or 1.0
    n = len(axis)
    span_x, span_y = W - LEFT - RIGHT, H - TOP_PAD - BOTTOM

    def x(i: int) -> float:
        return LEFT + (span_x * i / (n - 1) if n > 1 else span_x / 2)

    def y(v: float) -> float:
        return TOP_PAD + span_y * (1 - v / top)

    body = [f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{W - RIGHT}" y2="{y(0):.1f}" class="axis"/>',
            f'<line x1="{LEFT}" y1="{TOP_PAD}" x2="{LEFT}" y2="{y(0):.1f}" class="axis"/>']
    for v in (0.0, top / 2, top / 1.08):
        body.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" class="val">{escape(fmt(v))}</text>')
    for i in sorted({0, n // 2, n - 1}):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        body.append(f'<text x="{x(i):.1f}" y="{H - 14}" text-anchor="{anchor}" class="val">'
                    f'{escape(label(axis[i], window))}</text>')
    if limit is not None:
        body.append(f'<line x1="{LEFT}" y1="{y(limit):.1f}" x2="{W - RIGHT}" y2="{y(limit):.1f}" class="limit">'
                    f'<title>{escape(limit_name)} {escape(fmt(limit))}</title></line>'
                    f'<text x="{W - RIGHT}" y="{y(limit) - 4:.1f}" text-anchor="end" class="val limit-text">'
                    f'{escape(limit_name)} {escape(fmt(limit))}</text>')
    for k, s in enumerate(series):
        body.append(_polyline(k, s, axis, window, fmt, x, y))
    return _svg(title, body)


def _polyline(k: int, s: Mapping[str, Any], axis: Sequence[str], window: str | None, fmt: Callable[[float], str],
              x: Callable[[int], float], y: Callable[[float], float]) -> str:
    runs: list[list[str]] = [[]]
    dots = []
    for i, v in enumerate(s["values"]):
        if v is None or not math.isfinite(v):
            runs.append([])
            continue
        runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        if len(axis) <= 400:
            dots.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2"><title>{escape(s["name"])} · '
                        f'{escape(label(axis[i], window))}: {escape(fmt(v))}</title></circle>')
    dashed = " dashed" if s.get("dashed") else ""
    lines = "".join(f'<polyline points="{" ".join(r)}" class="line"/>' for r in runs if len(r) > 1)
    return f'<g class="series s{k % COLOURS}{dashed}" data-series="{k}">{lines}{"".join(dots)}</g>'


def _svg(title: str, body: list[str]) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
                  f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')
