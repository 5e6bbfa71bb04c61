"""Conversations and agent loops on their way through the stages: driven to their end round
by round through the engine (every chain's next requests asked together, each answered from
the cache when it can), then judged and scored turn by turn.

A chain is one run (repeat) of a chained case: its steps are plan/chain.Step. Its slots (for
the judges' verdicts) are ``repeat * (turns + 1) + turn``, the last of each run the whole
conversation's."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model.types import Agent, AssertionSpec, Request, Response, Score, result_text, tool_call
from ..plan import chain as chains
from ..plan.chain import CANNED, ChainProblem, Step
from ..plan.planned import Planned
from ..plan.values import render as render_values
from ..results.records import total
from ..score.case import Outcome, failure_text, score_reply

if TYPE_CHECKING:
    from ..config.settings import Settings
    from ..execute.engine import Engine

Key = tuple[str, int]  # (case id, repeat)
# one run scored: passed, score, the conversation's (or the one turn's) scores, each turn's record, failure
Run = tuple[bool, float, tuple[Score, ...], tuple[dict[str, Any], ...], str | None]


@dataclass(frozen=True)
class Part:
    """What one turn (or the whole conversation) is scored on."""

    slot: int
    turn: int  # 0-based; the conversation's part: the number of turns
    label: str  # "turn 2 (a.csv:5)", or "conversation"
    asserts: tuple[AssertionSpec, ...]
    response: Response
    question: str
    variables: dict[str, Any]
    trajectory: tuple[dict[str, Any], ...]
    steps: int
    problem: str | None = None  # its assertions' values do not render


class Chains:
    """Every chain of this process: its steps so far, what it waits for, why it stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.steps: dict[Key, list[Step]] = {}
        self.pending: dict[Key, list[Any]] = {}
        self.problems: dict[Key, str] = {}

    def run(self, engine: Engine, plans: Sequence[Planned], wait: Callable[[], None]) -> int:
        """Drive ``plans``' chains to their end: each round collects the answered requests,
        asks every chain's next ones together, and waits for them. Returns the rounds."""
        chained = [p for p in plans if p.chain is not None and not p.error and not p.case.error]
        rounds = 0
        while True:
            asked = [q for plan in chained for r in range(len(plan.requests)) for q in self._next(engine, plan, r)]
            if not asked:
                return rounds
            rounds += 1
            engine.submit(asked)
            wait()

    def _next(self, engine: Engine, plan: Planned, repeat: int) -> list[Any]:
        """The chain's next requests to send (none while its last ones are unanswered, or at its end)."""
        key = (plan.case_id, repeat)
        if key not in self.pending:  # its first request went with the case's (Batch.submit)
            self.pending[key] = [plan.requests[repeat]]
            if plan.requests[repeat].key not in engine.futures:
                return self.pending[key]
        steps = self.steps.setdefault(key, [])
        while self.pending[key]:
            waiting = self.pending[key]
            if any(q.litellm_model != CANNED and not engine.futures[q.key].done() for q in waiting):
                return []
            for q in waiting:
                answer = (canned_result(plan.case.agent, q) if q.litellm_model == CANNED  # type: ignore[arg-type]
                          else engine.result(q))
                steps.append(Step(int(q.meta.get("turn", 1)) - 1, q, answer))
            try:
                asked = chains.advance(self.settings, plan, repeat, steps)
            except ChainProblem as exc:
                self.problems[key] = f"{plan.where}: {exc}"
                asked = []
            self.pending[key] = asked
            sent = [q for q in asked if q.litellm_model != CANNED]
            if sent:
                return sent
        return []

    def done(self, plan: Planned) -> bool:
        return all(not self.pending.get((plan.case_id, r), [None]) for r in range(len(plan.requests)))

    def of(self, plan: Planned, repeat: int) -> list[Step]:
        return self.steps.get((plan.case_id, repeat), [])

    def answers(self, plan: Planned) -> list[Response]:
        """Every model call's answer of the case's runs, in order (its figures' sum)."""
        return [s.response for r in range(len(plan.requests)) for s in self.of(plan, r) if s.is_model]

    def problem(self, plan: Planned) -> str | None:
        """Why a chain could not go on (a later turn's template, a tool that cannot load), or None."""
        for r in range(len(plan.requests)):
            if (plan.case_id, r) in self.problems:
                return self.problems[(plan.case_id, r)]
            for s in self.of(plan, r):
                if s.is_tool and s.response.error is not None:  # it could not run (what a tool raises is its result)
                    return f"{plan.where}: tool_impl {s.response.error}"
                if s.is_user and s.response.error is not None:
                    return (f"{plan.where}: the simulated user ({s.request.model}) gave no message for turn "
                            f"{s.turn + 1}: {s.response.error}")
        return None

    # -- parts: what the judges and the scores read ----------------------------------------------

    def parts(self, plan: Planned, repeat: int) -> list[Part]:
        """Each turn that got a reply, then (a conversation) the whole transcript."""
        chain = plan.chain
        assert chain is not None
        steps = self.of(plan, repeat)
        count = chains.turns_of(plan)
        got = chains.replies(plan, steps)
        out = []
        earlier: list[tuple[str, str]] = []
        for t, (said, step) in enumerate(got):
            variables = chains.turn_vars(plan, t, earlier)
            specs = chain.turn_asserts[t] if chain.conversation else plan.asserts
            label = _label(plan, t) if chain.conversation else ""
            rendered, problem = render_values(specs, variables, f"{plan.case.where} {label}".strip())
            out.append(Part(repeat * (count + 1) + t, t, label, rendered, step.response, said, variables,
                            tuple(chains.trajectory(steps, t)), len(chains.model_steps(steps, t)), problem))
            earlier.append((said, step.response.output))
        if chain.conversation:
            variables = {**chains.turn_vars(plan, len(earlier) - 1, earlier[:-1]), "turns": [
                {"input": i, "output": o} for i, o in earlier]} if earlier else dict(chain.variables)
            sim = plan.case.simulation
            if sim is not None:  # what goal-achieved asks about when it names nothing
                variables.setdefault("scenario", sim.goal or sim.instructions)
            out.append(Part(repeat * (count + 1) + count, count, "conversation", plan.asserts,
                            transcript(plan, steps), earlier[0][0] if earlier else "", variables,
                            tuple(chains.trajectory(steps)), sum(s.is_model for s in steps)))
        return out

    def judge_jobs(self, plan: Planned, owner: str) -> tuple[list[Any], dict[tuple[str, int], Any]]:
        """The judge jobs of every part of every run, by slot."""
        from ..score import judging

        jobs: list[Any] = []
        decided: dict[tuple[str, int], Any] = {}
        for r in range(len(plan.requests)):
            for part in self.parts(plan, r):
                if part.problem:
                    continue
                found, known = judging.jobs_for(self.settings, owner, part.asserts, [part.response], part.question,
                                                plan.meta, part.variables)
                for job in found:
                    job.index = part.slot
                jobs += found
                decided.update({(sid, part.slot): v for (sid, _), v in known.items()})
        return jobs, decided

    def score(self, registry: Any, plan: Planned, verdicts: Callable[[int], dict[str, Any]], min_pass: int,
              judge_aggregate: str) -> Outcome:
        """Every run: it passes when each turn's assertions and the conversation's pass; the case
        passes when at least ``min_pass`` runs do (all of one run)."""
        runs = [self._score_run(registry, plan, r, verdicts, judge_aggregate) for r in range(len(plan.requests))]
        passes = sum(ok for ok, *_ in runs)
        value = sum(v for _, v, *_ in runs) / len(runs)
        need = min_pass if len(runs) > 1 else 1
        first = runs[0]
        if passes >= need:
            return Outcome(True, passes, value, first[2], turns=first[3])
        failed = next(run for run in runs if not run[0])
        text = failed[4] or ""
        if len(runs) > 1:
            text = f"{plan.where}: passed {passes} of {len(runs)} runs of the conversation, needs {need}; a " \
                   f"failing one:\n{text}"
        return Outcome(False, passes, value, first[2], text, turns=first[3])

    def _score_run(self, registry: Any, plan: Planned, repeat: int, verdicts: Callable[[int], dict[str, Any]],
                   judge_aggregate: str) -> Run:
        chain = plan.chain
        assert chain is not None
        parts = self.parts(plan, repeat)
        steps = self.of(plan, repeat)
        turns: list[dict[str, Any]] = []
        values: list[float] = []
        failure: str | None = None
        scores: tuple[Score, ...] = ()
        threshold = plan.case.threshold
        count = chains.turns_of(plan)
        if plan.case.turns and len(parts) - chain.conversation < count:  # (a simulated user may stop early)
            failure = f"{plan.where}: {_label(plan, len(parts) - chain.conversation)} got no reply"
        for part in parts:
            if part.problem is not None:
                ok, value, found = False, 0.0, [Score("template", False, 0.0, part.problem)]
            elif not part.asserts:
                ok, value, found = True, 1.0, []
            else:
                ok, value, found = score_reply(registry, part.asserts, part.response, part.variables,
                                               verdicts(part.slot), threshold, judge_aggregate,
                                               params=plan.requests[0].params, trajectory=part.trajectory,
                                               steps=part.steps,
                                               messages=plan.requests[0].messages if plan.requests else ())
            values.append(value)
            if not ok and failure is None:
                where = f"{plan.where} {part.label}".strip()
                failure = failure_text(where, found, value, part.response.output, 1, 1, 1, threshold)
            if part.label == "conversation" or not chain.conversation:
                scores = tuple(found)
            else:
                turns.append(_turn_record(plan, part, ok, value, found, steps))
        if not any(p.asserts for p in parts):
            failure = failure or (f"{plan.where}: the conversation has no expectations; give its turns an "
                                  "assert: (or the case one over the whole conversation)")
        value = sum(values) / len(values) if values else 0.0
        return failure is None, value, scores, tuple(turns), failure


