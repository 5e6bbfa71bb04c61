"""Scoring one case: its answers (one per repeat) against its assertions and the judges'
verdicts, to an ``Outcome``. Test-file cases and the fixture's ``check`` (one reply) score
here alike, with the same judge aggregation and the same failure text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..model.specs import JUDGED, group_sets
from ..model.types import AssertionSpec, Response, Score
from ..util.text import safe
from . import assertions


@dataclass(frozen=True, slots=True)
class Outcome:
    """What scoring gave a case: passed, how many runs passed, the mean score, the scores of
    the run shown (the first, or the first failing one), and why it failed."""

    passed: bool
    passes: int
    score: float | None  # None: an arena case, scored by its games
    scores: tuple[Score, ...]
    failure: str | None = None
    turns: tuple[dict[str, Any], ...] = ()  # a conversation's turns as its record shows them (results/records.py)


def score_reply(registry: Any, asserts: Sequence[AssertionSpec], response: Response, variables: dict[str, Any],
                verdicts: dict[str, Any], threshold: float | None, judge_aggregate: str, scoring: str | None = None,
                params: dict[str, Any] | None = None, trajectory: Sequence[dict[str, Any]] | None = None,
                steps: int = 1, messages: Sequence[dict[str, Any]] = ()) -> tuple[bool, float, list[Score]]:
    """One answer against every assertion: (passed, weighted score, scores). ``scoring`` is a
    promptfoo assertScoringFunction (``file:///abs/x.py:fn``) that decides instead of the mean;
    ``params`` the request's (its tools, for the tool checks); ``trajectory`` and ``steps`` what
    an agent loop did for it (``assertions.Context``; by default the tools a python: agent target
    ran, else the answer's own tool calls); ``messages`` the request's, as sent."""
    if trajectory is None:
        trajectory, steps = own_trajectory(response, steps)
    ctx = assertions.Context(vars=variables, response=response, verdicts=verdicts, registry=registry,
                             params=params or {}, trajectory=tuple(trajectory), steps=steps,
                             messages=tuple(messages))
    grouped = group_sets(asserts)  # an assert-set and its own assertions are one assertion here
    text = response.output  # the text, or the tool calls as JSON
    scores = [assertions.evaluate_transformed(spec, registry, text, ctx) if spec.transform else
              assertions.evaluate(spec, registry.assertions[spec.type.removeprefix("not-")], text, ctx)
              for spec in grouped]
    if scoring is not None:  # named by each assertion's metric: before several judges are combined
        passed, value, line = assertions.custom_combine(scoring, grouped, scores, threshold, variables)
        return passed, value, [*scores, line]
    scores = aggregate_judges(scores, judge_aggregate)
    passed, value = assertions.combine(scores, threshold)
    return passed, value, scores


def own_trajectory(response: Response, steps: int = 1) -> tuple[list[dict[str, Any]], int]:
    """What an answer did by itself: a python: agent target's steps, its model calls those it
    reported (else its highest step + 1: the calls that asked for the tools and the one that
    answered), then the tool calls of its reply (asked by its last call, not run); else the
    answer's own tool calls, in ``steps`` model calls."""
    if response.trajectory is not None:
        ran = [dict(s) for s in response.trajectory]
        calls = response.model_calls or max((int(s["step"]) for s in ran), default=0) + 1
        asked = [{"step": calls, "name": name, "arguments": args, "result": None} for name, args in response.calls]
        return ran + asked, calls
    return [{"step": 1, "name": name, "arguments": args, "result": None} for name, args in response.calls], steps


def score_case(registry: Any, asserts: Sequence[AssertionSpec], responses: Sequence[Response],
               verdicts: Callable[[int], dict[str, Any]], variables: dict[str, Any], *, where: str,
               threshold: float | None = None, min_pass: int = 1, judge_aggregate: str = "each",
               scoring: str | None = None, params: dict[str, Any] | None = None,
               messages: Sequence[dict[str, Any]] = ()) -> Outcome:
    """Every run of a case; it passes when at least ``min_pass`` runs pass (all of one run)."""
    runs = [score_reply(registry, asserts, r, variables, verdicts(i), threshold, judge_aggregate, scoring, params,
                        messages=messages) for i, r in enumerate(responses)]
    passes = sum(ok for ok, _, _ in runs)
    value = sum(v for _, v, _ in runs) / len(runs)
    need = min_pass if len(runs) > 1 else 1
    if passes >= need:
        return Outcome(True, passes, value, tuple(runs[0][2]))
    failed = next(i for i, run in enumerate(runs) if not run[0])
    _, failed_value, failed_scores = runs[failed]
    text = failure_text(where, failed_scores, failed_value, responses[failed].output, passes, len(runs), need,
                        threshold)
    return Outcome(False, passes, value, tuple(runs[0][2]), text)


def aggregate_judges(scores: list[Score], how: str) -> list[Score]:
    """Several judges on a case: each must pass (each/min), their mean must pass, or most must."""
    judged = [s for s in scores if s.type.removeprefix("not-") in JUDGED]
    if how in ("each", "min") or len(judged) < 2:
        return scores
    rest = [s for s in scores if s not in judged]
    mean = sum(s.score for s in judged) / len(judged)
    passes = sum(s.passed for s in judged)
    passed = passes * 2 > len(judged) if how == "majority" else mean >= 0.75
    reason = f"judges ({how} of {len(judged)}): {passes} passed, mean {100 * mean:.0f}/100"
    return [*rest, Score("judges", passed, mean, reason, sum(s.weight for s in judged))]


def failure_text(where: str, scores: Sequence[Score], value: float, output: str, passes: int, runs: int,
                 need: int, threshold: float | None) -> str:
    """``where: 1 of 2 assertions failed`` (or the repeats), each assertion with ✓/✗, the output."""
    failed = [s for s in scores if not s.passed]
    head = f"{where}: {len(failed)} of {len(scores)} assertions failed"
    if runs > 1:
        head = f"{where}: passed {passes} of {runs} repeats, needs {need}; a failing one:"
    if threshold is not None:
        head += f" (score {value:.2f} < threshold {threshold:g})"
    lines = [head] + [f"  {'✓' if s.passed else '✗'} {s.reason}" for s in scores]
    shown = output if len(output) <= 500 else output[:499] + "…"
    lines.append(f"  output: {shown!r}")
    return safe("\n".join(lines), newlines=True)
