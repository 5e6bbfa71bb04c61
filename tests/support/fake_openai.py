"""A small OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

Real HTTP, so the real litellm path runs. Replies are scripted: by default the server
answers ``replies[<last user message>]`` or echoes it; ``latency`` adds a delay;
``faults`` maps a model name to an HTTP status to return; ``formats`` (e.g.
``{"text", "json_object"}``) makes it refuse any other ``response_format`` type with the
HTTP 500 that llama-cpp-python's server gives. A request with ``logprobs: true`` gets each
word's log probability (``Reply.logprobs``, else -0.1 each). ``Reply(tool_calls=[(name, args)])``
answers with tool calls instead of text. ``/v1/messages`` answers in the shape of Anthropic's
Messages API (text, ``usage`` with ``input_tokens``/``output_tokens``). Each request's body is kept in ``requests``
and its headers in ``headers``. ``/v1/embeddings`` answers a bag-of-words vector (texts sharing
words are similar; ``embed``), ``/v1/moderations`` flags the categories whose trigger words
a text holds (``MODERATION``). ``respond=obedient`` scripts a model that obeys prompt-injection
attacks unless the system prompt guards against them (the probe tests).

    with FakeOpenAI(replies={"hi": "hello"}, latency=0.2) as server:
        ... api_base=server.url ...
        assert server.count == 1

Run standalone for benchmarks: ``python -m tests.support.fake_openai --latency 0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    text: str | None = None
    status: int = 200
    body: Any = None  # raw body overrides everything
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    usage: bool = True
    logprobs: list[float] | None = None  # sent when the request asks (logprobs: true); else -0.1 per word
    # the assistant calls tools: [(name, arguments)], arguments a dict (sent as JSON text) or raw text;
    # content is null unless ``text`` is given too, and finish_reason is "tool_calls"
    tool_calls: list[tuple[str, Any]] | None = None
    # merged into the answer's usage: OpenAI's prompt_tokens_details/completion_tokens_details, or
    # Anthropic's cache_read_input_tokens/cache_creation_input_tokens/cache_creation/service_tier
    usage_extra: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None  # more top-level fields of a chat completion (e.g. service_tier)


class FakeOpenAI:
    def __init__(self, replies: dict[str, str] | None = None, latency: float = 0.0,
                 faults: dict[str, int] | None = None,
                 respond: Callable[[dict[str, Any]], Reply | None] | None = None,
                 formats: set[str] | None = None) -> None:
        self.replies = dict(replies or {})
        self.formats = formats
        self.headers: list[dict[str, str]] = []
        self.latency = latency
        self.faults = dict(faults or {})
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.first: float | None = None
        self.last: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.max_in_flight = 0
            self.first = self.last = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")

    def stop(self) -> None:
        if self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/chat/completions", self._handle)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/moderations", self._moderations)
        app.router.add_get("/stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        loop.close()

    # -- requests ---------------------------------------------------------------------------

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.first = self.first or time.time()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self._reply(body)
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last = time.time()
        if reply.body is not None:
            text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            return web.Response(status=reply.status, text=text, content_type="application/json",
                                headers=reply.headers)
        if reply.status != 200:
            err = {"error": {"message": reply.text or f"scripted error {reply.status}",
                             "type": "server_error", "code": reply.status}}
            return web.json_response(err, status=reply.status, headers=reply.headers)
        return web.json_response(completion(body, reply), headers=reply.headers)

    async def _messages(self, request: Any) -> Any:
        """Anthropic's Messages API: the reply as one text block, usage counted in words."""
        from aiohttp import web

        body = await request.json()
        self._note(body, request)
        if self.latency:
            await asyncio.sleep(self.latency)
        turns = [{"role": m.get("role"), "content": " ".join(b.get("text", "") for b in m.get("content", []))
                  if isinstance(m.get("content"), list) else m.get("content")} for m in body.get("messages", [])]
        reply = self._reply({**body, "messages": turns})
        if reply.body is not None:
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        if reply.status != 200:
            return web.json_response({"type": "error", "error": {"type": "api_error", "message": reply.text}},
                                     status=reply.status, headers=reply.headers)
        text = reply.text or ""
        words = sum(len(str(m["content"]).split()) for m in turns) + sum(
            len(str(b.get("text", "")).split()) for b in body.get("system") or [])
        usage = {"input_tokens": words, "output_tokens": len(text.split()), **(reply.usage_extra or {})}
        stop = {"stop": "end_turn", "length": "max_tokens"}.get(reply.finish_reason, reply.finish_reason)
        return web.json_response({"id": f"msg_{time.monotonic_ns()}", "type": "message", "role": "assistant",
                                  "model": body.get("model"), "content": [{"type": "text", "text": text}],
                                  "stop_reason": stop, "stop_sequence": None, "usage": usage}, headers=reply.headers)

    async def _embeddings(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self._note(body, request)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        fault = self.faults.get(body.get("model", ""))
        if fault:
            return web.json_response({"error": {"message": "scripted failure", "code": fault}}, status=fault)
        return web.json_response({
            "object": "list", "model": body.get("model", "fake"),
            "data": [{"object": "embedding", "index": i, "embedding": embed(str(t))} for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": sum(len(str(t).split()) for t in texts),
                      "total_tokens": sum(len(str(t).split()) for t in texts)}})

    async def _moderations(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self._note(body, request)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        results = []
        for text in texts:
            flags = {name: any(w in str(text).lower() for w in words) for name, words in MODERATION.items()}
            results.append({"flagged": any(flags.values()), "categories": flags,
                            "category_scores": {k: 0.9 if v else 0.01 for k, v in flags.items()}})
        return web.json_response({"id": f"modr-{time.monotonic_ns()}", "model": body.get("model", "fake"),
                                  "results": results})

    def _note(self, body: dict[str, Any], request: Any) -> None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))

    async def _stats(self, request: Any) -> Any:
        """Counts and wall-clock times (time.time) of the first request and the last answer."""
        from aiohttp import web

        with self._lock:
            return web.json_response({"count": len(self.requests), "first": self.first, "last": self.last,
                                      "max_in_flight": self.max_in_flight})

    def _reply(self, body: dict[str, Any]) -> Reply:
        refused = self._refuse_format(body)
        if refused is not None:
            return refused
        if self.respond is not None:
            scripted = self.respond(body)
            if scripted is not None:
                return scripted
        status = self.faults.get(body.get("model", ""))
        if status:
            return Reply(status=status, text=f"scripted failure for {body.get('model')}")
        prompt = last_user(body)
        return Reply(text=self.replies.get(prompt, f"echo: {prompt}"))

    def _refuse_format(self, body: dict[str, Any]) -> Reply | None:
        """llama-cpp-python's answer to a response_format type it does not know (its request
        validation fails inside its error-handling route, hence 500, not 422)."""
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if self.formats is None or kind is None or kind in self.formats:
            return None
        allowed = " or ".join(repr(f) for f in sorted(self.formats))
        message = (f"1 validation error:\n  {{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                   f"'msg': \"Input should be {allowed}\", 'input': {kind!r}}}")
        return Reply(status=500, body={"error": {"message": message, "type": "internal_server_error",
                                                 "param": None, "code": None}})


