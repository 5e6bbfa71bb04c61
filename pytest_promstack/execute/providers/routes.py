"""Which transport a chat request takes, decided once per model and shown in the header.

litellm's own CPU per call (about 6 ms on a small machine: mapping, pricing, logging) is the
wall of a large run, so a request whose HTTP exchange is one we make exactly as litellm
would goes out through our transport (providers/openai_compat: aiohttp, which litellm
depends on) and is priced from litellm's price map read as data (``pricing``):

- **a self-hosted server**: ``openai/<name>`` with an ``api_base``, ``<name>`` unknown to the
  price map (or priced by the model's own ``*_cost_per_token`` params): every param goes into
  the body as written (a server's own sampling params reach it); no key unless
  ``api_key_env`` names one;
- **a hosted provider** whose chat models litellm calls with OpenAI's chat-completions body
  unchanged (``openai``, ``groq``, ``together_ai``, ``deepseek``, ``fireworks_ai``,
  ``xai``), or Anthropic's Messages API (``anthropic``), when the model is
  a chat model of that provider in the price map and the request holds only what litellm
  passes through unchanged for it: plain-text messages (system, user, assistant) and the
  params in ``PARAMS[provider]`` (a test compares the body, headers and URL litellm sends
  with ours, param by param, and the answers read back). Reasoning models of the OpenAI-shaped
  providers stay with litellm (it rewrites ``max_tokens`` and refuses ``temperature`` for
  them), as does any other provider (Gemini: litellm speaks its native API; OpenRouter:
  litellm takes the cost OpenRouter bills from the answer), and any request with something
  else (tools for Anthropic, images, ``drop_params`` with a param to drop, ``stream``, ...).

The key is what litellm would use: ``api_key_env`` if named, else the provider's own
variables in litellm's order (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...), with one rule
of ours: a model with an ``api_base`` in the config gets no key from the environment unless
``api_key_env`` names it (a pull request that points ``api_base`` elsewhere must not receive
the key; ``HOSTS`` providers under litellm get the same rule, engine.call). The base URL is
``api_base``, else the provider's variable litellm reads (``OPENAI_BASE_URL``,
``ANTHROPIC_API_BASE``, ...), else the provider's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from ...model.types import Request
from ..pricing import price_map

OURS = frozenset({"drop_params", "input_cost_per_token", "output_cost_per_token"})
# litellm's own features: a request with one of these goes through litellm
LITELLM_ONLY = frozenset({"stream", "stream_options", "mock_response", "fallbacks", "caching", "api_version",
                          "custom_llm_provider", "base_model", "metadata", "num_retries", "max_retries", "timeout"})

SAMPLING = frozenset({"temperature", "top_p", "max_tokens", "stop"})
OPENAI_LIKE = SAMPLING | {"seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias"}
# what litellm 1.x sends unchanged, per provider (tests/unit/test_direct_parity.py holds it to that)
PARAMS: dict[str, frozenset[str]] = {
    "openai": OPENAI_LIKE | {"response_format", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens",
                             "service_tier"},
    "groq": OPENAI_LIKE,
    "together_ai": OPENAI_LIKE | {"max_completion_tokens"},
    "deepseek": OPENAI_LIKE | {"max_completion_tokens"},
    "fireworks_ai": OPENAI_LIKE | {"user"},
    "xai": OPENAI_LIKE - {"stop"} | {"user"},
    "anthropic": SAMPLING,
}
# (default base URL, variables litellm reads for the base URL, variables for the key, in litellm's order)
HOSTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "openai": ("https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE"), ("OPENAI_API_KEY",)),
    "groq": ("https://api.groq.com/openai/v1", ("GROQ_API_BASE",), ("GROQ_API_KEY",)),
    "together_ai": ("https://api.together.ai/v1", ("TOGETHER_AI_API_BASE",),
                    ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY")),
    "deepseek": ("https://api.deepseek.com/beta", ("DEEPSEEK_API_BASE",), ("DEEPSEEK_API_KEY",)),
    "fireworks_ai": ("https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_BASE",),
                     ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN")),
    "xai": ("https://api.x.ai/v1", ("XAI_API_BASE",), ("XAI_API_KEY",)),
    "anthropic": ("https://api.anthropic.com", ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
                  ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")),
}
ROLES = frozenset({"system", "user", "assistant"})
OPENAI_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


@dataclass(frozen=True)
class Route:
    """``wire``: "openai" (chat completions), "anthropic" (Messages) or "litellm"; ``provider``
    and ``name`` as litellm splits the model; ``hosted``: the key comes from the provider's
    variables; ``why``: for litellm, the reason, shown in the header."""

    wire: str
    provider: str = ""
    name: str = ""
    hosted: bool = False
    why: str = ""

    @property
    def direct(self) -> bool:
        return self.wire != "litellm"

    def url(self, api_base: str | None) -> str:
        """The endpoint: ``api_base``, else the provider's variable, else its own URL."""
        default, variables, _ = HOSTS.get(self.provider, ("", (), ()))
        base = (api_base or next((os.environ[v] for v in variables if os.environ.get(v)), None) or default).rstrip("/")
        if self.wire == "anthropic":
            return base if base.endswith("/v1/messages") else base + "/v1/messages"
        return base + "/chat/completions"

    def key(self, api_base: str | None) -> tuple[str, str] | None:
        """(variable, key) from the provider's variables when no ``api_key_env`` is named."""
        if not self.hosted or api_base:  # a key from the environment never goes to an api_base of the config
            return None
        for variable in HOSTS[self.provider][2]:
            if os.environ.get(variable):
                return variable, os.environ[variable]
        return None


