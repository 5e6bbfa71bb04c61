"""Deterministic assertions: the CSV shorthand, the structured form, and the built-ins.

An assertion function is ``fn(output: str, value, ctx) -> bool | (bool, reason) | Outcome``,
registered by name through ``pytest_promstack_register_assertions``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..model.specs import JUDGED, as_float, spec_id
from ..model.types import AssertionSpec, Response, Score

REGEX_TIMEOUT_S = 1.0  # per regex assertion: a backtracking pattern fails, it does not stall the run


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str = ""
    score: float | None = None


@dataclass(frozen=True)
class Context:
    """What an assertion may look at besides the output."""

    vars: dict[str, Any] = field(default_factory=dict)
    response: Response = field(default_factory=Response)
    threshold: float | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)  # spec_id -> judge verdict (judged types)
    verdict: Any = None


class Undecided(Exception):
    """An assertion that could not be decided (a regex over its time limit): it fails, even
    negated, with this message as its reason."""


def evaluate(spec: AssertionSpec, fn: Callable[..., Any], output: str, ctx: Context) -> Score:
    """Run one assertion; ``not-`` negates it. Exceptions become a failed score."""
    negate = spec.type.startswith("not-")
    ctx = Context(ctx.vars, ctx.response, spec.threshold, ctx.verdicts, ctx.verdicts.get(spec_id(spec)))
    try:
        outcome = _normalise(fn(output, spec.value, ctx))
    except Undecided as exc:
        return Score(spec.type, False, 0.0, f"{spec.type}: {exc}", spec.weight)
    except Exception as exc:  # a user's assertion may raise anything: it is a failure, not a crash
        return Score(spec.type, False, 0.0, f"{spec.type}: {type(exc).__name__}: {exc}", spec.weight)
    passed, score = outcome.passed, outcome.score if outcome.score is not None else float(outcome.passed)
    if negate:
        passed, score = not passed, 1.0 - score
    reason = outcome.reason or ("passed" if passed else "failed")
    return Score(spec.type, passed, score, f"{spec.type}: {reason}", spec.weight)


def _normalise(result: Any) -> Outcome:
    if isinstance(result, Outcome):
        return result
    if hasattr(result, "passed") and hasattr(result, "reason"):  # an Outcome-like object
        return Outcome(bool(result.passed), str(result.reason), as_float(getattr(result, "score", None)))
    if isinstance(result, bool):
        return Outcome(result)
    if isinstance(result, tuple) and len(result) == 2:
        return Outcome(bool(result[0]), str(result[1]))
    if isinstance(result, dict):
        return Outcome(bool(result.get("pass")), str(result.get("reason", "")), as_float(result.get("score")))
    raise TypeError(f"an assertion returned {type(result).__name__}; return bool, (bool, reason) or dict")


def combine(scores: list[Score], threshold: float | None) -> tuple[bool, float]:
    """Weighted case score in [0, 1]; without a threshold every assertion must pass."""
    total = sum(s.weight for s in scores)
    value = sum(s.score * s.weight for s in scores) / total if total else 1.0
    if threshold is None:
        return all(s.passed for s in scores), value
    return value >= threshold, value


# ---- built-ins -------------------------------------------------------------------------


def _show(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _items(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value)
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return [v.strip() for v in text.split(",") if v.strip()]


def _equals(output: str, value: Any, ctx: Context) -> Outcome:
    if isinstance(value, dict | list):
        try:
            return Outcome(json.loads(output) == value, f"output is not JSON equal to {value!r}")
        except json.JSONDecodeError:
            return Outcome(False, "output is not JSON")
    ok = output == str(value)
    return Outcome(ok, f"expected {_show(str(value))}, got {_show(output)}")


def _contains(fold: bool) -> Callable[..., Outcome]:
    def check(output: str, value: Any, ctx: Context) -> Outcome:
        hay, needle = (output.casefold(), str(value).casefold()) if fold else (output, str(value))
        return Outcome(needle in hay, f"{_show(str(value))} in {_show(output)}")

    return check


def _contains_many(fold: bool, need_all: bool) -> Callable[..., Outcome]:
    def check(output: str, value: Any, ctx: Context) -> Outcome:
        hay = output.casefold() if fold else output
        items = _items(value)
        found = [v for v in items if (v.casefold() if fold else v) in hay]
        missing = [v for v in items if v not in found]
        ok = not missing if need_all else bool(found)
        detail = f"missing {missing}" if need_all else f"none of {items}"
        return Outcome(ok, f"found {found}" if ok else f"{detail} in {_show(output)}")

    return check


def _starts_with(output: str, value: Any, ctx: Context) -> Outcome:
    return Outcome(output.startswith(str(value)), f"{_show(output)} starts with {_show(str(value))}")


def _regex(output: str, value: Any, ctx: Context) -> Outcome:
    """``re`` syntax, run by the ``regex`` package for its ``timeout=``: a pattern that
    backtracks exponentially (``(a+)+b``) fails after ``REGEX_TIMEOUT_S`` instead of hanging."""
    import regex

    try:
        ok = regex.search(str(value), output, timeout=REGEX_TIMEOUT_S) is not None
    except regex.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    except TimeoutError:
        raise Undecided(f"/{value}/ took longer than {REGEX_TIMEOUT_S:g} s on {len(output):,} characters of "
                        "output and was stopped; simplify the pattern (nested repeats like (a+)+ backtrack)") from None
    return Outcome(ok, f"/{value}/ {'matches' if ok else 'does not match'} {_show(output)}")


def _schema(value: Any) -> Any:
    if value in (None, ""):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _validate(data: Any, schema: Any) -> str | None:
    if schema is None:
        return None
    import jsonschema

    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"schema: {path}: {exc.message}"
    return None


def _is_json(output: str, value: Any, ctx: Context) -> Outcome:
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        return Outcome(False, f"output is not JSON ({exc.msg} at char {exc.pos})")
    problem = _validate(data, _schema(value))
    return Outcome(problem is None, problem or "valid JSON")


def _json_fragments(text: str) -> list[Any]:
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(text):
        j = min((k for k in (text.find("{", i), text.find("[", i)) if k >= 0), default=-1)
        if j < 0:
            break
        try:
            data, end = decoder.raw_decode(text, j)
            found.append(data)
            i = end
        except json.JSONDecodeError:
            i = j + 1
    return found


def _contains_json(output: str, value: Any, ctx: Context) -> Outcome:
    schema = _schema(value)
    problems = []
    for data in _json_fragments(output):
        problem = _validate(data, schema)
        if problem is None:
            return Outcome(True, "found JSON")
        problems.append(problem)
    return Outcome(False, problems[0] if problems else f"no JSON in {_show(output)}")


def _json_schema(output: str, value: Any, ctx: Context) -> Outcome:
    if _schema(value) is None:
        raise ValueError("json-schema needs a schema as its value")
    return _is_json(output, value, ctx)


def _bounds(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, dict):
        return as_float(value.get("min")), as_float(value.get("max"))
    text = str(value).strip()
    if text.startswith("<="):
        return None, float(text[2:])
    if text.startswith(">="):
        return float(text[2:]), None
    if ".." in text:
        lo, hi = text.split("..", 1)
        return (as_float(lo) if lo.strip() else None), (as_float(hi) if hi.strip() else None)
    return None, float(text)


def _length(output: str, value: Any, ctx: Context) -> Outcome:
    lo, hi = _bounds(value)
    n = len(output)
    ok = (lo is None or n >= lo) and (hi is None or n <= hi)
    return Outcome(ok, f"{n} chars, want {_range(lo, hi)}")


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g}..{hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _latency(output: str, value: Any, ctx: Context) -> Outcome:
    limit = float(value if value not in (None, "") else ctx.threshold)
    ms = ctx.response.latency_ms
    if ms is None:
        return Outcome(False, "no latency measured")
    return Outcome(ms <= limit, f"{ms:.0f} ms, limit {limit:g} ms")


def _cost(output: str, value: Any, ctx: Context) -> Outcome:
    limit = float(value if value not in (None, "") else ctx.threshold)
    cost = ctx.response.cost_usd
    if cost is None:
        return Outcome(False, "cost is n/a (no price for this model); add prices or drop the cost check")
    return Outcome(cost <= limit, f"${cost:.6f}, limit ${limit:g}")


def _finish_reason(output: str, value: Any, ctx: Context) -> Outcome:
    """promptfoo's ``finish-reason``: why the model stopped (``stop``, ``length``, ``tool_calls``,
    ``content_filter``). ``not-finish-reason:length`` fails an answer cut at max_tokens."""
    got = ctx.response.finish_reason
    want = str(value).strip().lower()
    if got is None:
        return Outcome(False, "the provider reported no finish reason")
    same = got.lower() == want
    return Outcome(same, f"finish reason {got!r}" + ("" if same else f", not {want!r}"))


def levenshtein_distance(a: str, b: str, cutoff: int | None = None) -> int:
    """Edit distance (rapidfuzz, bit-parallel C++); past ``cutoff`` it stops and returns
    ``cutoff + 1``, so a 10 MB output against a short value costs nothing."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b, score_cutoff=cutoff)


