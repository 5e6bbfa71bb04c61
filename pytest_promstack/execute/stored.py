"""What a stored answer is (cache rows and cassette entries alike): our JSON, validated on read."""

from __future__ import annotations

import json
from typing import Any

from ..model.types import Response, is_count


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


AMOUNTS = ("cost_usd", "latency_ms")


def problem(data: Any) -> str | None:
    """What makes ``data`` not a stored answer of ours, or None: the text a string, token
    counts whole and not negative, cost and latency numbers not negative, no error."""
    if not isinstance(data, dict):
        return f"not an object but {type(data).__name__}"
    if not isinstance(data.get("text"), str):
        return "no text"
    if data.get("error") is not None:
        return "an error (errors are never stored)"
    for key in COUNTS:
        v = data.get(key)
        if not is_count(v):
            return f"{key} {v!r} is not a whole number of tokens"
    for key in AMOUNTS:
        v = data.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            return f"{key} {v!r} is not a non-negative number"
    if data.get("finish_reason") is not None and not isinstance(data["finish_reason"], str):
        return "finish_reason is not a string"
    return None
