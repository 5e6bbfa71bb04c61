"""The HTML report (``--promstack-report PATH`` or ``promstack report results.json -o PATH``):
one self-contained file rendered from the results JSON alone.

Safety: the page is rendered by Jinja2 with autoescaping; the case data travels as JSON in a
``<script type="application/json">`` element with ``<``, ``>`` and ``&`` escaped, and the page's
script puts it on screen with ``textContent`` only. A Content-Security-Policy allows exactly the
page's own script and style (by hash) and nothing from the network, so even a missed escape
could not run a script. Long texts are cut at ``MAX_TEXT`` characters with a note, and a case
ships at most ``MAX_TURNS`` turns and ``MAX_STEPS`` tool calls (the page says how many it left
out). A number
that is not finite (NaN, Infinity, 10**400: a results JSON is validated, but the page never
fails on one) is shown as "n/a" and left out of the sums and charts.

Size: cases are shipped compactly (message texts shared by many cases, such as the system
prompt, are stored once) and the case table renders one page at a time, so a 10,000-case
report opens and filters quickly.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import math
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

MAX_TEXT = 20_000
MAX_TURNS = 100  # a conversation's turns shipped per case (its first failing turn always); the JSON has all
MAX_STEPS = 200  # an agent's tool calls shipped per case
HERE = "pytest_promstack.report"


def write(path: Path, doc: dict[str, Any]) -> int:
    """Write the report atomically; returns its size in bytes."""
    from ..util.files import atomic_write

    text = render(doc)
    atomic_write(path, text)
    return len(text.encode("utf-8"))


def human_size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


@cache
def _asset(name: str) -> str:
    return files(HERE).joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def page(template: str, script: str, style: str, **context: Any) -> str:
    """A self-contained page (the run report, the monitoring dashboard): ``template`` rendered
    with autoescaping and strict undefined, the shared sortable tables' script and ``script``
    inlined, the shared ``base.css`` and ``style`` inlined, both allowed by hash and nothing else
    (a Content-Security-Policy with no network source), as ``csp``, ``script`` and ``style`` in
    the template."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    code, css = _asset("sortable.js") + "\n" + _asset(script), _asset("base.css") + _asset(style)
    csp = (f"default-src 'none'; script-src {_csp_hash(code)}; style-src {_csp_hash(css)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return env.from_string(_asset(template)).render(csp=csp, script=Markup(code), style=Markup(css), **context)


def render(doc: dict[str, Any]) -> str:
    from markupsafe import Markup

    cases = doc.get("cases") or []
    doc = {**doc, "run": {"interrupted": False, **(doc.get("run") or {})}}  # optional in the schema
    view = _view(doc)
    return page("report.html.j2", "report.js", "report.css",
                doc=doc, view=view, data=Markup(json_for_html(_table_data(doc))),
                charts={k: Markup(v) for k, v in _charts(doc, view).items()}, n_cases=len(cases), fmt=_fmt)


def json_for_html(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end the element
    (and no NaN or Infinity, which JSON.parse refuses)."""
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _num(v: Any) -> float | None:
    """``v`` as a finite float, or None (not a number, NaN, Infinity, beyond a float)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _count(v: Any) -> int:
    """A token count to add up: a whole number within 2**53 (what the page's JavaScript keeps), else 0."""
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**53 else 0


def _finite(value: Any) -> Any:
    """``value`` with every number that JSON cannot hold or JavaScript cannot keep made null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return None
    return value


def _latencies(c: dict[str, Any]) -> list[float]:
    return [f for f in (_num(v) for v in c.get("latencies") or []) if f is not None]


def _cut(text: Any) -> Any:
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + f"\n… [cut: {len(text) - MAX_TEXT:,} more characters; the results JSON has all]"
    return text


def _table_data(doc: dict[str, Any]) -> dict[str, Any]:
    """The case table's rows, compact: message texts are interned in ``texts``."""
    from ..results.metrics import is_flaky

    texts: list[str] = []
    index: dict[str, int] = {}

    def intern(s: Any) -> int:
        s = _cut(s if isinstance(s, str) else json.dumps(s, ensure_ascii=False, default=str))
        if s not in index:
            index[s] = len(texts)
            texts.append(s)
        return index[s]

    base = (doc.get("baseline") or {}).get("cases") or {}
    rows = []
    for c in doc.get("cases") or []:
        lat = _latencies(c)
        b = base.get(f"{c.get('suite')}::{c.get('case_id')}") or {}
        rows.append({
            "id": c.get("case_id"), "suite": c.get("suite"), "model": c.get("model"),
            "prompt": _prompt_name(c), "outcome": c.get("outcome"),
            "where": _probe(c) or (f"{c.get('file')}:{c.get('row')}" if c.get("row") is not None else c.get("file")),
            "status": b.get("status"), "before": b.get("before"),
            "flaky": is_flaky(c), "trunc": bool(c.get("truncated")),
            "quality": c.get("quality"), "ms": sum(lat) / len(lat) if lat else None,
            "tin": c.get("input_tokens"), "tout": c.get("output_tokens"), "cost": c.get("cost_usd"),
            "ecost": c.get("eval_cost_usd"), "cached": bool(c.get("cached")), "error": _cut(c.get("error")),
            "vars": _cut(json.dumps(c.get("vars") or {}, ensure_ascii=False, default=str)),
            "msgs": [[str(m.get("role", "")), intern(_message_text(m))] for m in c.get("messages") or []
                     if isinstance(m, dict)],
            "output": _cut(c.get("output")),
            "asserts": _asserts(c.get("assertions")),
            "judges": [[j.get("judge"), j.get("mean"), j.get("normalised"), _cut(_judge_reason(j))]
                       for j in c.get("judges") or []],
            **_trajectory(c, intern),
        })
    return {"cases": rows, "texts": texts, "baseline": bool(doc.get("baseline")), "matrix": _matrix(rows)}


def _probe(case: dict[str, Any]) -> str | None:
    """A probe case's place: its probe, family and language (results/probes.py), not a file row."""
    meta = case.get("metadata") or {}
    if not isinstance(meta, dict) or "probe" not in meta:
        return None
    return f"{case.get('file')} probe {meta['probe']} ({meta.get('probe_family')}, {meta.get('probe_lang')})"


def _asserts(assertions: Any) -> list[list[Any]]:
    return [[a.get("type"), a.get("passed"), a.get("score"), _cut(a.get("reason"))]
            for a in assertions or [] if isinstance(a, dict)]


def _message_text(m: dict[str, Any]) -> str:
    """A message's text, and the tools an assistant message calls (``→ name(arguments)``)."""
    content = m.get("content")
    text = "" if content is None else content if isinstance(content, str) else json.dumps(
        content, ensure_ascii=False, default=str)
    for call in m.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn.get("arguments")
            shown = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
            text += ("\n" if text else "") + f"→ {fn.get('name')}({shown})"
    return text


def _trajectory(c: dict[str, Any], intern: Any) -> dict[str, Any]:
    """A conversation's turns and an agent's tool calls (steps), compact; left out of the cases
    that have neither (most), so a one-shot report stays as small as it was. At most
    ``MAX_TURNS`` turns (the first failing one always kept) and ``MAX_STEPS`` steps; ``tcount``
    and ``scount`` say how many there are, for the page's "not shown" notes."""
    turns = [t for t in c.get("turns") or [] if isinstance(t, dict)]
    steps = [s for s in c.get("steps") or [] if isinstance(s, dict)]
    if not turns and not steps:
        return {}
    out: dict[str, Any] = {"calls": c.get("model_calls")}
    if turns:
        shown = _bounded(turns)
        out["turns"] = [[t.get("index"), t.get("where"), intern("" if t.get("input") is None else t["input"]),
                         _cut(t.get("output")), t.get("passed"), t.get("score"), _asserts(t.get("assertions")),
                         t.get("latency_ms"), t.get("input_tokens"), t.get("output_tokens"), t.get("cost_usd"),
                         bool(t.get("cached")), t.get("model_calls")] for t in shown]
        out["tcount"] = len(turns)
        failed = next((t.get("index") for t in turns if t.get("passed") is False), None)
        if failed is not None:
            out["fturn"] = failed
        kept, known = {t.get("index") for t in shown}, {t.get("index") for t in turns}
        steps = [s for s in steps if s.get("turn") in kept or s.get("turn") not in known]
    if steps:
        out["steps"] = [[s.get("turn"), s.get("step"), _cut(str(s.get("name"))), intern(s.get("arguments")),
                         -1 if s.get("result") is None else intern(s["result"])] for s in steps[:MAX_STEPS]]
        out["scount"] = len(c.get("steps") or [])
    return out


def _bounded(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first ``MAX_TURNS`` turns; past that, the first failing turn takes the last place."""
    if len(turns) <= MAX_TURNS:
        return turns
    failing = next((i for i, t in enumerate(turns) if t.get("passed") is False), None)
    if failing is None or failing < MAX_TURNS:
        return turns[:MAX_TURNS]
    return [*turns[:MAX_TURNS - 1], turns[failing]]


def _matrix(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """promptfoo's view: one row per case (suite, case id), one column per prompt version x
    model, each cell the index of that run in ``cases`` (-1: not run there)."""
    cols: dict[str, int] = {}
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for i, r in enumerate(rows):
        col = cols.setdefault(f"{r['prompt']} · {r['model']}", len(cols))
        base = str(r["id"] or "").rsplit("[", 1)[0]  # the case's id without its [prompt-model]
        key = (r["suite"], base)  # (one row of a file may be several cases: a promptfoo test's list of values)
        if key not in lines:
            name = base.split("::", 1)[-1]
            lines[key] = {"suite": r["suite"], "where": r["where"], "name": name, "cells": {}}  # vars: in cases
        lines[key]["cells"].setdefault(col, i)  # the first run of a repeated case id
    out = [{**line, "cells": [line["cells"].get(c, -1) for c in range(len(cols))]} for line in lines.values()]
    return {"cols": list(cols), "rows": out}


def _prompt_name(c: dict[str, Any]) -> str:
    """``support v3 [production] · b48d6902`` when the registry numbered it, else ``support@b48d6902``."""
    if c.get("prompt_number") is None:
        return f"{c.get('prompt_id')}@{c.get('prompt_version')}"
    labels = f" [{', '.join(c['prompt_labels'])}]" if c.get("prompt_labels") else ""
    return f"{c.get('prompt_id')} v{c['prompt_number']}{labels} · {c.get('prompt_version')}"


def _judge_reason(j: dict[str, Any]) -> str:
    reasons = j.get("reasons") or ([j["reason"]] if j.get("reason") else [])
    return " | ".join(str(r) for r in reasons)


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    """The summary cards and tables, computed from the document."""
    from ..results.metrics import percentile

    cases = doc.get("cases") or []
    counted = [c for c in cases if c.get("outcome") != "skipped"]
    passed = sum(c.get("outcome") == "passed" for c in counted)
    called = [c for c in cases if c.get("called")]
    errors = sum(c.get("error") is not None for c in called)
    lat = [v for c in cases for v in _latencies(c)]
    costs = [_num(c.get("cost_usd")) for c in called if c.get("error") is None]  # unknown or unreal: n/a
    ecosts = [_num(c.get("eval_cost_usd")) for c in cases]
    gates = doc.get("gates") or []
    versions: dict[str, dict[str, Any]] = {}
    for c in cases:
        if c.get("prompt_id") in (None, "-"):
            continue
        v = versions.setdefault(f"{c['prompt_id']}@{c.get('prompt_version')}",
                                {"id": c["prompt_id"], "version": c.get("prompt_version"), "cases": 0,
                                 "number": c.get("prompt_number"), "labels": c.get("prompt_labels") or []})
        v["cases"] += 1
    return {
        "cards": [
            ("pass rate", f"{100 * passed / len(counted):.1f}%" if counted else "n/a",
             f"{passed} of {len(counted)} cases"),
            ("quality score", _fmt(_num(doc.get("quality")), "{:.1f}") + ("/100" if _num(doc.get("quality")) is not None
                                                                         else ""),
             "mean of judged cases"),
            ("cost (app)", _usd(None if any(c is None for c in costs) else sum(costs)), f"{len(called)} model calls"),
            ("cost (eval)", _usd(None if any(c is None for c in ecosts) else sum(ecosts)),
             f"{sum(c.get('judge_calls') or 0 for c in cases)} judge calls"),
            ("tokens", f"{sum(_count(c.get('input_tokens')) for c in cases):,} in",
             f"{sum(_count(c.get('output_tokens')) for c in cases):,} out"
             + (f", {truncated} cut at max_tokens" if (truncated := sum(bool(c.get('truncated')) for c in cases))
                else "")),
            ("latency P50 / P95",
             f"{_fmt(percentile(lat, 0.5), '{:.0f}')} / {_fmt(percentile(lat, 0.95), '{:.0f}')} ms",
             f"{len(lat)} replies"),
            ("error rate", f"{100 * errors / len(called):.1f}%" if called else "n/a", f"{errors} failed calls"),
            ("cache hits", f"{sum(bool(c.get('cached')) for c in cases)} / {len(called)}", "replies from cache"),
            ("gates", f"{sum(g['passed'] for g in gates)} / {len(gates)} passed" if gates else "none",
             "FAILED" if any(not g["passed"] for g in gates) else ""),
        ],
        "versions": sorted(versions.values(), key=lambda v: (v["id"], v["version"])),
        "diffs": _prompt_diffs(doc),
        "names": {f"{c.get('prompt_id')}@{c.get('prompt_version')}": _prompt_name(c) for c in cases},
    }


def _prompt_diffs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Unified diffs of each prompt against the baseline's version (with a baseline), else
    against the version the ``production`` label points at (when that is another version)."""
    base = doc.get("baseline")
    texts = {(p["id"], p["version"]): p for p in doc.get("prompts") or []}
    out = []
    if base is None:
        for p in doc.get("prompts") or []:
            prod = p.get("production")
            if prod:
                out.append(_diff(p["id"], f"v{prod['number']} (production)", _named(p), prod, p))
        return out
    before = {(p["id"], p["version"]): p for p in base.get("prompts") or []}
    for ch in base.get("prompt_versions") or []:
        for old in ch["before"] or [None]:
            for new in ch["now"] or [None]:
                a, b = before.get((ch["prompt_id"], old)), texts.get((ch["prompt_id"], new))
                out.append(_diff(ch["prompt_id"], old or "(new)", new or "(gone)", a, b))
    return out


def _named(p: dict[str, Any]) -> str:
    return f"v{p['number']} ({p['version']})" if p.get("number") is not None else str(p["version"])


def _diff(prompt_id: str, old: str, new: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    lines = list(difflib.unified_diff(_prompt_lines(a), _prompt_lines(b), f"{prompt_id} {old}", f"{prompt_id} {new}",
                                      lineterm=""))
    return {"id": prompt_id, "before": old, "now": new, "lines": lines, "known": a is not None and b is not None}


def _prompt_lines(p: dict[str, Any] | None) -> list[str]:
    if p is None:
        return []
    out = []
    for m in p.get("messages") or []:
        out.append(f"[{m.get('role', '')}]")
        out += str(m.get("content", "")).splitlines()
    if p.get("model") or p.get("params"):
        out.append(f"[model] {p.get('model')} {json.dumps(p.get('params') or {}, ensure_ascii=False, sort_keys=True)}")
    return out


def _fmt(v: Any, pattern: str = "{}") -> str:
    if v is None or (isinstance(v, int | float) and not isinstance(v, bool) and _num(v) is None):
        return "n/a"  # NaN, Infinity, beyond a float
    return pattern.format(v)


def _usd(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"${v:.6f}" if 0 < v < 0.01 else f"${v:.2f}"


# -- charts: inline SVG, drawn here; no library is fetched when the page is viewed -----------

W, BAR_H, LEFT = 600, 18, 230


def _charts(doc: dict[str, Any], view: dict[str, Any]) -> dict[str, str]:
    cases = doc.get("cases") or []
    out = {"latency": _histogram([v for c in cases for v in _latencies(c)])}
    by_model: dict[str, float | None] = {}
    for c in cases:
        if c.get("model") not in (None, "-"):
            app = _num(c.get("cost_usd")) if c.get("called") and c.get("error") is None else 0.0
            raw = c.get("eval_cost_usd", 0.0)
            ecost = None if raw is None else _num(raw)
            spent = None if app is None or ecost is None else app + ecost
            before = by_model.get(c["model"], 0.0)
            by_model[c["model"]] = None if before is None or spent is None else before + spent  # unpriced: n/a
    out["cost"] = _bars(sorted(by_model.items()), _usd, "cost by model (app + eval)")
    names = view["names"]
    rates = [(f"{r['model']} · {names.get(str(r['prompt_id']) + '@' + str(r['prompt_version']))} · {r['suite']}",
              r["pass_pct"])
             for r in doc.get("summary") or [] if r["model"] != "-"]
    out["pass"] = _bars(rates, lambda v: f"{v:.1f}%", "pass rate by model and prompt version", 100.0)
    arena = doc.get("arena")
    out["arena"] = _arena(arena) if arena else ""
    return out


def _svg(height: int, body: list[str], title: str) -> str:
    from markupsafe import escape

    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>')


def _bars(items: list[tuple[str, float | None]], label: Any, title: str, top: float | None = None) -> str:
    """Horizontal bars; a value of None (e.g. a model without a price) is drawn as "n/a"."""
    from markupsafe import escape

    if not items:
        return ""
    items = [(name, _num(v)) for name, v in items]  # NaN or Infinity: drawn as n/a
    top = top or max((v for _, v in items if v is not None), default=0.0) or 1.0
    body = []
    for i, (name, v) in enumerate(items):
        y = 4 + i * (BAR_H + 6)
        w = 0.0 if v is None else max(0.0, (W - LEFT - 90) * v / top)
        shown = "n/a" if v is None else label(v)
        body.append(f'<text x="{LEFT - 6}" y="{y + 13}" text-anchor="end" class="lbl">{escape(_short(name))}</text>'
                    f'<rect x="{LEFT}" y="{y}" width="{w:.1f}" height="{BAR_H}" class="bar"/>'
                    f'<text x="{LEFT + w + 4:.1f}" y="{y + 13}" class="val">{escape(shown)}</text>')
    return _svg(8 + len(items) * (BAR_H + 6), body, title)


def _short(name: str, n: int = 30) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _histogram(values: list[float]) -> str:
    from ..results.metrics import percentile

    if not values:
        return ""
    hi = percentile(values, 0.99) or max(values)
    hi = hi if hi > 0 else max(values) or 1.0
    bins = 24
    counts = [0] * (bins + 1)  # the last bin: above the 99th percentile
    for v in values:
        counts[bins if v > hi else min(bins - 1, int(v / hi * bins))] += 1
    if counts[bins] == 0:
        counts.pop()
    top = max(counts)
    height, base = 150, 125
    step = (W - 60) / len(counts)
    body = [f'<line x1="40" y1="{base}" x2="{W - 10}" y2="{base}" class="axis"/>']
    for i, n in enumerate(counts):
        h = (base - 10) * n / top
        name = f"> {hi:.0f} ms" if i == bins else f"{i * hi / bins:.0f}–{(i + 1) * hi / bins:.0f} ms"
        body.append(f'<rect x="{40 + i * step:.1f}" y="{base - h:.1f}" width="{max(1.0, step - 2):.1f}" '
                    f'height="{h:.1f}" class="bar"><title>{name}: {n}</title></rect>')
    body.append(f'<text x="40" y="{base + 16}" class="val">0 ms</text>'
                f'<text x="{W - 10}" y="{base + 16}" text-anchor="end" class="val">{hi:.0f} ms (P99)</text>'
                f'<text x="36" y="16" text-anchor="end" class="val">{top}</text>')
    return _svg(height, body, f"latency distribution of {len(values)} replies")


def _arena(arena: dict[str, Any]) -> str:
    """Ratings (Bradley-Terry) with their 95% intervals as whiskers, win rates as labels."""
    from markupsafe import escape

    order = sorted(arena["contenders"], key=lambda c: -arena["rating"][c])
    lows = [arena["interval"].get(c, [arena["rating"][c]] * 2)[0] for c in order]
    highs = [arena["interval"].get(c, [arena["rating"][c]] * 2)[1] for c in order]
    lo, hi = min(lows + [arena["rating"][c] for c in order]), max(highs + [arena["rating"][c] for c in order])
    pad = max(10.0, (hi - lo) * 0.1)
    lo, hi = lo - pad, hi + pad
    span = W - LEFT - 110

    def x(v: float) -> float:
        return LEFT + span * (v - lo) / (hi - lo)

    body = []
    for i, c in enumerate(order):
        y = 10 + i * 26
        r, a, b = arena["rating"][c], lows[i], highs[i]
        rate = arena["win_rate"][c]
        shown = "n/a" if rate is None or (isinstance(rate, float) and math.isnan(rate)) else f"{100 * rate:.0f}% wins"
        body.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" class="lbl">{escape(_short(c))}</text>'
                    f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" class="whisker"/>'
                    f'<circle cx="{x(r):.1f}" cy="{y}" r="5" class="dot"/>'
                    f'<text x="{LEFT + span + 8}" y="{y + 4}" class="val">{r:.0f} [{a:.0f}, {b:.0f}] · '
                    f'{shown}</text>')
    return _svg(20 + len(order) * 26, body, "arena ratings with 95% intervals")