def _levenshtein(output: str, value: Any, ctx: Context) -> Outcome:
    limit = ctx.threshold if ctx.threshold is not None else 5
    cutoff = max(int(limit), 0)
    d = levenshtein_distance(output, str(value), cutoff)
    if d > cutoff:
        return Outcome(False, f"distance more than {limit:g} to {_show(str(value))}, limit {limit:g}")
    return Outcome(d <= limit, f"distance {d} to {_show(str(value))}, limit {limit:g}")


FUNCTION_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _python(output: str, value: Any, ctx: Context) -> Outcome:
    code = str(value).strip()
    context = {"vars": ctx.vars, "latency_ms": ctx.response.latency_ms, "cost_usd": ctx.response.cost_usd}
    if FUNCTION_REF.match(code):
        import importlib

        module, func = code.split(":")
        result = getattr(importlib.import_module(module), func)(output, context)
    else:
        result = eval(code, {"json": json, "re": re}, {"output": output, "context": context, "vars": ctx.vars})
    if isinstance(result, int | float) and not isinstance(result, bool):
        limit = ctx.threshold if ctx.threshold is not None else 0.5
        return Outcome(result >= limit, f"score {result:g}, threshold {limit:g}", float(result))
    outcome = _normalise(result)
    return Outcome(outcome.passed, outcome.reason or f"{code} is {bool(outcome.passed)}", outcome.score)


