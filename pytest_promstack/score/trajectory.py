"""promptfoo's trajectory assertions on our own record of an answer's steps.

promptfoo reads an agent's trajectory from OpenTelemetry spans; here it is ``Context.trajectory``
(each tool call in order: ``step``, ``name``, ``arguments``, ``result``) and ``Context.steps``
(the model calls). A one-shot answer's trajectory is its own tool calls, from one model call.

- ``trajectory:tool-used``: each named tool was called (``not-``: none of them was), or
  ``{name, min, max}``: a tool was called that many times.
- ``trajectory:tool-args-match``: a call of ``name`` has the arguments ``args`` (``partial``:
  they hold them, as ``tool-args-match``; ``exact``: they are them), after ``ignore``'s keys
  and arguments equal to their ``defaults`` are left out.
- ``trajectory:tool-sequence``: the tools were called in order (``in_order``, others between
  them allowed), exactly so (``exact``), or each of them, in any order (``any_order``).
- ``trajectory:step-count``: the tool calls (``type: tool``) or model calls (``type: llm``)
  number within ``min``/``max``.

Values are read by ``model.trajectory_values`` (and were checked when the file was read); tool
names are globs, matched in any case, as promptfoo matches them. Every reason ends with the
trajectory, numbered: ``tools: 1. search_orders, 2. compose_reply``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any

from ..model import trajectory_values as values
from .assertions import Context
from .outcome import Outcome, Undecided
from .tool_checks import mismatch

SHOWN = 10  # calls listed in a reason


def tool_used(output: str, value: Any, ctx: Context) -> Outcome:
    want = _read(values.tool_used, value)
    names = _names(ctx)
    if want.counted:
        return _counted(want, ctx, len(_matching(names, want.patterns[0])), f"calls of {want.patterns[0]}")
    used = [p for p in want.patterns if _matching(names, p)]
    missing = [p for p in want.patterns if p not in used]
    if ctx.negated:  # promptfoo's not- of a list: none of them was used (so "some was" is what is inverted)
        reason = f"used {', '.join(used)}" if used else f"used none of {', '.join(want.patterns)}"
        return Outcome(bool(used), f"{reason}; {_trail(ctx)}")
    reason = f"did not use {', '.join(missing)}" if missing else f"used {', '.join(used)}"
    return Outcome(not missing, f"{reason}; {_trail(ctx)}")


def tool_sequence(output: str, value: Any, ctx: Context) -> Outcome:
    mode, wanted = _read(values.tool_sequence, value)
    names = _names(ctx)
    expected = ", ".join(wanted)
    if mode == "exact":
        ok = len(names) == len(wanted) and all(_match(n, p) for n, p in zip(names, wanted, strict=False))
        return Outcome(ok, f"{'called exactly' if ok else 'expected exactly'} {expected}; {_trail(ctx)}")
    if mode == "any_order":
        missing = _unmatched(names, wanted)
        reason = f"no call left for {', '.join(missing)}" if missing else f"called {expected} (any order)"
        return Outcome(not missing, f"{reason}; {_trail(ctx)}")
    found = _in_order(names, wanted)
    if found == len(wanted):
        return Outcome(True, f"called {expected} in order; {_trail(ctx)}")
    after = f" after {', '.join(wanted[:found])}" if found else ""
    return Outcome(False, f"expected {expected} in order: no {wanted[found]}{after}; {_trail(ctx)}")


def tool_args_match(output: str, value: Any, ctx: Context) -> Outcome:
    want = _read(values.tool_args, value)
    calls = [c for c in ctx.trajectory if _match(str(c.get("name")), want.pattern)]
    if not calls:
        return Outcome(False, f"no call of {want.pattern}; {_trail(ctx)}")
    problems = [_args_problem(c.get("arguments"), want) for c in calls]
    if None in problems:
        call = calls[problems.index(None)]
        return Outcome(True, f"{_call(call)} has the arguments ({want.mode}); {_trail(ctx)}")
    return Outcome(False, f"{want.pattern} ({want.mode}): {problems[0]}; called {_call(calls[0])}; {_trail(ctx)}")


def step_count(output: str, value: Any, ctx: Context) -> Outcome:
    want = _read(values.step_count, value)
    pattern = want.patterns[0] if want.patterns else "*"
    counts = {"tool": len(_matching(_names(ctx), pattern)), "llm": ctx.steps}
    what = " and ".join({"tool": "tool calls" + (f" of {pattern}" if want.patterns else ""),
                         "llm": "model calls"}[t] for t in want.types)
    return _counted(want, ctx, sum(counts[t] for t in want.types), what)


def _read(reader: Any, value: Any) -> Any:
    """The value as ``reader`` reads it; a bad one (a ``{{ var }}`` that rendered to one) fails
    the assertion, even negated, with the reader's line."""
    try:
        return reader(value)
    except ValueError as exc:
        raise Undecided(str(exc).split(": ", 1)[-1]) from None


