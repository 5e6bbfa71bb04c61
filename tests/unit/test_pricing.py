"""Pricing an answer from its tokens and token details (execute/pricing.py) without litellm:
what ``usage_details`` keeps of a provider's usage, how the details are stored (cache rows,
cassettes) so old entries still load, and the rules, each on a small price map of our own.
tests/unit/test_pricing_parity.py compares the real map with litellm itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pytest_promstack.execute import cassettes, pricing, stored
from pytest_promstack.execute.pricing import billed_tier, price, price_map, priced, usage_details
from pytest_promstack.model.types import Request, Response


def ask(model: str, *, params: dict | None = None, api_base: str | None = None) -> Request:
    return Request(model=model, litellm_model=model, messages=({"role": "user", "content": "환불?"},),
                   params=params or {}, key="k", api_base=api_base)


def answer(prompt: int | None = 1000, completion: int | None = 100, **usage) -> Response:
    return Response(text="네", input_tokens=prompt, output_tokens=completion, usage=usage or None)


@pytest.fixture
def price_list(monkeypatch):
    """Price with a map of the test's own: ``price_list({"name": entry})``."""
    def use(entries: dict) -> None:
        monkeypatch.setattr(pricing, "price_map", lambda: entries)
        pricing._catalog.cache_clear()
        pricing._model.cache_clear()

    yield use
    pricing._catalog.cache_clear()
    pricing._model.cache_clear()


# ---- usage_details ----------------------------------------------------------------------------


def test_the_details_of_an_openai_usage_are_its_cached_reasoning_and_audio_tokens_and_the_tier_served():
    usage = {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
             "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 200, "audio_tokens": 40}}
    assert usage_details(usage, "priority") == {"cache_read": 1024, "reasoning": 200, "audio_out": 40,
                                                "service_tier": "priority"}
    plain = {"prompt_tokens": 20, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 0}}
    assert usage_details(plain) is None  # most answers: nothing beyond the two counts


