"""The model arena: every contender answers every case; each pair is judged blind (replies
labelled only "A" and "B") in both orders; two verdicts that disagree make a tie (the
MT-Bench protocol). Win rates count ties as half; Bradley-Terry ratings come with seeded
bootstrap 95% intervals; the judge's order-flip rate is reported."""

from __future__ import annotations

import math
import random
from itertools import combinations
from typing import Any

from ..config.judges import Judge
from ..model.errors import JudgeError
from .judges import builtin_template, compiled, load_json

SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "winner": {"type": "string", "enum": ["A", "B", "tie"]}, "reason": {"type": "string"}},
    "required": ["winner", "reason"]}


def pairs(contenders: list[str]) -> list[tuple[str, str]]:
    return list(combinations(contenders, 2))


def messages(judge: Judge, question: str, first: str, second: str) -> list[dict[str, Any]]:
    template = compiled(builtin_template("arena", judge.language))
    text = template.render(criteria=list(judge.criteria), question=question, answer_a=first, answer_b=second)
    return [{"role": "user", "content": text}]


def request_params(judge: Judge) -> dict[str, Any]:
    return {"temperature": 0, "max_tokens": 300, **judge.params,
            "response_format": {"type": "json_schema", "json_schema": {"name": "preference", "schema": SCHEMA}}}


def parse(raw: str | None) -> str:
    """'A', 'B' or 'tie'; anything else raises (and the case errors: no verdict, no winner)."""
    data = load_json(raw)
    winner = data.get("winner") if isinstance(data, dict) else None
    if not isinstance(winner, str) or winner.strip().lower() not in ("a", "b", "tie"):
        raise JudgeError(f'"winner" must be "A", "B" or "tie", got {winner!r}')
    w = winner.strip().lower()
    return "tie" if w == "tie" else w.upper()


def combine(first: str, second: str, a: str, b: str) -> tuple[str, bool]:
    """``first``: verdict with a shown as "A"; ``second``: with b shown as "A".
    Returns (winner name or "tie", whether the two orders disagreed)."""
    one = {"A": a, "B": b, "tie": "tie"}[first]
    two = {"A": b, "B": a, "tie": "tie"}[second]
    if one == two:
        return one, False
    return "tie", True


# ---- aggregation ----------------------------------------------------------------------------


def summarise(games: list[dict[str, Any]], contenders: list[str], seed: int = 0, bootstrap: int = 1000
              ) -> dict[str, Any]:
    """``games``: one dict per (case, pair) with a, b, winner, flipped, case."""
    table = {f"{a} vs {b}": _wtl(games, a, b) for a, b in pairs(contenders)}
    rates = {c: _win_rate(games, c) for c in contenders}
    ratings = bradley_terry(games, contenders)
    intervals = _bootstrap(games, contenders, seed, bootstrap)
    flips = sum(g["flipped"] for g in games)
    return {"contenders": contenders, "pairs": table, "win_rate": rates, "rating": ratings,
            "interval": intervals, "games": len(games), "flip_rate": flips / len(games) if games else None}


def _wtl(games: list[dict[str, Any]], a: str, b: str) -> dict[str, int]:
    mine = [g for g in games if {g["a"], g["b"]} == {a, b}]
    return {"win": sum(g["winner"] == a for g in mine), "tie": sum(g["winner"] == "tie" for g in mine),
            "loss": sum(g["winner"] == b for g in mine)}


def _win_rate(games: list[dict[str, Any]], c: str) -> float | None:
    mine = [g for g in games if c in (g["a"], g["b"])]
    if not mine:
        return None
    return (sum(g["winner"] == c for g in mine) + 0.5 * sum(g["winner"] == "tie" for g in mine)) / len(mine)


def bradley_terry(games: list[dict[str, Any]], contenders: list[str], iterations: int = 200) -> dict[str, float]:
    """Bradley-Terry strengths by the MM algorithm (Hunter 2004), ties as half a win each,
    on an Elo-like scale: 1000 + 400 * log10(strength / geometric mean)."""
    wins = {c: 0.0 for c in contenders}
    n = {(a, b): 0.0 for a in contenders for b in contenders}
    for g in games:
        a, b = g["a"], g["b"]
        n[(a, b)] += 1
        n[(b, a)] += 1
        if g["winner"] == "tie":
            wins[a] += 0.5
            wins[b] += 0.5
        else:
            wins[g["winner"]] += 1
    eps = 0.5  # a small prior win against each other contender keeps strengths finite (no 0 or inf)
    p = {c: 1.0 for c in contenders}
    for _ in range(iterations):
        new = {}
        for i in contenders:
            den = sum((n[(i, j)] + 2 * eps) / (p[i] + p[j]) for j in contenders if j != i)
            new[i] = (wins[i] + eps * (len(contenders) - 1)) / den if den else p[i]
        geo = math.exp(sum(math.log(v) for v in new.values()) / len(new))
        p = {c: v / geo for c, v in new.items()}
    return {c: 1000 + 400 * math.log10(v) for c, v in p.items()}


def _bootstrap(games: list[dict[str, Any]], contenders: list[str], seed: int, rounds: int
               ) -> dict[str, tuple[float, float]]:
    """95% intervals of the ratings, resampling cases (all of a case's games together)."""
    by_case: dict[str, list[dict[str, Any]]] = {}
    for g in games:
        by_case.setdefault(g["case"], []).append(g)
    cases = sorted(by_case)
    if not cases or rounds <= 0:
        return {}
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {c: [] for c in contenders}
    for _ in range(rounds):
        drawn = [g for _ in cases for g in by_case[cases[rng.randrange(len(cases))]]]
        for c, r in bradley_terry(drawn, contenders, iterations=60).items():
            samples[c].append(r)
    out = {}
    for c, values in samples.items():
        values.sort()
        out[c] = (values[int(0.025 * (len(values) - 1))], values[math.ceil(0.975 * (len(values) - 1))])
    return out
