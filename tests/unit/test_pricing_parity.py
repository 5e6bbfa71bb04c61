"""Our price of an answer is litellm's: for every chat model of the providers we call directly
(OpenAI, Anthropic, Gemini, Groq, Together, DeepSeek, Mistral, OpenRouter, Fireworks, xAI) in
litellm's bundled price map, and for usages that reach each rate the entry has (cached and
cache-written tokens, reasoning and audio tokens, each prompt-size threshold, each service tier,
off-peak hours, Anthropic's region and speed multipliers, OpenAI's regional endpoints),
``pricing.priced`` equals ``litellm.completion_cost`` on the answer litellm would have made.

litellm is imported here (once, about 3 s); ``pricing`` itself never imports it. Entries where
litellm bills something we will not (it raises, or bills 0 for a model without a price, which
is unknown to us) are counted by reason in ``SKIPS`` and must stay among the known reasons."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_promstack.execute import pricing
from pytest_promstack.execute.litellm_import import import_litellm
from pytest_promstack.model.types import Request, Response

PROVIDERS = ("openai", "anthropic", "groq", "together_ai", "deepseek", "mistral", "openrouter", "fireworks_ai",
             "gemini", "xai")
PEAK = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)  # a Wednesday, 08:00 UTC: DeepSeek's standard hours
OFF_PEAK = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # inside DeepSeek's off-peak window


@pytest.fixture(scope="module")
def litellm():
    return import_litellm()


@dataclass(frozen=True)
class Usage:
    """One answer's usage, as our tokens and details say it and as a provider would send it."""

    label: str
    prompt: int = 1000
    completion: int = 200
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0
    audio_in: int = 0
    audio_out: int = 0
    requested: str | None = None  # the request's service_tier param
    served: str | None = None  # the tier the answer says it was served at
    geo: str | None = None
    speed: str | None = None
    region: str | None = None  # an OpenAI regional endpoint: eu, us, fedramp
    at: datetime = PEAK
    extra: dict[str, Any] = field(default_factory=dict)


