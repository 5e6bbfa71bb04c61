"""Overlap with reference text, scored as promptfoo scores it: ``bleu``, ``gleu``,
``rouge-n`` and ``meteor``. Each takes one reference or a list (the best one counts), a
threshold (default 0.5, ``rouge-n`` 0.75) and scores in 0..1.

GLEU (Google-BLEU: matching 1..4-grams over the larger of the two n-gram counts) and METEOR
(exact, Porter-stem and WordNet-synonym alignment; alpha 0.9, beta 3, gamma 0.5) are nltk's, on
promptfoo's tokens (lowercased words; GLEU drops a word's trailing dots). nltk's WordNet data is
a separate download (``python -m nltk.downloader wordnet``): with it METEOR also aligns
synonyms, as promptfoo does; without it, words and stems. ROUGE-N is promptfoo's (js-rouge's
``n``): the share of the reference's words, punctuation marks counted as words, found in the
output.

promptfoo computes BLEU itself (Papineni et al., 2002) on lowercased whitespace tokens, with
n-grams 1..4 weighted equally, each n-gram count clipped against one reference at a time (the
best reference wins per n), a precision of 0 smoothed to 1e-7, and the brevity penalty against
the reference closest in length. sacrebleu and nltk tokenise and smooth differently (nltk's
smoothing puts two unrelated sentences near 0.05, promptfoo's below 0.001), so verdicts at a
threshold would differ: the formula is written here, in a few lines, to give promptfoo's.
"""

from __future__ import annotations

import functools
import math
import re
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


def gleu_score(candidate: str, refs: list[str]) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    def words(text: str) -> list[str]:
        return [w.rstrip(".") for w in text.lower().split()]

    hypothesis = words(candidate)
    if not hypothesis:
        return 0.0
    return float(sentence_gleu([words(r) for r in refs], hypothesis, min_len=1, max_len=4))


def gleu(output: str, value: Any, ctx: Any) -> Any:
    threshold = ctx.threshold if ctx.threshold is not None else 0.5
    score = gleu_score(output, references(value))
    return {"pass": score >= threshold, "reason": f"GLEU {score:.4f}, threshold {threshold:g}", "score": score}


_ROUGE_TOKEN = re.compile(r"\w+|[^\w\s]")


def rouge_n_score(candidate: str, reference: str, n: int = 1) -> float:
    ref = _grams(_ROUGE_TOKEN.findall(reference.lower()), n)
    cand = _grams(_ROUGE_TOKEN.findall(candidate.lower()), n)
    total = sum(ref.values())
    return sum(min(c, cand[g]) for g, c in ref.items()) / total if total else 0.0


def rouge_n(output: str, value: Any, ctx: Any) -> Any:
    threshold = ctx.threshold if ctx.threshold is not None else 0.75
    score = max(rouge_n_score(output, r) for r in references(value))
    return {"pass": score >= threshold, "reason": f"ROUGE-N {score:.2f}, threshold {threshold:g}", "score": score}


class _NoSynonyms:
    """nltk's WordNet when its data is not installed: no synonyms (words and stems still align)."""

    def synsets(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


@functools.cache
def wordnet() -> Any:
    try:
        from nltk.corpus import wordnet as data

        data.synsets("cat")
        return data
    except LookupError:
        return _NoSynonyms()


def meteor_score(candidate: str, refs: list[str]) -> float:
    from nltk.translate.meteor_score import meteor_score as nltk_meteor

    hypothesis = candidate.lower().split()
    if not hypothesis:
        raise ValueError("the output is empty: METEOR needs words to align")
    return float(nltk_meteor([r.lower().split() for r in refs], hypothesis, wordnet=wordnet()))


def meteor(output: str, value: Any, ctx: Any) -> Any:
    threshold = ctx.threshold if ctx.threshold is not None else 0.5
    score = meteor_score(output, references(value))
    return {"pass": score >= threshold, "reason": f"METEOR {score:.4f}, threshold {threshold:g}", "score": score}


# ---- perplexity, from the answer's token log probabilities ----------------------------------

NO_LOGPROBS = ("the provider returned no log probabilities for this answer; perplexity needs a provider that "
               "returns them (OpenAI and OpenAI-compatible servers such as llama.cpp's do when asked, as promstack "
               "asks for a case with a perplexity check)")


def _perplexity(ctx: Any) -> float:
    logprobs = ctx.response.logprobs
    if not logprobs:
        from .outcome import Undecided

        raise Undecided(NO_LOGPROBS)  # nothing to decide on: it fails, negated too
    return math.exp(-sum(logprobs) / len(logprobs))


def perplexity(output: str, value: Any, ctx: Any) -> Any:
    """Passes when exp(-mean log probability) is at most the threshold (always, without one)."""
    ppl = _perplexity(ctx)
    limit = ctx.threshold
    passed = limit is None or ppl <= limit
    return {"pass": passed, "reason": f"perplexity {ppl:.4g}" + ("" if limit is None else f", limit {limit:g}"),
            "score": 1 / (1 + ppl)}


def perplexity_score(output: str, value: Any, ctx: Any) -> Any:
    """1 / (1 + perplexity), in 0..1; passes at the threshold (always, without one)."""
    score = 1 / (1 + _perplexity(ctx))
    limit = ctx.threshold
    passed = limit is None or score >= limit
    bar = "" if limit is None else f", threshold {limit:g}"
    return {"pass": passed, "reason": f"perplexity score {score:.4f}{bar}", "score": score}
