"""The results JSON (``--promstack-json PATH``): one versioned document per run, written
atomically, that later reports read. Schema ``promstack-results/1``:

    {"schema": "promstack-results/1",
     "run": {"id", "started", "finished", "git_commit", "settings": {...}},
     "cases": [{"case_id", "suite", "model", "prompt_id", "prompt_version", "file", "row", "outcome",
                "vars", "messages", "output", "assertions": [{"type", "passed", "score", "reason"}],
                "judges": [...], "quality", "latencies", "input_tokens", "output_tokens", "cost_usd",
                "eval_cost_usd", "cached", "error", ...}],
     "summary": [one row per suite x model x prompt version],
     "quality": 0-100 or null, "arena": {...} or null, "calibration": [...],
     "probes": [{"suite", "model", "prompt_id", "prompt_version", "library", "run", "broken", "resisted",
                 "errors", "families": {family: {"run": [ids], "broken": [ids]}}}]}
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = "promstack-results/1"


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def document(run: dict[str, Any], records: list[dict[str, Any]], arena: dict[str, Any] | None,
             gates: list[dict[str, Any]] | None = None, warnings: list[str] | None = None,
             selection: list[dict[str, Any]] | None = None, baseline: dict[str, Any] | None = None,
             prompts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    from .metrics import calibrations, quality, summarise
    from .probes import summarise as probe_summary

    cases = sorted(records, key=lambda r: (str(r.get("case_id")), str(r.get("file"))))
    return {
        "schema": SCHEMA,
        "run": {**run, "finished": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")},
        "cases": cases,
        "summary": summarise(records),
        "quality": quality(records),
        "calibration": calibrations(records),
        "arena": _arena_json(arena),
        "gates": gates or [],
        "gate_warnings": warnings or [],
        "selection": selection or [],
        "baseline": baseline,
        "prompts": prompts or [],
        "probes": probe_summary(records),  # which probes broke each prompt, per model (results/probes.py)
    }


def _arena_json(arena: dict[str, Any] | None) -> dict[str, Any] | None:
    if arena is None:
        return None
    return {**arena, "interval": {k: list(v) for k, v in arena["interval"].items()}}


MAX_NUMBER = 10**15  # beyond any count, latency or cost a run writes (2**53 is what JavaScript keeps exactly)


def number_problem(doc: Any) -> str | None:
    """The first number of ``doc`` that no run writes, as ``cases[0].latencies[0]: NaN is not
    a number a run writes``: NaN, Infinity (also ``1e400``, which JSON reads as Infinity) and,
    outside ``run`` (which echoes the settings), magnitudes beyond ``MAX_NUMBER``. The JSON
    schema cannot say this (NaN passes ``minimum``)."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            return f"{where or 'the document'}: {shown} is not a number a run writes"
        elif (isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_NUMBER
              and not where.startswith("run.")):
            return f"{where or 'the document'}: a number beyond {MAX_NUMBER:.0e} is not a number a run writes"
    return None


def write(path: Path, doc: dict[str, Any]) -> None:
    from ..util.files import atomic_write

    atomic_write(path, json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\n")