def route(req: Request, transport: str = "auto") -> Route:
    """The transport of one chat request (see the module's docstring)."""
    if transport != "auto" or req.call != "chat":
        return Route("litellm", why="transport: litellm" if transport != "auto" else "not a chat call")
    base = model_route(req.litellm_model, bool(req.api_base), frozenset(req.params) - OURS,
                       "input_cost_per_token" in req.params and "output_cost_per_token" in req.params)
    if not base.direct:
        return base
    if req.params.get("n", 1) != 1:
        return Route("litellm", why="n > 1")
    if base.hosted and not _plain(req.messages, base.provider):
        return Route("litellm", why="messages litellm reshapes (parts, a prefill, a system turn mid-way)")
    return base


@cache
def model_route(litellm_model: str, has_base: bool, params: frozenset[str], own_price: bool) -> Route:
    """The route for a model and the names of its params (decided once per model)."""
    if litellm_model.startswith(("local/", "python:")):
        return Route("litellm", why="")
    if not LITELLM_ONLY.isdisjoint(params):
        return Route("litellm", why=f"param {sorted(LITELLM_ONLY & params)[0]} is litellm's")
    provider, _, name = litellm_model.partition("/")
    if not name:
        provider, name = _bare(litellm_model), litellm_model
    if provider == "openai" and has_base and (own_price or entry(provider, name) is None):
        return Route("openai", "openai", name)  # a self-hosted server: every param as written
    if provider not in PARAMS:
        return Route("litellm", why=f"{provider or litellm_model}: not a provider promstack calls directly")
    found = entry(provider, name)
    if found is None:
        return Route("litellm", why=f"{name} is not in litellm's price map")
    if provider == "openai" and ("gpt-5" in name or name.split("-")[0] in ("o1", "o3", "o4")):
        return Route("litellm", why="a reasoning model (litellm maps its params)")
    if found.get("supports_reasoning") and (provider != "anthropic" or found.get("thinking_always_on")
                                            or found.get("thinking_on_by_default")):
        return Route("litellm", why="a reasoning model (litellm maps its params)")
    if found.get("supports_sampling_params") is False:
        return Route("litellm", why="a model without sampling params (litellm checks them)")
    extra = params - PARAMS[provider] - {"n", "extra_headers"}
    if extra:
        return Route("litellm", why=f"param {sorted(extra)[0]} is mapped by litellm for {provider}")
    return Route("anthropic" if provider == "anthropic" else "openai", provider, name, hosted=True)


def _bare(model: str) -> str:
    """A name without a prefix is OpenAI's when the price map says so (litellm infers the
    provider of a few bare names; we take only OpenAI's)."""
    found = (price_map() or {}).get(model)
    return "openai" if isinstance(found, dict) and found.get("litellm_provider") == "openai" else ""


def entry(provider: str, name: str) -> dict[str, Any] | None:
    """The price map's chat entry for a provider's model, as litellm looks it up."""
    prices = price_map() or {}
    for key in (f"{provider}/{name}", name):
        found = prices.get(key)
        if isinstance(found, dict) and found.get("litellm_provider") == provider and found.get("mode") == "chat":
            return found
    return None


def _plain(messages: tuple[dict[str, Any], ...], provider: str) -> bool:
    """Messages litellm sends unchanged (OpenAI shape) or maps plainly (Anthropic): text content
    of the three roles; for OpenAI itself, tool calls and tool results too."""
    if provider == "openai":
        return all(isinstance(m, dict) and m.keys() <= OPENAI_MESSAGE_KEYS and m.get("role") in ROLES | {"tool"}
                   and (isinstance(m.get("content"), str) or (m.get("content") is None and m.get("tool_calls")))
                   for m in messages)
    if not messages or messages[-1].get("role") != "user":
        return False
    roles = [m.get("role") for m in messages]
    first_turn = next(i for i, r in enumerate(roles) if r != "system")
    if "system" in roles[first_turn:]:
        return False  # a system message after the conversation began: litellm keeps its place for some models
    return all(isinstance(m, dict) and m.keys() <= {"role", "content"} and m.get("role") in ROLES
               and isinstance(m.get("content"), str) and m["content"].strip() for m in messages)


def summary(requests: list[Request], transport: str) -> str:
    """``transport direct: a, b; litellm: c (why)`` for the models of a run (one request per
    model and prompt tells), or '' when no model is called over HTTP."""
    ways: dict[str, set[Route]] = {}
    for req in requests:
        ways.setdefault(req.model, set()).add(route(req, transport))
    direct, other = [], []
    for model, found in ways.items():
        if all(r.direct for r in found):
            direct.append(model)
        elif any(r.direct for r in found):
            direct.append(f"{model} (litellm for some prompts: {next(r.why for r in found if not r.direct)})")
        elif any(r.why for r in found):
            other.append(f"{model} ({next(r.why for r in found if r.why)})")
    parts = ([f"direct {', '.join(direct)}"] if direct else []) + ([f"litellm {', '.join(other)}"] if other else [])
    return f"transport: {'; '.join(parts)}" if parts else ""
