"""Python targets: ``python:package.module:function`` as a model, so a team tests its
application (retrieval, tools, post-processing) with the same files, checks and cache.

The function is called as ``fn(messages, vars)`` (sync or async) and returns the reply text,
or a dict ``{"text": ..., "usage": {"input_tokens": n, "output_tokens": n}, "cost_usd": x}``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Callable
from typing import Any

from .types import Request, Response

PREFIX = "python:"


def resolve(target: str) -> Callable[..., Any]:
    """``python:pkg.mod:func`` -> the function; raises ImportError/AttributeError with the name."""
    spec = target.removeprefix(PREFIX)
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise ValueError(f"{target!r}: write python:package.module:function")
    return getattr(importlib.import_module(module_name), func_name)


async def call_target(req: Request) -> Response:
    start = time.perf_counter()
    try:
        fn = resolve(req.litellm_model)
    except (ImportError, AttributeError, ValueError) as exc:
        return Response(error=f"cannot load {req.litellm_model}: {type(exc).__name__}: {exc}", retry=False)
    variables = dict(req.meta.get("vars") or {})
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(list(req.messages), variables)
        else:
            result = await asyncio.to_thread(fn, list(req.messages), variables)
    except Exception as exc:
        ms = (time.perf_counter() - start) * 1000
        return Response(error=f"{req.litellm_model} raised {type(exc).__name__}: {exc}", latency_ms=round(ms, 3),
                        retry=False)
    ms = (time.perf_counter() - start) * 1000
    return _to_response(req, result, ms)


def _to_response(req: Request, result: Any, ms: float) -> Response:
    if isinstance(result, str):
        return Response(text=result, latency_ms=round(ms, 3), cost_usd=0.0, finish_reason="stop")
    if not isinstance(result, dict) or not isinstance(result.get("text", result.get("output")), str):
        return Response(error=f"{req.litellm_model} returned {type(result).__name__}; return the reply text "
                        "or a dict with 'text'", latency_ms=round(ms, 3), retry=False)
    usage = result.get("usage") or {}
    return Response(
        text=result.get("text", result.get("output")),
        input_tokens=usage.get("input_tokens", usage.get("prompt_tokens")),
        output_tokens=usage.get("output_tokens", usage.get("completion_tokens")),
        cost_usd=float(result["cost_usd"]) if result.get("cost_usd") is not None else 0.0,
        latency_ms=round(ms, 3),
        finish_reason="stop",
    )
