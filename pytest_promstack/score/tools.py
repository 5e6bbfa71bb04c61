"""promptfoo's tool-call checks: ``tool-call-f1``, ``is-valid-openai-tools-call``,
``is-valid-openai-function-call`` and ``is-valid-function-call``.

Each reads the output as promptfoo's do: a reply's tool calls reach a check as the JSON text
promptfoo would stringify its output to (``Response.output``: the list of calls, or
``{"content", "tool_calls"}`` with text beside them), and that text is read back as data; an
output that is no JSON stays text. So a transform that picks out part of the calls works as in
promptfoo, and an application that returns the calls as JSON text is checked the same way
(**extension**: promptfoo's OpenAI checks read only a provider's structured output). The tools
a call is checked against are the request's ``tools``/``functions`` params, read from their
``file://`` and rendered with the case's variables when the case was planned
(``plan/tools.py``).

The rules are promptfoo's (``src/assertions/toolCallF1.ts``, ``openai.ts``,
``functionToolCall.ts`` and ``providers/openai/util.ts``), rewritten here: F1 over the sets of
expected and called tool names, and JSON-schema validation of each call's arguments against
the ``parameters`` of the function of that name. tool-call-f1 finds calls in text as promptfoo
does: JSON that is the whole output, else complete JSON blocks that start and end a line,
outside Markdown code fences, with the work bounded by the text's length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .assertions import Context, _validate
from .outcome import Outcome, Undecided

# JavaScript's whitespace (String.prototype.trim, \s): not Python's, which adds \x1c-\x1f
JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_JS_LINE = "[^\n\r\u2028\u2029]"  # JavaScript's "." in a regular expression


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse)


def _parse(text: str) -> Any:
    """``JSON.parse``: raises ValueError where JavaScript's would (NaN and Infinity too)."""
    try:
        return _DECODER.decode(text)
    except RecursionError:  # nested deeper than Python recurses: not read as data here
        raise ValueError("nested too deep") from None


def _data(output: str) -> Any:
    """The output as promptfoo's checks see it: JSON text as its data, other text as it is."""
    try:
        return _parse(output)
    except ValueError:
        return output


def _shown(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---- is-valid-openai-function-call, is-valid-openai-tools-call, is-valid-function-call --------


def _call_problem(call: Any, functions: Any) -> str | None:
    """Why a ``{name, arguments}`` call is not a call of one of ``functions``, or None:
    promptfoo's validateFunctionCall."""
    if isinstance(call, dict) and "function_call" in call:
        call = call["function_call"]
    if not (isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), str)):
        return f"OpenAI did not return a valid-looking function call: {_shown(call)}"
    name = call["name"]
    try:
        arguments = _parse(call["arguments"])
    except ValueError as exc:
        return f'Call to "{name}": its arguments are not JSON ({exc})'
    found = next((f for f in functions or () if isinstance(f, dict) and f.get("name") == name), None)
    schema = found.get("parameters") if found is not None else None
    if schema is None or schema is False or schema in (0, ""):  # absent, as JavaScript's ?. and ! read it
        return f'Called "{name}", but there is no function with that name'
    import jsonschema

    try:
        problem = _validate(arguments, schema)
    except jsonschema.SchemaError as exc:
        return f'the parameters of "{name}" are not a JSON schema ({exc.message}); fix the tool\'s parameters'
    return f'Call to "{name}" does not match schema: {problem}' if problem else None


def _mcp(output: str) -> Outcome | None:
    """promptfoo's reading of an MCP tool's result in the output: an error line fails, a
    result line passes (the tools are not looked at); None when there is neither."""
    if "MCP Tool Error" in output:
        m = re.search(rf"MCP Tool Error \(([^)]+)\): ({NOT_JS_LINE}+)", output)
        name, error = (m.group(1), m.group(2)) if m else ("unknown", "unknown error")
        return Outcome(False, f"MCP tool call failed for {name}: {error}")
    if "MCP Tool Result" in output:
        m = re.search(r"MCP Tool Result \(([^)]+)\):", output)
        return Outcome(True, f"MCP tool call succeeded for {m.group(1) if m else 'unknown'}")
    return None