def test_the_details_of_anthropic_deepseek_and_xai_usages():
    anthropic = {"input_tokens": 50, "output_tokens": 9, "cache_read_input_tokens": 4000,
                 "cache_creation_input_tokens": 1500, "service_tier": "standard", "inference_geo": "us",
                 "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 500}}
    assert usage_details(anthropic) == {"cache_read": 4000, "cache_write": 1500, "cache_write_1h": 500,
                                        "service_tier": "standard", "inference_geo": "us"}
    deepseek = {"prompt_tokens": 900, "completion_tokens": 10, "prompt_cache_hit_tokens": 640,
                "prompt_cache_miss_tokens": 260}
    assert usage_details(deepseek) == {"cache_read": 640}
    xai = {"prompt_tokens": 900, "completion_tokens": 10, "cost_in_usd_ticks": 25_000_000}
    assert usage_details(xai) == {"cost": 0.0025}  # 10**10 ticks a dollar
    openrouter = {"prompt_tokens": 900, "completion_tokens": 10, "cost": 0}
    assert usage_details(openrouter) == {"cost": 0.0}  # a free model: stated, so kept


def test_junk_in_a_usage_is_left_out():
    junk = {"prompt_tokens_details": {"cached_tokens": "12", "audio_tokens": -4},
            "completion_tokens_details": {"reasoning_tokens": True, "audio_tokens": 2.5},
            "cache_creation_input_tokens": 10**13, "service_tier": "x" * 65, "speed": 3,
            "inference_geo": "", "cost": float("nan"), "cost_in_usd_ticks": -1}
    assert usage_details(junk) is None
    assert usage_details(None) is None
    assert usage_details("not a usage") is None
    assert usage_details({"cost": float("inf"), "prompt_cache_hit_tokens": 7}) == {"cache_read": 7}


def test_an_object_usage_is_read_like_a_dict():
    class Details:
        cached_tokens = 30

    class Usage:
        prompt_tokens_details = Details()
        service_tier = "flex"

    assert usage_details(Usage()) == {"cache_read": 30, "service_tier": "flex"}


# ---- stored answers ---------------------------------------------------------------------------


def test_an_answer_without_details_is_stored_as_before_and_an_old_row_prices_as_before():
    old_row = json.dumps({"text": "네", "input_tokens": 1000, "output_tokens": 100, "cost_usd": None,
                          "latency_ms": 5.0, "cached": False, "finish_reason": "stop", "error": None,
                          "status_code": None, "attempts": 1, "logprobs": None})
    got = stored.decode(old_row)
    assert got is not None
    assert got.usage is None
    assert "usage" not in json.loads(stored.encode(got))  # the row stays as it was
    entry = price_map()["gpt-4o-mini"]
    expected = 1000 * entry["input_cost_per_token"] + 100 * entry["output_cost_per_token"]
    assert priced(ask("openai/gpt-4o-mini"), got).cost_usd == pytest.approx(expected, rel=1e-12)


def test_the_details_survive_the_cache_row_and_the_cassette():
    resp = answer(6000, 80, cache_read=4096, service_tier="priority")
    assert stored.decode(stored.encode(resp)).usage == {"cache_read": 4096, "service_tier": "priority"}
    req = ask("openai/gpt-4o-mini")
    line = cassettes.entry("c", req, resp)
    assert line["usage"] == {"input_tokens": 6000, "output_tokens": 80, "cache_read": 4096, "service_tier": "priority"}
    assert cassettes.problem(line) is None
    back = cassettes.to_response(line)
    assert (back.input_tokens, back.output_tokens, back.usage) == (6000, 80, resp.usage)
    assert cassettes.to_response({**line, "usage": {"input_tokens": 3, "output_tokens": 1}}).usage is None


@pytest.mark.parametrize(("usage", "problem"), [
    ([1], "usage is list, not an object"),
    ({"cached": 3}, "usage has 'cached' (it may have cache_read, cache_write, "),
    ({"cache_read": -1}, "usage.cache_read -1 is not a whole number of tokens"),
    ({"reasoning": True}, "usage.reasoning True is not a whole number of tokens"),
    ({"service_tier": 7}, "usage.service_tier 7 is not a text of 1 to 64 characters"),
    ({"cost": float("nan")}, "usage.cost nan is not a finite number"),
    ({"cost": 10**7}, "usage.cost 10000000 is beyond 1,000,000 USD"),
])
def test_a_stored_answer_with_bad_details_is_not_ours(usage, problem):
    row = {"text": "네", "input_tokens": 1, "output_tokens": 1, "usage": usage}
    assert stored.problem(row).startswith(problem)
    assert stored.decode(json.dumps(row)) is None  # a miss: the model is asked again
    line = {"key": "k", "response": "네", "usage": {"input_tokens": 1, "output_tokens": 1,
                                                   **(usage if isinstance(usage, dict) else {"x": usage})}}
    assert cassettes.problem(line) is not None


# ---- the rules, on a map of our own -----------------------------------------------------------

GPT = {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6,
       "cache_read_input_token_cost": 1e-7, "output_cost_per_reasoning_token": 8e-6,
       "input_cost_per_audio_token": 3e-6, "output_cost_per_audio_token": 6e-6,
       "input_cost_per_token_above_200k_tokens": 2e-6, "output_cost_per_token_above_200k_tokens": 8e-6,
       "cache_read_input_token_cost_above_200k_tokens": 2e-7,
       "input_cost_per_token_flex": 5e-7, "output_cost_per_token_flex": 2e-6, "cache_read_input_token_cost_flex": 5e-8,
       "input_cost_per_token_priority": 2e-6, "output_cost_per_token_priority": 8e-6,
       "regional_processing_uplift_multiplier_eu": 1.1}


def test_each_kind_of_token_bills_at_its_rate(price_list):
    price_list({"gpt-x": GPT})
    req = ask("openai/gpt-x")
    assert priced(req, answer(1000, 100)).cost_usd == pytest.approx(1000e-6 + 100 * 4e-6)
    # 600 uncached + 400 cached + 200 audio prompt tokens; 50 text + 30 reasoning + 20 audio output tokens
    details = answer(1200, 100, cache_read=400, audio_in=200, reasoning=30, audio_out=20)
    expected = 600e-6 + 400e-7 + 200 * 3e-6 + 50 * 4e-6 + 30 * 8e-6 + 20 * 6e-6
    assert priced(req, details).cost_usd == pytest.approx(expected)


def test_a_prompt_beyond_a_threshold_bills_every_token_at_its_rates(price_list):
    price_list({"gpt-x": GPT, "grok-x": {**GPT, "litellm_provider": "xai"}})
    big = answer(200_001, 10, cache_read=100_000)
    assert priced(ask("openai/gpt-x"), big).cost_usd == pytest.approx(100_001 * 2e-6 + 100_000 * 2e-7 + 10 * 8e-6)
    assert priced(ask("openai/gpt-x"), answer(200_000, 10)).cost_usd == pytest.approx(200_000e-6 + 10 * 4e-6)
    assert priced(ask("xai/grok-x"), answer(200_000, 10)).cost_usd == pytest.approx(200_000 * 2e-6 + 10 * 8e-6)


@pytest.mark.parametrize(("asked", "served", "tier"), [
    (None, None, None), ("flex", None, "flex"), ("fast", None, "priority"), ("auto", None, None),
    ("flex", "default", None), ("flex", "Standard", None), ("auto", "priority", "priority"),
    (None, "batch", None), ("flex", "batch", "flex"), ("scale", None, None), (3, None, None),
])
def test_the_tier_billed_is_the_one_served_else_the_one_asked_for(asked, served, tier):
    assert billed_tier(asked, served) == tier


def test_a_service_tier_bills_at_its_rates_and_a_missing_one_at_the_standard_ones(price_list):
    price_list({"gpt-x": GPT})
    flex = priced(ask("openai/gpt-x", params={"service_tier": "flex"}), answer(1000, 100, cache_read=400))
    assert flex.cost_usd == pytest.approx(600 * 5e-7 + 400 * 5e-8 + 100 * 2e-6)
    served = priced(ask("openai/gpt-x"), answer(1000, 100, service_tier="priority"))
    assert served.cost_usd == pytest.approx(1000 * 2e-6 + 100 * 8e-6)
    # priority has no cache-read rate of its own: the standard one
    assert priced(ask("openai/gpt-x"), answer(1000, 100, cache_read=1000, service_tier="priority")).cost_usd == \
        pytest.approx(1000e-7 + 100 * 8e-6)


def test_an_openai_regional_endpoint_bills_its_uplift(price_list):
    price_list({"gpt-x": GPT})
    plain = priced(ask("openai/gpt-x"), answer()).cost_usd
    eu = priced(ask("openai/gpt-x", api_base="https://eu.api.openai.com/v1"), answer()).cost_usd
    assert eu == pytest.approx(plain * 1.1)
    assert priced(ask("openai/gpt-x", api_base="http://127.0.0.1:8000/v1"), answer()).cost_usd == plain


def test_anthropic_cache_writes_bill_per_lifetime_and_region_and_speed_multiply(price_list):
    claude = {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 3e-6,
              "output_cost_per_token": 1.5e-5, "cache_read_input_token_cost": 3e-7,
              "cache_creation_input_token_cost": 3.75e-6, "cache_creation_input_token_cost_above_1hr": 6e-6,
              "provider_specific_entry": {"us": 1.1, "fast": 2.0}}
    price_list({"claude-x": claude})
    req = ask("anthropic/claude-x")
    # 100 uncached + 4000 read + 1500 written (500 of them for an hour): Anthropic's input_tokens is the 100
    resp = answer(5600, 10, cache_read=4000, cache_write=1500, cache_write_1h=500)
    expected = 100 * 3e-6 + 4000 * 3e-7 + 1000 * 3.75e-6 + 500 * 6e-6 + 10 * 1.5e-5
    assert priced(req, resp).cost_usd == pytest.approx(expected)
    us_fast = replace_usage(resp, inference_geo="us", speed="fast")
    assert priced(req, us_fast).cost_usd == pytest.approx(expected * 1.1 * 2.0)


def replace_usage(resp: Response, **more) -> Response:
    from dataclasses import replace

    return replace(resp, usage={**(resp.usage or {}), **more})


def test_off_peak_hours_bill_at_the_off_peak_rates(price_list):
    deepseek = {"litellm_provider": "deepseek", "mode": "chat", "input_cost_per_token": 4e-7,
                "output_cost_per_token": 1.6e-6, "cache_read_input_token_cost": 4e-8,
                "off_peak_pricing": {"input_cost_per_token": 2e-7, "output_cost_per_token": 8e-7,
                                     "windows": [{"hours_utc": ["16:30-00:30"], "weekdays": ["mon", 2, 3, 4, 5]},
                                                 {"hours_utc": "00:00-00:00", "weekdays": [6, 7]}]}}
    price_list({"deepseek/deepseek-x": deepseek})
    req, resp = ask("deepseek/deepseek-x"), answer(1000, 100, cache_read=500)
    peak = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # Wednesday noon
    assert priced(req, resp, at=peak).cost_usd == pytest.approx(500 * 4e-7 + 500 * 4e-8 + 100 * 1.6e-6)
    # a missing off-peak cache rate stays the standard one
    off = 500 * 2e-7 + 500 * 4e-8 + 100 * 8e-7
    assert priced(req, resp, at=datetime(2026, 3, 4, 23, 0, tzinfo=UTC)).cost_usd == pytest.approx(off)
    assert priced(req, resp, at=datetime(2026, 3, 5, 0, 15, tzinfo=UTC)).cost_usd == pytest.approx(off)  # wraps
    assert priced(req, resp, at=datetime(2026, 3, 7, 12, 0, tzinfo=UTC)).cost_usd == pytest.approx(off)  # Saturday


def test_which_entry_prices_a_model(price_list):
    price_list({
        "gpt-x": GPT, "claude-latest": {"alias_of": "claude-x"},
        "claude-x": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-6,
                     "output_cost_per_token": 2e-6},
        "together-ai-41.1b-80b": {"litellm_provider": "together_ai", "input_cost_per_token": 9e-7,
                                  "output_cost_per_token": 9e-7},
        "fireworks-ai-above-16b": {"litellm_provider": "fireworks_ai", "input_cost_per_token": 9e-7,
                                   "output_cost_per_token": 9e-7},
        "qwen-tiered": {"litellm_provider": "dashscope", "tiered_pricing": [{"input_cost_per_token": 1e-6}]},
        "fireworks_ai/unpriced": {"litellm_provider": "fireworks_ai", "mode": "chat"},
    })
    assert price("openai/GPT-X", {}) == (1e-6, 4e-6)  # the map's names ignore case
    assert price("gpt-x", {}) == (1e-6, 4e-6)  # a bare name: its entry's provider
    assert price("openai/gpt-x-2025-01-31", {}) == (1e-6, 4e-6)  # a dated snapshot: its model's price
    assert price("anthropic/claude-latest", {}) == (1e-6, 2e-6)  # an alias row
    assert price("groq/gpt-x", {}) is None  # another provider's entry is not this provider's price
    assert price("together_ai/meta-llama/Llama-3-70b-chat-hf", {}) == (9e-7, 9e-7)  # by size, as litellm does
    assert price("fireworks_ai/accounts/x/models/qwen-72b", {}) == (9e-7, 9e-7)
    assert price("fireworks_ai/accounts/x/models/sizeless", {}) is None  # litellm's 0: unknown to us
    assert price("fireworks_ai/unpriced", {}) is None  # an entry without a price
    assert price("dashscope/qwen-tiered", {}) is None  # per-request tiers: not guessed


