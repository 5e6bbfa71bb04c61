"""Which tools a reply called, and with what: ``tool-called`` and ``tool-args-match``.

Both read the calls from the output as the other tool checks do (``Response.output``: the
list of OpenAI tool calls, ``{"content", "tool_calls"}`` with text beside them, or a legacy
``{name, arguments}`` function call), so an application that returns its calls as that JSON
text is checked the same way. A call's arguments are JSON text in OpenAI's shape; a mapping
is taken as it is. Every reason names what was called: ``called get_weather(city="서울")``.

In an agent's run (more than one model call: the case's tools ran and the model went on), both
read every call it made on the way (``Context.trajectory``), not only its last reply's; so they
do for a python: target that is an agent and returns the ``steps`` it ran.

- ``tool-called`` (no value): some tool was called; ``not-tool-called``: none was.
- ``tool-called:NAME`` (a comma list, or a YAML list: all of them); ``not-tool-called:NAME``:
  NAME was not called (the generic ``not-`` inverts "called NAME", so it takes one name).
- ``tool-args-match`` ``{name, args}``: a call of ``name`` whose arguments hold ``args``
  (a subset: every key given, with an equal value; nested mappings the same way, lists item
  by item); ``{name, schema}``: a call whose arguments validate against the JSON schema,
  bounded as ``is-json``'s schemas are.
"""

from __future__ import annotations

import json
from typing import Any

from .assertions import Context, _schema, _validate
from .outcome import Outcome, Undecided
from .tools import _data, _shown

Call = tuple[str, Any]  # (name, arguments: their data, or the text when it is no JSON)


def calls(output: str) -> list[Call]:
    """The tool calls in ``output`` (see the module's docstring); [] for a text answer."""
    data = _data(output)
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        data = data["tool_calls"]
    elif isinstance(data, dict) and isinstance(data.get("function_call"), dict):
        data = [data["function_call"]]
    elif isinstance(data, dict) and isinstance(data.get("name"), str) and "arguments" in data:
        data = [data]
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        fn = item.get("function", item) if isinstance(item, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append((fn["name"], _arguments(fn.get("arguments"))))
    return out


def made(output: str, ctx: Context) -> list[Call]:
    """The calls to check: in an agent's run (more than one model call), every call it made on
    the way (its trajectory), not only its last reply's, and so for a python: agent target that
    reports the tools it ran; else the reply's."""
    if ctx.steps > 1 or ctx.response.trajectory is not None:
        return [(str(s.get("name")), s.get("arguments")) for s in ctx.trajectory]
    return calls(output)


def _arguments(raw: Any) -> Any:
    if not isinstance(raw, str):
        return {} if raw is None else raw
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw


def shown(found: list[Call], limit: int = 3) -> str:
    """``called get_weather(city="서울"), book_flight(to="대구")`` or ``called no tool (...)``."""
    if not found:
        return "called no tool"
    each = [f"{name}({_args_text(args)})" for name, args in found[:limit]]
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return "called " + ", ".join(each) + more


def _args_text(args: Any) -> str:
    if isinstance(args, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
    else:
        text = _shown(args)
    return text if len(text) <= 120 else text[:119] + "…"


def names(value: Any) -> list[str]:
    """The tool names of a ``tool-called`` value: none, one, a comma list or a list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(n).strip() for n in items if str(n).strip()]


def tool_called(output: str, value: Any, ctx: Context) -> Outcome:
    """The reply called every named tool (with no name: some tool); the score is the share
    of the named tools called."""
    found = made(output, ctx)
    wanted = names(value)
    called = {name for name, _ in found}
    if not wanted:
        if found:
            return Outcome(True, shown(found))
        return Outcome(False, f"called no tool (answered {_shown(_data(output), 120)})")
    missing = [n for n in wanted if n not in called]
    score = 1 - len(missing) / len(wanted)
    if missing:
        return Outcome(False, f"did not call {', '.join(missing)}; {shown(found)}", score)
    return Outcome(True, shown([c for c in found if c[0] in wanted] + [c for c in found if c[0] not in wanted]),
                   score)


def tool_args_match(output: str, value: Any, ctx: Context) -> Outcome:
    """A call of ``value.name`` whose arguments hold ``value.args`` (a subset) or validate
    against ``value.schema``; the reason names the tool and the first mismatch."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise Undecided("write the value as {name: TOOL, args: {...}} or {name: TOOL, schema: {...}}")
    name = value["name"]
    found = made(output, ctx)
    mine = [args for n, args in found if n == name]
    if not mine:
        return Outcome(False, f"did not call {name}; {shown(found)}")
    problems = [_problem(args, value) for args in mine]
    if None in problems:
        match = mine[problems.index(None)]
        return Outcome(True, f"called {name}({_args_text(match)}), arguments as expected")
    return Outcome(False, f"{name}: {problems[0]}; called {name}({_args_text(mine[0])})")


def _problem(args: Any, value: dict[str, Any]) -> str | None:
    if "schema" in value:
        if isinstance(args, str):
            return f"its arguments are not JSON: {_shown(args, 80)}"
        problem = _validate(args, _schema(value["schema"]))
        return f"arguments {problem}" if problem else None
    return mismatch(args, value.get("args") or {}, "args")


def mismatch(actual: Any, expected: Any, path: str) -> str | None:
    """Where ``actual`` does not hold ``expected`` (mappings: a subset; lists: item by item;
    other values: equal, a boolean never equal to a number), or None."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path} is {_shown(actual, 80)}, expected an object"
        for key, want in expected.items():
            if key not in actual:
                return f"{path}.{key} is missing (expected {_shown(want, 80)})"
            problem = mismatch(actual[key], want, f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path} is {_shown(actual, 80)}, expected {_shown(expected, 80)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            problem = mismatch(a, e, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(actual, bool) != isinstance(expected, bool) or actual != expected or isinstance(actual, dict | list):
        return f"{path} is {_shown(actual, 80)}, expected {_shown(expected, 80)}"
    return None
