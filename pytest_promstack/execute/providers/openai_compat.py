"""The direct transport for OpenAI-compatible servers: ``openai/<model>`` with an ``api_base``
(vLLM, Ollama, LM Studio, llama.cpp's server, TGI, a company gateway) is one JSON POST to
``<api_base>/chat/completions``, made here with aiohttp (which litellm itself depends on).

Why: on a small machine litellm's own CPU per call is the wall of a big run (about 6 ms a
call here, against 0.2 ms for the request itself; most of it pricing and logging an answer
that, from a self-hosted server, has no price). So a request takes this path only when
litellm would add nothing to it:

- the model is ``openai/<name>`` with an ``api_base`` (the OpenAI wire format, nothing to map);
- litellm's bundled price map does not know ``<name>`` (a hosted model litellm knows stays
  with litellm), unless the model's params carry its own ``input_cost_per_token`` and
  ``output_cost_per_token``. Either way the answer is priced the same, afterwards, from its
  tokens (see ``pricing``);
- no param asks for a litellm feature (``stream``, ``mock_response``, ``fallbacks``, ...).

Every other param goes into the JSON body as it is, so a server's own sampling params
(llama.cpp's ``repeat_penalty``, ``top_k``, ``min_p``, ``mirostat_mode``; vLLM's
``min_tokens``) reach it, as litellm passes them on too; ``extra_body`` is merged into the
body and ``extra_headers`` into the headers, as the OpenAI client does. Our own keys
(``drop_params``, the ``*_cost_per_token`` prices) never leave. The key is the one
``api_key_env`` names, or none: no Authorization header, and never OPENAI_API_KEY by default.

``transport: litellm`` in promstack.yaml sends every call through litellm. Errors are named
as litellm names them (``RateLimitError (HTTP 429): …``), and statuses and ``Retry-After``
reach the engine's retry loop unchanged.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from ...model.types import Request, Response, is_count
from ..pricing import price_map
from ..stored import function_call_of, token_logprobs, tool_calls_of

OURS = frozenset({"drop_params", "input_cost_per_token", "output_cost_per_token"})
# litellm's own features: a request with one of these goes through litellm
LITELLM_ONLY = frozenset({"stream", "stream_options", "mock_response", "fallbacks", "caching", "api_version",
                          "custom_llm_provider", "base_model", "metadata", "num_retries", "max_retries", "timeout"})
NAMES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
         408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError", 503: "ServiceUnavailableError"}


@cache
def _priced_by_litellm(name: str) -> bool:
    prices = price_map()
    if prices is None:
        return True  # unknown: let litellm decide
    return any(k in prices for k in (name, f"openai/{name}"))


def eligible(req: Request) -> bool:
    if not req.litellm_model.startswith("openai/") or not req.api_base:
        return False
    if not LITELLM_ONLY.isdisjoint(req.params) or req.params.get("n", 1) != 1:
        return False
    custom = "input_cost_per_token" in req.params and "output_cost_per_token" in req.params
    return custom or not _priced_by_litellm(req.litellm_model.removeprefix("openai/"))


class Transport:
    """One aiohttp session per event loop (the engine runs one loop per batch)."""

    def __init__(self) -> None:
        self.session: Any = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _session(self) -> Any:
        if self.session is None:
            import aiohttp

            # no connection cap of its own: the engine's semaphore and limiter bound what is in flight
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=True)
        return self.session

    async def call(self, req: Request, api_key: str | None, timeout: float) -> Response:
        import aiohttp

        body, headers = request_body(req)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = req.api_base.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        start = time.perf_counter()
        try:
            async with self._session().post(url, json=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                raw = await r.read()
                status, got = r.status, r.headers
        except TimeoutError:
            return Response(error=f"Timeout: no answer from {url} within {timeout:.3g} s",
                            latency_ms=round((time.perf_counter() - start) * 1000, 3))
        except aiohttp.ClientError as exc:
            return Response(error=f"APIConnectionError: {' '.join(str(exc).split()) or type(exc).__name__}",
                            latency_ms=round((time.perf_counter() - start) * 1000, 3))
        latency = round((time.perf_counter() - start) * 1000, 3)
        if status != 200:
            return _http_error(status, raw, got, latency)
        try:
            data = json.loads(raw)
        except ValueError:
            return Response(error=f"APIError: the answer of {url} is not JSON: {_snippet(raw)}", latency_ms=latency,
                            retry=False)
        return _response(data, req, latency)


def request_body(req: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body (every param but ours, ``extra_body`` merged in) and the extra headers."""
    params = {k: v for k, v in req.params.items() if k not in OURS}
    extra_body = params.pop("extra_body", None) or {}
    headers = {str(k): str(v) for k, v in (params.pop("extra_headers", None) or {}).items()}
    body = {"model": req.litellm_model.removeprefix("openai/"), "messages": list(req.messages), **params,
            **extra_body}
    return body, headers


def _http_error(status: int, raw: bytes, headers: Any, latency: float) -> Response:
    from ..retry_after import parse_retry_after

    message = _snippet(raw)
    try:
        err = json.loads(raw).get("error")
        message = (err.get("message") if isinstance(err, dict) else str(err)) or message
    except (ValueError, AttributeError):
        pass
    name = NAMES.get(status, "InternalServerError" if status >= 500 else "APIError")
    return Response(error=f"{name} (HTTP {status}): {' '.join(str(message).split())[:400]}", status_code=status,
                    latency_ms=latency, retry_after=parse_retry_after(headers))


def _snippet(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text[:200] + ("…" if len(text) > 200 else "") if text else "(empty body)"


def _response(data: Any, req: Request, latency: float) -> Response:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return Response(error="the provider returned no choices", latency_ms=latency, retry=False)
    message = choices[0].get("message") or {}
    usage = data.get("usage") or {}
    wrong = _shape(message, usage, choices[0].get("finish_reason"))
    if wrong is not None:
        return Response(error=f"APIError: the provider's answer is not a chat completion: {wrong}", latency_ms=latency,
                        retry=False)
    tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not tokens_in and not tokens_out:
        tokens_in = tokens_out = None
    try:  # a reply that only calls tools has no content (null): its calls are the answer
        calls, function_call = tool_calls_of(message.get("tool_calls")), function_call_of(message.get("function_call"))
    except ValueError as exc:
        return Response(error=f"APIError: the provider's answer is not a chat completion: {exc}", latency_ms=latency,
                        retry=False)
    content = message.get("content")
    return Response(text=content if isinstance(content, str) else "", input_tokens=tokens_in,
                    output_tokens=tokens_out, latency_ms=latency,  # priced by the engine (pricing.priced)
                    finish_reason=choices[0].get("finish_reason"), logprobs=token_logprobs(choices[0].get("logprobs")),
                    tool_calls=calls, function_call=function_call)


def _shape(message: Any, usage: Any, finish_reason: Any) -> str | None:
    """What in an answer is of the wrong type, or None."""
    if not isinstance(message, dict):
        return f"choices[0].message is {type(message).__name__}, not an object"
    if not isinstance(usage, dict):
        return f"usage is {type(usage).__name__}, not an object"
    for key in ("prompt_tokens", "completion_tokens"):
        v = usage.get(key)
        if not is_count(v):
            return f"usage.{key} is {v!r}, not a whole number"
    if finish_reason is not None and not isinstance(finish_reason, str):
        return f"finish_reason is {finish_reason!r}, not a string"
    return None