def _judged(output: str, value: Any, ctx: Context) -> Outcome:
    """Judge-backed types: the verdict was obtained before scoring (see session/judges)."""
    v = ctx.verdict
    if v is None:
        return Outcome(False, f"{_show(str(value))} needs an LLM judge: set default_judge: <model> (or judges:) "
                              "in promstack.yaml")
    if isinstance(v, str):  # the reason no judge could be used (unknown judge name)
        return Outcome(False, v)
    detail = "; ".join(f"{s['criterion'][:40]}={s['score']}" for s in v["scores"])
    agreement = f", agreement {v['agreement']:.0%}" if v.get("repeats", 1) > 1 else ""
    return Outcome(bool(v["passed"]), f"judge {v['judge']} {v['normalised']:.0f}/100 ({detail}){agreement}",
                   v["normalised"] / 100)


BUILTINS: dict[str, Callable[..., Any]] = {
    "equals": _equals,
    "contains": _contains(False),
    "icontains": _contains(True),
    "contains-any": _contains_many(False, False),
    "contains-all": _contains_many(False, True),
    "icontains-any": _contains_many(True, False),
    "icontains-all": _contains_many(True, True),
    "starts-with": _starts_with,
    "regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "json-schema": _json_schema,
    "length": _length,
    "latency": _latency,
    "cost": _cost,
    "finish-reason": _finish_reason,
    "levenshtein": _levenshtein,
    "python": _python,
    **{name: _judged for name in JUDGED},
}


def register_builtins(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, fn in BUILTINS.items():
        register(name, fn)
