"""Baselines: a previous run's results JSON (``--promstack-baseline PATH``) against which
each case of this run is marked new / fixed / regressed / still failing / still passing, and
each suite x model x prompt shows its deltas (pass rate, quality, P95 latency, cost).

A case is the same case when its suite and case id match (the case id names file, case,
prompt variant and model, never the prompt's content hash, so an edited prompt is compared
with its previous version, and the change of version is reported as such). A baseline case
that this run collected but did not run (deselected with ``-k``/``-m``, or its suite not
selected) is "not run"; only a case that no longer exists is "removed".
Passing means passed or xpassed; failing means failed or error. A case xfailed or skipped now
is "not compared"; an xfailed baseline counts as failing, a skipped one as absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError

REGRESSION = 7  # the exit status when --promstack-fail-on-regression finds a regression
STATUSES = ("regressed", "fixed", "still failing", "new", "still passing", "not compared")
PASSING = ("passed", "xpassed")
FAILING = ("failed", "error")
GROUP = ("suite", "model", "prompt_id")


def load(path: Path, what: str = "baseline") -> dict[str, Any]:
    """A results document; a clear error names the file and the fix."""
    from ..util.strict import DuplicateKeyError, LimitError, load_json
    from .document import SCHEMA, number_problem

    try:
        doc = load_json(path.read_text(encoding="utf-8"))  # bounded: depth, repeated keys
    except FileNotFoundError:
        how = (f"--promstack-save-baseline {path} (or --promstack-json) on the run to compare with"
               if what == "baseline" else f"--promstack-json {path} on a run")
        raise PromstackError(f"{path}: {what} not found; write one with {how}") from None
    except (DuplicateKeyError, LimitError) as exc:
        raise PromstackError(f"{exc.at(str(path))}; not a results JSON as --promstack-json writes it: write it "
                             "again with --promstack-json or --promstack-save-baseline") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        again = "--promstack-save-baseline" if what == "baseline" else "--promstack-json"
        raise PromstackError(f"{path}: not a readable results JSON ({exc}); write it again with {again}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("cases"), list):
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise PromstackError(f"{path}: schema {found!r} is not {SCHEMA!r}: not a results JSON as "
                             "--promstack-json or --promstack-save-baseline write it")
    problem = schema_problem(doc) or number_problem(doc)
    if problem is not None:
        raise PromstackError(f"{path}: {problem}; not a results JSON as --promstack-json writes it (was it "
                             "edited?): write it again with --promstack-json or --promstack-save-baseline")
    return doc


def schema_problem(doc: dict[str, Any]) -> str | None:
    """The first place where ``doc`` breaks results.schema.json, as ``cases[0].outcome: …``."""
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("pytest_promstack.results").joinpath("results.schema.json").read_text(encoding="utf-8"))
    error = next(jsonschema.Draft202012Validator(schema).iter_errors(doc), None)  # in document order
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    return f"{where or 'the document'}: {message}"


def status(current: str | None, before: str | None) -> str:
    """A case's status against its baseline outcome (None: not in the baseline). An xfailed
    baseline counts as failing; a skipped one as absent."""
    if before is None or before == "skipped":
        return "new" if current in PASSING + FAILING else "not compared"
    if current in PASSING:
        return "still passing" if before in PASSING else "fixed"
    if current in FAILING:
        return "regressed" if before in PASSING else "still failing"
    return "not compared"


def compare(cases: list[dict[str, Any]], baseline: dict[str, Any], margin: float = 5.0,
            path: str = "", existing: set[str] | None = None) -> dict[str, Any]:
    """The comparison, as stored under ``baseline`` in the results JSON. ``margin``: the quality
    drop (points of 0-100) that counts as a regression. ``existing``: the case ids this run
    knows of, run or not (None: every case missing from this run counts as removed)."""
    from .metrics import quality, summarise

    before = {(c.get("suite"), c.get("case_id")): c for c in baseline["cases"]}
    now_keys = {(c.get("suite"), c.get("case_id")) for c in cases}
    per_case: dict[str, dict[str, Any]] = {}
    counts = dict.fromkeys(STATUSES, 0)
    for c in cases:
        old = before.get((c.get("suite"), c.get("case_id")))
        st = status(c.get("outcome"), old.get("outcome") if old else None)
        counts[st] += 1
        entry: dict[str, Any] = {"status": st}
        if old is not None:
            entry["before"] = old.get("outcome")
            if old.get("prompt_version") != c.get("prompt_version"):
                entry["prompt_version_before"] = old.get("prompt_version")
            if c.get("quality") is not None and old.get("quality") is not None:
                entry["quality_delta"] = c["quality"] - old["quality"]
        per_case[_key(c)] = entry
    missing = sorted(str(k[1]) for k in before if k not in now_keys)
    removed = [k for k in missing if existing is None or k not in existing]
    not_run = [k for k in missing if existing is not None and k in existing]
    # figures of the same selection on both sides: a case this run did not run (deselected) is
    # left out of the baseline's too, so -k does not show a pass-rate "change"
    skipped = set(not_run)
    same = [c for c in baseline["cases"] if str(c.get("case_id")) not in skipped]
    groups = _group_deltas(summarise(cases), summarise(same))
    q_now, q_before = quality(cases), quality(same)
    drop = None if q_now is None or q_before is None else q_before - q_now
    regressions = sorted(k for k, v in per_case.items() if v["status"] == "regressed")
    versions = _versions(cases, baseline["cases"])
    return {
        "path": path,
        "run": baseline.get("run", {}),
        "counts": counts,
        "removed": removed,
        "not_run": not_run,
        "cases": per_case,
        "groups": groups,
        "quality": {"now": q_now, "before": q_before, "drop": drop, "margin": margin},
        "regressions": regressions,
        "regressed": bool(regressions) or (drop is not None and drop > margin),
        "prompt_versions": versions,
        "prompts": [p for p in baseline.get("prompts") or [] if p.get("id") in {v["prompt_id"] for v in versions}],
    }


def _key(case: dict[str, Any]) -> str:
    return f"{case.get('suite')}::{case.get('case_id')}"


def _group_deltas(now: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per suite x model x prompt id: this run's figures, the baseline's, and the prompt versions."""
    def merge(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
        out: dict[tuple[str, ...], dict[str, Any]] = {}
        for r in rows:  # a prompt id with two versions in one run: the last version's row wins
            out[tuple(str(r[k]) for k in GROUP)] = r
        return out

    a, b = merge(now), merge(before)
    rows = []
    for key in sorted(set(a) | set(b)):
        n, o = a.get(key), b.get(key)
        row: dict[str, Any] = dict(zip(GROUP, key, strict=True))
        row["version"] = n["prompt_version"] if n else None
        row["version_before"] = o["prompt_version"] if o else None
        for metric in ("pass_pct", "quality", "p95_ms", "cost_usd"):
            x, y = (n or {}).get(metric), (o or {}).get(metric)
            row[metric] = x
            row[f"{metric}_before"] = y
            row[f"{metric}_delta"] = None if x is None or y is None else x - y
        rows.append(row)
    return rows


def _versions(cases: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompt ids whose version differs from the baseline's."""
    def versions(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in rows:
            if r.get("prompt_id") not in (None, "-"):
                out.setdefault(str(r["prompt_id"]), set()).add(str(r.get("prompt_version")))
        return out

    a, b = versions(cases), versions(before)
    return [{"prompt_id": p, "now": sorted(a.get(p, ())), "before": sorted(b.get(p, ()))}
            for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]


def lines(comp: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    """Terminal lines, regressions first."""
    by_key = {_key(c): c for c in cases}
    run = comp["run"]
    ref = f"run {run.get('id', '?')}" + (f", commit {str(run['git_commit'])[:10]}" if run.get("git_commit") else "")
    out = []
    for key in comp["regressions"]:
        c = by_key[key]
        reason = _first_failure(c)
        out.append(f"promstack: REGRESSED: {c['case_id']} [{c['suite']}]: {comp['cases'][key]['before']} -> "
                   f"{c['outcome']}" + (f": {reason}" if reason else ""))
    q = comp["quality"]
    if q["drop"] is not None and q["drop"] > q["margin"]:
        out.append(f"promstack: REGRESSED: quality score {q['before']:.1f} -> {q['now']:.1f} "
                   f"(drop {q['drop']:.1f} > margin {q['margin']:.1f})")
    counts = ", ".join(f"{n} {s}" for s, n in comp["counts"].items() if n)
    removed = f", {len(comp['removed'])} removed" if comp["removed"] else ""
    if comp.get("not_run"):
        removed += f", {len(comp['not_run'])} not run (deselected)"
    changed = sum(1 for e in comp["cases"].values() if "prompt_version_before" in e)
    if changed:
        removed += f"; {changed} compared across a prompt change"
    out.append(f"promstack: baseline {comp['path']} ({ref}): {counts or 'no cases'}{removed}")
    for g in comp["groups"]:
        changes = [_delta(g, m) for m in ("pass_pct", "quality", "p95_ms", "cost_usd")]
        changes = [c for c in changes if c]
        if g["version"] != g["version_before"] and g["version"] and g["version_before"]:
            changes.insert(0, f"prompt {g['version_before']} -> {g['version']}")
        if changes:
            out.append(f"promstack:   {g['suite']} / {g['model']} / {g['prompt_id']}: {'; '.join(changes)}")
    return out


def _delta(g: dict[str, Any], metric: str) -> str:
    d = g.get(f"{metric}_delta")
    if not d:
        return ""
    name, fmt = {"pass_pct": ("pass %", "{:+.1f}"), "quality": ("quality", "{:+.1f}"),
                 "p95_ms": ("P95 ms", "{:+.0f}"), "cost_usd": ("cost USD", "{:+.6f}")}[metric]
    return f"{name} {fmt.format(d)}"


def _first_failure(case: dict[str, Any]) -> str:
    if case.get("error"):
        return str(case["error"]).splitlines()[0][:200]
    for a in case.get("assertions") or []:
        if not a.get("passed"):
            return "✗ " + str(a.get("reason") or a.get("type"))[:200]
    return ""
