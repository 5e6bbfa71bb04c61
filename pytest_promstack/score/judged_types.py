"""promptfoo's ``select-best`` and ``classifier``, read from their verdicts (asked for in the
judge phase, score/judging.py): which variant of a test the judge chose, and the judge's
confidence in the class."""

from __future__ import annotations

import dataclasses
from typing import Any

from .assertions import Context, _judged
from .outcome import Outcome

CLASSIFIER_THRESHOLD = 1.0  # promptfoo's default in YAML (assertion.threshold ?? 1); a CSV cell's is 0.75


def select_best(output: str, value: Any, ctx: Context) -> Outcome:
    """The chosen variant passes with score 1, the others fail with 0; each names the chosen one."""
    v = ctx.verdict
    if v is None or isinstance(v, str):
        return _judged(output, value, ctx)  # no judge set, or why none was asked (a single variant)
    mine = "this reply" if v["passed"] else "not this reply"
    reason = v["scores"][0]["reason"] if v.get("scores") else ""
    return Outcome(bool(v["passed"]), f"judge {v['judge']} chose [{v['chosen']}] of {v['of']} variants ({mine})"
                                      + (f": {reason[:200]}" if reason else ""), float(v["passed"]))


def classifier(output: str, value: Any, ctx: Context) -> Outcome:
    """The judge's score on its scale, as 0..1, must reach the threshold (1 unless given)."""
    return _judged(output, value, ctx if ctx.threshold is not None else
                   dataclasses.replace(ctx, threshold=CLASSIFIER_THRESHOLD))