def _tool_functions(ctx: Context) -> list[Any]:
    tools = ctx.params.get("tools")
    if tools is None:
        raise Undecided("the request declares no tools: give the model tools: in its params (promptfoo: the "
                        "provider's config.tools), a list of {type: function, function: {name, parameters}}. "
                        "Tools are expected to be an array of objects with a function property. Got: undefined")
    return [t.get("function") if isinstance(t, dict) else None for t in tools]


def _tool_calls(data: Any) -> list[Any] | None:
    """The calls of a tools response (a list, or ``{tool_calls: [...]}``), or None when the
    output does not look like one (its first call has no function name and arguments text)."""
    if isinstance(data, dict) and "tool_calls" in data:
        data = data["tool_calls"]
    if not isinstance(data, list) or not data:
        return None
    first = data[0].get("function") if isinstance(data[0], dict) else None
    if not (isinstance(first, dict) and isinstance(first.get("name"), str) and isinstance(first.get("arguments"), str)):
        return None
    return data


def is_valid_openai_tools_call(output: str, value: Any, ctx: Context) -> Outcome:
    """Every tool call names a declared tool and its arguments match that tool's parameters."""
    mcp = _mcp(output)
    if mcp is not None:
        return mcp
    calls = _tool_calls(_data(output))
    if calls is None:
        return Outcome(False, f"OpenAI did not return a valid-looking tools response: {_shown(_data(output))}")
    functions = _tool_functions(ctx)
    for call in calls:
        problem = _call_problem(call.get("function") if isinstance(call, dict) else call, functions)
        if problem:
            return Outcome(False, problem)
    return Outcome(True, "Assertion passed")


def is_valid_openai_function_call(output: str, value: Any, ctx: Context) -> Outcome:
    """The function call names a declared function (the request's ``functions``) and its
    arguments match that function's parameters."""
    problem = _call_problem(_data(output), ctx.params.get("functions"))
    return Outcome(problem is None, problem or "Assertion passed")


def is_valid_function_call(output: str, value: Any, ctx: Context) -> Outcome:
    """promptfoo asks the provider to validate; every provider here answers in OpenAI's shape,
    so: the tool calls against the declared tools, or the function call against the declared
    functions (and the tools' functions)."""
    data = _data(output)
    calls = _tool_calls(data)
    tools = [t.get("function") for t in ctx.params.get("tools") or () if isinstance(t, dict)]
    if calls is None:
        problem = _call_problem(data, [*(ctx.params.get("functions") or ()), *tools])
        return Outcome(problem is None, problem or "Assertion passed")
    for call in calls:
        problem = _call_problem(call.get("function") if isinstance(call, dict) else call, tools)
        if problem:
            return Outcome(False, problem)
    return Outcome(True, "Assertion passed")


# ---- tool-call-f1 ---------------------------------------------------------------------------


def expected_tools(value: Any) -> list[str]:
    """tool-call-f1's value: a list of names or a comma list, each trimmed; raises ValueError."""
    if isinstance(value, list):
        items = [v if isinstance(v, str) else json.dumps(v) for v in value]
    elif isinstance(value, str):
        items = value.split(",")
    else:
        raise ValueError("tool-call-f1 needs the names of the tools the model should call: "
                         "tool-call-f1:get_weather,book_flight or value: [get_weather, book_flight]")
    names = [n.strip(JS_SPACE) for n in items if n.strip(JS_SPACE)]
    if not names:
        raise ValueError("tool-call-f1 needs at least one expected tool name: tool-call-f1:get_weather,book_flight")
    return names


def tool_call_f1(output: str, value: Any, ctx: Context) -> Outcome:
    """F1 of the tool names called against the expected ones; passes at ``threshold`` (1 by
    default: exactly the expected tools). ``not-`` inverts the verdict, not the score."""
    try:
        expected = set(expected_tools(value))
    except ValueError as exc:
        raise Undecided(str(exc)) from None
    try:
        called = tool_names(output)
    except WorkLimit as exc:
        raise Undecided(str(exc)) from None
    hits = len(expected & called)
    precision = hits / len(called) if called else 0.0
    recall = hits / len(expected)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    threshold = ctx.threshold if ctx.threshold is not None else 1.0
    lists = f"Expected: [{', '.join(sorted(expected))}], Called: [{', '.join(sorted(called)) or '(none)'}]"
    passed = f1 >= threshold
    reason = (f"Tool Call F1: {f1:.3f} (precision={precision:.3f}, recall={recall:.3f}). {lists}" if passed else
              f"Tool Call F1 score {f1:.3f} is below threshold {threshold:g}. {lists}. "
              f"Precision={precision:.3f}, Recall={recall:.3f}")
    return Outcome(passed, reason, f1, negated_score=f1)