def test_fireworks_bills_a_cached_token_at_half_the_input_rate(price_list):
    price_list({"fireworks_ai/m": {"litellm_provider": "fireworks_ai", "input_cost_per_token": 1e-6,
                                   "output_cost_per_token": 2e-6}})
    assert priced(ask("fireworks_ai/m"), answer(1000, 0, cache_read=600)).cost_usd == pytest.approx(400e-6 + 300e-6)


def test_who_prices_first_the_models_own_params_then_a_stated_cost(price_list):
    price_list({"gpt-x": GPT})
    own = ask("openai/gpt-x", params={"input_cost_per_token": 0.001, "output_cost_per_token": 0.002})
    assert priced(own, answer(1000, 100, cache_read=1000, cost=5.0)).cost_usd == pytest.approx(1.2)  # flat
    assert priced(ask("openai/gpt-x"), answer(1000, 100, cost=0.25)).cost_usd == 0.25
    assert priced(ask("openrouter/anything"), answer(None, None, cost=0.25)).cost_usd == 0.25
    assert priced(ask("local/gemma-3-270m"), answer(10, 5, cache_read=3)).cost_usd == 0.0
    app = ask("python:app:answer")
    assert priced(app, Response(text="a", input_tokens=3, cost_usd=0.5, usage={"cost": 9.0})).cost_usd == 0.5
    assert priced(ask("openai/gpt-x"), answer(None, None, cache_read=5)).cost_usd is None  # no counts: unknown
    assert priced(ask("openai/gpt-x"), answer(10**400, 1)).cost_usd is None  # not a float: unknown, never an error


