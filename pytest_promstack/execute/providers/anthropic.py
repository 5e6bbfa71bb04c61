"""Anthropic's Messages API, for the requests ``routes`` sends here (plain-text messages,
``temperature``/``top_p``/``max_tokens``/``stop``): the body, headers and reading of the
answer are litellm's, so a call costs, counts and reads the same either way (a test
compares them with what litellm sends and returns).

As litellm does: system messages go into ``system`` as text blocks; consecutive messages of
one role are merged into one message of text blocks; ``stop`` becomes ``stop_sequences``;
``max_tokens`` defaults to the model's ``max_output_tokens`` in litellm's price map; the key
goes as ``x-api-key`` (``ANTHROPIC_AUTH_TOKEN`` as a Bearer token) with
``anthropic-version: 2023-06-01``. Usage is litellm's: ``input_tokens`` counts the prompt
tokens read from and written to the cache as well (Anthropic's own ``input_tokens`` does
not), and the cache's reads and writes are kept for the price.
"""

from __future__ import annotations

from typing import Any

from ...model.types import Request, Response, is_count
from ..pricing import usage_details
from .routes import Route, entry

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 128000  # litellm's DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS, for a model without max_output_tokens
# Anthropic's stop reasons as litellm maps them (tests/plugin/test_direct_parity.py compares)
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "refusal": "content_filter", "compaction": "length", "pause_turn": "length",
          "model_context_window_exceeded": "length"}


def request_body(req: Request, way: Route, api_key: str | None,
                 bearer: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers; ``bearer``: the key is ``ANTHROPIC_AUTH_TOKEN``'s."""
    params = {k: v for k, v in req.params.items() if v is not None}  # null: unset, as litellm
    headers = {"anthropic-version": VERSION, **{str(k): str(v) for k, v in (params.pop("extra_headers", None)
                                                                              or {}).items()}}
    if api_key:
        headers.update({"authorization": f"Bearer {api_key}"} if bearer else {"x-api-key": api_key})
    system = [{"type": "text", "text": m["content"]} for m in req.messages if m["role"] == "system"]
    turns: list[dict[str, Any]] = []
    for m in req.messages:
        if m["role"] == "system":
            continue
        block = {"type": "text", "text": m["content"]}
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1]["content"].append(block)
        else:
            turns.append({"role": m["role"], "content": [block]})
    body: dict[str, Any] = {"model": way.name, "messages": turns}
    for key in ("temperature", "top_p"):
        if key in params:
            body[key] = params[key]
    if "stop" in params:
        stop = params["stop"]
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    body["max_tokens"] = params["max_tokens"] if "max_tokens" in params else _max_tokens(way.name)
    if system:
        body["system"] = system
    return body, headers


def _max_tokens(name: str) -> int:
    found = entry("anthropic", name) or {}
    value = found.get("max_output_tokens") or found.get("max_tokens")
    return value if is_count(value) and value else DEFAULT_MAX_TOKENS


def response(data: Any, latency: float) -> Response:
    """Our Response from a Messages answer, counted as litellm counts it."""
    blocks = data.get("content") if isinstance(data, dict) else None
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(blocks, list) or not isinstance(usage, dict):
        return Response(error="APIError: the provider's answer is not a message: no content or usage",
                        latency_ms=latency, retry=False)
    counts = {k: usage.get(k) or 0 for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens")}
    wrong = next((k for k, v in counts.items() if not is_count(v)), None)
    if wrong is not None:
        return Response(error=f"APIError: the provider's answer is not a message: usage.{wrong} is "
                              f"{usage.get(wrong)!r}, not a whole number", latency_ms=latency, retry=False)
    texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    if not all(isinstance(t, str) for t in texts):
        bad = next(t for t in texts if not isinstance(t, str))
        return Response(error=f"APIError: the provider's answer is not a message: a text block's text is {bad!r}, "
                              "not a text", latency_ms=latency, retry=False)
    text = "".join(texts)
    prompt = counts["input_tokens"] + counts["cache_creation_input_tokens"] + counts["cache_read_input_tokens"]
    tokens_in, tokens_out = (prompt, counts["output_tokens"]) if prompt or counts["output_tokens"] else (None, None)
    reason = data.get("stop_reason")
    return Response(text=text, input_tokens=tokens_in, output_tokens=tokens_out, latency_ms=latency,
                    finish_reason=FINISH.get(reason, reason) if isinstance(reason, str) else None,
                    usage=usage_details(usage))
