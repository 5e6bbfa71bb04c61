"""``--promstack-estimate``: an upper bound of what a run would cost, before spending it.

For every call the run would make (cached answers excluded): input tokens counted with
litellm's counter, plus ``max_tokens`` of output, priced with litellm's map (or the
model's ``input_cost_per_token``/``output_cost_per_token``). Judge calls (judged assertions,
an arena's games in both orders) are included with the longest answers the models may give.
Nothing is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.settings import Settings
from ..model.types import Request, Response

if TYPE_CHECKING:
    from ..plan.planned import Planned


@dataclass
class Line:
    model: str
    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0
    problems: set[str] = field(default_factory=set)


def for_plans(settings: Settings, plans: Iterable[Planned], warn: Callable[[str], None]) -> list[str]:
    """The estimate's lines for these planned cases; what the cache already holds is free
    (when the run reads the cache)."""
    cache = None
    if settings.cache_mode.reads:
        from ..execute.cache import build_cache

        cache = build_cache(settings, warn)
    try:
        return _lines(settings, plans, cache)
    finally:
        if cache is not None:
            cache.close()


def _lines(settings: Settings, plans: Iterable[Planned], cache: Any) -> list[str]:
    from ..execute.litellm_import import import_litellm
    from ..score import judging

    litellm = import_litellm()
    arena = settings.arena
    referee = settings.judges.get(arena["judge"]) if arena else None
    lines: dict[str, Line] = {}
    plans = list(plans)
    for plan in plans:
        for req in plan.requests:
            add(lines, litellm, req, cache is not None and cache.get(req.key) is not None)
        # the judges' prompts hold answers not known yet: each counts the longest answer the
        # model may give (an arena game holds two), so the bound stays a bound
        answer_bound = max((int(req.params.get("max_tokens") or 0) for req in plan.requests), default=0)
        calls = _later_calls(settings, lines, litellm, plan, answer_bound) if plan.chain is not None else 1
        blanks = [Response(text="")] * max(1, len(plan.requests) * calls)
        jobs, _decided = judging.jobs_for(settings, "", plan.all_asserts, blanks, plan.question, plan.meta,
                                           plan.case.vars, run_transforms=False)
        for job in jobs:
            if job.prepare is not None:  # g-eval: its steps call (cached once asked), then the verdict with them
                add(lines, litellm, job.prepare, cache is not None and cache.get(job.prepare.key) is not None)
                job.requests = [judging.request(settings, job, j, job.build("") if job.build else [], plan.meta)
                                for j in range(job.judge.repeat)]
            steps = int(job.prepare.params.get("max_tokens") or 0) if job.prepare is not None else 0
            for req in job.requests:
                add(lines, litellm, req, False, extra_input_tokens=answer_bound + steps)
        if plan.contenders and referee is not None and not plan.error and not plan.case.error:
            games = judging.pair_jobs(settings, referee, {"": plan}, lambda p: [Response(text="")] * len(p.contenders))
            for req in (req for game in games for req in game.requests):
                add(lines, litellm, req, False, extra_input_tokens=2 * answer_bound)
    _select_best(settings, plans, lines, litellm)
    return lines_for(lines)


def _later_calls(settings: Settings, lines: dict[str, Line], litellm: Any, plan: Planned, answer_bound: int) -> int:
    """A conversation's or an agent's calls after its first, which are not planned yet: every turn
    (a simulated user's too) and every agent step it may take, each holding the history so far
    (each earlier call's input and longest answer). Returns the calls per run. A python tool's
    results are not known before it runs and are not counted."""
    from ..model.errors import TemplateError
    from ..plan.chain import ChainProblem, request_for, turn_vars, turns_of

    agent = plan.case.agent
    calls = turns_of(plan) * (agent.max_steps if agent is not None else 1)
    if plan.error or plan.case.error:
        return calls
    for repeat, first in enumerate(plan.requests):
        app = first
        if plan.case.simulation is not None:  # ``first`` asks the model that plays the user: the app's first call
            assert plan.chain is not None
            try:
                messages = plan.chain.prompt.render(turn_vars(plan, 0, [], said=""), plan.case.prefix,
                                                    plan.case.suffix)
            except (TemplateError, ChainProblem):
                continue
            app = request_for(settings, plan, repeat, messages)
            add(lines, litellm, app, False)
        grown = litellm.token_counter(model=app.litellm_model, messages=list(app.messages)) + answer_bound
        for k in range(1, calls):
            add(lines, litellm, app, False, extra_input_tokens=k * grown)
        if plan.case.simulation is not None:  # the user model: one call a turn, holding the history too
            for k in range(1, turns_of(plan)):
                add(lines, litellm, first, False, extra_input_tokens=k * grown)
    return calls


def _select_best(settings: Settings, plans: list[Planned], lines: dict[str, Line], litellm: Any) -> None:
    """One select-best call per row and repeat, holding every variant's longest answer."""
    from ..score import judging

    ok = {str(i): p for i, p in enumerate(plans) if not p.error and not p.case.error}
    jobs, _ = judging.select_jobs(settings, ok, lambda p: [Response(text="")] * max(1, len(p.requests)))
    for job in jobs:
        bound = sum(max((int(r.params.get("max_tokens") or 0) for r in ok[o].requests), default=0) for o in job.owners)
        for req in job.requests:
            add(lines, litellm, req, False, extra_input_tokens=bound)


def add(lines: dict[str, Line], litellm: Any, req: Request, cached: bool, extra_input_tokens: int = 0) -> None:
    line = lines.setdefault(req.model, Line(req.model))
    if cached:
        line.cached += 1
        return
    line.calls += 1
    tokens_in = litellm.token_counter(model=req.litellm_model, messages=list(req.messages)) + extra_input_tokens
    tokens_out = req.params.get("max_tokens")
    line.input_tokens += tokens_in
    if tokens_out is None:
        line.problems.add("no max_tokens, so no bound on output: set max_tokens in defaults or params")
        line.cost = None
        return
    line.output_tokens += int(tokens_out)
    price = _price(litellm, req, tokens_in, int(tokens_out))
    if price is None:
        line.problems.add(f"no price for {req.litellm_model}: add input_cost_per_token and output_cost_per_token "
                          "to its params")
        line.cost = None
    elif line.cost is not None:
        line.cost += price


def _price(litellm: Any, req: Request, tokens_in: int, tokens_out: int) -> float | None:
    p = req.params
    if p.get("input_cost_per_token") is not None and p.get("output_cost_per_token") is not None:
        return tokens_in * float(p["input_cost_per_token"]) + tokens_out * float(p["output_cost_per_token"])
    if req.litellm_model.startswith(("local/", "python:")):
        return 0.0
    try:
        a, b = litellm.cost_per_token(model=req.litellm_model, prompt_tokens=tokens_in, completion_tokens=tokens_out)
    except Exception:
        return None
    return float(a) + float(b)


def lines_for(lines: dict[str, Line]) -> list[str]:
    from tabulate import tabulate

    rows = [[ln.model, ln.calls, ln.cached, ln.input_tokens, ln.output_tokens,
             "n/a" if ln.cost is None else f"{ln.cost:.6f}"] for ln in lines.values()]
    out = ["promstack estimate: an upper bound (input tokens + max_tokens per call); nothing was called"]
    out += tabulate(rows, headers=["model", "calls", "cached (free)", "tokens in", "tokens out (max)", "max USD"],
                    tablefmt="simple", disable_numparse=True).splitlines()
    costs = [ln.cost for ln in lines.values()]
    total = "n/a" if any(c is None for c in costs) else f"{sum(c for c in costs if c is not None):.6f}"
    out.append(f"promstack estimate: at most {total} USD for this run")
    out += [f"promstack estimate: {p}" for ln in lines.values() for p in sorted(ln.problems)]
    return out
