"""The values of promptfoo's ``trajectory:*`` assertions, read and checked: when the test file is
read (``specs.value_problem``) and again when a case is scored (after ``{{ var }}`` rendered).

promptfoo reads an agent's steps from OpenTelemetry spans; here the steps are the answer's own:
its tool calls, in order (``type: tool``), and the model calls that made it (``type: llm``).
A tool is named by a glob (``*`` and ``?``, any case), as promptfoo matches a step's name.
Each reader returns the value in one shape or raises ``ValueError`` with one line naming the key
and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USED = "trajectory:tool-used"
SEQUENCE = "trajectory:tool-sequence"
ARGS = "trajectory:tool-args-match"
STEPS = "trajectory:step-count"
KINDS = (USED, SEQUENCE, ARGS, STEPS)

MODES = ("in_order", "exact", "any_order")
ARG_MODES = ("partial", "exact")
HERE = ("tool", "llm")  # the step types recorded here
TRACE_ONLY = ("command", "message", "reasoning", "search", "span")  # promptfoo's other span types
COUNTED = "here type: tool counts the answer's tool calls and type: llm its model calls"


@dataclass(frozen=True)
class Count:
    """A tool-used or step-count value: which steps, and how many of them."""

    patterns: tuple[str, ...]  # tool-name globs; () for every step of the types
    low: int | None
    high: int | None
    types: tuple[str, ...] = ("tool",)
    counted: bool = True  # False: tool-used's list form (each named tool at least once)


@dataclass(frozen=True)
class ArgsMatch:
    pattern: str
    args: Any
    mode: str
    defaults: dict[str, Any] | None
    ignore: tuple[str, ...]


def problem(kind: str, value: Any) -> str | None:
    """The one line for a bad value of ``kind`` (one of ``KINDS``), or None."""
    try:
        READERS[kind](value)
    except ValueError as exc:
        return str(exc)
    return None


def tool_used(value: Any) -> Count:
    """A name (a comma list in a CSV cell), a list of names (each used), or ``{name|pattern,
    min (default 1), max}`` (how many calls of it)."""
    fix = f"{USED}: write a tool name, a list of names, or {{name: TOOL, min: 1, max: 3}}"
    if isinstance(value, str | list):
        names = _names(value, fix)
        return Count(names, 1, None, counted=False)
    if not isinstance(value, dict):
        raise ValueError(f"{fix}, not {_shown(value)}")
    _only(USED, value, {"name", "pattern", "type", "min", "max"}, fix)
    pattern = _pattern(USED, value, fix)
    _tool_type(USED, value)
    low, high = _bounds(USED, value)
    return Count((pattern,), 1 if low is None else low, high)


def tool_sequence(value: Any) -> tuple[str, tuple[str, ...]]:
    """(mode, name globs): a list (or a comma list) in order, or ``{steps, mode}``."""
    fix = f"{SEQUENCE}: write the tools in order, [search_orders, compose_reply], or {{steps: [...], mode: in_order}}"
    mode: Any = "in_order"
    if isinstance(value, dict):
        _only(SEQUENCE, value, {"steps", "mode"}, fix)
        mode = value.get("mode") or "in_order"
        if mode not in MODES:
            raise ValueError(f"{SEQUENCE}: mode {_shown(mode)} is not one of {', '.join(MODES)}")
        value = value.get("steps")
    if not isinstance(value, str | list) or not _listed(value):
        raise ValueError(f"{fix}, not {_shown(value)}")
    return mode, tuple(_step(i, s, fix) for i, s in enumerate(_listed(value)))


def tool_args(value: Any) -> ArgsMatch:
    """``{name|pattern, args|arguments, mode: partial|exact, defaults, ignore}``, promptfoo's."""
    fix = f"{ARGS}: write {{name: TOOL, args: {{key: value}}}} (mode: partial or exact)"
    if not isinstance(value, dict):
        raise ValueError(f"{fix}, not {_shown(value)}")
    _only(ARGS, value, {"name", "pattern", "type", "args", "arguments", "mode", "defaults", "ignore"}, fix)
    pattern = _pattern(ARGS, value, fix)
    _tool_type(ARGS, value)
    args = value["args"] if "args" in value else value.get("arguments")
    if args is None:
        raise ValueError(f"{ARGS}: give the expected arguments under args:, e.g. {{name: {pattern}, args: {{id: 1}}}}")
    mode = value.get("mode") or "partial"
    if mode not in ARG_MODES:
        raise ValueError(f"{ARGS}: mode {_shown(mode)} is not partial or exact")
    defaults = value.get("defaults")
    if "defaults" in value and not isinstance(defaults, dict):
        raise ValueError(f"{ARGS}: defaults: is a mapping of argument names to their default values, "
                         f"e.g. {{page: 1}}, not {_shown(defaults)}")
    ignore = value.get("ignore")
    ignored = [] if "ignore" not in value else ignore if isinstance(ignore, list) else [ignore]
    if not all(isinstance(k, str) and k.strip() for k in ignored):
        raise ValueError(f"{ARGS}: ignore: is an argument name or a list of names (request_id, '*_id'), "
                         f"not {_shown(ignore)}")
    return ArgsMatch(pattern, args, mode, defaults, tuple(ignored))


