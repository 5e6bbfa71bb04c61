"""Evaluating a prompt version: run the suites that use it (in this process, pytest's
output on stderr), score the run, and keep the score and run id in the registry.

The score is the 0-100 quality score of the prompt's cases (the mean of the judged ones),
or, when none is judged, their pass rate. A deploy is never easier than a test: a failed (or
errored) case fails the evaluation (status 1) unless a ``min_pass_rate`` gate covering its
suite (the run's, or the suite's own) passed, which says how many failures are acceptable; a
failed gate gives 6. pytest's statuses 2-5 pass through."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.errors import PromstackError


@dataclass
class Evaluation:
    prompt_id: str
    number: int
    score: int | None
    status: int
    doc: dict[str, Any] | None
    record: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.status == 0


def suites_using(settings: Any, prompt_id: str) -> list[str]:
    from ..versions import project_prompts

    return sorted({suite for suite, p, _ in project_prompts(settings, branches=True) if p.id == str(prompt_id)})


def run_pytest(root: Path, args: list[str]) -> int:
    """``pytest`` in this process, from ``root``, with its output on stderr."""
    import pytest

    cwd = Path.cwd()
    try:
        os.chdir(root)
        with contextlib.redirect_stdout(sys.stderr):
            return int(pytest.main(args))
    finally:
        os.chdir(cwd)


def run_suites(settings: Any, suites: list[str], extra: list[str]) -> tuple[int, dict[str, Any] | None]:
    """pytest --promstack on these suites; its status and results document."""
    with tempfile.TemporaryDirectory(prefix="promstack-eval-") as tmp:
        out = Path(tmp) / "results.json"
        args = ["--promstack", "-p", "no:cacheprovider", "-q", f"--promstack-json={out}",
                *(f"--promstack-suite={s}" for s in suites), *extra]
        if settings.config_file is not None:
            args.append(f"--promstack-config={settings.config_file}")
        status = run_pytest(settings.root, args)
        doc = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    return status, doc


def evaluate(settings: Any, registry: Any, prompt_id: str, version: str | None = None,
             extra: list[str] | None = None) -> Evaluation:
    from ..versions import author, now, project_prompts

    prompt_id = str(prompt_id)
    found = [(suite, p, f) for suite, p, f in project_prompts(settings) if p.id == prompt_id]
    if not found:
        raise PromstackError(f"no suite uses prompt {prompt_id!r}; name its file in a suite's prompt: in "
                             f"{settings.source}")
    suites = sorted({suite for suite, _, _ in found})
    _, current, file = found[0]
    seen = registry.observe(prompt_id, current.version, file, force_write=True)
    number = int(registry.resolve(prompt_id, version)["number"]) if version is not None else seen.number
    extra = list(extra or [])
    if "@" in prompt_id:  # a branch runs beside its main file
        extra.append("--promstack-prompt-branches")
    if number != seen.number:
        extra.append(f"--promstack-prompt-version={prompt_id}={number}")
    status, doc = run_suites(settings, suites, extra)
    score, q = _score(doc, prompt_id)
    gates = (doc or {}).get("gates") or []
    if status in (0, 1, 6):
        status = _status(doc or {}, gates)
    record = {"time": now(), "who": author(), "run_id": (doc or {}).get("run", {}).get("id"), "score": score,
              "quality": q, "status": status, "passed": status == 0, "suites": suites,
              "gates": [f"{g['key']} [{g['scope']}]: {g['value']} vs {g['limit']}: "
                        f"{'passed' if g['passed'] else 'FAILED'}" for g in gates]}
    registry.record_evaluation(prompt_id, number, record)
    return Evaluation(prompt_id, number, score, status, doc, record)


def _status(doc: dict[str, Any], gates: list[dict[str, Any]]) -> int:
    """6 when a gate failed; 1 when a case failed or errored in a suite that no passing
    ``min_pass_rate`` gate covers; else 0."""
    if any(not g["passed"] for g in gates):
        return 6
    allowed = {g["scope"] for g in gates if g["key"] == "min_pass_rate" and g["passed"]}
    failing = {c.get("suite") for c in doc.get("cases") or [] if c.get("outcome") in ("failed", "error")}
    if "overall" in allowed:
        return 0
    return 1 if any(f"suite {s}" not in allowed for s in failing) else 0


def _score(doc: dict[str, Any] | None, prompt_id: str) -> tuple[int | None, float | None]:
    """(score, quality) over this prompt's cases: the quality score, else the pass rate."""
    from ..results.gates import measure
    from ..results.metrics import quality

    if doc is None:
        return None, None
    cases = [c for c in doc.get("cases") or [] if c.get("prompt_id") == prompt_id]
    q = quality(cases)
    value = q if q is not None else measure(cases, "min_pass_rate")[0]
    return (None if value is None else round(value)), q
