"""The async engine: every model call through ``litellm.acompletion``, bounded by a
semaphore, on one background event loop so pytest can score finished cases meanwhile.

Errors are data: a failed call resolves to a ``Response`` with ``error`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from .cache import cacheable
from .types import Request, Response

Cache = Any  # DiskCache or anything with get/set


class Engine:
    """Resolve requests to responses: cache first, then concurrent calls."""

    def __init__(self, concurrency: int, cache: Cache | None, mode: str = "use",
                 on_result: Callable[[Request, Response], None] | None = None) -> None:
        self.concurrency = concurrency
        self.cache = cache
        self.mode = mode
        self.on_result = on_result
        self.futures: dict[str, Future[Response]] = {}
        self.unpriced: set[str] = set()
        self._pending: list[Request] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def submit(self, requests: Iterable[Request]) -> None:
        """Look every request up in the cache; start calls for the misses in the background."""
        for req in requests:
            if req.key in self.futures:
                continue
            fut: Future[Response] = Future()
            self.futures[req.key] = fut
            hit = self.cache.get(req.key) if self.cache is not None and self.mode == "use" else None
            if hit is not None:
                fut.set_result(replace(hit, cached=True))
            else:
                self._pending.append(req)
        if self._pending:
            pending, self._pending = self._pending, []
            from ._litellm import import_litellm

            import_litellm()  # in this thread: see _litellm.LAZY_MODULES
            self._thread = threading.Thread(target=self._run, args=(pending,), name="promstack-engine",
                                            daemon=True)
            self._thread.start()

    def result(self, key: str, timeout: float | None = None) -> Response:
        return self.futures[key].result(timeout)

    def close(self) -> None:
        """Stop the background loop; unfinished calls resolve as errors."""
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=30)
        for fut in self.futures.values():
            if not fut.done():
                fut.set_result(Response(error="interrupted before the call finished"))

    # -- background loop --------------------------------------------------------------------

    def _run(self, requests: list[Request]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(self._main(requests))
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(_close_clients())
            _cancel_leftovers(loop)
            loop.close()

    async def _main(self, requests: list[Request]) -> None:
        litellm = _prepare_litellm(requests)
        sem = asyncio.Semaphore(self.concurrency)

        async def one(req: Request) -> None:
            async with sem:
                resp = await call(litellm, req)
            self._finish(req, resp)

        await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)

    def _finish(self, req: Request, resp: Response) -> None:
        if resp.error is None and resp.cost_usd is None and resp.text is not None:
            self.unpriced.add(req.litellm_model)
        if self.cache is not None and self.mode != "off" and cacheable(resp):
            self.cache.set(req.key, resp)
        fut = self.futures[req.key]
        if not fut.done():
            fut.set_result(resp)
        if self.on_result is not None:
            self.on_result(req, resp)


def _prepare_litellm(requests: list[Request]) -> Any:
    from ._litellm import import_litellm

    litellm = import_litellm()
    if any(r.litellm_model.startswith("local/") for r in requests):
        from .providers.local import register

        register(litellm)
    return litellm


async def _close_clients() -> None:
    import sys

    litellm = sys.modules.get("litellm")
    cache = getattr(litellm, "in_memory_llm_clients_cache", None) if litellm else None
    if cache is None:
        return
    # litellm keeps HTTP clients per process; ours belong to this loop, which is about to close.
    for client in list(getattr(cache, "cache_dict", {}).values()):
        close = getattr(client, "aclose", None) or getattr(client, "close", None)
        try:
            result = close() if close else None
            if asyncio.iscoroutine(result):
                await result
        except BaseException:  # closing is best effort; the loop ends right after
            pass
    cache.flush_cache()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """litellm leaves background tasks (its logging worker) on the loop; end them quietly."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


async def call(litellm: Any, req: Request) -> Response:
    """One model call; never raises for provider problems."""
    kwargs: dict[str, Any] = {**req.params, "timeout": req.timeout, "num_retries": 0, "max_retries": 0}
    if req.api_base:
        kwargs["api_base"] = req.api_base
    if req.api_key_env:
        key = os.environ.get(req.api_key_env)
        if not key:
            return Response(error=f"environment variable {req.api_key_env} is not set; "
                            f"export it with the API key for {req.model}")
        kwargs["api_key"] = key
    start = time.perf_counter()
    try:
        raw = await litellm.acompletion(model=req.litellm_model, messages=list(req.messages), **kwargs)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _error(exc, (time.perf_counter() - start) * 1000)
    return _response(litellm, raw, (time.perf_counter() - start) * 1000)


def _response(litellm: Any, raw: Any, latency_ms: float) -> Response:
    choices = getattr(raw, "choices", None) or []
    if not choices:
        return Response(error="the provider returned no choices", latency_ms=latency_ms)
    message = choices[0].message
    usage = getattr(raw, "usage", None)
    return Response(
        text=message.content if message.content is not None else "",
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        cost_usd=_cost(litellm, raw),
        latency_ms=round(latency_ms, 3),
        finish_reason=choices[0].finish_reason,
    )


def _cost(litellm: Any, raw: Any) -> float | None:
    hidden = getattr(raw, "_hidden_params", {}) or {}
    if hidden.get("promstack_cost") is not None:
        return float(hidden["promstack_cost"])
    try:
        return float(litellm.completion_cost(completion_response=raw))
    except Exception:
        return None


def _error(exc: Exception, latency_ms: float) -> Response:
    status = getattr(exc, "status_code", None)
    message = " ".join(str(getattr(exc, "message", None) or exc).split())
    if len(message) > 400:
        message = message[:399] + "…"
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    if isinstance(exc, Warning):
        prefix = f"a warning was raised as an error inside litellm (filterwarnings = error?): {prefix}"
    return Response(error=f"{prefix}: {message}", status_code=status, latency_ms=round(latency_ms, 3))
