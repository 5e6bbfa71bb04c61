"""The direct transport sends what litellm sends and reads back what litellm reads.

For every provider promstack calls directly (execute/providers/routes.py), a request goes to
a loopback server twice, once through litellm and once directly: the URL path, the body and
the credential headers must be the same, and so must the answer as the engine keeps it (text,
tokens and their details, finish reason, cost). Param by param on one model of each provider,
all params together on every routed chat model of the price map (a sample of the largest
providers). When litellm changes what it sends, this fails and names the model and param.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import pytest

from pytest_promstack.execute.engine import call
from pytest_promstack.execute.pricing import price_map, priced
from pytest_promstack.execute.providers.openai_compat import Transport
from pytest_promstack.execute.providers.routes import OURS, PARAMS, model_route, route
from pytest_promstack.model.types import Request
from tests.support.fake_openai import FakeOpenAI, Reply

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "an order by id",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}},
                                                          "required": ["id"]}}}]
VALUES = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 5, "stop": ["끝"], "seed": 7, "presence_penalty": 0.1,
          "frequency_penalty": 0.2, "logprobs": True, "top_logprobs": 2, "logit_bias": {"1": 1}, "user": "u-1",
          "response_format": {"type": "json_object"}, "tools": TOOLS, "tool_choice": "auto",
          "parallel_tool_calls": False, "max_completion_tokens": 7, "service_tier": "flex"}
MESSAGES = ({"role": "system", "content": "간결하게 답하세요."}, {"role": "user", "content": "안녕하세요"},
            {"role": "assistant", "content": "네, 말씀하세요."}, {"role": "user", "content": "주문 A-1 상태는?"})
CREDENTIALS = ("authorization", "x-api-key", "anthropic-version", "anthropic-beta")
EXTRA = {"openai": {"prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}},
         "anthropic": {"cache_read_input_tokens": 4, "cache_creation_input_tokens": 5,
                       "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 3}}}
SAMPLE = 12  # models per provider beyond OpenAI's and Anthropic's (fireworks_ai alone has hundreds)


class LitellmFails(Exception):
    """litellm itself cannot call the model (a bug of its own): nothing to compare with."""


def _models(provider: str) -> list[str]:
    names = sorted(k for k, v in (price_map() or {}).items() if isinstance(v, dict)
                   and v.get("litellm_provider") == provider and v.get("mode") == "chat")
    full = [n if n.startswith(f"{provider}/") else f"{provider}/{n}" for n in names]
    routed = [m for m in full if model_route(m, False, frozenset(), False).direct]
    return routed if provider in ("openai", "anthropic") else routed[:SAMPLE]


def _params(provider: str) -> dict[str, object]:
    return {k: VALUES[k] for k in sorted(PARAMS[provider])}


@pytest.fixture(scope="module")
def litellm():
    from pytest_promstack.execute.litellm_import import import_litellm

    return import_litellm()


@pytest.fixture(scope="module")
def server():
    wire = {"extra": "openai"}

    def answer(body):
        return Reply(text="주문 A-1은 배송 중입니다", usage_extra=EXTRA[wire["extra"]],
                     fields={"service_tier": "default"})  # groq's answers carry it, and litellm reads it

    with FakeOpenAI(respond=answer) as fake:
        fake.wire = wire
        yield fake


def _both(litellm, server, model: str, params: dict[str, object], monkeypatch) -> list[tuple]:
    """What the server received and what the engine kept, through litellm and directly."""
    monkeypatch.setenv("PARITY_KEY", "sk-ant-parity-0000")
    anthropic = model.startswith("anthropic/")
    server.wire["extra"] = "anthropic" if anthropic else "openai"
    base = server.url.removesuffix("/v1") if anthropic else server.url
    req = Request(model="m", litellm_model=model, messages=MESSAGES, params=dict(params), key="k", api_base=base,
                  api_key_env="PARITY_KEY")
    assert route(req).direct, (model, route(req).why)
    seen = []
    for way in (litellm, Transport()):
        server.reset()

        async def one(way=way):
            try:
                return await call(way, req, 30)
            finally:
                if isinstance(way, Transport):
                    await way.close()

        resp = priced(req, asyncio.run(one()))
        if resp.error is not None:
            raise LitellmFails(resp.error) if way is litellm else AssertionError(f"{model}: {resp.error}")
        assert (resp.usage or {}).get("cache_read"), (model, resp.usage)  # the details that change a price
        body = server.requests[0]
        heads = {k.lower(): v for k, v in server.headers[0].items() if k.lower() in CREDENTIALS}
        seen.append((body, heads, replace(resp, latency_ms=None)))
    return seen


def test_every_param_routed_directly_is_sent_as_litellm_sends_it(litellm, server, monkeypatch):
    wrong, refused = [], []
    for provider in sorted(PARAMS):
        model = next((m for m in _models(provider) if _callable(litellm, server, m, monkeypatch)), None)
        assert model is not None, f"litellm calls none of {provider}'s models routed directly"
        for name, value in [(None, None), *_params(provider).items()]:
            params = {} if name is None else {name: value}
            if name == "tool_choice":
                params["tools"] = TOOLS
            try:
                seen = _both(litellm, server, model, params, monkeypatch)
            except LitellmFails:  # litellm refuses it for this model (the provider answers it for itself)
                refused.append(f"{model} {name}")
                continue
            (lit_body, lit_heads, lit), (our_body, our_heads, ours) = seen
            if (lit_body, lit_heads) != (our_body, our_heads):
                wrong.append(f"{model} {name}: litellm sent {lit_body} {lit_heads}, we sent {our_body} {our_heads}")
            elif lit != ours:
                wrong.append(f"{model} {name}: litellm read {lit}, we read {ours}")
    assert len(refused) <= len(PARAMS), refused
    assert not wrong, "\n".join(wrong)


def test_every_routed_chat_model_is_called_and_read_as_litellm_does(litellm, server, monkeypatch):
    wrong, called, broken, refused = [], 0, [], []
    for provider in sorted(PARAMS):
        for model in _models(provider):
            params = _params(provider)
            try:
                try:
                    seen = _both(litellm, server, model, params, monkeypatch)
                except LitellmFails as exc:  # litellm refuses a param for this model: compare without it
                    names = re.search(r"does not support parameters: \[([^]]*)\]", str(exc))
                    if names is None:
                        raise
                    dropped = re.findall(r"'(\w+)'", names.group(1))
                    refused.append(f"{model}: {', '.join(dropped)}")
                    seen = _both(litellm, server, model, {k: v for k, v in params.items() if k not in dropped},
                                 monkeypatch)
            except LitellmFails as exc:
                broken.append(f"{model}: {str(exc)[:160]}")
                continue
            (lit_body, lit_heads, lit), (our_body, our_heads, ours) = seen
            called += 1
            if (lit_body, lit_heads) != (our_body, our_heads):
                wrong.append(f"{model}: litellm sent {lit_body} {lit_heads}, we sent {our_body} {our_heads}")
            elif lit != ours:
                wrong.append(f"{model}: litellm read {lit}, we read {ours}")
    print(f"compared {called} models; litellm refuses a param of {len(refused)}, fails on {len(broken)}:",
          *refused, *broken, sep="\n")
    assert called > 60
    assert len(broken) < called / 4
    assert not wrong, f"{len(wrong)} of {called} differ:\n" + "\n".join(wrong[:20])


def _callable(litellm, server, model: str, monkeypatch) -> bool:
    try:
        _both(litellm, server, model, {}, monkeypatch)
    except LitellmFails:
        return False
    return True


def test_a_param_litellm_maps_keeps_the_request_with_litellm():
    for provider, allowed in PARAMS.items():
        model = _models(provider)[0]
        assert not model_route(model, False, frozenset({"reasoning_effort"}), False).direct, provider
        assert model_route(model, False, frozenset(allowed), False).direct, provider
    assert all(OURS.isdisjoint(allowed) for allowed in PARAMS.values())


def test_anthropic_stop_reasons_read_as_litellm_reads_them(litellm):
    from litellm.litellm_core_utils.core_helpers import map_finish_reason

    from pytest_promstack.execute.providers.anthropic import FINISH

    assert {reason: map_finish_reason(reason) for reason in FINISH} == FINISH
