"""What a stored answer is (cache rows and cassette entries alike): our JSON, validated on read."""

from __future__ import annotations

import json
import math
from typing import Any

from ..model.types import USAGE_COUNTS, USAGE_KEYS, USAGE_WORDS, Response, is_count


def cacheable(response: Response) -> bool:
    """Errors are never cached. A truncated answer (``finish_reason: length``) is cached like
    any other: it is what this request returns; the reports mark it, and a suite can fail it
    with a ``finish-reason`` assertion."""
    return response.error is None and response.text is not None


def encode(response: Response) -> str:
    data = response.to_json()
    data["cached"] = False
    return json.dumps(data, ensure_ascii=False)


def decode(raw: Any) -> Response | None:
    """A cached answer, or None when the row is not one of ours (a miss: the model is called)."""
    if not isinstance(raw, str | bytes):  # Redis answers bytes, diskcache str
        return None
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        return None
    if problem(data) is not None:
        return None
    return Response.from_json(data)


COUNTS = ("input_tokens", "output_tokens")
MAX_TOKENS = 10**12  # far beyond any model's context: a count above it is forged or broken
# the amounts and their bounds: a call of more than 11 days, or of a million dollars, is not real
AMOUNTS = {"cost_usd": (10**6, "USD"), "latency_ms": (10**9, "ms")}


def problem(data: Any) -> str | None:
    """What makes ``data`` not a stored answer of ours, or None: the text a string, token
    counts whole and not negative, cost and latency finite numbers not negative, no error."""
    if not isinstance(data, dict):
        return f"not an object but {type(data).__name__}"
    if not isinstance(data.get("text"), str):
        return "no text"
    if data.get("error") is not None:
        return "an error (errors are never stored)"
    bad = numbers_problem(data)
    if bad is not None:
        return bad
    if data.get("finish_reason") is not None and not isinstance(data["finish_reason"], str):
        return "finish_reason is not a string"
    return (logprobs_problem(data.get("logprobs")) or vector_problem(data.get("vector"))
            or calls_problem(data.get("tool_calls"), data.get("function_call"))
            or steps_problem(data.get("trajectory"), data.get("model_calls")) or usage_problem(data.get("usage")))


def usage_problem(value: Any) -> str | None:
    """None when ``value`` is absent or an answer's price details (``Response.usage``): token
    counts whole and not negative, the provider's words short texts, its stated cost a finite
    amount; else what is wrong, in one line."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"usage is {type(value).__name__}, not an object"
    unknown = sorted(str(k) for k in value if k not in USAGE_KEYS)
    if unknown:
        return f"usage has {', '.join(map(repr, unknown))[:80]} (it may have {', '.join(USAGE_KEYS)})"
    for key in USAGE_COUNTS:
        v = value.get(key)
        if not is_count(v) or (v is not None and v > MAX_TOKENS):
            return f"usage.{key} {_shown(v)} is not a whole number of tokens"
    for key in USAGE_WORDS:
        v = value.get(key)
        if v is not None and (not isinstance(v, str) or not 0 < len(v) <= MAX_WORD):
            return f"usage.{key} {_shown(v)} is not a text of 1 to {MAX_WORD} characters"
    return _amount_problem("usage.cost", value.get("cost"), *AMOUNTS["cost_usd"])


MAX_WORD = 64  # a service tier, a region, a speed: short words


MAX_DIMENSIONS = 65536  # embedding models give up to a few thousand


def vector_problem(value: Any) -> str | None:
    """None when ``value`` is absent or an embedding: a non-empty list of finite numbers."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not 0 < len(value) <= MAX_DIMENSIONS or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return f"vector is not an embedding (a list of 1 to {MAX_DIMENSIONS} finite numbers)"
    return None


def logprobs_problem(value: Any) -> str | None:
    """None when ``value`` is absent or a list of finite log probabilities (each at most 0)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v <= 0 for v in value):
        return "logprobs is not a list of log probabilities (finite numbers, at most 0)"
    return None


def numbers_problem(data: dict[str, Any]) -> str | None:
    """The first of ``input_tokens``, ``output_tokens``, ``cost_usd``, ``latency_ms`` that is
    not a number an answer can have: a whole count up to ``MAX_TOKENS``; an amount finite, not
    negative and within its bound (NaN, Infinity and 10**400 are refused, never computed with)."""
    for key in COUNTS:
        v = data.get(key)
        if not is_count(v):
            return f"{key} {_shown(v)} is not a whole number of tokens"
        if v is not None and v > MAX_TOKENS:
            return f"{key} {_shown(v)} is beyond {MAX_TOKENS:,} tokens"
    for key, (limit, unit) in AMOUNTS.items():
        bad = _amount_problem(key, data.get(key), limit, unit)
        if bad is not None:
            return bad
    return None


def _amount_problem(key: str, v: Any, limit: int, unit: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        return f"{key} {_shown(v)} is not a non-negative number"
    if isinstance(v, float) and not math.isfinite(v):
        return f"{key} {_shown(v)} is not a finite number"
    if v > limit:
        return f"{key} {_shown(v)} is beyond {limit:,} {unit}"
    return None


def _shown(value: Any) -> str:
    """A value as a message shows it: a 400-digit number is cut."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return "a number too long to show"
    return text if len(text) <= 24 else text[:10] + "…"


