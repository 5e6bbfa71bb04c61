"""Overlap with reference text, scored as promptfoo scores it: ``bleu``.

promptfoo computes BLEU itself (Papineni et al., 2002) on lowercased whitespace tokens, with
n-grams 1..4 weighted equally, each n-gram count clipped against one reference at a time (the
best reference wins per n), a precision of 0 smoothed to 1e-7, and the brevity penalty against
the reference closest in length. sacrebleu and nltk tokenise and smooth differently (nltk's
smoothing puts two unrelated sentences near 0.05, promptfoo's below 0.001), so verdicts at a
threshold would differ: the formula is written here, in a few lines, to give promptfoo's.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

SMOOTH = 1e-7
MAX_N = 4


def _tokens(text: str) -> list[str]:
    return text.lower().split()


def _grams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu_score(candidate: str, references: list[str]) -> float:
    words = _tokens(candidate)
    refs = [_tokens(r) for r in references]
    if not words or not refs:
        return 0.0
    log_sum = 0.0
    for n in range(1, MAX_N + 1):
        grams = _grams(words, n)
        total = sum(grams.values())
        best = max(sum(min(c, ref[g]) for g, c in grams.items()) for ref in (_grams(r, n) for r in refs))
        precision = best / total if total else 0.0
        log_sum += math.log(precision or SMOOTH) / MAX_N
    closest = refs[0]
    for ref in refs[1:]:  # the first of equally close references, as promptfoo picks
        if abs(len(ref) - len(words)) < abs(len(closest) - len(words)):
            closest = ref
    penalty = 1.0 if len(words) > len(closest) else math.exp(1 - len(words) / len(closest))
    return penalty * math.exp(log_sum)


def references(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def bleu(output: str, value: Any, ctx: Any) -> Any:
    threshold = ctx.threshold if ctx.threshold is not None else 0.5
    score = bleu_score(output, references(value))
    return {"pass": score >= threshold, "reason": f"BLEU {score:.4f}, threshold {threshold:g}", "score": score}
