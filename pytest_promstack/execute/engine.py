"""The async engine: every model call through ``litellm.acompletion`` (or a Python target),
on one background event loop so pytest can score finished cases meanwhile.

* C calls in flight at all times (a semaphore, not batches), identical requests made once;
* our own retry loop: exponential backoff with jitter on 429/5xx/connection errors,
  ``Retry-After`` (seconds or HTTP date) and ``retry-after-ms`` honoured up to a cap, no retry
  on 400/401/403/404/422 nor on a 5xx that names an unsupported parameter, one deadline per
  call covering attempts and waits;
* a judge's structured output negotiated once per endpoint (see negotiate.py);
* per-model AIMD concurrency: halve on 429, +1 after a window of successes;
* errors are data: a failed call resolves to a ``Response`` with ``error`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from ..config.modes import CacheMode
from ..model.types import Request, Response, is_count
from .negotiate import Formats, Ladder, endpoint, negotiable, not_transient
from .pricing import priced, usage_details
from .providers.routes import HOSTS
from .retry_after import parse_retry_after
from .stored import cacheable, function_call_of, numbers_problem, token_logprobs, tool_calls_of

NO_RETRY = {400, 401, 403, 404, 422}


INTERRUPTED = "interrupted before the call finished"
_LITELLM_LOOP = threading.Lock()  # one event loop at a time uses litellm's process-wide clients
# what litellm's OpenAI client sends to an `openai/` api_base without api_key_env: a keyless
# server ignores it, and litellm then neither demands OPENAI_API_KEY nor sends it elsewhere
NO_KEY = "no-key"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.5  # first wait, doubled each attempt, with full jitter
    max_wait: float = 30.0  # cap on one wait, Retry-After included


class Limiter:
    """AIMD concurrency for one model: starts at ``ceiling``; a 429 halves it, and a run of
    ``limit`` successes adds one back, up to the ceiling."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_flight = 0
        self._ok = 0
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self, throttled: bool) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            if throttled:
                self.limit, self._ok = max(1, self.limit // 2), 0
            else:
                self._ok += 1
                if self._ok >= self.limit and self.limit < self.ceiling:
                    self.limit, self._ok = self.limit + 1, 0
            cond.notify_all()


Progress = Callable[[int, int, int, int], None]  # done, total, cache hits, errors


class Answered:
    """A request answered at once (a cache hit): a finished future without the lock and
    condition every ``concurrent.futures.Future`` carries (about 1.4 KB each, a case's worth
    of memory in a large run from cache)."""

    __slots__ = ("response",)

    def __init__(self, response: Response) -> None:
        self.response = response

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Response:
        return self.response

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)