def token_logprobs(value: Any) -> tuple[float, ...] | None:
    """The output tokens' log probabilities from a choice's ``logprobs`` (the chat form,
    ``{"content": [{"token", "logprob"}, ...]}``, or the completion form's ``token_logprobs``),
    as a dict or as litellm's objects; None when absent or not numbers."""
    if value is None:
        return None
    get = value.get if isinstance(value, dict) else (lambda key: getattr(value, key, None))
    items = get("content")
    if isinstance(items, list):
        numbers = [i.get("logprob") if isinstance(i, dict) else getattr(i, "logprob", None) for i in items]
    else:
        numbers = get("token_logprobs")
    if not isinstance(numbers, list) or not numbers:
        return None
    return None if logprobs_problem(numbers) else tuple(float(v) for v in numbers)


MAX_CALLS = 1024  # tool calls in one answer: far beyond any model's parallel calls


def calls_problem(tool_calls: Any, function_call: Any = None) -> str | None:
    """None when ``tool_calls`` is absent or a list of OpenAI tool calls (``{"id", "type":
    "function", "function": {"name", "arguments"}}``, the name and the arguments text) and
    ``function_call`` absent or one ``{"name", "arguments"}``; else what is wrong, in one line."""
    if tool_calls is not None:
        if not isinstance(tool_calls, list | tuple) or not tool_calls or len(tool_calls) > MAX_CALLS:
            return f"tool_calls is not a list of 1 to {MAX_CALLS:,} tool calls"
        for i, call in enumerate(tool_calls):
            bad = _call_problem(call)
            if bad is not None:
                return f"tool_calls[{i}] is not a call {{id, type: function, function: {{name, arguments}}}}: {bad}"
    if function_call is not None:
        bad = _function_problem(function_call)
        if bad is not None:
            return f"function_call is not {{name, arguments}}: {bad}"
    return None


STEP_KEYS = frozenset({"step", "name", "arguments", "result"})


def steps_problem(steps: Any, model_calls: Any = None) -> str | None:
    """None when ``steps`` is absent or an agent's trajectory as stored (a list of ``{"step": n,
    "name": str, "arguments": {...}, "result": JSON}``, at most ``MAX_CALLS``) and ``model_calls``
    absent or a whole number from 1; else what is wrong, in one line."""
    if model_calls is not None and (not is_count(model_calls) or model_calls < 1):
        return f"model_calls {_shown(model_calls)} is not a whole number of model calls (1 or more)"
    if steps is None:
        return None
    if not isinstance(steps, list | tuple) or len(steps) > MAX_CALLS:
        return f"steps is not a list of up to {MAX_CALLS:,} tool runs"
    for i, step in enumerate(steps):
        bad = _step_problem(step)
        if bad is not None:
            return f"steps[{i}] {bad}"
    return None


def _step_problem(step: Any) -> str | None:
    if not isinstance(step, dict):
        return f"is {type(step).__name__}, not an object"
    unknown = sorted(str(k) for k in step if k not in STEP_KEYS)
    if unknown:
        return f"has {', '.join(map(repr, unknown))[:80]} (a step has name, arguments, result and step)"
    if not isinstance(step.get("name"), str) or not step["name"]:
        return "has no tool name (a non-empty text 'name')"
    if not isinstance(step.get("arguments"), dict):
        return f"arguments are {type(step.get('arguments')).__name__}, not an object"
    n = step.get("step")
    if not is_count(n) or n is None or n < 1:
        return f"step {_shown(n)} is not the model call that asked it (a whole number from 1)"
    try:
        json.dumps([step["arguments"], step.get("result")], ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return "holds a value that is not JSON (text, numbers, true/false, null, lists, objects)"
    return None


def _call_problem(call: Any) -> str | None:
    if not isinstance(call, dict) or not set(call) <= {"id", "type", "function"}:
        return "not an object of id, type and function"
    if call.get("type") != "function":
        return f"its type is {str(call.get('type'))[:40]!r}"
    if not isinstance(call.get("id"), str | None):
        return "its id is not a text"
    return _function_problem(call.get("function"))


def _function_problem(fn: Any) -> str | None:
    if not isinstance(fn, dict) or set(fn) != {"name", "arguments"}:
        return "function is not an object of name and arguments"
    if not isinstance(fn["name"], str) or not fn["name"]:
        return "its name is not a text"
    if not isinstance(fn["arguments"], str):
        return "its arguments are not JSON text"
    return None


def tool_calls_of(value: Any) -> tuple[dict[str, Any], ...] | None:
    """A message's ``tool_calls`` (dicts, or litellm's objects) in OpenAI's shape; None when
    there are none. The arguments stay the JSON text the model wrote; a provider that gives
    them as an object has them written as JSON text. Raises ValueError naming what is wrong."""
    if value is None or (isinstance(value, list | tuple) and not value):
        return None
    if not isinstance(value, list | tuple):
        raise ValueError(f"tool_calls is {type(value).__name__}, not a list")
    calls = []
    for item in value:
        get = _getter(item)
        fn = _getter(get("function") or {})
        arguments = fn("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({"id": get("id"), "type": get("type") or "function",
                      "function": {"name": fn("name"), "arguments": arguments}})
    bad = calls_problem(calls)
    if bad is not None:
        raise ValueError(bad)
    return tuple(calls)


def function_call_of(value: Any) -> dict[str, Any] | None:
    """A function call ``{"name", "arguments"}`` from a dict or litellm's object (None stays None)."""
    if value is None:
        return None
    get = _getter(value)
    arguments = get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call = {"name": get("name"), "arguments": arguments}
    bad = _function_problem(call)
    if bad is not None:
        raise ValueError(f"function_call is not {{name, arguments}}: {bad}")
    return call


def _getter(item: Any) -> Any:
    return item.get if isinstance(item, dict) else (lambda key: getattr(item, key, None))