class WorkLimit(ValueError):
    """Malformed output that would take more work to read than its length allows."""


def tool_names(output: Any) -> set[str]:
    """The names of the tools ``output`` calls, in any of the shapes promptfoo reads: OpenAI's
    ``tool_calls`` (and a list of calls), its Responses ``function_call`` items, Anthropic's
    ``tool_use`` blocks, Google's ``functionCall`` and Live ``toolCall``, ``{name}`` items; text
    is read as JSON, else as the JSON blocks in it (``json_blocks``)."""
    if isinstance(output, str):
        try:
            parsed = _parse(output)
        except ValueError:
            return {name for block in json_blocks(output) for name in tool_names(block)}
        return tool_names(parsed)
    if isinstance(output, dict):
        return _object_names(output)
    if isinstance(output, list):
        return _list_names(output)
    return set()


def _is_object(value: Any) -> bool:
    """JavaScript's ``value && typeof value === 'object'``: an object or an array, even empty."""
    return isinstance(value, dict | list)


def _name(value: Any) -> set[str]:
    """``{value.name}`` when ``value`` is an object whose name is text, else nothing."""
    name = value.get("name") if isinstance(value, dict) else None
    return {name} if isinstance(name, str) else set()


def _object_names(obj: dict[str, Any]) -> set[str]:
    if isinstance(obj.get("tool_calls"), list):  # OpenAI: {tool_calls: [{function: {name}} or {name}]}
        calls = [c for c in obj["tool_calls"] if isinstance(c, dict)]
        return {n for c in calls for n in (*_name(c.get("function")), *_name(c))}
    if obj.get("type") in ("tool_use", "function_call") and isinstance(obj.get("name"), str):
        return {obj["name"]}  # Anthropic's tool_use block; OpenAI Responses' function_call item
    if _is_object(obj.get("functionCall")):  # Google/Vertex
        return _name(obj["functionCall"])
    if _is_object(obj.get("toolCall")):  # Google Live: {toolCall: {functionCalls: [...]}}
        calls = obj["toolCall"].get("functionCalls") if isinstance(obj["toolCall"], dict) else None
        return {n for c in calls for n in _name(c)} if isinstance(calls, list) else set()
    return set()


def _list_names(items: list[Any]) -> set[str]:
    names: set[str] = set()
    for block in (b for b in items if isinstance(b, dict)):
        if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
            names.add(block["name"])
        elif _is_object(block.get("functionCall")):
            names |= _name(block["functionCall"])
        elif _is_object(block.get("function")):
            names |= _name(block["function"])
        else:
            names |= _name(block)
    return names


# ---- JSON blocks in text ----------------------------------------------------------------------

MAX_UNMATCHED = 65_536  # brackets left open or unmatched: beyond it the text is refused
MAX_LINES = 200_000  # lines read in all (each pass and each look inside a block counts): about a second
FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")
LIST_ITEM = re.compile(r"[ \t]*(?:[-+*]|[0-9]+[.)])[ \t]+")
CONTENT = re.compile(f"[^{JS_SPACE}]")


# a bracket: (its character, where it is, whether it is the first and whether the last thing on its line)
Bracket = tuple[str, int, bool, bool]
OUTSIDE = re.compile(r'["{}\[\]]')  # what matters outside a JSON string
INSIDE = re.compile(r'["\\]')  # and inside one


def _width(text: str) -> int:
    """Columns of leading text, a tab to the next multiple of 4 (CommonMark)."""
    column = 0
    for char in text:
        column += 4 - column % 4 if char == "\t" else 1
    return column


