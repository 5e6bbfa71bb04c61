"""LLM-as-judge: criteria on a scale, strict verdicts that fail closed, and calibration.

A judge answers a JSON object ``{"scores": [{"criterion", "score", "reason"}]}``. The
verdict is parsed strictly; one repair attempt is made; otherwise the case *errors* with
the raw answer. Pass/fail comes from the scores and thresholds, never from a flag the
judge wrote.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any

from ..config.judges import Judge
from ..model.errors import JudgeError

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"scores": {"type": "array", "items": {
        "type": "object",
        "properties": {"criterion": {"type": "string"}, "score": {"type": "integer"}, "reason": {"type": "string"}},
        "required": ["criterion", "score", "reason"]}}},
    "required": ["scores"],
}
EXPECTATION = {"ko": "응답이 기대하는 응답의 내용과 의도를 충족하는가?",
               "en": "Does the reply meet the content and intent of the expected reply?"}


@dataclass(frozen=True)
class CriterionScore:
    criterion: str
    score: int
    reason: str


@dataclass(frozen=True)
class Verdict:
    judge: str
    scores: tuple[CriterionScore, ...]
    scale: tuple[int, int]
    passed: bool

    @property
    def mean(self) -> float:
        return sum(s.score for s in self.scores) / len(self.scores)

    @property
    def normalised(self) -> float:
        """0..100: the mean's position on the scale."""
        lo, hi = self.scale
        return 100.0 * (self.mean - lo) / (hi - lo)

    def to_json(self) -> dict[str, Any]:
        return {"judge": self.judge, "passed": self.passed, "mean": self.mean, "normalised": self.normalised,
                "scores": [{"criterion": s.criterion, "score": s.score, "reason": s.reason} for s in self.scores]}


@cache
def builtin_template(kind: str, language: str) -> str:
    lang = language if language in ("ko", "en") else "en"
    return files("pytest_promstack").joinpath(f"templates/{kind}_{lang}.j2").read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def compiled(text: str) -> Any:
    """Judge templates are compiled once per text, not once per judged reply, in the bounded
    sandbox (util/sandbox.py): a judge's template text comes from promstack.yaml or a file,
    which a pull request can change."""
    from ..util.sandbox import compile_template

    return compile_template(text)


def template_text(judge: Judge) -> str:
    return judge.template or builtin_template("judge", judge.language)


def messages(judge: Judge, question: str, answer: str, template: str, expectation: str | None = None,
             context: str | None = None) -> list[dict[str, Any]]:
    """The judge's prompt, blind to which model answered; a template that cannot render
    (a syntax error, an unknown variable, an attribute the sandbox refuses) is a JudgeError."""

    from ..util.sandbox import TemplateLimitError

    try:
        text = compiled(template).render(
            criteria=list(judge.criteria), scale_min=judge.scale[0], scale_max=judge.scale[1],
            question=question, answer=answer, expectation=expectation, context=context)
    except TemplateLimitError as exc:
        raise JudgeError(f"judge {judge.name}'s prompt {exc}; fix judges.{judge.name.split(':')[0]}.prompt") from None
    except Exception as exc:  # jinja2.TemplateError, and {{ 1/0 }} or {% include %}: the template's own error
        raise JudgeError(f"judge {judge.name}'s prompt template cannot render: {type(exc).__name__}: {exc}; fix "
                         f"judges.{judge.name.split(':')[0]}.prompt") from None
    return [{"role": "user", "content": text}]


def schema_for(judge: Judge) -> dict[str, Any]:
    """The verdict schema with this judge's number of criteria and its scale."""
    n = len(judge.criteria)
    item = {"type": "object", "properties": {
        "criterion": {"type": "string"},
        "score": {"type": "integer", "minimum": judge.scale[0], "maximum": judge.scale[1]},
        "reason": {"type": "string"}}, "required": ["criterion", "score", "reason"]}
    return {"type": "object", "properties": {"scores": {"type": "array", "items": item, "minItems": n,
                                                        "maxItems": n}}, "required": ["scores"]}


def request_params(judge: Judge) -> dict[str, Any]:
    """Ask for structured output as a JSON schema. litellm drops it for providers it knows
    cannot take it (drop_params); a server that refuses it gets json_object, then nothing,
    once per endpoint (execute/negotiate.py). The verdict is parsed strictly either way."""
    return {"temperature": 0, "max_tokens": 400 + 80 * len(judge.criteria), **judge.params,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "verdict", "schema": schema_for(judge)}}}


def repair_messages(original: list[dict[str, Any]], raw: str, problem: str, language: str) -> list[dict[str, Any]]:
    ask = (f"방금 답은 형식이 맞지 않습니다 ({problem}). 설명 없이 요구한 JSON 객체 하나만 다시 답하세요."
           if language == "ko" else
           f"That answer was not valid ({problem}). Reply again with only the JSON object asked for.")
    return [*original, {"role": "assistant", "content": raw}, {"role": "user", "content": ask}]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def load_json(raw: str | None) -> Any:
    """A judge's answer as JSON: one object, optionally in a ```json fence; else JudgeError."""
    text = (raw or "").strip()
    if not text:
        raise JudgeError("the judge gave an empty answer")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JudgeError(f"the judge's answer is not JSON ({exc.msg} at char {exc.pos})") from None


