"""Cost follows the price, not the moment of the call: every answer, fresh, cached, replayed
or recorded, is priced the same way, from its token counts, its token details and today's price.

The price of a model is, in order: the model's own ``input_cost_per_token`` and
``output_cost_per_token`` params (flat: input tokens × one, output tokens × the other); 0 for
the bundled offline model (``local/…``); litellm's bundled price map (read as a JSON file:
importing litellm costs about 3 s). A Python target (``python:…``) has no price of ours: the
cost it reports about itself is kept. Without a price, or without token counts, the cost is
unknown (``None``), never 0. A price or a product that is not a finite number (a price of
``inf``, 10**400 tokens) is unknown too, never an error.

From the map an answer costs what ``litellm.completion_cost`` (litellm 1.110.2) says for the
same model name and usage, for the chat models of OpenAI, Anthropic, Gemini, Groq, Together,
DeepSeek, Mistral, OpenRouter, Fireworks and xAI (tests/unit/test_pricing_parity.py compares
every one of them); other providers' entries are priced by the same rules. What counts:

- ``Response.input_tokens`` is litellm's ``prompt_tokens``: every prompt token, cached or not.
  litellm 1.110.2 makes it so for Anthropic too: its ``prompt_tokens`` is Anthropic's
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` (Anthropic's own
  ``input_tokens`` counts only the uncached rest). ``output_tokens`` is ``completion_tokens``,
  reasoning and audio tokens included (xAI's reasoning tokens are folded into it, as litellm does).
- ``Response.usage`` (``usage_details`` makes it from a provider's ``usage``): ``cache_read``
  prompt tokens read from a cache bill at ``cache_read_input_token_cost``; ``cache_write``
  tokens written to it at ``cache_creation_input_token_cost``, its 1-hour part
  (``cache_write_1h``) at ``cache_creation_input_token_cost_above_1hr``; ``audio_in`` prompt
  tokens at ``input_cost_per_audio_token``; the rest of the prompt at ``input_cost_per_token``.
  ``reasoning`` output tokens bill at ``output_cost_per_reasoning_token``, ``audio_out`` at
  ``output_cost_per_audio_token``, the rest at ``output_cost_per_token``. A missing rate is the
  input (output) rate; Fireworks reads half the input rate for a cached token.
- A prompt beyond a threshold of the entry (``…_above_200k_tokens``; xAI: from it) bills every
  token at that threshold's rates; a service tier (``service_tier`` the provider says it served,
  else the request's ``service_tier`` param; ``auto`` is none) at its ``…_flex``/``…_priority``
  rates (``fast`` is priority); DeepSeek's off-peak hours at ``off_peak_pricing``; an Anthropic
  answer served in a region (``inference_geo``) or at ``speed: fast`` at the entry's multiplier
  for it; an OpenAI call to ``eu.``/``us.``/``gov.api.openai.com`` at the regional uplift.
- A cost the provider states (``usage.cost``: OpenRouter's, xAI's ``cost_in_usd_ticks``) is the
  cost, as litellm bills it. An unmapped Together or Fireworks model is priced by its size
  (``70b``) as litellm does; one without a size stays unknown (litellm's 0).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..model.types import Request, Response

PRICE_PARAMS = ("input_cost_per_token", "output_cost_per_token")


@cache
def price_map() -> dict[str, Any] | None:
    """litellm's bundled price map (``None`` when litellm or the file is missing)."""
    spec = find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- an answer's usage -----------------------------------------------------------------------


