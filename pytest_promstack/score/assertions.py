"""Deterministic assertions: the CSV shorthand, the structured form, and the built-ins.

An assertion function is ``fn(output: str, value, ctx) -> bool | (bool, reason) | Outcome``,
registered by name through ``pytest_promstack_register_assertions``.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..model.specs import JUDGED, as_float, bounds, spec_id, split_list
from ..model.types import AssertionSpec, Response, Score
from .outcome import Outcome, Undecided

REGEX_TIMEOUT_S = 1.0  # per regex assertion: a backtracking pattern fails, it does not stall the run


@dataclass(frozen=True)
class Context:
    """What an assertion may look at besides the output."""

    vars: dict[str, Any] = field(default_factory=dict)
    response: Response = field(default_factory=Response)
    threshold: float | None = None
    verdicts: dict[str, Any] = field(default_factory=dict)  # spec_id -> judge verdict (judged types)
    verdict: Any = None
    registry: Any = None  # the run's registry, for a type that scores other assertions (assert-set)
    params: dict[str, Any] = field(default_factory=dict)  # the request's params: its tools, functions, ...
    # what an agent did for this answer, in order: each tool call the model made, as
    # {"step": n (the model call that asked it, 1-based), "name", "arguments" (parsed JSON, or the text
    # when it is not JSON), "result" (what the tool returned; None when no tool ran)}; a one-shot
    # answer's are its own tool calls, from its one step
    trajectory: tuple[dict[str, Any], ...] = ()
    steps: int = 1  # the model calls that made this answer (an agent loop's, else 1)
    negated: bool = False  # the assertion is a not- one (its verdict is inverted after the call)
    messages: tuple[dict[str, Any], ...] = ()  # the request's messages, as sent (leaks-prompt reads its system prompt)


def evaluate(spec: AssertionSpec, fn: Callable[..., Any], output: str, ctx: Context) -> Score:
    """Run one assertion; ``not-`` negates it. Exceptions become a failed score."""
    negate = spec.type.startswith("not-")
    verdict = ctx.verdicts.get(spec_id(spec)) if ctx.verdicts else None  # (spec_id is a json.dumps: only when judged)
    ctx = replace(ctx, threshold=spec.threshold, verdict=verdict, negated=negate)
    try:
        outcome = _normalise(fn(output, spec.value, ctx))
    except Undecided as exc:
        return Score(spec.type, False, 0.0, f"{spec.type}: {exc}", spec.weight)
    except Exception as exc:  # a user's assertion may raise anything: it is a failure, not a crash
        return Score(spec.type, False, 0.0, f"{spec.type}: {type(exc).__name__}: {exc}", spec.weight)
    passed, score = outcome.passed, outcome.score if outcome.score is not None else float(outcome.passed)
    if negate:
        passed, score = not passed, 1.0 - score if outcome.negated_score is None else outcome.negated_score
    reason = outcome.reason or ("passed" if passed else "failed")
    return Score(spec.type, passed, score, f"{spec.type}: {reason}", spec.weight)


class TransformFailed(Exception):
    """A transform raised: the line names it and its error."""


def transformed(spec: AssertionSpec, output: str, ctx: Context) -> str:
    """The output ``spec`` checks: after its transforms (promptfoo's ``transform``: a python
    expression over ``output`` and ``context``, or ``file://x.py:fn``), in order; what a judge,
    an embedding or a moderation model is shown too. Raises ``TransformFailed``."""
    for code in spec.transform:
        try:
            result = _run_code(code, output, ctx)
        except Exception as exc:  # code from a file: its error is the assertion's failure, not a crash
            raise TransformFailed(f"transform {code[:60]!r}: {type(exc).__name__}: {exc}") from None
        output = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return output


def shown(spec: AssertionSpec, reply: Response, variables: dict[str, Any] | Any = None) -> str:
    """What a model asked about ``reply`` for ``spec`` (a judge, an embedding, a moderation) is
    shown: its output after the assertion's transforms; raises ``TransformFailed``."""
    if not spec.transform:
        return reply.output
    return transformed(spec, reply.output, Context(vars=dict(variables or {}), response=reply))


def evaluate_transformed(spec: AssertionSpec, registry: Any, output: str, ctx: Context) -> Score:
    """``spec`` on its output after its transforms; a transform that raises fails the
    assertion with its error."""
    try:
        output = transformed(spec, output, ctx)
    except TransformFailed as exc:
        return Score(spec.type, False, 0.0, f"{spec.type}: {exc}", spec.weight)
    return evaluate(spec, registry.assertions[spec.type.removeprefix("not-")], output, ctx)


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
        passed = result.get("pass", result.get("pass_"))  # pass_: a python dataclass's name for it
        return Outcome(bool(passed), str(result.get("reason", "")), as_float(result.get("score")))
    raise TypeError(f"an assertion returned {type(result).__name__}; return bool, (bool, reason) or dict")


def combine(scores: list[Score], threshold: float | None) -> tuple[bool, float]:
    """Weighted case score in [0, 1]; without a threshold every assertion must pass."""
    total = sum(s.weight for s in scores)
    value = sum(s.score * s.weight for s in scores) / total if total else 1.0
    if threshold is None:
        return all(s.passed for s in scores), value
    return value >= threshold, value


def custom_combine(scoring: str, asserts: Sequence[AssertionSpec], scores: list[Score], threshold: float | None,
                   variables: dict[str, Any]) -> tuple[bool, float, Score]:
    """promptfoo's assertScoringFunction: ``fn(named_scores, context)`` with the weighted mean
    score of each metric (an assertion's ``metric``, else its type) and ``context`` holding
    ``threshold``, ``componentResults`` and ``vars``; it returns what a python check may (a
    bool, a score, ``{pass, score, reason}``). Returns (passed, score, its own line for the
    report); a function that raises fails the case with its error as that line."""
    sums: dict[str, list[float]] = {}
    for spec, s in zip(asserts, scores, strict=False):
        total = sums.setdefault(spec.metric or spec.type, [0.0, 0.0])
        total[0] += s.score * s.weight
        total[1] += s.weight
    named = {name: (v / w if w else 0.0) for name, (v, w) in sums.items()}
    context = {"threshold": threshold, "vars": variables,
               "componentResults": [{"pass": s.passed, "score": s.score, "reason": s.reason} for s in scores]}
    path, func = scoring[len("file://"):].rsplit(":", 1)
    kind = "assertScoringFunction"
    try:
        result = _from_text(_function_in(path, func)(named, context))
        outcome = _scored(result, threshold) if _is_score(result) else _normalise(result)
    except Exception as exc:  # code from the repository: the case fails with its error, no crash
        return False, 0.0, Score(kind, False, 0.0, f"{kind}: {type(exc).__name__}: {exc}", 0.0)
    value = outcome.score if outcome.score is not None else float(outcome.passed)
    reason = outcome.reason or ("passed" if outcome.passed else "failed")
    return outcome.passed, value, Score(kind, outcome.passed, value, f"{kind}: {reason}", 0.0)


# ---- built-ins -------------------------------------------------------------------------


def _show(text: str, limit: int = 80) -> str:
    """A value or output in a reason: quoted, its spaces and newlines as they are (``' 4'`` is not
    ``'4'``; a newline shows as ``\\n``), cut at ``limit`` characters."""
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
    return split_list(text)


def _equals(output: str, value: Any, ctx: Context) -> Outcome:
    if isinstance(value, dict | list):
        try:
            return Outcome(json.loads(output) == value, f"output is not JSON equal to {value!r}")
        except json.JSONDecodeError:
            return Outcome(False, "output is not JSON")
    ok = output == str(value)
    return Outcome(ok, f"expected {_show(str(value))}, got {_show(output)}")


def _contains(fold: bool) -> Callable[..., Outcome]:
    def check(output: str, value: Any, ctx: Context) -> Outcome:  # i-: lower(), as JavaScript's toLowerCase
        hay, needle = (output.lower(), str(value).lower()) if fold else (output, str(value))
        return Outcome(needle in hay, f"{_show(str(value))} in {_show(output)}")

    return check


def _contains_many(fold: bool, need_all: bool) -> Callable[..., Outcome]:
    def check(output: str, value: Any, ctx: Context) -> Outcome:
        hay = output.lower() if fold else output
        keys = {v: (v.lower() if fold else v) for v in _items(value)}  # each value once, in order
        present = _occurring(set(keys.values()), hay)
        found = [v for v, k in keys.items() if k in present]
        missing = [v for v, k in keys.items() if k not in present]
        ok = not missing if need_all else bool(found)
        detail = f"missing {_listing(missing)}" if need_all else f"none of {_listing(list(keys))}"
        return Outcome(ok, f"found {_listing(found)}" if ok else f"{detail} in {_show(output)}")

    return check


def _listing(values: list[str], limit: int = 10) -> str:
    """A list for a reason line: at most ``limit`` values, each cut short, and how many more."""
    shown = [v if len(v) <= 40 else v[:39] + "…" for v in values[:limit]]
    return f"{shown}" + (f" and {len(values) - limit:,} more" if len(values) > limit else "")


def _occurring(needles: set[str], hay: str) -> set[str]:
    """The needles found in ``hay``, within ``REGEX_TIMEOUT_S``. Searching for each costs
    needles x output; with many needles of few lengths, every slice of the output of each
    length is looked up in a set instead (100,000 values in 150 kB: 0.15 s, not 16 s)."""
    deadline = time.monotonic() + REGEX_TIMEOUT_S
    by_length: dict[int, set[str]] = {}
    for needle in needles:
        by_length.setdefault(len(needle), set()).add(needle)
    if len(needles) <= 100 * len(by_length):
        found = set()
        for i, needle in enumerate(needles):
            if needle in hay:
                found.add(needle)
            if i % 256 == 0:
                _in_time(deadline, needles, hay)
        return found
    found = by_length.pop(0, set())
    for n, group in by_length.items():
        for start in range(0, len(hay) - n + 1, 65536):
            stop = min(start + 65536, len(hay) - n + 1)
            found |= group.intersection(hay[i:i + n] for i in range(start, stop))
            _in_time(deadline, needles, hay)
    return found


def _in_time(deadline: float, needles: set[str], hay: str) -> None:
    if time.monotonic() > deadline:
        raise Undecided(f"looking for {len(needles):,} values in {len(hay):,} characters of output took longer than "
                        f"{REGEX_TIMEOUT_S:g} s and was stopped; check fewer values at once")


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
    """A schema given as a mapping, as JSON text or (as promptfoo allows) as YAML text."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        from ..util.strict import load_yaml

        schema = load_yaml(value)
        if not isinstance(schema, dict):
            raise ValueError(f"the schema {_show(value)} is neither a JSON nor a YAML mapping") from None
        return schema


def _validate(data: Any, schema: Any, deadline: float | None = None) -> str | None:
    """None, or why ``data`` breaks ``schema``. The schema's patterns run on the ``regex``
    package within ``REGEX_TIMEOUT_S`` in all (``deadline``), like the ``regex`` assertion:
    jsonschema's own ``re`` would backtrack for ever on ``^(a+)+$`` and a long value."""
    if schema is None:
        return None
    import jsonschema
    from referencing.exceptions import Unresolvable

    token = _SCHEMA_DEADLINE.set(deadline or time.monotonic() + REGEX_TIMEOUT_S)
    try:
        cls = _bounded_validator(jsonschema.validators.validator_for(schema))
        jsonschema.validate(data, schema, cls=cls, registry=_local_only(), format_checker=cls.FORMAT_CHECKER)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"schema: {path}: {exc.message}"
    except Unresolvable as exc:
        raise Undecided(f"the schema's $ref {exc.ref!r} is not in the schema; a schema from a test file is "
                        "self-contained (put shared parts under $defs): nothing is fetched") from None
    finally:
        _SCHEMA_DEADLINE.reset(token)
    return None


@functools.cache
def _local_only() -> Any:
    """A registry that resolves nothing outside the schema itself: a test file's ``$ref`` to
    ``http://…`` must not make the run fetch (or wait for) a URL a pull request chose."""
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    def refuse(uri: str) -> Any:
        raise NoSuchResource(ref=uri)

    return Registry(retrieve=refuse)  # type: ignore[call-arg]


_SCHEMA_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("promstack_schema_deadline", default=0.0)


def _schema_search(pattern: str, text: str) -> bool:
    import regex

    left = _SCHEMA_DEADLINE.get() - time.monotonic()
    try:
        if left <= 0:
            raise TimeoutError
        return regex.search(pattern, text, timeout=left) is not None
    except TimeoutError:
        raise Undecided(f"the schema's pattern /{pattern}/ took longer than {REGEX_TIMEOUT_S:g} s on {len(text):,} "
                        "characters and was stopped; simplify the pattern (nested repeats like (a+)+ backtrack)"
                        ) from None


@functools.cache
def _bounded_validator(cls: Any) -> Any:
    """``cls`` with the keywords that run a schema's regular expressions on ``_schema_search``."""
    from jsonschema import validators

    mine = {"pattern": _pattern, "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties}
    return validators.extend(cls, {k: v for k, v in mine.items() if k in cls.VALIDATORS})


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not _schema_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for k, v in instance.items():
            if _schema_search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Any:
    from jsonschema import ValidationError

    if not validator.is_type(instance, "object"):
        return
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = [k for k in instance if k not in known and not any(_schema_search(p, k) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(e) for e in sorted(extras, key=str))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{names} {verb} not match any of the regexes: "
                                  f"{', '.join(repr(p) for p in sorted(patterns))}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


def _is_json(output: str, value: Any, ctx: Context) -> Outcome:
    try:
        data = json.loads(output)
    except json.JSONDecodeError as exc:
        return Outcome(False, f"output is not JSON ({exc.msg} at char {exc.pos})")
    except RecursionError:
        return Outcome(False, "output is not JSON that can be read (nested too deep)")
    schema, which = _schema(value), "the assertion's schema"
    if schema is None:
        schema, which = requested_schema(ctx.params)
    problem = _validate(data, schema)
    if problem is not None:
        return Outcome(False, f"{problem} ({which})")
    return Outcome(True, "valid JSON" + (f", valid against {which}" if schema is not None else ""))


def requested_schema(params: dict[str, Any]) -> tuple[Any, str]:
    """The JSON schema the request asked the model for (``response_format: {type: json_schema}``),
    and how a reason names it; (None, "") when it asked for none."""
    fmt = params.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None, ""
    spec = fmt.get("json_schema") or {}
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        return None, ""
    return schema, f"the request's response_format schema {spec.get('name', '')!r}"


# where a JSON object or array can begin: "{" before a key or "}", "[" before a value or "]"
# (a run of "{" or "[[[…" of no JSON at all is passed over in one regex step, not tried one by one)
_JSON_START = re.compile(r'\{[ \t\r\n]*["}]|\[[ \t\r\n]*[\[\]{"\-0-9tfn]')


def _json_fragments(text: str) -> Iterator[Any]:
    """Each JSON object or array in ``text``, left to right. Linear-ish: the next place that
    can start one is found by one regex step (not two ``find`` scans to the end), each attempt
    reads a window that grows only while the value does (not the rest of the text), and
    failed attempts may read about four times the text in all before the scan gives up."""
    decoder, pos = json.JSONDecoder(), 0
    budget, attempts = 4 * len(text) + 65536, 0
    while (start := _JSON_START.search(text, pos)) is not None:
        data, end, cost = _decode_at(decoder, text, start.start())
        if end is not None:
            yield data
            pos = end
            continue
        attempts += 1
        budget -= max(cost, 32)
        if budget < 0:
            raise Undecided(f"gave up looking for JSON after {attempts:,} places that start like JSON but are not, "
                            f"in {len(text):,} characters of output (the scan is kept linear)")
        pos = start.start() + 1


def _decode_at(decoder: json.JSONDecoder, text: str, at: int) -> tuple[Any, int | None, int]:
    """(value, end, 0) for a JSON value starting at ``at``, else (None, None, characters read)."""
    window, read = 256, 0
    while True:
        chunk = text[at:at + window]
        try:
            data, end = decoder.raw_decode(chunk)
            return data, at + end, 0
        except json.JSONDecodeError as exc:
            unterminated = exc.msg.startswith("Unterminated string")  # its pos is where the string began
            if at + window < len(text) and (unterminated or exc.pos >= len(chunk) - 16):
                read += len(chunk)
                window *= 4  # it ran into the window's end: read further
                continue
            return None, None, read + (len(chunk) if unterminated else exc.pos + 1)
        except RecursionError:
            return None, None, read + len(chunk)


def _contains_json(output: str, value: Any, ctx: Context) -> Outcome:
    schema, which = _schema(value), "the assertion's schema"
    if schema is None:
        schema, which = requested_schema(ctx.params)
    deadline = time.monotonic() + REGEX_TIMEOUT_S  # for the schema's patterns over all fragments
    first = None
    for data in _json_fragments(output):
        problem = _validate(data, schema, deadline)
        if problem is None:
            return Outcome(True, "found JSON" + (f" valid against {which}" if schema is not None else ""))
        first = first or f"{problem} ({which})"
    return Outcome(False, first or f"no JSON in {_show(output)}")


def _json_schema(output: str, value: Any, ctx: Context) -> Outcome:
    if _schema(value) is None and requested_schema(ctx.params)[0] is None:
        raise Undecided("needs a schema: give one as its value, or ask the model for one with the prompt's "
                        "response_format {type: json_schema}")
    return _is_json(output, value, ctx)


def _length(output: str, value: Any, ctx: Context) -> Outcome:
    lo, hi = bounds(value)
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


def _run_code(code: str, output: str, ctx: Context) -> Any:
    """A python check or transform: ``file:///abs/x.py:fn`` (resolved when the test file was
    read), ``module:function`` from the project root, or an expression over ``output``,
    ``context`` and ``vars``."""
    context = {"vars": ctx.vars, "latency_ms": ctx.response.latency_ms, "cost_usd": ctx.response.cost_usd,
               "trajectory": [dict(s) for s in ctx.trajectory], "steps": ctx.steps}
    if code.startswith("file://"):
        path, func = code[len("file://"):].rsplit(":", 1)
        return _function_in(path, func)(output, context)
    if FUNCTION_REF.match(code):
        import importlib

        module, func = code.split(":")
        return getattr(importlib.import_module(module), func)(output, context)
    if "\n" in code:  # several lines: a function body that returns, as promptfoo runs one
        return _body(code)(output, context, ctx.vars)
    return eval(code, {"json": json, "re": re}, {"output": output, "context": context, "vars": ctx.vars})


@functools.lru_cache(maxsize=256)
def _body(code: str) -> Callable[..., Any]:
    """Lines of python as the body of ``def check(output, context, vars)`` (compiled once)."""
    import textwrap

    namespace: dict[str, Any] = {"json": json, "re": re}
    exec(compile("def check(output, context, vars):\n" + textwrap.indent(textwrap.dedent(code), "    "),
                 "<python check>", "exec"), namespace)
    return namespace["check"]


def _python(output: str, value: Any, ctx: Context) -> Outcome:
    """A python check's result, read as promptfoo reads it: a bool; a number (a score that
    passes at the threshold, or above 0 without one); ``{pass, score, reason}`` (``pass_`` too, a
    dataclass's field), which with a threshold must also reach it; or text holding one of
    these (``"true"``, ``"0.8"``, a JSON object)."""
    code = str(value).strip()
    result = _from_text(_run_code(code, output, ctx))
    if _is_score(result):
        return _scored(result, ctx.threshold)
    outcome = _normalise(result)
    passed, reason = outcome.passed, outcome.reason or f"{code.splitlines()[0][:60]} is {bool(outcome.passed)}"
    if ctx.threshold is not None and outcome.score is not None and outcome.score < ctx.threshold:
        passed, reason = False, f"score {outcome.score:g} is less than the threshold {ctx.threshold:g}: {reason}"
    return Outcome(passed, reason, outcome.score)


def _is_score(result: Any) -> bool:
    return isinstance(result, int | float) and not isinstance(result, bool)


def _scored(score: float, threshold: float | None) -> Outcome:
    """A bare score from python (a check or a scoring function), read as promptfoo reads one:
    it passes at the threshold, or above 0 without one."""
    if threshold is None:
        return Outcome(score > 0, f"score {score:g} (passes above 0 without a threshold)", float(score))
    return Outcome(score >= threshold, f"score {score:g}, threshold {threshold:g}", float(score))


def _from_text(result: Any) -> Any:
    if not isinstance(result, str):
        return result
    text = result.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        pass
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    raise TypeError(f"a python check returned the text {_show(text)}; return a bool, a score, or "
                    "{'pass': ..., 'score': ..., 'reason': ...}")


def _function_in(path: str, name: str) -> Callable[..., Any]:
    """``name`` (``fn`` or ``Class.method``) from the python file at ``path``, loaded once per run."""
    target: Any = _module_at(path)
    for part in name.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{path} has no {name!r}; define def {name.split('.')[-1]}(output, context)")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{path}: {name!r} is not a function")
    return target


@functools.cache
def _module_at(path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"promstack_check_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} cannot be loaded as python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _judged(output: str, value: Any, ctx: Context) -> Outcome:
    """Judge-backed types: the verdict was obtained before scoring (see score/judging.py). With
    a threshold (``context-faithfulness(0.8):``, promptfoo's 0..1), the judge's score on its
    scale, as 0..1, must reach it; without one, the judge's own pass rule decides."""
    v = ctx.verdict
    if v is None:
        what = "this check" if value is None else _show(str(value))
        return Outcome(False, f"{what} needs an LLM judge: set default_judge: <model> (or judges:) in promstack.yaml")
    if isinstance(v, str):  # the reason no judge could be used (unknown judge name, no context)
        return Outcome(False, v)
    detail = "; ".join(f"{s['criterion'][:40]}={s['score']}" for s in v["scores"])
    agreement = f", agreement {v['agreement']:.0%}" if v.get("repeats", 1) > 1 else ""
    score = v["normalised"] / 100
    passed = bool(v["passed"]) if ctx.threshold is None else score >= ctx.threshold
    bar = "" if ctx.threshold is None else f", threshold {ctx.threshold:g}"
    return Outcome(passed, f"judge {v['judge']} {v['normalised']:.0f}/100 ({detail}){agreement}{bar}", score)


def _g_eval(output: str, value: Any, ctx: Context) -> Outcome:
    """g-eval passes at 0.7 of the judge's scale unless a threshold is given (promptfoo's bar)."""
    import dataclasses

    return _judged(output, value, ctx if ctx.threshold is not None else dataclasses.replace(ctx, threshold=0.7))


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
    "g-eval": _g_eval,
}


def _assert_set(output: str, value: Any, ctx: Context) -> Outcome:
    """promptfoo's ``assert-set``: its assertions (the value, read and checked with the file)
    scored as one. Its score is their weighted mean; it passes when every one passes or, with a
    threshold, when the mean reaches it (promptfoo's rule: the threshold then decides alone)."""
    if ctx.registry is None or not isinstance(value, tuple) or not all(isinstance(v, AssertionSpec) for v in value):
        raise TypeError("an assert-set is scored with its assertions: write {type: assert-set, assert: [...]} "
                        "in a test file")
    scores = [evaluate_transformed(spec, ctx.registry, output, ctx) for spec in value]
    passed, mean = combine(scores, ctx.threshold)
    reason = f"{sum(s.passed for s in scores)} of {len(scores)} passed, score {mean:.2f}"
    if ctx.threshold is not None:
        reason += f" {'≥' if passed else '<'} threshold {ctx.threshold:g}"
    failed = [s.reason for s in scores if not s.passed]
    reason += "".join(f"; ✗ {r}" for r in failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
    return Outcome(passed, reason, mean)


# the types kept in modules of their own: (module, function), imported when one first runs, so a
# run that uses none of them (most) never loads their modules or their regular expressions
ELSEWHERE = {
    "word-count": ("markup", "word_count"), "is-xml": ("markup", "is_xml"), "contains-xml": ("markup", "contains_xml"),
    "contains-html": ("markup", "contains_html"), "bleu": ("ngrams", "bleu"), "gleu": ("ngrams", "gleu"),
    "rouge-n": ("ngrams", "rouge_n"), "meteor": ("ngrams", "meteor"), "perplexity": ("ngrams", "perplexity"),
    "perplexity-score": ("ngrams", "perplexity_score"), "is-sql": ("sql", "is_sql"),
    "contains-sql": ("sql", "contains_sql"), "is-html": ("html_doc", "is_html"),
    "is-refusal": ("refusal", "is_refusal"), "refusal": ("refusal", "is_refusal"),
    "moderation": ("measures", "moderation"),
    **dict.fromkeys(("similar", "similar:cosine", "similar:dot", "similar:euclidean"), ("measures", "similar")),
    "select-best": ("judged_types", "select_best"), "classifier": ("judged_types", "classifier"),
    "tool-call-f1": ("tools", "tool_call_f1"), "is-valid-openai-tools-call": ("tools", "is_valid_openai_tools_call"),
    "is-valid-openai-function-call": ("tools", "is_valid_openai_function_call"),
    "is-valid-function-call": ("tools", "is_valid_function_call"),
    "json-path": ("json_path", "json_path"),
    "no-pii": ("privacy", "no_pii"), "no-secrets": ("privacy", "no_secrets"),
    "tool-called": ("tool_checks", "tool_called"), "tool-args-match": ("tool_checks", "tool_args_match"),
    "trajectory:tool-used": ("trajectory", "tool_used"), "trajectory:tool-sequence": ("trajectory", "tool_sequence"),
    "trajectory:tool-args-match": ("trajectory", "tool_args_match"),
    "trajectory:step-count": ("trajectory", "step_count"),
    "leaks-prompt": ("leaks", "leaks_prompt"),
    "injection-score": ("safety_checks", "injection_score"), "no-banned-words": ("safety_checks", "no_banned_words"),
    "no-invisible-text": ("safety_checks", "no_invisible_text"),
}


def _elsewhere(module: str, name: str) -> Callable[..., Any]:
    def check(output: str, value: Any, ctx: Context) -> Any:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(output, value, ctx)

    check.__name__ = check.__qualname__ = name
    return check


def _more() -> dict[str, Callable[..., Any]]:
    return {**{kind: _elsewhere(*where) for kind, where in ELSEWHERE.items()}, "assert-set": _assert_set}


def register_builtins(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name, fn in {**BUILTINS, **_more()}.items():
        register(name, fn)