class Engine:
    """Resolve requests to responses: cache first, then concurrent calls."""

    def __init__(self, concurrency: int, cache: Any = None, mode: str = "use",
                 policy: RetryPolicy | None = None, log: Any = None,
                 progress: Progress | None = None, transport: str = "auto", redact: Any = None) -> None:
        self.concurrency = concurrency
        self.transport = transport  # "auto": OpenAI-compatible servers directly (providers/openai_compat)
        self.redact = redact  # a redact.Redactor: the run's key values never pass into an answer or error
        self.cache = cache
        self.mode = CacheMode(mode)
        self.policy = policy or RetryPolicy()
        self.log = log
        self.progress = progress
        self.futures: dict[str, Future[Response] | Answered] = {}
        self.limiters: dict[str, Limiter] = {}
        self.total = self.done = self.hits = self.errors = 0
        self._threads: list[threading.Thread] = []
        self._running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = []
        self._lock = threading.Lock()
        self._submitting = threading.RLock()
        self.settled = threading.Event()  # set while every call submitted so far has ended
        self.settled.set()
        # record mode: every request by (suite, case id), judge and arena calls included, so a
        # case's cassette entries hold all it needs to replay
        self.by_case: dict[tuple[str, str], list[Request]] | None = {} if mode == "record" else None
        self.formats = Formats()  # the judges' structured output, per endpoint, for the run
        self.calling: dict[str, Request] = {}  # requests sent to a model (not cache hits), by key
        # when each call was sent and its answer back (time.time_ns()), by key, kept only while
        # spans are made (``timed``; the runner pops each when it makes the call's span): an
        # OpenTelemetry span covers the call, not the setup before it (litellm's import, the client)
        self.timed = False
        self.sent: dict[str, tuple[int, int]] = {}

    @property
    def notes(self) -> list[str]:
        """Warnings for the run's summary: one per endpoint whose judge calls stepped down."""
        return [self.redact(n) or n for n in self.formats.notes] if self.redact is not None else self.formats.notes

    # -- public -----------------------------------------------------------------------------

    def submit(self, requests: Iterable[Request]) -> list[bool]:
        """Look every request up in the cache; start calls for the misses in the background.
        Threads may submit at once (an application sharing one SDK client): one future per key.
        Returns, per request, whether an earlier request with its key answers it (asked before
        by this engine, or earlier in ``requests``): a cache hit from memory, logged as cached."""
        with self._submitting:
            return self._submit(requests)

    def forget_failed(self, requests: Iterable[Request]) -> None:
        """Drop the finished, failed answers of ``requests``, so that asking again calls again
        (a long-lived SDK client; a test run asks each request once)."""
        with self._submitting:
            for req in requests:
                fut = self.futures.get(req.key)
                if fut is not None and fut.done() and fut.result().error is not None:
                    del self.futures[req.key]

    def _submit(self, requests: Iterable[Request]) -> list[bool]:
        pending: list[Request] = []
        reused: list[bool] = []
        requests = list(requests)
        read = self._read_at_once(requests)
        for req in requests:
            if self.by_case is not None:
                self.by_case.setdefault((req.meta.get("suite"), req.meta.get("case_id")), []).append(req)
            reused.append(req.key in self.futures)
            if reused[-1]:
                self._log_hit(req, dedup=True)
                continue
            self.total += 1
            hit = self._lookup(req, read)
            if hit is not None:
                self.futures[req.key] = Answered(hit)
                self.done += 1
                self.hits += 1
                self._log_hit(req, response=hit)
            else:
                self.futures[req.key] = Future()
                pending.append(req)
                self.calling[req.key] = req
        if pending:
            self.settled.clear()
            self._start(pending)
        self._report()
        return reused

    def recorded(self, suite: str, case_id: str) -> list[tuple[Request, Response]]:
        """Record mode: a case's finished, successful calls (its own, its judges', its arena's)."""
        out = []
        for req in (self.by_case or {}).get((suite, case_id), []):
            fut = self.futures.get(req.key)  # a failed answer the SDK forgot has none
            if fut is not None and fut.done() and fut.result().error is None and fut.result().text is not None:
                out.append((req, fut.result()))
        return out

    def result(self, req: Request, timeout: float | None = None) -> Response:
        """The answer to ``req`` (one call answers every request with its key), with the values
        its mask_inputs masked put back (as the cache holds it, it has the placeholders)."""
        return req.restored(self.futures[req.key].result(timeout))

    def shutdown(self) -> None:
        """End of the run: stop calling (``close``), then close the cache and the call log."""
        self.close()
        if self.cache is not None:
            self.cache.close()
        if self.log is not None:
            self.log.close()

    def close(self) -> None:
        """Stop the background loop; unfinished calls resolve as errors; free a local model."""
        for loop, task in list(self._running):
            if not task.done():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)
        for thread in self._threads:
            thread.join(timeout=30)
        for key, fut in self.futures.items():
            if not fut.done():
                fut.set_result(Response(error=INTERRUPTED))
                req = self.calling.get(key)
                if req is not None and self.log is not None:  # the call log says what was cut short
                    self.log.write(**req.meta, model=req.model, litellm_model=req.litellm_model, cached=False,
                                   status="cancelled", error=INTERRUPTED)
        local = sys.modules.get("pytest_promstack.execute.providers.local")  # only when a local model was used
        if local is not None:
            local.release()

    def expire(self, reason: str) -> None:
        """Resolve every unfinished request with ``reason``: the last guard against a call that
        never ends (the engine's loop stopped without resolving it)."""
        for fut in list(self.futures.values()):
            if not fut.done():
                fut.set_result(Response(error=reason, retry=False))
                with self._lock:
                    self.done += 1
                    self.errors += 1
        self.settled.set()

    # -- cache ------------------------------------------------------------------------------

    def _read_at_once(self, requests: list[Request]) -> dict[str, Response] | None:
        """The working cache's answers to the requests not asked before, read in bulk (a warm
        run reads one a case); None when the cache reads key by key."""
        if self.cache is None or not self.mode.reads:
            return None
        return self.cache.get_many([r.key for r in requests if r.key not in self.futures])

    def _lookup(self, req: Request, read: dict[str, Response] | None = None) -> Response | None:
        """``read``: what ``_read_at_once`` found (a key it lacks is not in the working cache)."""
        if self.cache is None or not self.mode.reads:
            return None
        hit = read.get(req.key) if read is not None else None
        if hit is None:  # with the request: a cassette entry must be this request's
            hit = self.cache.get(req.key, req, primary=read is None)
        return priced(req, replace(hit, cached=True)) if hit is not None else None

    def _log_hit(self, req: Request, response: Response | None = None, dedup: bool = False) -> None:
        if self.log is None:
            return
        if dedup:
            fut = self.futures[req.key]
            if not fut.done():
                fut.add_done_callback(lambda f: self._log_final(req, replace(f.result(), cached=True)))
                return
            response = replace(fut.result(), cached=True)
        if response is not None:
            self._log_final(req, response)

    def wait(self, keys: list[str] | None = None) -> None:
        for key in keys if keys is not None else list(self.futures):
            self.futures[key].result()

    def _log_final(self, req: Request, resp: Response) -> None:
        if self.log is None:
            return
        self.log.write(**req.meta, model=req.model, litellm_model=req.litellm_model, input_tokens=resp.input_tokens,
                       output_tokens=resp.output_tokens, cost_usd=resp.cost_usd, latency_ms=resp.latency_ms,
                       cached=resp.cached, attempts=resp.attempts, status="error" if resp.error else "ok",
                       status_code=resp.status_code, error=resp.error, finish_reason=resp.finish_reason)

    # -- background loop --------------------------------------------------------------------

    def _start(self, pending: list[Request]) -> None:
        if self.mode == CacheMode.REPLAY:
            for req in pending:
                self._finish(req, Response(error=f"cache miss in replay mode (key {req.key}); record it with "
                                                 "--promstack-record, or run with --promstack-cache use",
                                           miss=True, retry=False))
            return
        # decided once per request: the direct transport for OpenAI-compatible servers, else litellm
        direct = {r.key for r in pending if self._direct(r)}
        via_litellm = [r for r in pending if r.key not in direct and not r.litellm_model.startswith("python:")]
        if via_litellm:
            from .litellm_import import import_litellm

            import_litellm()  # in this thread: see litellm_import._warm_up
        thread = threading.Thread(target=self._run, args=(pending, direct, via_litellm), name="promstack-engine",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, requests: list[Request], direct: set[str], via_litellm: list[Request]) -> None:
        # litellm keeps its HTTP clients in one process-wide cache and they belong to the loop
        # that made them: a batch that uses litellm has the cache to itself until it has closed
        # them (else a batch ending would close the clients of the next one, mid-call).
        with _LITELLM_LOOP if via_litellm else contextlib.nullcontext():
            loop = asyncio.new_event_loop()
            task = loop.create_task(self._main(requests, direct, via_litellm))
            self._running.append((loop, task))
            try:
                loop.run_until_complete(task)
            except asyncio.CancelledError:
                pass
            finally:
                if via_litellm:
                    loop.run_until_complete(_close_clients())
                _cancel_leftovers(loop)
                loop.close()

    def _direct(self, req: Request) -> bool:
        from .providers.routes import route

        return route(req, self.transport).direct

    async def _main(self, requests: list[Request], direct: set[str], via_litellm: list[Request]) -> None:
        from .providers.openai_compat import Transport

        litellm = _prepare_litellm(via_litellm)
        transport = Transport()
        sem = asyncio.Semaphore(self.concurrency)

        probes: dict[Any, asyncio.Event] = {}

        async def one(req: Request) -> None:
            # the first judge call to an endpoint finds out which structured output it takes;
            # the others wait for it, so a refusal is met once, not once per call in flight
            probe = None
            if negotiable(req) and not self.formats.settled(req):
                if endpoint(req) in probes:
                    await probes[endpoint(req)].wait()
                else:
                    probe = probes[endpoint(req)] = asyncio.Event()
            try:
                async with sem:
                    sent = time.time_ns()
                    resp = await self._call_with_retries(transport if req.key in direct else litellm, req)
                    if self.timed:
                        self.sent[req.key] = (sent, time.time_ns())
            except Exception as exc:  # our bug, not the provider's: the call still ends, with the reason
                resp = _unexpected(exc)
            finally:
                if probe is not None:
                    self.formats.settle(req)
                    probe.set()
            try:
                self._finish(req, resp)
            except Exception as exc:  # an answer our own code could not take in: never a hanging call
                self._settle(req, _unexpected(exc))

        try:
            await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
        finally:
            await transport.close()

    async def _call_with_retries(self, litellm: Any, req: Request) -> Response:
        limiter = self.limiters.setdefault(req.model, Limiter(self.concurrency))
        deadline = time.monotonic() + req.timeout
        ladder = Ladder(self.formats, req) if negotiable(req) else None
        attempt = retries = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            await limiter.acquire()
            got: Response | None = None
            try:
                got = await _attempt(litellm, ladder.request if ladder else req, remaining)
            finally:
                await limiter.release(got is not None and got.status_code == 429)
            resp = replace(got, attempts=attempt)
            if ladder is not None and ladder.refused(resp):
                self._log_retry(req, attempt, resp)  # sent again at once, one step down: no wait, no retry spent
                continue
            wait, why = self._retry_wait(resp, retries + 1, deadline, req.timeout)
            if wait is None:
                resp = replace(resp, error=f"{resp.error}; {why}") if why else resp
                return ladder.finish(resp) if ladder else resp
            retries += 1
            self._log_retry(req, attempt, resp)
            await asyncio.sleep(wait)

    def log_guard(self, req: Request, decision: dict[str, Any]) -> None:
        """A run-time guard's decision on ``req`` (safety/guards.py), as a call-log line of kind guard."""
        if self.log is not None:
            self.log.write(**req.meta, kind="guard", model=req.model, litellm_model=req.litellm_model,
                           status=decision["action"], guard=decision["guard"], detail=decision["detail"])

    def _log_retry(self, req: Request, attempt: int, resp: Response) -> None:
        if self.log is not None:
            error = self.redact(resp.error) if self.redact is not None else resp.error
            self.log.write(**req.meta, model=req.model, litellm_model=req.litellm_model, latency_ms=resp.latency_ms,
                           cached=False, attempt=attempt, status="retry", status_code=resp.status_code, error=error)

    def _retry_wait(self, resp: Response, retry: int, deadline: float, timeout: float
                    ) -> tuple[float | None, str | None]:
        """Seconds to wait before retry number ``retry``, or (None, why it is not retried when
        the server asked for a longer wait than allowed: the error then says so)."""
        if resp.error is None or not _retryable(resp) or retry > self.policy.max_retries:
            return None, None
        asked = resp.retry_after
        if asked and asked > self.policy.max_wait:  # a shorter wait than asked for would only be refused again
            return None, _asked(asked, f"retry_max_wait {self.policy.max_wait:g} s")
        backoff = random.uniform(0, self.policy.backoff * 2 ** (retry - 1))
        wait = min(asked or backoff, self.policy.max_wait)
        if time.monotonic() + wait >= deadline:
            return None, _asked(asked, f"the time left before the timeout ({timeout:g} s per call)") if asked else None
        return wait, None

    def _finish(self, req: Request, resp: Response) -> None:
        resp = _checked(priced(req, resp))  # from its tokens and today's price, as cached answers are
        if self.redact is not None:  # before anything stores, logs or shows it
            resp = replace(resp, text=self.redact(resp.text), error=self.redact(resp.error))
        if self.cache is not None and self.mode.writes and cacheable(resp):
            self.cache.set(req.key, resp)
        self._log_final(req, resp)  # before the caller has it: an SDK call sees its log line's failure
        self._settle(req, resp)
        self._report()

    def _settle(self, req: Request, resp: Response) -> None:
        """Resolve the request's future (once) and count it: nothing here can fail."""
        fut = self.futures[req.key]
        if fut.done():
            return
        fut.set_result(resp)
        with self._lock:
            self.done += 1
            self.errors += resp.error is not None
            if self.done >= self.total:
                self.settled.set()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, self.hits, self.errors)