def usage_details(usage: Any, service_tier: Any = None) -> dict[str, Any] | None:
    """The price details (``Response.usage``) of a provider's ``usage``: an OpenAI-shaped usage as
    a dict or object (a raw OpenAI/Groq/DeepSeek/… answer's, litellm's ``Usage``, which for
    Anthropic carries ``cache_read_input_tokens``/``cache_creation_input_tokens`` too) or
    Anthropic's own. ``service_tier`` is the tier the answer says it was served at (OpenAI puts
    it beside ``usage``; Anthropic inside). Only non-zero details; None when there are none.
    What is not a whole number of tokens, a short text or a finite cost is left out."""
    get = _getter(usage)
    prompt, completion = _getter(get("prompt_tokens_details")), _getter(get("completion_tokens_details"))
    creation = _getter(prompt("cache_creation_token_details") or get("cache_creation"))
    counts = {  # the first that is a count wins, in litellm's order of precedence
        "cache_read": (get("cache_read_input_tokens"), get("prompt_cache_hit_tokens"), prompt("cached_tokens")),
        "cache_write": (get("cache_creation_input_tokens"), prompt("cache_write_tokens") or
                        prompt("cache_creation_tokens")),
        "cache_write_1h": (creation("ephemeral_1h_input_tokens"),),
        "reasoning": (completion("reasoning_tokens"), get("reasoning_tokens")),
        "audio_in": (prompt("audio_tokens"),), "audio_out": (completion("audio_tokens"),),
    }
    out: dict[str, Any] = {key: n for key, found in counts.items() if (n := _first_count(found))}
    words = {"service_tier": service_tier if _word(service_tier) else get("service_tier"),
             "inference_geo": get("inference_geo"), "speed": get("speed")}
    out.update((key, w) for key, w in words.items() if _word(w))
    stated = _stated_cost(get("cost"), get("cost_in_usd_ticks"))
    if stated is not None:
        out["cost"] = stated
    return out or None


def _getter(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get
    return (lambda key: getattr(value, key, None)) if value is not None else (lambda key: None)


def _first_count(values: tuple[Any, ...]) -> int | None:
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**12), None)