def canned_result(agent: Agent, req: Request) -> Response:
    """A canned tool's result: the first of ``tool_results`` with the call's name whose
    ``arguments`` (when given) the call's hold, as tool-args-match matches them; else an error
    object the model is shown (the trajectory then says which call had none)."""
    from ..score.tool_checks import mismatch

    name, args = tool_call(req)
    for item in agent.results:
        if item["name"] == name and (item["arguments"] is None or mismatch(args, item["arguments"], "args") is None):
            return Response(text=result_text(item["result"]), latency_ms=0.0, cached=True)
    shown = json.dumps(args, ensure_ascii=False)[:200]
    return Response(text=result_text({"error": f"no result for {name}({shown}) in this case's tool_results"}),
                    latency_ms=0.0, cached=True)


def _label(plan: Planned, turn: int) -> str:
    turns = plan.case.turns
    return (turns[turn].label if turn < len(turns) else "") or f"turn {turn + 1}"


def _turn_record(plan: Planned, part: Part, ok: bool, value: float, found: Sequence[Score], steps: Sequence[Step]
                 ) -> dict[str, Any]:
    """A turn as the record holds it; ``where`` is its own row when it was one (a CSV conversation)."""
    mine = [s.response for s in steps if s.turn == part.turn and s.is_model]
    turns = plan.case.turns
    row = turns[part.turn].row if part.turn < len(turns) else 0
    where = f"{plan.case.file}:{row}" if row else plan.case.where
    return {"index": part.turn + 1, "where": where, "input": part.question,
            "output": part.response.output, "passed": ok, "score": value,
            "assertions": [{"type": s.type, "passed": s.passed, "score": s.score, "reason": s.reason} for s in found],
            "latency_ms": total(mine, "latency_ms"), "input_tokens": total(mine, "input_tokens"),
            "output_tokens": total(mine, "output_tokens"), "cost_usd": total(mine, "cost_usd"),
            "cached": all(r.cached for r in mine), "model_calls": len(mine)}