# ---- one attempt -------------------------------------------------------------------------


def _retryable(resp: Response) -> bool:
    if resp.status_code in NO_RETRY or resp.retry is False or not_transient(resp):
        return False
    return resp.status_code is None or resp.status_code == 429 or resp.status_code >= 500


async def _attempt(litellm: Any, req: Request, remaining: float) -> Response:
    if remaining <= 0:
        return Response(error=f"deadline of {req.timeout:g} s passed", retry=False)
    try:
        return await asyncio.wait_for(call(litellm, req, remaining), timeout=remaining)
    except TimeoutError:
        return Response(error=f"deadline of {req.timeout:g} s passed", latency_ms=remaining * 1000, retry=False)


def _prepare_litellm(requests: list[Request]) -> Any:
    """litellm for these requests (none of them Python targets); None when there are none."""
    if not requests:
        return None
    from .litellm_import import import_litellm

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


async def call(litellm: Any, req: Request, timeout: float) -> Response:
    """One attempt; never raises for provider problems. ``litellm`` is the litellm module, or
    the direct transport for OpenAI-compatible servers (see providers/openai_compat)."""
    if req.litellm_model.startswith("python:"):
        from .apps import call_target

        return await call_target(req)
    key = None  # a key goes only where api_key_env names it
    if req.api_key_env:
        key = os.environ.get(req.api_key_env)
        if not key:
            return Response(error=f"environment variable {req.api_key_env} is not set; "
                            f"export it with the API key for {req.model}", retry=False)
    refused = _url_credentials_conflict(req, key, via_litellm=isinstance(litellm, ModuleType))
    if refused:
        return Response(error=refused, retry=False)
    if not isinstance(litellm, ModuleType):
        return await litellm.call(req, key, timeout)
    kwargs: dict[str, Any] = {**req.params, "timeout": timeout, "num_retries": 0, "max_retries": 0}
    if req.api_base:
        kwargs["api_base"] = req.api_base
    if key:
        kwargs["api_key"] = key
    elif req.api_base and req.litellm_model.split("/", 1)[0] in HOSTS:  # never the environment's key
        kwargs["api_key"] = NO_KEY
    start = time.perf_counter()
    try:
        if req.call == "chat":
            raw = await litellm.acompletion(model=req.litellm_model, messages=list(req.messages), **kwargs)
        elif req.call == "embedding":
            raw = await litellm.aembedding(model=req.litellm_model, input=[_text(req)], **kwargs)
        else:
            raw = await litellm.amoderation(input=_text(req), model=req.litellm_model, **kwargs)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _error(exc, (time.perf_counter() - start) * 1000)
    if req.call != "chat":
        from .measured import response

        return response(req.call, raw, (time.perf_counter() - start) * 1000)
    return _response(raw, (time.perf_counter() - start) * 1000)


