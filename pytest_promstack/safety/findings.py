"""What a detector reports: a typed span of a text, with how sure the rule is.

Types are upper-case names that masking turns into placeholders (``<KR_RRN_1>``); ``PII``
and ``SECRETS`` group them for ``no-pii`` and ``no-secrets``. A confidence is a number in
[0, 1]; ``HIGH`` is a checksum or a prefix that cannot be chance, ``MEDIUM`` a shape with a
failing or missing check (a post-2020 RRN's random tail), ``LOW`` a guess (the high-entropy
fallback, a name by a title word)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

HIGH, MEDIUM, LOW = 0.9, 0.6, 0.3

PII = ("EMAIL", "PHONE", "KR_RRN", "KR_FRN", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "PERSON", "ADDRESS")
SECRETS = ("OPENAI_KEY", "ANTHROPIC_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "GITHUB_TOKEN", "SLACK_TOKEN",
           "GOOGLE_API_KEY", "STRIPE_KEY", "JWT", "PRIVATE_KEY", "URL_CREDENTIALS", "SECRET")
TYPES = PII + SECRETS


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    type: str
    value: str
    confidence: float
    detector: str

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "start": self.start, "end": self.end, "confidence": self.confidence,
                "detector": self.detector}


def resolve(findings: list[Finding]) -> list[Finding]:
    """Overlapping findings reduced to the surest (then the longest, then the first): the
    spans returned do not overlap, left to right."""
    ranked = sorted(findings, key=lambda f: (-f.confidence, -(f.end - f.start), f.start))
    kept: list[Finding] = []  # by start, so by end too (they do not overlap): a bisection finds
    starts: list[int] = []  # the one kept span that could overlap, instead of a pass over all
    for f in ranked:
        i = bisect.bisect_left(starts, f.end)  # kept[i:] start at or after f's end
        if i and kept[i - 1].end > f.start:
            continue
        kept.insert(i, f)
        starts.insert(i, f.start)
    return sorted(kept)


@dataclass(frozen=True)
class Detector:
    """A rule: ``fn(text)`` yields the ``Finding``s of its ``types``."""

    name: str
    types: tuple[str, ...]
    fn: Callable[[str], Iterable[Finding]]