def _brackets(text: str, lines: list[int]) -> Iterator[Bracket | None]:
    """The brackets of ``text`` outside JSON strings and Markdown code fences, line by line;
    None where what came before cannot close what comes after (a fence, a string left open at
    the end of its line). Each line read takes one from ``lines[0]``; WorkLimit when none is left."""
    in_string = False
    fence, fence_container = "", 0
    containers: list[int] = []  # the content columns of the list items the line may be in
    start = 0
    while start < len(text):
        lines[0] -= 1
        if lines[0] < 0:
            raise WorkLimit(f"Tool Call F1 read {MAX_LINES:,} lines looking for calls in malformed output and "
                            "stopped: its work limit")
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        offset, content, start = start, text[start:end].rstrip(JS_SPACE), end + 1
        first = CONTENT.search(content)
        first_at = first.start() if first else -1
        indent = _width(content[:max(0, first_at)])
        if fence and content and indent < fence_container:
            fence = ""
            yield None
        if fence:
            m = FENCE.match(content)
            if (m and indent <= fence_container + 3 and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
                    and not content[m.end():].strip(JS_SPACE)):
                fence = ""
            continue
        while content and containers and indent < containers[-1]:
            containers.pop()
        item = LIST_ITEM.match(content)
        if item:
            containers.append(_width(item.group()))
        container = containers[-1] if containers else 0
        rest = content[item.end():] if item else content
        m = FENCE.match(rest)
        if m and (item or indent <= container + 3) and (m.group(1)[0] != "`" or "`" not in rest[m.end():]):
            fence, fence_container = m.group(1), container
            yield None
            continue
        column, last = 0, len(content) - 1
        while True:
            m = (INSIDE if in_string else OUTSIDE).search(content, column)
            if m is None:
                break
            column, char = m.start(), m.group()
            if in_string:  # a backslash escapes the next character, whatever it is
                column += 2 if char == "\\" else 1
                in_string = char == "\\"
                continue
            in_string = char == '"'
            if not in_string:
                yield char, offset + column, column == first_at, column == last
            column += 1
        if in_string:  # a JSON string never spans lines
            in_string = False
            yield None


def _unmatched(text: str, lines: list[int]) -> list[int]:
    """Where the brackets are that no bracket closes (or that close none), in order."""
    unmatched: list[int] = []
    floor = 0  # below it, nothing can be closed any more
    for b in _brackets(text, lines):
        if b is None:
            floor = len(unmatched)
        elif b[0] in "{[":
            unmatched.append(b[1])
        elif len(unmatched) > floor and text[unmatched[-1]] == ("{" if b[0] == "}" else "["):
            unmatched.pop()
        else:
            unmatched.append(b[1])
            floor = len(unmatched)
        if len(unmatched) > MAX_UNMATCHED:
            raise WorkLimit(f"Tool Call F1 exceeded its delimiter limit ({MAX_UNMATCHED})")
    return unmatched


def _blocks(text: str, lines: list[int], inner: bool = False) -> Iterator[tuple[str, bool]]:
    """The outermost balanced blocks of ``text`` that end their line, with whether each starts
    its line; ``inner``: those one level inside the outermost (to look inside a block that is
    not JSON)."""
    unmatched = iter(_unmatched(text, lines))
    skip = next(unmatched, None)
    depth, start, start_depth, starts_line = 0, -1, 0, False
    for b in _brackets(text, lines):
        if b is None:
            continue
        char, index, first, last = b
        if index == skip:
            skip = next(unmatched, None)
            continue
        if char in "{[":
            if start < 0 and depth == (1 if inner else 0):
                start, start_depth, starts_line = index, depth, first
            depth += 1
            continue
        depth -= 1
        if start >= 0 and depth == start_depth:
            if last:
                yield text[start:index + 1], starts_line
            start = -1


def json_blocks(text: str) -> Iterator[Any]:
    """The data of each complete JSON block in ``text`` that is a line's first and last thing
    (a block that is not JSON is searched for such blocks inside it). All the blocks read are
    at most four times the text's length, so malformed text cannot make the work quadratic,
    and at most ``MAX_LINES`` lines are read in all: beyond either, WorkLimit."""
    lines = [MAX_LINES]
    pending = [_blocks(text, lines)]
    budget = 4 * len(text)
    while pending:
        found = next(pending[-1], None)
        if found is None:
            pending.pop()
            continue
        block, starts_line = found
        if len(block) > budget:
            raise WorkLimit("Tool Call F1 could not finish parsing malformed output within its work limit")
        budget -= len(block)
        try:
            data = _parse(block)
        except ValueError:
            pending.append(_blocks(block, lines, inner=True))
            continue
        if starts_line:
            yield data