def _word(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _stated_cost(cost: Any, ticks: Any) -> float | None:
    """What the provider says the call cost: ``usage.cost`` (a number, or ``{"total_cost"}``),
    or xAI's ``cost_in_usd_ticks`` (10**10 ticks a dollar)."""
    if isinstance(cost, Mapping):
        cost = cost.get("total_cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost) and 0 <= cost <= 10**6:
        return float(cost)
    if isinstance(ticks, int) and not isinstance(ticks, bool) and 0 <= ticks <= 10**16:
        return ticks / 10**10
    return None


# ---- which entry prices a model ------------------------------------------------------------

# the entry keys litellm reads with a service tier at the end (its ModelInfo carries these and no
# others of that shape; tests/unit/test_pricing_parity.py checks the list against litellm's)
LITELLM_TIER_FIELDS = frozenset({
    *(f"{base}_{tier}" for base in ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost")
      for tier in ("flex", "priority", "balanced", "ultrafast")),
    *(f"{base}_{tier}" for base in ("cache_creation_input_token_cost", "cache_creation_input_token_cost_above_12hr",
                                    "cache_creation_input_token_cost_above_12hr_above_272k_tokens",
                                    "input_cost_per_token_above_272k_tokens", "output_cost_per_token_above_272k_tokens",
                                    "cache_read_input_token_cost_above_272k_tokens",
                                    "cache_creation_input_token_cost_above_272k_tokens")
      for tier in ("flex", "priority", "ultrafast")),
    *(f"{base}_{tier}" for base in ("input_cost_per_token_above_200k_tokens", "output_cost_per_token_above_200k_tokens",
                                    "input_cost_per_audio_token_above_200k_tokens", "input_cost_per_audio_token",
                                    "cache_read_input_audio_token_cost", "output_cost_per_reasoning_token")
      for tier in ("flex", "priority")),
    "cache_read_input_token_cost_above_200k_tokens_priority", "output_cost_per_image_token_priority",
})
_TIERED_KEY = re.compile(r"_(?:flex|priority|balanced|ultrafast|fast|decisions)$")
# the providers priced exactly as litellm prices them, its rules for each included
PROVIDERS = frozenset({"openai", "anthropic", "groq", "together_ai", "deepseek", "mistral", "openrouter",
                       "fireworks_ai", "gemini", "xai"})


@cache
def _catalog() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The map's entries by name, ``alias_of`` rows and ``aliases`` lists resolved as litellm
    does, and their names by lower case (litellm's lookup ignores case)."""
    raw = {k: v for k, v in (price_map() or {}).items() if isinstance(v, dict)}
    pointers = {name: e["alias_of"] for name, e in raw.items() if isinstance(e.get("alias_of"), str)}
    entries = {name: e for name, e in raw.items() if name not in pointers}
    owners: dict[str, str] = {}
    for name, e in entries.items():
        for alias in e.get("aliases") if isinstance(e.get("aliases"), list) else ():
            if isinstance(alias, str) and (alias not in raw or alias in pointers):
                owners.setdefault(alias, name)
    for alias, target in pointers.items():
        if target in entries:
            owners.setdefault(alias, target)
    entries.update({alias: entries[owner] for alias, owner in owners.items()})
    return entries, {name.lower(): name for name in entries}


def _entry(name: str, provider: str | None) -> tuple[str, dict[str, Any]] | None:
    entries, lower = _catalog()
    key = name if name in entries else lower.get(name.lower())
    if key is None:
        return None
    e = entries[key]
    found = e.get("litellm_provider")
    fits = provider is None or found is None or found == provider or (
        provider == "fireworks_ai" and isinstance(found, str) and found.startswith("fireworks_ai"))
    return (key, e) if fits else None


def _stripped(name: str, provider: str) -> str:
    if provider == "gemini":
        return re.sub(r"-\d+$", "", name)
    if "ft:" in name:
        return re.sub(r"(:[^:]*){3}$", "", name)
    return re.sub(r"-\d{4}-\d{2}-\d{2}$", "", name)


def _lookup(model: str, provider: str) -> tuple[str, dict[str, Any]] | None:
    """litellm's ``get_model_info`` order: provider/name, the name as written, without the
    provider, without a version or date suffix, and provider/provider/name."""
    rest = model[len(provider) + 1:] if model.startswith(provider + "/") else model
    base = _stripped(rest, provider)
    for name in (f"{provider}/{rest}", model, rest, f"{provider}/{base}", base, f"{provider}/{model}"):
        found = _entry(name, provider)
        if found is not None:
            return found
    return None


def _provider(model: str) -> str | None:
    """The provider whose rules price ``model``: its prefix, or its entry's provider."""
    head, slash, _ = model.partition("/")
    if slash and head in PROVIDERS:
        return head
    found = _entry(model, None)
    return found[1].get("litellm_provider") if found is not None else None


def _size_class(model: str, provider: str) -> str | None:
    """An unmapped Together or Fireworks model's price class by its size, as litellm names it."""
    name = model.lower()
    if provider == "together_ai":
        m = re.search(r"(\d+b)", name)
        billions = float(m.group(1)[:-1]) if m else None
        classes = ((4, "up-to-4b"), (8, "4.1b-8b"), (21, "8.1b-21b"), (41, "21.1b-41b"), (80, "41.1b-80b"),
                   (110, "81.1b-110b"))
        return next((f"together-ai-{c}" for top, c in classes if billions is not None and billions <= top), None)
    moe = re.search(r"(\d+)x(\d+)b", name)
    total = int(moe.group(1)) * int(moe.group(2)) if moe else None
    if total is not None and total <= 176:
        return "fireworks-ai-moe-up-to-56b" if total <= 56 else "fireworks-ai-56b-to-176b"
    m = re.search(r"(\d+(?:p\d+)?)b", name)
    if m is None:
        return None  # litellm's "fireworks-ai-default" prices it at 0: unknown to us
    billions = float(m.group(1).replace("p", "."))
    return "fireworks-ai-up-to-4b" if billions <= 4 else "fireworks-ai-4.1b-to-16b" if billions <= 16 else \
        "fireworks-ai-above-16b"


def _resolve(model: str) -> tuple[str | None, dict[str, Any]] | None:
    """(provider, entry) pricing ``model``, or None when the map has no entry for it."""
    provider = _provider(model)
    if provider not in PROVIDERS:  # another provider's model: its own entry, or its name's without the prefix
        found = _entry(model, None) or (_entry(model.split("/", 1)[1], None) if "/" in model else None)
        return (provider, found[1]) if found is not None else None
    if provider == "together_ai" and "input_cost_per_token" not in _entries_get(
            "together_ai/" + model.removeprefix("together_ai/")):
        model = _size_class(model, provider) or model.lower()  # litellm's price classes by size
    found = _lookup(model, provider)
    if found is None and provider == "fireworks_ai":
        found = _entry(model.removeprefix("fireworks_ai/"), None) or _sized(model, provider)
    return (provider, found[1]) if found is not None else None


def _entries_get(name: str) -> dict[str, Any]:
    return _catalog()[0].get(name) or {}


def _sized(model: str, provider: str) -> tuple[str, dict[str, Any]] | None:
    size = _size_class(model, provider)
    return _entry(size, provider) if size is not None else None


# ---- an entry's rates --------------------------------------------------------------------------

# the tier a service_tier bills at (litellm's ServiceTier: "fast" is priority, "auto" is none)
TIER_SUFFIX = {"flex": "flex", "balanced": "balanced", "priority": "priority", "fast": "priority",
               "ultrafast": "ultrafast"}
_FALLBACK_SUFFIXES = ("_ultrafast", "_balanced", "_priority", "_auto", "_flex", "_fast")
_THRESHOLD_PREFIXES = tuple(f"{p}_above_" for p in ("input_cost_per_token", "output_cost_per_token",
                                                     "cache_read_input_token_cost", "cache_creation_input_token_cost"))
_OTHER_THRESHOLDS = (*_FALLBACK_SUFFIXES, "_batches")
_HOUR = "cache_creation_input_token_cost_above_1hr"


def _number(value: Any) -> float | bool | None:
    """A rate as litellm reads it: a number, a number written as text; False for text that is not one."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return False
    return None


def _rate(info: Mapping[str, Any], key: str, default: float | None = 0.0) -> float | None:
    """litellm's ``get_cost_per_unit``: the key's rate; a missing tier rate falls back to the
    standard one; else ``default``."""
    found = _number(info.get(key))
    if found is None:
        suffix = next((s for s in _FALLBACK_SUFFIXES if s in key), None)
        found = _number(info.get(key.replace(suffix, ""))) if suffix else None
    return found if isinstance(found, float) else default


def _tiered(key: str, tier: str | None) -> str:
    return f"{key}_{tier}" if tier else key


def _threshold(key: str) -> tuple[str, float]:
    text = key.rsplit("_above_", 1)[1].split("_tokens")[0]
    return text, float(text.replace("k", "")) * (1000 if "k" in text else 1)


@dataclass(frozen=True, slots=True)
class Rates:
    """What one token of each kind costs for one (model, tier, prompt size, hour)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    reasoning: float
    priced: bool  # the entry has an input or output rate for the tier (litellm bills one without at 0)


@dataclass(slots=True)
class Model:
    """One model's entry as litellm reads it, its provider's rules, and its rates by tier and size."""

    provider: str | None
    info: dict[str, Any]
    uplift: bool  # an OpenAI entry with regional-processing multipliers
    multipliers: Mapping[str, Any] | None  # an Anthropic entry's speed and region multipliers
    thresholds: dict[str | None, tuple[float, ...]] = field(default_factory=dict)
    rates: dict[tuple[Any, ...], Rates] = field(default_factory=dict)
    # most answers (no details, no tier, a prompt under every threshold, no off-peak hours):
    # (input rate, output rate, the prompt size from which they no longer apply)
    plain: tuple[float, float, float] | None = None

    def size(self, tier: str | None, prompt: int) -> int:
        """How many of the entry's thresholds the prompt passes (xAI: reaches)."""
        limits = self.thresholds.get(tier)
        if limits is None:
            limits = self.thresholds[tier] = tuple(_threshold(k)[1] for k in self._threshold_keys(tier))
        return sum(1 for t in limits if _passes(self, prompt, t))

    def _threshold_keys(self, tier: str | None) -> list[str]:
        end = f"_{tier}" if tier else ""
        return [k for k, v in self.info.items() if v is not None and k.startswith(_THRESHOLD_PREFIXES)
                and "_tokens" in k and (not k.endswith(_OTHER_THRESHOLDS) or (end and k.endswith(end)))]

    def rated(self, tier: str | None, prompt: int, off_peak: Mapping[str, Any] | None) -> Rates:
        key = (tier, self.size(tier, prompt), off_peak is not None)
        found = self.rates.get(key)
        if found is None:
            found = self.rates[key] = _rates(self, tier, prompt, off_peak)
        return found


def _rates(model: Model, tier: str | None, prompt: int, off_peak: Mapping[str, Any] | None) -> Rates:
    """litellm's ``_get_token_base_cost`` (and the reasoning rate) for one tier and prompt size."""
    info = model.info
    cin, cout = _rate(info, _tiered("input_cost_per_token", tier)), _rate(info, _tiered("output_cost_per_token", tier))
    if cout == 0.0 and _rate(info, "output_cost_per_image_token", None) is not None:
        cout = _rate(info, "output_cost_per_image_token")
    write = _rate(info, _tiered("cache_creation_input_token_cost", tier), None)
    read = _rate(info, _tiered("cache_read_input_token_cost", tier), None)
    hour_key = _tiered(_HOUR, tier)
    for key in sorted(model._threshold_keys(tier), key=lambda k: _threshold(k)[1]):
        text, limit = _threshold(key)
        if not _passes(model, prompt, limit):
            continue
        cin = _rate(info, _tiered(f"input_cost_per_token_above_{text}_tokens", tier), cin)
        cout = _rate(info, _tiered(f"output_cost_per_token_above_{text}_tokens", tier), cout)
        write = _rate(info, _tiered(f"cache_creation_input_token_cost_above_{text}_tokens", tier), write)
        longer = _tiered(f"{_HOUR}_above_{text}_tokens", tier)
        hour_key = longer if info.get(longer) is not None else hour_key
        read = _rate(info, _tiered(f"cache_read_input_token_cost_above_{text}_tokens", tier), read)
    peak = off_peak or {}
    fill = _peak(peak, "input_cost_per_token", cin)  # a missing cache rate is the input rate
    read, write = fill if read is None else read, fill if write is None else write
    cin, cout = _peak(peak, "input_cost_per_token", cin), _peak(peak, "output_cost_per_token", cout)
    read = _peak(peak, "cache_read_input_token_cost", read)
    write = _peak(peak, "cache_creation_input_token_cost", write)
    hour = _rate(info, hour_key, None)
    priced = any(_rate(info, _tiered(k, tier), None) is not None for k in PRICE_PARAMS)
    return Rates(input=cin, output=cout, cache_read=read, cache_write=write,
                 cache_write_1h=write if hour is None else hour,
                 reasoning=_reasoning_rate(info, tier, cout, peak), priced=priced)


def _peak(off_peak: Mapping[str, Any], key: str, standard: float) -> float:
    found = _number(off_peak.get(key)) if not isinstance(off_peak.get(key), bool) else None
    return found if isinstance(found, float) else standard


def _reasoning_rate(info: Mapping[str, Any], tier: str | None, cout: float, off_peak: Mapping[str, Any]) -> float:
    """litellm's ``_resolve_billed_reasoning_rate``: off-peak, the tier's, the output rate of a
    tier that has one, the standard reasoning rate, else the output rate."""
    peak = _peak(off_peak, "output_cost_per_reasoning_token", -1.0)
    if peak >= 0:
        return peak
    tier_key = _tiered("output_cost_per_reasoning_token", tier)
    if info.get(tier_key) is not None and (found := _rate(info, tier_key, None)) is not None:
        return found
    if tier and info.get(_tiered("output_cost_per_token", tier)) is not None:
        return cout
    standard = _rate(info, "output_cost_per_reasoning_token", None)
    return cout if standard is None else standard


@cache
def _model(litellm_model: str) -> Model | None:
    """The model's entry, read once per run (None: the map has none)."""
    resolved = _resolve(litellm_model)
    if resolved is None:
        return None
    provider, entry = resolved
    info = {k: v for k, v in entry.items() if k in LITELLM_TIER_FIELDS or not _TIERED_KEY.search(k)}
    if info.get("tiered_pricing") is not None:
        return None  # per-request tiers (Alibaba's): not priced here, never guessed
    if provider == "fireworks_ai" and info.get("litellm_provider") == "fireworks_ai":
        _fireworks_cache_read(info)
    multipliers = info.get("provider_specific_entry")
    model = Model(provider=provider, info=info,
                  uplift=provider == "openai" and any(k.startswith(("regional_processing", "fedramp")) for k in info),
                  multipliers=multipliers if provider == "anthropic" and isinstance(multipliers, Mapping) else None)
    rates = model.rated(None, 0, None)
    if rates.priced and not isinstance(info.get("off_peak_pricing"), Mapping):
        lowest = min(model.thresholds[None], default=math.inf)
        model.plain = rates.input, rates.output, lowest if provider == "xai" else lowest + 1
    return model


def _fireworks_cache_read(info: dict[str, Any]) -> None:
    """Fireworks bills a cached token at half the input rate when its entry names no cache rate."""
    cin = _number(info.get("input_cost_per_token")) if not isinstance(info.get("input_cost_per_token"), bool) else None
    if info.get("cache_read_input_token_cost") is not None or not isinstance(cin, float):
        return
    info["cache_read_input_token_cost"] = cin * 0.5
    peak = info.get("off_peak_pricing")
    if isinstance(peak, Mapping) and "cache_read_input_token_cost" not in peak:
        peak_in = _number(peak.get("input_cost_per_token"))
        info["off_peak_pricing"] = {**peak, "cache_read_input_token_cost":
                                    peak_in * 0.5 if isinstance(peak_in, float) else cin * 0.5}


def price(litellm_model: str, params: dict[str, Any]) -> tuple[float, float] | None:
    """(USD per input token, USD per output token), or None when nobody prices the model."""
    if all(k in params for k in PRICE_PARAMS):
        return _per_token(params[PRICE_PARAMS[0]], params[PRICE_PARAMS[1]])
    if litellm_model.startswith("local/"):
        return 0.0, 0.0
    model = _model(litellm_model)
    rates = model.rated(None, 0, None) if model is not None else None
    return _per_token(rates.input, rates.output) if rates is not None and rates.priced else None


def _per_token(cin: Any, cout: Any) -> tuple[float, float] | None:
    """Both prices as floats, or None unless both are finite and not negative."""
    try:
        pair = float(cin), float(cout)
    except (TypeError, ValueError, OverflowError):
        return None
    return pair if all(math.isfinite(p) and p >= 0 for p in pair) else None


# ---- an answer's cost --------------------------------------------------------------------------

_NONE: dict[str, Any] = {}


def priced(req: Request, resp: Response, at: datetime | None = None) -> Response:
    """``resp`` with ``cost_usd`` from its tokens, its token details and the model's current
    price (``at``: the moment off-peak hours are read at; now by default)."""
    if resp.error is not None or req.litellm_model.startswith("python:"):
        return resp
    cost = _cost(req, resp, at)
    return resp if cost == resp.cost_usd else replace(resp, cost_usd=cost)


def _cost(req: Request, resp: Response, at: datetime | None) -> float | None:
    params, usage, prompt = req.params, resp.usage or _NONE, resp.input_tokens
    try:  # 10**400 tokens cannot become a float: unknown
        if ("input_cost_per_token" in params and "output_cost_per_token" in params) or \
                req.litellm_model.startswith("local/"):
            flat = price(req.litellm_model, params)
            cost = None if flat is None or prompt is None else flat[0] * prompt + flat[1] * (resp.output_tokens or 0)
        elif "cost" in usage:
            cost = float(usage["cost"])
        else:
            model = _model(req.litellm_model)
            plain = model.plain if model is not None else None
            if model is None or prompt is None:
                cost = None
            elif plain is not None and not usage and prompt < plain[2] and "service_tier" not in params and (
                    not model.uplift or _residency(req.api_base) is None):
                cost = prompt * plain[0] + (resp.output_tokens or 0) * plain[1]
            else:
                cost = _billed(model, req, prompt, resp.output_tokens or 0, usage, at)
    except (TypeError, ValueError, OverflowError):
        return None
    return cost if cost is not None and math.isfinite(cost) and cost >= 0 else None


def billed_tier(requested: Any, served: Any) -> str | None:
    """The tier an answer bills at (its suffix): the one it was served at when that is a priced
    tier or the standard one; else the one asked for (``auto``: none)."""
    if isinstance(served, str):
        tier = served.lower()
        if tier in TIER_SUFFIX:
            return TIER_SUFFIX[tier]
        if tier in ("default", "standard"):
            return None
    return TIER_SUFFIX.get(requested.lower()) if isinstance(requested, str) else None


def _billed(model: Model, req: Request, prompt: int, completion: int, usage: Mapping[str, Any],
            at: datetime | None) -> float | None:
    tier = billed_tier(req.params.get("service_tier"), usage.get("service_tier")) if (
        (usage or "service_tier" in req.params) and model.provider != "fireworks_ai") else None  # litellm: no tiers
    off_peak = _open_off_peak(model.info.get("off_peak_pricing"), at)
    rates = model.rated(tier, prompt, off_peak)
    if not rates.priced:
        return None
    if not usage:
        cost = prompt * rates.input + completion * rates.output
    else:
        cost = _prompt_cost(model, rates, tier, prompt, usage) + _completion_cost(model, rates, completion, usage)
    return cost * _multiplier(model, req, usage)


def _prompt_cost(model: Model, rates: Rates, tier: str | None, prompt: int, usage: Mapping[str, Any]) -> float:
    """litellm's input cost: uncached text, cache reads, audio, cache writes (1-hour part apart)."""
    read, write, audio = (usage.get("cache_read", 0), usage.get("cache_write", 0), usage.get("audio_in", 0))
    if (read or write) and read + audio + write > prompt:  # the details overlap: audio bills what the cache left
        uncached = max(prompt - read - write, 0)
        audio = min(audio, uncached)
        text = uncached - audio
    else:
        text = max(prompt - read - audio - write, 0)
    cost = text * rates.input + read * rates.cache_read
    if audio:
        cost += audio * _audio_in_rate(model, tier, prompt, rates.input)
    if write:
        hour = usage.get("cache_write_1h", 0)
        cost += max(write - hour, 0) * rates.cache_write + hour * rates.cache_write_1h
    return cost


def _audio_in_rate(model: Model, tier: str | None, prompt: int, cin: float) -> float:
    """An audio prompt token's rate (its threshold's when the prompt passes one), else the input rate."""
    info, end = model.info, f"_{tier}" if tier else ""
    base = "input_cost_per_audio_token"
    passed = [k for k, v in info.items() if v is not None and k.startswith(f"{base}_above_")
              and k.endswith(("_tokens", f"_tokens{end}")) and _passes(model, prompt, _threshold(k)[1])]
    key = f"{max(passed, key=lambda k: _threshold(k)[1]).removesuffix(end)}{end}" if passed else base + end
    if info.get(key) is None and info.get(key.removesuffix(end) if end else key) is None:
        return cin
    return _rate(info, key) or 0.0


def _passes(model: Model, prompt: int, limit: float) -> bool:
    return prompt > limit or (model.provider == "xai" and prompt == limit)


def _completion_cost(model: Model, rates: Rates, completion: int, usage: Mapping[str, Any]) -> float:
    """litellm's output cost: text, audio and reasoning tokens (xAI: all at the output rate)."""
    reasoning, audio = usage.get("reasoning", 0), usage.get("audio_out", 0)
    if model.provider == "xai" or not (reasoning or audio):
        return completion * rates.output
    cost = max(0, completion - reasoning - audio) * rates.output
    if audio:
        found = _rate(model.info, "output_cost_per_audio_token", None)
        cost += audio * (rates.output if found is None else found)
    return cost + reasoning * rates.reasoning


def _multiplier(model: Model, req: Request, usage: Mapping[str, Any]) -> float:
    """An OpenAI regional endpoint's uplift; an Anthropic answer's speed and region multipliers."""
    factor, entry = 1.0, model.multipliers
    if model.uplift:
        factor = _uplift(model.info, _residency(req.api_base))
    if entry is not None and usage:
        if usage.get("speed") == "fast":
            factor *= float(entry.get("fast", 1.0))
        geo = usage.get("inference_geo")
        if isinstance(geo, str) and geo.lower() not in ("global", "not_available"):
            factor *= float(entry.get(geo.lower(), 1.0))
    return factor


_REGIONS = {"eu.api.openai.com": "eu", "us.api.openai.com": "us", "gov.api.openai.com": "fedramp"}


def _residency(api_base: str | None) -> str | None:
    """The OpenAI region the call went to (litellm reads the api_base, else OpenAI's variables)."""
    base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    return _region(base) if base else None


@cache
def _region(base: str) -> str | None:
    from urllib.parse import urlparse

    try:
        host = urlparse(base).hostname
    except ValueError:
        return None
    return _REGIONS.get(host.lower()) if host else None


def _uplift(info: Mapping[str, Any], residency: str | None) -> float:
    key = ("fedramp_uplift_multiplier" if residency == "fedramp"
           else f"regional_processing_uplift_multiplier_{residency}")
    found = _number(info.get(key)) if residency else None
    return found if isinstance(found, float) else 1.0


# ---- off-peak hours (DeepSeek) -----------------------------------------------------------------


def _open_off_peak(block: Any, at: datetime | None) -> Mapping[str, Any] | None:
    """The entry's ``off_peak_pricing`` when ``at`` (now, UTC) is inside one of its windows."""
    if not isinstance(block, Mapping):
        return None
    moment = at or datetime.now(UTC)
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if _within(_windows(block.get("hours_utc")), moment):
        return block
    rules = block.get("windows")
    if isinstance(rules, str) or not isinstance(rules, list | tuple):
        return None
    for rule in rules:
        if isinstance(rule, Mapping) and _on_day(moment, rule.get("weekdays"), block.get("weekday_timezone")) and \
                _within(_windows(rule.get("hours_utc")), moment):
            return block
    return None


def _windows(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


def _within(windows: tuple[str, ...], moment: datetime) -> bool:
    """Inside one ``HH:MM-HH:MM`` window (UTC; it may wrap midnight; start == end is all day)."""
    now = moment.time()
    for window in windows:
        try:
            start, end = (datetime.strptime(part.strip(), "%H:%M").time() for part in window.split("-"))
        except ValueError:
            continue
        if (start <= now < end) if start < end else (now >= start or now < end):
            return True
    return False


_DAYS = {"mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3, "wednesday": 3, "thu": 4, "thur": 4,
         "thurs": 4, "thursday": 4, "fri": 5, "friday": 5, "sat": 6, "saturday": 6, "sun": 7, "sunday": 7}


def _on_day(moment: datetime, weekdays: Any, zone: Any) -> bool:
    if weekdays is None:
        return True
    if isinstance(weekdays, str) or not isinstance(weekdays, list | tuple):
        return False
    days = {d if isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 else
            _DAYS.get(d.strip().lower()) if isinstance(d, str) else None for d in weekdays}
    return moment.astimezone(_zone(zone)).isoweekday() in days


def _zone(name: Any) -> Any:
    if isinstance(name, str) and name.strip():
        from zoneinfo import ZoneInfo

        try:
            return ZoneInfo(name.strip())
        except (ValueError, KeyError, OSError):
            return UTC
    return UTC


