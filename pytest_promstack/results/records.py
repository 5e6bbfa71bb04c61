"""Per-case records: what the results document, the summary, the gates and the baseline read
about each case. One shape for every kind of case (a scored case, a case that never got past
its setup, an unreadable file, a reply of the fixture or the SDK): ``blank`` holds every key
(a reply's record adds its ``outcome``, which pytest's report gives a test file's case).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..model.types import Response

if TYPE_CHECKING:
    from ..plan.planned import Planned
    from ..score.case import Outcome


def blank(**known: Any) -> dict[str, Any]:
    """A record with every key, ``known`` filled in."""
    return {
        "suite": "-", "model": "-", "case_id": "", "litellm_model": None, "prompt_id": "-", "prompt_version": "-",
        "file": None, "row": None, "called": False, "latencies": [], "input_tokens": None, "output_tokens": None,
        "cost_usd": None, "cached": False, "finish_reason": None, "truncated": 0, "error": None, "score": None,
        "attempts": 0, "phase": "call", "setup_error": None, "repeats": 0, "passes": None,
        "quality": None, "judges": [], "eval_cost_usd": 0.0, "judge_calls": 0, "judge_cached": 0,
        "human_score": None, "judge_flaky": False, "arena": [], "vars": {}, "metadata": {}, "messages": [],
        "output": None, "assertions": [],
        # a conversation's turns, in order (empty for a one-shot case): each {"index" (1-based), "where"
        # (file:row), "input" (the user message), "output", "passed", "score", "assertions", "latency_ms",
        # "input_tokens", "output_tokens", "cost_usd", "cached", "model_calls"}
        "turns": [],
        # the tool calls the model made, in order, with what each tool returned: {"turn" (1-based; 1 for a
        # one-shot case), "step" (the model call that asked it, 1-based within the turn), "name",
        # "arguments", "result" (None when no tool ran)}
        "steps": [],
        "model_calls": 0,  # the case's model calls (an agent loop's and every turn's; its judges' are judge_calls)
        **known,
    }


# a record's keys in the order ``blank`` gives them, then the outcome its reports give it
KEYS = tuple(blank())
FULL = (*KEYS, "outcome")
_AT = {key: i for i, key in enumerate(FULL)}
_LISTS = tuple(_AT[k] for k in ("judges", "arena", "turns", "steps"))  # empty in most cases
_NONE = object()  # an empty list of one of those, stored as nothing


class Record(Mapping[str, Any]):
    """A case's record as the run keeps it: the values of a record whose keys are ``FULL``, in
    that order, in one tuple (about 0.4 KB instead of a dict's 0.8 KB and its empty lists; a
    large run keeps one per case to its end). Read like the dict it was made from (same keys,
    order and values; an empty list comes back as a new ``[]``); ``record.as_dict()`` or
    ``{**record}`` is that dict. Only the values of its keys can change (the outcome does)."""

    __slots__ = ("_values",)

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        value = self._values[_AT[key]]
        return [] if value is _NONE else value

    def get(self, key: str, default: Any = None) -> Any:
        i = _AT.get(key)
        if i is None:
            return default
        value = self._values[i]
        return [] if value is _NONE else value

    def __setitem__(self, key: str, value: Any) -> None:
        values = list(self._values)
        values[_AT[key]] = value
        self._values = tuple(values)

    def __contains__(self, key: object) -> bool:
        return key in _AT

    def __iter__(self) -> Iterator[str]:
        return iter(FULL)

    def __len__(self) -> int:
        return len(FULL)

    def __repr__(self) -> str:
        return f"Record({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        """The record as a dict of its own (what ``dict(record)`` gives, faster)."""
        out = dict(zip(FULL, self._values, strict=True))
        for i in _LISTS:
            if self._values[i] is _NONE:
                out[FULL[i]] = []
        return out


def compact(record: dict[str, Any]) -> Mapping[str, Any]:
    """``record`` as a ``Record`` when its keys are ``FULL`` in that order (a case's record
    with its outcome); any other shape (a salvaged case's, a test's own) stays as it is."""
    if tuple(record) != FULL:
        return record
    values = list(record.values())
    for i in _LISTS:
        if type(values[i]) is list and not values[i]:
            values[i] = _NONE
    return Record(tuple(values))


def total(responses: Sequence[Response], name: str) -> Any:
    """The sum of a figure over the runs of a case; None when any run lacks it."""
    values = [getattr(r, name) for r in responses]
    if not values or any(v is None for v in values):
        return None
    return sum(values)


def identity(plan: Planned) -> dict[str, Any]:
    """A case as planned, before anything ran (so a crash before its call is still counted)."""
    return blank(suite=plan.suite, model=plan.model, case_id=plan.case_id, prompt_id=plan.prompt_id,
                 prompt_version=plan.prompt_version, file=plan.case.file, row=plan.case.row)


def case_record(plan: Planned, responses: Sequence[Response], outcome: Outcome | None, *, when: str = "call",
                problem: str | None = None, verdicts: Sequence[Any] = (), judge_jobs: Sequence[Any] = (),
                arena_games: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A case after it ran: figures of its calls, its outcome, its judges' verdicts and cost.
    ``when="setup"`` with ``problem``: it errored before it was scored (a failed call, judge or
    template)."""
    rs = list(responses)
    first = rs[0] if rs else None
    return {
        **identity(plan),
        "litellm_model": plan.requests[0].litellm_model if plan.requests else None,
        "called": bool(plan.requests) and bool(rs),
        "latencies": [r.latency_ms for r in rs if r.latency_ms is not None],
        "input_tokens": total(rs, "input_tokens"), "output_tokens": total(rs, "output_tokens"),
        "cost_usd": total(rs, "cost_usd"), "cached": bool(rs) and all(r.cached for r in rs),
        "finish_reason": first.finish_reason if first is not None else None,
        "truncated": sum(r.finish_reason == "length" for r in rs),
        # a call's error; else why a case that was never scored failed (a row refused when read)
        "error": first.error if first is not None else (problem.splitlines()[0][:400] if problem and outcome is None
                                                         else None),
        "score": outcome.score if outcome else None,
        "attempts": sum(r.attempts for r in rs),
        "phase": when,
        "setup_error": problem.splitlines()[0][:400] if problem and when == "setup" else None,
        "repeats": 1 if plan.contenders else len(rs), "passes": outcome.passes if outcome else None,
        **judge_figures(verdicts, judge_jobs, plan.case.human_score),
        "arena": [g for g in arena_games if "error" not in g],
        "vars": plan.case.vars,
        "metadata": plan.case.metadata,  # promptfoo's test metadata (and defaultTest's), to filter on
        "messages": list(plan.requests[0].messages) if plan.requests else [],
        "output": first.output if first is not None and first.text is not None else None,
        "assertions": [{"type": sc.type, "passed": sc.passed, "score": sc.score, "reason": sc.reason}
                       for sc in (outcome.scores if outcome else ())],
        "steps": tool_steps(first, turn=1, step=1) if first is not None else [],
        # a python: agent target's own model calls, as it reported them
        "model_calls": sum(r.model_calls or 1 for r in rs) if plan.requests else 0,
    }


