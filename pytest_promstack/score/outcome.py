"""What an assertion function may return besides a bool or ``(bool, reason)``, and what it may
raise when it cannot decide. Its own module so that the modules of the built-in types can use
them without importing ``assertions``, which imports them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """``score`` defaults to 1 or 0 by ``passed``; ``not-`` makes it 1 - score, or
    ``negated_score`` where a type scores its negation otherwise (is-refusal's empty output)."""

    passed: bool
    reason: str = ""
    score: float | None = None
    negated_score: float | None = None


class Undecided(Exception):
    """An assertion that could not be decided (a regex over its time limit): it fails, even
    negated, with this message as its reason."""