def parse(raw: str | None, judge: Judge) -> Verdict:
    """Strict: one JSON object, a score per criterion, integers within the scale."""
    data = load_json(raw)
    items = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise JudgeError('the judge\'s answer has no "scores" list')
    if len(items) != len(judge.criteria):
        raise JudgeError(f"the judge scored {len(items)} criteria, expected {len(judge.criteria)}")
    scores = tuple(_score(item, criterion, judge.scale) for item, criterion in zip(items, judge.criteria, strict=True))
    return Verdict(judge.name, scores, judge.scale, _passed(scores, judge))


def _score(item: Any, criterion: str, scale: tuple[int, int]) -> CriterionScore:
    if not isinstance(item, dict) or "score" not in item:
        raise JudgeError(f"criterion {criterion!r}: no score")
    value = item["score"]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise JudgeError(f"criterion {criterion!r}: score {value!r} is not an integer")
    if not scale[0] <= value <= scale[1]:
        raise JudgeError(f"criterion {criterion!r}: score {value} is outside the scale {scale[0]}-{scale[1]}")
    return CriterionScore(criterion, int(value), str(item.get("reason", "")))


def _passed(scores: tuple[CriterionScore, ...], judge: Judge) -> bool:
    if judge.pass_on == "mean":
        return sum(s.score for s in scores) / len(scores) >= judge.pass_score
    return all(s.score >= judge.pass_score for s in scores)


# ---- select-best: the best of one test's replies ------------------------------------------


def select_best_schema(count: int) -> dict[str, Any]:
    """The answer of a select-best judge: the number (1..count) of the best reply, and why."""
    return {"type": "object", "properties": {"best": {"type": "integer", "minimum": 1, "maximum": count},
                                             "reason": {"type": "string"}}, "required": ["best", "reason"]}


def select_best_messages(judge: Judge, criterion: str, question: str, replies: list[str]) -> list[dict[str, Any]]:
    """The built-in select-best prompt (the judge's language): the replies numbered from 1,
    blind to which prompt and model wrote them."""
    text = compiled(builtin_template("select_best", judge.language)).render(
        criterion=criterion, question=question, replies=replies)
    return [{"role": "user", "content": text}]


def select_best_params(judge: Judge, count: int) -> dict[str, Any]:
    return {"temperature": 0, "max_tokens": 300, **judge.params,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "best_reply", "schema": select_best_schema(count)}}}


def parse_select_best(raw: str | None, count: int) -> tuple[int, str]:
    """Strict: one JSON object whose ``best`` is an integer 1..count; returns (0-based index,
    reason). promptfoo takes the first digits anywhere in the answer; a judge that rambles
    here is asked again, then the row errors."""
    data = load_json(raw)
    best = data.get("best") if isinstance(data, dict) else None
    if isinstance(best, bool) or not isinstance(best, int | float) or best != int(best):
        raise JudgeError(f'"best" must be the number of the best reply (1 to {count}), got {best!r}')
    if not 1 <= best <= count:
        raise JudgeError(f'"best" is {int(best)}, but there are replies 1 to {count}')
    return int(best) - 1, str(data.get("reason", ""))


# ---- calibration against human labels ------------------------------------------------------


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # ties share their average rank
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Pearson correlation of the ranks (ties averaged); None when either side is constant."""
    rx, ry = _ranks(xs), _ranks(ys)
    n = len(xs)
    mx, my = sum(rx) / n, sum(ry) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return None if vx == 0 or vy == 0 else cov / math.sqrt(vx * vy)


def weighted_kappa(xs: list[int], ys: list[int], lo: int, hi: int) -> float | None:
    """Cohen's kappa with quadratic weights on the scale lo..hi."""
    k = hi - lo + 1
    n = len(xs)
    observed = [[0.0] * k for _ in range(k)]
    for a, b in zip(xs, ys, strict=True):
        observed[a - lo][b - lo] += 1
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    weight = [[((i - j) ** 2) / ((k - 1) ** 2) for j in range(k)] for i in range(k)]
    num = sum(weight[i][j] * observed[i][j] for i in range(k) for j in range(k))
    den = sum(weight[i][j] * row[i] * col[j] / n for i in range(k) for j in range(k))
    return None if den == 0 else 1 - num / den


def calibration(pairs: list[tuple[float, float]], scale: tuple[int, int],
                cases: list[str] | None = None) -> dict[str, Any]:
    """Judge (mean score on the scale) against human labels: agreement figures. A human score
    off the judge's scale (or not a finite number) is left out and listed under ``excluded``
    with its case (``cases``: the case id of each pair), so one mislabelled row neither crashes
    the run nor skews kappa."""
    lo, hi = scale
    ids = cases if cases is not None else [""] * len(pairs)
    kept: list[tuple[float, int]] = []
    excluded = []
    for (j, h), case_id in zip(pairs, ids, strict=True):
        if isinstance(h, int | float) and math.isfinite(h) and lo <= round(h) <= hi:
            kept.append((j, round(h)))
        else:
            excluded.append({"case_id": case_id, "human_score": h})
    out: dict[str, Any] = {"n": len(kept), "scale": [lo, hi], "excluded": excluded}
    if not kept:
        return {**out, "exact": None, "within_one": None, "spearman": None, "kappa": None}
    judged = [min(hi, max(lo, math.floor(j + 0.5))) for j, _ in kept]
    human = [h for _, h in kept]
    n = len(kept)
    return {
        **out,
        "exact": sum(a == b for a, b in zip(judged, human, strict=True)) / n,
        "within_one": sum(abs(a - b) <= 1 for a, b in zip(judged, human, strict=True)) / n,
        "spearman": spearman([j for j, _ in kept], [float(h) for h in human]),
        "kappa": weighted_kappa(judged, human, lo, hi),
    }
