"""What a run may do with code from the repository's files (``allow_python``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..model.specs import JUDGED, MEASURED
from ..model.types import AssertionSpec

PREFIX = "python:"


def refused(settings: Any, models: Iterable[str], asserts: Iterable[AssertionSpec], arena: bool = False,
            scoring: str | None = None, tool_impl: str | None = None) -> str | None:
    """Why this case may not run with ``allow_python: false`` / ``--promstack-no-python``: a
    python: target (as the model, or as a judge of its judged assertions or of its arena
    games) or a python assertion runs code from the repository's files."""
    if settings.allow_python:
        return None
    if tool_impl is not None:
        return (f"tool_impl {tool_impl} is code from this repository; python is refused here (--promstack-no-python "
                "or allow_python: false): give the case canned tool_results, or run it on trusted code only")
    if scoring is not None:
        return (f"assertScoringFunction {scoring} is code from this repository; python is refused here "
                "(--promstack-no-python or allow_python: false): drop it, or run it on trusted code only")
    asserts = list(asserts)
    for name in models:
        target = _target(settings, name)
        if target.startswith(PREFIX):
            return (f"model {name} is a python: target ({target}), code from this repository; python is refused "
                    "here (--promstack-no-python or allow_python: false): run it on trusted code only")
    if arena or any(a.type.removeprefix("not-") in JUDGED for a in asserts):
        judges = {name: judge.model for name, judge in settings.judges.items()}
        if settings.default_judge and settings.default_judge not in judges:  # a model named as the judge
            judges[settings.default_judge] = settings.default_judge
        for name, model in sorted(judges.items()):
            target = _target(settings, model)
            if target.startswith(PREFIX):
                return (f"judge {name} is a python: target ({target}), code from this repository; python is "
                        "refused here (--promstack-no-python or allow_python: false): judge with a model, or "
                        "run it on trusted code only")
    for a in asserts:
        kind = a.type.removeprefix("not-")
        if kind in MEASURED:  # similar's embedding model, moderation's model
            key = "moderation_model" if kind == "moderation" else "embedding_model"
            target = _target(settings, getattr(settings, key, None) or "")
            if target.startswith(PREFIX):
                return (f"{key} is a python: target ({target}), code from this repository; python is refused here "
                        "(--promstack-no-python or allow_python: false): name a model, or run it on trusted code only")
    return runs_code(asserts, "python is refused here (--promstack-no-python or allow_python: false)",
                     "or run it on trusted code only")


def runs_code(asserts: Iterable[AssertionSpec], why: str, instead: str = "") -> str | None:
    """Why one of these assertions runs code (a python assertion, also from a ``file://…py``, or
    a transform), worded ``why`` and ``instead``; None when none does."""
    tail = f", {instead}" if instead else ""
    for a in asserts:
        if a.transform:
            return (f"{a.origin or 'an assertion'}: a transform runs code ({a.transform[0][:60]}); {why}: drop the "
                    f"transform{tail}")
        if a.type.removeprefix("not-") == "python":
            return (f"{a.origin or 'an assertion'}: a python assertion runs code; {why}: use a declarative "
                    f"assertion{tail}")
    return None


def _target(settings: Any, name: str) -> str:
    spec = settings.models.get(name)
    return spec.model if spec is not None else name
