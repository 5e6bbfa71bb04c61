"""What a prompt version costs at live volumes (``promstack prompt cost``): the input tokens its
fixed text carries beside its variables, its calls per day and cost per call from the call logs,
and, for two versions, what changing one for the other costs per 1,000 calls and per month beside
their quality difference. Pure: the versions, log rows and results document come in, figures go
out; the only outside help is the tokenizer (litellm's ``token_counter``, offline).

- ``fixed_tokens``: the input tokens of the prompt rendered with every variable empty (its
  messages' framing and tool definitions included), counted with the model's tokenizer.
- ``mean_input_tokens``: the logged input tokens per fresh call (a cache hit bills nothing);
  ``variable_tokens`` = that minus ``fixed_tokens``; ``fixed_share`` = fixed / mean, in percent:
  the share of the input cost the fixed text carries at the logged traffic.
- ``calls_per_day``: the version's logged calls over the UTC calendar days from its first to its
  last day with calls (both counted); ``cost_per_call``: its logged cost over its calls (a cache
  hit costs 0, as in ``promstack monitor``).
- the comparison of A and B: ``(cost_per_call B - A) x 1,000``, and x the prompt's calls per day
  (every version's calls, over the prompt's days) x 30 for a month.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ..model.errors import PromstackError, TemplateError

if TYPE_CHECKING:
    from ..plan.prompts import Prompt

MONTH_DAYS = 30
Counter = Callable[[str, list[dict[str, Any]], Any], int]


@dataclass(frozen=True)
class Version:
    """A registry version of the prompt: its number, content hash, loaded file, labels and last
    recorded evaluation (``promstack evaluate``)."""

    number: int
    hash: str
    prompt: Prompt
    labels: tuple[str, ...] = ()
    evaluation: dict[str, Any] | None = None


@dataclass(frozen=True)
class Model:
    """A model to count tokens and price input with: its name as given (a configured alias or a
    litellm name), its litellm name, and its USD per (input, output) token (None: no price)."""

    name: str
    litellm: str
    price: tuple[float, float] | None


@dataclass
class Traffic:
    """A version's (or the prompt's) logged calls, summed over days and models."""

    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    cost_usd: float | None = 0.0
    days: set[date] = field(default_factory=set)
    models: dict[str, int] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        self.calls += row["calls"]
        self.cached += row["cached"]
        self.input_tokens += row["input_tokens"]
        self.cost_usd = None if self.cost_usd is None or row["cost_usd"] is None else self.cost_usd + row["cost_usd"]
        if row.get("window_start"):
            self.days.add(date.fromisoformat(row["window_start"][:10]))
        model = row.get("model")
        if model is not None:
            self.models[model] = self.models.get(model, 0) + row["calls"]

    @property
    def span(self) -> int:
        """UTC calendar days from the first to the last day with calls, both counted."""
        return (max(self.days) - min(self.days)).days + 1 if self.days else 0

    @property
    def per_day(self) -> float | None:
        return self.calls / self.span if self.span else None

    @property
    def mean_input(self) -> float | None:
        fresh = self.calls - self.cached
        return self.input_tokens / fresh if fresh > 0 and self.input_tokens else None

    @property
    def per_call(self) -> float | None:
        return None if self.cost_usd is None or not self.calls else self.cost_usd / self.calls

    @property
    def top_model(self) -> str | None:
        return min(self.models.items(), key=lambda kv: (-kv[1], kv[0]))[0] if self.models else None


def traffic(rows: Sequence[Mapping[str, Any]], prompt_id: str) -> tuple[dict[str, Traffic], Traffic]:
    """Per logged version hash, and for the whole prompt: its traffic, from the rows of
    ``monitor.figures(..., window="day", by=("prompt_id", "prompt_version", "model"))``."""
    per: dict[str, Traffic] = {}
    whole = Traffic()
    for row in rows:
        if row.get("prompt_id") != prompt_id:
            continue
        per.setdefault(str(row.get("prompt_version")), Traffic()).add(row)
        whole.add(row)
    return per, whole


# -- tokens --------------------------------------------------------------------------------------


class _Blank(str):
    """An empty variable: renders as nothing, and so do its attributes, items and loops
    (``{{ user.name }}``, ``{% for x in items %}``), so any template renders its fixed text."""

    def __getattr__(self, name: str) -> _Blank:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Blank()

    def __getitem__(self, key: Any) -> _Blank:  # type: ignore[override]
        return _Blank()

    def __iter__(self) -> Iterator[str]:
        return iter(())


def fixed_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt's messages with every variable empty: its fixed text."""
    from ..plan.probes import prompt_variables

    try:
        return prompt.render({name: _Blank() for name in prompt_variables(prompt)})
    except TemplateError as exc:
        raise PromstackError(f"{prompt.source}: cannot render the fixed text ({exc}); fix the template") from None