# ---- the engine's litellm path ----------------------------------------------------------------


def test_an_answer_through_litellm_keeps_its_details_and_is_priced_with_them_fresh_and_cached(tmp_path):
    from pytest_promstack.config.settings import load_settings
    from pytest_promstack.execute.engine import open_engine
    from pytest_promstack.plan.requests import cache_key
    from tests.support.fake_openai import FakeOpenAI, Reply

    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "service_tier": "flex",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "환불 가능합니다"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2000, "completion_tokens": 40, "total_tokens": 2040,
                      "prompt_tokens_details": {"cached_tokens": 1536},
                      "completion_tokens_details": {"reasoning_tokens": 16}}}
    (tmp_path / "promstack.yaml").write_text("transport: litellm\nmax_retries: 0\n", encoding="utf-8")
    messages = ({"role": "user", "content": "환불?"},)
    with FakeOpenAI(respond=lambda _: Reply(body=body)) as server:
        req = Request(model="mini", litellm_model="openai/gpt-4o-mini", messages=messages, params={},
                      key=cache_key("openai/gpt-4o-mini", list(messages), {}, server.url), api_base=server.url)
        got = []
        for run in ("run1", "run2"):
            engine = open_engine(load_settings(tmp_path, {}), run, print)
            try:
                engine.submit([req])
                got.append(engine.result(req, timeout=30))
            finally:
                engine.shutdown()
        assert server.count == 1
    fresh, cached = got
    assert fresh.usage == {"cache_read": 1536, "reasoning": 16, "service_tier": "flex"}
    assert (cached.cached, cached.usage, cached.cost_usd) == (True, fresh.usage, fresh.cost_usd)
    plain = priced(req, Response(text="a", input_tokens=2000, output_tokens=40)).cost_usd
    assert fresh.cost_usd == priced(req, Response(text="a", input_tokens=2000, output_tokens=40,
                                                  usage=fresh.usage)).cost_usd
    assert fresh.cost_usd < plain  # the cached prompt tokens bill at the cache-read rate