def _counted(want: values.Count, ctx: Context, n: int, what: str) -> Outcome:
    ok = (want.low is None or n >= want.low) and (want.high is None or n <= want.high)
    return Outcome(ok, f"{n} {what}, expected {_range(want.low, want.high)}; {_trail(ctx)}")


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return str(low) if low == high else f"{low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _names(ctx: Context) -> list[str]:
    return [str(c.get("name")) for c in ctx.trajectory]


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """promptfoo's matchesPattern: ``*`` any characters, ``?`` one, any case, the whole name."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I | re.S)


def _match(name: str, pattern: str) -> bool:
    return _glob(pattern).fullmatch(name) is not None


def _matching(names: Sequence[str], pattern: str) -> list[str]:
    return [n for n in names if _match(n, pattern)]


def _in_order(names: Sequence[str], wanted: Sequence[str]) -> int:
    """How many of ``wanted`` are found in order in ``names`` (each at its earliest call)."""
    found = 0
    for name in names:
        if found < len(wanted) and _match(name, wanted[found]):
            found += 1
    return found


def _unmatched(names: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The wanted steps left without a call of their own, each call serving one step (a
    bipartite matching, so ``[search_*, search_orders]`` finds both calls in either order)."""
    owner: dict[int, int] = {}  # call index -> wanted index

    def assign(w: int, seen: set[int]) -> bool:
        for c, name in enumerate(names):
            if c not in seen and _match(name, wanted[w]):
                seen.add(c)
                if c not in owner or assign(owner[c], seen):
                    owner[c] = w
                    return True
        return False

    return [wanted[w] for w in range(len(wanted)) if not assign(w, set())]


def _args_problem(actual: Any, want: values.ArgsMatch) -> str | None:
    actual, expected = _without(actual, want.ignore), _without(want.args, want.ignore)
    if want.defaults and isinstance(actual, dict):
        actual = {k: v for k, v in actual.items() if not (k in want.defaults and _same(v, want.defaults[k]))}
    if want.mode == "partial":
        return mismatch(actual, expected, "args")
    return _exact_problem(actual, expected, "args")


def _without(args: Any, ignore: Sequence[str]) -> Any:
    """``args`` without its top-level keys named in ``ignore`` (a name with ``*``/``?`` is a glob)."""
    if not ignore or not isinstance(args, dict):
        return args
    return {k: v for k, v in args.items()
            if not any(k == i or (("*" in i or "?" in i) and _match(k, i)) for i in ignore)}


def _exact_problem(actual: Any, expected: Any, path: str) -> str | None:
    """Where ``actual`` is not ``expected`` (promptfoo's deep strict equality), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        extra = [k for k in actual if k not in expected]
        if extra:
            return f"{path}.{extra[0]} is {_shown(actual[extra[0]])}, not expected (exact)"
        return next((p for k, v in expected.items() if (p := _exact_problem(actual.get(k, _MISSING), v,
                                                                              f"{path}.{k}"))), None)
    if isinstance(expected, list) and isinstance(actual, list) and len(actual) == len(expected):
        return next((p for i, (a, e) in enumerate(zip(actual, expected, strict=True))
                     if (p := _exact_problem(a, e, f"{path}[{i}]"))), None)
    if actual is _MISSING:
        return f"{path} is missing (expected {_shown(expected)})"
    return None if _same(actual, expected) else f"{path} is {_shown(actual)}, expected {_shown(expected)}"


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: a boolean is never a number, 1 is 1.0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list) or isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _call(call: dict[str, Any]) -> str:
    args = call.get("arguments")
    text = (", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
            if isinstance(args, dict) else _shown(args))
    return f"{call.get('name')}({text if len(text) <= 120 else text[:119] + '…'})"


def _trail(ctx: Context) -> str:
    """``tools: 1. search_orders, 2. compose_reply`` (the first ten), and the model calls when
    more than one made the answer."""
    names = _names(ctx)
    listed = ", ".join(f"{i}. {n}" for i, n in enumerate(names[:SHOWN], 1))
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    calls = f" in {ctx.steps} model calls" if ctx.steps != 1 else ""
    return f"tools: {listed}{more}{calls}" if names else f"tools: none{calls}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"