def step_count(value: Any) -> Count:
    """``{type: tool|llm (or a list), name|pattern, min, max}``: how many steps of those types."""
    fix = f"{STEPS}: write {{type: tool, min: 1, max: 5}} (type: tool or llm; min and/or max)"
    if not isinstance(value, dict):
        raise ValueError(f"{fix}, not {_shown(value)}")
    _only(STEPS, value, {"type", "name", "pattern", "min", "max"}, fix)
    given = value.get("type") or ["tool"]
    types = given if isinstance(given, list) else [given]
    for kind in types:
        if kind in TRACE_ONLY:
            raise ValueError(f"{STEPS}: type {kind!r} is a span of promptfoo's traces, which are not recorded "
                             f"here; {COUNTED}")
        if kind not in HERE:
            raise ValueError(f"{STEPS}: type {_shown(kind)} is not a step type; {COUNTED}")
    pattern = value.get("pattern") or value.get("name")
    if pattern is not None and (not isinstance(pattern, str) or not pattern.strip()):
        raise ValueError(f"{STEPS}: name: is a tool name or a glob (search_*), not {_shown(pattern)}")
    if pattern is not None and "llm" in types:
        raise ValueError(f"{STEPS}: model calls have no name here; drop name:/pattern: for type: llm, "
                         "or count tool calls with type: tool")
    low, high = _bounds(STEPS, value)
    if low is None and high is None:
        raise ValueError(f"{STEPS}: give min and/or max, e.g. {{type: tool, max: 5}}")
    return Count(() if pattern is None else (pattern.strip(),), low, high, tuple(dict.fromkeys(types)))


READERS = {USED: tool_used, SEQUENCE: tool_sequence, ARGS: tool_args, STEPS: step_count}


def _listed(value: str | list[Any]) -> list[Any]:
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


def _names(value: str | list[Any], fix: str) -> tuple[str, ...]:
    items = _listed(value)
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ValueError(f"{fix}, not {_shown(value)}")
    return tuple(v.strip() for v in items)


def _step(i: int, step: Any, fix: str) -> str:
    if isinstance(step, str) and step.strip():
        return step.strip()
    if isinstance(step, dict):
        _only(f"{SEQUENCE}: steps[{i}]", step, {"name", "pattern", "type"}, "write a tool name or {name: TOOL}")
        _tool_type(f"{SEQUENCE}: steps[{i}]", step)
        return _pattern(f"{SEQUENCE}: steps[{i}]", step, "write a tool name or {name: TOOL}")
    raise ValueError(f"{fix}; steps[{i}] is {_shown(step)}")


def _only(where: str, value: dict[Any, Any], keys: set[str], fix: str) -> None:
    extra = sorted(str(k) for k in value if k not in keys)
    if extra:
        raise ValueError(f"{where}: unknown key {extra[0]!r}; {fix}")
    if not value:
        raise ValueError(f"{where}: the mapping is empty; {fix}")


def _pattern(where: str, value: dict[str, Any], fix: str) -> str:
    pattern = value.get("pattern") or value.get("name")
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"{where}: name: is missing (a tool name, or a glob such as search_*); {fix}")
    return pattern.strip()


def _tool_type(where: str, value: dict[str, Any]) -> None:
    kind = value.get("type", "tool")
    if kind != "tool" and kind != ["tool"]:
        raise ValueError(f"{where}: type {_shown(kind)}: only tool calls are named steps here (type: tool)")


def _bounds(where: str, value: dict[str, Any]) -> tuple[int | None, int | None]:
    low, high = (_whole(where, key, value.get(key)) for key in ("min", "max"))
    if low is not None and high is not None and low > high:
        raise ValueError(f"{where}: min ({low}) is more than max ({high})")
    return low, high


def _whole(where: str, key: str, n: Any) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n) or n < 0:
        raise ValueError(f"{where}: {key}: {_shown(n)} is not a count; write a whole number, e.g. {key}: 2")
    return int(n)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