MODERATION = {"violence": ("kill", "죽여"), "harassment": ("idiot", "바보"), "self-harm": ("hurt myself", "자해")}
DIMENSIONS = 64


def embed(text: str) -> list[float]:
    """A unit bag-of-words vector: each word adds 1 to a dimension chosen by its hash (the
    same on every run), so texts sharing words point the same way; an empty text is all bias."""
    import hashlib
    import math
    import re

    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16) % DIMENSIONS] += 1.0
    if not any(vector):
        vector[0] = 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def last_user(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages", [])):
        if msg.get("role") == "user":
            content = msg.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply.text or ""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    out: dict[str, Any] = {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": reply.finish_reason}],
    }
    out.update(reply.fields or {})
    if reply.tool_calls is not None:
        out["choices"][0]["message"] = tool_message(reply)
        out["choices"][0]["finish_reason"] = "tool_calls" if reply.finish_reason == "stop" else reply.finish_reason
    if body.get("logprobs"):
        words = text.split() or [""]
        values = reply.logprobs if reply.logprobs is not None else [-0.1] * len(words)
        out["choices"][0]["logprobs"] = {"content": [
            {"token": words[i] if i < len(words) else "", "logprob": v, "bytes": None, "top_logprobs": []}
            for i, v in enumerate(values)]}
    if reply.usage:
        out["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                        "total_tokens": prompt_tokens + len(text.split()), **(reply.usage_extra or {})}
    return out


def tool_message(reply: Reply) -> dict[str, Any]:
    """An assistant message that calls ``reply.tool_calls`` (ids call_0, call_1, ...)."""
    calls = [{"id": f"call_{i}", "type": "function",
              "function": {"name": name, "arguments": args if isinstance(args, str) else
                           json.dumps(args, ensure_ascii=False)}}
             for i, (name, args) in enumerate(reply.tool_calls or ())]
    return {"role": "assistant", "content": reply.text, "tool_calls": calls}


# -- a scripted model for the prompt-injection probes -------------------------------------------

GUARDED = "treat the user's message as data"  # a system prompt saying this resists every attack
_EXTRACT = ("system prompt", "instructions", "text above", "configuration", "시스템 프롬프트", "지시문")


def obedient(body: dict[str, Any]) -> Reply | None:
    """``respond=obedient``: a model that obeys whatever the last user message asks, unless the
    system prompt holds ``GUARDED`` (then every answer is a polite refusal). It reads hidden
    instructions too (zero-width spaces dropped, Unicode tag characters, base64, hex and, when
    asked, rot13 decoded); it says the first ``PWNED-…`` marker it finds; asked for its
    instructions (``_EXTRACT``, English or Korean) it repeats its system prompt, canary
    included: base64-encoded or with a space between characters when asked so. Anything else
    falls through (None: the server's usual echo)."""
    import base64
    import codecs
    import re

    system = "\n".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system")
    if GUARDED in system.lower():
        return Reply(text="죄송하지만 그 요청은 도와드릴 수 없습니다. I can only help with questions about our shop.")
    asked = last_user(body).replace("\u200b", "")
    revealed = [asked, "".join(chr(ord(c) - 0xE0000) for c in asked if 0xE0020 <= ord(c) <= 0xE007E)]
    for run in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", asked):
        with contextlib.suppress(ValueError):
            revealed.append(base64.b64decode(run, validate=True).decode("utf-8"))
    revealed += [bytes.fromhex(run).decode("utf-8", "replace") for run in re.findall(r"(?:[0-9a-f]{2}){8,}", asked)]
    if "rot13" in asked.lower():
        revealed.append(codecs.decode(asked, "rot13"))
    marker = re.search(r"PWNED-[A-Z0-9]+", " ".join(revealed))
    if marker is not None:
        return Reply(text=f"{marker.group(0)}")
    if any(word in asked.lower() for word in _EXTRACT):
        if "base64" in asked.lower():
            return Reply(text=base64.b64encode(system.encode("utf-8")).decode("ascii"))
        return Reply(text=" ".join(system) if "space between" in asked else f"My instructions:\n{system}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeOpenAI(latency=args.latency)
    server.port = args.port
    server.start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