def _text(req: Request) -> str:
    """The text an embedding or moderation request is about: its one message's."""
    return str(req.messages[-1].get("content") or "")


def _url_credentials_conflict(req: Request, key: str | None, *, via_litellm: bool) -> str | None:
    """``api_base: https://user:password@host`` goes as HTTP Basic auth, which takes the one
    Authorization header: the direct transport sends it when no key is named; litellm's client
    always sends a Bearer header of its own, so it cannot (aiohttp would raise on every attempt)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(req.api_base or "")
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        return None  # not a URL we can read: the HTTP client says what is wrong with it
    if not has_credentials:
        return None
    if key:
        return (f"api_base of {req.model} has user:password@ and api_key_env names a key, but a request "
                "has one Authorization header; keep one (the URL's credentials go as Basic auth, a key as Bearer)")
    if via_litellm:
        return (f"api_base of {req.model} has user:password@, which litellm cannot send (its client sends "
                "its own Authorization header); use an openai/ model with transport: auto (called directly, "
                "the credentials sent as Basic auth), or a key in api_key_env")
    return None


def _response(raw: Any, latency_ms: float) -> Response:
    choices = getattr(raw, "choices", None) or []
    if not choices:
        return Response(error="the provider returned no choices", latency_ms=round(latency_ms, 3), retry=False)
    message = choices[0].message
    usage = getattr(raw, "usage", None)
    tokens_in, tokens_out = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
    if not tokens_in and not tokens_out:
        # litellm fills a missing `usage` with zeros; a real answer never has 0 prompt tokens
        tokens_in = tokens_out = None
    for name, v in (("prompt_tokens", tokens_in), ("completion_tokens", tokens_out)):
        if not is_count(v):
            return Response(error=f"APIError: the provider's answer is not a chat completion: usage.{name} is {v!r}, "
                                  "not a whole number", latency_ms=round(latency_ms, 3), retry=False)
    try:
        calls = tool_calls_of(getattr(message, "tool_calls", None))
        function_call = function_call_of(getattr(message, "function_call", None))
    except ValueError as exc:
        return Response(error=f"APIError: the provider's answer is not a chat completion: {exc}",
                        latency_ms=round(latency_ms, 3), retry=False)
    return Response(
        text=message.content if message.content is not None else "",
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        latency_ms=round(latency_ms, 3),  # the cost: from the tokens, by the engine (pricing.priced)
        usage=usage_details(usage, getattr(raw, "service_tier", None)) if usage is not None else None,
        finish_reason=choices[0].finish_reason,
        logprobs=token_logprobs(getattr(choices[0], "logprobs", None)),
        tool_calls=calls,
        function_call=function_call,
    )


def _checked(resp: Response) -> Response:
    """An answer whose numbers no real answer has (10**13 tokens from a provider, a Python
    target reporting a NaN or infinite cost) is an error saying so, never stored nor summed."""
    if resp.error is not None:
        return resp
    bad = numbers_problem({"input_tokens": resp.input_tokens, "output_tokens": resp.output_tokens,
                           "cost_usd": resp.cost_usd, "latency_ms": resp.latency_ms})
    if bad is None:
        return resp
    return replace(resp, text=None, error=f"the answer cannot be used: {bad}", retry=False, input_tokens=None,
                   output_tokens=None, cost_usd=None)


def _asked(seconds: float, limit: str) -> str:
    return (f"the server asked to wait {seconds:g} s (Retry-After), more than {limit}: raise it in promstack.yaml, "
            "or run later")


def _unexpected(exc: Exception) -> Response:
    return Response(error=f"promstack could not complete this call ({type(exc).__name__}: {exc}); please report "
                          "it as a bug of pytest-promstack", retry=False)


def _error(exc: Exception, latency_ms: float) -> Response:
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc).split("Traceback (most recent call last)")[0]
    message = " ".join(message.split()) or type(exc).__name__
    if len(message) > 400:
        message = message[:399] + "…"
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    if isinstance(exc, Warning):
        prefix = f"a warning was raised as an error inside litellm (filterwarnings = error?): {prefix}"
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    return Response(error=f"{prefix}: {message}", status_code=status, latency_ms=round(latency_ms, 3),
                    retry_after=parse_retry_after(headers))


def open_engine(settings: Any, run_id: str, warn: Callable[[str], None], cache: Any = None) -> Engine:
    """The engine of a run, for every entry point (test files, the fixture, the SDK): the
    settings' cache layers (``cache``: already built), call log, retries, transport and key
    redaction; ``settings.concurrency`` is this process's share (see plugin/xdist.py)."""
    from ..util.redact import Redactor, secrets_of
    from .cache import build_cache
    from .calllog import CallLog, user_id

    s = settings
    masking = s.masking if s.masking.on("call_log") else None
    log = CallLog(s.log_path, run_id, s.user_id or user_id(), masking, rotate=s.log_rotate) \
        if s.log_path is not None else None
    engine = Engine(s.concurrency, cache if cache is not None else build_cache(s, warn), s.cache_mode,
                    RetryPolicy(s.max_retries, s.retry_backoff, s.retry_max_wait), log,
                    transport=s.transport, redact=Redactor(secrets_of(s)))
    engine.timed = bool(s.telemetry)
    return engine