def usages(entry: dict[str, Any], provider: str) -> list[Usage]:
    """A small answer, then one usage for each rate the entry has."""
    out = [Usage("small")]
    for limit in sorted({_limit(k) for k in entry if re.search(r"_above_\d+k?_tokens", k) and entry[k] is not None}):
        out.append(Usage(f"above {limit}", prompt=limit + 1, cache_read=limit // 2))
        if provider == "xai":
            out.append(Usage(f"at {limit}", prompt=limit))
    out.append(Usage("cache read", prompt=5000, cache_read=3000))
    if entry.get("cache_creation_input_token_cost") is not None or provider == "anthropic":
        out.append(Usage("cache write", prompt=6000, cache_read=1000, cache_write=2000,
                         cache_write_1h=500 if provider == "anthropic" else 0))
    if entry.get("output_cost_per_reasoning_token") is not None or provider in ("openai", "xai"):
        out.append(Usage("reasoning", completion=800, reasoning=500))
    if entry.get("input_cost_per_audio_token") is not None:
        out.append(Usage("audio in", prompt=3000, audio_in=1200, cache_read=500))
    if entry.get("output_cost_per_audio_token") is not None:
        out.append(Usage("audio out", completion=900, audio_out=600, reasoning=100))
    for tier in ("flex", "priority"):
        if any(k.endswith(f"_{tier}") for k in entry):
            out.append(Usage(f"asked {tier}", prompt=5000, cache_read=2000, requested=tier))
            out.append(Usage(f"served {tier}", prompt=5000, cache_read=2000, reasoning=50, completion=300,
                             served=tier, requested="auto"))
            out.extend(Usage(f"{tier} above {limit}", prompt=limit + 1, requested=tier)
                       for limit in sorted({_limit(k) for k in entry if re.search(rf"_above_\d+k?_tokens_{tier}$", k)}))
    tiers = [t for t in ("flex", "priority") if any(k.endswith(f"_{t}") for k in entry)]
    if tiers:  # how a tier is named: "fast" is priority; an answer served at "default" is standard
        out.append(Usage("asked fast", prompt=5000, cache_read=2000, requested="fast"))
        out.append(Usage("asked flex, served default", prompt=5000, requested="flex", served="default"))
    limits = sorted({_limit(k) for k in entry if re.search(r"_above_\d+k?_tokens$", k) and entry[k] is not None})
    out.append(Usage(  # every rate the entry has at once
        "everything", prompt=(limits[-1] if limits else 5000) + 1000, completion=900, cache_read=1500,
        cache_write=700 if entry.get("cache_creation_input_token_cost") is not None or provider == "anthropic" else 0,
        cache_write_1h=300 if provider == "anthropic" else 0, reasoning=400,
        audio_in=200 if entry.get("input_cost_per_audio_token") is not None else 0,
        audio_out=100 if entry.get("output_cost_per_audio_token") is not None else 0,
        served=tiers[-1] if tiers else None, requested="auto",
        geo="us" if entry.get("provider_specific_entry") else None,
        speed="fast" if entry.get("provider_specific_entry") else None,
        at=OFF_PEAK if entry.get("off_peak_pricing") else PEAK))
    if entry.get("off_peak_pricing"):
        out.append(Usage("off-peak", prompt=5000, cache_read=2000, reasoning=100, at=OFF_PEAK))
    if isinstance(entry.get("provider_specific_entry"), dict):
        out.append(Usage("in the us, fast", prompt=5000, cache_read=1000, geo="us", speed="fast"))
    if entry.get("regional_processing_uplift_multiplier_eu") is not None:
        out.append(Usage("eu endpoint", prompt=5000, cache_read=1000, region="eu"))
    if entry.get("fedramp_uplift_multiplier") is not None:
        out.append(Usage("gov endpoint", prompt=5000, region="fedramp"))
    return out


def _limit(key: str) -> int:
    text = key.rsplit("_above_", 1)[1].split("_tokens")[0]
    return int(float(text.replace("k", "")) * (1000 if "k" in text else 1))


REGION_BASES = {"eu": "https://eu.api.openai.com/v1", "us": "https://us.api.openai.com/v1",
                "fedramp": "https://gov.api.openai.com/v1"}


def raw_usage(u: Usage, provider: str) -> dict[str, Any]:
    """The usage a provider's answer carries: Anthropic's own, else OpenAI's (xAI's with its
    reasoning tokens folded into the completion, as litellm's transformation leaves them)."""
    if provider == "anthropic":
        raw = {"input_tokens": u.prompt - u.cache_read - u.cache_write, "output_tokens": u.completion,
               "cache_read_input_tokens": u.cache_read, "cache_creation_input_tokens": u.cache_write}
        if u.cache_write:
            raw["cache_creation"] = {"ephemeral_5m_input_tokens": u.cache_write - u.cache_write_1h,
                                     "ephemeral_1h_input_tokens": u.cache_write_1h}
        raw.update({k: v for k, v in (("service_tier", u.served), ("inference_geo", u.geo), ("speed", u.speed)) if v})
        return raw
    raw: dict[str, Any] = {"prompt_tokens": u.prompt, "completion_tokens": u.completion,
                           "total_tokens": u.prompt + u.completion}
    details = {k: v for k, v in (("cached_tokens", u.cache_read), ("cache_write_tokens", u.cache_write),
                                 ("audio_tokens", u.audio_in)) if v}
    done = {k: v for k, v in (("reasoning_tokens", u.reasoning), ("audio_tokens", u.audio_out)) if v}
    if details:
        raw["prompt_tokens_details"] = details
    if done:
        raw["completion_tokens_details"] = done
    return raw


def theirs(litellm: Any, name: str, provider: str, u: Usage) -> float:
    """litellm.completion_cost on the answer litellm makes of the provider's usage."""
    from litellm import ModelResponse
    from litellm import Usage as LitellmUsage
    from litellm._internal_context import pinned_billing_time

    raw = raw_usage(u, provider)
    usage = (litellm.AnthropicConfig().calculate_usage(raw, reasoning_content=None) if provider == "anthropic"
             else LitellmUsage(**raw))
    answer = ModelResponse(model=name, usage=usage)
    if u.served and provider != "anthropic":
        answer.service_tier = u.served
    with pinned_billing_time(u.at), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # litellm's lazy imports of a provider's module warn (pydantic)
        return litellm.completion_cost(
            completion_response=answer, model=name, data_residency=u.region,
            optional_params={"service_tier": u.requested} if u.requested else None)


def ours(name: str, provider: str, u: Usage, litellm: Any) -> float | None:
    raw = raw_usage(u, provider)
    if provider == "anthropic":  # litellm's own Usage of an Anthropic answer, as the engine sees it
        usage = litellm.AnthropicConfig().calculate_usage(raw, reasoning_content=None)
        details, prompt = pricing.usage_details(usage), usage.prompt_tokens
    else:
        details, prompt = pricing.usage_details(raw, u.served), u.prompt
    req = Request(model=name, litellm_model=name, messages=(), params={"service_tier": u.requested} if u.requested
                  else {}, key="k", api_base=REGION_BASES.get(u.region or ""))
    resp = Response(text="a", input_tokens=prompt, output_tokens=u.completion, usage=details)
    return pricing.priced(req, resp, at=u.at).cost_usd


def names(key: str, provider: str) -> list[str]:
    """How a user writes the model: with its provider, and bare when the map names it bare."""
    prefixed = key if key.startswith(provider + "/") else f"{provider}/{key}"
    return [prefixed, key] if "/" not in key else [prefixed]


@dataclass
class Tally:
    compared: int = 0
    skips: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


# litellm raises for a bare name it cannot route (deepseek-v4-pro, gemini-pro-latest: their
# provider/name form is compared); it bills 0 for an entry without a price (openai/container,
# Fireworks' routers), which is unknown (None) to us
KNOWN_SKIPS = {"litellm cannot route the bare name", "litellm bills 0 for a model without a price"}


def compare(litellm: Any) -> Tally:
    tally = Tally()
    for key, entry in sorted(litellm.model_cost.items()):
        provider = entry.get("litellm_provider")
        if provider not in PROVIDERS or entry.get("mode") != "chat":
            continue
        for name in names(key, provider):
            for u in usages(entry, provider):
                where = f"{name} [{u.label}]"
                try:
                    expected = theirs(litellm, name, provider, u)
                except Exception as exc:
                    reason = ("litellm cannot route the bare name" if "LLM Provider NOT provided" in str(exc)
                              else f"litellm raises {type(exc).__name__}")
                    tally.skips[reason] += 1
                    tally.skipped.append(f"{where}: {reason}")
                    continue
                got = ours(name, provider, u, litellm)
                if got is None and expected == 0:
                    tally.skips["litellm bills 0 for a model without a price"] += 1
                    tally.skipped.append(f"{where}: litellm bills 0, we say unknown")
                    continue
                tally.compared += 1
                if got is None or got != pytest.approx(expected, rel=1e-9, abs=1e-15):
                    tally.mismatches.append(f"{where}: ours {got!r}, litellm {expected!r}")
    return tally


def test_every_chat_model_of_the_direct_providers_is_priced_as_litellm_prices_it(litellm):
    tally = compare(litellm)
    shown = "\n".join(tally.mismatches[:40])
    assert not tally.mismatches, f"{len(tally.mismatches)} of {tally.compared} differ:\n{shown}"
    assert tally.compared > 3000  # the map's ~680 chat entries of these providers, several usages each
    assert set(tally.skips) <= KNOWN_SKIPS, tally.skips


def test_the_tier_rates_we_read_are_the_ones_litellm_reads():
    """litellm's ModelInfo carries these entry keys ending in a service tier and drops the rest."""
    from litellm.types.utils import ModelInfoBase

    tiered = {k for k in ModelInfoBase.__annotations__ if re.search(r"_(flex|priority|balanced|ultrafast|fast)$", k)}
    assert tiered == pricing.LITELLM_TIER_FIELDS


STATED = [  # (model, the provider's usage): a cost the provider states is the cost, as litellm bills it
    ("openrouter/openai/gpt-4o-mini", {"prompt_tokens": 900, "completion_tokens": 50, "cost": 0.000321}),
    ("openrouter/meta-llama/llama-3.3-70b-instruct:free", {"prompt_tokens": 900, "completion_tokens": 50, "cost": 0}),
    ("openai/gpt-4o-mini", {"prompt_tokens": 900, "completion_tokens": 50, "cost": {"total_cost": 0.5}}),
    ("xai/grok-4", {"prompt_tokens": 900, "completion_tokens": 50, "cost_in_usd_ticks": 123_456_789}),
]


@pytest.mark.parametrize(("model", "raw"), STATED, ids=[m for m, _ in STATED])
def test_a_cost_the_provider_states_is_billed_as_litellm_bills_it(litellm, model, raw):
    from litellm import ModelResponse
    from litellm import Usage as LitellmUsage

    ticks = raw.get("cost_in_usd_ticks")  # litellm's xAI transformation turns ticks into usage.cost
    usage = LitellmUsage(**{k: v for k, v in raw.items() if k != "cost_in_usd_ticks"},
                         **({"cost": ticks / 10**10} if ticks else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic on a usage.cost that is a breakdown, not a number
        expected = litellm.completion_cost(completion_response=ModelResponse(model=model, usage=usage), model=model)
    req = Request(model=model, litellm_model=model, messages=(), params={}, key="k")
    for details in (pricing.usage_details(raw), pricing.usage_details(usage)):  # the raw answer's, litellm's
        resp = Response(text="a", input_tokens=raw["prompt_tokens"], output_tokens=raw["completion_tokens"],
                        usage=details)
        assert pricing.priced(req, resp).cost_usd == pytest.approx(expected, rel=1e-12)


def test_an_openrouter_answer_without_a_stated_cost_is_unknown_as_litellm_cannot_price_it(litellm):
    from litellm import ModelResponse
    from litellm import Usage as LitellmUsage

    model = "openrouter/openai/gpt-4o-mini"  # the map has no OpenRouter entries
    with pytest.raises(Exception, match=r"(?i)not mapped|unable to calculate|isn't mapped"):
        litellm.completion_cost(completion_response=ModelResponse(
            model=model, usage=LitellmUsage(prompt_tokens=9, completion_tokens=5, total_tokens=14)), model=model)
    req = Request(model=model, litellm_model=model, messages=(), params={}, key="k")
    assert pricing.priced(req, Response(text="a", input_tokens=9, output_tokens=5)).cost_usd is None


UNMAPPED = [  # names the map does not hold as written: litellm's lookup and size classes find their price
    ("together_ai/meta-llama/Llama-9-70b-chat-hf", "together_ai"), ("together_ai/foo/bar-3b", "together_ai"),
    ("together_ai/foo/bar-200b", "together_ai"), ("together_ai/foo/sizeless", "together_ai"),
    ("fireworks_ai/accounts/fireworks/models/qwen9-72b-instruct", "fireworks_ai"),
    ("fireworks_ai/accounts/fireworks/models/mixtral-8x7b-x", "fireworks_ai"),
    ("fireworks_ai/accounts/fireworks/models/mixtral-8x22b-x", "fireworks_ai"),
    ("fireworks_ai/accounts/fireworks/models/qwen-1p5b-x", "fireworks_ai"),
    ("fireworks_ai/accounts/fireworks/models/sizeless-x", "fireworks_ai"),
    ("openai/gpt-4o-2099-01-01", "openai"), ("openai/GPT-4o-mini", "openai"), ("gemini/gemini-2.5-flash-001", "gemini"),
    ("groq/no-such-model-promstack", "groq"), ("openai/claude-sonnet-4-5", "openai"),
]


@pytest.mark.parametrize(("model", "provider"), UNMAPPED, ids=[m for m, _ in UNMAPPED])
def test_a_name_the_map_does_not_hold_as_written_is_priced_as_litellm_prices_it(litellm, model, provider):
    for u in (Usage("small"), Usage("cache read", prompt=5000, cache_read=3000)):
        try:
            expected = theirs(litellm, model, provider, u)
        except Exception:  # litellm cannot price it: unknown to us too
            expected = None
        got = ours(model, provider, u, litellm)
        if expected == 0 and got is None:  # a Fireworks model without a size: litellm's 0 price class
            continue
        assert got == (None if expected is None else pytest.approx(expected, rel=1e-9)), (model, u.label)