def litellm_counter(model: str, messages: list[dict[str, Any]], tools: Any = None) -> int:
    """litellm's count for this model's tokenizer (tiktoken's bundled files for OpenAI models,
    no network; an unknown model falls back to litellm's default tokenizer)."""
    from ..execute.litellm_import import import_litellm

    litellm = import_litellm()
    return int(litellm.token_counter(model=model, messages=messages, tools=tools or None))


def fixed_tokens(prompt: Prompt, model: str, counter: Counter = litellm_counter) -> int:
    tools = prompt.params.get("tools")
    return counter(model, fixed_messages(prompt), tools if isinstance(tools, list) else None)


def pick_model(given: str | None, prompt: Prompt, logged: Traffic | None) -> str | None:
    """The model to count with: ``--model``, else the prompt's ``model:``, else the model most
    logged for the version."""
    return given or prompt.model or (logged.top_model if logged else None)


# -- figures -------------------------------------------------------------------------------------


def version_figures(v: Version, model: Model | None, logged: Traffic | None,
                    counter: Counter = litellm_counter) -> dict[str, Any]:
    fixed = fixed_tokens(v.prompt, model.litellm, counter) if model else None
    mean = logged.mean_input if logged else None
    ev = v.evaluation or {}
    return {"number": v.number, "hash": v.hash, "labels": list(v.labels), "model": model.name if model else None,
            "litellm_model": model.litellm if model else None, "fixed_tokens": fixed,
            "mean_input_tokens": mean, "variable_tokens": None if mean is None or fixed is None else mean - fixed,
            "fixed_share": None if not mean or fixed is None else 100.0 * fixed / mean,
            "calls": logged.calls if logged else 0, "days": logged.span if logged else 0,
            "calls_per_day": logged.per_day if logged else None,
            "cost_per_call": logged.per_call if logged else None,
            "input_price": model.price[0] if model and model.price else None,
            "quality": ev.get("score"), "evaluation_run": ev.get("run_id"), "evaluation_passed": ev.get("passed")}


def compare(a: dict[str, Any], b: dict[str, Any], per_day: float | None) -> dict[str, Any]:
    """B against A: cost per 1,000 calls and per month at ``per_day`` calls, the fixed-token
    difference in percent and what it does to input cost, and the quality difference."""
    cost = _minus(b["cost_per_call"], a["cost_per_call"])
    fixed = _minus(b["fixed_tokens"], a["fixed_tokens"])
    price = b["input_price"] if b["input_price"] is not None else a["input_price"]
    fixed_cost = None if fixed is None or price is None else fixed * price
    return {"a": a["number"], "b": b["number"], "calls_per_day": per_day,
            "cost_per_call": cost, "cost_per_1000": _times(cost, 1000), "cost_per_month": _month(cost, per_day),
            "fixed_tokens": fixed,
            "fixed_percent": None if fixed is None or not a["fixed_tokens"] else 100.0 * fixed / a["fixed_tokens"],
            "input_percent": (None if fixed is None or not a["mean_input_tokens"]
                              else 100.0 * fixed / a["mean_input_tokens"]),
            "fixed_cost_per_1000": _times(fixed_cost, 1000), "fixed_cost_per_month": _month(fixed_cost, per_day),
            "same_tokenizer": a["litellm_model"] == b["litellm_model"],
            "quality": _minus(b["quality"], a["quality"]), "quality_a": a["quality"], "quality_b": b["quality"]}


def cheapest(doc: Mapping[str, Any], prompt_id: str, versions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per suite of the results that runs this prompt on several models: its cheapest model passing
    the gates (``selection``), its app cost per model call in that run, and per version shown
    that cost x the version's logged calls per day x 30."""
    cases = [c for c in doc.get("cases") or [] if c.get("prompt_id") == prompt_id]
    suites = {c.get("suite") for c in cases}
    out = []
    for sel in doc.get("selection") or []:
        if sel.get("suite") not in suites or sel.get("cheapest") is None:
            continue
        mine = [c for c in cases if c.get("suite") == sel["suite"] and c.get("model") == sel["cheapest"]]
        per_call = _run_cost_per_call(mine)
        out.append({"suite": sel["suite"], "model": sel["cheapest"], "criterion": sel.get("criterion"),
                    "cost_per_call": per_call,
                    "per_month": {v["number"]: _month(per_call, v["calls_per_day"]) for v in versions}})
    return out


def _run_cost_per_call(cases: Sequence[Mapping[str, Any]]) -> float | None:
    """The app's cost per model call in a run (judges excluded: production has none)."""
    if not cases or any(c.get("cost_usd") is None for c in cases):
        return None
    calls = sum(max(int(c.get("model_calls") or 0), int(c.get("repeats") or 0), 1) for c in cases)
    return sum(float(c["cost_usd"]) for c in cases) / calls


def _minus(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _month(per_call: float | None, per_day: float | None) -> float | None:
    return None if per_call is None or per_day is None else per_call * per_day * MONTH_DAYS