def tool_steps(response: Response, *, turn: int, step: int, results: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The tool calls of one model reply as the record's steps, each with what its tool returned
    (``results``, in the calls' order; None when no tool ran); a python: agent target's reply
    shows the tools it ran itself (its own step numbers), then the calls its reply asked for."""
    if response.trajectory is not None:
        from ..score.case import own_trajectory

        return [{"turn": turn, **s} for s in own_trajectory(response)[0]]
    calls = response.calls
    return [{"turn": turn, "step": step, "name": name, "arguments": args,
             "result": results[i] if i < len(results) else None} for i, (name, args) in enumerate(calls)]


def judge_figures(verdicts: Sequence[Any], jobs: Sequence[Any], human_score: float | None) -> dict[str, Any]:
    """Quality (the mean of the usable verdicts), the judges' cost and calls, agreement."""
    usable = [v for v in verdicts if isinstance(v, dict) and "error" not in v and not v.get("measured")]
    cost, calls = 0.0, 0
    if jobs:  # imported only when a judge was asked
        from ..score.judging import eval_cost

        cost, calls = eval_cost(list(jobs))
    return {
        "quality": sum(v["normalised"] for v in usable) / len(usable) if usable else None,
        "judges": usable, "eval_cost_usd": cost, "judge_calls": calls,
        "judge_cached": sum(r.cached for job in jobs for r in job.responses),
        "human_score": human_score,
        "judge_flaky": any(v.get("agreement", 1) < 1 for v in usable),
    }


def junit_properties(plan: Planned, responses: Sequence[Response]) -> list[tuple[str, Any]]:
    """The case's figures as JUnit properties (``record_property``'s ``user_properties``)."""
    r = responses[0]
    return [("model", plan.model), ("prompt_id", plan.prompt_id), ("prompt_version", plan.prompt_version),
            ("latency_ms", _na(r.latency_ms)), ("input_tokens", _na(total(responses, "input_tokens"))),
            ("output_tokens", _na(total(responses, "output_tokens"))),
            ("cost_usd", _na(total(responses, "cost_usd"))), ("cached", str(r.cached).lower()),
            ("finish_reason", _na(r.finish_reason)),
            ("truncated", str(any(x.finish_reason == "length" for x in responses)).lower()),
            ("model_calls", str(len(responses))), ("tool_calls", str(sum(len(x.calls) for x in responses)))]


def _na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def file_error(suite: str, nodeid: str, path: str) -> dict[str, Any]:
    """An unreadable file counts once, as an error, under the first suite that uses it."""
    return blank(suite=suite, case_id=nodeid, file=path)


def reply_record(suite: str, reply: Any) -> dict[str, Any]:
    """A reply of the fixture or the SDK (``pipeline.runner.Reply``): a case of its own suite."""
    return blank(suite=suite, model=reply.model, prompt_id=reply.prompt_id or "messages",
                 prompt_version=reply.prompt_version or "-", case_id=reply.case_id or "", called=True,
                 latencies=[reply.latency_ms] if reply.latency_ms is not None else [],
                 input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cost_usd=reply.cost_usd,
                 cached=reply.cached, error=reply.error, outcome="error" if reply.error else "passed", repeats=1,
                 finish_reason=reply.finish_reason, truncated=int(reply.finish_reason == "length"),
                 output=reply.text, attempts=1, model_calls=1,
                 steps=tool_steps(reply.response(), turn=1, step=1) if reply.error is None else [])
