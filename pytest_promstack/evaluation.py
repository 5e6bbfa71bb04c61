"""Evaluating a prompt version: run the suites that use it (in this process, pytest's
output on stderr), score the run, and keep the score and run id in the registry.

The score is the run's 0-100 quality score (the mean of the judged cases), or, when no case
is judged, its pass rate. With gates configured the gates decide the exit status (0 or 6);
without gates a failed case gives 1. pytest's statuses 2-5 pass through."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PromstackError


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
    from .versions import project_prompts

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
        if settings.source != "defaults":
            args.append(f"--promstack-config={settings.root / settings.source}")
        status = run_pytest(settings.root, args)
        doc = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    return status, doc


def evaluate(settings: Any, registry: Any, prompt_id: str, version: str | None = None,
             extra: list[str] | None = None) -> Evaluation:
    from .versions import author, now, project_prompts

    prompt_id = str(prompt_id)
    suites = suites_using(settings, prompt_id)
    if not suites:
        raise PromstackError(f"no suite uses prompt {prompt_id!r}; name its file in a suite's prompt: in "
                             f"{settings.source}")
    current = next(p for _, p, _ in project_prompts(settings) if p.id == prompt_id)
    file = next(f for _, p, f in project_prompts(settings) if p.id == prompt_id)
    seen = registry.observe(prompt_id, current.version, file, force_write=True)
    number = int(registry.resolve(prompt_id, version)["number"]) if version is not None else seen.number
    extra = list(extra or [])
    if number != seen.number:
        extra.append(f"--promstack-prompt-version={prompt_id}={number}")
    status, doc = run_suites(settings, suites, extra)
    score = _score(doc)
    gates = (doc or {}).get("gates") or []
    if status in (0, 1, 6) and gates:
        status = 6 if any(not g["passed"] for g in gates) else 0
    record = {"time": now(), "who": author(), "run_id": (doc or {}).get("run", {}).get("id"), "score": score,
              "quality": (doc or {}).get("quality"), "status": status, "passed": status == 0, "suites": suites,
              "gates": [f"{g['key']} [{g['scope']}]: {g['value']} vs {g['limit']}: "
                        f"{'passed' if g['passed'] else 'FAILED'}" for g in gates]}
    registry.record_evaluation(prompt_id, number, record)
    return Evaluation(prompt_id, number, score, status, doc, record)


def _score(doc: dict[str, Any] | None) -> int | None:
    if doc is None:
        return None
    if doc.get("quality") is not None:
        return round(doc["quality"])
    counted = [c for c in doc.get("cases") or [] if c.get("outcome") != "skipped"]
    if not counted:
        return None
    return round(100 * sum(c["outcome"] == "passed" for c in counted) / len(counted))
