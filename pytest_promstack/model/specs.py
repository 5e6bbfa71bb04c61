"""The assertion language: the CSV shorthand (``contains:환불``, ``not-icontains:x``,
``levenshtein(5):Paris``) and the structured form, parsed into ``AssertionSpec``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .types import AssertionSpec

SHORTHAND = re.compile(r"^(?P<not>not-)?(?P<type>[a-z][a-z0-9_-]*)(?:\((?P<arg>[^)]*)\))?(?::(?P<value>.*))?$", re.S)


NEEDS_JUDGE = "llm-expectation"


JUDGED = ("judge", "llm-rubric", "grade", NEEDS_JUDGE)


def spec_id(spec: AssertionSpec) -> str:
    """Identifies an assertion within a case (for its judge verdict)."""
    return f"{spec.origin}|{spec.type}|{json.dumps(spec.value, sort_keys=True, ensure_ascii=False, default=str)}"


class AssertionSyntaxError(ValueError):
    pass


def parse_shorthand(text: str, known: Callable[[str], bool]) -> AssertionSpec | None:
    """``contains:환불``, ``not-icontains:error``, ``levenshtein(5):Paris``; plain text is
    ``equals``. Returns None for an empty cell; raises on an unknown type."""
    text = text.strip()
    if not text:
        return None
    m = SHORTHAND.match(text)
    has_value = m is not None and m.group("value") is not None
    if m is None or (not has_value and not known(m.group("type"))):
        return AssertionSpec("equals", text)
    name = m.group("type")
    if not known(name):
        raise AssertionSyntaxError(name)
    threshold = None
    if m.group("arg"):
        try:
            threshold = float(m.group("arg"))
        except ValueError:
            raise AssertionSyntaxError(f"{name}: threshold {m.group('arg')!r} is not a number") from None
    return AssertionSpec(f"{m.group('not') or ''}{name}", m.group("value"), threshold)


def from_structured(item: Any, known: Callable[[str], bool]) -> AssertionSpec:
    """``{type, value, threshold, weight}`` (YAML/JSON) or a shorthand string."""
    if isinstance(item, str):
        spec = parse_shorthand(item, known)
        if spec is None:
            raise AssertionSyntaxError("empty assertion")
        return spec
    if not isinstance(item, dict) or "type" not in item:
        raise AssertionSyntaxError("an assertion is a string like 'contains:x' or {type: ..., value: ...}")
    extra = set(item) - {"type", "value", "threshold", "weight", "metric"}
    if extra:
        raise AssertionSyntaxError(f"unknown assertion key(s) {', '.join(sorted(extra))}")
    name = str(item["type"])
    if not known(name.removeprefix("not-")):
        raise AssertionSyntaxError(name.removeprefix("not-"))
    return AssertionSpec(name, item.get("value"), as_float(item.get("threshold")), float(item.get("weight", 1.0)))


def as_float(v: Any) -> float | None:
    return None if v is None else float(v)
