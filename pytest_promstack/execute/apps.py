"""Python targets: ``python:package.module:function`` as a model, so a team tests its
application (retrieval, tools, post-processing) with the same files, checks and cache.

The function is called as ``fn(messages, vars)`` (sync or async) and returns the reply text,
or a dict ``{"text": ..., "usage": {"input_tokens": n, "output_tokens": n}, "cost_usd": x}``.
A target that is an agent adds the tools it ran, ``"steps": [{"name", "arguments", "result",
"step"}, ...]`` (and ``"model_calls": n``), and may answer with tool calls of its own,
``"tool_calls"`` in OpenAI's shape, as a model does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config.policy import PREFIX
from ..model.types import Request, Response, is_count, result_text, tool_call
from .stored import steps_problem, tool_calls_of


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
        fn = await _on_daemon_thread(resolve, req.litellm_model)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # importing the module runs its code: it may raise anything
        return Response(error=f"cannot load {req.litellm_model}: {_raised(exc)}", retry=False)
    if req.call == "tool":
        if not callable(fn):
            return Response(error=f"cannot load {req.litellm_model}: it is a {type(fn).__name__}, not a function "
                                  "fn(name, arguments)", retry=False)
        return await _run_tool(fn, req, start)
    variables = dict(req.meta.get("vars") or {})
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(list(req.messages), variables)
        else:
            result = await _on_daemon_thread(fn, list(req.messages), variables)
    except asyncio.CancelledError:  # the deadline: the engine says so
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too: a target ends its case, never the run
        ms = (time.perf_counter() - start) * 1000
        return Response(error=f"{req.litellm_model} raised {_raised(exc)}", latency_ms=round(ms, 3), retry=False)
    ms = (time.perf_counter() - start) * 1000
    return _to_response(req, result, ms)


async def _run_tool(fn: Callable[..., Any], req: Request, start: float) -> Response:
    """An agent's tool, ``fn(name, arguments)`` (sync or async): what it returns is the result the
    model is sent (text as it is, else JSON); what it raises is too, as ``{"error": ...}``, since a
    tool's failure is something the model must handle; anything else not JSON is sent as its text."""
    name, arguments = tool_call(req)
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(name, arguments)
        else:
            result = await _on_daemon_thread(fn, name, arguments)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        result = {"error": _raised(exc)}
    ms = round((time.perf_counter() - start) * 1000, 3)
    try:
        return Response(text=result_text(result), latency_ms=ms, finish_reason="stop")
    except (TypeError, ValueError) as exc:  # a set, bytes, an object, NaN: not something to send a model
        return Response(error=f"{req.litellm_model} returned a {type(result).__name__} for {name}, which is not "
                              f"text or JSON data ({exc}); return text, or a dict, list or number",
                        latency_ms=ms, retry=False)


def _raised(exc: BaseException) -> str:
    if isinstance(exc, Exception):
        return f"{type(exc).__name__}: {exc}"
    return f"{exc!r}; a target returns its reply, it may not exit or interrupt the run"


async def _on_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a thread of its own that does not keep the process alive: a target that
    never returns ends its case at the deadline and the interpreter still exits (the loop's
    default executor would join it at exit, forever). Whatever it raises is raised here."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[Any, BaseException | None]] = loop.create_future()
    context = contextvars.copy_context()  # as asyncio.to_thread does

    def settle(outcome: tuple[Any, BaseException | None]) -> None:
        if not done.done():  # cancelled at the deadline meanwhile
            done.set_result(outcome)

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (context.run(fn, *args), None)
        except BaseException as exc:  # carried to the loop as a value: a BaseException there would stop it
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed while the target ran on past its deadline
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="promstack-target", daemon=True).start()
    result, raised = await done
    if raised is not None:
        raise raised
    return result


REPLY = '{"text": str, "usage": {"input_tokens": int, "output_tokens": int}, "cost_usd": float}'
AGENT = ('{"text": str, "steps": [{"name": str, "arguments": {...}, "result": JSON, "step": int}, ...], '
         '"model_calls": int, "tool_calls": [OpenAI tool calls]}')


def _to_response(req: Request, result: Any, ms: float) -> Response:
    """The target's reply; a reply of the wrong shape is an error naming what to return. A
    target that reports no cost has an unknown cost (n/a), never 0."""
    if isinstance(result, str):
        return Response(text=result, latency_ms=round(ms, 3), finish_reason="stop")
    problem = _problem(result)
    agent: dict[str, Any] = {}
    if problem is None:
        try:
            agent = _agent(result)
        except ValueError as exc:
            problem = str(exc)
    if problem is not None:
        shape = AGENT if _is_agent(result) else REPLY
        return Response(error=f"{req.litellm_model} returned {problem}; return the reply text, or a dict {shape}",
                        latency_ms=round(ms, 3), retry=False)
    usage = result.get("usage") or {}
    cost = result.get("cost_usd")
    return Response(
        text=result.get("text", result.get("output")),
        input_tokens=usage.get("input_tokens", usage.get("prompt_tokens")),
        output_tokens=usage.get("output_tokens", usage.get("completion_tokens")),
        cost_usd=float(cost) if cost is not None else None,
        latency_ms=round(ms, 3),
        finish_reason="stop",
        **agent,
    )


def _is_agent(result: Any) -> bool:
    return isinstance(result, dict) and any(k in result for k in ("steps", "model_calls", "tool_calls"))


def _agent(result: dict[str, Any]) -> dict[str, Any]:
    """An agent's ``steps``, ``model_calls`` and ``tool_calls`` as Response fields (only those it
    returned); raises ValueError naming the first thing wrong. A step without ``step`` was asked
    by the model call of its place in the list; without ``arguments`` it had none."""
    out: dict[str, Any] = {}
    if result.get("tool_calls") is not None:
        out["tool_calls"] = tool_calls_of(result["tool_calls"])
    raw, calls = result.get("steps"), result.get("model_calls")
    steps = [_step(item, i) for i, item in enumerate(raw)] if isinstance(raw, list | tuple) else raw
    bad = steps_problem(steps, calls)
    if bad is not None:
        raise ValueError(bad)
    if steps is not None:
        out["trajectory"] = tuple(steps)
    if calls is not None:
        out["model_calls"] = calls
    return out


def _step(item: Any, index: int) -> Any:
    if not isinstance(item, dict):
        return item
    step = {"step": index + 1, "arguments": {}, "result": None, **item}
    if isinstance(step["arguments"], str):  # JSON text, as a model writes arguments
        with contextlib.suppress(ValueError):
            step["arguments"] = json.loads(step["arguments"] or "{}")
    return step


def _problem(result: Any) -> str | None:
    """What is wrong with a target's dict reply, or None."""
    if not isinstance(result, dict):
        return f"a {type(result).__name__}"
    text = result.get("text", result.get("output"))
    if not isinstance(text, str):
        has = "text" in result or "output" in result
        return f"'text' of type {type(text).__name__}" if has else "a dict without 'text'"
    usage = result.get("usage") or {}
    if not isinstance(usage, dict):
        return f"'usage' of type {type(usage).__name__}"
    for key, value in usage.items():
        if not is_count(value):
            return f"usage {key} {value!r} (not a whole number of tokens)"
    cost = result.get("cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0):
        return f"cost_usd {cost!r} (not a number of US dollars)"
    return None