def transcript(plan: Planned, steps: Sequence[Step]) -> Response:
    """The whole conversation as one answer (what its own assertions and judges read): each
    message on a line of its own, ``User:``/``Assistant:``/``Tool NAME:``; its figures are the
    sum of every model call's."""
    lines = []
    for said, step in chains.replies(plan, steps):
        lines.append(f"User: {said}")
        for s in steps:
            if s.turn == step.turn and s.is_tool:  # the tools it ran before it answered
                name, args = tool_call(s.request)
                lines.append(f"Tool {name}({_short(args)}): {_short(s.response.text or s.response.error)}")
        lines.append(f"Assistant: {step.response.output}")
    mine = [s.response for s in steps if s.is_model]
    return Response(text="\n".join(lines), input_tokens=total(mine, "input_tokens"),
                    output_tokens=total(mine, "output_tokens"), cost_usd=total(mine, "cost_usd"),
                    latency_ms=total(mine, "latency_ms"), cached=all(r.cached for r in mine),
                    finish_reason=mine[-1].finish_reason if mine else None)


def _short(value: Any, limit: int = 300) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chain_record(chains_: Chains, plan: Planned) -> dict[str, Any]:
    """What a chained case's record adds: its steps, its whole transcript, its last reply."""
    steps = chains_.of(plan, 0)
    mine = [s for s in steps if s.is_model]
    users = [s.response for r in range(len(plan.requests)) for s in chains_.of(plan, r) if s.is_user]
    out: dict[str, Any] = {"steps": chains.trajectory(steps), "model_calls": len(chains_.answers(plan)),
                           "repeats": len(plan.requests), "simulated_user": {
                               "calls": len(users), "cost_usd": total(users, "cost_usd") if users else 0.0}}
    if mine:
        last = mine[-1]
        out["messages"] = [*last.request.messages, chains.assistant_message(last.response)]
        out["output"] = last.response.output if last.response.text is not None else None
        out["finish_reason"] = last.response.finish_reason
    return out

